/**
 * apply: θ_out = θ_cp + Σ rᵢ·τᵢ — from stored chat vectors (two-step) or fused from a base and
 * chat models (one pass reading base, chats and CP; τ is never written). Both paths run the same
 * float32 kernel in the same order, so they give the same bytes.
 */
import { type CatalogueEntry, type Checkpoint, openCheckpoint, rowsCounterpart } from '../checkpoint/checkpoint';
import { isVocabTensor } from '../checkpoint/layers';
import { type Adapter, adapterKeyedLike, isAdapterFolder, openAdapter, requireAdapterFits } from '../lora/adapter';
import type { AdapterLowRank } from '../checkpoint/tensorAddend';
import { addAdapterTerms, lowRankTermAt, requireBaseForFullTensors } from './adapterTerms';
import { requireUnquantized } from '../checkpoint/quantization';
import { ChatVecError } from '../errors';
import { entryKind } from '../io/files';
import { readJsonObject } from '../io/sideFile';
import { writeSmallFileSync } from '../io/outputFile';
import { join } from '../io/paths';
import type { WorkerTask } from '../io/workerPool';
import type { ApplyOptions, JobContext, JobOutcome } from '../jobs/types';
import { type FloatDtype, dtypeBytes, isFloatDtype, torchDtypeName } from '../safetensors/dtype';
import { type TensorSpec, planCheckpoint } from '../safetensors/writer';
import { type PlacedTensor, placeTensors } from './placement';
import { TOOL_VERSION } from '../version';
import { chunkRanges, refAt } from './chunking';
import type { CombineTask, CombineTerm, CopyBytesTask } from './combineKernel';
import { pairRatios, requireSameNames, requireSameShapes, sameShape } from './inputChecks';
import { modelCard, writeModelFiles } from './modelFiles';
import { type ApplyVocabulary, rebuildApplyVocabulary } from './applyVocabulary';
import { addTokensToOutput } from '../vocab/tokenizerOutput';
import { cardLabel, hubInputLines, hubSources } from '../hub/provenance';
import { JobInputs } from './jobInputs';
import { runOutputJob } from './outputJob';
import { type NonFinitePolicy, nonFiniteHint } from './nonFinite';
import { type ComputeJobContext, type ComputeScope, withCompute } from './computeSelection';

export const DEFAULT_MAX_SHARD_BYTES = 5e9;
/** Bytes per task when non-float tensors are copied. */
const COPY_PIECE_BYTES = 4 << 20;

/**
 * One (a, b) pair of a combination: chat and base (fused) or a vector and nothing; for a LoRA
 * adapter, `a` is its weights file and `adapter` says how they make τ.
 */
interface Source {
  readonly ratio: number;
  readonly a: Checkpoint;
  readonly b: Checkpoint | null;
  readonly adapter?: Adapter;
}

/** How one output tensor is made. */
type Recipe =
  | { kind: 'combine'; name: string; target: CatalogueEntry; terms: { ratio: number; a: CatalogueEntry; b: CatalogueEntry | null }[]; lowRank: AdapterLowRank[] }
  | { kind: 'copyBytes'; name: string; target: CatalogueEntry; agree: [CatalogueEntry, CatalogueEntry][] };

/**
 * Runs apply (fused when `base` and `chats` are given, else from `vectors`).
 * @throws ChatVecError InvalidArgument (also when the arithmetic turns finite inputs into NaN/±Inf,
 *   unless opts.allowNonFinite: engine/nonFinite.ts), BadCheckpoint, Unsupported (a quantized input:
 *   checkpoint/quantization.ts), NameMismatch, ShapeMismatch, OutputExists,
 *   Io; CancelledError when ctx.signal is raised
 */
export function runApply(opts: ApplyOptions, ctx: ComputeJobContext = {}): Promise<JobOutcome> {
  return withCompute(opts.backend, ctx, (compute) => applyWith(opts, ctx, compute));
}

