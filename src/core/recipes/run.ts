/**
 * Running a planned recipe. chat_vector is the engine's fused apply (runApply). The other methods
 * run as up to three streaming passes over the inputs, every pass chunked and spread over the
 * worker pool:
 *
 * 1. analyse (ties, dare with rescale, slerp): per-tensor statistics — |τ| histograms by the upper
 *    16 bits of their float32 patterns, L1 sums, dot products and norms;
 * 2. refine (ties only): within the one upper-16-bit bucket that holds the k-th largest |τ|, a
 *    histogram of the lower 16 bits. Together the two give the EXACT k-th largest magnitude T and
 *    how many elements equal to T to keep — no tensor is ever held whole;
 * 3. write: every output chunk from its inputs, through the engine's output job (planned shards,
 *    atomic commit).
 *
 * Per-chunk results are combined in chunk order, so sums and therefore bytes do not depend on the
 * thread count; chunk sizes do not change the bytes either (only the element index matters).
 */
import { hashString } from '../demo/random';
import { runApply, DEFAULT_MAX_SHARD_BYTES } from '../engine/apply';
import { CHUNK_ELEMENTS, chunkRanges, refAt } from '../engine/chunking';
import type { ChunkRef, CombineTask, CombineTerm, CopyBytesTask } from '../engine/combineKernel';
import { modelCard, writeModelFiles } from '../engine/modelFiles';
import { runOutputJob, threadCount } from '../engine/outputJob';
import { type PlacedTensor, placeTensors } from '../engine/placement';
import { CancelledError, ChatVecError } from '../errors';
import { entryKind, readJsonObject } from '../io/files';
import { writeSmallFileSync } from '../io/outputFile';
import { dirname, join } from '../io/paths';
import { type WorkerTask, WorkerPool } from '../io/workerPool';
import { ProgressMeter } from '../jobs/progressMeter';
import type { BackendChoice, JobContext, JobOutcome } from '../jobs/types';
import { type FloatDtype, dtypeBytes, torchDtypeName } from '../safetensors/dtype';
import { type TensorSpec, planCheckpoint } from '../safetensors/writer';
import { TOOL_VERSION } from '../version';
import { type ModelStat, type ModelStatResult, type RandomDrop, type RecipeGtaTask, type RecipeStatsResult, type RecipeStatsTask, type Sparsify, bitsToFloat } from './kernels';
import { type MergePlan, type PlannedTensor, inputBytes } from './plan';

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
  /** The recipe text, saved as mergekit_config.yml in the output. */
  readonly recipeText?: string;
  /**
   * Compute backend of chat_vector recipes (the engine's fused apply; default 'auto'). The other
   * methods always run on the CPU worker pool; asking them for 'gpu' logs a warning.
   */
  readonly backend?: BackendChoice;
}

/** Seed of the drop mask of input `inputIndex` (its position in the slice's sources) for a tensor. */
export function dropSeed(seed: number, inputIndex: number, tensorName: string): number {
  return hashString(`dare:${seed}:${inputIndex}:${tensorName}`);
}

/** Drop parameters for keeping a fraction `density` of elements. */
export function randomDrop(seed: number, inputIndex: number, tensorName: string, density: number): RandomDrop {
  return { seed: dropSeed(seed, inputIndex, tensorName), keepBelow: 2 * density - 1 };
}

/** mergekit's rescale: match the L1 norm of the kept part to the whole (skipped below 1e-7). */
export function l1Scale(all: number, kept: number): number {
  return all < 1e-7 || kept < 1e-7 ? 1 : all / kept;
}

/** The k of "keep the k largest" for a density (Python's int(density · n)). */
export function keepCount(density: number, n: number): number {
  return Math.floor(density * n);
}

