/**
 * The WebAssembly module of gemm.wat, instantiated once per thread (../kernels/gemmSimd.ts lays
 * out its memory). Returns null where WebAssembly SIMD is unavailable, or when CHATVEC_KERNEL=js
 * asks for the plain JavaScript loops (tests compare the two).
 */
import { gemmWasmBase64 } from './generated/gemmWasm';
import { instantiateKernels } from './instantiate';

/** Both read M (float32, m × n) and a float64 panel X at byte offsets and overwrite the float64 panel at `out`. */
export interface GemmSimd {
  readonly memory: WebAssembly.Memory;
  /** out (m × l) = M · X, X n × l. */
  mul_panel(M: number, m: number, n: number, X: number, l: number, out: number): void;
  /** out (n × l) = Mᵀ · X, X m × l. */
  mul_panel_t(M: number, m: number, n: number, X: number, l: number, out: number): void;
}

let cached: GemmSimd | null | undefined;

/** The module, or null to use the JavaScript loops. */
export function gemmSimd(): GemmSimd | null {
  if (cached === undefined) cached = instantiateKernels<GemmSimd>(gemmWasmBase64);
  return cached;
}
