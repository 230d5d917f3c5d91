/**
 * Running a planned recipe. chat_vector is the engine's fused apply (runApply). The other methods
 * run as up to three streaming passes over the inputs, every pass chunked and spread over the
 * worker pool: analyse and refine (ties, dare with rescale, slerp; analysis.ts), then write: every
 * output chunk from its inputs, through the engine's output job (planned shards, atomic commit).
 *
 * Per-chunk results are combined in chunk order, so sums and therefore bytes do not depend on the
 * thread count; chunk sizes do not change the bytes either (only the element index matters).
 */
import { setConfigValue } from '../checkpoint/architectures';
import { runApply, DEFAULT_MAX_SHARD_BYTES } from '../engine/apply';
import { CHUNK_ELEMENTS, type ChunkRef, chunkRanges, refAt } from '../engine/chunking';
import type { CombineTask, CombineTerm, CopyBytesTask } from '../engine/combineKernel';
import { modelCard, readSideJson, writeModelFiles } from '../engine/modelFiles';
import { type NonFinitePolicy, nonFiniteHint } from '../engine/nonFinite';
import { type InputModel, JobInputs } from '../engine/jobInputs';
import { runOutputJob } from '../engine/outputJob';
import { threadCount } from '../jobs/threadLimit';
import { type PlacedTensor, placeTensors } from '../engine/placement';
import { ChatVecError } from '../errors';
import { entryKind } from '../io/files';
import { writeSmallFileSync } from '../io/outputFile';
import { dirname } from '../io/paths';
import type { WorkerTask } from '../io/workerPool';
import type { BackendChoice, JobContext, JobOutcome } from '../jobs/types';
import { type FloatDtype, dtypeBytes, isFloatDtype, torchDtypeName } from '../safetensors/dtype';
import { type TensorSpec, planCheckpoint } from '../safetensors/writer';
import { TOOL_VERSION } from '../version';
import { type TensorDecision, analyse, gtaModels } from './analysis';
import type { RecipeGtaTask } from './kernels';
import { methodDef } from './methods/registry';
import { type SceDecisions, analyseSce } from './methods/sceAnalysis';
import { analyseGram, gramRule } from './methods/gramAnalysis';
import { gramBase, gramModels } from './methods/gramPass';
import type { Coefficients } from './methods/gram';
import { analyseNuslerpColumns, columnStride } from './methods/nuslerpColumns';
import { type MergePlan, type PlannedTensor, inputBytes } from './plan';
import { snapshotOrigin } from '../hub/cacheLayout';
import { addTokensToOutput } from '../vocab/tokenizerOutput';
import { withRebuiltRows } from './vocabRun';
import { cardLabel, hubSources } from '../hub/provenance';
import { modelKey } from './normalize';

export interface MergeRunOptions {
  /** Output folder (created atomically). */
  readonly out: string;
  readonly overwrite?: boolean;
  /** Worker threads; default: all cores. */
  readonly threads?: number;
  /** Bytes per output shard; default 5 GB. */
  readonly maxShardBytes?: number;
  /** Elements per chunk task (default CHUNK_ELEMENTS). The bytes do not depend on it. */
  readonly chunkElements?: number;
  /** The recipe file (an input: the output may not replace or contain it). */
  readonly recipePath?: string;
  /** The recipe text, saved as mergekit_config.yml in the output. */
  readonly recipeText?: string;
  /**
   * Compute backend of chat_vector recipes (the engine's fused apply; default 'auto'). The other
   * methods always run on the CPU worker pool; asking them for 'gpu' logs a warning.
   */
  readonly backend?: BackendChoice;
  /** Write the output even when finite inputs give NaN/±Inf (with a warning); default: fail. */
  readonly allowNonFinite?: boolean;
  /** Input path → what the metadata and model card call it (a multi-document file's earlier merges, by name). */
  readonly inputLabels?: ReadonlyMap<string, string>;
}

/**
 * Runs a plan from planRecipe.
 * @throws ChatVecError (OutputExists, Io, ShapeMismatch, InvalidArgument when finite inputs give
 *   NaN/±Inf unless opts.allowNonFinite …); CancelledError when ctx.signal is raised
 *   (nothing is left behind)
 */
