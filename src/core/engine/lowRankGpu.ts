/**
 * `extract --rank` with a GPU: each matrix's factorisation (lowRankTask.ts) runs on the main
 * thread with its GEMMs on the GPU (compute/gpu/gemmGpu.ts, float32 sums) and the rest — the
 * difference, re-orthonormalisation, the small eigenproblem, the error of the stored factors — on
 * the CPU in float64 as in the worker. The GPU executor reads both inputs of a matrix into its
 * lane (so memory is a few matrices: lanes × (chat + base + τ + panels)); a GPU failure reruns
 * the matrix, and every later one, in the worker pool.
 */
import { ChatVecError, throwIfCancelled } from '../errors';
import { bytesOf } from '../compute/elements';
import type { WorkerTask } from '../io/workerPool';
import { type LowRankResult, randomizedLowRankAsync } from '../compute/randomizedSvd';
import type { AcceleratedKind } from './gpuExecutor';
import { type LowRankFactorResult, type LowRankFactorTask, differenceInto, factorOptions, writeFactors } from './lowRankTask';

/** The factors, or the task's own error (τ with NaN/±Inf), which is not a GPU failure. */
type Factored = { readonly ok: true; readonly r: LowRankResult } | { readonly ok: false; readonly error: ChatVecError };

/** Factor tasks on the GPU (see the file comment). */
export const lowRankOnGpu: AcceleratedKind<LowRankFactorTask, Factored, LowRankFactorResult> = {
  usesAccelerator: (t: WorkerTask): t is LowRankFactorTask => t.kind === 'lowRankFactor',
  inputs: (t) => [t.chat, t.base],
  async compute(gpu, t, inputs, _output, signal) {
    throwIfCancelled(signal);
    const tau = new Float32Array(t.count);
    const all = [bytesOf(inputs[0]!), bytesOf(inputs[1]!)] as const;
    try {
      differenceInto(t, tau, (which, first, count, bytes) => {
        const src = all[which === 'chat' ? 0 : 1];
        const size = src.length / t.count;
        bytes.set(src.subarray(first * size, (first + count) * size));
      });
    } catch (e) {
      if (e instanceof ChatVecError && e.code === 'InvalidArgument') return { ok: false, error: e };
      throw e;
    }
    const gemm = gpu.gemm();
    try {
      return { ok: true, r: await randomizedLowRankAsync(gemm, tau, t.rows, t.cols, factorOptions(t), signal) };
    } finally {
      gemm.release();
    }
  },
  finish(t, f, _inputs, io) {
    if (!f.ok) throw f.error;
    return writeFactors(t, f.r, (bytes, position) => io.write(t.out.file, bytes, position));
  },
};
