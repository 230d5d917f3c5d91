/**
 * The compute backend of the chunk kernels: what the engine asks of a CPU or a GPU. Both
 * implementations compute the same functions with the same float32 operation order, so their
 * outputs are interchangeable (see cpuKernels.ts for the exact semantics).
 */
import { ChatVecError, type CancelSignal } from '../errors';
import { getEnv } from '../io/env';
import { gpuDeviceNodesPresent } from '../io/gpuDevices';
import { CpuBackend } from './cpuBackend';
import type { DiffStats, ElementArray, FusedApplyRequest } from './elements';
import { createGpuBackend, type GpuBackend, type GpuBackendOptions } from './gpu/gpuBackend';

export * from './elements';

/** What a backend is, for progress messages and the output's metadata. */
export interface BackendInfo {
  readonly kind: 'cpu' | 'gpu';
  /** e.g. "cpu" or "gpu: llvmpipe (opengles, software)". */
  readonly name: string;
  /** For GPUs: the adapter's device name, backend (vulkan, metal, d3d12, opengles…) and kind. */
  readonly adapter?: { readonly name: string; readonly backend: string; readonly software: boolean; readonly description: string };
}

/** Options common to the kernels of a backend. */
export interface KernelOptions {
  /** Checked between chunks; a cancelled signal makes the call reject with CancelledError. */
  readonly signal?: CancelSignal;
}

/**
 * The chunk kernels. Inputs may be of any length (the GPU streams them through its own chunks);
 * several calls may run at once. Methods reject with ChatVecError: 'InvalidArgument' for
 * mismatched lengths, dtypes or term counts, 'Cancelled', and 'Internal' when a device fails
 * (the caller may retry on the CPU).
 */
export interface ComputeBackend {
  readonly kind: 'cpu' | 'gpu';
  /** Short name for logs: "cpu", "gpu: <adapter>". */
  readonly name: string;
  describe(): BackendInfo;
  /** See FusedApplyRequest; resolves to the output (the request's `out` when given). */
  fusedApply(req: FusedApplyRequest, opts?: KernelOptions): Promise<ElementArray>;
  /** Delta statistics of `b` against `a` (same length). */
  reduceDiff(a: ElementArray, b: ElementArray, opts?: KernelOptions): Promise<DiffStats>;
  /** Releases the device and its buffers; the backend is unusable afterwards. Idempotent. */
  dispose(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Selection

/** What the user asked for: `--backend` / the `chatVector.computeBackend` setting. */
export type BackendKind = 'auto' | 'cpu' | 'gpu';

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
  readonly backend: ComputeBackend;
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
 * The caller owns the returned backend and must dispose() it.
 * @throws ChatVecError('InvalidArgument') for an unknown kind; ChatVecError('Unsupported') with
 *   the reason when 'gpu' and failIfUnavailable find no usable GPU.
 */
export async function selectBackend(kind: BackendKind, jobBytes: number, opts: SelectOptions = {}): Promise<BackendSelection> {
  const cpu = (reason: string, fellBack: boolean): BackendSelection => {
    if (fellBack && kind === 'gpu' && opts.failIfUnavailable) throw new ChatVecError('Unsupported', reason.replace(/: using the CPU$/, ''));
    return { backend: new CpuBackend(), reason, fellBack };
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
      const selfTest = await g.selfTest();
      if (selfTest.ok) {
        const reason = `${kind === 'gpu' ? 'GPU requested' : `job of ${mib(jobBytes)} is above the GPU threshold`}: using ${info.name}`;
        return { backend: g, reason, fellBack: false };
      }
      why = `the GPU (${info.name}) failed its exactness self-test (${selfTest.reason})`;
    }
  } catch (e) {
    why = `${kind === 'gpu' ? 'GPU requested but no' : 'no'} usable GPU (${e instanceof Error ? e.message : String(e)})`;
  }
  await g?.dispose().catch(() => undefined);
  return cpu(`${why}: using the CPU`, true);
}
