/** Shared plumbing of CLI commands: one-line errors, exit codes, Ctrl-C as cancellation. */
import { type CancelSignal, toChatVecError } from '../core/errors';
import { printableLines } from '../protocol/displayFormat';

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;
export const EXIT_CANCELLED = 130;

/**
 * Prints a one-line error (no stack trace unless CHATVEC_DEBUG is set) and sets the exit code.
 * Control characters in the message (it may quote a tensor name or a file's text) are escaped.
 */
export function reportError(e: unknown): void {
  const err = toChatVecError(e);
  if (err.code === 'Cancelled') {
    process.stderr.write('chatvec: cancelled; no output was left behind\n');
    process.exitCode = EXIT_CANCELLED;
    return;
  }
  process.stderr.write(`chatvec: error: ${printableLines(err.message)}\n`);
  if (process.env.CHATVEC_DEBUG && (err.details || err.stack)) process.stderr.write(`${printableLines(err.details ?? err.stack ?? '')}\n`);
  process.exitCode = err.code === 'InvalidArgument' ? EXIT_USAGE : EXIT_ERROR;
}

/** A cancel signal raised by the first Ctrl-C (SIGINT) or SIGTERM; a second Ctrl-C exits at once. */
export function interruptSignal(): CancelSignal & { dispose(): void } {
  const state = { cancelled: false };
  const onSignal = () => {
    if (state.cancelled) process.exit(EXIT_CANCELLED);
    state.cancelled = true;
    process.stderr.write('\nchatvec: cancelling (Ctrl-C again to exit at once)…\n');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    get cancelled() {
      return state.cancelled;
    },
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** Wraps a command action so every failure becomes a one-line error and an exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      reportError(e);
    }
  };
}
