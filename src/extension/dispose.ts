/**
 * Disposables with two lifetimes (as in vscode-hexeditor's src/dispose.ts): the extension's (from
 * activate to deactivate) and a task-host session's (from a host start to its exit or restart).
 * Whatever subscribes to one host's events belongs to its session store, so a restarted host
 * never delivers into listeners of the previous one.
 */
import type * as vscode from 'vscode';

export abstract class Disposable implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private disposed = false;

  protected get isDisposed(): boolean {
    return this.disposed;
  }

  /** Ties `d` to this object's lifetime; disposes it at once when this is already disposed. */
  protected register<T extends vscode.Disposable>(d: T): T {
    if (this.disposed) d.dispose();
    else this.disposables.push(d);
    return d;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    disposeAll(this.disposables.splice(0));
  }
}

/** A bag of disposables that can be emptied and reused (a session that restarts). */
export class DisposableStore extends Disposable {
  private items: vscode.Disposable[] = [];

  add<T extends vscode.Disposable>(d: T): T {
    if (this.isDisposed) d.dispose();
    else this.items.push(d);
    return d;
  }

  /** Disposes what the store holds and keeps it usable. */
  clear(): void {
    disposeAll(this.items.splice(0));
  }

  override dispose(): void {
    this.clear();
    super.dispose();
  }
}

/** Disposes in reverse order of registration; one failing dispose does not stop the others. */
export function disposeAll(list: vscode.Disposable[]): void {
  for (let i = list.length - 1; i >= 0; i--) {
    try {
      list[i]!.dispose();
    } catch {
      // A listener that throws while being removed must not keep the rest alive.
    }
  }
}

export function toDisposable(fn: () => void): vscode.Disposable {
  return { dispose: fn };
}
