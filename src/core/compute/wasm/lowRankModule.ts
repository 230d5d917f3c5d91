/**
 * The WebAssembly module of lowRank.wat, instantiated once per thread (../kernels/lowRankSimd.ts
 * lays out its memory). Returns null where WebAssembly SIMD is unavailable, or when
 * CHATVEC_KERNEL=js asks for the plain JavaScript loops (tests compare the two).
 */
import { lowRankWasmBase64 } from './generated/lowRankWasm';
import { instantiateKernels } from './instantiate';

export interface LowRankSimd {
  readonly memory: WebAssembly.Memory;
  /** out[j − j0] = f32(Σ_k b[k]·A[k, j]), j in [j0, j1): b rank float32, A rank × cols float32, acc cols float64 of scratch. */
  ba_row(b: number, rank: number, A: number, cols: number, j0: number, j1: number, acc: number, out: number): void;
}

let cached: LowRankSimd | null | undefined;

/** The module, or null to use the JavaScript loops. */
export function lowRankSimd(): LowRankSimd | null {
  if (cached === undefined) cached = instantiateKernels<LowRankSimd>(lowRankWasmBase64);
  return cached;
}
