/**
 * The analysis passes of a merge (see run.ts for the whole): per-tensor statistics gathered chunk
 * by chunk on the worker pool before anything is written —
 *
 * 1. analyse (ties, dare with rescale, slerp): |τ| histograms by the upper 16 bits of their float32
 *    patterns, L1 sums, dot products and norms;
 * 2. refine (ties only): within the one upper-16-bit bucket that holds the k-th largest |τ|, a
 *    histogram of the lower 16 bits. Together the two give the EXACT k-th largest magnitude T and
 *    how many elements equal to T to keep — no tensor is ever held whole.
 *
 * Per-chunk results are combined in chunk order, so the decisions do not depend on the thread count.
 */
import { hashString } from '../numeric/random';
import { chunkRanges, refAt } from '../engine/chunking';
import { CancelledError } from '../errors';
import { WorkerPool } from '../io/workerPool';
import { ProgressMeter } from '../jobs/progressMeter';
import type { JobContext } from '../jobs/types';
import { type ModelStat, type ModelStatResult, type RandomDrop, type RecipeStatsResult, type RecipeStatsTask, type Sparsify, } from './kernels';
import { dellaDrop } from './methods/dellaMagprune';
import { type CutState, EMPTY_CUT, type LowHistogram, cutDecision, highCut, inOrder } from './topK';
import { methodDef } from './methods/registry';
import type { Sparsification } from './methods/method';
import { type MergePlan, type PlannedTensor, inputBytes } from './plan';
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

/**
 * Breadcrumbs' kept ranks (mergekit sparsify.py `magnitude_outliers`): of the n elements sorted by
 * |τ| descending, ranks [top, top + kept) are kept — the int(gamma·n) largest are dropped as
 * outliers (fewer when the density leaves no room), then all but int(density·n) of the rest.
 * mergekit writes the kept range as `indices[n_bot:-n_top]`, which is empty when n_top is 0 (a
 * small tensor or gamma 0), zeroing the whole task vector; chatvec drops no outliers then instead.
 */
export function outlierRanks(density: number, gamma: number, n: number): { top: number; kept: number } {
  const kept = keepCount(density, n);
  const top = Math.min(Math.floor(gamma * n), n - kept);
  return { top, kept };
}

/** The "keep the k largest" cuts of one task vector, smallest k first: [k] or [outliers, outliers + kept]. */
function magnitudeCuts(sparsification: Sparsification | null, t: PlannedTensor, inputIndex: number): number[] {
  const d = t.densities[inputIndex]!;
  if (sparsification !== 'magnitude_outliers') return [keepCount(d, t.elementCount)];
  const { top, kept } = outlierRanks(d, t.gammas![inputIndex]!, t.elementCount);
  return top > 0 ? [top, top + kept] : [kept];
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
export interface TensorDecision {
  /** GTA: per non-base model, per chunk. */
  sparsify?: ((chunk: number) => Sparsify)[];
  slerp?: [number, number];
}

/** Per-model work of a GTA tensor: the non-base inputs in order. */
export function gtaModels(t: PlannedTensor): number[] {
  return t.inputs.map((_, i) => i).filter((i) => i !== t.baseIndex);
}

/** The method's sparsification when it runs the GTA kernel (null: it does not, or keeps everything). */
function sparsificationOf(plan: MergePlan): Sparsification | null {
  return methodDef(plan.method).gta?.sparsification ?? null;
}

function isGta(plan: MergePlan): boolean {
  return sparsificationOf(plan) !== null;
}

function isMagnitude(s: Sparsification | null): boolean {
  return s === 'magnitude' || s === 'magnitude_outliers';
}



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
  /** Pass 2: per model, per chunk, the sparse low histogram and Σ|τ| above the bucket, per cut with k > 0. */
  low: (readonly LowHistogram[] | null)[][];
  slerp: { aa: number; bb: number; ab: number }[];
}

interface MagnitudeState {
  cuts: CutState[];
  l1All: number;
}

