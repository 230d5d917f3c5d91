/**
 * The task host: a separate Node process that runs every job whose cost grows with model size, so
 * the VS Code extension host (or a CLI front end) stays responsive. Started with
 * `child_process.fork(dist/taskhost.js)` (under VS Code with ELECTRON_RUN_AS_NODE=1), it speaks
 * JSON-RPC over the IPC channel (src/protocol/taskHost.ts) and runs the engine in-process; the
 * engine spreads work over worker threads, which end with this process.
 *
 * Light requests (inspect, recipeCheck, recipePlan, rowStats) read headers with synchronous file
 * I/O; they run on worker threads of their own (lightRequests.ts), so one read that never ends (a
 * FIFO, a hung network mount) cannot keep `status`, `cancel` or `shutdown` from being answered.
 *
 * Arguments: `--concurrency=N` (heavy jobs at once, default 1, at most 16), `--backend=auto|cpu|gpu`,
 * `--threads=N` (default for jobs that name none, at most the machine's limit,
 * core/jobs/threadLimit.ts).
 *
 * Life cycle: exits after answering `shutdown`, when the IPC channel closes, when the parent
 * process dies (polled every second), on SIGTERM and after an internal error, each time after
 * cancelling jobs so they remove their temporary output. Its stdout/stderr may be broken by then
 * (the client died): every write to them is best effort (stdio.ts). SIGINT is ignored: a
 * terminal's Ctrl-C reaches the whole process group, and it is the client's to turn into a cancel.
 */
import { isMainThread, parentPort } from 'node:worker_threads';
import { type CancellationToken, createMessageConnection, IPCMessageReader, type Logger, type MessageConnection, type NotificationType, type ResponseError } from 'vscode-jsonrpc/node';
import { ChatVecError, toChatVecError } from '../core/errors';
import { checkThreads } from '../core/jobs/threadLimit';
import type { BackendChoice } from '../core/jobs/types';
import { TOOL_VERSION } from '../core/version';
import {
  type CachedModel,
  CancelRequest,
  ChatCancelRequest,
  ChatCloseRequest,
  ChatOpenRequest,
  ChatProgressNotification,
  ChatSendRequest,
  ChatTextNotification,
  ConfigureRequest,
  HubCacheListRequest,
  type InspectReport,
  InspectRequest,
  JOB_REQUESTS,
  type JobKind,
  LogNotification,
  type LogParams,
  ProgressNotification,
  type RecipeDiagnostic,
  RecipeCheckRequest,
  RecipePlanRequest,
  type RecipePlanResult,
  RowStatsRequest,
  type RowStatsResult,
  ShutdownRequest,
  StatusRequest,
  TASK_HOST_PROTOCOL_VERSION,
  type TaskHostErrorData,
  type TaskHostStatus,
} from '../protocol/taskHost';
import { ChatSessions, type ChatSinks } from './chatSessions';
import { FlushingIpcWriter } from './ipcWriter';
import { JobManager } from './jobManager';
import { MAX_JOB_CONCURRENCY } from './jobQueue';
import { type LightMethod, type LightParamsMap, serveLightRequests } from './lightRequestThread';
import { LightRequests } from './lightRequests';
import { watchParent } from './parentWatch';
import { malformed, toResponseError } from './responseErrors';
import { ENGINE_RUNNERS } from './runners';
import { guardStdio, writeStderr } from './stdio';
import { validateCancelParams, validateChatIdParams, validateChatOpenParams, validateChatSendParams, validateConfigureParams, validateInspectParams, validateJobParams, validateNoParams, validateRecipeCheckParams, validateRecipePlanParams, validateRowStatsParams } from './validate';

/** How long jobs get to remove their temporary output when the host is told to stop, in ms. */
const WIND_DOWN_MS = 3000;

interface HostArgs {
  concurrency: number;
  backend: BackendChoice;
  threads: number | null;
}

