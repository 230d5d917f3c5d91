/**
 * The typed client of the task host, for the VS Code extension and `chatvec --via-host` (no
 * `vscode` import). It forks the host on first use, sends typed requests, turns the host's
 * notifications into events, cancels through AbortSignals or cancellation tokens, and restarts the
 * host on the next request after a crash — unless it crashed 3 times within a minute, in which
 * case it stops trying and says so until `restart()` is called. A request that is not a job
 * (inspect, recipeCheck, recipePlan, rowStats, status, cancel, configure) that gets no answer within
 * `requestTimeoutMs` (30 s) fails with a {@link TaskHostTimeoutError}, and the host is restarted —
 * once its running jobs have ended, if it has any (they are never cut short for a stuck read).
 *
 * ```ts
 * const client = new TaskHostClient();
 * const sub = client.onProgress('job-1', (p) => bar.report(p));
 * const r = await client.apply({ target, base, chats: [chat], out }, { jobId: 'job-1', cancellation: token });
 * if (r.status === 'cancelled') …; else show(r.result);
 * await client.dispose();
 * ```
 */
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { CancellationToken, NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc/node';
import { ChatVecError } from '../core/errors';
import { clampThreads, describeThreadLimit } from '../core/jobs/threadLimit';
import {
  CancelRequest,
  type CancelResult,
  ConfigureRequest,
  type ConfigureParams,
  type ApplyOptions, type BackendChoice, type CachedModel, type CreateDemoOptions, type DemoTrio, type DiffOptions, type DiffReport, type ExtractOptions, HubCacheListRequest,
  InspectRequest,
  type InspectReport,
  JOB_REQUESTS,
  type JobKind,
  type JobOptionsOf,
  type JobOutcome,
  type JobResult,
  type JobResultMap,
  LogNotification,
  type LogParams,
  type MergeOptions,
  ProgressNotification,
  type ProgressParams,
  type RecipeCheckParams,
  RecipeCheckRequest,
  type RecipeDiagnostic,
  type RecipePlanParams,
  RecipePlanRequest,
  type RecipePlanResult,
  type RowStatsParams,
  RowStatsRequest,
  type RowStatsResult,
  ShutdownRequest,
  StatusRequest,
  TASK_HOST_PROTOCOL_VERSION,
  type TaskHostErrorData,
  type TaskHostStatus,
} from '../protocol/taskHost';
import { type Cancellation, isCancellationRequested, linkCancellation, withTimeout } from './cancellation';
import { isTransportError, type TaskHostCrash, TaskHostCrashedError, type TaskHostTimeout, TaskHostTimeoutError } from './clientErrors';
import { type Disposable, Emitter } from './events';
import { defaultHostScript, describeExit, type HostExit, HostProcess } from './hostProcess';
import { fromResponseError } from './responseErrors';

/**
 * The worker-thread limit (core/jobs/threadLimit.ts) for the extension, which clamps its setting
 * with it and may not import core: the one deliberate re-export of the client.
 */
export { clampThreads, describeThreadLimit } from '../core/jobs/threadLimit';

/** How long a request that is not a job may go unanswered by default, in ms. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** How the client starts hosts; all optional. */
export interface TaskHostClientOptions {
  /** The host bundle. Default: taskhost.js beside this bundle, else <repo>/dist/taskhost.js. */
  readonly hostScript?: string;
  /** The executable; default process.execPath (Electron under VS Code, with ELECTRON_RUN_AS_NODE). */
  readonly execPath?: string;
  /** Node flags for the host; default none (not this process's, e.g. a test runner's loaders). */
  readonly execArgv?: readonly string[];
  /** Extra environment for the host, on top of this process's. */
  readonly env?: Readonly<Record<string, string>>;
  /** Heavy jobs run at once; default 1. */
  readonly concurrency?: number;
  /** Backend for jobs whose options name none. */
  readonly backend?: BackendChoice;
  /** Worker threads for jobs whose options name none; default all cores. Above the machine's limit it is lowered to the limit, with a log line. */
  readonly threads?: number;
  /**
   * How long a request that is not a job (inspect, recipeCheck, recipePlan, rowStats, status,
   * cancel, configure) may go unanswered before it fails and the host is restarted, in ms.
   * Default {@link DEFAULT_REQUEST_TIMEOUT_MS}. Jobs have no limit.
   */
  readonly requestTimeoutMs?: number;
  /** How long `dispose` waits for a graceful shutdown before killing, in ms. Default 5000. */
  readonly shutdownTimeoutMs?: number;
  /** Crash-loop protection: stop restarting after `maxCrashes` crashes within `windowMs`. Default 3 / 60 000. */
  readonly crashLoop?: { readonly maxCrashes: number; readonly windowMs: number };
}

/** Per-call options of a job. */
export interface JobCallOptions {
  /** Unique among this client's live jobs; generated when omitted (see {@link TaskHostClient.newJobId}). */
  readonly jobId?: string;
  /** Cancels the job; the call then resolves `{ status: 'cancelled' }`. */
  readonly cancellation?: Cancellation;
  /** This job's progress (also delivered to {@link TaskHostClient.onProgress} listeners). */
  readonly onProgress?: (p: ProgressParams) => void;
}

interface PendingCall {
  readonly method: string;
  readonly jobId: string | undefined;
  reject(e: unknown): void;
}

interface Session {
  readonly host: HostProcess;
  readonly pending: Set<PendingCall>;
  /** Set before a shutdown or kill we asked for, so the exit is not a crash. */
  stopping: boolean;
  /** A light request timed out while jobs ran: restart the host once they have ended. */
  restartWhenIdle: boolean;
}

/** The typed client of one task host process at a time (see the file comment). */
export class TaskHostClient {
  private session: Session | null = null;
  private starting: Promise<Session> | null = null;
  private readonly crashTimes: number[] = [];
  private lastCrash: TaskHostCrash | null = null;
  private gaveUp = false;
  private disposed = false;
  private jobCounter = 0;
  private readonly idPrefix = randomUUID().slice(0, 8);
  private readonly progressEmitter = new Emitter<ProgressParams>();
  private readonly logEmitter = new Emitter<LogParams>();
  private readonly crashEmitter = new Emitter<TaskHostCrash>();
  private readonly startEmitter = new Emitter<TaskHostStatus>();
  private readonly timeoutEmitter = new Emitter<TaskHostTimeout>();
  /** Notifications without an event of their own (chat sessions: chatClient.ts). */
  private readonly otherEmitter = new Emitter<{ method: string; params: unknown }>();
  private readonly maxCrashes: number;
  private readonly crashWindowMs: number;
  /** `configure` calls, replayed on hosts started later. */
  private readonly settings: ConfigureParams = {};

  constructor(private readonly options: TaskHostClientOptions = {}) {
    this.maxCrashes = options.crashLoop?.maxCrashes ?? 3;
    this.crashWindowMs = options.crashLoop?.windowMs ?? 60_000;
  }

  // -------------------------------------------------------------------------------------------
  // Events

  /** Progress of every job, or (with a job id) of one job. */
  onProgress(listener: (p: ProgressParams) => void): Disposable;
  onProgress(jobId: string, listener: (p: ProgressParams) => void): Disposable;
  onProgress(a: string | ((p: ProgressParams) => void), b?: (p: ProgressParams) => void): Disposable {
    if (typeof a === 'function') return this.progressEmitter.on(a);
    const listener = b!;
    return this.progressEmitter.on((p) => {
      if (p.jobId === a) listener(p);
    });
  }

  /** Log lines: the host's and its jobs' (with jobId), its stderr (level warn), the client's own notes. */
  onLog(listener: (l: LogParams) => void): Disposable {
    return this.logEmitter.on(listener);
  }

  /** A notification of `type` (one without an event of its own here, e.g. chatText). */
  onNotification<P>(type: NotificationType<P>, listener: (p: P) => void): Disposable {
    return this.otherEmitter.on((n) => n.method === type.method && listener(n.params as P));
  }

  /** A host process died unexpectedly (after its in-flight calls were rejected). */
  onCrash(listener: (c: TaskHostCrash) => void): Disposable {
    return this.crashEmitter.on(listener);
  }

  /** A host process started and answered (its status: pid, versions, settings). */
  onStart(listener: (s: TaskHostStatus) => void): Disposable {
    return this.startEmitter.on(listener);
  }

  /** A request that is not a job timed out (after its caller's promise was rejected); the host is being restarted. */
  onTimeout(listener: (t: TaskHostTimeout) => void): Disposable {
    return this.timeoutEmitter.on(listener);
  }

  // -------------------------------------------------------------------------------------------
  // Life cycle

  /** The running host's pid, if one runs. */
  get pid(): number | undefined {
    return this.session?.host.pid;
  }

  /** The last crash, if any (for a status line). */
  get lastCrashInfo(): TaskHostCrash | null {
    return this.lastCrash;
  }

  /**
   * Starts the host if none runs and waits until it answers. Requests call this themselves.
   * @throws TaskHostCrashedError when crash-loop protection stopped restarts, or the host died
   *   during start; ChatVecError Internal when the bundle is missing or of another protocol version
   */
  async start(): Promise<void> {
    await this.ensureSession();
  }

  /** Stops the host (gracefully, see {@link dispose}), forgets past crashes and starts a new one. */
  async restart(): Promise<void> {
    await this.stop();
    this.crashTimes.length = 0;
    this.gaveUp = false;
    await this.start();
  }

  /**
   * Asks the host to shut down (it cancels its jobs, which then resolve `cancelled`), and kills it
   * if it has not exited within `shutdownTimeoutMs`. The next request starts a new host.
   */
  async stop(): Promise<void> {
    const s = this.session ?? (await this.starting?.catch(() => null)) ?? null;
    if (s) await this.stopSession(s);
  }

  /** {@link stop} for one session; also restarts a host that left a request unanswered. */
  private async stopSession(s: Session): Promise<void> {
    s.stopping = true;
    const timeoutMs = this.options.shutdownTimeoutMs ?? 5000;
    if (!s.host.exit) {
      try {
        await withTimeout(s.host.connection.sendRequest(ShutdownRequest), timeoutMs);
      } catch {
        // No answer: the kill below settles it.
      }
      if (!(await s.host.waitForExit(Math.min(2000, timeoutMs)))) {
        s.host.disconnect();
        if (!(await s.host.waitForExit(500))) {
          s.host.kill('SIGKILL');
          await s.host.waitForExit(2000);
        }
      }
    }
    this.rejectPending(s, () => new ChatVecError('Cancelled', 'the task host was stopped'));
    if (this.session === s) this.session = null;
  }

  /** Stops the host and releases listeners; later requests fail. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.stop();
    this.progressEmitter.clear();
    this.logEmitter.clear();
    this.crashEmitter.clear();
    this.startEmitter.clear();
    this.timeoutEmitter.clear();
    this.otherEmitter.clear();
  }

  // -------------------------------------------------------------------------------------------
  // Requests

  /** A fresh job id, unique for this client. */
  newJobId(kind = 'job'): string {
    return `${kind}-${this.idPrefix}-${++this.jobCounter}`;
  }

  /** Reads a checkpoint's headers in the host. @throws ChatVecError (BadCheckpoint, Unsupported, Io …) */
  async inspect(checkpointPath: string): Promise<InspectReport> {
    return this.call(InspectRequest, { path: checkpointPath }, undefined, undefined);
  }

  /** Delta statistics between two checkpoints (or of one chat-vector folder). */
  diff(options: DiffOptions, call?: JobCallOptions): Promise<JobResult<DiffReport>> {
    return this.runJob('diff', options, call);
  }

  /** Extracts a chat vector τ = chat − base into `options.out`. */
  extract(options: ExtractOptions, call?: JobCallOptions): Promise<JobResult<JobOutcome>> {
    return this.runJob('extract', options, call);
  }

  /** θ_out = θ_cp + Σ rᵢ·τᵢ (two-step with `vectors`, or fused with `base` + `chats`). */
  apply(options: ApplyOptions, call?: JobCallOptions): Promise<JobResult<JobOutcome>> {
    return this.runJob('apply', options, call);
  }

  /** Runs a merge recipe file into `options.out` (a heavy job: queued, with progress and cancellation). */
  merge(options: MergeOptions, call?: JobCallOptions): Promise<JobResult<JobOutcome>> {
    return this.runJob('merge', options, call);
  }

  /**
   * Writes the demo trio (base, chat, cp) under `options.dir` (a heavy job: queued, with progress
   * per tensor and cancellation), or reuses a matching trio at once (`reused: true`).
   */
  createDemo(options: CreateDemoOptions, call?: JobCallOptions): Promise<JobResult<DemoTrio>> {
    return this.runJob('createDemo', options, call);
  }

  /**
   * Statistics (L2 norm in float64, max |value|, non-finite count) of `rows` of one tensor of a
   * checkpoint (default: its input embedding), read in the host. Light: never queued.
   * @throws ChatVecError InvalidArgument (unknown tensor, row out of range, too many rows), BadCheckpoint, Io
   */
  async rowStats(params: RowStatsParams): Promise<RowStatsResult> {
    return this.call(RowStatsRequest, params, undefined, undefined);
  }

  /** The hub cache's models with safetensors weights, listed in the host. Light: never queued. */
  async hubCacheList(): Promise<CachedModel[]> {
    return this.call(HubCacheListRequest, {}, undefined, undefined);
  }

  /**
   * Diagnostics of recipe text (possibly unsaved), checked in the host down to `depth` (default
   * 'headers': model folders and their safetensors headers). Never queued behind heavy jobs.
   * `cancellation` drops a check that is still waiting in the host's message queue (an editor
   * sends one per pause in typing; only the newest matters): the call then rejects (Cancelled).
   * @throws ChatVecError InvalidArgument for malformed parameters; TaskHostCrashedError
   */
  async recipeCheck(params: RecipeCheckParams, cancellation?: Cancellation): Promise<RecipeDiagnostic[]> {
    const link = linkCancellation(cancellation);
    try {
      return await this.call(RecipeCheckRequest, params, link?.token, undefined);
    } finally {
      link?.dispose();
    }
  }

  /**
   * The dry run of a recipe (`text`, else the file at `recipePath`): the plan summary, its text as
   * `chatvec merge --dry-run` prints it, and the recipe's warnings. Never queued.
   * @throws ChatVecError InvalidArgument listing the errors of a recipe that cannot run; Io
   */
  async recipePlan(params: RecipePlanParams): Promise<RecipePlanResult> {
    return this.call(RecipePlanRequest, params, undefined, undefined);
  }

  /**
   * Runs any job kind. Resolves `{status:'ok', result}` or `{status:'cancelled'}`.
   * @throws ChatVecError with the engine's code; TaskHostCrashedError when the host died meanwhile
   */
  async runJob<K extends JobKind>(kind: K, options: JobOptionsOf<K>, call: JobCallOptions = {}): Promise<JobResult<JobResultMap[K]>> {
    const jobId = call.jobId ?? this.newJobId(kind);
    if (isCancellationRequested(call.cancellation)) return { status: 'cancelled' };
    const sub = call.onProgress ? this.onProgress(jobId, call.onProgress) : undefined;
    const link = linkCancellation(call.cancellation);
    try {
      const type = JOB_REQUESTS[kind] as unknown as RequestType<{ jobId: string; options: JobOptionsOf<K> }, JobResult<JobResultMap[K]>, TaskHostErrorData>;
      return await this.call(type, { jobId, options }, link?.token, jobId);
    } finally {
      link?.dispose();
      sub?.dispose();
    }
  }

  /** Any request (e.g. chatOpen: chatClient.ts); with `longId`, as long as a job may (no timeout; a crash names that id). */
  async request<P, R>(type: RequestType<P, R, TaskHostErrorData>, params: P, longId?: string, cancellation?: Cancellation): Promise<R> {
    const link = linkCancellation(cancellation);
    try {
      return await this.call(type, params, link?.token, longId);
    } finally {
      link?.dispose();
    }
  }

  /** Cancels a job by id (its own call then resolves `cancelled`). */
  async cancel(jobId: string): Promise<CancelResult> {
    if (!this.session) return { state: 'unknown' };
    return this.call(CancelRequest, { jobId }, undefined, undefined);
  }

  /** The host's pid, versions, settings and live jobs. */
  async status(): Promise<TaskHostStatus> {
    return this.call0(StatusRequest);
  }

  /** Changes settings of the running host (and of hosts started later). */
  async configure(params: ConfigureParams): Promise<TaskHostStatus> {
    const checked = typeof params.defaultThreads === 'number' ? { ...params, defaultThreads: this.threadsWithin(params.defaultThreads) } : params;
    const status = await this.call(ConfigureRequest, checked, undefined, undefined);
    Object.assign(this.settings, checked);
    return status;
  }

  // -------------------------------------------------------------------------------------------
  // Plumbing

  /** Sends a request; one that is not a job (no jobId) is given {@link TaskHostClientOptions.requestTimeoutMs}. */
  private async call<P, R>(type: RequestType<P, R, TaskHostErrorData>, params: P, token: CancellationToken | undefined, jobId: string | undefined): Promise<R> {
    const s = await this.ensureSession();
    return this.track(s, type.method, jobId, () => s.host.connection.sendRequest(type, params, token), jobId === undefined ? this.requestTimeoutMs : undefined);
  }

  private async call0<R>(type: RequestType0<R, TaskHostErrorData>): Promise<R> {
    const s = await this.ensureSession();
    return this.track(s, type.method, undefined, () => s.host.connection.sendRequest(type), this.requestTimeoutMs);
  }

  private get requestTimeoutMs(): number {
    return this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  /**
   * Sends a request so that a host death rejects it with the crash, not with the library's
   * generic "connection disposed". With `timeoutMs`, no answer in time rejects it with a
   * TaskHostTimeoutError and restarts the host (see {@link onRequestTimeout}).
   */
  private track<R>(s: Session, method: string, jobId: string | undefined, send: () => Promise<R>, timeoutMs?: number): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const entry: PendingCall = {
        method,
        jobId,
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      s.pending.add(entry);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          if (!s.pending.delete(entry)) return;
          reject(new TaskHostTimeoutError(method, timeoutMs));
          this.onRequestTimeout(s, method, timeoutMs);
        }, timeoutMs);
        // The host process keeps a client alive; the timer alone must not.
        timer.unref();
      }
      const settled = () => {
        clearTimeout(timer);
        if (jobId !== undefined && s.restartWhenIdle) this.restartIfIdle(s);
      };
      let sent: Promise<R>;
      try {
        sent = send();
      } catch (e) {
        sent = Promise.reject(e);
      }
      sent.then(
        (r) => {
          if (s.pending.delete(entry)) {
            settled();
            resolve(r);
          }
        },
        (e) => {
          if (isTransportError(e)) {
            // The host is going away; its exit handler rejects this call with the reason. Should
            // the exit never be observed, fail with the transport error after a while.
            setTimeout(() => {
              if (s.pending.delete(entry)) {
                settled();
                reject(fromResponseError(e));
              }
            }, 5000).unref();
            return;
          }
          if (s.pending.delete(entry)) {
            settled();
            reject(fromResponseError(e));
          }
        },
      );
    });
  }

  /**
   * A request that is not a job timed out: the host (or its request threads) is stuck, so it is
   * restarted — at once, or when its running jobs have ended (a stuck read must not cost the user
   * a long job; the host still runs those, and `status`/`cancel` are answered meanwhile).
   */
  private onRequestTimeout(s: Session, method: string, timeoutMs: number): void {
    const message = new TaskHostTimeoutError(method, timeoutMs).message;
    const running = [...s.pending].filter((p) => p.jobId !== undefined).length;
    const note = running > 0 && !s.stopping ? ` once its ${running} running job${running === 1 ? '' : 's'} end${running === 1 ? 's' : ''}` : '';
    this.logEmitter.fire({ level: 'error', message: `${message}${note} (pid ${s.host.pid})`, source: 'client' });
    this.timeoutEmitter.fire({ method, timeoutMs, pid: s.host.pid, message }, (e) => this.listenerFailed(e));
    if (s.stopping || s.host.exit) return;
    s.restartWhenIdle = true;
    this.restartIfIdle(s);
  }

  private restartIfIdle(s: Session): void {
    if (s.stopping || s.host.exit || [...s.pending].some((p) => p.jobId !== undefined)) return;
    void this.stopSession(s).then(async () => {
      // Started at once, so the next feature finds a live host; a failure is the next request's to report.
      if (!this.disposed && !this.gaveUp && this.session === null) await this.ensureSession().catch(() => undefined);
    });
  }

  private ensureSession(): Promise<Session> {
    if (this.disposed) return Promise.reject(new ChatVecError('Internal', 'the task host client has been disposed'));
    if (this.session && !this.session.stopping && !this.session.host.exit) return Promise.resolve(this.session);
    if (this.gaveUp) return Promise.reject(this.crashLoopError());
    this.starting ??= this.spawn().finally(() => (this.starting = null));
    return this.starting;
  }

  private async spawn(): Promise<Session> {
    const script = this.options.hostScript ?? defaultHostScript();
    if (!fs.existsSync(script)) throw new ChatVecError('Internal', `the task host bundle ${script} is missing (run \`npm run build\`)`);
    const args: string[] = [];
    const concurrency = this.settings.concurrency ?? this.options.concurrency;
    const backend = this.settings.defaultBackend ?? this.options.backend;
    const wanted = this.settings.defaultThreads === undefined ? this.options.threads : (this.settings.defaultThreads ?? undefined);
    // A bad --threads would stop the host from starting at all.
    const threads = wanted === undefined ? undefined : this.threadsWithin(wanted);
    if (concurrency !== undefined) args.push(`--concurrency=${concurrency}`);
    if (backend !== undefined) args.push(`--backend=${backend}`);
    if (threads !== undefined) args.push(`--threads=${threads}`);
    const host = new HostProcess({
      script,
      args,
      execPath: this.options.execPath ?? process.execPath,
      execArgv: this.options.execArgv ?? [],
      // Under VS Code process.execPath is Electron; this makes it behave as plain Node.
      env: { ...process.env, ...this.options.env, ELECTRON_RUN_AS_NODE: '1' },
      onOutput: (stream, line) => this.logEmitter.fire({ level: stream === 'stderr' ? 'warn' : 'info', message: `[task host ${stream}] ${line}`, source: 'client' }),
      onTransportLog: (message) => this.logEmitter.fire({ level: 'debug', message: `[task host transport] ${message}`, source: 'client' }),
    });
    const s: Session = { host, pending: new Set(), stopping: false, restartWhenIdle: false };
    host.connection.onNotification(ProgressNotification, (p) => this.progressEmitter.fire(p, (e) => this.listenerFailed(e)));
    host.connection.onNotification(LogNotification, (l) => this.logEmitter.fire(l));
    host.connection.onNotification((method, params) => this.otherEmitter.fire({ method, params }, (e) => this.listenerFailed(e)));
    host.connection.listen();
    void host.exited.then((exit) => this.onExit(s, exit));
    this.session = s;
    // The handshake: a live, compatible host answers `status`.
    const status = await this.track(s, 'start', undefined, () => host.connection.sendRequest(StatusRequest));
    if (status.protocolVersion !== TASK_HOST_PROTOCOL_VERSION) {
      s.stopping = true;
      host.kill();
      throw new ChatVecError('Internal', `the task host at ${script} speaks protocol ${status.protocolVersion}, this client ${TASK_HOST_PROTOCOL_VERSION}; rebuild both`);
    }
    this.startEmitter.fire(status, (e) => this.listenerFailed(e));
    return s;
  }

  private onExit(s: Session, exit: HostExit): void {
    if (this.session === s) this.session = null;
    if (s.stopping) {
      this.rejectPending(s, () => new ChatVecError('Cancelled', 'the task host was stopped'));
      return;
    }
    const now = Date.now();
    this.crashTimes.push(now);
    while (this.crashTimes.length > 0 && now - this.crashTimes[0]! > this.crashWindowMs) this.crashTimes.shift();
    this.gaveUp = this.crashTimes.length >= this.maxCrashes;
    const jobIds = [...new Set([...s.pending].map((p) => p.jobId).filter((id): id is string => id !== undefined))];
    const how = describeExit(exit);
    const loopNote = this.gaveUp ? `; it crashed ${this.crashTimes.length} times within ${Math.round(this.crashWindowMs / 1000)} s, so it will not be restarted until you restart it` : '; it will be restarted on the next request';
    const message = `the task host (pid ${exit.pid}) crashed (${how})${loopNote}`;
    this.rejectPending(
      s,
      (p) => new TaskHostCrashedError(`task host crashed (${how}) ${p.method === 'start' ? 'while starting' : `while running ${p.jobId ? `${p.method} ${p.jobId}` : p.method}`}${this.gaveUp ? '; crash-loop protection stopped restarting it' : ''}`, exit, this.gaveUp),
    );
    const crash: TaskHostCrash = { ...exit, jobIds, willRestart: !this.gaveUp, message };
    this.lastCrash = crash;
    this.logEmitter.fire({ level: 'error', message: exit.stderrTail ? `${message}\n${exit.stderrTail}` : message, source: 'client' });
    this.crashEmitter.fire(crash, (e) => this.listenerFailed(e));
  }

  /** A thread count brought within the machine's limit, with a log line when it had to change. */
  private threadsWithin(threads: number): number {
    const c = clampThreads(threads);
    if (c.clamped) {
      this.logEmitter.fire({ level: 'warn', message: `${threads} worker threads asked for; using ${c.threads} (this machine's limit is ${describeThreadLimit()})`, source: 'client' });
    }
    return c.threads;
  }

  private crashLoopError(): TaskHostCrashedError {
    const last = this.lastCrash;
    return new TaskHostCrashedError(
      `the task host crashed ${this.crashTimes.length} times within ${Math.round(this.crashWindowMs / 1000)} s${last ? ` (last: ${describeExit(last)})` : ''}; not restarting it (crash-loop protection) — restart it explicitly to try again`,
      last,
      true,
    );
  }

  private rejectPending(s: Session, error: (p: PendingCall) => unknown): void {
    const calls = [...s.pending];
    s.pending.clear();
    for (const p of calls) p.reject(error(p));
  }

  private listenerFailed(e: unknown): void {
    this.logEmitter.fire({ level: 'error', message: `a task host event listener threw: ${e instanceof Error ? e.message : String(e)}`, source: 'client' });
  }
}