async function applyWith(opts: ApplyOptions, ctx: JobContext, computeScope: ComputeScope): Promise<JobOutcome> {
  const fused = opts.base !== undefined || (opts.chats?.length ?? 0) > 0;
  if (fused && opts.vectors?.length) throw new ChatVecError('InvalidArgument', 'give either --vector or --base with --chat, not both');
  if (fused && (!opts.base || !opts.chats?.length)) throw new ChatVecError('InvalidArgument', 'the fused path needs --base and at least one --chat');
  if (!fused && !opts.vectors?.length) throw new ChatVecError('InvalidArgument', 'give at least one --vector, or --base with --chat');
  const skipEmbed = opts.skipEmbed === true;
  const warnings: string[] = [];
  if (opts.tokenizerSource && (!fused || skipEmbed)) {
    throw new ChatVecError('InvalidArgument', fused ? '--tokenizer-source rebuilds the embeddings and LM head; --skip-embed leaves them out: give one of them' : '--tokenizer-source needs the fused path (--base with --chat)');
  }
  // Vocabulary tensors are checked after they are rebuilt for one vocabulary.
  const looseVocab = skipEmbed || opts.tokenizerSource !== undefined;
  let vocabulary: ApplyVocabulary | null = null;

  // Quantized inputs are refused as they are opened, before any other check or output.
  const open = (p: string) => requireUnquantized(openCheckpoint(p));
  let target = open(opts.target);
  let sources: Source[];
  let chatForFiles: string | null;
  if (fused) {
    let base = open(opts.base!);
    let chats = opts.chats!.map(openModelOrAdapter).map((c) => ('weights' in c ? adapterKeyedLike(c, base) : c));
    const ratios = pairRatios(opts.ratios, chats.length, 'chat models');
    for (const c of chats) {
      if ('weights' in c) {
        if (opts.tokenizerSource) throw new ChatVecError('InvalidArgument', `--tokenizer-source needs chat models, and ${c.path} is an adapter: merge it into its base first`);
        requireAdapterFits(c, base, (t) => skipEmbed && isVocabTensor(t));
        continue;
      }
      requireSameNames(base, c, (t) => looseVocab && isVocabTensor(t));
      requireSameShapes(base, c, looseVocab);
    }
    requireSameNames(target, base, (t) => looseVocab && isVocabTensor(t));
    requireSameShapes(target, base, looseVocab);
    if (opts.tokenizerSource) {
      const models = [target, base, ...(chats as Checkpoint[])];
      const paths = models.flatMap((c) => [c.path, ...c.shards.map((sh) => sh.path)]);
      vocabulary = rebuildApplyVocabulary(opts.tokenizerSource, target, base, chats as Checkpoint[], opts.out, opts.overwrite === true, paths);
      ({ target, base } = vocabulary);
      chats = [...vocabulary.chats];
      ctx.onLog?.('info', vocabulary.summary);
    }
    sources = chats.map((c, i) => ('weights' in c ? { ratio: ratios[i]!, a: c.weights, b: base, adapter: c } : { ratio: ratios[i]!, a: c, b: base }));
    chatForFiles = sources[sources.length - 1]!.a.folder;
  } else {
    const opened = opts.vectors!.map(openModelOrAdapter).map((v) => ('weights' in v ? adapterKeyedLike(v, target) : v));
    const ratios = pairRatios(opts.ratios, opened.length, 'vectors');
    const adapters = opened.filter((v): v is Adapter => 'weights' in v);
    for (const ad of adapters) {
      requireBaseForFullTensors(ad, null);
      requireAdapterFits(ad, target, (t) => skipEmbed && isVocabTensor(t));
    }
    const vectors = opened.map((v) => ('weights' in v ? v.weights : v));
    for (const v of opened) {
      if ('weights' in v) continue;
      const extra = v.tensors.filter((t) => !target.byName.has(t.name)).map((t) => t.name);
      if (extra.length) throw new ChatVecError('NameMismatch', `${v.path} holds tensors the target lacks: ${extra.slice(0, 12).join(', ')}${extra.length > 12 ? ' …' : ''}`);
      requireSameShapes(target, v, skipEmbed);
    }
    sources = opened.map((v, i) => ('weights' in v ? { ratio: ratios[i]!, a: v.weights, b: null, adapter: v } : { ratio: ratios[i]!, a: v, b: null }));
    chatForFiles = chatOfVector(vectors[vectors.length - 1]!);
  }

  try {
    const recipes = target.tensors.map((t) => recipeFor(t, sources, skipEmbed));
    const outDtype = (t: CatalogueEntry): FloatDtype | null => (isFloatDtype(t.dtype) ? (opts.dtype ?? t.dtype) : null);
    const specs: TensorSpec[] = target.tensors.map((t) => ({ name: t.name, dtype: outDtype(t) ?? t.dtype, shape: t.shape }));

    const specialTokens = opts.specialTokens ?? [];
    if (specialTokens.length && sources[sources.length - 1]!.adapter) {
      throw new ChatVecError('InvalidArgument', `--special-tokens copies rows of the chat model's embeddings; ${sources[sources.length - 1]!.a.path} is an adapter, not a model — merge it into its base first (chatvec apply --target BASE --vector ADAPTER) and use that as --chat`);
    }
    const rowSource = specialTokens.length ? specialTokenSource(fused ? sources[sources.length - 1]!.a : chatForFiles, target) : null;
    const read = [target, ...sources.flatMap((s) => (s.b ? [s.a, s.b] : [s.a])), ...(rowSource ? [rowSource] : [])];
    const inputs = JobInputs.check(opts.out, opts.overwrite === true, read, chatForFiles ? [chatForFiles] : []);
    const roles = sources.flatMap((s): [string, string][] => [[fused ? 'chat' : 'vector', s.a.path], ...(s.b ? [['base', s.b.path] as [string, string]] : [])]);
    for (const line of hubInputLines([['target', target.path], ...roles])) ctx.onLog?.('info', line);

    // Chosen before planning: the output's metadata names it. Sized by the bytes the kernels read.
    let readBytes = 0;
    for (const r of recipes) if (r.kind === 'combine') readBytes += r.target.byteLength + r.terms.reduce((s, t) => s + t.a.byteLength + (t.b?.byteLength ?? 0), 0) + 4 * r.lowRank.length * r.target.elementCount;
    const compute = await computeScope.select(readBytes, opts.threads);

    const metadata = {
      chatvec: JSON.stringify({
        operation: fused ? 'apply (fused)' : 'apply',
        tool: `chatvec ${TOOL_VERSION}`,
        target: target.path,
        ...(fused ? { base: sources[0]!.b!.path, chats: sources.map((s) => s.a.path) } : { vectors: sources.map((s) => s.a.path) }),
        hub_sources: hubSources(read.map((c) => c.path)),
        ratios: sources.map((s) => s.ratio),
        skip_embed: skipEmbed,
        special_tokens: specialTokens.map(([k, v]) => `${k}:${v}`),
        dtype: opts.dtype ?? 'target',
        backend: compute.label,
      }),
    };
    const plan = planCheckpoint(specs, opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES, metadata);
    const planned = placeTensors(plan);

    let totalBytes = 0;
    for (const r of recipes) totalBytes += recipeBytes(r, planned.get(r.name)!);
    const rowTasks = (fileOf: (f: string) => string) => (rowSource ? specialRowTasks(target, rowSource, specialTokens, planned, fileOf) : []);
    for (const t of rowTasks(() => '')) totalBytes += t.count * 8;
    const floatOut = recipes.flatMap((r) => (r.kind === 'combine' ? [outDtype(r.target)!] : []));
    const nonFinite: NonFinitePolicy = { allow: opts.allowNonFinite === true, hint: nonFiniteHint(sources.map((s) => ({ what: 'ratio', value: s.ratio })), floatOut), warnings };

    const res = await runOutputJob(
      {
        inputs,
        plan,
        phase: 'apply',
        threads: opts.threads,
        compute,
        nonFinite,
        totalBytes,
        tasks: (fileOf) => tasksFor(recipes, planned, fileOf),
        lateTasks: rowTasks,
        writeExtras: (file) => {
          const uniform = opts.dtype ?? dominantFloatDtype(target);
          writeModelFiles({ target: target.folder, chat: chatForFiles, torchDtype: uniform ? torchDtypeName(uniform) : null, warnings, ...(vocabulary ? { tokenizer: vocabulary.tokenizerFolder, vocabSize: vocabulary.outRows } : {}) }, file);
        if (vocabulary) addTokensToOutput(file, vocabulary.vocab.added);
          writeModelCardFile(file, target, sources, fused, opts, warnings);
        },
      },
      ctx,
    );
    for (const w of warnings) ctx.onLog?.('warn', w);
    return { out: opts.out, tensorCount: specs.length, bytesWritten: res.bytesWritten, seconds: res.seconds, backend: res.backend, warnings };
  } finally {
    vocabulary?.dispose();
  }
}