function parseArgs(argv: readonly string[]): HostArgs {
  const args: HostArgs = { concurrency: 1, backend: 'auto', threads: null };
  for (const a of argv) {
    const m = /^--(concurrency|backend|threads)=(.+)$/.exec(a);
    if (!m) throw new ChatVecError('InvalidArgument', `task host: unknown argument ${a}`);
    const [, key, value] = m as unknown as [string, string, string];
    if (key === 'backend') {
      if (value !== 'auto' && value !== 'cpu' && value !== 'gpu') throw new ChatVecError('InvalidArgument', `task host: --backend must be auto, cpu or gpu`);
      args.backend = value;
    } else {
      const n = /^\d+$/.test(value) ? Number(value) : NaN;
      if (!Number.isSafeInteger(n) || n < 1) throw new ChatVecError('InvalidArgument', `task host: --${key} must be a whole number ≥ 1`);
      if (key === 'threads') args.threads = checkThreads(n, 'task host: --threads');
      else if (n > MAX_JOB_CONCURRENCY) throw new ChatVecError('InvalidArgument', `task host: --concurrency ${n} is above the limit of ${MAX_JOB_CONCURRENCY} jobs at once`);
      else args.concurrency = n;
    }
  }
  return args;
}

function main(): void {
  // First of all: a client that dies must not turn our next log line into a crash.
  guardStdio();
  if (typeof process.send !== 'function') {
    writeStderr('chatvec task host: start it with child_process.fork (it talks JSON-RPC over the IPC channel)\n');
    process.exit(2);
  }
  let args: HostArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    writeStderr(`${toChatVecError(e).message}\n`);
    process.exit(2);
  }
  const started = Date.now();
  const writer = new FlushingIpcWriter(process);
  // The library logs transport trouble here; stderr reaches the client's log, not the protocol.
  const logger: Logger = {
    error: (m) => writeStderr(`task host: ${m}\n`),
    warn: (m) => writeStderr(`task host: ${m}\n`),
    info: () => {},
    log: () => {},
  };
  const connection: MessageConnection = createMessageConnection(new IPCMessageReader(process), writer, logger);
  let exiting = false;
  /** Set by shutdown: no new jobs, even before the exit begins. */
  let stopping = false;

  /**
   * Notifications are best effort: once the client is gone nobody listens, and a job winding down
   * must not fail because its progress cannot be sent (the library throws synchronously on a
   * closed connection).
   */
  const notify = <P>(type: NotificationType<P>, p: P) => {
    // Once the channel is closed each attempt would only log a failure.
    if (!process.connected) return;
    try {
      connection.sendNotification(type, p).catch(() => {});
    } catch {
      // closed or disposed
    }
  };
  const sendLog = (p: LogParams) => notify(LogNotification, p);
  const jobs = new JobManager(
    ENGINE_RUNNERS,
    {
      progress: (p) => notify(ProgressNotification, p),
      log: sendLog,
    },
    args.concurrency,
    { backend: args.backend, threads: args.threads },
  );

  const light = new LightRequests(__filename);
  // The host's defaults are read when a session opens (configure may change them).
  const chats = new ChatSessions(jobs.defaults);

  /**
   * Ends the process; process.exit also ends the engine's worker threads: no orphans. But it joins
   * every thread, and a light request's thread blocked in a read (a FIFO) never ends; the host
   * then ends itself with SIGKILL instead — its jobs have cleaned up by now.
   */
  const exitNow = (code: number): void => {
    if (light.busy > 0) process.kill(process.pid, 'SIGKILL');
    process.exit(code);
  };

  /** Cancels jobs, gives them a moment to clean up, and exits. Runs once; exits whatever fails on the way. */
  const terminate = async (reason: string, code: number, notify: boolean) => {
    if (exiting) return;
    exiting = true;
    stopping = true;
    try {
      watch.dispose();
      if (notify) sendLog({ level: 'info', message: `task host exiting: ${reason}`, source: 'host' });
      light.close();
      jobs.cancelAll();
      void chats.closeAll();
      const clean = await jobs.whenIdle(WIND_DOWN_MS);
      if (!clean) writeStderr(`task host: jobs did not stop within ${WIND_DOWN_MS} ms; exiting anyway (${reason})\n`);
      // Answers and the last notifications must leave before the process does.
      await Promise.race([writer.drain(), new Promise((r) => setTimeout(r, 1000))]);
      connection.dispose();
    } finally {
      exitNow(code);
    }
  };

  const status = (): TaskHostStatus => ({
    protocolVersion: TASK_HOST_PROTOCOL_VERSION,
    toolVersion: TOOL_VERSION,
    pid: process.pid,
    nodeVersion: process.version,
    concurrency: jobs.concurrency,
    defaultBackend: jobs.defaults.backend,
    defaultThreads: jobs.defaults.threads,
    uptimeSeconds: (Date.now() - started) / 1000,
    jobs: jobs.list(),
  });

  /** A light request, checked here and run on a request thread; never queued behind jobs. */
  const runLight = async <M extends LightMethod, R>(method: M, validate: () => LightParamsMap[M], token: CancellationToken): Promise<R | ResponseError<TaskHostErrorData>> => {
    try {
      const p = validateParams(validate);
      return (await light.run(method, p, { defaultThreads: jobs.defaults.threads }, token)) as R;
    } catch (e) {
      return toResponseError(e);
    }
  };

  connection.onRequest(InspectRequest, (params, token) => runLight<'inspect', InspectReport>('inspect', () => ({ path: validateInspectParams(params).path }), token));

  const jobHandler =
    <K extends JobKind>(kind: K) =>
    async (params: unknown, token: CancellationToken) => {
      try {
        const p = validateParams(() => validateJobParams(kind, params));
        // Shutdown cancels every job, including one that arrives while it is under way.
        if (exiting || stopping) return { status: 'cancelled' as const };
        return await jobs.run(kind, p.jobId, p.options, token);
      } catch (e) {
        return toResponseError(e);
      }
    };
  connection.onRequest(JOB_REQUESTS.diff, jobHandler('diff'));
  connection.onRequest(JOB_REQUESTS.extract, jobHandler('extract'));
  connection.onRequest(JOB_REQUESTS.apply, jobHandler('apply'));
  connection.onRequest(JOB_REQUESTS.merge, jobHandler('merge'));
  connection.onRequest(JOB_REQUESTS.createDemo, jobHandler('createDemo'));
  connection.onRequest(JOB_REQUESTS.downloadModel, jobHandler('downloadModel'));
  connection.onRequest(JOB_REQUESTS.evalModel, jobHandler('evalModel'));
  connection.onRequest(JOB_REQUESTS.sweep, jobHandler('sweep'));
  connection.onRequest(JOB_REQUESTS.energyAtRank, jobHandler('energyAtRank'));

  // Light like inspect: headers only, answered at once even while heavy jobs run or wait.
  connection.onRequest(RecipeCheckRequest, (params, token) => runLight<'recipeCheck', RecipeDiagnostic[]>('recipeCheck', () => validateRecipeCheckParams(params), token));
  // Light too: a few rows' bytes (bounded by the validator and core).
  connection.onRequest(RowStatsRequest, (params, token) => runLight<'rowStats', RowStatsResult>('rowStats', () => validateRowStatsParams(params), token));
  // Light: folder listings, refs and config.json of the hub cache.
  connection.onRequest(HubCacheListRequest, (params, token) => runLight<'hubCacheList', CachedModel[]>('hubCacheList', () => validateNoParams('hubCacheList', params), token));
  connection.onRequest(RecipePlanRequest, (params, token) => runLight<'recipePlan', RecipePlanResult>('recipePlan', () => validateRecipePlanParams(params), token));

  // Chat sessions: outside the job queue (chatSessions.ts).
  const chatSinks = (sessionId: string): ChatSinks => ({
    text: (p) => notify(ChatTextNotification, p),
    progress: (p) => notify(ChatProgressNotification, p),
    log: (level, message) => sendLog({ level, message, jobId: sessionId, source: 'job' }),
  });
  connection.onRequest(ChatOpenRequest, async (params, token) => {
    try {
      const p = validateParams(() => validateChatOpenParams(params));
      if (exiting || stopping) return { status: 'cancelled' as const };
      return await chats.open(p, chatSinks(p.sessionId), token);
    } catch (e) {
      return toResponseError(e);
    }
  });
  connection.onRequest(ChatSendRequest, async (params, token) => {
    try {
      const p = validateParams(() => validateChatSendParams(params));
      return await chats.send(p, chatSinks(p.sessionId), token);
    } catch (e) {
      return toResponseError(e);
    }
  });
  connection.onRequest(ChatCancelRequest, (params) => {
    try {
      return chats.cancel(validateParams(() => validateChatIdParams('chatCancel', params)).sessionId);
    } catch (e) {
      return toResponseError(e);
    }
  });
  connection.onRequest(ChatCloseRequest, async (params) => {
    try {
      return { closed: await chats.close(validateParams(() => validateChatIdParams('chatClose', params)).sessionId) };
    } catch (e) {
      return toResponseError(e);
    }
  });

  connection.onRequest(CancelRequest, (params) => {
    try {
      const p = validateParams(() => validateCancelParams(params));
      return { state: jobs.cancel(p.jobId) };
    } catch (e) {
      return toResponseError(e);
    }
  });

  connection.onRequest(ConfigureRequest, (params) => {
    try {
      const p = validateParams(() => validateConfigureParams(params));
      if (p.concurrency !== undefined) jobs.concurrency = p.concurrency;
      if (p.defaultBackend !== undefined) jobs.defaults.backend = p.defaultBackend;
      if ('defaultThreads' in p) jobs.defaults.threads = p.defaultThreads ?? null;
      return status();
    } catch (e) {
      return toResponseError(e);
    }
  });

  connection.onRequest(StatusRequest, () => status());

  connection.onRequest(ShutdownRequest, async () => {
    stopping = true;
    jobs.cancelAll();
    await chats.closeAll();
    await jobs.whenIdle(WIND_DOWN_MS);
    // Jobs have answered "cancelled"; this answer is written when the handler returns, and the
    // exit waits for it to leave (terminate drains the writer).
    setImmediate(() => void terminate('shutdown requested', 0, false));
  });

  const watch = watchParent((reason) => void terminate(reason, 0, false));
  process.on('disconnect', () => void terminate('the client closed the IPC channel', 0, false));
  connection.onClose(() => void terminate('the connection closed', 0, false));
  process.on('SIGTERM', () => void terminate('SIGTERM', 0, true));
  process.on('SIGINT', () => {});
  const fatal = (what: string) => (e: unknown) => {
    // A bug in the host itself: say what happened (if anyone still listens), cancel the jobs so
    // they remove their temporary output, and exit, so the client restarts a clean process.
    try {
      const err = toChatVecError(e);
      writeStderr(`task host: ${what}: ${err.message}\n${err.details ?? (e instanceof Error ? e.stack : '')}\n`);
      sendLog({ level: 'error', message: `task host ${what}: ${err.message}`, source: 'host' });
    } catch {
      // Reporting must not stop the clean-up.
    }
    process.exitCode = 70;
    void terminate(what, 70, false);
    // Should the wind-down itself hang, exit anyway.
    setTimeout(() => exitNow(70), WIND_DOWN_MS + 2000).unref();
  };
  process.on('uncaughtException', fatal('uncaught exception'));
  process.on('unhandledRejection', fatal('unhandled rejection'));

  connection.listen();
  sendLog({ level: 'debug', source: 'host', message: `task host ${TOOL_VERSION} started: pid ${process.pid}, node ${process.version}, concurrency ${args.concurrency}` });
}

/** Runs a validator, marking its InvalidArgument as a malformed request (JSON-RPC InvalidParams). */
function validateParams<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw malformed(e);
  }
}

// This bundle is also the entry of the light requests' threads (lightRequests.ts).
if (isMainThread) main();
else serveLightRequests(parentPort!);
