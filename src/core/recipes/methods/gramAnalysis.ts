/**
 * The analysis pass of model_stock and nuslerp over whole tensors (gram.ts): the Gram matrix of
 * the vectors vᵢ summed chunk by chunk on the worker pool, in chunk order (so the coefficients do
 * not depend on the thread count), then each tensor's coefficients. Tensors merged per row
 * (`filter_wise`, `nuslerp_flatten: false`) need no pass: the write pass reads whole rows.
 */
import { chunkRanges, refAt } from '../../engine/chunking';
import { CancelledError } from '../../errors';
import { WorkerPool } from '../../io/workerPool';
import { ProgressMeter } from '../../jobs/progressMeter';
import type { JobContext } from '../../jobs/types';
import type { RecipeStatsResult, RecipeStatsTask } from '../kernels';
import { type MergePlan, type PlannedTensor, inputBytes } from '../plan';
import { type Coefficients, type GramRule, coefficientsOf } from './gram';
import { nuslerpT } from './nuslerp';
import { perColumn } from './nuslerpColumns';

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

/** How a tensor's coefficients are made from a Gram matrix. */
export function gramRule(plan: MergePlan, t: PlannedTensor): GramRule {
  if (plan.method === 'karcher') return { method: 'karcher', maxIter: Number(t.options?.max_iter ?? 10), tol: Number(t.options?.tol ?? 1e-5) };
  if (plan.method !== 'nuslerp') return { method: 'model_stock' };
  const [a, b] = gramModels(plan, t);
  return { method: 'nuslerp', t: nuslerpT(t.weights[a!]!, t.weights[b!]!) };
}

/** Whether a tensor is merged per row (its coefficients made in the write pass); column-mode tensors of 2 or more dimensions are not. */
export function perRow(plan: MergePlan, t: PlannedTensor): boolean {
  return plan.method === 'nuslerp' ? t.options?.nuslerp_flatten === false && !perColumn(plan, t) : t.options?.filter_wise === true;
}

/**
 * Runs the pass over every merged whole-tensor tensor of the plan.
 * @returns coefficients by tensor index (absent: per row, or nothing to merge)
 * @throws CancelledError when ctx.signal is raised
 */
export async function analyseGram(plan: MergePlan, chunk: number, threads: number, ctx: JobContext): Promise<Map<number, Coefficients>> {
  const tensors = plan.tensors.map((t, ti) => (t.kind === 'merge' && t.elementCount > 0 && !perRow(plan, t) && !perColumn(plan, t) ? ti : -1)).filter((ti) => ti >= 0);
  const out = new Map<number, Coefficients>();
  if (!tensors.length) return out;
  const sums = new Map(tensors.map((ti) => [ti, [] as Float64Array[]]));
  const meter = new ProgressMeter('analyse', tensors.reduce((a, ti) => a + plan.tensors[ti]!.inputs.reduce((s, i) => s + inputBytes(i.entry, plan.tensors[ti]!.elementCount), 0), 0), ctx.onProgress);
  const pool = new WorkerPool(threads);
  const cancelled = () => ctx.signal?.cancelled === true;
  function* jobs(): Generator<Job> {
    for (const ti of tensors) {
      const t = plan.tensors[ti]!;
      let c = 0;
      for (const [first, count] of chunkRanges(t.elementCount, chunk)) {
        const models = gramModels(plan, t).map((i) => refAt(t.inputs[i]!.entry, first));
        const b = gramBase(plan, t);
        const base = b !== null ? refAt(t.inputs[b]!.entry, first) : models[0]!;
        yield { kind: 'recipeStats', mode: 'gram', gramBase: b !== null, count, first, base, models, stats: [], tensor: ti, chunk: c++ };
      }
    }
  }
  try {
    await pool.runAll<Job, RecipeStatsResult>(
      jobs(),
      (job, r) => {
        meter.add(r.bytes);
        if (r.mode === 'gram') sums.get(job.tensor)![job.chunk] = r.gram;
      },
      cancelled,
    );
    if (cancelled()) throw new CancelledError();
    meter.finish();
  } finally {
    await pool.close();
  }
  for (const ti of tensors) {
    const t = plan.tensors[ti]!;
    const k = gramModels(plan, t).length;
    const g = new Float64Array(k * k);
    for (const part of sums.get(ti)!) for (let j = 0; j < g.length; j++) g[j]! += part[j]!;
    out.set(ti, coefficientsOf(gramRule(plan, t), g, k));
  }
  return out;
}
