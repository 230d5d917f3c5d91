/**
 * A tiny typed event emitter in the shape VS Code uses (subscribe → disposable), so the extension
 * can hand the client's events straight to its own disposables without importing `vscode` here.
 */

/** Something to release; the shape of vscode.Disposable. */
export interface Disposable {
  dispose(): void;
}

/** An event listener. */
export type Listener<T> = (value: T) => void;

/** Fires values of type T to subscribed listeners. */
export class Emitter<T> {
  private listeners = new Set<Listener<T>>();

  /** Subscribes; the returned disposable unsubscribes (twice is harmless). */
  on(listener: Listener<T>): Disposable {
    // A wrapper per subscription, so the same function subscribed twice is two subscriptions.
    const wrapped: Listener<T> = (v) => listener(v);
    this.listeners.add(wrapped);
    return { dispose: () => void this.listeners.delete(wrapped) };
  }

  /**
   * Calls every listener. A listener that throws does not stop the others: one broken progress
   * bar must not lose another job's events. Errors go to `onListenerError`.
   */
  fire(value: T, onListenerError: (e: unknown) => void = () => {}): void {
    for (const l of [...this.listeners]) {
      try {
        l(value);
      } catch (e) {
        onListenerError(e);
      }
    }
  }

  get size(): number {
    return this.listeners.size;
  }

  clear(): void {
    this.listeners.clear();
  }
}
