/**
 * `extract --rank` with a GPU: each matrix's factorisation (lowRankTask.ts) runs on the main
 * thread with its GEMMs on the GPU (compute/gpu/gemmGpu.ts, float32 sums) and the rest — the
 * difference, re-orthonormalisation, the small eigenproblem, the error of the stored factors — on
 * the CPU in float64 as in the worker. The GPU executor reads both inputs of a matrix into its
 * lane (so memory is a few matrices: lanes × (chat + base + τ + panels)); a GPU failure reruns
 * the matrix, and every later one, in the worker pool.
 */
import { type CancelSignal, type ChatVecError, throwIfCancelled } from '../errors';
import type { ComputeBackend, ElementArray, GpuGemmKernel } from '../compute/types';
import type { WorkerTask } from '../io/workerPool';
import { type LowRankResult, randomizedLowRankAsync } from '../compute/randomizedSvd';
import type { AcceleratedKind } from './gpuExecutor';
import { type LowRankFactorResult, type LowRankFactorTask, type MatrixPairTask, factorOptions, tauFromInputs, writeFactors } from './lowRankTask';

/** A matrix task's result on the GPU, or its own error (τ with NaN/±Inf), which is not a GPU failure. */
export type OnGpu<R> = { readonly ok: true; readonly r: R } | { readonly ok: false; readonly error: ChatVecError };

/**
 * The GPU step of a per-matrix task: τ = chat − base from the inputs the executor read (on the
 * CPU, as in a worker), then `run` with the GPU's GEMM kernel, released afterwards.
 */
export async function withTauOnGpu<R>(gpu: ComputeBackend, t: MatrixPairTask, inputs: readonly ElementArray[], signal: CancelSignal | undefined, run: (gemm: GpuGemmKernel, tau: Float32Array) => Promise<R>): Promise<OnGpu<R>> {
  throwIfCancelled(signal);
  const d = tauFromInputs(t, inputs);
  if (!d.ok) return d;
  const gemm = gpu.gemm();
  try {
    return { ok: true, r: await run(gemm, d.tau) };
  } finally {
    gemm.release();
  }
}

/** Factor tasks on the GPU (see the file comment). */
export const lowRankOnGpu: AcceleratedKind<LowRankFactorTask, OnGpu<LowRankResult>, LowRankFactorResult> = {
  usesAccelerator: (t: WorkerTask): t is LowRankFactorTask => t.kind === 'lowRankFactor',
  inputs: (t) => [t.chat, t.base],
  compute: (gpu, t, inputs, _output, signal) => withTauOnGpu(gpu, t, inputs, signal, (gemm, tau) => randomizedLowRankAsync(gemm, tau, t.rows, t.cols, factorOptions(t), signal)),
  finish(t, f, _inputs, io) {
    if (!f.ok) throw f.error;
    return writeFactors(t, f.r, (bytes, position) => io.write(t.out.file, bytes, position));
  },
};
