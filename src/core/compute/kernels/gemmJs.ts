/**
 * Dense products of a float32 matrix M (row-major, m × n) with float64 panels of l columns
 * (JavaScript reference): the GEMMs of the randomized SVD behind `extract --rank`. Every output
 * element is a float64 sum over the same index order whatever thread runs it, so the factors do
 * not depend on the thread count.
 */

/**
 * out (m × l) = M · X with X (n × l), all row-major; sums in float64.
 * @param out at least m·l elements; overwritten
 */
export function mulPanel(M: Float32Array, m: number, n: number, X: Float64Array, l: number, out: Float64Array): void {
  out.fill(0, 0, m * l);
  for (let i = 0; i < m; i++) {
    const o = i * l;
    const row = i * n;
    for (let j = 0; j < n; j++) {
      const v = M[row + j]!;
      if (v === 0) continue;
      const x = j * l;
      for (let c = 0; c < l; c++) out[o + c] = out[o + c]! + v * X[x + c]!;
    }
  }
}

/**
 * out (n × l) = Mᵀ · X with X (m × l), all row-major; sums in float64 (over i in order).
 * @param out at least n·l elements; overwritten
 */
export function mulPanelT(M: Float32Array, m: number, n: number, X: Float64Array, l: number, out: Float64Array): void {
  out.fill(0, 0, n * l);
  for (let i = 0; i < m; i++) {
    const xi = i * l;
    const row = i * n;
    for (let j = 0; j < n; j++) {
      const v = M[row + j]!;
      if (v === 0) continue;
      const o = j * l;
      for (let c = 0; c < l; c++) out[o + c] = out[o + c]! + v * X[xi + c]!;
    }
  }
}

/**
 * ‖M − L·R‖²_F in float64 for float32 factors L (m × k) and R (k × n), row-major: the error of the
 * factors as stored. One row of L·R at a time (n float64 of scratch).
 */
export function residualNorm2(M: Float32Array, m: number, n: number, L: Float32Array, R: Float32Array, k: number): number {
  const row = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < m; i++) {
    row.fill(0);
    for (let c = 0; c < k; c++) {
      const lc = L[i * k + c]!;
      if (lc === 0) continue;
      const r = c * n;
      for (let j = 0; j < n; j++) row[j] = row[j]! + lc * R[r + j]!;
    }
    const base = i * n;
    for (let j = 0; j < n; j++) {
      const d = M[base + j]! - row[j]!;
      sum += d * d;
    }
  }
  return sum;
}
