/**
 * Runs the task host's light requests (inspect, recipeCheck, recipePlan, rowStats) on a few worker
 * threads, so a header read that blocks for ever (a FIFO, a hung network mount) blocks one thread
 * and never the host's event loop: `status`, `cancel`, `shutdown`, jobs and other light requests
 * are still answered. Each thread runs one request at a time; a request waits only while
 * {@link MAX_LIGHT_THREADS} are busy. One idle thread is kept for the next request, extra ones end.
 *
 * A thread stuck in a system call cannot be terminated or joined (and `process.exit` joins every
 * thread), so the host asks {@link LightRequests.busy} before it exits; see main.ts.
 */
import { Worker } from 'node:worker_threads';
import { ChatVecError, type ErrorCode } from '../core/errors';
import type { LightContext, LightMethod, LightParamsMap, LightReplyMessage, LightRequestMessage } from './lightRequestThread';

/** Threads at most: enough that a stuck read or two leave the others answering, few enough to stay light. */
export const MAX_LIGHT_THREADS = 4;

/** The part of a cancellation token used here (vscode-jsonrpc's fits). */
interface TokenLike {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): { dispose(): void };
}

interface Pending {
  readonly message: LightRequestMessage;
  resolve(result: unknown): void;
  reject(e: unknown): void;
  unlink(): void;
}

interface Thread {
  readonly worker: Worker;
  current: Pending | null;
}

/** A small pool of threads for light requests (see the file comment). */
export class LightRequests {
  private readonly threads = new Set<Thread>();
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;

  /**
   * @param script the task host bundle, which serves light requests when it is not the main thread
   * @param maxThreads threads at most
   */
  constructor(
    private readonly script: string,
    private readonly maxThreads = MAX_LIGHT_THREADS,
  ) {}

  /** Requests running on a thread now; one stuck in a read stays counted for ever. */
  get busy(): number {
    let n = 0;
    for (const t of this.threads) if (t.current) n++;
    return n;
  }

  /**
   * Runs one request on a thread. A request still waiting for a thread when `token` is cancelled
   * is dropped (rejects Cancelled); one already running is answered normally.
   * @throws ChatVecError as the request's handler threw it (code, message, details kept);
   *   Internal when the thread died; Cancelled as above or after {@link close}
   */
  run<M extends LightMethod>(method: M, params: LightParamsMap[M], context: LightContext, token?: TokenLike): Promise<unknown> {
    if (this.closed) return Promise.reject(new ChatVecError('Cancelled', `${method}: the task host is exiting`));
    const cancelled = () => new ChatVecError('Cancelled', `${method} was cancelled before it started`);
    if (token?.isCancellationRequested) return Promise.reject(cancelled());
    return new Promise((resolve, reject) => {
      const p: Pending = { message: { id: this.nextId++, method, params, context }, resolve, reject, unlink: () => {} };
      const sub = token?.onCancellationRequested(() => {
        const i = this.queue.indexOf(p);
        if (i < 0) return;
        this.queue.splice(i, 1);
        p.unlink();
        reject(cancelled());
      });
      if (sub) p.unlink = () => sub.dispose();
      this.queue.push(p);
      this.dispatch();
    });
  }

  /** Ends idle threads and refuses further requests; a busy thread is told to stop but may be stuck. */
  close(): void {
    this.closed = true;
    for (const p of this.queue.splice(0)) {
      p.unlink();
      p.reject(new ChatVecError('Cancelled', `${p.message.method}: the task host is exiting`));
    }
    for (const t of this.threads) void t.worker.terminate().catch(() => {});
  }

  private dispatch(): void {
    while (this.queue.length > 0 && !this.closed) {
      const thread = [...this.threads].find((t) => t.current === null) ?? (this.threads.size < this.maxThreads ? this.spawn() : null);
      if (!thread) return;
      const p = this.queue.shift()!;
      thread.current = p;
      thread.worker.postMessage(p.message);
    }
  }

  private spawn(): Thread {
    const worker = new Worker(this.script);
    // Idle threads must not keep the process alive; the IPC channel does that.
    worker.unref();
    const thread: Thread = { worker, current: null };
    this.threads.add(thread);
    worker.on('message', (m: LightReplyMessage) => {
      const p = thread.current;
      if (!p || p.message.id !== m.id) return;
      thread.current = null;
      p.unlink();
      if (m.ok) p.resolve(m.result);
      else p.reject(new ChatVecError(m.error.code as ErrorCode, m.error.message, m.error.details));
      // Keep one idle thread; end the others once the queue is empty.
      if (this.queue.length === 0 && [...this.threads].some((t) => t !== thread && t.current === null)) this.retire(thread);
      this.dispatch();
    });
    const fail = (why: string) => {
      if (!this.threads.has(thread)) return;
      this.threads.delete(thread);
      const p = thread.current;
      thread.current = null;
      if (p) {
        p.unlink();
        p.reject(new ChatVecError('Internal', `${p.message.method}: the task host's request thread ${why}`));
      }
      this.dispatch();
    };
    worker.on('error', (e) => fail(`failed: ${e.message}`));
    worker.on('exit', (code) => fail(`exited with code ${code}`));
    return thread;
  }

  private retire(thread: Thread): void {
    this.threads.delete(thread);
    void thread.worker.terminate().catch(() => {});
  }
}