function recipeFor(t: CatalogueEntry, sources: readonly Source[], skipEmbed: boolean): Recipe {
  if (!isFloatDtype(t.dtype)) {
    const agree: [CatalogueEntry, CatalogueEntry][] = [];
    for (const s of sources) {
      const a = s.a.byName.get(t.name);
      const b = s.b?.byName.get(t.name);
      if (!a || !b) continue;
      // The bytes of base and chat are compared as the target's: they must be stored the same way.
      if (a.dtype !== t.dtype || b.dtype !== t.dtype) {
        throw new ChatVecError('ShapeMismatch', `tensor "${t.name}" is ${t.dtype} in the target but ${b.dtype} in ${s.b!.path} and ${a.dtype} in ${s.a.path}; cannot combine it`);
      }
      agree.push([b, a]);
    }
    return { kind: 'copyBytes', name: t.name, target: t, agree };
  }
  const terms: { ratio: number; a: CatalogueEntry; b: CatalogueEntry | null }[] = [];
  const lowRank: AdapterLowRank[] = [];
  if (!(skipEmbed && isVocabTensor(t))) {
    for (const s of sources) {
      if (s.adapter) {
        addAdapterTerms(s.adapter, s.ratio, s.b, t, terms, lowRank);
        continue;
      }
      const a = s.a.byName.get(t.name);
      if (!a) {
        if (s.b === null && isVocabTensor(t)) continue; // vector extracted with --skip-embed
        throw new ChatVecError('NameMismatch', `${s.a.path} has no tensor "${t.name}"`);
      }
      if (!isFloatDtype(a.dtype)) throw new ChatVecError('ShapeMismatch', `tensor "${t.name}" is ${t.dtype} in the target but ${a.dtype} in ${s.a.path}`);
      const b = s.b ? s.b.byName.get(t.name)! : null;
      if (b && !isFloatDtype(b.dtype)) throw new ChatVecError('ShapeMismatch', `tensor "${t.name}" is ${t.dtype} in the target but ${b.dtype} in ${s.b!.path}`);
      if (!sameShape(a.shape, t.shape)) throw new ChatVecError('ShapeMismatch', `tensor "${t.name}": ${JSON.stringify(t.shape)} in the target vs ${JSON.stringify(a.shape)} in ${s.a.path}`);
      terms.push({ ratio: s.ratio, a, b });
    }
  }
  return { kind: 'combine', name: t.name, target: t, terms, lowRank };
}

