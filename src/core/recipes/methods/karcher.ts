/**
 * mergekit `karcher` (merge_methods/karcher.py): the Riemannian (Karcher) mean of the inputs'
 * directions on the unit sphere, scaled by the mean of their norms — every listed model (and the
 * base model, if given, as one more input), equal weights. mergekit iterates on whole tensors;
 * every iterate is a combination of the unit inputs uᵢ = xᵢ/|xᵢ| (the start is their weighted mean,
 * and each step adds a combination of the uᵢ and the iterate), and every quantity the iteration
 * reads is a dot product of such combinations. So chatvec runs the same iteration exactly on
 * coefficient vectors, from the inputs' Gram matrix (one analysis pass, gram.ts), and writes
 * out = Σ cᵢ·xᵢ with the engine's combine: streaming, with no tensor held whole.
 */
import type { MergeMethodDef } from './method';

export const KARCHER: MergeMethodDef<'karcher'> = {
  name: 'karcher',
  prettyName: 'Karcher Mean',
  referenceUrl: 'https://en.wikipedia.org/wiki/Karcher_mean',
  kind: 'gram',
  parameters: [
    { name: 'max_iter', scope: 'global', type: 'number', default: 10 },
    { name: 'tol', scope: 'global', type: 'number', default: 1e-5 },
  ],
  needsBase: false,
  usesSeed: false,
  output: 'mean norm × the Karcher mean of the directions xᵢ/|xᵢ| on the sphere',
};

/**
 * The coefficients on the raw inputs xᵢ from their k×k Gram matrix g (row-major), following
 * mergekit's karcher_merge_tensors step by step (float64).
 */
export function karcherCoefficients(g: Float64Array, k: number, maxIter: number, tol: number): number[] {
  if (k === 1) return [1];
  const norms = Array.from({ length: k }, (_, i) => Math.sqrt(Math.max(0, g[i * k + i]!)));
  const alphas = norms.map(() => 1 / k);
  const valid = norms.map((n, i) => (n > tol ? i : -1)).filter((i) => i >= 0);
  if (!valid.length) return norms.map(() => 0);
  // Gram of the valid unit vectors; a vector is its coefficients on them.
  const m = valid.length;
  const U = (a: number, b: number) => g[valid[a]! * k + valid[b]!]! / (norms[valid[a]!]! * norms[valid[b]!]!);
  const dot = (x: readonly number[], y: readonly number[]) => {
    let s = 0;
    for (let a = 0; a < m; a++) for (let b = 0; b < m; b++) s += x[a]! * U(a, b) * y[b]!;
    return s;
  };
  const norm = (x: readonly number[]) => Math.sqrt(Math.max(0, dot(x, x)));
  const asum = valid.reduce((s, i) => s + alphas[i]!, 0);
  const w = valid.map((i) => alphas[i]! / asum);
  const unit = (a: number) => Array.from({ length: m }, (_, b) => (a === b ? 1 : 0));
  let u = [...w];
  const nu = norm(u);
  u = nu < tol ? unit(0) : u.map((x) => x / nu);
  for (let iter = 0; iter < maxIter; iter++) {
    const T = new Array<number>(m).fill(0);
    for (let a = 0; a < m; a++) {
      const d = Math.min(1, Math.max(-1, dot(u, unit(a))));
      const theta = Math.acos(d);
      if (theta < tol) continue;
      const f = (w[a]! * theta) / Math.sin(theta);
      for (let b = 0; b < m; b++) T[b]! += f * ((a === b ? 1 : 0) - d * u[b]!);
    }
    const nT = norm(T);
    if (nT < tol) break;
    u = u.map((x, b) => Math.cos(nT) * x + Math.sin(nT) * (T[b]! / nT));
    const un = norm(u);
    if (un > tol) u = u.map((x) => x / un);
  }
  const s = alphas.reduce((acc, a, i) => acc + a * norms[i]!, 0);
  const out = norms.map(() => 0);
  valid.forEach((i, a) => (out[i] = (s * u[a]!) / norms[i]!));
  return out;
}
