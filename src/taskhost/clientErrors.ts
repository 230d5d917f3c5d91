/**
 * What the task host client reports when a host fails it: a crash (the process died under a
 * request) or a timeout (a request that is not a job got no answer in time).
 */
import { ErrorCodes, ResponseError } from 'vscode-jsonrpc/node';
import { ChatVecError } from '../core/errors';
import type { HostExit } from './hostProcess';
import { formatDuration } from '../protocol/displayFormat';

/** A host process that ended without being asked to. */
export interface TaskHostCrash extends HostExit {
  /** Jobs that were in flight and were rejected with a {@link TaskHostCrashedError}. */
  readonly jobIds: readonly string[];
  /** False when crash-loop protection stopped restarting. */
  readonly willRestart: boolean;
  /** A sentence for the user. */
  readonly message: string;
}

/**
 * The task host died under a request (code Internal). `crashLoop` is true when the client gave up
 * restarting it; `restart()` clears that.
 */
export class TaskHostCrashedError extends ChatVecError {
  constructor(
    message: string,
    readonly exit: HostExit | null,
    readonly crashLoop: boolean,
  ) {
    super('Internal', message, exit?.stderrTail || undefined);
  }
}

/**
 * A request that is not a job got no answer in time (code Io: the usual cause is a read that
 * blocks, such as a FIFO or a hung network mount). The client restarts the host.
 */
export class TaskHostTimeoutError extends ChatVecError {
  constructor(
    readonly method: string,
    readonly timeoutMs: number,
  ) {
    super('Io', `the task host did not answer ${method} within ${formatDuration(timeoutMs / 1000)}; restarting it`);
  }
}

/** A light request that timed out (see TaskHostClient.onTimeout). */
export interface TaskHostTimeout {
  readonly method: string;
  readonly timeoutMs: number;
  /** The pid of the host that did not answer. */
  readonly pid: number;
  /** A sentence for the user. */
  readonly message: string;
}


const TRANSPORT_ERRORS = new Set<number>([ErrorCodes.MessageWriteError, ErrorCodes.MessageReadError, ErrorCodes.PendingResponseRejected, ErrorCodes.ConnectionInactive]);

/** A failure of the connection itself (the host is going away), not an answer of the host. */
export function isTransportError(e: unknown): boolean {
  if (e instanceof ResponseError) return TRANSPORT_ERRORS.has(e.code);
  // ConnectionError (closed or disposed connection) and write failures are plain Errors.
  return !(e instanceof ChatVecError);
}
