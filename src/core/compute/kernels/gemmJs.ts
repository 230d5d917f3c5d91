/**
 * Dense products of a float32 matrix M (row-major, m × n) with float64 panels of l columns
 * (JavaScript reference): the GEMMs of the randomized SVD behind `extract --rank`. Every output
 * element is a float64 sum in a fixed order (four rows of M at a time, then the rest), whatever
 * thread runs it, so the factors do not depend on the thread count. Taking four rows of M per pass
 * over the panel quarters the panel reads, which is what bounds these loops in JavaScript.
 */

/**
 * out (m × l) = M · X with X (n × l), all row-major; sums in float64.
 * @param out at least m·l elements; overwritten
 */
export function mulPanel(M: Float32Array, m: number, n: number, X: Float64Array, l: number, out: Float64Array): void {
  fourRowsAtATime(M, m, n, X, l, out, false);
}

/**
 * out (n × l) = Mᵀ · X with X (m × l), all row-major; sums in float64.
 * @param out at least n·l elements; overwritten
 */
export function mulPanelT(M: Float32Array, m: number, n: number, X: Float64Array, l: number, out: Float64Array): void {
  fourRowsAtATime(M, m, n, X, l, out, true);
}

/**
 * Both products over M four rows at a time (rows i … i + 3 at column j give v0 … v3), then the
 * rows left over one at a time. M · X: v0 … v3 scale X's row j into out's rows i … i + 3. Mᵀ · X:
 * out's row j gains v0 … v3 times X's rows i … i + 3.
 */
function fourRowsAtATime(M: Float32Array, m: number, n: number, X: Float64Array, l: number, out: Float64Array, transposed: boolean): void {
  out.fill(0, 0, (transposed ? n : m) * l);
  let i = 0;
  for (; i + 4 <= m; i += 4) {
    // Rows i … i + 3 of out (M · X) or of X (Mᵀ · X).
    const [p0, p1, p2, p3] = [i * l, (i + 1) * l, (i + 2) * l, (i + 3) * l];
    const [r0, r1, r2, r3] = [i * n, (i + 1) * n, (i + 2) * n, (i + 3) * n];
    for (let j = 0; j < n; j++) {
      const v0 = M[r0 + j]!;
      const v1 = M[r1 + j]!;
      const v2 = M[r2 + j]!;
      const v3 = M[r3 + j]!;
      const q = j * l; // row j of X (M · X) or of out (Mᵀ · X)
      if (transposed) {
        for (let c = 0; c < l; c++) out[q + c] = out[q + c]! + (v0 * X[p0 + c]! + v1 * X[p1 + c]! + v2 * X[p2 + c]! + v3 * X[p3 + c]!);
        continue;
      }
      for (let c = 0; c < l; c++) {
        const xc = X[q + c]!;
        out[p0 + c] = out[p0 + c]! + v0 * xc;
        out[p1 + c] = out[p1 + c]! + v1 * xc;
        out[p2 + c] = out[p2 + c]! + v2 * xc;
        out[p3 + c] = out[p3 + c]! + v3 * xc;
      }
    }
  }
  for (; i < m; i++) {
    for (let j = 0; j < n; j++) {
      if (transposed) addScaled(out, j * l, M[i * n + j]!, X, i * l, l);
      else addScaled(out, i * l, M[i * n + j]!, X, j * l, l);
    }
  }
}

/** out[o … o + l) += v · X[x … x + l): one row of M that the four-row passes left over. */
function addScaled(out: Float64Array, o: number, v: number, X: Float64Array, x: number, l: number): void {
  for (let c = 0; c < l; c++) out[o + c] = out[o + c]! + v * X[x + c]!;
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
