/**
 * Which backend runs a job's chunk kernels. Decided once per job, before the output is planned
 * (the output's `__metadata__` names it), and released when the job ends: the GPU device is
 * destroyed so that Node can exit (Dawn keeps the process alive while a device lives).
 *
 * 'cpu' never loads the webgpu package. 'gpu' uses the GPU when an adapter exists and passes its
 * exactness self-test, and otherwise runs on the CPU after a warning saying why. 'auto' follows
 * selectBackend: the CPU below the size threshold or when only a software adapter exists.
 */
import { type SelectOptions, selectBackend } from '../compute/select';
import type { ComputeBackend } from '../compute/types';
import type { BackendChoice, JobContext } from '../jobs/types';
import { threadCount } from '../jobs/threadLimit';

/** The backend chosen for one job. */
export interface JobCompute {
  /** What runs the combine kernels, for the metadata and JobOutcome.backend: "gpu: <adapter> (…)" or "cpu (N threads)". */
  readonly label: string;
  /** The GPU backend when one was selected; null: the CPU worker pool runs everything. */
  readonly gpu: ComputeBackend | null;
  /** Why this backend (selectBackend's reason). */
  readonly reason: string;
  /** After a GPU failure mid-job: rerun on the CPU, or fail the job (no output is kept). */
  readonly onGpuFailure: 'cpu' | 'fail';
  /** GPU tasks in flight. */
  readonly lanes?: number;
}

/** In-process tuning and test hooks (not part of the job options: the task host never sends them). */
export interface ComputeHooks {
  /** Passed to selectBackend (gpuOff, thresholds, GPU buffer sizes …). */
  readonly select?: SelectOptions;
  /** Wraps the selected GPU backend (tests inject device failures with it). */
  readonly wrapGpu?: (gpu: ComputeBackend) => ComputeBackend;
  /** Default 'cpu'. */
  readonly onGpuFailure?: 'cpu' | 'fail';
  readonly lanes?: number;
}

/** A JobContext that may carry ComputeHooks; runApply and runExtract accept it. */
export interface ComputeJobContext extends JobContext {
  readonly compute?: ComputeHooks;
}

/** Selects at most one backend for a job and owns it until dispose(). */
export class ComputeScope {
  private chosen: JobCompute | null = null;
  private owned: ComputeBackend | null = null;

  constructor(
    private readonly kind: BackendChoice | undefined,
    private readonly ctx: ComputeJobContext,
  ) {}

  /**
   * Picks the backend for a job reading `jobBytes` bytes with `threads` worker threads (the
   * option; all cores when undefined). Logs the reason: 'warn' when 'gpu' was asked for and the
   * CPU is used, 'info' otherwise. Later calls return the first choice.
   * @throws ChatVecError('InvalidArgument') for an unknown kind or a bad thread count
   */
  async select(jobBytes: number, threads: number | undefined): Promise<JobCompute> {
    if (this.chosen) return this.chosen;
    const cpuLabel = `cpu (${threadCount(threads)} threads)`;
    const hooks = this.ctx.compute ?? {};
    const common = { onGpuFailure: hooks.onGpuFailure ?? 'cpu', lanes: hooks.lanes } as const;
    const kind = this.kind ?? 'auto';
    if (kind === 'cpu') return (this.chosen = { label: cpuLabel, gpu: null, reason: 'the CPU backend was requested', ...common });
    const sel = await selectBackend(kind, jobBytes, hooks.select);
    if (sel.gpu) {
      this.owned = sel.gpu;
      this.ctx.onLog?.('info', `compute backend: ${sel.reason}`);
      const gpu = hooks.wrapGpu ? hooks.wrapGpu(sel.gpu) : sel.gpu;
      return (this.chosen = { label: sel.gpu.name, gpu, reason: sel.reason, ...common });
    }
    if (sel.fellBack) this.ctx.onLog?.(kind === 'gpu' ? 'warn' : 'info', `compute backend: ${sel.reason} (${cpuLabel})`);
    return (this.chosen = { label: cpuLabel, gpu: null, reason: sel.reason, ...common });
  }

  /** Releases the GPU, if one was selected. Idempotent. */
  async dispose(): Promise<void> {
    const b = this.owned;
    this.owned = null;
    await b?.dispose();
  }
}

/** Runs `body` with a ComputeScope and disposes the scope however the body ends. */
export async function withCompute<T>(kind: BackendChoice | undefined, ctx: ComputeJobContext, body: (scope: ComputeScope) => Promise<T>): Promise<T> {
  const scope = new ComputeScope(kind, ctx);
  try {
    return await body(scope);
  } finally {
    // A failing release must not hide the job's own result or error.
    await scope.dispose().catch((e: unknown) => ctx.onLog?.('warn', `releasing the GPU failed: ${e instanceof Error ? e.message : String(e)}`));
  }
}
