/**
 * The analysis pass shared by the Gram methods (model_stock, nuslerp, karcher; gramAnalysis.ts
 * over whole tensors, nuslerpColumns.ts per column): which inputs make a tensor's vectors, and
 * the pass that sums their Gram matrices chunk by chunk on the worker pool. Each chunk's partial
 * sums are kept by chunk index and added in chunk order afterwards, so the coefficients do not
 * depend on the thread count.
 */
import { chunkRanges, refAt } from '../../engine/chunking';
import { CancelledError } from '../../errors';
import { WorkerPool } from '../../io/workerPool';
import { ProgressMeter } from '../../jobs/progressMeter';
import type { JobContext } from '../../jobs/types';
import type { RecipeStatsResult, RecipeStatsTask } from '../kernels';
import { type MergePlan, type PlannedTensor, inputBytes } from '../plan';

type Job = RecipeStatsTask & { readonly tensor: number; readonly chunk: number };

/** The base input of a tensor's vectors vᵢ = mᵢ − base; null: the vectors are the inputs (karcher counts the base as one). */
export function gramBase(plan: MergePlan, t: PlannedTensor): number | null {
  return plan.method === 'karcher' ? null : t.baseIndex;
}

/** The inputs whose vectors make the Gram matrix, in order: every input but the base. */
export function gramModels(plan: MergePlan, t: PlannedTensor): number[] {
  const base = gramBase(plan, t);
  return t.inputs.map((_, i) => i).filter((i) => i !== base);
}

/** What a pass sums: whole-tensor Gram matrices, or one 2×2 Gram matrix per column (`stride` columns). */
export type GramPassMode = { readonly mode: 'gram' } | { readonly mode: 'columnGram'; readonly stride: (t: PlannedTensor) => number };

/**
 * Sums the Gram matrices of the given tensors of the plan (indices into plan.tensors) on `threads`
 * worker threads, `chunk` elements per task.
 * @returns per tensor index, the partial sums (float64) of its chunks in chunk order
 * @throws CancelledError when ctx.signal is raised
 */
export async function gramPartialSums(plan: MergePlan, tensors: readonly number[], how: GramPassMode, chunk: number, threads: number, ctx: JobContext): Promise<Map<number, Float64Array[]>> {
  const parts = new Map(tensors.map((ti) => [ti, [] as Float64Array[]]));
  if (!tensors.length) return parts;
  const bytes = tensors.reduce((a, ti) => a + plan.tensors[ti]!.inputs.reduce((s, i) => s + inputBytes(i.entry, plan.tensors[ti]!.elementCount), 0), 0);
  const meter = new ProgressMeter('analyse', bytes, ctx.onProgress);
  const pool = new WorkerPool(threads);
  const cancelled = () => ctx.signal?.cancelled === true;
  function* jobs(): Generator<Job> {
    for (const ti of tensors) {
      const t = plan.tensors[ti]!;
      const b = gramBase(plan, t);
      const mode = how.mode === 'gram' ? { mode: 'gram' as const } : { mode: 'columnGram' as const, stride: how.stride(t) };
      let c = 0;
      for (const [first, count] of chunkRanges(t.elementCount, chunk)) {
        const models = gramModels(plan, t).map((i) => refAt(t.inputs[i]!.entry, first));
        const base = b !== null ? refAt(t.inputs[b]!.entry, first) : models[0]!;
        yield { kind: 'recipeStats', ...mode, gramBase: b !== null, count, first, base, models, stats: [], tensor: ti, chunk: c++ };
      }
    }
  }
  try {
    await pool.runAll<Job, RecipeStatsResult>(
      jobs(),
      (job, r) => {
        meter.add(r.bytes);
        if ((r.mode === 'gram' || r.mode === 'columnGram') && r.mode === how.mode) parts.get(job.tensor)![job.chunk] = r.gram;
      },
      cancelled,
    );
    if (cancelled()) throw new CancelledError();
    meter.finish();
  } finally {
    await pool.close();
  }
  return parts;
}
