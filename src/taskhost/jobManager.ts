/**
 * The live jobs of one task host: admission through the queue, cancellation (by id, by the
 * request's cancellation token, or all at shutdown), progress and logs tagged with the job id, and
 * the mapping of an engine outcome onto the protocol's JobResult. Transport-free: main.ts wires it
 * to the JSON-RPC connection.
 */
import { ChatVecError, isCancelled, toChatVecError } from '../core/errors';
import type { BackendChoice, CommonJobOptions as CommonOptions, JobContext, ProgressEvent } from '../core/jobs/types';
import type { JobInfo, JobKind, JobOptionsOf, JobResult, JobResultMap, JobState, LogParams, ProgressParams } from '../protocol/taskHost';
import { JobQueue } from './jobQueue';

/** The engine function behind each job kind. */
export type JobRunners = { readonly [K in JobKind]: (options: JobOptionsOf<K>, ctx: JobContext) => Promise<JobResultMap[K]> };

/** Where the manager reports; main.ts turns these into notifications. */
export interface JobEvents {
  progress(p: ProgressParams): void;
  log(p: LogParams): void;
}

/** The part of a cancellation token the manager needs (vscode-jsonrpc's and VS Code's fit). */
export interface CancellationTokenLike {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): { dispose(): void };
}

/** Option values for jobs that leave them out (settable at run time by `configure`). */
export interface JobDefaults {
  backend: BackendChoice;
  /** Null: the engine's default (all cores). */
  threads: number | null;
}

interface LiveJob {
  readonly jobId: string;
  readonly kind: JobKind;
  readonly signal: { cancelled: boolean };
  state: JobState;
  readonly submittedAt: number;
  startedAt: number | null;
  /** Settles when the job's request is answered (never rejects). */
  settled: Promise<void>;
}

/** Runs, queues, cancels and lists the host's jobs. */
export class JobManager {
  private readonly live = new Map<string, LiveJob>();
  private readonly queue: JobQueue;

  constructor(
    private readonly runners: JobRunners,
    private readonly events: JobEvents,
    concurrency: number,
    readonly defaults: JobDefaults,
  ) {
    this.queue = new JobQueue(concurrency);
  }

  get concurrency(): number {
    return this.queue.limit;
  }

  set concurrency(n: number) {
    this.queue.setLimit(n);
  }

  /**
   * Runs one job to its end. Resolves `{status:'ok'}` or `{status:'cancelled'}`.
   * @throws ChatVecError from the engine (or InvalidArgument for a jobId already in use)
   */
  async run<K extends JobKind>(kind: K, jobId: string, options: JobOptionsOf<K>, token?: CancellationTokenLike): Promise<JobResult<JobResultMap[K]>> {
    if (this.live.has(jobId)) throw new ChatVecError('InvalidArgument', `job id ${jobId} is already in use by a ${this.live.get(jobId)!.kind} job`);
    let markSettled!: () => void;
    const job: LiveJob = {
      jobId,
      kind,
      signal: { cancelled: false },
      state: 'queued',
      submittedAt: Date.now(),
      startedAt: null,
      settled: new Promise<void>((r) => (markSettled = r)),
    };
    this.live.set(jobId, job);
    const tokenListener = token?.onCancellationRequested(() => this.cancel(jobId));
    if (token?.isCancellationRequested) this.cancel(jobId);
    try {
      return await this.runAdmitted(job, options);
    } finally {
      tokenListener?.dispose();
      this.live.delete(jobId);
      markSettled();
    }
  }