export async function runMergePlan(planned: MergePlan, opts: MergeRunOptions, ctx: JobContext = {}): Promise<JobOutcome> {
  const inputs = JobInputs.check(opts.out, opts.overwrite === true, planInputModels(planned), [
    ...(opts.recipePath !== undefined ? [opts.recipePath] : []),
    ...(planned.recipe.tokenizerFrom ? [planned.recipe.tokenizerFrom.path] : []),
    planned.reference.path,
  ]);
  if (planned.method === 'chat_vector') return runChatVector(planned, opts, ctx);
  // Embeddings rebuilt for a tokenizer source are read from a temporary folder beside the output.
  const rebuilt = withRebuiltRows(planned, opts.out, opts.overwrite === true, inputs.paths, ctx);
  try {
    return await runMerge(rebuilt.plan, opts, ctx, inputs);
  } finally {
    rebuilt.dispose();
  }
}

async function runMerge(plan: MergePlan, opts: MergeRunOptions, ctx: JobContext, inputs: JobInputs): Promise<JobOutcome> {
  if (opts.backend === 'gpu') ctx.onLog?.('warn', `compute backend: ${plan.method} runs on the CPU worker pool (the GPU backend serves chat_vector recipes only)`);
  const started = performance.now();
  const chunk = opts.chunkElements ?? CHUNK_ELEMENTS;
  if (!Number.isInteger(chunk) || chunk < 1) throw new ChatVecError('InvalidArgument', `chunk size must be a whole number ≥ 1, got ${chunk}`);
  const threads = threadCount(opts.threads);
  const warnings = [...plan.warnings];
  const sce = methodDef(plan.method).kind === 'sce';
  const decisions = sce ? new Map<number, TensorDecision>() : await analyse(plan, chunk, threads, ctx);
  const sceDecisions = sce ? await analyseSce(plan, chunk, threads, ctx) : new Map();
  const gram = methodDef(plan.method).kind === 'gram' ? await analyseGram(plan, chunk, threads, ctx) : new Map<number, Coefficients>();
  const columns = plan.method === 'nuslerp' ? await analyseNuslerpColumns(plan, chunk, threads, ctx) : new Map<number, Float64Array>();
  const specs: TensorSpec[] = plan.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
  const metadata = {
    chatvec: JSON.stringify({ operation: `merge (${plan.method})`, tool: `chatvec ${TOOL_VERSION}`, models: modelPaths(plan).map((p) => opts.inputLabels?.get(p) ?? p), hub_sources: hubSources(sourceFolders(plan)) }),
  };
  const cp = planCheckpoint(specs, opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES, metadata);
  const placed = placeTensors(cp);
  let totalBytes = 0;
  for (const t of plan.tensors) totalBytes += t.inputs.reduce((a, i) => a + inputBytes(i.entry, t.elementCount), 0) + placed.get(t.name)!.byteLength;
  const res = await runOutputJob(
    {
      inputs,
      plan: cp,
      phase: 'merge',
      threads,
      nonFinite: mergeNonFinite(plan, opts.allowNonFinite === true, warnings),
      totalBytes,
      tasks: (fileOf) => writeTasks(plan, { gta: decisions, sce: sceDecisions, gram, columns }, placed, fileOf, chunk),
      writeExtras: (file) => writeExtras(plan, opts, file, warnings),
    },
    ctx,
  );
  for (const w of warnings) ctx.onLog?.('warn', w);
  return {
    out: opts.out,
    tensorCount: specs.length,
    bytesWritten: res.bytesWritten,
    seconds: (performance.now() - started) / 1000,
    backend: `cpu (${res.threads} threads)`,
    warnings,
  };
}

