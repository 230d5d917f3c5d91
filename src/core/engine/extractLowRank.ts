/**
 * extract --rank: τ = chat − base written as a PEFT LoRA adapter. Every 2-D weight is factored
 * (lowRankTask.ts, one matrix per worker task) into lora_A/lora_B (lora_embedding_A/B for
 * embeddings) of adapter_model.safetensors; what LoRA cannot express — 1-D tensors (norms,
 * biases), tensors of other ranks, 2-D tensors that are not a module's weight — is stored exactly
 * in chatvec_deltas.safetensors, which `apply --vector DIR` adds as plain τ (PEFT and vLLM ignore
 * it). Ranks are known only after factoring (--energy), so the workers write their factors into a
 * scratch file inside the temporary output folder and the adapter file is assembled from it.
 *
 * The output rules are the other jobs' (JobInputs, AtomicOutputDir): nothing appears at --out
 * unless the whole adapter was written, an input that changes fails the job.
 *
 * With a GPU selected (--backend gpu, or auto above the threshold) the factorisations run on the
 * main thread with their GEMMs on the GPU (lowRankGpu.ts); the side file's differences stay in
 * the worker pool.
 */
import { architectureNamed } from '../checkpoint/architectures';
import type { CatalogueEntry } from '../checkpoint/checkpoint';
import { CancelledError, ChatVecError } from '../errors';
import { AtomicOutputDir } from '../io/atomicOutput';
import { OutputFile, removeFileSync, writeSmallFileSync } from '../io/outputFile';
import { PositionalFile } from '../io/positionalFile';
import { type WorkerTask, WorkerPool } from '../io/workerPool';
import { ProgressMeter } from '../jobs/progressMeter';
import { threadCount } from '../jobs/threadLimit';
import type { ExtractOptions, JobOutcome } from '../jobs/types';
import { DELTAS_FILE } from '../lora/adapter';
import { ADAPTER_CONFIG } from '../lora/adapterConfig';
import { ADAPTER_WEIGHTS, EXTRACT_REPORT, type PeftLayout, peftAdapterConfig, peftFactorKeys, peftFactorShapes } from '../lora/adapterWriter';
import { type TensorSpec, createPlannedFile, planSafetensorsFile } from '../safetensors/writer';
import { TOOL_VERSION } from '../version';
import type { ChunkRef } from './chunking';
import { type ComputeJobContext, type ComputeScope, withCompute } from './computeSelection';
import { GpuExecutor } from './gpuExecutor';
import { lowRankOnGpu } from './lowRankGpu';
import { differenceTasks, openExtractInputs } from './extractInputs';
import { energyReport } from './energyReport';
import { JobInputs } from './jobInputs';
import { type LowRankFactorResult, type LowRankFactorTask } from './lowRankTask';
import { type MatrixReport, type LowRankReport, lowRankCard, summarizeMatrices } from './lowRankReport';
import { type ChunkResult, NonFiniteTally, nonFiniteHint } from './nonFinite';

/** Sketch columns beyond the rank, and the fewest power iterations (Halko et al. recommend ≥ 10 and ≥ 1–2). */
export const OVERSAMPLE = 10;
export const MIN_POWER_ITERATIONS = 2;
const SCRATCH = '.chatvec-factors.tmp';
// rank_pattern keys as PEFT writes them: module names (PEFT would read other keys as regular expressions).
const MODULE_KEY = /^[A-Za-z0-9_.]+$/;

interface Matrix {
  readonly t: CatalogueEntry;
  readonly module: string;
  readonly layout: PeftLayout;
  readonly maxRank: number;
  /** Byte position of its room in the scratch file. */
  readonly scratch: number;
}

/**
 * How PEFT would hold τ of this tensor: a Linear, Embedding or (GPT-2) Conv1D module's weight; null:
 * not expressible (side file). GPT-2's LM head is a Linear among Conv1D layers: an adapter has one
 * fan_in_fan_out for all its modules, so its τ goes to the side file.
 */
function peftLayoutOf(t: CatalogueEntry, family: string): PeftLayout | null {
  if (t.shape.length !== 2 || !t.name.endsWith('.weight')) return null;
  if (t.group.module === 'embedding') return 'embedding';
  if (family !== 'gpt2') return 'linear';
  return t.group.module === 'lm_head' ? null : 'conv1d';
}

/**
 * The module's name as PEFT sees it in the model class transformers loads: GPT-2 files on the Hub
 * name tensors `h.0.…`, but GPT2LMHeadModel's modules are `transformer.h.0.…`.
 */
