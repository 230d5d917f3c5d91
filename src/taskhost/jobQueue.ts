/**
 * First-in, first-out admission of heavy jobs with a concurrency limit. Each job already spreads
 * over every core with worker threads and streams at disk speed, so running two at once mostly
 * makes both slower and doubles memory; the default limit is therefore 1 and the rest wait.
 */
import { CancelledError, ChatVecError } from '../core/errors';

/**
 * The most heavy jobs the host runs at once. One job already uses every core, so more than a few
 * only multiplies memory (each job holds its own worker threads and buffers); 16 leaves room for
 * I/O-bound uses without letting `concurrency: 1e9` turn a queue into a memory bomb.
 */
export const MAX_JOB_CONCURRENCY = 16;

interface Waiter {
  readonly id: string;
  readonly onPosition: ((position: number) => void) | undefined;
  lastPosition: number;
  resolve(release: () => void): void;
  reject(e: unknown): void;
}

/** FIFO admission with a concurrency limit; jobs are identified by id. */
export class JobQueue {
  private readonly waiting: Waiter[] = [];
  private readonly running = new Set<string>();
  private max: number;

  /** @param limit how many jobs may hold a slot at once (1 … {@link MAX_JOB_CONCURRENCY}) */
  constructor(limit = 1) {
    this.max = JobQueue.check(limit);
  }

  /** The concurrency limit. */
  get limit(): number {
    return this.max;
  }

  /** Changes the limit; raising it starts waiting jobs at once, lowering it lets running ones finish. */
  setLimit(limit: number): void {
    this.max = JobQueue.check(limit);
    this.pump();
  }

  /** Ids of jobs holding a slot. */
  get runningIds(): readonly string[] {
    return [...this.running];
  }

  /** Ids of waiting jobs, next first. */
  get waitingIds(): readonly string[] {
    return this.waiting.map((w) => w.id);
  }

  /**
   * Waits for a slot. `onPosition` hears the 1-based queue position on arrival (when the job has to
   * wait) and each time it changes. The returned function frees the slot; calling it twice is
   * harmless.
   * @throws CancelledError when {@link withdraw} removes the job while it waits
   */
  acquire(id: string, onPosition?: (position: number) => void): Promise<() => void> {
    if (this.running.has(id) || this.waiting.some((w) => w.id === id)) {
      return Promise.reject(new ChatVecError('InvalidArgument', `job ${id} is already queued or running`));
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ id, onPosition, lastPosition: 0, resolve, reject });
      this.pump();
    });
  }

  /** Removes a waiting job (its acquire rejects with CancelledError). False when it was not waiting. */
  withdraw(id: string): boolean {
    const i = this.waiting.findIndex((w) => w.id === id);
    if (i < 0) return false;
    const [w] = this.waiting.splice(i, 1);
    w!.reject(new CancelledError(`job ${id} was cancelled while queued`));
    this.pump();
    return true;
  }

  private pump(): void {
    while (this.running.size < this.max && this.waiting.length > 0) {
      const w = this.waiting.shift()!;
      this.running.add(w.id);
      let released = false;
      w.resolve(() => {
        if (released) return;
        released = true;
        this.running.delete(w.id);
        this.pump();
      });
    }
    // Positions change only here (arrivals, starts, withdrawals), so this is the one place to report.
    this.waiting.forEach((w, i) => {
      if (w.lastPosition !== i + 1) {
        w.lastPosition = i + 1;
        w.onPosition?.(i + 1);
      }
    });
  }

  private static check(limit: number): number {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_JOB_CONCURRENCY) {
      throw new ChatVecError('InvalidArgument', `concurrency must be a whole number ≥ 1 and at most ${MAX_JOB_CONCURRENCY}, got ${limit}`);
    }
    return limit;
  }
}