/** A PEFT adapter folder (adapter_config.json) as an adapter, anything else as a checkpoint. */
function openModelOrAdapter(path: string): Checkpoint | Adapter {
  return isAdapterFolder(path) ? openAdapter(path) : requireUnquantized(openCheckpoint(path));
}

function recipeBytes(r: Recipe, out: PlacedTensor): number {
  if (r.kind === 'copyBytes') return out.byteLength * (2 + 2 * r.agree.length);
  let bytes = r.target.byteLength + out.byteLength + 4 * r.lowRank.length * r.target.elementCount;
  for (const t of r.terms) bytes += t.a.byteLength + (t.b?.byteLength ?? 0);
  return bytes;
}

function* tasksFor(recipes: readonly Recipe[], planned: ReadonlyMap<string, PlacedTensor>, fileOf: (f: string) => string): Generator<WorkerTask> {
  for (const r of recipes) {
    const out = planned.get(r.name)!;
    if (r.kind === 'copyBytes') {
      // In pieces, like the float tensors: a large non-float tensor (quantized weights) is never
      // held whole in a worker's memory.
      const at = (x: { file: string; position: number; dtype: CatalogueEntry['dtype'] }, off: number) => ({ file: x.file, position: x.position + off, dtype: x.dtype });
      const dest = { file: fileOf(out.fileName), position: out.position, dtype: out.dtype };
      for (let off = 0; off < out.byteLength; off += COPY_PIECE_BYTES) {
        const task: CopyBytesTask = {
          kind: 'copyBytes',
          byteLength: Math.min(COPY_PIECE_BYTES, out.byteLength - off),
          source: at(r.target, off),
          mustAgree: r.agree.map(([x, y]) => [at(x, off), at(y, off)] as const),
          tensor: r.name,
          out: at(dest, off),
        };
        yield task;
      }
      continue;
    }
    for (const [first, count] of chunkRanges(out.elementCount)) {
      const terms: CombineTerm[] = r.terms.map((t) => ({ ratio: t.ratio, a: refAt(t.a, first), b: t.b ? refAt(t.b, first) : null }));
      const task: CombineTask = {
        kind: 'combine',
        count,
        target: refAt(r.target, first),
        terms,
        out: { file: fileOf(out.fileName), position: out.position + first * dtypeBytes(out.dtype), dtype: out.dtype as FloatDtype },
        ...(r.lowRank.length ? { lowRank: r.lowRank.map((l) => lowRankTermAt(l, first, count)) } : {}),
      };
      yield task;
    }
  }
}