  private async runAdmitted<K extends JobKind>(job: LiveJob, options: JobOptionsOf<K>): Promise<JobResult<JobResultMap[K]>> {
    const kind = job.kind as K;
    let release: () => void;
    try {
      release = await this.queue.acquire(job.jobId, (position) => this.events.progress(queuedEvent(job, position)));
    } catch (e) {
      if (isCancelled(e)) {
        this.log('info', `${kind} ${job.jobId} cancelled while queued`, job.jobId);
        return { status: 'cancelled' };
      }
      throw e;
    }
    try {
      if (job.signal.cancelled) return { status: 'cancelled' };
      job.state = 'running';
      job.startedAt = Date.now();
      this.events.progress({ jobId: job.jobId, kind, state: 'running', source: 'host', phase: 'starting', done: 0, total: 0, unit: 'items', bytesPerSecond: 0, etaSeconds: null });
      this.log('info', `${kind} ${job.jobId} started`, job.jobId);
      const ctx: JobContext = {
        signal: job.signal,
        onProgress: (e: ProgressEvent) => this.events.progress({ ...e, jobId: job.jobId, kind, state: 'running', source: 'job' }),
        onLog: (level, message) => this.events.log({ level, message, jobId: job.jobId, source: 'job' }),
      };
      const runner = this.runners[kind] as (o: JobOptionsOf<K>, c: JobContext) => Promise<JobResultMap[K]>;
      try {
        const result = await runner(this.withDefaults(kind, options), ctx);
        // A job that finished before it noticed a late cancel has written a complete output; say so.
        this.log('info', `${kind} ${job.jobId} finished in ${((Date.now() - job.startedAt) / 1000).toFixed(1)} s${describeBackend(result)}`, job.jobId);
        return { status: 'ok', result };
      } catch (e) {
        if (isCancelled(e) || job.signal.cancelled) {
          // Once the user asked to stop, a failure on the way out (a worker torn down mid-read) is
          // not news to them; keep it for the log only.
          if (!isCancelled(e)) this.log('debug', `${kind} ${job.jobId} failed while cancelling: ${toChatVecError(e).message}`, job.jobId);
          this.log('info', `${kind} ${job.jobId} cancelled`, job.jobId);
          return { status: 'cancelled' };
        }
        const err = toChatVecError(e);
        this.log('error', `${kind} ${job.jobId} failed: ${err.code}: ${err.message}`, job.jobId);
        if (err.details) this.log('debug', err.details, job.jobId);
        throw err;
      }
    } finally {
      release();
    }
  }

  /** Requests cancellation; the job's request answers `cancelled` once the job has cleaned up. */
  cancel(jobId: string): JobState | 'unknown' {
    const job = this.live.get(jobId);
    if (!job) return 'unknown';
    const state = job.state;
    if (!job.signal.cancelled) {
      job.signal.cancelled = true;
      this.log('debug', `${job.kind} ${jobId}: cancellation requested (${state})`, jobId);
    }
    this.queue.withdraw(jobId);
    return state;
  }

  /** Cancels every job. */
  cancelAll(): void {
    for (const id of [...this.live.keys()]) this.cancel(id);
  }

  /** Resolves true once no job is live, false after `timeoutMs`. */
  async whenIdle(timeoutMs: number): Promise<boolean> {
    const all = Promise.all([...this.live.values()].map((j) => j.settled)).then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
    try {
      return await Promise.race([all, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Running jobs, then queued ones in queue order. */
  list(): JobInfo[] {
    const order = [...this.queue.runningIds, ...this.queue.waitingIds];
    const jobs = [...this.live.values()].sort((a, b) => rank(order, a.jobId) - rank(order, b.jobId));
    return jobs.map((j) => ({ jobId: j.jobId, kind: j.kind, state: j.state, cancelling: j.signal.cancelled, submittedAt: j.submittedAt, startedAt: j.startedAt }));
  }

  private withDefaults<O>(kind: JobKind, options: O): O {
    // The demo generator runs on one worker thread of its own and a download computes nothing:
    // neither has kernels to place.
    if (kind === 'createDemo' || kind === 'downloadModel') return options;
    return {
      ...options,
      // 'auto' is the engine's own default; leaving it out keeps the engine's choice visible.
      ...((options as CommonOptions).backend === undefined && this.defaults.backend !== 'auto' ? { backend: this.defaults.backend } : {}),
      ...((options as CommonOptions).threads === undefined && this.defaults.threads !== null ? { threads: this.defaults.threads } : {}),
    };
  }

  private log(level: LogParams['level'], message: string, jobId?: string): void {
    this.events.log(jobId === undefined ? { level, message, source: 'host' } : { level, message, jobId, source: 'host' });
  }
}

function rank(order: readonly string[], id: string): number {
  const i = order.indexOf(id);
  return i < 0 ? order.length : i;
}

function queuedEvent(job: LiveJob, position: number): ProgressParams {
  return {
    jobId: job.jobId,
    kind: job.kind,
    state: 'queued',
    source: 'host',
    phase: 'queued',
    done: 0,
    total: 0,
    unit: 'items',
    bytesPerSecond: 0,
    etaSeconds: null,
    queuePosition: position,
    message: position === 1 ? 'waiting for a running job to finish' : `waiting; ${position - 1} queued ahead`,
  };
}

function describeBackend(result: unknown): string {
  const backend = (result as { backend?: unknown }).backend;
  return typeof backend === 'string' ? ` on ${backend}` : '';
}
