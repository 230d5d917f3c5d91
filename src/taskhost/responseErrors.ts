/**
 * ChatVecError ⇄ JSON-RPC error response. The code travels in `data.code`, so a client gets back
 * the same ChatVecError (code, user message, details) the engine threw in the host, and the CLI
 * and the extension report it exactly as they would an in-process failure.
 */
import { ErrorCodes, ResponseError } from 'vscode-jsonrpc';
import { ChatVecError, type ErrorCode, toChatVecError } from '../core/errors';
import { JOB_FAILED_ERROR, type TaskHostErrorData } from '../protocol/taskHost';

const ERROR_CODES: ReadonlySet<string> = new Set<ErrorCode>(['BadCheckpoint', 'ShapeMismatch', 'NameMismatch', 'OutputExists', 'InvalidArgument', 'Unsupported', 'Io', 'Cancelled', 'Internal']);

/** Host side: any thrown value as the error response to send. */
export function toResponseError(e: unknown): ResponseError<TaskHostErrorData> {
  if (e instanceof ResponseError) return e as ResponseError<TaskHostErrorData>;
  const err = toChatVecError(e);
  const data: TaskHostErrorData = err.details !== undefined ? { code: err.code, details: err.details } : { code: err.code };
  // Malformed requests get the standard JSON-RPC code too, so generic tooling recognises them.
  const rpcCode = err.code === 'InvalidArgument' && (e as { malformedRequest?: boolean }).malformedRequest ? ErrorCodes.InvalidParams : JOB_FAILED_ERROR;
  return new ResponseError(rpcCode, err.message, data);
}

/** Marks an InvalidArgument as a malformed request (sent as JSON-RPC InvalidParams). */
export function malformed(e: unknown): unknown {
  if (e instanceof ChatVecError && e.code === 'InvalidArgument') Object.assign(e, { malformedRequest: true });
  return e;
}

/** Client side: an error response (or any rejection of a request) as a ChatVecError. */
export function fromResponseError(e: unknown): ChatVecError {
  if (e instanceof ChatVecError) return e;
  if (e instanceof ResponseError) {
    const data = e.data as Partial<TaskHostErrorData> | undefined;
    const code = typeof data?.code === 'string' && ERROR_CODES.has(data.code) ? (data.code as ErrorCode) : rpcCodeToErrorCode(e.code);
    return new ChatVecError(code, e.message, typeof data?.details === 'string' ? data.details : undefined);
  }
  return toChatVecError(e);
}

function rpcCodeToErrorCode(code: number): ErrorCode {
  if (code === ErrorCodes.InvalidParams || code === ErrorCodes.MethodNotFound || code === ErrorCodes.InvalidRequest) return 'InvalidArgument';
  return 'Internal';
}