function peftModuleName(t: CatalogueEntry, aliasPrefix: string | undefined): string {
  const module = t.name.slice(0, -'.weight'.length);
  return aliasPrefix !== undefined && t.group.module !== 'lm_head' && !module.startsWith(aliasPrefix) ? aliasPrefix + module : module;
}

/** PEFT's pattern-key rule: the key is the module name or ends it after a dot. */
function matchesKey(module: string, key: string): boolean {
  return module === key || module.endsWith(`.${key}`);
}

function checkOptions(opts: ExtractOptions): { rank: number; energy: number | null; rankFor: readonly (readonly [string, number])[] } {
  const rank = opts.rank;
  if (rank === undefined || !Number.isInteger(rank) || rank < 1) throw new ChatVecError('InvalidArgument', `--rank must be a whole number ≥ 1 (got ${String(rank)}); --energy and --rank-for need it as the largest rank`);
  const energy = opts.energy ?? null;
  if (energy !== null && !(energy > 0 && energy <= 1)) throw new ChatVecError('InvalidArgument', `--energy must be in (0, 1] (got ${energy})`);
  for (const [key, r] of opts.rankFor ?? []) {
    if (!MODULE_KEY.test(key)) throw new ChatVecError('InvalidArgument', `--rank-for ${key}=${r}: the pattern must be a module name or its end (letters, digits, _ and .), as PEFT's rank_pattern keys`);
    if (!Number.isInteger(r) || r < 1) throw new ChatVecError('InvalidArgument', `--rank-for ${key}=${r}: the rank must be a whole number ≥ 1`);
  }
  if (opts.dtype !== undefined && opts.dtype !== 'F32') throw new ChatVecError('InvalidArgument', `extract --rank writes float32 factors (the accuracy rule is measured on them); --dtype ${opts.dtype} applies to the full extract only`);
  return { rank, energy, rankFor: opts.rankFor ?? [] };
}

/**
 * Runs extract --rank.
 * GPT-2's Conv1D weights are factored as PEFT's fan_in_fan_out LoRA (`fan_in_fan_out: true`).
 * @throws ChatVecError InvalidArgument (bad options; τ with NaN/±Inf in a factored matrix; NaN/±Inf
 *   produced in the side file unless opts.allowNonFinite), BadCheckpoint, NameMismatch,
 *   ShapeMismatch, OutputExists, Io; CancelledError
 */
export async function runExtractLowRank(opts: ExtractOptions, ctx: ComputeJobContext = {}): Promise<JobOutcome> {
  const checked = checkOptions(opts);
  return withCompute(opts.backend, ctx, (scope) => extractLowRankWith(opts, checked, ctx, scope));
}

