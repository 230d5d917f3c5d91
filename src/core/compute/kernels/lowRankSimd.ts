/**
 * The low-rank product of apply (τ = B·A of a LoRA adapter, chunk by chunk) with WebAssembly
 * SIMD (../wasm/lowRank.wat): the same operations in the same order as the JavaScript reference
 * (lowRankJs.ts) — a float64 sum over k = 0 … rank−1 per element, rounded once to float32 — so
 * both give the same bits. The factors a chunk needs are copied into the module's memory; the
 * 'transposed' layout (embedding LoRA, τ = (B·A)ᵀ) is computed as the 'BA' product of Aᵀ's rows
 * and Bᵀ, which sums the same products in the same order.
 */
import { lowRankSimd } from '../wasm/lowRankModule';
import { type LowRankArgs, bRowsOf, checkLowRank, lowRankChunk } from './lowRankJs';
import { align16, growTo } from './simdArrays';

/** An implementation of the low-rank product. */
export interface LowRankKernel {
  readonly impl: 'simd' | 'js';
  /** Writes the chunk of τ into `out` (see lowRankChunk). @throws ChatVecError Internal (see checkLowRank) */
  run(p: LowRankArgs, out: Float32Array): void;
}

export const lowRankJsKernel: LowRankKernel = { impl: 'js', run: lowRankChunk };

/** The SIMD kernel of this thread, or null where WebAssembly SIMD is unavailable (or CHATVEC_KERNEL=js). */
export function lowRankSimdKernel(): LowRankKernel | null {
  const k = lowRankSimd();
  if (!k) return null;
  return {
    impl: 'simd',
    run(p, out) {
      checkLowRank(p, out);
      const { rank, rows, cols, first, count } = p;
      if (count === 0) return;
      const [r0, nRows] = bRowsOf(first, count, cols);
      // Memory: left rows (nRows × rank), right (rank × cols), acc (cols float64), out (count).
      const leftAt = 0;
      const rightAt = align16(leftAt + 4 * nRows * rank);
      const accAt = align16(rightAt + 4 * rank * cols);
      const outAt = align16(accAt + 8 * cols);
      try {
        growTo(k.memory, outAt + 4 * count);
      } catch {
        // Beyond what a WebAssembly memory holds: the JavaScript loops, same bits.
        return lowRankChunk(p, out);
      }
      const buf = k.memory.buffer;
      const left = new Float32Array(buf, leftAt, nRows * rank);
      const right = new Float32Array(buf, rightAt, rank * cols);
      if (p.layout === 'BA') {
        left.set(p.left.subarray(0, nRows * rank));
        right.set(p.right.subarray(0, rank * cols));
      } else {
        // left = rows r0 … of Aᵀ (A is rank × rows), right = Bᵀ (B is cols × rank).
        for (let i = 0; i < nRows; i++) for (let c = 0; c < rank; c++) left[i * rank + c] = p.left[c * rows + r0 + i]!;
        for (let j = 0; j < cols; j++) for (let c = 0; c < rank; c++) right[c * cols + j] = p.right[j * rank + c]!;
      }
      for (let i = 0; i < nRows; i++) {
        const row = r0 + i;
        const j0 = row === r0 ? first - row * cols : 0;
        const j1 = Math.min(cols, first + count - row * cols);
        // out element of (row, j0): row·cols + j0 − first
        k.ba_row(leftAt + 4 * i * rank, rank, rightAt, cols, j0, j1, accAt, outAt + 4 * (row * cols + j0 - first));
      }
      out.set(new Float32Array(buf, outAt, count));
    },
  };
}
