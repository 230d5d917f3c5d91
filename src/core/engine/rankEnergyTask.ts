/**
 * The worker task of the energy-at-rank job (rankEnergy.ts): one matrix per task. The worker reads
 * τ = chat − base (float32, rounded once, as extract --rank does) and measures the energy its
 * best rank-R approximation keeps with the randomized range finder (compute/randomizedSvd.ts
 * rankEnergy) — no factors are formed or written. Memory: τ and the sketch panels of this one
 * matrix. With a GPU the same task runs on the main thread, its GEMMs on the GPU (rankEnergyOnGpu).
 */
import type { WorkerTask } from '../io/workerPool';
import { hashString } from '../numeric/random';
import { type RankEnergyOptions, type RankEnergyResult, rankEnergy, rankEnergyAsync } from '../compute/randomizedSvd';
import { type FloatDtype, dtypeBytes } from '../safetensors/dtype';
import type { AcceleratedKind } from './gpuExecutor';
import { type MatrixPairTask, tauAndWorkspace } from './lowRankTask';
import { type OnGpu, withTauOnGpu } from './lowRankGpu';

/** Sketch columns beyond the rank and the fewest power iterations of the estimate (the view needs no factors). */
export const ENERGY_OVERSAMPLE = 10;
export const ENERGY_MIN_POWER_ITERATIONS = 1;

export interface RankEnergyTask extends MatrixPairTask {
  readonly kind: 'rankEnergy';
  readonly rank: number;
}

export interface RankEnergyTaskResult extends RankEnergyResult {
  /** Bytes read (progress). */
  readonly bytes: number;
}

/** The estimate's options for a task (seeded by the tensor name: the same figures on any thread). */
export function energyOptions(t: RankEnergyTask): RankEnergyOptions {
  return { maxRank: t.rank, oversample: ENERGY_OVERSAMPLE, powerIterations: ENERGY_MIN_POWER_ITERATIONS, seed: hashString(t.tensor) };
}

const bytesRead = (t: RankEnergyTask) => t.count * (dtypeBytes(t.chat.dtype as FloatDtype) + dtypeBytes(t.base.dtype as FloatDtype));

/**
 * Runs a RankEnergyTask in the calling (worker) thread.
 * @throws ChatVecError InvalidArgument when τ holds NaN/±Inf, Io
 */
export function runRankEnergy(t: RankEnergyTask): RankEnergyTaskResult {
  const opts = energyOptions(t);
  const { tau, ws } = tauAndWorkspace(t, opts);
  const r = rankEnergy(tau, t.rows, t.cols, opts, ws);
  return { ...r, bytes: bytesRead(t) };
}

/** Energy tasks on the GPU: τ and the float64 steps on the CPU, the GEMMs on the GPU (as lowRankGpu.ts). */
export const rankEnergyOnGpu: AcceleratedKind<RankEnergyTask, OnGpu<RankEnergyResult>, RankEnergyTaskResult> = {
  usesAccelerator: (t: WorkerTask): t is RankEnergyTask => t.kind === 'rankEnergy',
  inputs: (t) => [t.chat, t.base],
  compute: (gpu, t, inputs, _output, signal) => withTauOnGpu(gpu, t, inputs, signal, (gemm, tau) => rankEnergyAsync(gemm, tau, t.rows, t.cols, energyOptions(t), signal)),
  finish(t, f) {
    if (!f.ok) throw f.error;
    return { ...f.r, bytes: bytesRead(t) };
  },
};