/** SLERP coefficients (s0 on the base, s1 on the other) from Σa², Σb², Σab, as mergekit computes them (in float64 here). */
export function slerpCoefficients(t: number, aa: number, bb: number, ab: number): [number, number] {
  const eps = 1e-8;
  const na = Math.sqrt(aa);
  const nb = Math.sqrt(bb);
  const dot = ab / ((na > eps ? na : 1) * (nb > eps ? nb : 1));
  if (Math.abs(dot) > 0.9995) return [1 - t, t];
  const theta0 = Math.acos(dot);
  const sin0 = Math.sin(theta0);
  const thetaT = theta0 * t;
  return [Math.sin(theta0 - thetaT) / sin0, Math.sin(thetaT) / sin0];
}

/** What the analysis decided for one tensor. */
interface TensorDecision {
  /** GTA: per non-base model, per chunk. */
  sparsify?: ((chunk: number) => Sparsify)[];
  slerp?: [number, number];
}

/** Per-model work of a GTA tensor: the non-base inputs in order. */
function gtaModels(t: PlannedTensor): number[] {
  return t.inputs.map((_, i) => i).filter((i) => i !== t.baseIndex);
}

function isGta(plan: MergePlan): boolean {
  return plan.method === 'ties' || plan.method === 'dare_linear' || plan.method === 'dare_ties';
}

/**
 * Runs a plan from planRecipe.
 * @throws ChatVecError (OutputExists, Io, ShapeMismatch …); CancelledError when ctx.signal is raised
 *   (nothing is left behind)
 */