async function extractLowRankWith(opts: ExtractOptions, checked: ReturnType<typeof checkOptions>, ctx: ComputeJobContext, scope: ComputeScope): Promise<JobOutcome> {
  const { rank, energy, rankFor } = checked;
  const skipEmbed = opts.skipEmbed === true;
  const { base, chat, kept } = openExtractInputs(opts.base, opts.chat, skipEmbed);
  const aliasPrefix = architectureNamed(base.family)?.aliasPrefix;
  const inputs = JobInputs.check(opts.out, opts.overwrite === true, [base, chat]);

  const matrices: Matrix[] = [];
  const direct: CatalogueEntry[] = [];
  let scratchBytes = 0;
  for (const t of kept) {
    const layout = peftLayoutOf(t, base.family);
    if (!layout) {
      direct.push(t);
      continue;
    }
    const module = peftModuleName(t, aliasPrefix);
    const wanted = rankFor.find(([key]) => matchesKey(module, key))?.[1] ?? rank;
    const [m, n] = [t.shape[0]!, t.shape[1]!];
    const maxRank = Math.max(1, Math.min(wanted, m, n));
    matrices.push({ t, module, layout, maxRank, scratch: scratchBytes });
    scratchBytes += 4 * maxRank * (m + n);
  }
  if (matrices.length === 0) throw new ChatVecError('InvalidArgument', `${base.path}: no 2-D weights to factor; use the full extract`);

  const threads = threadCount(opts.threads);
  const deltasPlan = direct.length ? planSafetensorsFile(DELTAS_FILE, direct.map((t): TensorSpec => ({ name: t.name, dtype: 'F32', shape: t.shape })), { chatvec: JSON.stringify({ operation: 'extract --rank (exact deltas)', tool: `chatvec ${TOOL_VERSION}` }) }) : null;
  const totalBytes = matrices.reduce((s, x) => s + 2 * x.t.byteLength + 4 * x.maxRank * (x.t.shape[0]! + x.t.shape[1]!), 0) + direct.reduce((s, t) => s + 2 * t.byteLength + 4 * t.elementCount, 0);
  const warnings: string[] = [];
  const compute = await scope.select(totalBytes, opts.threads);
  const dir = AtomicOutputDir.begin(inputs.out, { overwrite: inputs.overwrite, inputs: inputs.paths, writtenBy: `chatvec ${TOOL_VERSION} extract --rank` });
  let pool: WorkerPool | null = null;
  let gpu: GpuExecutor | null = null;
  try {
    const scratchPath = dir.file(SCRATCH);
    OutputFile.create(scratchPath, scratchBytes).close();
    if (deltasPlan) createPlannedFile(dir.file(DELTAS_FILE), deltasPlan).close();
    const tally = new NonFiniteTally('extract', { files: deltasPlan ? [deltasPlan] : [], index: null, totalTensorBytes: 0 }, (f) => dir.file(f), { allow: opts.allowNonFinite === true, hint: nonFiniteHint([], ['F32']), warnings });
    const meter = new ProgressMeter('extract', totalBytes, ctx.onProgress);
    const results = new Map<string, LowRankFactorResult>();
    const cancelled = () => ctx.signal?.cancelled === true;

    function* tasks(): Generator<WorkerTask> {
      for (const pt of deltasPlan?.tensors ?? []) yield* differenceTasks(base.byName.get(pt.name)!, chat, { file: dir.file(DELTAS_FILE), position: pt.position, dtype: 'F32' });
      // Largest first, so no thread is left with a big matrix at the end; the factors do not depend on the order.
      for (const x of [...matrices].sort((p, q) => q.t.elementCount - p.t.elementCount)) {
        const c = chat.byName.get(x.t.name)!;
        const ref = (e: CatalogueEntry): ChunkRef => ({ file: e.file, position: e.position, dtype: e.dtype });
        const task: LowRankFactorTask = {
          kind: 'lowRankFactor',
          tensor: x.t.name,
          rows: x.t.shape[0]!,
          cols: x.t.shape[1]!,
          count: x.t.elementCount,
          chat: ref(c),
          base: ref(x.t),
          maxRank: x.maxRank,
          energy,
          oversample: OVERSAMPLE,
          powerIterations: MIN_POWER_ITERATIONS,
          layout: x.layout,
          out: { file: scratchPath, position: x.scratch },
        };
        yield task;
      }
    }
    const workers = (pool = new WorkerPool(threads));
    if (compute.gpu) {
      // Each lane holds a matrix's inputs, τ and panels: two keep the GPU busy while the host works.
      gpu = new GpuExecutor({ gpu: compute.gpu, pool: workers, accelerated: lowRankOnGpu, lanes: compute.lanes ?? 2, signal: ctx.signal, onLog: ctx.onLog, onGpuFailure: compute.onGpuFailure });
    }
    let complete = false;
    const all = (function* () {
      yield* tasks();
      complete = true;
    })();
    const run = gpu ? gpu.runAll.bind(gpu) : workers.runAll.bind(workers);
    await run<ChunkResult | LowRankFactorResult>(
      all,
      (task, r) => {
        meter.add(r.bytes);
        if (task.kind === 'lowRankFactor') {
          const f = r as LowRankFactorResult;
          const name = (task as LowRankFactorTask).tensor;
          results.set(name, f);
          ctx.onLog?.('info', `${name}: rank ${f.rank}, energy ${percent(f.norm2 > 0 ? f.captured2 / f.norm2 : 1)}, relative error ${percent(f.norm2 > 0 ? Math.sqrt(f.error2 / f.norm2) : 0)}`);
        } else tally.add(r as ChunkResult, (task as { out?: { file: string; position: number } }).out);
      },
      () => cancelled() || tally.mustStop,
    );
    tally.throwIfFailed(complete);
    if (cancelled()) throw new CancelledError();
    gpu?.close();
    await workers.broadcast({ kind: 'closeHandles' });

    const reports: MatrixReport[] = matrices.map((x) => {
      const r = results.get(x.t.name)!;
      return { tensor: x.t.name, module: x.module, shape: [x.t.shape[0]!, x.t.shape[1]!], maxRank: x.maxRank, rank: r.rank, norm2: r.norm2, captured2: r.captured2, error2: r.error2, powerIterations: r.powerIterations };
    });
    const summary = summarizeMatrices(reports);
    const report: LowRankReport = {
      format: 'chatvec-lora/1',
      base: base.path,
      chat: chat.path,
      rank,
      rankFor: rankFor.map(([k, r]) => `${k}=${r}`),
      energyTarget: energy,
      skipEmbed,
      oversample: OVERSAMPLE,
      minPowerIterations: MIN_POWER_ITERATIONS,
      factorDtype: 'F32',
      scale: 1,
      split: 'B = U·√S, A = √S·Vᵀ',
      total: summary,
      matrices: reports.map((r) => ({ ...r, energy: r.norm2 > 0 ? r.captured2 / r.norm2 : 1, relativeError: r.norm2 > 0 ? Math.sqrt(r.error2 / r.norm2) : 0 })),
      exactDeltas: direct.map((t) => t.name),
      tool: `chatvec ${TOOL_VERSION}`,
    };
    assembleAdapter(dir.file(ADAPTER_WEIGHTS), scratchPath, matrices, results, report);
    removeFileSync(scratchPath);
    if (deltasPlan) OutputFile.openForWrite(dir.file(DELTAS_FILE)).syncAndClose();
    const ranks = new Map(reports.map((r) => [r.module, r.rank]));
    const fanInFanOut = matrices.some((x) => x.layout === 'conv1d');
    writeSmallFileSync(dir.file(ADAPTER_CONFIG), JSON.stringify(peftAdapterConfig(base.path, ranks, fanInFanOut), null, 2) + '\n');
    writeSmallFileSync(dir.file(EXTRACT_REPORT), JSON.stringify(report, null, 2) + '\n');
    tally.warnings();
    writeSmallFileSync(dir.file('README.md'), lowRankCard(report, warnings));
    inputs.assertUnchanged();
    dir.commit();
    meter.finish('done');
    for (const w of warnings) ctx.onLog?.('warn', w);
    const label = compute.gpu ? `${compute.label} (GEMMs; ${threads} CPU threads)` : compute.label;
    const bytesWritten = reports.reduce((s, r) => s + 4 * r.rank * (r.shape[0] + r.shape[1]), 0) + (deltasPlan ? deltasPlan.size - deltasPlan.headerBytes.length : 0);
    return {
      out: opts.out,
      tensorCount: 2 * matrices.length + direct.length,
      bytesWritten,
      seconds: meter.seconds,
      backend: label,
      warnings,
      lowRank: {
        matrices: matrices.length,
        energy: summary.energy,
        relativeError: summary.relativeError,
        byLayer: energyReport({
          base: base.path,
          chat: chat.path,
          rank,
          measured: matrices.map((x) => ({ entry: x.t, ...results.get(x.t.name)! })),
          notMatrices: direct.length,
          backend: label,
          seconds: meter.seconds,
        }),
      },
    };
  } catch (e) {
    dir.abort();
    throw e;
  } finally {
    gpu?.close();
    await pool?.close();
  }
}

