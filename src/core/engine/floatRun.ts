/**
 * Reading a run of float elements from a file into float32, in a worker thread: the bytes go into
 * one growing scratch buffer shared by every caller in the thread (each call has decoded them
 * before it returns), then BF16/F16/F32/F64 are decoded with the one rounding rule of
 * numeric/convert.ts.
 */
import { ChatVecError } from '../errors';
import { readerFor } from '../io/handleCache';
import { decodeToF32 } from '../numeric/convert';
import { dtypeBytes, isFloatDtype } from '../safetensors/dtype';
import type { ChunkRef } from './chunking';

let raw = new Uint8Array(0);

/**
 * Reads `count` elements starting `back` elements before `ref` into `into` (float32).
 * @returns the bytes read
 * @throws ChatVecError Internal for a non-float dtype; Io on a short read
 */
export function readFloatRun(ref: ChunkRef, count: number, into: Float32Array, back = 0): number {
  if (!isFloatDtype(ref.dtype)) throw new ChatVecError('Internal', `${ref.file}: ${ref.dtype} is not a float dtype`);
  const size = dtypeBytes(ref.dtype);
  if (raw.length < count * size) raw = new Uint8Array(count * size);
  const bytes = raw.subarray(0, count * size);
  readerFor(ref.file).readIntoSync(bytes, ref.position - back * size);
  decodeToF32(ref.dtype, bytes, into, count);
  return bytes.length;
}
