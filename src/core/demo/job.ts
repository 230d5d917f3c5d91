/**
 * The `createDemo` job of the task host: the demo trio written model by model on a one-thread
 * worker pool (the generator is synchronous; on the job's own thread it would block the host's
 * connection for seconds to minutes). Progress is per tensor; cancellation terminates the worker
 * within the poll interval and removes the model being written and the models this run wrote.
 */
import { CancelledError, type CancelSignal, isCancelled, throwIfCancelled } from '../errors';
import { removePartialDir, removeTree } from '../io/atomicOutput';
import { WorkerPool } from '../io/workerPool';
import { ProgressMeter } from '../jobs/progressMeter';
import type { CreateDemoOptions, JobContext } from '../jobs/types';
import { DEMO_ROLES, type DemoTrio, demoModelBytes, demoTrioLayout } from './generator';
import type { DemoModelTask } from './worker';

/** How often a running model checks for cancellation, in ms. */
const CANCEL_POLL_MS = 50;

/**
 * Generates base, chat and cp under `opts.dir` (seed default 42), or reuses them at once when the
 * marker says they match; the same bytes as generateDemoTrio.
 * @throws CancelledError when cancelled (nothing of this run is left); ChatVecError InvalidArgument
 *   for an unknown preset; Io
 */
export async function runCreateDemo(opts: CreateDemoOptions, ctx: JobContext = {}): Promise<DemoTrio> {
  const seed = opts.seed ?? 42;
  const layout = demoTrioLayout(opts.dir, opts.preset, seed);
  if (layout.complete()) {
    ctx.onLog?.('info', `demo checkpoints in ${opts.dir} are up to date (${opts.preset}, seed ${seed}); reusing them`);
    return { root: opts.dir, ...layout.paths, reused: true };
  }
  throwIfCancelled(ctx.signal);
  const sizes = DEMO_ROLES.map((r) => demoModelBytes(r, opts.preset));
  let message = `generating ${DEMO_ROLES[0]} model (1 of ${DEMO_ROLES.length})`;
  const meter = new ProgressMeter(
    'generating',
    sizes.reduce((a, b) => a + b, 0),
    ctx.onProgress && ((e) => ctx.onProgress!({ ...e, ...(message ? { message } : {}) })),
  );
  const pool = new WorkerPool(1);
  const written: string[] = [];
  let current: { dir: string; tag: string } | null = null;
  try {
    for (const [i, role] of DEMO_ROLES.entries()) {
      throwIfCancelled(ctx.signal);
      const dir = layout.paths[role];
      const tag = `${Date.now().toString(36)}-${role}`;
      current = { dir, tag };
      message = `generating ${role} model (${i + 1} of ${DEMO_ROLES.length})`;
      ctx.onLog?.('info', `generating ${opts.preset} ${role} model in ${dir}`);
      meter.flush();
      let reported = 0;
      const task: DemoModelTask = { kind: 'demoModel', dir, role, preset: opts.preset, seed, tempTag: tag };
      await untilCancelled(
        pool.run(task, [], (done) => {
          meter.add((done as number) - reported);
          reported = done as number;
        }),
        ctx.signal,
      );
      meter.add(sizes[i]! - reported);
      written.push(dir);
      current = null;
    }
    layout.markComplete();
    meter.finish('done');
    return { root: opts.dir, ...layout.paths, reused: false };
  } catch (e) {
    // The worker may be mid-write: stop it before removing what it writes into.
    await pool.close();
    if (current) removePartialDir(current.dir, current.tag);
    if (isCancelled(e) || ctx.signal?.cancelled) for (const dir of written) removeTree(dir);
    throw e;
  } finally {
    await pool.close();
  }
}

/** Resolves as `p` does, or rejects with CancelledError as soon as `signal` says so. */
function untilCancelled<T>(p: Promise<T>, signal: CancelSignal | undefined): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const timer = setInterval(() => {
      if (signal.cancelled) {
        clearInterval(timer);
        reject(new CancelledError());
      }
    }, CANCEL_POLL_MS);
    p.then(
      (v) => {
        clearInterval(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearInterval(timer);
        reject(e);
      },
    );
  });
}
