/**
 * The GEMMs of the randomized SVD with WebAssembly SIMD (../wasm/gemm.wat): the same operations in
 * the same order as the JavaScript reference (gemmJs.ts), so both give the same bits. The
 * factorisation's arrays — τ (float32) and its float64 panels — are laid out back to back in the
 * module's memory by `arrays()` (16-byte aligned) so the kernels read them in place; arrays from
 * elsewhere (or a matrix too large for a WebAssembly memory) run on the JavaScript loops.
 */
import { gemmSimd } from '../wasm/gemmModule';
import { mulPanel as mulPanelJs, mulPanelT as mulPanelTJs } from './gemmJs';
import { align16, growTo } from './simdArrays';

/** What the factorisation needs of a GEMM implementation. */
export interface GemmKernel {
  readonly impl: 'simd' | 'js';
  /**
   * τ (float32, `tau` elements) and float64 panels of the given sizes, where the kernels read them
   * fastest. Each call may invalidate the arrays of the previous one (one factorisation at a time).
   */
  arrays(tau: number, panels: readonly number[]): { tau: Float32Array; panels: Float64Array[] };
  /** out (m × l) = M · X, X n × l (see gemmJs.ts). */
  mulPanel(M: Float32Array, m: number, n: number, X: Float64Array, l: number, out: Float64Array): void;
  /** out (n × l) = Mᵀ · X, X m × l. */
  mulPanelT(M: Float32Array, m: number, n: number, X: Float64Array, l: number, out: Float64Array): void;
}

export const gemmJsKernel: GemmKernel = {
  impl: 'js',
  arrays: (tau, panels) => ({ tau: new Float32Array(tau), panels: panels.map((p) => new Float64Array(p)) }),
  mulPanel: mulPanelJs,
  mulPanelT: mulPanelTJs,
};

/** The SIMD kernel of this thread, or null where WebAssembly SIMD is unavailable (or CHATVEC_KERNEL=js). */
export function gemmSimdKernel(): GemmKernel | null {
  const k = gemmSimd();
  if (!k) return null;
  const inMemory = (...xs: (Float32Array | Float64Array)[]) => xs.every((x) => x.buffer === k.memory.buffer);
  return {
    impl: 'simd',
    arrays(tau, panels) {
      let at = align16(4 * tau);
      const offsets = panels.map((p) => {
        const o = at;
        at = align16(at + 8 * p);
        return o;
      });
      try {
        growTo(k.memory, at);
      } catch {
        // Beyond what a WebAssembly memory can hold (4 GiB): the JavaScript loops, same bits.
        return gemmJsKernel.arrays(tau, panels);
      }
      const buf = k.memory.buffer;
      return { tau: new Float32Array(buf, 0, tau), panels: panels.map((p, i) => new Float64Array(buf, offsets[i]!, p)) };
    },
    mulPanel(M, m, n, X, l, out) {
      if (!inMemory(M, X, out)) return mulPanelJs(M, m, n, X, l, out);
      k.mul_panel(M.byteOffset, m, n, X.byteOffset, l, out.byteOffset);
    },
    mulPanelT(M, m, n, X, l, out) {
      if (!inMemory(M, X, out)) return mulPanelTJs(M, m, n, X, l, out);
      k.mul_panel_t(M.byteOffset, m, n, X.byteOffset, l, out.byteOffset);
    },
  };
}
