/**
 * A pool of worker threads running dist/worker.js (src/core/worker/workerMain.ts). Each task is a
 * small, self-contained piece of streaming work (read a few MiB from each input, compute, write to
 * a precomputed offset), so parallelism also overlaps I/O with compute across workers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { ChatVecError } from '../errors';

export interface WorkerTask {
  readonly kind: string;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
  onProgress?: (p: unknown) => void;
}

interface Slot {
  worker: Worker;
  inFlight: number;
  pending: Map<number, Pending>;
}

/** The worker entry: dist/worker.js beside the bundle, or the TypeScript source under tsx. */
export function defaultWorkerScript(): string {
  if (process.env.CHATVEC_WORKER_SCRIPT) return process.env.CHATVEC_WORKER_SCRIPT;
  const bundled = path.join(__dirname, 'worker.js');
  if (fs.existsSync(bundled)) return bundled;
  return path.resolve(__dirname, '../worker/workerMain.ts');
}

/** Workers started ahead of their pool (prestartWorkers), not yet taken by one. */
const prestarted: { script: string; worker: Worker; dead: boolean }[] = [];

/**
 * Starts `size` worker threads of `script` now, for a pool that this process creates soon: a
 * thread's start (Node's own bootstrap, then the bundle) then overlaps what the main thread does
 * meanwhile (the CLI loading its code, a job opening its inputs). The next WorkerPool of the same
 * script takes them. Until then they keep no process alive (unref), and one that fails or exits
 * is left out. The CLI's `diff` path calls this before it loads the rest of its code.
 */
export function prestartWorkers(size: number, script = defaultWorkerScript()): void {
  for (let i = 0; i < size; i++) {
    let worker: Worker;
    try {
      worker = startWorker(script);
    } catch {
      return; // the pool's own start reports it
    }
    const entry = { script, worker, dead: false };
    entry.worker.unref();
    entry.worker.once('error', () => (entry.dead = true));
    entry.worker.once('exit', () => (entry.dead = true));
    prestarted.push(entry);
  }
}

/** A prestarted live worker of `script`, taken out of the list (made to keep the process alive again). */
function takePrestarted(script: string): Worker | null {
  for (;;) {
    const i = prestarted.findIndex((p) => p.script === script);
    if (i < 0) return null;
    const [p] = prestarted.splice(i, 1);
    if (p!.dead) continue;
    p!.worker.ref();
    return p!.worker;
  }
}

function startWorker(script: string): Worker {
  // From source (tests under tsx) a .ts entry is loaded through tsx's CommonJS hook: Node 20
  // workers resolve a .ts entry with the ESM loader, which `--import tsx` does not reach.
  return script.endsWith('.ts')
    ? new Worker(`require('tsx/cjs'); require(${JSON.stringify(script)});`, { eval: true, execArgv: process.execArgv })
    : new Worker(script, { execArgv: process.execArgv });
}

/** Options of a WorkerPool. */
export interface WorkerPoolOptions {
  /**
   * Runs tasks in the calling thread as one more lane beside the workers (runAll hands it one task
   * per turn of the event loop; run() uses it when there are no workers). For a process whose
   * thread has nothing else to do, such as the CLI running one job: that thread computes from the
   * moment the tasks are planned, while the workers are still starting, and one worker fewer is
   * started. It blocks the thread for one task at a time; errors it throws fail the run as a
   * worker's would.
   */
  readonly inline?: (task: WorkerTask) => unknown;
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closed = false;
  private failure: ChatVecError | null = null;
  private readonly inline: ((task: WorkerTask) => unknown) | null;

