/** Reusable JavaScript buffers for the kernels of one thread: memory stays flat whatever the model size. */
import type { FloatDtype } from '../../safetensors/dtype';
import { elementBytes, viewElements } from '../elements';
import type { ElementArray } from '../types';

/** Grows-only buffers by slot; each starts at offset 0 of its own ArrayBuffer (aligned for any dtype). */
export class ScratchArrays {
  private slots: Uint8Array[] = [];

  /** Arrays of `n` elements, one per dtype, in this scratch (valid until the next call). */
  arrays(dtypes: readonly FloatDtype[], n: number): ElementArray[] {
    return dtypes.map((d, i) => {
      const bytes = n * elementBytes(d);
      let b = this.slots[i];
      if (!b || b.length < bytes) this.slots[i] = b = new Uint8Array(bytes);
      return viewElements(d, b.subarray(0, bytes));
    });
  }
}

/** A float32 buffer of at least `n` elements, grown (never shrunk) in `holder`. */
export function f32Scratch(holder: { buf: Float32Array }, n: number): Float32Array {
  if (holder.buf.length < n) holder.buf = new Float32Array(n);
  return holder.buf.subarray(0, n);
}
