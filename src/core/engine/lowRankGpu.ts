/**
 * `extract --rank` with a GPU: each matrix's factorisation (lowRankTask.ts) runs on the main
 * thread with its GEMMs on the GPU (compute/gpu/gemmGpu.ts, float32 sums) and the rest — the
 * difference, re-orthonormalisation, the small eigenproblem, the error of the stored factors — on
 * the CPU in float64 as in the worker. The GPU executor reads both inputs of a matrix into its
 * lane (so memory is a few matrices: lanes × (chat + base + τ + panels)); a GPU failure reruns
 * the matrix, and every later one, in the worker pool.
 */
import { type ChatVecError, throwIfCancelled } from '../errors';
import type { WorkerTask } from '../io/workerPool';
import { type LowRankResult, randomizedLowRankAsync } from '../compute/randomizedSvd';
import type { AcceleratedKind } from './gpuExecutor';
import { type LowRankFactorResult, type LowRankFactorTask, factorOptions, tauFromInputs, writeFactors } from './lowRankTask';

/** The factors, or the task's own error (τ with NaN/±Inf), which is not a GPU failure. */
type Factored = { readonly ok: true; readonly r: LowRankResult } | { readonly ok: false; readonly error: ChatVecError };

/** Factor tasks on the GPU (see the file comment). */
export const lowRankOnGpu: AcceleratedKind<LowRankFactorTask, Factored, LowRankFactorResult> = {
  usesAccelerator: (t: WorkerTask): t is LowRankFactorTask => t.kind === 'lowRankFactor',
  inputs: (t) => [t.chat, t.base],
  async compute(gpu, t, inputs, _output, signal) {
    throwIfCancelled(signal);
    const d = tauFromInputs(t, inputs);
    if (!d.ok) return d;
    const gemm = gpu.gemm();
    try {
      return { ok: true, r: await randomizedLowRankAsync(gemm, d.tau, t.rows, t.cols, factorOptions(t), signal) };
    } finally {
      gemm.release();
    }
  },
  finish(t, f, _inputs, io) {
    if (!f.ok) throw f.error;
    return writeFactors(t, f.r, (bytes, position) => io.write(t.out.file, bytes, position));
  },
};
