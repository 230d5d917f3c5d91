/**
 * How far the GPU's diff sums may lie from the CPU's (both implementations of DiffSums).
 *
 * The GPU forms each term in float32 — d = b − a (or B = A + Δ) rounded once, then one product
 * rounded once: at most 3 roundings of relative 2⁻²⁴ per term — and adds the terms of one
 * workgroup (2,048 elements) in float32: 16 serial additions per thread, then 7 tree levels, so
 * at most 23 more roundings. The partials are then added in float64 on the host. For a sum of
 * terms tᵢ the error is thus at most (3 + 23)·2⁻²⁴·Σ|tᵢ| < 2⁻¹⁹·Σ|tᵢ| (first-order; the
 * second-order terms are far below the margin left), plus what float32 cannot represent near
 * zero: each of the ≤ 3 roundings of a term loses at most 2⁻¹⁵⁰ absolute (or 2⁻¹²⁶ on a GPU that
 * flushes subnormals), so n elements add at most n·2⁻¹²³. The CPU's own float64 error (about
 * (4096 + n/4096)·2⁻⁵³ relative) is far below this. The maximum |d| is one rounding of d: relative
 * 2⁻²⁴ (plus 2⁻¹²⁶ absolute). Counts (elements, changed, nonFinite) are decided on bits and agree
 * exactly. A workgroup with a finite input of magnitude 2⁵⁶ or more, whose float32 partials could
 * overflow, is summed on the host by the JavaScript reference instead.
 *
 * For Σd², Σa², Σb², Σ|d| the terms are non-negative, so the bound is relative to the sum itself;
 * for Σab it is relative to Σ|a·b|, which can be far larger than |Σab| when the signs cancel.
 */

/** Relative bound of a GPU diff sum against Σ|terms| (2⁻¹⁹). */
export const GPU_DIFF_RELATIVE_BOUND = 2 ** -19;
/** Absolute bound per element of a GPU diff sum (underflow of float32 terms near zero). */
export const GPU_DIFF_ABSOLUTE_PER_ELEMENT = 2 ** -123;
