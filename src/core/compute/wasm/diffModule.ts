/**
 * The WebAssembly module of diffStats.wat, instantiated once per thread (../kernels/diffSimd.ts
 * lays out its memory). Returns null where WebAssembly SIMD is unavailable, or when
 * CHATVEC_KERNEL=js asks for the plain JavaScript loops (tests compare the two).
 */
import { diffStatsWasmBase64 } from './generated/diffStatsWasm';
import { instantiateKernels } from './instantiate';

/**
 * Each kernel reads `n` elements at byte offsets `a` and `b` of `memory` and writes 7 float64 at
 * byte offset `out`: Σd², Σa², Σb², Σab, Σ|d|, max |d|, count of d = 0.
 */
export interface DiffSimd {
  readonly memory: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  /** float32 A and B; n a multiple of 16. */
  ab_f32(a: number, b: number, n: number, out: number): void;
  /** float32 A and stored Δ (B = A + Δ); n a multiple of 16. */
  delta_f32(a: number, d: number, n: number, out: number): void;
  /** bfloat16 A and B; n a multiple of 16. */
  ab_bf16(a: number, b: number, n: number, out: number): void;
}

let cached: DiffSimd | null | undefined;

/** The module, or null to use the JavaScript loops. */
export function diffSimd(): DiffSimd | null {
  if (cached === undefined) cached = instantiateKernels<DiffSimd>(diffStatsWasmBase64);
  return cached;
}
