/**
 * The CPU implementation of each kernel for this thread: WebAssembly SIMD where the runtime has
 * it, the JavaScript reference otherwise (or with CHATVEC_KERNEL=js). Both compute the same
 * results (combine: bit for bit; diff: the counts exactly, the sums within ../diffBound.ts of the
 * reference's float64 sums).
 */
import type { CombineArgs, CpuKernel, DiffArgs, DiffSums } from '../types';
import { combineJsKernel } from './combineJs';
import { combineSimdKernel } from './combineSimd';
import { diffJsKernel } from './diffJs';
import { diffSimdKernel } from './diffSimd';
import { type GemmKernel, gemmJsKernel, gemmSimdKernel } from './gemmSimd';
import { type LowRankKernel, lowRankJsKernel, lowRankSimdKernel } from './lowRankSimd';

let forced: 'js' | 'simd' | null = null;
let combine: CpuKernel<CombineArgs, void> | undefined;
let diff: CpuKernel<DiffArgs, DiffSums> | undefined;
let gemm: GemmKernel | undefined;
let lowRank: LowRankKernel | undefined;

/** The combine kernel this thread runs. */
export function cpuCombine(): CpuKernel<CombineArgs, void> {
  return (combine ??= (forced !== 'js' && combineSimdKernel()) || combineJsKernel);
}

/** The diff kernel this thread runs. */
export function cpuDiff(): CpuKernel<DiffArgs, DiffSums> {
  return (diff ??= (forced !== 'js' && diffSimdKernel()) || diffJsKernel);
}

/** The GEMM kernel of the randomized SVD (extract --rank) this thread runs. */
export function cpuGemm(): GemmKernel {
  return (gemm ??= (forced !== 'js' && gemmSimdKernel()) || gemmJsKernel);
}

/** The low-rank product of apply (a LoRA adapter's B·A) this thread runs. */
export function cpuLowRank(): LowRankKernel {
  return (lowRank ??= (forced !== 'js' && lowRankSimdKernel()) || lowRankJsKernel);
}

/**
 * Chooses the implementations of this thread (tests run both on the same data); 'simd' still
 * falls back to JavaScript where WebAssembly SIMD is unavailable. Returns what the diff kernel now uses.
 */
export function useCpuKernels(kind: 'simd' | 'js'): 'simd' | 'js' {
  forced = kind;
  combine = undefined;
  diff = undefined;
  gemm = undefined;
  lowRank = undefined;
  return cpuDiff().impl;
}
