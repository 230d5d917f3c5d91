/**
 * A term whose τ is a low-rank product (a LoRA adapter's B·A), as chunk tasks carry it: where the
 * factor runs are, and how a worker forms the task's elements of τ from them in float32
 * (compute/kernels/lowRankJs.ts). Apply adds it like any other term; diff compares against it.
 */
import type { LowRankArgs } from '../compute/kernels/lowRankJs';
import { lowRankChunk } from '../compute/kernels/lowRankJs';
import { ChatVecError } from '../errors';
import { readerFor } from '../io/handleCache';
import { decodeToF32 } from '../numeric/convert';
import { type Dtype, type FloatDtype, dtypeBytes, isFloatDtype } from '../safetensors/dtype';
import type { ChunkRef } from './chunking';

/** Factors in a file: a run of `count` elements. */
export interface FactorRef extends ChunkRef {
  readonly count: number;
}

export interface LowRankTerm extends Omit<LowRankArgs, 'left' | 'right'> {
  /** ratio × the adapter's scale. */
  readonly ratio: number;
  readonly left: FactorRef;
  readonly right: FactorRef;
}

// Factor buffers reused across tasks of one worker (two: left and right).
const factorBytes: Uint8Array[] = [new Uint8Array(0), new Uint8Array(0)];
const factorValues: Float32Array[] = [new Float32Array(0), new Float32Array(0)];

function readFactor(ref: FactorRef, slot: 0 | 1): Float32Array {
  if (!isFloatDtype(ref.dtype as Dtype)) throw new ChatVecError('Internal', `${ref.file}: ${ref.dtype} is not a float dtype`);
  const dtype = ref.dtype as FloatDtype;
  const byteLength = ref.count * dtypeBytes(dtype);
  if (factorBytes[slot]!.length < byteLength) factorBytes[slot] = new Uint8Array(byteLength);
  if (factorValues[slot]!.length < ref.count) factorValues[slot] = new Float32Array(ref.count);
  const raw = factorBytes[slot]!.subarray(0, byteLength);
  readerFor(ref.file).readIntoSync(raw, ref.position);
  const values = factorValues[slot]!.subarray(0, ref.count);
  decodeToF32(dtype, raw, values, ref.count);
  return values;
}

/**
 * Reads the term's factors and writes its elements of B·A (unscaled: the ratio is applied by the
 * caller) into `out` (float32, `term.count` elements), in the calling worker thread.
 * @throws ChatVecError Io on a short read, Internal for a non-float factor
 */
export function formLowRank(term: LowRankTerm, out: Float32Array): void {
  lowRankChunk({ ...term, left: readFactor(term.left, 0), right: readFactor(term.right, 1) }, out);
}
