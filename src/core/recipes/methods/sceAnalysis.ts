/**
 * sce's analysis passes (see sce.ts), each streaming chunk by chunk on the worker pool and combined
 * in chunk order, so the decisions do not depend on the thread count:
 * 1. (select_topk < 1) the variance across the task vectors, histogrammed by its upper 16 bits,
 *    and the count of non-zero variances, which sets k;
 * 2. (select_topk < 1) the lower 16 bits inside the k-th largest's bucket: the exact cut (topK.ts);
 * 3. Σ τ̂ᵢ² per model over the selected elements: the weights.
 */
import { chunkRanges, refAt } from '../../engine/chunking';
import { CancelledError } from '../../errors';
import { WorkerPool } from '../../io/workerPool';
import { ProgressMeter } from '../../jobs/progressMeter';
import type { JobContext } from '../../jobs/types';
import { gtaModels } from '../analysis';
import type { RecipeStatsResult, RecipeStatsTask } from '../kernels';
import type { TopCut } from '../topCut';
import { type MergePlan, type PlannedTensor, inputBytes } from '../plan';
import { type CutDecision, EMPTY_CUT, type LowHistogram, cutDecision, highCut, inOrder } from '../topK';
import { type SceChunk, sceWeights } from './sce';

type Job = RecipeStatsTask & { readonly tensor: number; readonly chunk: number };

/** Per tensor (by index in plan.tensors): the write pass's input for chunk c. */
export type SceDecisions = Map<number, (chunk: number) => SceChunk>;

function* jobs(plan: MergePlan, tensors: readonly number[], chunk: number, task: (ti: number, c: number) => Pick<RecipeStatsTask, 'mode' | 'sceHigh' | 'sceCut'>): Generator<Job> {
  for (const ti of tensors) {
    const t = plan.tensors[ti]!;
    let c = 0;
    for (const [first, count] of chunkRanges(t.elementCount, chunk)) {
      const models = gtaModels(t).map((i) => refAt(t.inputs[i]!.entry, first));
      yield { kind: 'recipeStats', count, first, base: refAt(t.inputs[t.baseIndex!]!.entry, first), models, stats: [], ...task(ti, c), tensor: ti, chunk: c++ };
    }
  }
}

function readBytes(t: PlannedTensor): number {
  return t.inputs.reduce((a, i) => a + inputBytes(i.entry, t.elementCount), 0);
}

/**
 * Runs sce's passes over every merged tensor of the plan.
 * @throws CancelledError when ctx.signal is raised
 */
export async function analyseSce(plan: MergePlan, chunk: number, threads: number, ctx: JobContext): Promise<SceDecisions> {
  const tensors = plan.tensors.map((t, ti) => (t.kind === 'merge' && t.elementCount > 0 ? ti : -1)).filter((ti) => ti >= 0);
  const topk = (ti: number) => plan.tensors[ti]!.selectTopk ?? 1;
  const selecting = tensors.filter((ti) => topk(ti) > 0 && topk(ti) < 1);
  const nChunks = (ti: number) => Math.ceil(plan.tensors[ti]!.elementCount / chunk);
  const cuts = new Map<number, CutDecision>();
  for (const ti of tensors) if (topk(ti) <= 0) cuts.set(ti, EMPTY_CUT); // mergekit: select_topk ≤ 0 keeps nothing
  const total = tensors.reduce((a, ti) => a + readBytes(plan.tensors[ti]!), 0) + 2 * selecting.reduce((a, ti) => a + readBytes(plan.tensors[ti]!), 0);
  const meter = new ProgressMeter('analyse', total, ctx.onProgress);
  const pool = new WorkerPool(threads);
  const cancelled = () => ctx.signal?.cancelled === true;
  const run = async (ts: readonly number[], task: Parameters<typeof jobs>[3], onResult: (job: Job, r: RecipeStatsResult) => void) => {
    await pool.runAll<Job, RecipeStatsResult>(jobs(plan, ts, chunk, task), (job, r) => (meter.add(r.bytes), onResult(job, r)), cancelled);
    if (cancelled()) throw new CancelledError();
  };
  try {
    // Pass 1: upper 16 bits of the variance, and how many variances are not 0.
    const high = new Map(selecting.map((ti) => [ti, { hist: new Float64Array(32768), nonzero: 0 }]));
    await run(selecting, () => ({ mode: 'sceVariance' }), (job, r) => {
      if (r.mode !== 'sceVariance') return;
      const h = high.get(job.tensor)!;
      for (let j = 0; j < r.buckets.length; j++) h.hist[r.buckets[j]!]! += r.counts[j]!;
      h.nonzero += r.nonzero;
    });
    const states = new Map(selecting.map((ti) => [ti, highCut(high.get(ti)!.hist, Math.floor(high.get(ti)!.nonzero * topk(ti)))]));
    high.clear();
    for (const [ti, st] of states) if (st.k === 0) cuts.set(ti, EMPTY_CUT);
    // Pass 2: lower 16 bits inside the cut's bucket.
    const refining = selecting.filter((ti) => states.get(ti)!.k > 0);
    const lows = new Map(refining.map((ti) => [ti, new Array<LowHistogram | null>(nChunks(ti)).fill(null)]));
    await run(refining, (ti) => ({ mode: 'sceVariance', sceHigh: states.get(ti)!.high }), (job, r) => {
      if (r.mode === 'sceVariance') lows.get(job.tensor)![job.chunk] = { buckets: r.buckets, counts: r.counts, l1: 0 };
    });
    for (const ti of refining) cuts.set(ti, cutDecision(states.get(ti)!, lows.get(ti)!, nChunks(ti)));
    lows.clear();
    // Pass 3: Σ τ̂ᵢ² per model over the selected elements.
    const cutAt = (ti: number, c: number): TopCut | null => cuts.get(ti)?.perChunk(c) ?? null;
    const squares = new Map(tensors.map((ti) => [ti, gtaModels(plan.tensors[ti]!).map(() => new Array<number>(nChunks(ti)).fill(0))]));
    await run(tensors, (ti, c) => ({ mode: 'sceSquares', sceCut: cutAt(ti, c) }), (job, r) => {
      if (r.mode === 'sceSquares') r.sums.forEach((s, k) => (squares.get(job.tensor)![k]![job.chunk] = s));
    });
    meter.finish();
    const decisions: SceDecisions = new Map();
    for (const ti of tensors) {
      const weights = sceWeights(squares.get(ti)!.map(inOrder), plan.tensors[ti]!.elementCount);
      decisions.set(ti, (c) => ({ cut: cutAt(ti, c), weights }));
    }
    return decisions;
  } finally {
    await pool.close();
  }
}
