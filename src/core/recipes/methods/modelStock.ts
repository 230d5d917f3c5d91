/**
 * mergekit `model_stock` (merge_methods/model_stock.py; Jang et al. 2024): with offsets
 * oᵢ = mᵢ − base of N ≥ 2 models, cos θ is the mean over pairs of oᵢ·oⱼ / max(|oᵢ||oⱼ|, 1e-6)
 * (clamped to [−1, 1]), t = N·cos θ / (1 + (N − 1)·cos θ), and out = t·mean(mᵢ) + (1 − t)·base
 * = base + (t/N)·Σ oᵢ. Over the whole tensor by default (one analysis pass of dot products, then
 * the engine's combine); `filter_wise: true` takes θ per row (the last dimension; a 1-D tensor is
 * one row), computed in the write pass from whole rows (gram.ts).
 */
import type { MergeMethodDef } from './method';

export const MODEL_STOCK: MergeMethodDef<'model_stock'> = {
  name: 'model_stock',
  prettyName: 'Model Stock',
  referenceUrl: 'https://arxiv.org/abs/2403.19522',
  kind: 'gram',
  parameters: [{ name: 'filter_wise', scope: 'global', type: 'boolean', default: false }],
  needsBase: true,
  usesSeed: false,
  output: 'base + t·(mean(mᵢ) − base), t from the mean angle between the offsets mᵢ − base',
};

/** The coefficient on each offset oᵢ from their k×k Gram matrix g (row-major), float64. */
export function modelStockCoefficients(g: Float64Array, k: number): number[] {
  let sum = 0;
  let pairs = 0;
  for (let i = 0; i < k; i++) {
    for (let j = i + 1; j < k; j++) {
      const norms = Math.sqrt(g[i * k + i]!) * Math.sqrt(g[j * k + j]!);
      sum += Math.min(1, Math.max(-1, g[i * k + j]! / Math.max(norms, 1e-6)));
      pairs++;
    }
  }
  const cos = sum / pairs;
  const t = (k * cos) / (1 + (k - 1) * cos);
  return Array.from({ length: k }, () => t / k);
}