/** Plans adapter_model.safetensors with the ranks found and copies each module's factors from the scratch file. */
function assembleAdapter(path: string, scratchPath: string, matrices: readonly Matrix[], results: ReadonlyMap<string, LowRankFactorResult>, report: LowRankReport): void {
  const specs: TensorSpec[] = [];
  for (const x of matrices) {
    const k = results.get(x.t.name)!.rank;
    const [aKey, bKey] = peftFactorKeys(x.module, x.layout);
    const [aShape, bShape] = peftFactorShapes(x.t.shape[0]!, x.t.shape[1]!, k, x.layout);
    specs.push({ name: aKey, dtype: 'F32', shape: aShape }, { name: bKey, dtype: 'F32', shape: bShape });
  }
  const meta = { chatvec: JSON.stringify({ operation: 'extract --rank', base: report.base, chat: report.chat, rank: report.rank, energy: report.total.energy, relative_error: report.total.relativeError, tool: report.tool }) };
  const plan = planSafetensorsFile(ADAPTER_WEIGHTS, specs, meta);
  const out = createPlannedFile(path, plan);
  const scratch = PositionalFile.openReadOnly(scratchPath);
  try {
    matrices.forEach((x, i) => {
      // A and B lie back to back in the scratch file, as in the plan.
      const a = plan.tensors[2 * i]!;
      const b = plan.tensors[2 * i + 1]!;
      const bytes = new Uint8Array(a.byteLength + b.byteLength);
      scratch.readIntoSync(bytes, x.scratch);
      out.writeAtSync(bytes, a.position);
    });
  } finally {
    scratch.close();
  }
  out.syncAndClose();
}

function percent(x: number): string {
  return `${(100 * x).toFixed(2)} %`;
}
