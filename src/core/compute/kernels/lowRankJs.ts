/**
 * The low-rank product kernel (JavaScript reference): the elements [first, first + count) of
 * τ = B·A (layout 'BA') or τ = (B·A)ᵀ (layout 'transposed') of a rows × cols matrix, each a dot
 * product of length `rank` summed in float64 and rounded once to float32. A LoRA adapter's τ is
 * formed this way chunk by chunk inside apply, never whole.
 */
import { ChatVecError } from '../../errors';

export interface LowRankArgs {
  readonly layout: 'BA' | 'transposed';
  readonly rank: number;
  /** Shape of τ. */
  readonly rows: number;
  readonly cols: number;
  /** Element range of τ (row-major). */
  readonly first: number;
  readonly count: number;
  /**
   * 'BA': `left` holds rows ⌊first/cols⌋ … of B ([·, rank], row-major) and `right` all of A
   * ([rank, cols]). 'transposed': `left` is all of A ([rank, rows]) and `right` all of B ([cols, rank]).
   */
  readonly left: Float32Array;
  readonly right: Float32Array;
}

/** Rows of B a 'BA' chunk needs: [first row, row count]. */
export function bRowsOf(first: number, count: number, cols: number): readonly [number, number] {
  const r0 = Math.floor(first / cols);
  const r1 = Math.floor((first + count - 1) / cols);
  return [r0, r1 - r0 + 1];
}

/**
 * Checks a chunk's range and factor lengths (every implementation does, before computing).
 * @throws ChatVecError Internal for a range outside τ or factor arrays shorter than the shapes need
 */
export function checkLowRank(p: LowRankArgs, out: Float32Array): void {
  const { rank, rows, cols, first, count, left, right } = p;
  if (out.length < count || first < 0 || first + count > rows * cols) throw new ChatVecError('Internal', `low-rank chunk [${first}, +${count}) outside a ${rows}×${cols} matrix`);
  const [, nRows] = bRowsOf(first, count, cols);
  const short = p.layout === 'BA' ? left.length < nRows * rank || right.length < rank * cols : left.length < rank * rows || right.length < cols * rank;
  if (short) throw new ChatVecError('Internal', 'low-rank factors shorter than their shapes');
}

/**
 * Writes the chunk of τ into `out` (float32, `count` elements).
 * @throws ChatVecError Internal when the factor arrays are shorter than the shapes need
 */
export function lowRankChunk(p: LowRankArgs, out: Float32Array): void {
  checkLowRank(p, out);
  const { rank, rows, cols, first, count, left, right } = p;
  const acc = new Float64Array(cols);
  if (p.layout === 'BA') {
    const [r0, nRows] = bRowsOf(first, count, cols);
    for (let i = 0; i < nRows; i++) {
      const row = r0 + i;
      const j0 = row === r0 ? first - row * cols : 0;
      const j1 = Math.min(cols, first + count - row * cols);
      acc.fill(0, j0, j1);
      // τ[row, j] = Σ_k B[row, k]·A[k, j]: accumulate row k of A scaled by B[row, k].
      for (let k = 0; k < rank; k++) {
        const bk = left[i * rank + k]!;
        const base = k * cols;
        for (let j = j0; j < j1; j++) acc[j] = acc[j]! + bk * right[base + j]!;
      }
      const at = row * cols - first;
      for (let j = j0; j < j1; j++) out[at + j] = acc[j]!;
    }
    return;
  }
  // τ[i, j] = Σ_k A[k, i]·B[j, k].
  for (let e = 0; e < count; e++) {
    const idx = first + e;
    const i = Math.floor(idx / cols);
    const j = idx - i * cols;
    let s = 0;
    for (let k = 0; k < rank; k++) s += left[k * rows + i]! * right[j * rank + k]!;
    out[e] = s;
  }
}
