/**
 * The analysis pass of model_stock, nuslerp and karcher over whole tensors (gram.ts): the Gram
 * matrix of the vectors vᵢ (gramPass.ts), then each tensor's coefficients. Tensors merged per row
 * (`filter_wise`, `nuslerp_flatten: false`) need no pass: the write pass reads whole rows.
 */
import type { JobContext } from '../../jobs/types';
import type { MergePlan, PlannedTensor } from '../plan';
import { type Coefficients, type GramRule, coefficientsOf } from './gram';
import { nuslerpT } from './nuslerp';
import { perColumn } from './nuslerpColumns';
import { gramModels, gramPartialSums } from './gramPass';

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
  const sums = await gramPartialSums(plan, tensors, { mode: 'gram' }, chunk, threads, ctx);
  for (const ti of tensors) {
    const t = plan.tensors[ti]!;
    const k = gramModels(plan, t).length;
    const g = new Float64Array(k * k);
    for (const part of sums.get(ti)!) for (let j = 0; j < g.length; j++) g[j]! += part[j]!;
    out.set(ti, coefficientsOf(gramRule(plan, t), g, k));
  }
  return out;
}
