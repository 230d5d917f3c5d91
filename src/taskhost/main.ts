/**
 * The task host: a separate Node process that runs every job whose cost grows with model size, so
 * the VS Code extension host (or a CLI front end) stays responsive. Started with
 * `child_process.fork(dist/taskhost.js)` (under VS Code with ELECTRON_RUN_AS_NODE=1), it speaks
 * JSON-RPC over the IPC channel (src/protocol/taskHost.ts) and runs the engine in-process; the
 * engine spreads work over worker threads, which end with this process.
 *
 * Arguments: `--concurrency=N` (heavy jobs at once, default 1), `--backend=auto|cpu|gpu`,
 * `--threads=N` (defaults for jobs that name none).
 *
 * Life cycle: exits after answering `shutdown`, when the IPC channel closes, when the parent
 * process dies (polled every second), and on SIGTERM, each time after cancelling jobs so they
 * remove their temporary output. SIGINT is ignored: a terminal's Ctrl-C reaches the whole
 * process group, and it is the client's to turn into a cancel.
 */
import { type CancellationToken, createMessageConnection, IPCMessageReader, type Logger, type MessageConnection, type NotificationType } from 'vscode-jsonrpc/node';
import { openCheckpoint } from '../core/checkpoint/checkpoint';
import { inspectReport } from '../core/checkpoint/inspect';
import { ChatVecError, toChatVecError } from '../core/errors';
import type { BackendChoice } from '../core/jobs/types';
import { TOOL_VERSION } from '../core/version';
import {
  CancelRequest,
  ConfigureRequest,
  InspectRequest,
  JOB_REQUESTS,
  type JobKind,
  LogNotification,
  type LogParams,
  ProgressNotification,
  RecipeCheckRequest,
  RecipePlanRequest,
  RowStatsRequest,
  ShutdownRequest,
  StatusRequest,
  TASK_HOST_PROTOCOL_VERSION,
  type TaskHostStatus,
} from '../protocol/taskHost';
import { FlushingIpcWriter } from './ipcWriter';
import { JobManager } from './jobManager';
import { watchParent } from './parentWatch';
import { malformed, toResponseError } from './responseErrors';
import { ENGINE_RUNNERS, recipeCheck, recipePlan, rowStats } from './runners';
import { validateCancelParams, validateConfigureParams, validateInspectParams, validateJobParams, validateRecipeCheckParams, validateRecipePlanParams, validateRowStatsParams } from './validate';

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
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) throw new ChatVecError('InvalidArgument', `task host: --${key} must be a whole number ≥ 1`);
      if (key === 'concurrency') args.concurrency = n;
      else args.threads = n;
    }
  }
  return args;
}

function main(): void {
  if (typeof process.send !== 'function') {
    process.stderr.write('chatvec task host: start it with child_process.fork (it talks JSON-RPC over the IPC channel)\n');
    process.exit(2);
  }
  let args: HostArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${toChatVecError(e).message}\n`);
    process.exit(2);
  }
  const started = Date.now();
  const writer = new FlushingIpcWriter(process);
  // The library logs transport trouble here; stderr reaches the client's log, not the protocol.
  const logger: Logger = {
    error: (m) => process.stderr.write(`task host: ${m}\n`),
    warn: (m) => process.stderr.write(`task host: ${m}\n`),
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

  /** Cancels jobs, gives them a moment to clean up, and exits. Runs once. */
  const terminate = async (reason: string, code: number, notify: boolean) => {
    if (exiting) return;
    exiting = true;
    stopping = true;
    watch.dispose();
    if (notify) sendLog({ level: 'info', message: `task host exiting: ${reason}`, source: 'host' });
    jobs.cancelAll();
    const clean = await jobs.whenIdle(WIND_DOWN_MS);
    if (!clean) process.stderr.write(`task host: jobs did not stop within ${WIND_DOWN_MS} ms; exiting anyway (${reason})\n`);
    // Answers and the last notifications must leave before the process does.
    await Promise.race([writer.drain(), new Promise((r) => setTimeout(r, 1000))]);
    connection.dispose();
    // process.exit also ends the engine's worker threads: no orphans.
    process.exit(code);
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

  connection.onRequest(InspectRequest, (params) => {
    try {
      const p = validateParams(() => validateInspectParams(params));
      return inspectReport(openCheckpoint(p.path));
    } catch (e) {
      return toResponseError(e);
    }
  });

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

  // Light like inspect: headers only, answered at once even while heavy jobs run or wait.
  connection.onRequest(RecipeCheckRequest, (params) => {
    try {
      return recipeCheck(validateParams(() => validateRecipeCheckParams(params)));
    } catch (e) {
      return toResponseError(e);
    }
  });

  // Light too: a few rows' bytes (bounded by the validator and core), never queued.
  connection.onRequest(RowStatsRequest, (params) => {
    try {
      return rowStats(validateParams(() => validateRowStatsParams(params)));
    } catch (e) {
      return toResponseError(e);
    }
  });

  connection.onRequest(RecipePlanRequest, (params) => {
    try {
      return recipePlan(validateParams(() => validateRecipePlanParams(params)), jobs.defaults.threads);
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
    // A bug in the host itself: say what happened and exit, so the client restarts a clean process.
    const err = toChatVecError(e);
    process.stderr.write(`task host: ${what}: ${err.message}\n${err.details ?? (e instanceof Error ? e.stack : '')}\n`);
    sendLog({ level: 'error', message: `task host ${what}: ${err.message}`, source: 'host' });
    void writer.drain().finally(() => process.exit(70));
    setTimeout(() => process.exit(70), 500).unref();
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

main();
