/**
 * A cut of a tensor's k largest |τ| as one chunk applies it (recipes/topK.ts finds it over the whole
 * tensor; the kernels and sce's selection apply it chunk by chunk). Its own module: the kernels and
 * the methods both use it, and neither should import the other for a type.
 */

/** The elements of a chunk among a tensor's k largest |τ|: bit patterns above `threshold`, and the first `keepTies` equal to it. */
export interface TopCut {
  readonly threshold: number;
  readonly keepTies: number;
}
