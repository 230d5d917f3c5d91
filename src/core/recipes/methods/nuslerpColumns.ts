/**
 * nuslerp's column mode (`nuslerp_row_wise: true`, `nuslerp_flatten: false`): mergekit transposes
 * dim 0 to the last dimension, so each vector to interpolate runs along dim 0 — element e of a
 * tensor of shape [d₀, …] lies in column e mod (elementCount / d₀). An analysis pass sums each
 * column's 2×2 Gram matrix chunk by chunk (in chunk order: the bytes do not depend on the thread
 * count); the write pass applies each column's coefficients (gram.ts columnCombine). A 1-D tensor
 * is one vector, as mergekit's transpose of a 1-D tensor is a no-op: it is merged per row.
 */
import type { JobContext } from '../../jobs/types';
import type { MergePlan, PlannedTensor } from '../plan';
import { gramModels, gramPartialSums } from './gramPass';
import { nuslerpCoefficients, nuslerpT } from './nuslerp';

/** Whether a tensor is merged per column (dim-0 vectors). */
export function perColumn(plan: MergePlan, t: PlannedTensor): boolean {
  return plan.method === 'nuslerp' && t.options?.nuslerp_flatten === false && t.options?.nuslerp_row_wise === true && t.shape.length >= 2;
}

/** Elements per dim-0 index: the number of columns. */
export function columnStride(t: PlannedTensor): number {
  return t.elementCount / t.shape[0]!;
}

/**
 * Runs the pass over every merged column-mode tensor of the plan.
 * @returns per tensor index, two coefficients per column (float64: c₀ at 2j, c₁ at 2j + 1)
 * @throws CancelledError when ctx.signal is raised
 */
export async function analyseNuslerpColumns(plan: MergePlan, chunk: number, threads: number, ctx: JobContext): Promise<Map<number, Float64Array>> {
  const tensors = plan.tensors.map((t, ti) => (t.kind === 'merge' && t.elementCount > 0 && perColumn(plan, t) ? ti : -1)).filter((ti) => ti >= 0);
  const out = new Map<number, Float64Array>();
  if (!tensors.length) return out;
  const parts = await gramPartialSums(plan, tensors, { mode: 'columnGram', stride: columnStride }, chunk, threads, ctx);
  for (const ti of tensors) {
    const t = plan.tensors[ti]!;
    const stride = columnStride(t);
    const g = new Float64Array(3 * stride);
    for (const part of parts.get(ti)!) for (let j = 0; j < g.length; j++) g[j]! += part[j]!;
    const [a, b] = gramModels(plan, t);
    const tt = nuslerpT(t.weights[a!]!, t.weights[b!]!);
    const coef = new Float64Array(2 * stride);
    for (let j = 0; j < stride; j++) {
      const [c0, c1] = nuslerpCoefficients(Float64Array.of(g[3 * j]!, g[3 * j + 1]!, g[3 * j + 1]!, g[3 * j + 2]!), tt);
      coef[2 * j] = c0!;
      coef[2 * j + 1] = c1!;
    }
    out.set(ti, coef);
  }
  return out;
}
