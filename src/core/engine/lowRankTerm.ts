/**
 * A term whose τ is a low-rank product (a LoRA adapter's B·A), as chunk tasks carry it: where the
 * factor runs are, and how a worker forms the task's elements of τ from them in float32
 * (compute/kernels/lowRankJs.ts is the reference; the thread's kernel, SIMD where available, gives
 * the same bits). Apply adds it like any other term; diff compares against it.
 */
import type { LowRankArgs } from '../compute/kernels/lowRankJs';
import { cpuLowRank } from '../compute/kernels/cpu';
import type { ChunkRef } from './chunking';
import { readFloatRun } from './floatRun';

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

// Factor values reused across tasks of one worker (two: left and right).
const factorValues: Float32Array[] = [new Float32Array(0), new Float32Array(0)];

function readFactor(ref: FactorRef, slot: 0 | 1): Float32Array {
  if (factorValues[slot]!.length < ref.count) factorValues[slot] = new Float32Array(ref.count);
  const values = factorValues[slot]!.subarray(0, ref.count);
  readFloatRun(ref, ref.count, values);
  return values;
}

/**
 * Reads the term's factors and writes its elements of B·A (unscaled: the ratio is applied by the
 * caller) into `out` (float32, `term.count` elements), in the calling worker thread.
 * @throws ChatVecError Io on a short read, Internal for a non-float factor
 */
export function formLowRank(term: LowRankTerm, out: Float32Array): void {
  cpuLowRank().run({ ...term, left: readFactor(term.left, 0), right: readFactor(term.right, 1) }, out);
}
