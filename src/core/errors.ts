/**
 * Errors that reach users. Every failure the engine can foresee is a ChatVecError with a code
 * (stable across processes: the task host sends it over JSON-RPC), a one-line message that names
 * the file and what is wrong, and optional details for the log.
 */
export type ErrorCode =
  | 'BadCheckpoint' // a file or folder violates the safetensors or Hugging Face layout rules
  | 'ShapeMismatch' // tensors that must line up do not (shapes, vocabularies)
  | 'NameMismatch' // tensors present on one side only
  | 'OutputExists' // the output path exists and --overwrite was not given, or it may not be replaced
  | 'InvalidArgument' // a bad option or combination of options
  | 'Unsupported' // a valid input this tool cannot handle (e.g. a pickled .bin checkpoint)
  | 'Io' // the operating system refused a read or write
  | 'Cancelled' // the user asked to stop
  | 'Internal'; // a bug: anything else

export class ChatVecError extends Error {
  override readonly name = 'ChatVecError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: string,
  ) {
    super(message);
  }
}

/** Thrown when a job is cancelled; callers report it as "cancelled", not as a failure. */
export class CancelledError extends ChatVecError {
  constructor(message = 'cancelled') {
    super('Cancelled', message);
  }
}

export function isCancelled(e: unknown): boolean {
  return e instanceof ChatVecError && e.code === 'Cancelled';
}

/** Maps any thrown value to a ChatVecError (I/O errors keep their errno code in the message). */
export function toChatVecError(e: unknown): ChatVecError {
  if (e instanceof ChatVecError) return e;
  if (e instanceof Error) {
    const errno = (e as { code?: unknown }).code;
    if (typeof errno === 'string' && /^E[A-Z]+$/.test(errno)) return new ChatVecError('Io', e.message, e.stack);
    return new ChatVecError('Internal', e.message, e.stack);
  }
  return new ChatVecError('Internal', String(e));
}

/** A cancellation signal that works the same in the CLI (Ctrl-C), the task host and workers. */
export interface CancelSignal {
  readonly cancelled: boolean;
}

export function throwIfCancelled(signal: CancelSignal | undefined): void {
  if (signal?.cancelled) throw new CancelledError();
}
