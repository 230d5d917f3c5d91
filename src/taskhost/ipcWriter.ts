/**
 * A MessageWriter over the IPC channel of a forked process that knows when its messages have left.
 * vscode-jsonrpc's IPCMessageWriter resolves `write` before Node has handed the message to the
 * channel, so a host that answers `shutdown` and then exits could drop its own answer; this one
 * resolves in `process.send`'s callback and offers `drain()` for exactly that moment.
 */
import { AbstractMessageWriter, type Message, type MessageWriter } from 'vscode-jsonrpc/node';

/** Writes JSON-RPC messages to the parent over IPC; `drain()` waits until they are sent. */
export class FlushingIpcWriter extends AbstractMessageWriter implements MessageWriter {
  private pending = 0;
  private waiters: (() => void)[] = [];
  private errorCount = 0;

  constructor(private readonly proc: NodeJS.Process = process) {
    super();
  }

  write(msg: Message): Promise<void> {
    const send = this.proc.send?.bind(this.proc);
    if (!send || !this.proc.connected) return Promise.reject(new Error('the IPC channel to the client is closed'));
    this.pending++;
    return new Promise<void>((resolve, reject) => {
      const done = (error: Error | null) => {
        this.pending--;
        if (this.pending === 0) for (const w of this.waiters.splice(0)) w();
        if (error) {
          this.fireError(error, msg, ++this.errorCount);
          reject(error);
        } else {
          this.errorCount = 0;
          resolve();
        }
      };
      try {
        send(msg, undefined, undefined, done);
      } catch (e) {
        done(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  /** Resolves once every message written so far has been handed to the channel (or failed). */
  drain(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  end(): void {}
}
