/**
 * Choosing where a job's kernels run: the CPU (worker threads running each kernel's SIMD or
 * JavaScript implementation) or the GPU backend (its WGSL implementations), from what the user
 * asked for (`--backend`, the `chatVector.computeBackend` setting), the job's size and what the
 * machine has.
 */
import { ChatVecError } from '../errors';
import { getEnv } from '../io/env';
import { gpuDeviceNodesPresent } from '../io/gpuDevices';
import type { BackendChoice } from '../jobs/types';
import { createGpuBackend, type GpuBackend, type GpuBackendOptions } from './gpu/gpuBackend';
import { gpuSelfTest } from './gpu/selfTest';

/** Jobs smaller than this (bytes read) stay on the CPU under 'auto': transfers would not pay. */
export const DEFAULT_GPU_THRESHOLD_BYTES = 256 * 1024 * 1024;

/** Options of selectBackend. Tests use `gpuOff` and `gpu` to force paths. */
export interface SelectOptions {
  /** Treat the GPU as absent (as does the environment variable CHATVEC_GPU=off). */
  readonly gpuOff?: boolean;
  /** Byte size from which 'auto' tries the GPU; DEFAULT_GPU_THRESHOLD_BYTES when absent. */
  readonly autoThresholdBytes?: number;
  /** Let 'auto' pick a software adapter (llvmpipe, SwiftShader…); 'gpu' always may. */
  readonly allowSoftwareForAuto?: boolean;
  /**
   * With 'gpu': throw instead of falling back when no usable GPU exists (for a setting whose
   * contract is "fail when there is no GPU"). 'auto' always falls back.
   */
  readonly failIfUnavailable?: boolean;
  /** Passed to the GPU backend (device options, buffer sizes). */
  readonly gpu?: GpuBackendOptions;
}

/** The backend to use and why: the reason is meant for the job's log and progress. */
export interface BackendSelection {
  readonly kind: 'cpu' | 'gpu';
  /** The GPU backend when kind is 'gpu' (the caller disposes it); null for the CPU. */
  readonly gpu: GpuBackend | null;
  readonly reason: string;
  /** True when the GPU was asked for (or tried under 'auto') but the CPU was returned. */
  readonly fellBack: boolean;
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(bytes < 1024 * 1024 ? 3 : 0)} MiB`;
}

/** Why `auto` stays on the CPU without probing again in this process; null: probe. */
let autoSkipReason: string | null | undefined;

/**
 * Picks the backend for a job reading `jobBytes` bytes. 'cpu' → CPU. 'gpu' → the GPU when an
 * adapter exists and passes its self-test, else the CPU with the reason. 'auto' → the CPU for
 * jobs under the threshold, when the GPU is off, or when the only adapter is a software one;
 * the GPU otherwise. Falls back rather than throwing for a missing or failing GPU, unless
 * `failIfUnavailable` is set with 'gpu'.
 * The caller owns a returned GPU backend and must dispose() it.
 * @throws ChatVecError('InvalidArgument') for an unknown kind; ChatVecError('Unsupported') with
 *   the reason when 'gpu' and failIfUnavailable find no usable GPU.
 */
export async function selectBackend(kind: BackendChoice, jobBytes: number, opts: SelectOptions = {}): Promise<BackendSelection> {
  const cpu = (reason: string, fellBack: boolean): BackendSelection => {
    if (fellBack && kind === 'gpu' && opts.failIfUnavailable) throw new ChatVecError('Unsupported', reason.replace(/: using the CPU$/, ''));
    return { kind: 'cpu', gpu: null, reason, fellBack };
  };
  if (kind === 'cpu') return cpu('the CPU backend was requested', false);
  if (kind !== 'gpu' && kind !== 'auto') throw new ChatVecError('InvalidArgument', `unknown backend "${String(kind)}" (auto, cpu or gpu)`);
  const envGpu = getEnv('CHATVEC_GPU')?.trim().toLowerCase();
  if (opts.gpuOff || envGpu === 'off' || envGpu === '0' || envGpu === 'false') {
    const why = opts.gpuOff ? 'the GPU is switched off' : `the GPU is switched off (CHATVEC_GPU=${envGpu})`;
    return cpu(`${kind === 'gpu' ? 'GPU requested but ' : ''}${why}: using the CPU`, kind === 'gpu');
  }
  const threshold = opts.autoThresholdBytes ?? DEFAULT_GPU_THRESHOLD_BYTES;
  if (kind === 'auto' && jobBytes < threshold) {
    return cpu(`job of ${mib(jobBytes)} is below the GPU threshold of ${mib(threshold)}: using the CPU`, false);
  }
  if (kind === 'auto' && !opts.allowSoftwareForAuto) {
    // Probing loads the WebGPU runtime (hundreds of MiB, seconds): skip it where it cannot pay.
    autoSkipReason ??= gpuDeviceNodesPresent() ? null : 'no GPU device found';
    if (autoSkipReason) return cpu(`${autoSkipReason}: using the CPU`, false);
  }
  let g: GpuBackend | undefined;
  let why: string;
  try {
    g = await createGpuBackend(opts.gpu);
    const info = g.describe();
    if (kind === 'auto' && info.adapter?.software && !opts.allowSoftwareForAuto) {
      why = `only a software GPU adapter (${info.adapter.name}) is available`;
      autoSkipReason = why; // the adapter will not change while this process lives
    } else {
      const selfTest = await gpuSelfTest(g);
      if (selfTest.ok) {
        const reason = `${kind === 'gpu' ? 'GPU requested' : `job of ${mib(jobBytes)} is above the GPU threshold`}: using ${info.name}`;
        return { kind: 'gpu', gpu: g, reason, fellBack: false };
      }
      why = `the GPU (${info.name}) failed its exactness self-test (${selfTest.reason})`;
    }
  } catch (e) {
    why = `${kind === 'gpu' ? 'GPU requested but no' : 'no'} usable GPU (${e instanceof Error ? e.message : String(e)})`;
  }
  await g?.dispose().catch(() => undefined);
  return cpu(`${why}: using the CPU`, true);
}
