/**
 * The extension's side of the task host: one TaskHostClient per *session*. A session starts with
 * the first request and ends on "Restart Task Host", on a change of the host's settings, or at
 * deactivation; everything that listens to the client lives in the session's store, so nothing of
 * an old session fires into the new one. Crashes inside a session are the client's to recover
 * (it restarts the process on the next request); this class reports them to the user.
 */
import * as vscode from 'vscode';
import { TaskHostClient } from '../taskhost/client';
import type { TaskHostCrash } from '../taskhost/clientErrors';
import type { CachedModel, InspectReport, LogParams } from '../protocol/taskHost';
import { readSettings } from './config';
import { Disposable, DisposableStore } from './dispose';
import { userFacingHostText } from '../protocol/jobText';

export class TaskHostService extends Disposable {
  private client: TaskHostClient | undefined;
  private readonly session = this.register(new DisposableStore());
  private readonly crashEmitter = this.register(new vscode.EventEmitter<TaskHostCrash>());
  /** A task host process died; the payload says whether it will be restarted. */
  readonly onDidCrash = this.crashEmitter.event;
  private crashes = 0;
  private lastCrashMessage: string | undefined;

  constructor(
    private readonly hostScript: string,
    readonly log: vscode.LogOutputChannel,
  ) {
    super();
    this.register(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (this.client && (e.affectsConfiguration('chatVector.threads') || e.affectsConfiguration('chatVector.computeBackend'))) {
          const s = readSettings();
          if (s.threadsNote) this.log.warn(s.threadsNote);
          // Applies to running and future hosts without a restart.
          this.client.configure({ defaultThreads: s.threads ?? null, defaultBackend: s.computeBackend }).catch((err: unknown) => this.log.warn(`configure: ${String(err)}`));
        }
      }),
    );
  }

  /** The session's client, created on first use. */
  get api(): TaskHostClient {
    if (this.isDisposed) throw new Error('Chat Vector is shutting down.');
    if (!this.client) this.client = this.startSession();
    return this.client;
  }

  /** The pid of the running host process, if one runs (for tests and the log). */
  get pid(): number | undefined {
    return this.client?.pid;
  }
  get crashCount(): number {
    return this.crashes;
  }
  get lastCrash(): string | undefined {
    return this.lastCrashMessage;
  }

  inspect(path: string): Promise<InspectReport> {
    return this.api.inspect(path);
  }

  /** The hub cache's models (for the Checkpoints view's Hugging Face Cache section). */
  hubCacheList(): Promise<CachedModel[]> {
    return this.api.hubCacheList();
  }

  private startSession(): TaskHostClient {
    const s = readSettings();
    if (s.threadsNote) this.log.warn(s.threadsNote);
    const client = new TaskHostClient({ hostScript: this.hostScript, threads: s.threads, backend: s.computeBackend });
    this.session.add(toVs(client.onLog((l) => this.onLog(l))));
    // A header read that never answered (a FIFO, a hung network mount): the feature that asked
    // shows its error; this says once what happened to the host.
    this.session.add(
      toVs(
        client.onTimeout((t) => {
          void vscode.window.showWarningMessage(`Chat Vector: ${userFacingHostText(t.message)}.`, 'Show Log').then((pick) => {
            if (pick === 'Show Log') this.log.show(true);
          });
        }),
      ),
    );
    this.session.add(
      toVs(
        client.onCrash((c) => {
          this.crashes++;
          this.lastCrashMessage = c.message;
          this.log.error(c.message);
          this.crashEmitter.fire(c);
          // The user's words: the host is "the background process" (the log keeps the exact message).
          const what = userFacingHostText(c.message);
          const text = c.willRestart ? `Chat Vector: ${what}.` : `Chat Vector: ${what}. Use "Restart Background Process" after fixing the cause.`;
          void vscode.window.showWarningMessage(text, 'Show Log', ...(c.willRestart ? [] : ['Restart Background Process'])).then((pick) => {
            if (pick === 'Show Log') this.log.show(true);
            if (pick === 'Restart Background Process') void vscode.commands.executeCommand('chatVector.restartTaskHost');
          });
        }),
      ),
    );
    this.session.add({ dispose: () => void client.dispose().catch(() => undefined) });
    this.log.info(`task host session started (${this.hostScript})`);
    return client;
  }

  /** Ends the session (its jobs are cancelled) and starts the next one lazily. */
  async restart(): Promise<void> {
    const old = this.client;
    this.client = undefined;
    this.session.clear();
    await old?.dispose().catch(() => undefined);
    this.log.info('task host session ended; the next request starts a new host');
    await this.api.start();
  }

  private onLog(l: LogParams): void {
    const line = l.jobId ? `[${l.jobId}] ${l.message}` : l.message;
    switch (l.level) {
      case 'debug':
        this.log.debug(line);
        break;
      case 'info':
        this.log.info(line);
        break;
      case 'warn':
        this.log.warn(line);
        break;
      default:
        this.log.error(line);
    }
  }

  override dispose(): void {
    // The client's dispose asks the host to shut down; the session store runs it.
    this.client = undefined;
    super.dispose();
  }
}

function toVs(d: { dispose(): void }): vscode.Disposable {
  return { dispose: () => d.dispose() };
}
