/**
 * Cancellation as the task host client takes it (an AbortSignal or a VS Code-shaped token) and as
 * vscode-jsonrpc sends it, plus a promise deadline.
 */
import { type CancellationToken, CancellationTokenSource } from 'vscode-jsonrpc/node';
import type { Disposable } from './events';

/** The shape of a VS Code / vscode-jsonrpc cancellation token. */
export interface CancellationTokenLike {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): Disposable;
}

/** Either an AbortSignal or a cancellation token. */
export type Cancellation = AbortSignal | CancellationTokenLike;

/** True when the signal or token has already fired. */
export function isCancellationRequested(c: Cancellation | undefined): boolean {
  if (!c) return false;
  return 'aborted' in c ? c.aborted : c.isCancellationRequested;
}

/** A vscode-jsonrpc token that follows an AbortSignal or a foreign token ($/cancelRequest). */
export function linkCancellation(c: Cancellation | undefined): { token: CancellationToken; dispose(): void } | undefined {
  if (!c) return undefined;
  const source = new CancellationTokenSource();
  let unlink: () => void;
  if ('aborted' in c) {
    const onAbort = () => source.cancel();
    c.addEventListener('abort', onAbort, { once: true });
    unlink = () => c.removeEventListener('abort', onAbort);
  } else {
    const d = c.onCancellationRequested(() => source.cancel());
    unlink = () => d.dispose();
  }
  return {
    token: source.token,
    dispose: () => {
      unlink();
      source.dispose();
    },
  };
}

/** `p`, or a rejection ("timed out") after `ms` milliseconds. */
export async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