/** Every model of the plan with the shard files the merge reads from it. */
function planInputModels(plan: MergePlan): InputModel[] {
  const shards = new Map<string, Set<string>>();
  const add = (path: string, file: string) => {
    let s = shards.get(path);
    if (!s) shards.set(path, (s = new Set()));
    s.add(file);
  };
  for (const t of plan.tensors) {
    for (const i of t.inputs) {
      add(i.model.path, i.entry.file);
      // An adapter merged into the model is an input too: its factor and tensor files.
      const a = i.entry.adapter;
      if (!a || !i.model.adapter) continue;
      for (const x of [a.replace, a.delta, a.lowRank?.factors.a, a.lowRank?.factors.b]) if (x) add(i.model.adapter, x.file);
    }
  }
  return [...shards].map(([path, files]) => ({ path, shards: [...files].map((f) => ({ path: f })) }));
}

async function runChatVector(plan: MergePlan, opts: MergeRunOptions, ctx: JobContext): Promise<JobOutcome> {
  const cv = plan.recipe.chatVector!;
  return runApply(
    {
      target: cv.target.path,
      base: cv.base.path,
      // `base+adapter` as a chat model: the adapter is the chat vector (normalize.ts allows no other).
      chats: cv.chats.map((c) => c.model.adapter ?? c.model.path),
      ratios: cv.chats.map((c) => c.ratio),
      skipEmbed: cv.skipEmbed,
      specialTokens: cv.specialTokens,
      dtype: plan.recipe.outDtype ?? undefined,
      out: opts.out,
      overwrite: opts.overwrite,
      threads: opts.threads,
      maxShardBytes: opts.maxShardBytes,
      backend: opts.backend,
      allowNonFinite: opts.allowNonFinite,
    },
    ctx,
  );
}

/** A merge's NaN/±Inf policy; the likely cause named in the message is a weight or λ float32 cannot hold. */
function mergeNonFinite(plan: MergePlan, allow: boolean, warnings: string[]): NonFinitePolicy {
  const factors = plan.tensors.flatMap((t) => [...t.weights.map((value) => ({ what: 'weight', value })), { what: 'lambda', value: t.lambda }]);
  const dtypes = plan.tensors.flatMap((t) => (isFloatDtype(t.dtype) ? [t.dtype] : []));
  return { allow, hint: nonFiniteHint(factors, dtypes), warnings };
}

// ---------------------------------------------------------------------------------------------
// The write pass

function outRef(fileOf: (f: string) => string, out: PlacedTensor, first: number): ChunkRef & { dtype: FloatDtype } {
  return { file: fileOf(out.fileName), position: out.position + first * dtypeBytes(out.dtype), dtype: out.dtype as FloatDtype };
}

/** Coefficients of linear / task_arithmetic folded into one float per input (float64, rounded once in the kernel). */
export function foldedCoefficients(t: PlannedTensor, method: 'linear' | 'task_arithmetic'): number[] {
  const idx = method === 'linear' ? t.inputs.map((_, i) => i) : gtaModels(t);
  let div = 1;
  if (t.normalize) {
    div = idx.reduce((a, i) => a + t.weights[i]!, 0);
    if (method === 'task_arithmetic' && Math.abs(div) < 1e-8) div = 1;
  }
  return t.inputs.map((_, i) => (idx.includes(i) ? (t.weights[i]! / div) * (method === 'task_arithmetic' ? t.lambda : 1) : NaN));
}