  /**
   * @param size number of worker threads (≥ 1; 0 allowed with `opts.inline`, which then runs every task)
   * @param script the worker entry file
   */
  constructor(
    readonly size: number,
    script = defaultWorkerScript(),
    opts: WorkerPoolOptions = {},
  ) {
    this.inline = opts.inline ?? null;
    for (let i = 0; i < (this.inline ? size : Math.max(1, size)); i++) {
      const worker = takePrestarted(script) ?? startWorker(script);
      const slot: Slot = { worker, inFlight: 0, pending: new Map() };
      worker.on('message', (m: { id: number; ok: boolean; result?: unknown; progress?: unknown; error?: { code: string; message: string; details?: string } }) => {
        const p = slot.pending.get(m.id);
        if (!p) return;
        if ('progress' in m) {
          p.onProgress?.(m.progress);
          return;
        }
        slot.pending.delete(m.id);
        slot.inFlight--;
        if (m.ok) p.resolve(m.result);
        else p.reject(new ChatVecError((m.error?.code ?? 'Internal') as ChatVecError['code'], m.error?.message ?? 'worker failed', m.error?.details));
      });
      const fail = (e: unknown) => {
        const err = new ChatVecError('Internal', `worker thread failed: ${e instanceof Error ? e.message : String(e)}`);
        this.failure ??= err;
        for (const p of slot.pending.values()) p.reject(err);
        slot.pending.clear();
        slot.inFlight = 0;
      };
      worker.on('error', fail);
      worker.on('exit', (code) => {
        if (!this.closed) fail(new Error(`exited with code ${code}`));
      });
      this.slots.push(slot);
    }
  }

  /**
   * Runs one task on the least busy worker. Rejects with the worker's ChatVecError. `onProgress`
   * receives what the task's handler reports while it runs (see workerHandlers).
   */
  run<R>(task: WorkerTask, transfer: readonly ArrayBuffer[] = [], onProgress?: (p: unknown) => void): Promise<R> {
    if (this.closed) return Promise.reject(new ChatVecError('Internal', 'worker pool is closed'));
    if (this.failure) return Promise.reject(this.failure);
    const inline = this.inline;
    if (this.slots.length === 0 && inline) return Promise.resolve().then(() => inline(task) as R);
    let slot = this.slots[0]!;
    for (const s of this.slots) if (s.inFlight < slot.inFlight) slot = s;
    const id = this.nextId++;
    slot.inFlight++;
    return new Promise<R>((resolve, reject) => {
      slot.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onProgress });
      slot.worker.postMessage({ id, task }, transfer as ArrayBuffer[]);
    });
  }

  /**
   * Runs tasks with at most `2 × size` on the workers (two per worker keeps each busy while the
   * main thread handles a reply), and one at a time inline when the pool has an inline lane,
   * calling `onDone` as each finishes, in completion order. Stops handing out tasks when
   * `shouldStop()` turns true or a task fails; waits for those in flight.
   */
  async runAll<T extends WorkerTask, R>(tasks: Iterable<T>, onDone: (task: T, result: R) => void, shouldStop: () => boolean = () => false): Promise<void> {
    const it = tasks[Symbol.iterator]();
    const limit = this.slots.length * 2;
    const inline = this.inline;
    let firstError: unknown = null;
    await new Promise<void>((resolveAll) => {
      let onWorkers = 0;
      let inlineBusy = false;
      let exhausted = false;
      const take = (): T | null => {
        if (exhausted || firstError !== null || shouldStop()) return null;
        const next = it.next();
        if (next.done) exhausted = true;
        return next.done ? null : next.value;
      };
      const finish = (task: T, r: R) => {
        if (firstError !== null) return;
        try {
          onDone(task, r);
        } catch (e) {
          firstError = e;
        }
      };
      const pump = () => {
        for (let task = onWorkers < limit ? take() : null; task; task = onWorkers < limit ? take() : null) {
          const t = task;
          onWorkers++;
          this.run<R>(t).then(
            (r) => {
              onWorkers--;
              finish(t, r);
              pump();
            },
            (e) => {
              onWorkers--;
              firstError ??= e;
              pump();
            },
          );
        }
        const mine = inline && !inlineBusy ? take() : null;
        if (inline && mine) {
          inlineBusy = true;
          // One task per turn of the event loop, so the workers' replies are handled in between.
          setImmediate(() => {
            try {
              finish(mine, inline(mine) as R);
            } catch (e) {
              firstError ??= e;
            }
            inlineBusy = false;
            pump();
          });
        }
        if (onWorkers === 0 && !inlineBusy) resolveAll();
      };
      pump();
    });
    if (firstError !== null) throw firstError;
  }

  /** Runs the same task once on every worker (e.g. to close cached file handles). */
  async broadcast(task: WorkerTask): Promise<void> {
    if (this.closed) return;
    await Promise.all(
      this.slots.map((slot) => {
        const id = this.nextId++;
        slot.inFlight++;
        return new Promise((resolve, reject) => {
          slot.pending.set(id, { resolve, reject });
          slot.worker.postMessage({ id, task });
        });
      }),
    );
  }

  /** Stops all workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
