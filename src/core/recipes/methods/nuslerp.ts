/**
 * mergekit `nuslerp` (merge_methods/nuslerp.py): spherical interpolation of exactly two models at
 * t = w₁/(w₀ + w₁) (0.5 when |w₀ + w₁| < 1e-6) — of the models themselves, or with a base model
 * of their task vectors (out = base + slerp(τ₀, τ₁)). `nuslerp_flatten: true` (default) treats the
 * tensor as one vector (an analysis pass of dot products, then the engine's combine); `false`
 * interpolates each row (the last dimension) on its own, from whole rows in the write pass
 * (gram.ts). `nuslerp_row_wise: true` without flatten interpolates each dim-0 vector (mergekit
 * transposes dim 0 to the end): per column, nuslerpColumns.ts.
 */
import type { MergeMethodDef } from './method';

export const NUSLERP: MergeMethodDef<'nuslerp'> = {
  name: 'nuslerp',
  prettyName: 'NuSLERP',
  referenceUrl: null,
  kind: 'gram',
  parameters: [
    { name: 'weight', scope: 'tensor', type: 'number' },
    { name: 'nuslerp_row_wise', scope: 'global', type: 'boolean', default: false },
    { name: 'nuslerp_flatten', scope: 'global', type: 'boolean', default: true },
  ],
  needsBase: false,
  usesSeed: false,
  output: 'slerp of two models (or, with a base, of their task vectors) at t = w₁/(w₀ + w₁)',
};

/** mergekit's t from the two models' weights. */
export function nuslerpT(w0: number, w1: number): number {
  return Math.abs(w0 + w1) < 1e-6 ? 0.5 : w1 / (w0 + w1);
}

/** The two coefficients on v₀, v₁ from their 2×2 Gram matrix g (row-major), float64. */
export function nuslerpCoefficients(g: Float64Array, t: number): number[] {
  const n0 = Math.max(Math.sqrt(g[0]!), 1e-7);
  const n1 = Math.max(Math.sqrt(g[3]!), 1e-7);
  const theta = Math.acos(Math.min(1, Math.max(-1, g[1]! / (n0 * n1))));
  const sin = Math.sin(theta);
  if (Math.abs(sin) < 1e-8) return [1 - t, t];
  return [Math.sin((1 - t) * theta) / sin, Math.sin(t * theta) / sin];
}