function* writeTasks(
  plan: MergePlan,
  all: { readonly gta: ReadonlyMap<number, TensorDecision>; readonly sce: SceDecisions; readonly gram: ReadonlyMap<number, Coefficients>; readonly columns: ReadonlyMap<number, Float64Array> },
  placed: ReadonlyMap<string, PlacedTensor>,
  fileOf: (f: string) => string,
  chunk: number,
): Generator<WorkerTask> {
  for (let ti = 0; ti < plan.tensors.length; ti++) {
    const t = plan.tensors[ti]!;
    const out = placed.get(t.name)!;
    if (t.kind === 'copy' && t.inputs[t.baseIndex ?? 0]!.entry.adapter) {
      // The tensor as the adapter leaves it (formed in float32, rounded once to its dtype): no byte copy.
      const lead = t.inputs[t.baseIndex ?? 0]!.entry;
      for (const [first, count] of chunkRanges(t.elementCount, chunk)) {
        const task: CombineTask = { kind: 'combine', count, target: refAt(lead, first), terms: [], out: outRef(fileOf, out, first) };
        yield task;
      }
      continue;
    }
    if (t.kind === 'copy') {
      const lead = t.inputs[t.baseIndex ?? 0]!.entry;
      const task: CopyBytesTask = {
        kind: 'copyBytes',
        byteLength: out.byteLength,
        source: refAt(lead, 0),
        mustAgree: t.inputs.filter((i) => i.entry !== lead).map((i) => [refAt(lead, 0), refAt(i.entry, 0)] as const),
        tensor: t.name,
        out: refAt({ file: fileOf(out.fileName), position: out.position, dtype: out.dtype }, 0),
      };
      yield task;
      continue;
    }
    const d = all.gta.get(ti);
    const coefficients = all.gram.get(ti);
    const columnCoefficients = all.columns.get(ti);
    const def = methodDef(plan.method);
    // Task arithmetic without trim or sign election is one linear combination: the engine's combine.
    const folded = def.kind === 'linear' ? 'linear' : def.kind === 'gta' && !def.gta!.sparsification && !def.gta!.consensus ? 'task_arithmetic' : null;
    const coef = folded ? foldedCoefficients(t, folded) : [];
    let c = 0;
    for (const [first, count] of chunkRanges(t.elementCount, chunk)) {
      const ref = (i: number) => refAt(t.inputs[i]!.entry, first);
      if (def.kind === 'passthrough') {
        // The one model × scale (a scale of 1 was planned as a byte copy).
        const task: CombineTask = { kind: 'combine', count, target: null, terms: [{ ratio: t.weights[0]!, a: ref(0), b: null }], out: outRef(fileOf, out, first) };
        yield task;
      } else if (folded) {
        if (folded === 'linear') {
          const task: CombineTask = { kind: 'combine', count, target: null, terms: t.inputs.map((_, i): CombineTerm => ({ ratio: coef[i]!, a: ref(i), b: null })), out: outRef(fileOf, out, first) };
          yield task;
        } else {
          // Start from the first model whose coefficient is exactly 1 (then m + Σ c(mᵢ − base) is
          // the engine's apply, bit for bit); otherwise from the base.
          const models = gtaModels(t);
          const start = models.find((i) => Math.fround(coef[i]!) === 1);
          const b = ref(t.baseIndex!);
          const task: CombineTask = {
            kind: 'combine',
            count,
            target: start !== undefined ? ref(start) : b,
            terms: models.filter((i) => i !== start).map((i): CombineTerm => ({ ratio: coef[i]!, a: ref(i), b })),
            out: outRef(fileOf, out, first),
          };
          yield task;
        }
      } else if (coefficients) {
        // model_stock / nuslerp over the whole tensor: base + Σ cᵢ·(mᵢ − base), or Σ cᵢ·mᵢ.
        const bi = gramBase(plan, t);
        const b = bi !== null ? ref(bi) : null;
        const task: CombineTask = {
          kind: 'combine',
          count,
          target: b,
          terms: gramModels(plan, t).map((i, k): CombineTerm => ({ ratio: coefficients[k]!, a: ref(i), b })),
          out: outRef(fileOf, out, first),
        };
        yield task;
      } else if (plan.method === 'slerp') {
        const base = t.baseIndex ?? 0;
        const other = base === 0 ? 1 : 0;
        const [s0, s1] = d!.slerp!;
        const task: CombineTask = {
          kind: 'combine',
          count,
          target: null,
          terms: [
            { ratio: s0, a: ref(base), b: null },
            { ratio: s1, a: ref(other), b: null },
          ],
          out: outRef(fileOf, out, first),
        };
        yield task;
      } else {
        const models = gtaModels(t);
        const task: RecipeGtaTask = {
          kind: 'recipeGta',
          count,
          first,
          base: ref(t.baseIndex ?? 0), // nuslerp without a base: not read (rows.withBase is false)
          models: models.map(ref),
          weights: models.map((i) => t.weights[i]!),
          sparsify: models.map((_, mi) => d?.sparsify?.[mi]?.(c) ?? { kind: 'none' }),
          consensus: def.gta?.consensus === 'sum',
          ...(def.kind === 'sce' ? { sce: all.sce.get(ti)!(c) } : {}),
          ...(columnCoefficients ? { columns: { coefficients: columnCoefficients, stride: columnStride(t), withBase: t.baseIndex !== null } } : {}),
          ...(def.kind === 'gram' && !columnCoefficients ? { rows: { rule: gramRule(plan, t), rowLength: t.shape.length >= 2 ? t.shape[t.shape.length - 1]! : t.elementCount, withBase: t.baseIndex !== null } } : {}),
          normalize: t.normalize,
          lambda: t.lambda,
          out: outRef(fileOf, out, first),
        };
        yield task;
      }
      c++;
    }
  }
}

