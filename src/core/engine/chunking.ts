/** Splitting tensors into fixed-size element ranges: the unit of work of every streaming job. */
import type { TensorLocation } from '../safetensors/reader';
import { type Dtype, dtypeBits } from '../safetensors/dtype';
import type { AdapterAddend } from '../checkpoint/tensorAddend';

/**
 * Elements per chunk task: 1 Mi elements is 2–4 MiB per input in bf16/f32, large enough to
 * amortise messaging and small enough that memory stays flat (a few such buffers per worker).
 */
export const CHUNK_ELEMENTS = 1 << 20;

/** A run of elements in a file: where element 0 of a chunk is and how it is stored. */
export interface ChunkRef {
  readonly file: string;
  /** Absolute byte position of the chunk's first element. */
  readonly position: number;
  readonly dtype: Dtype;
  /** The tensor is read with a LoRA adapter merged in (recipes' `model+adapter`; adaptedRun.ts). */
  readonly adapter?: AdapterAddend;
}

/** [first, count) element ranges covering `elementCount` in steps of `chunk`. */
export function* chunkRanges(elementCount: number, chunk = CHUNK_ELEMENTS): Generator<readonly [number, number]> {
  for (let first = 0; first < elementCount; first += chunk) yield [first, Math.min(chunk, elementCount - first)];
}

/** The ChunkRef of element `first` of a tensor stored at `t` (with its adapter, when it has one). */
export function refAt(t: Pick<TensorLocation, 'file' | 'position'> & { dtype: Dtype; adapter?: AdapterAddend }, first: number): ChunkRef {
  const ref = { file: t.file, position: t.position + (first * dtypeBits(t.dtype)) / 8, dtype: t.dtype };
  return t.adapter ? { ...ref, adapter: t.adapter } : ref;
}
