/**
 * Matrices with known spectra and an exact SVD reference for the low-rank tests (extract --rank,
 * energy at rank): written here, in float64, independent of the code under test.
 */
import { rng } from './recipeFixtures';

/** A row-major matrix; `v` float64 (exact spectra) or float32 (as stored in a checkpoint). */
export type Mat<V extends Float64Array | Float32Array = Float64Array> = { rows: number; cols: number; v: V };

/** rows × k with orthonormal columns: Gram–Schmidt (twice) of uniform values, float64. */
export function orthonormal(rows: number, k: number, g: () => number): Float64Array {
  const q = Float64Array.from({ length: rows * k }, () => 2 * g() - 1);
  for (let j = 0; j < k; j++) {
    for (let pass = 0; pass < 2; pass++) {
      for (let c = 0; c < j; c++) {
        let d = 0;
        for (let i = 0; i < rows; i++) d += q[i * k + c]! * q[i * k + j]!;
        for (let i = 0; i < rows; i++) q[i * k + j] = q[i * k + j]! - d * q[i * k + c]!;
      }
    }
    let s = 0;
    for (let i = 0; i < rows; i++) s += q[i * k + j]! ** 2;
    for (let i = 0; i < rows; i++) q[i * k + j] = q[i * k + j]! / Math.sqrt(s);
  }
  return q;
}

/** U·diag(σ)·Vᵀ with random orthonormal U (rows × k), V (cols × k), in float64. */
export function withSpectrum(rows: number, cols: number, sigma: readonly number[], seed: number): Mat {
  const g = rng(seed);
  const k = sigma.length;
  const U = orthonormal(rows, k, g);
  const V = orthonormal(cols, k, g);
  const v = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += U[i * k + c]! * sigma[c]! * V[j * k + c]!;
      v[i * cols + j] = s;
    }
  }
  return { rows, cols, v };
}

/** Uniform values in [−scale, scale): a flat, noise-like spectrum. */
export function noise(rows: number, cols: number, seed: number, scale = 1): Mat {
  const g = rng(seed);
  return { rows, cols, v: Float64Array.from({ length: rows * cols }, () => scale * (2 * g() - 1)) };
}

/** The matrix rounded to float32, as a checkpoint stores it. */
export function asFloat32(m: Mat): Mat<Float32Array> {
  return { rows: m.rows, cols: m.cols, v: Float32Array.from(m.v) };
}

/** Singular values (descending) of the matrix as given, by one-sided Jacobi (Hestenes) on the columns, in float64. */
export function singularValues(m: Mat<Float64Array | Float32Array>): number[] {
  // Work on the orientation with fewer columns.
  const [r, c] = m.cols <= m.rows ? [m.rows, m.cols] : [m.cols, m.rows];
  const a = new Float64Array(r * c);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) a[m.cols <= m.rows ? i * c + j : j * c + i] = m.v[i * m.cols + j]!;
  for (let sweep = 0; sweep < 100; sweep++) {
    let rotated = false;
    for (let p = 0; p < c - 1; p++) {
      for (let q = p + 1; q < c; q++) {
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let i = 0; i < r; i++) {
          alpha += a[i * c + p]! ** 2;
          beta += a[i * c + q]! ** 2;
          gamma += a[i * c + p]! * a[i * c + q]!;
        }
        if (gamma === 0 || Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const cs = 1 / Math.sqrt(1 + t * t);
        const sn = cs * t;
        for (let i = 0; i < r; i++) {
          const x = a[i * c + p]!;
          const y = a[i * c + q]!;
          a[i * c + p] = cs * x - sn * y;
          a[i * c + q] = sn * x + cs * y;
        }
      }
    }
    if (!rotated) break;
  }
  const s: number[] = [];
  for (let j = 0; j < c; j++) {
    let x = 0;
    for (let i = 0; i < r; i++) x += a[i * c + j]! ** 2;
    s.push(Math.sqrt(x));
  }
  return s.sort((x, y) => y - x);
}
