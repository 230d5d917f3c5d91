/**
 * Where the SIMD kernels' arrays live in their WebAssembly memory. A task's arrays are laid out
 * back to back (16-byte aligned, in the task's order) from a kernel's first offset, followed by
 * the float32 regions the kernel computes in. `arrays()` hands out views of that layout so the
 * engine reads file bytes straight into them (no copy); arrays from elsewhere (tests) are copied
 * in first.
 */
import { ChatVecError } from '../../errors';
import type { FloatDtype } from '../../safetensors/dtype';
import { bytesOf, elementBytes, viewElements } from '../elements';
import type { ElementArray } from '../types';

const WASM_PAGE = 65536;

export const align16 = (x: number): number => Math.ceil(x / 16) * 16;

/**
 * Byte offsets of arrays of `dtypes`, `n` elements each, from `first`, and the offset after them.
 */
export function arrayOffsets(dtypes: readonly FloatDtype[], n: number, first: number): { offsets: number[]; after: number } {
  const offsets: number[] = [];
  let at = first;
  for (const d of dtypes) {
    offsets.push(at);
    at = align16(at + n * elementBytes(d));
  }
  return { offsets, after: at };
}

/** Grows `memory` to hold at least `end` bytes (growing detaches earlier views of it). */
export function growTo(memory: WebAssembly.Memory, end: number): void {
  const have = memory.buffer.byteLength;
  if (end > have) memory.grow(Math.ceil((end - have) / WASM_PAGE));
}

/** Views of `memory` at `offsets`: one array of each dtype, `n` elements each. */
export function viewsAt(memory: WebAssembly.Memory, dtypes: readonly FloatDtype[], offsets: readonly number[], n: number): ElementArray[] {
  return dtypes.map((d, i) => viewElements(d, new Uint8Array(memory.buffer, offsets[i]!, n * elementBytes(d))));
}

/** True when every array of `list` is the view at its offset in `memory` (as handed out by arrays()). */
export function inPlace(memory: WebAssembly.Memory, list: readonly ElementArray[], offsets: readonly number[]): boolean {
  return list.every((x, i) => x.data.buffer === memory.buffer && x.data.byteOffset === offsets[i]);
}

/**
 * Copies arrays from outside `memory` into the views `place()` hands out and returns those views.
 * @param kernel names the kernel in the error
 * @throws ChatVecError('Internal') when an array already lies in `memory` but not where arrays()
 *   put it: the copy could overwrite it, or growing the memory could detach it
 */
export function copyIn(memory: WebAssembly.Memory, list: readonly ElementArray[], place: () => ElementArray[], kernel: string): ElementArray[] {
  if (list.some((x) => x.data.buffer === memory.buffer)) {
    throw new ChatVecError('Internal', `${kernel} kernel: arrays from arrays() must be passed in the order they were handed out, for the same element count`);
  }
  const inside = place();
  list.forEach((x, i) => bytesOf(inside[i]!).set(bytesOf(x)));
  return inside;
}
