/**
 * The diff statistics' WebAssembly SIMD kernels (diffStats.wat), instantiated once per worker
 * thread. Returns null where WebAssembly SIMD is unavailable, or when CHATVEC_KERNEL=js asks for
 * the plain JavaScript loops (tests compare the two).
 */
import { getEnv } from '../../io/env';
import { diffStatsWasmBase64 } from './generated/diffStatsWasm';

/**
 * Each kernel reads `n` elements at byte offsets `a` and `b` of `memory` and writes 7 float64 at
 * byte offset `out`: Σd², Σa², Σb², Σab, Σ|d|, max |d|, count of d = 0.
 */
export interface DiffSimd {
  readonly memory: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  /** float32 A and B; n a multiple of 4. */
  ab_f32(a: number, b: number, n: number, out: number): void;
  /** float32 A and stored Δ (B = A + Δ); n a multiple of 4. */
  delta_f32(a: number, d: number, n: number, out: number): void;
  /** bfloat16 A and B; n a multiple of 8. */
  ab_bf16(a: number, b: number, n: number, out: number): void;
}

let cached: DiffSimd | null | undefined;

/** The kernels, or null to use the JavaScript loops. */
export function diffSimd(): DiffSimd | null {
  if (cached !== undefined) return cached;
  return selectDiffKernel(getEnv('CHATVEC_KERNEL') === 'js' ? 'js' : 'simd');
}

/**
 * Chooses the kernels of this thread (tests run both on the same data); 'simd' falls back to the
 * JavaScript loops where WebAssembly SIMD is unavailable. Returns what is now in use.
 */
export function selectDiffKernel(kind: 'simd' | 'js'): DiffSimd | null {
  if (kind === 'js') return (cached = null);
  try {
    const bytes = Uint8Array.from(atob(diffStatsWasmBase64), (c) => c.charCodeAt(0));
    cached = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as DiffSimd;
  } catch {
    cached = null; // no SIMD in this runtime: the JavaScript loops compute the same sums
  }
  return cached;
}