export async function analyse(plan: MergePlan, chunk: number, threads: number, ctx: JobContext): Promise<Map<number, TensorDecision>> {
  const decisions = new Map<number, TensorDecision>();
  const seed = plan.recipe.seed;
  const stats1 = new Map<number, ModelStat[]>();
  const isSlerp = plan.method === 'slerp';
  const sparsification = sparsificationOf(plan);
  plan.tensors.forEach((t, ti) => {
    // A zero-element tensor has no chunks, so nothing to analyse (nor to write).
    if (t.kind !== 'merge' || t.elementCount === 0) return;
    if (isSlerp) {
      stats1.set(ti, []);
      return;
    }
    if (!isGta(plan)) return;
    const ms = gtaModels(t).map((i): ModelStat => {
      const d = t.densities[i]!;
      if (d >= 1) return { kind: 'none' };
      if (isMagnitude(sparsification)) return { kind: 'magnitudeHigh' };
      if (sparsification === 'della_magprune') return t.rescale ? { kind: 'dellaL1', drop: dellaDrop(seed, i, t.name, d, t.epsilons![i]!, t.shape) } : { kind: 'none' };
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
        else if (r.mode === 'taskVectors') r.models.forEach((mr, m) => addModelResult(s!, m, job.chunk, mr));
        if (--s.remaining === 0) {
          state.delete(job.tensor);
          finishPass1(plan, job.tensor, s, stats1.get(job.tensor)!, decisions, magnitude, key);
        }
      },
      cancelled,
    );
    if (cancelled()) throw new CancelledError();

    // Pass 2 (magnitude trims): the lower 16 bits inside each threshold's bucket.
    const stats2 = new Map<number, ModelStat[]>();
    for (const [ti, ms] of stats1) {
      if (!magnitudeModels(ms).length) continue;
      stats2.set(ti, ms.map((m, mi) => (m.kind === 'magnitudeHigh' ? { kind: 'magnitudeLow', highs: magnitude.get(key(ti, mi))!.cuts.filter((c) => c.k > 0).map((c) => c.high) } : { kind: 'none' })));
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
              if (mr.kind === 'lows') s!.low[m]![job.chunk] = mr.lows;
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
  const sparsification = sparsificationOf(plan);
  ms.forEach((m, mi) => {
    if (m.kind !== 'magnitudeHigh') return;
    const h = s.hist[mi]!;
    const cuts = magnitudeCuts(sparsification, t, models[mi]!).map((k) => highCut(h, k));
    magnitude.set(key(ti, mi), { cuts, l1All: inOrder(s.l1[mi]!) });
    s.hist[mi] = null;
  });
  // dare: the rescale factor from the L1 sums.
  const per: ((chunk: number) => Sparsify)[] = [];
  ms.forEach((m, mi) => {
    if (m.kind === 'dropL1') {
      const scale = l1Scale(inOrder(s.l1[mi]!), inOrder(s.kept[mi]!));
      per[mi] = () => ({ kind: 'random', drop: m.drop, scale });
    } else if (m.kind === 'dellaL1') {
      const scale = l1Scale(inOrder(s.l1[mi]!), inOrder(s.kept[mi]!));
      per[mi] = () => ({ kind: 'della', drop: m.drop, scale });
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
    if (t.kind !== 'merge' || t.elementCount === 0) return;
    const models = gtaModels(t);
    const prev = decisions.get(ti)?.sparsify ?? [];
    const per = models.map((inputIndex, mi): ((c: number) => Sparsify) => {
      if (prev[mi]) return prev[mi]!;
      const d = t.densities[inputIndex]!;
      if (d >= 1) return () => ({ kind: 'none' });
      if (sparsificationOf(plan) === 'della_magprune') return () => ({ kind: 'della', drop: dellaDrop(seed, inputIndex, t.name, d, t.epsilons![inputIndex]!, t.shape), scale: 1 });
      if (!isMagnitude(sparsificationOf(plan))) return () => ({ kind: 'random', drop: randomDrop(seed, inputIndex, t.name, d), scale: 1 });
      const st = magnitude.get(`${ti}:${mi}`)!;
      const low = lowDone.get(ti)?.low[mi] ?? [];
      return magnitudeDecision(st, low, t.rescale, chunkCount(t.elementCount, chunk));
    });
    decisions.set(ti, { sparsify: per });
  });
  return decisions;
}

/**
 * A magnitude trim from its cuts: keep the k largest of the last cut, less the k largest of the
 * first when there are two (breadcrumbs' outliers); with `rescale`, to the L1 norm of the whole τ.
 */
function magnitudeDecision(st: MagnitudeState, lowPerChunk: readonly (readonly LowHistogram[] | null)[], rescale: boolean, nChunks: number): (c: number) => Sparsify {
  let lowIndex = 0;
  const cuts = st.cuts.map((cut) => {
    if (cut.k === 0) return EMPTY_CUT;
    const j = lowIndex++;
    return cutDecision(cut, lowPerChunk.map((h) => h?.[j] ?? null), nChunks);
  });
  const keep = cuts[cuts.length - 1]!;
  const exclude = cuts.length > 1 ? cuts[0]! : null;
  const scale = rescale ? l1Scale(st.l1All, keep.l1 - (exclude?.l1 ?? 0)) : 1;
  return (c) => ({ kind: 'magnitude', ...keep.perChunk(c), scale, ...(exclude ? { exclude: exclude.perChunk(c) } : {}) });
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

