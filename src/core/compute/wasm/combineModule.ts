/**
 * The WebAssembly module of combine.wat, instantiated once per thread: the combine kernel's SIMD
 * building blocks (../kernels/combineSimd.ts lays out the memory) and the non-finite scan of
 * engine/nonFinite.ts. Returns null where WebAssembly SIMD is unavailable, or when
 * CHATVEC_KERNEL=js asks for the plain JavaScript loops (tests compare the two).
 */
import { combineWasmBase64 } from './generated/combineWasm';
import { instantiateKernels } from './instantiate';

interface Exports {
  memory: WebAssembly.Memory;
  bf16_to_f32(src: number, dst: number, n: number): void;
  f32_to_bf16(src: number, dst: number, n: number): void;
  fused_bf16(cp: number, chat: number, base: number, out: number, r: number, n: number): void;
  acc_diff(acc: number, a: number, b: number, r: number, n: number): void;
  set_diff(acc: number, a: number, b: number, r: number, n: number): void;
  acc_scaled(acc: number, a: number, r: number, n: number): void;
  set_scaled(acc: number, a: number, r: number, n: number): void;
  /** 1 when any of n 16-bit floats at p has every bit of `exp` set (NaN/±Inf): anyNonFinite of engine/nonFinite.ts in this memory. */
  any_nonfinite16(p: number, n: number, exp: number): number;
  /** The same for n float32 at p. */
  any_nonfinite32(p: number, n: number): number;
}

export interface SimdKernels extends Exports {
  /** Makes the memory at least `bytes` long (views of memory.buffer must be re-made after). */
  reserve(bytes: number): void;
}

let cached: SimdKernels | null | undefined;

export function simdKernels(): SimdKernels | null {
  if (cached !== undefined) return cached;
  const ex = instantiateKernels<Exports>(combineWasmBase64);
  cached = ex && {
    ...ex,
    reserve(n: number) {
      const have = ex.memory.buffer.byteLength;
      if (n <= have) return;
      ex.memory.grow(Math.ceil((n - have) / 65536));
      // Touch the new pages now: the working set is then fixed from the first chunk on, the
      // same for a small model as for a large one.
      new Uint8Array(ex.memory.buffer, have).fill(0);
    },
  };
  return cached;
}
