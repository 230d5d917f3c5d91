/**
 * How far the GPU's low-rank product (gpu/lowRankProductWgsl.ts) may lie from the CPU's
 * (kernels/lowRankJs.ts and its SIMD twin), both forming each element of τ = B·A as
 * S = Σ_k tₖ, tₖ = B[i,k]·A[k,j], rounded once to float32. One bound, held by the tests and the GPU
 * self-test.
 *
 * The CPU sums the exact float32×float32 products in float64: |S₆₄ − S| ≤ r·2⁻⁵³·Σ|tₖ| (first
 * order, r the rank). WGSL has no float64, so the GPU sums in double-float (a float32 pair hi + lo,
 * about 48 significant bits): each product is split exactly into p + e (TwoProd — with fma where the
 * device fuses it, else Veltkamp/Dekker splitting; gpu/lowRankProductGpu.ts probes which) and added with
 * the accurate double-float addition (TwoSum on both halves, then two FastTwoSums), whose relative
 * error is at most 3u²/(1 − 4u), u = 2⁻²⁴ (Joldes, Muller, Popescu 2017, Alg. 6); every partial sum
 * is at most Σ|tₖ|, so |S_df − S| ≤ 4·r·2⁻⁴⁸·Σ|tₖ|. Near zero float32 cannot hold every low part:
 * each product and addition may lose 2⁻¹⁵⁰ (2⁻¹²⁶ on a GPU that flushes subnormals), at most
 * r·2⁻¹²³ in all. The result is hi after the last normalisation, i.e. S_df rounded to nearest.
 *
 * So both are S rounded once, from approximations at most E = (4·2⁻⁴⁸ + 2⁻⁵²)·r·Σ|tₖ| + r·2⁻¹²³
 * apart: the bits are equal unless a float32 rounding boundary (a midpoint of two float32
 * values) lies within E of S, and then they differ by one float32 ulp of τ. Even at the bound that
 * is rare — about 2·E/ulp(τ), below 2⁻¹² per element at rank 64 with products of random sign
 * (Σ|tₖ| ≈ √r·|S|), and the typical error is far below the bound; after the combine's rounding to
 * bf16/f16 the outputs are equal in practice (a τ differing in its last float32 bit changes a
 * 16-bit output only when that output also lies at a rounding boundary). Not covered: factors of magnitude 2¹⁰⁰ or more (the split and the
 * product overflow float32 where float64 does not) — no adapter holds such values.
 */

/**
 * The distance E between the float64 and the double-float sums of a rank-`rank` element whose
 * products have absolute sum `sumAbs`: the GPU's τ lies in [fround(S₆₄ − E), fround(S₆₄ + E)]
 * for the CPU's float64 sum S₆₄ (and so does the CPU's own τ).
 */
export function lowRankGpuBound(rank: number, sumAbs: number): number {
  return (4 * 2 ** -48 + 2 ** -52) * rank * sumAbs + rank * 2 ** -123;
}
