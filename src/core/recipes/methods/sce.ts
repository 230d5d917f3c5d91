/**
 * mergekit `sce` (merge_methods/sce.py; Wan et al. 2024, "FuseChat"): Select, Calculate, Erase.
 * Per tensor, with τᵢ = mᵢ − base:
 * - select: when `select_topk` < 1, keep only the k = int(nonzero · select_topk) elements with the
 *   largest variance across the τᵢ (population variance; nonzero = elements whose variance is not
 *   0), the same mask for every model — an exact streaming top-k (topK.ts) over the variance;
 * - calculate: wᵢ = mean(τ̂ᵢ²) / Σⱼ mean(τ̂ⱼ²) over the whole tensor (1/M each when that sum is
 *   below 1e-6) — a pass summing squares;
 * - erase: per element the majority sign of Σᵢ τ̂ᵢ, and the τ̂ᵢ of the other sign are dropped;
 *   out = base + Σ wᵢ·τ̂ᵢ / max(Σ wᵢ, 1e-6) over the kept ones.
 * The passes are sceAnalysis.ts; the per-chunk arithmetic below runs in the recipe kernels.
 */
import type { TopCut } from '../topCut';
import type { MergeMethodDef } from './method';

export const SCE: MergeMethodDef<'sce'> = {
  name: 'sce',
  prettyName: 'SCE',
  referenceUrl: 'https://arxiv.org/abs/2408.07990',
  kind: 'sce',
  parameters: [
    { name: 'int8_mask', scope: 'global', type: 'boolean', default: false },
    { name: 'select_topk', scope: 'global', type: 'number', default: 1 },
  ],
  needsBase: true,
  usesSeed: false,
  output: 'base + Σ wᵢ·τ̂ᵢ / Σ wᵢ over the sign-elected, variance-selected τ̂ᵢ; wᵢ ∝ mean(τ̂ᵢ²)',
};

/** What the write pass of one chunk needs: the variance cut (null: keep every element) and the model weights. */
export interface SceChunk {
  readonly cut: TopCut | null;
  readonly weights: readonly number[];
}

/** Population variance across the first `m` task vectors of each element i < n, rounded to float32 into `out` (float64 arithmetic). */
export function varianceAcross(tvs: readonly Float32Array[], m: number, n: number, out: Float32Array): void {
  for (let i = 0; i < n; i++) {
    let mean = 0;
    for (let k = 0; k < m; k++) mean += tvs[k]![i]!;
    mean /= m;
    let v = 0;
    for (let k = 0; k < m; k++) {
      const d = tvs[k]![i]! - mean;
      v += d * d;
    }
    out[i] = v / m;
  }
}

/**
 * Which elements the variance cut keeps (1) into keep[0..n): bit patterns above the threshold,
 * and the first `keepTies` equal to it; a null cut keeps all.
 */
export function selectByVariance(varBits: Uint32Array, n: number, cut: TopCut | null, keep: Uint8Array): void {
  if (!cut) {
    keep.fill(1, 0, n);
    return;
  }
  let ties = 0;
  for (let i = 0; i < n; i++) {
    const u = (varBits[i]! & 0x7fffffff) >>> 0;
    keep[i] = u > cut.threshold || (u === cut.threshold && ties++ < cut.keepTies) ? 1 : 0;
  }
}

/**
 * The erase-and-mix step for one chunk, in float32 as mergekit's torch code rounds it: the masked
 * τ̂ᵢ (τ where kept, else 0), the elected sign of Σᵢ τ̂ᵢ (+ when ≥ 0), and base + Σ wᵢτ̂ᵢ / max(Σ wᵢ, 1e-6)
 * over the τ̂ᵢ of that sign, into out[0..n).
 */
export function eraseAndMix(tvs: readonly Float32Array[], m: number, n: number, keep: Uint8Array, weights: readonly number[], base: Float32Array, out: Float32Array): void {
  const w = weights.map((x) => Math.fround(x));
  const floor = Math.fround(1e-6);
  for (let i = 0; i < n; i++) {
    if (!keep[i]) {
      out[i] = base[i]!; // every τ̂ is 0: nothing agrees, 0 / 1e-6 = 0
      continue;
    }
    let s = 0;
    for (let k = 0; k < m; k++) s = Math.fround(s + tvs[k]![i]!);
    const majority = s >= 0 ? 1 : -1;
    let mixed = 0;
    let d = 0;
    for (let k = 0; k < m; k++) {
      const v = tvs[k]![i]!;
      if (v > 0 ? majority === 1 : v < 0 && majority === -1) {
        mixed = Math.fround(mixed + Math.fround(v * w[k]!));
        d = Math.fround(d + w[k]!);
      } else if (v !== 0) {
        mixed = Math.fround(mixed + v * 0); // a NaN or ±Inf outvoted still poisons the sum, as the mask product does
      }
    }
    out[i] = base[i]! + Math.fround(mixed / (d > floor ? d : floor));
  }
}

/** wᵢ from Σ τ̂ᵢ² over a tensor of n elements (mergekit's sce_weight). */
export function sceWeights(sumSquares: readonly number[], n: number): number[] {
  const means = sumSquares.map((s) => s / n);
  const total = means.reduce((a, b) => a + b, 0);
  if (Math.abs(total) < 1e-6) return means.map(() => 1 / means.length);
  return means.map((x) => x / total);
}