/** The chat model a vector was extracted from (its chatvector.json), for template and rows. */
function chatOfVector(v: Checkpoint): string | null {
  const p = join(v.folder, 'chatvector.json');
  if (entryKind(p) !== 'file') return null;
  const chat = readJsonObject(p).chat;
  return typeof chat === 'string' && entryKind(chat) === 'dir' ? chat : null;
}

/** Tensors whose rows `--special-tokens` copies: token embeddings and LM heads (weights, biases). */
function specialTokenRows(t: CatalogueEntry): boolean {
  return isVocabTensor(t) && (t.shape.length === 1 || t.shape.length === 2);
}

function specialTokenSource(chat: Checkpoint | string | null, target: Checkpoint): Checkpoint {
  if (chat === null) {
    throw new ChatVecError('InvalidArgument', '--special-tokens needs the chat model; the vector\'s chatvector.json does not name an existing chat folder');
  }
  const c = typeof chat === 'string' ? openCheckpoint(chat) : chat;
  for (const t of target.tensors) {
    if (!specialTokenRows(t)) continue;
    const u = rowsCounterpart(c, t);
    if (!u) throw new ChatVecError('NameMismatch', `--special-tokens: ${c.path} has no tensor "${t.name}"`);
    if (u.shape.length !== t.shape.length || t.shape.length > 2 || u.shape[1] !== t.shape[1]) {
      throw new ChatVecError('ShapeMismatch', `--special-tokens: rows of "${t.name}" differ in width (${JSON.stringify(t.shape)} vs ${JSON.stringify(u.shape)})`);
    }
    if (!isFloatDtype(u.dtype)) throw new ChatVecError('ShapeMismatch', `--special-tokens: "${t.name}" is not a float tensor in ${c.path}`);
  }
  return c;
}