/** The models of the plan, `path+adapter` for a model with an adapter merged in. */
function modelPaths(plan: MergePlan): string[] {
  return [...new Set(plan.tensors.flatMap((t) => t.inputs.map((i) => modelKey(i.model))))];
}

/** Every folder the plan reads weights from (models and adapters), for the Hub provenance. */
function sourceFolders(plan: MergePlan): string[] {
  return [...new Set(plan.tensors.flatMap((t) => t.inputs.flatMap((i) => [i.model.path, ...(i.model.adapter ? [i.model.adapter] : [])])))];
}

function writeExtras(plan: MergePlan, opts: MergeRunOptions, file: (name: string) => string, warnings: string[]): void {
  const dtypes = new Set(plan.tensors.filter((t) => t.kind === 'merge').map((t) => t.dtype));
  const uniform = dtypes.size === 1 ? ([...dtypes][0] as FloatDtype) : null;
  const tokFrom = plan.recipe.tokenizerFrom;
  const tokFolder = plan.vocabulary ? plan.vocabulary.tokenizerFolder : tokFrom ? (entryKind(tokFrom.path) === 'dir' ? tokFrom.path : dirname(tokFrom.path)) : plan.reference.folder;
  writeModelFiles({ target: tokFolder, chat: null, torchDtype: uniform ? torchDtypeName(uniform) : null, warnings }, file);
  if (plan.vocabulary) addTokensToOutput(file, plan.vocabulary.vocab.added);
  // Read as every side file of an output is: confined to its folder, capped, regular files only.
  const config = readSideJson(plan.reference.folder, 'config.json', warnings);
  if (config) {
    if (uniform) config.torch_dtype = torchDtypeName(uniform);
    if (plan.outputLayers !== null) setConfigValue(config, plan.reference.layerCountKey, plan.outputLayers);
    if (plan.outputVocab !== null) config.vocab_size = plan.outputVocab;
    writeSmallFileSync(file('config.json'), JSON.stringify(config, null, 2) + '\n');
  }
  if (opts.recipeText !== undefined) writeSmallFileSync(file('mergekit_config.yml'), opts.recipeText.endsWith('\n') ? opts.recipeText : opts.recipeText + '\n');
  // An earlier merge of a multi-document file is named by its document (not its temporary path).
  const label = (path: string, given: string) => (snapshotOrigin(path) ? cardLabel(path) : `\`${opts.inputLabels?.get(path) ?? given}\``);
  const models = [
    ...new Map(
      plan.tensors.flatMap((t) =>
        t.inputs.map((i) => {
          const [m, a] = i.model.adapter ? i.model.given.split('+') : [i.model.given];
          return [modelKey(i.model), label(i.model.path, m!) + (i.model.adapter ? ` with the LoRA adapter ${label(i.model.adapter, a!)} merged in` : '')] as const;
        }),
      ),
    ).values(),
  ];
  const lines = [
    `This model was merged with \`chatvec merge\` (merge method \`${plan.method}\`, mergekit-compatible recipe in \`mergekit_config.yml\`).`,
    '',
    ...models.map((m) => `- ${m}`),
    '',
    '- arithmetic in float32, one rounding to the output dtype',
    `- tool: chatvec ${TOOL_VERSION}`,
    ...(warnings.length ? ['', 'Warnings:', ...warnings.map((w) => `- ${w}`)] : []),
  ];
  writeSmallFileSync(file('README.md'), modelCard('Merged model', lines));
}