export async function runMergePlan(plan: MergePlan, opts: MergeRunOptions, ctx: JobContext = {}): Promise<JobOutcome> {
  if (plan.method === 'chat_vector') return runChatVector(plan, opts, ctx);
  if (opts.backend === 'gpu') ctx.onLog?.('warn', `compute backend: ${plan.method} runs on the CPU worker pool (the GPU backend serves chat_vector recipes only)`);
  const started = performance.now();
  const chunk = opts.chunkElements ?? CHUNK_ELEMENTS;
  if (!Number.isInteger(chunk) || chunk < 1) throw new ChatVecError('InvalidArgument', `chunk size must be a whole number ≥ 1, got ${chunk}`);
  const threads = threadCount(opts.threads);
  const warnings = [...plan.warnings];
  const decisions = await analyse(plan, chunk, threads, ctx);
  const specs: TensorSpec[] = plan.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
  const metadata = {
    chatvec: JSON.stringify({ operation: `merge (${plan.method})`, tool: `chatvec ${TOOL_VERSION}`, models: [...new Set(plan.tensors.flatMap((t) => t.inputs.map((i) => i.model.path)))] }),
  };
  const cp = planCheckpoint(specs, opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES, metadata);
  const placed = placeTensors(cp);
  let totalBytes = 0;
  for (const t of plan.tensors) totalBytes += t.inputs.reduce((a, i) => a + inputBytes(i.entry, t.elementCount), 0) + placed.get(t.name)!.byteLength;
  const res = await runOutputJob(
    {
      out: opts.out,
      overwrite: opts.overwrite === true,
      plan: cp,
      phase: 'merge',
      threads,
      totalBytes,
      tasks: (fileOf) => writeTasks(plan, decisions, placed, fileOf, chunk),
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

async function runChatVector(plan: MergePlan, opts: MergeRunOptions, ctx: JobContext): Promise<JobOutcome> {
  const cv = plan.recipe.chatVector!;
  return runApply(
    {
      target: cv.target.path,
      base: cv.base.path,
      chats: cv.chats.map((c) => c.model.path),
      ratios: cv.chats.map((c) => c.ratio),
      skipEmbed: cv.skipEmbed,
      specialTokens: cv.specialTokens,
      dtype: plan.recipe.outDtype ?? undefined,
      out: opts.out,
      overwrite: opts.overwrite,
      threads: opts.threads,
      maxShardBytes: opts.maxShardBytes,
      backend: opts.backend,
    },
    ctx,
  );
}

// ---------------------------------------------------------------------------------------------
// Analysis passes

/** A stats task tagged with its tensor and chunk (two small numbers the worker ignores). */
type StatsJob = RecipeStatsTask & { readonly tensor: number; readonly chunk: number };

/** Accumulates per-chunk results of one tensor and decides when all chunks are in. */
interface TensorStats {
  remaining: number;
  /** Per model (GTA) in gtaModels order. */
  hist: (Float64Array | null)[];
  /** Per model, per chunk. */
  l1: number[][];
  kept: number[][];
  /** Pass 2: per model, per chunk, the sparse low histogram. */
  low: ({ buckets: Uint32Array; counts: Uint32Array } | null)[][];
  slerp: { aa: number; bb: number; ab: number }[];
}

interface MagnitudeState {
  k: number;
  high: number;
  above: number;
  l1All: number;
}

async function analyse(plan: MergePlan, chunk: number, threads: number, ctx: JobContext): Promise<Map<number, TensorDecision>> {
  const decisions = new Map<number, TensorDecision>();
  const seed = plan.recipe.seed;
  const stats1 = new Map<number, ModelStat[]>();
  const isSlerp = plan.method === 'slerp';
  plan.tensors.forEach((t, ti) => {
    if (t.kind !== 'merge') return;
    if (isSlerp) {
      stats1.set(ti, []);
      return;
    }
    if (!isGta(plan)) return;
    const ms = gtaModels(t).map((i): ModelStat => {
      const d = t.densities[i]!;
      if (d >= 1) return { kind: 'none' };
      if (plan.method === 'ties') return { kind: 'magnitudeHigh' };
      return t.rescale ? { kind: 'dropL1', drop: randomDrop(seed, i, t.name, d) } : { kind: 'none' };
    });
    if (ms.some((m) => m.kind !== 'none')) stats1.set(ti, ms);
  });
  const magnitude = new Map<string, MagnitudeState>();
  const key = (ti: number, m: number) => `${ti}:${m}`;

  if (stats1.size === 0) return fillDecisions(plan, decisions, magnitude, new Map(), chunk);
  const pool = new WorkerPool(threads);
  const cancelled = () => ctx.signal?.cancelled === true;
  try {
    // Pass 1
    const state = new Map<number, TensorStats>();
    let total = 0;
    for (const [ti] of stats1) total += passBytes(plan.tensors[ti]!);
    let pass2Tensors = 0;
    for (const [ti, ms] of stats1) if (ms.some((m) => m.kind === 'magnitudeHigh')) pass2Tensors += passBytes(plan.tensors[ti]!);
    const meter = new ProgressMeter('analyse', total + pass2Tensors, ctx.onProgress);
    await pool.runAll<StatsJob, RecipeStatsResult>(
      statsJobs(plan, stats1, chunk, isSlerp),
      (job, r) => {
        meter.add(r.bytes);
        const t = plan.tensors[job.tensor]!;
        let s = state.get(job.tensor);
        if (!s) {
          s = newStats(t, chunk);
          state.set(job.tensor, s);
        }
        if (r.mode === 'slerp') s.slerp[job.chunk] = r;
        else r.models.forEach((mr, m) => addModelResult(s!, m, job.chunk, mr));
        if (--s.remaining === 0) {
          state.delete(job.tensor);
          finishPass1(plan, job.tensor, s, stats1.get(job.tensor)!, decisions, magnitude, key);
        }
      },
      cancelled,
    );
    if (cancelled()) throw new CancelledError();

    // Pass 2 (ties): the lower 16 bits inside the threshold's bucket.
    const stats2 = new Map<number, ModelStat[]>();
    for (const [ti, ms] of stats1) {
      if (!magnitudeModels(ms).length) continue;
      stats2.set(ti, ms.map((m, mi) => (m.kind === 'magnitudeHigh' ? { kind: 'magnitudeLow', high: magnitude.get(key(ti, mi))!.high } : { kind: 'none' })));
    }
    const lowDone = new Map<number, TensorStats>();
    if (stats2.size) {
      await pool.runAll<StatsJob, RecipeStatsResult>(
        statsJobs(plan, stats2, chunk, false),
        (job, r) => {
          meter.add(r.bytes);
          const t = plan.tensors[job.tensor]!;
          let s = lowDone.get(job.tensor);
          if (!s) {
            s = newStats(t, chunk);
            lowDone.set(job.tensor, s);
          }
          if (r.mode === 'taskVectors') {
            r.models.forEach((mr, m) => {
              if (mr.kind !== 'hist') return;
              s!.low[m]![job.chunk] = { buckets: mr.buckets, counts: mr.counts };
              s!.l1[m]![job.chunk] = mr.l1;
            });
          }
          s.remaining--;
        },
        cancelled,
      );
      if (cancelled()) throw new CancelledError();
    }
    meter.finish();
    return fillDecisions(plan, decisions, magnitude, lowDone, chunk);
  } finally {
    await pool.close();
  }
}

function passBytes(t: PlannedTensor): number {
  return t.inputs.reduce((a, i) => a + inputBytes(i.entry, t.elementCount), 0);
}

function chunkCount(n: number, chunk: number): number {
  return Math.ceil(n / chunk);
}

function newStats(t: PlannedTensor, chunk: number): TensorStats {
  const nChunks = chunkCount(t.elementCount, chunk);
  const models = Math.max(1, gtaModels(t).length);
  return {
    remaining: nChunks,
    hist: Array.from({ length: models }, () => null),
    l1: Array.from({ length: models }, () => new Array<number>(nChunks).fill(0)),
    kept: Array.from({ length: models }, () => new Array<number>(nChunks).fill(0)),
    low: Array.from({ length: models }, () => new Array(nChunks).fill(null)),
    slerp: [],
  };
}

function addModelResult(s: TensorStats, m: number, chunkIndex: number, r: ModelStatResult): void {
  if (r.kind === 'dropL1') {
    s.l1[m]![chunkIndex] = r.all;
    s.kept[m]![chunkIndex] = r.kept;
  } else if (r.kind === 'hist') {
    const h = (s.hist[m] ??= new Float64Array(32768));
    for (let j = 0; j < r.buckets.length; j++) h[r.buckets[j]!]! += r.counts[j]!;
    s.l1[m]![chunkIndex] = r.l1;
  }
}

function magnitudeModels(ms: readonly ModelStat[]): number[] {
  return ms.map((m, i) => (m.kind === 'magnitudeHigh' ? i : -1)).filter((i) => i >= 0);
}

/** Sums per-chunk values in chunk order (the same order whatever the threads). */
function inOrder(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}

function finishPass1(
  plan: MergePlan,
  ti: number,
  s: TensorStats,
  ms: readonly ModelStat[],
  decisions: Map<number, TensorDecision>,
  magnitude: Map<string, MagnitudeState>,
  key: (ti: number, m: number) => string,
): void {
  const t = plan.tensors[ti]!;
  if (plan.method === 'slerp') {
    let aa = 0;
    let bb = 0;
    let ab = 0;
    for (const c of s.slerp) {
      aa += c.aa;
      bb += c.bb;
      ab += c.ab;
    }
    decisions.set(ti, { slerp: slerpCoefficients(t.slerpT, aa, bb, ab) });
    return;
  }
  const models = gtaModels(t);
  ms.forEach((m, mi) => {
    if (m.kind !== 'magnitudeHigh') return;
    const k = keepCount(t.densities[models[mi]!]!, t.elementCount);
    const h = s.hist[mi]!;
    let cum = 0;
    let high = 0;
    for (let b = 32767; b >= 0; b--) {
      const c = h[b]!;
      if (cum + c >= k) {
        high = b;
        break;
      }
      cum += c;
    }
    magnitude.set(key(ti, mi), { k, high, above: cum, l1All: inOrder(s.l1[mi]!) });
    s.hist[mi] = null;
  });
  // dare: the rescale factor from the L1 sums.
  const per: ((chunk: number) => Sparsify)[] = [];
  ms.forEach((m, mi) => {
    if (m.kind === 'dropL1') {
      const scale = l1Scale(inOrder(s.l1[mi]!), inOrder(s.kept[mi]!));
      per[mi] = () => ({ kind: 'random', drop: m.drop, scale });
    }
  });
  if (per.length) decisions.set(ti, { ...decisions.get(ti), sparsify: per });
}

/** Completes every tensor's decision (thresholds of ties from pass 2; defaults elsewhere). */
function fillDecisions(
  plan: MergePlan,
  decisions: Map<number, TensorDecision>,
  magnitude: Map<string, MagnitudeState>,
  lowDone: Map<number, TensorStats>,
  chunk: number,
): Map<number, TensorDecision> {
  if (!isGta(plan)) return decisions;
  const seed = plan.recipe.seed;
  plan.tensors.forEach((t, ti) => {
    if (t.kind !== 'merge') return;
    const models = gtaModels(t);
    const prev = decisions.get(ti)?.sparsify ?? [];
    const per = models.map((inputIndex, mi): ((c: number) => Sparsify) => {
      if (prev[mi]) return prev[mi]!;
      const d = t.densities[inputIndex]!;
      if (d >= 1) return () => ({ kind: 'none' });
      if (plan.method !== 'ties') return () => ({ kind: 'random', drop: randomDrop(seed, inputIndex, t.name, d), scale: 1 });
      const st = magnitude.get(`${ti}:${mi}`)!;
      const low = lowDone.get(ti)!;
      return magnitudeDecision(st, low.low[mi]!, low.l1[mi]!, t.rescale, chunkCount(t.elementCount, chunk));
    });
    decisions.set(ti, { sparsify: per });
  });
  return decisions;
}

/**
 * The exact threshold from the low histograms of the threshold bucket: T is the bit pattern of the
 * k-th largest |τ|; elements above T are kept, and of those equal to T the first `need` in element
 * order (so the kept count is exactly k, ties going to lower indexes).
 */
function magnitudeDecision(
  st: MagnitudeState,
  lowPerChunk: readonly ({ buckets: Uint32Array; counts: Uint32Array } | null)[],
  l1AbovePerChunk: readonly number[],
  rescale: boolean,
  nChunks: number,
): (c: number) => Sparsify {
  const low = new Float64Array(65536);
  for (const h of lowPerChunk) if (h) for (let j = 0; j < h.buckets.length; j++) low[h.buckets[j]!]! += h.counts[j]!;
  const want = st.k - st.above;
  let cum = 0;
  let lo = 0;
  for (let l = 65535; l >= 0; l--) {
    const c = low[l]!;
    if (cum + c >= want) {
      lo = l;
      break;
    }
    cum += c;
  }
  const threshold = ((st.high << 16) | lo) >>> 0;
  const need = want - cum;
  // Ties (elements equal to T) per chunk, then how many of them each chunk keeps.
  const keepTies: number[] = [];
  let before = 0;
  for (let c = 0; c < nChunks; c++) {
    const h = lowPerChunk[c];
    let ties = 0;
    if (h) for (let j = 0; j < h.buckets.length; j++) if (h.buckets[j] === lo) ties = h.counts[j]!;
    keepTies.push(Math.max(0, Math.min(ties, need - before)));
    before += ties;
  }
  let scale = 1;
  if (rescale) {
    let kept = inOrder(l1AbovePerChunk);
    for (let l = 65535; l > lo; l--) if (low[l]) kept += low[l]! * bitsToFloat(((st.high << 16) | l) >>> 0);
    kept += need * bitsToFloat(threshold);
    scale = l1Scale(st.l1All, kept);
  }
  return (c) => ({ kind: 'magnitude', threshold, keepTies: keepTies[c]!, scale });
}

function* statsJobs(plan: MergePlan, stats: ReadonlyMap<number, readonly ModelStat[]>, chunk: number, slerp: boolean): Generator<StatsJob> {
  for (const [ti, ms] of stats) {
    const t = plan.tensors[ti]!;
    const b = t.inputs[t.baseIndex ?? 0]!.entry;
    const models = slerp ? t.inputs.map((_, i) => i).filter((i) => i !== (t.baseIndex ?? 0)) : gtaModels(t);
    let c = 0;
    for (const [first, count] of chunkRanges(t.elementCount, chunk)) {
      const task: RecipeStatsTask = {
        kind: 'recipeStats',
        count,
        first,
        mode: slerp ? 'slerp' : 'taskVectors',
        base: refAt(b, first),
        models: models.map((i) => refAt(t.inputs[i]!.entry, first)),
        stats: slerp ? [] : ms,
      };
      yield { ...task, tensor: ti, chunk: c++ };
    }
  }
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
  decisions: ReadonlyMap<number, TensorDecision>,
  placed: ReadonlyMap<string, PlacedTensor>,
  fileOf: (f: string) => string,
  chunk: number,
): Generator<WorkerTask> {
  for (let ti = 0; ti < plan.tensors.length; ti++) {
    const t = plan.tensors[ti]!;
    const out = placed.get(t.name)!;
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
    const d = decisions.get(ti);
    const coef = plan.method === 'linear' || plan.method === 'task_arithmetic' ? foldedCoefficients(t, plan.method) : [];
    let c = 0;
    for (const [first, count] of chunkRanges(t.elementCount, chunk)) {
      const ref = (i: number) => refAt(t.inputs[i]!.entry, first);
      if (plan.method === 'linear' || plan.method === 'task_arithmetic') {
        if (plan.method === 'linear') {
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
          base: ref(t.baseIndex!),
          models: models.map(ref),
          weights: models.map((i) => t.weights[i]!),
          sparsify: models.map((_, mi) => d!.sparsify![mi]!(c)),
          consensus: plan.method !== 'dare_linear',
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

function writeExtras(plan: MergePlan, opts: MergeRunOptions, file: (name: string) => string, warnings: string[]): void {
  const dtypes = new Set(plan.tensors.filter((t) => t.kind === 'merge').map((t) => t.dtype));
  const uniform = dtypes.size === 1 ? ([...dtypes][0] as FloatDtype) : null;
  const tokFrom = plan.recipe.tokenizerFrom;
  const tokFolder = tokFrom ? (entryKind(tokFrom.path) === 'dir' ? tokFrom.path : dirname(tokFrom.path)) : plan.reference.folder;
  writeModelFiles({ target: tokFolder, chat: null, torchDtype: uniform ? torchDtypeName(uniform) : null, warnings }, file);
  const refConfig = join(plan.reference.folder, 'config.json');
  if (entryKind(refConfig) === 'file') {
    const config = readJsonObject(refConfig);
    if (uniform) config.torch_dtype = torchDtypeName(uniform);
    if (plan.outputLayers !== null) config.num_hidden_layers = plan.outputLayers;
    if (plan.outputVocab !== null) config.vocab_size = plan.outputVocab;
    writeSmallFileSync(file('config.json'), JSON.stringify(config, null, 2) + '\n');
  }
  if (opts.recipeText !== undefined) writeSmallFileSync(file('mergekit_config.yml'), opts.recipeText.endsWith('\n') ? opts.recipeText : opts.recipeText + '\n');
  const models = [...new Set(plan.tensors.flatMap((t) => t.inputs.map((i) => i.model.given)))];
  const lines = [
    `This model was merged with \`chatvec merge\` (merge method \`${plan.method}\`, mergekit-compatible recipe in \`mergekit_config.yml\`).`,
    '',
    ...models.map((m) => `- \`${m}\``),
    '',
    '- arithmetic in float32, one rounding to the output dtype',
    `- tool: chatvec ${TOOL_VERSION}`,
    ...(warnings.length ? ['', 'Warnings:', ...warnings.map((w) => `- ${w}`)] : []),
  ];
  writeSmallFileSync(file('README.md'), modelCard('Merged model', lines));
}