/** Row copies chat[v] → out[k] for input embeddings and LM head (after the main pass). */
function specialRowTasks(
  target: Checkpoint,
  chat: Checkpoint,
  pairs: readonly (readonly [number, number])[],
  planned: ReadonlyMap<string, PlacedTensor>,
  fileOf: (f: string) => string,
): CombineTask[] {
  const tasks: CombineTask[] = [];
  for (const t of target.tensors) {
    if (!specialTokenRows(t)) continue;
    const u = rowsCounterpart(chat, t)!;
    const out = planned.get(t.name)!;
    const cols = t.shape[1] ?? 1; // an LM head's bias has one value per row
    for (const [k, v] of pairs) {
      if (!Number.isInteger(k) || k < 0 || k >= t.shape[0]!) throw new ChatVecError('InvalidArgument', `--special-tokens ${k}:${v}: row ${k} is outside "${t.name}" of the target (${t.shape[0]} rows)`);
      if (!Number.isInteger(v) || v < 0 || v >= u.shape[0]!) throw new ChatVecError('InvalidArgument', `--special-tokens ${k}:${v}: row ${v} is outside "${t.name}" of the chat model (${u.shape[0]} rows)`);
      tasks.push({
        kind: 'combine',
        count: cols,
        target: refAt(u, v * cols),
        terms: [],
        out: { file: fileOf(out.fileName), position: out.position + k * cols * dtypeBytes(out.dtype), dtype: out.dtype as FloatDtype },
      });
    }
  }
  return tasks;
}

/** The float dtype holding most parameters (for config.json's torch_dtype). */
export function dominantFloatDtype(c: Checkpoint): FloatDtype | null {
  const count = new Map<FloatDtype, number>();
  for (const t of c.tensors) if (isFloatDtype(t.dtype)) count.set(t.dtype, (count.get(t.dtype) ?? 0) + t.elementCount);
  let best: FloatDtype | null = null;
  for (const [d, n] of count) if (best === null || n > count.get(best)!) best = d;
  return best;
}

function writeModelCardFile(file: (n: string) => string, target: Checkpoint, sources: readonly Source[], fused: boolean, opts: ApplyOptions, warnings: readonly string[]): void {
  const lines = [
    'This model was made with [Chat Vector](https://arxiv.org/abs/2310.04799) weight arithmetic by `chatvec`:',
    '',
    '    θ_out = θ_target + Σ rᵢ · (θ_chatᵢ − θ_base)',
    '',
    `- target (continually pretrained): ${cardLabel(target.path)}`,
    ...(fused
      ? [`- base: ${cardLabel(sources[0]!.b!.path)}`, ...sources.map((s) => `- chat: ${cardLabel(s.a.path)}, ratio ${s.ratio}`)]
      : sources.map((s) => `- chat vector: ${cardLabel(s.a.path)}, ratio ${s.ratio}`)),
    `- input embeddings and LM head: ${opts.skipEmbed ? 'taken from the target unchanged (--skip-embed)' : 'combined like every other tensor'}`,
    ...(opts.specialTokens?.length ? [`- special-token rows (target:chat) copied from the chat model: ${opts.specialTokens.map(([k, v]) => `${k}:${v}`).join(', ')}`] : []),
    `- arithmetic in float32, one rounding to ${opts.dtype ?? "the target's dtype"}`,
    `- tool: chatvec ${TOOL_VERSION}`,
    ...(warnings.length ? ['', 'Warnings:', ...warnings.map((w) => `- ${w}`)] : []),
  ];
  writeSmallFileSync(file('README.md'), modelCard('Chat Vector merge', lines));
}
