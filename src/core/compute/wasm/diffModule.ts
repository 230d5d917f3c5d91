/**
 * The WebAssembly module of diffStats.wat, instantiated once per thread (../kernels/diffSimd.ts
 * lays out its memory). Returns null where WebAssembly SIMD is unavailable, or when
 * CHATVEC_KERNEL=js asks for the plain JavaScript loops (tests compare the two).
 */
import { diffStatsWasmBase64 } from './generated/diffStatsWasm';
import { instantiateKernels } from './instantiate';

/** Which kernel `run` drives: float32 A and B, float32 A and stored Δ (B = A + Δ), bfloat16 A and B. */
export const DIFF_KIND = { abF32: 0, deltaF32: 1, abBf16: 2 } as const;

export interface DiffSimd {
  readonly memory: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  /**
   * Runs kernel `kind` over `n` elements (a multiple of 16) at byte offsets `a` and `b`, in blocks
   * of DIFF_BLOCK, adding each finite block's sums into the 7 float64 at byte offset `out` (Σd²,
   * Σa², Σb², Σab, Σ|d|, max |d|, count of d ≠ 0; the caller puts its running sums there first).
   * Uses the 64 bytes after them as scratch. Returns where it stopped: the first element of a block
   * whose sums are not finite, or n.
   */
  run(kind: number, a: number, b: number, n: number, out: number): number;
}

let cached: DiffSimd | null | undefined;

/** The module, or null to use the JavaScript loops. */
export function diffSimd(): DiffSimd | null {
  if (cached === undefined) cached = instantiateKernels<DiffSimd>(diffStatsWasmBase64);
  return cached;
}
