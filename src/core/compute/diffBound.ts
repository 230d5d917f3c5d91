/**
 * How far the diff sums of the float32 implementations — the WebAssembly SIMD kernel
 * (kernels/diffSimd.ts) and the GPU (gpu/gpuBackend.ts) — may lie from the float64 definition, the
 * JavaScript reference (kernels/diffJs.ts). One bound for both; the tests and the GPU self-test
 * hold them to it.
 *
 * Both form each term in float32 — d = b − a (or B = A + Δ) rounded once, then one product rounded
 * once: at most 3 roundings of relative u = 2⁻²⁴ per term (d² carries d's rounding twice) — and add
 * the terms of a bounded group in float32 before the group's partial sums are added in float64:
 * - the GPU, a workgroup of 2,048 elements: 16 serial additions per thread, then 7 tree levels, so a
 *   term passes through at most 23 float32 additions;
 * - the SIMD kernel, a block of 128 elements: in each of 16 half-steps each of 4 lanes adds its 2
 *   terms (1 addition) and that into the lane's block sum, so at most 1 + 15 = 16 additions.
 * For a sum of terms tᵢ the error is thus at most (3 + 23)·u·Σ|tᵢ| < 2⁻¹⁹·Σ|tᵢ| (first order; the
 * second-order terms, and the float64 error of adding the partials, about (4096 + n/4096)·2⁻⁵³
 * relative, are far below the margin left: 6·u). Near zero float32 cannot represent every term:
 * each of the ≤ 3 roundings of a term loses at most 2⁻¹⁵⁰ absolute (or 2⁻¹²⁶ on a GPU that flushes
 * subnormals; WebAssembly never does), so n elements add at most n·2⁻¹²³. The maximum |d| is one
 * rounding of d: relative 2⁻²⁴ (plus 2⁻¹²⁶ absolute on a flushing GPU). Counts (elements, changed,
 * nonFinite) are decided exactly: a float32 difference is 0 only when a = b. Where float32 terms
 * could overflow, the float64 reference sums instead: the GPU sends a workgroup with a finite input
 * of magnitude 2⁵⁶ or more to it, the SIMD kernel a run whose float32 sums came out non-finite.
 *
 * For Σd², Σa², Σb², Σ|d| the terms are non-negative, so the bound is relative to the sum itself.
 * Σab is not summed at all: both take Σab = (Σa² + Σb² − Σd²)/2 in float64 from their three sums,
 * per block (SIMD) or per workgroup (GPU). That is an identity for d = b − a; with B = A + Δ
 * rounded it is off by at most u·(b² + Δ²) per element, inside the margin. So the bound on Σab is
 * relative to abMagnitude = (Σa² + Σb² + Σd²)/2 (at least Σ|a·b|, and far larger than |Σab| when
 * the signs cancel). Why not sum a·b:
 * - it saves about a tenth of the SIMD kernel's time;
 * - where A and B are close (cosine near 1, the usual chat-against-base case) the errors of Σa² and
 *   Σb² cancel in the cosine to first order: 1 − cosine comes out within about the bound relative
 *   to itself, where a summed Σab gives it only within the bound absolute (on the 1b demo pair,
 *   1 − cosine now lies within 1e-8 relative of float64, against 4e-5 when a·b was summed).
 * The price: where one norm is far smaller than the other the cosine is less accurate than a summed
 * Σab would give, within the bound times (‖A‖² + ‖B‖² + ‖Δ‖²)/(2‖A‖‖B‖) + 1.
 * Two float32 implementations (e.g. the GPU against the SIMD kernel) agree within twice the bound.
 */

/** Relative bound of a float32-accumulated diff sum against Σ|terms| (2⁻¹⁹). */
export const DIFF_RELATIVE_BOUND = 2 ** -19;
/** Absolute bound per element of a float32-accumulated diff sum (underflow of float32 terms near zero). */
export const DIFF_ABSOLUTE_PER_ELEMENT = 2 ** -123;

/**
 * The magnitude the bound on Σab is relative to: (Σa² + Σb² + Σd²)/2, at least Σ|a·b| (see above).
 */
export function abMagnitude(s: { readonly sumA2: number; readonly sumB2: number; readonly sumD2: number }): number {
  return (s.sumA2 + s.sumB2 + s.sumD2) / 2;
}
