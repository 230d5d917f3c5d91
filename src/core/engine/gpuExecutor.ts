/**
 * Runs chunk tasks with a GPU (mergekit's Executor(math_device)): every task that says it can use
 * the accelerator (AcceleratedKind.usesAccelerator: the combine tasks of apply/extract, the diff
 * chunks of diff) runs on the main thread through the GPU backend's kernel — inputs read by
 * position into reused buffers, the kernel, then the task's host step (write the output, check
 * it for NaN/±Inf; or return the sums). Everything else (copyBytes, F64 tensors, row copies
 * without terms, more than GPU_MAX_TERMS terms) goes to the CPU worker pool as before.
 *
 * Several GPU tasks are in flight at once (`lanes`, each with its own buffers), so one task's
 * reads overlap another's upload, compute and readback; memory stays flat at about lanes × (the
 * task's input and output bytes) whatever the model size.
 *
 * A GPU failure (the backend rejects with anything but Cancelled) stops GPU use for the rest of
 * the job: by default the failed task and every later one run on the CPU pool (each task writes
 * its whole output range, so a rerun leaves no trace of the failed attempt); with
 * onGpuFailure 'fail' the job fails and the caller removes the unfinished output.
 */
import { ChatVecError, type CancelSignal, isCancelled } from '../errors';
import { bytesOf, elementBytes, viewElements } from '../compute/elements';
import { decodeToF32 } from '../numeric/convert';
import type { ComputeBackend, ElementArray } from '../compute/types';
import { OutputFile } from '../io/outputFile';
import { PositionalFile } from '../io/positionalFile';
import type { WorkerTask } from '../io/workerPool';
import type { LogSink } from '../jobs/types';
import type { FloatDtype } from '../safetensors/dtype';
import type { ChunkRef } from './chunking';
import { type CombineTask, combineInputs, combineUsesAccelerator } from './combineKernel';
import { type ChunkResult, checkChunk } from './nonFinite';

/** What the host step of an accelerated task may use. */
export interface HostIo {
  /** Writes bytes at a position of an output file (handles kept until close()). */
  write(file: string, bytes: Uint8Array, position: number): void;
}

/**
 * A kind of chunk task that can run on the accelerator, and how: the executor reads `inputs`
 * into its lane, `compute` runs the GPU kernel (a rejection other than Cancelled is a GPU failure:
 * the task reruns on the CPU), `finish` does the host's part and returns the task's result —
 * what the task's CPU handler returns.
 */
export interface AcceleratedKind<T extends WorkerTask, C, R> {
  /** Whether the GPU kernel can take this task (mergekit's Task.uses_accelerator). */
  usesAccelerator(task: WorkerTask): task is T;
  inputs(task: T): readonly ChunkRef[];
  compute(gpu: ComputeBackend, task: T, inputs: readonly ElementArray[], output: (bytes: number) => Uint8Array, signal?: CancelSignal): Promise<C>;
  /** @param bytesRead the bytes of all inputs */
  finish(task: T, computed: C, inputs: readonly ElementArray[], io: HostIo, bytesRead: number): R;
}

/** A combine's output, and the τ of each of its low-rank terms (inputs of the NaN check). */
interface Combined {
  readonly out: ElementArray;
  readonly taus: readonly ElementArray[];
}

/** Factor values as float32 (the low-rank kernel's input), decoded as the CPU's readFloatRun does. */
function asFloat32(a: ElementArray): Float32Array {
  if (a.dtype === 'F32') return a.data;
  const f = new Float32Array(a.data.length);
  decodeToF32(a.dtype, bytesOf(a), f, f.length);
  return f;
}

/**
 * Combine tasks (apply, extract, merge) on the GPU: the output is checked as the CPU's is. A
 * low-rank term (a LoRA adapter's B·A) has its factors read with the other inputs, its τ formed
 * by the GPU's low-rank kernel (compute/lowRankBound.ts: the CPU's bits except near a float32
 * rounding boundary) and then added by the combine kernel like a stored τ.
 */
export const combineOnGpu: AcceleratedKind<CombineTask, Combined, ChunkResult> = {
  usesAccelerator: combineUsesAccelerator,
  inputs: (t) => [...combineInputs(t), ...(t.lowRank ?? []).flatMap((l) => [l.left, l.right])],
  async compute(gpu, t, inputs, output, signal) {
    let i = 0;
    const next = () => inputs[i++]!;
    const target = t.target ? next() : null;
    const terms = t.terms.map((x) => ({ ratio: x.ratio, a: next(), b: x.b ? next() : null }));
    const taus: ElementArray[] = [];
    for (const l of t.lowRank ?? []) {
      const data = new Float32Array(t.count);
      const args = { layout: l.layout, rank: l.rank, rows: l.rows, cols: l.cols, first: l.first, count: l.count, left: asFloat32(next()), right: asFloat32(next()) };
      await gpu.lowRank(args, data, { signal });
      const tau: ElementArray = { dtype: 'F32', data };
      taus.push(tau);
      terms.push({ ratio: l.ratio, a: tau, b: null });
    }
    const out = viewElements(t.out.dtype, output(t.count * elementBytes(t.out.dtype)));
    await gpu.combine({ target, terms, out }, { signal });
    return { out, taus };
  },
  finish(t, { out, taus }, inputs, io, bytesRead) {
    const outBytes = bytesOf(out);
    io.write(t.out.file, outBytes, t.out.position);
    // The lane still holds the inputs: those of the combine, then each τ (the CPU's order).
    const checked = [...inputs.slice(0, combineInputs(t).length), ...taus];
    const nonFinite = checkChunk({ dtype: out.dtype, bytes: outBytes }, t.count, () => checked.map((a) => ({ dtype: a.dtype, bytes: bytesOf(a) })));
    // Factors count as the τ they stand for, as on the CPU (what the job's byte total expects).
    const factorBytes = inputs.slice(checked.length - taus.length).reduce((s, a) => s + a.data.byteLength, 0);
    const bytes = bytesRead - factorBytes + 4 * t.count * taus.length + outBytes.length;
    return nonFinite ? { bytes, nonFinite } : { bytes };
  },
};

/** What the executor needs of the CPU worker pool (WorkerPool fits). */
export interface CpuTaskRunner {
  readonly size: number;
  run<R>(task: WorkerTask): Promise<R>;
}

export interface GpuExecutorOptions {
  readonly gpu: ComputeBackend;
  /** The task kind that runs on the GPU; others go to the pool. Default: combineOnGpu. */
  readonly accelerated?: AcceleratedKind<WorkerTask, unknown, unknown>;
  /** Runs tasks the GPU does not take, and reruns after a GPU failure. */
  readonly pool: CpuTaskRunner;
  /** GPU tasks in flight (each holds its input and output buffers); default 3. */
  readonly lanes?: number;
  readonly signal?: CancelSignal;
  readonly onLog?: LogSink;
  /** After a GPU failure: rerun on the CPU (default) or fail the job. */
  readonly onGpuFailure?: 'cpu' | 'fail';
}

/** What ran where, for the job's outcome and tests. */
export interface GpuExecutorStats {
  /** Tasks whose kernel ran on the GPU. */
  gpuTasks: number;
  /** Tasks run on the CPU pool (ineligible ones and reruns). */
  cpuTasks: number;
  /** Why the GPU was given up mid-job, when it was. */
  gpuFailure: string | null;
}

/** Buffers of one task in flight, grown on demand and reused. */
class Lane {
  private inputs: Uint8Array[] = [];
  private out = new Uint8Array(0);

  /** `bytes` bytes of input buffer `i` (offset 0 of its own ArrayBuffer, so any element view is aligned). */
  input(i: number, bytes: number): Uint8Array {
    let b = this.inputs[i];
    if (!b || b.length < bytes) this.inputs[i] = b = new Uint8Array(bytes);
    return b.subarray(0, bytes);
  }

  output(bytes: number): Uint8Array {
    if (this.out.length < bytes) this.out = new Uint8Array(bytes);
    return this.out.subarray(0, bytes);
  }
}

/** See the file comment. One per job; close() releases its file handles. */
export class GpuExecutor {
  readonly stats: GpuExecutorStats = { gpuTasks: 0, cpuTasks: 0, gpuFailure: null };
  private readonly lanes: Lane[];
  private readonly readers = new Map<string, PositionalFile>();
  private readonly writers = new Map<string, OutputFile>();
  private readonly kind: AcceleratedKind<WorkerTask, unknown, unknown>;

  constructor(private readonly opts: GpuExecutorOptions) {
    this.lanes = Array.from({ length: Math.max(1, Math.min(8, opts.lanes ?? 3)) }, () => new Lane());
    this.kind = opts.accelerated ?? combineOnGpu;
  }

  /** Whether GPU tasks still go to the GPU. */
  get gpuUsable(): boolean {
    return this.stats.gpuFailure === null;
  }

  /**
   * Runs every task, calling `onDone(task, result)` as each finishes (the task kind's result, as
   * its CPU handler returns it). Stops handing out tasks when `shouldStop()` turns true
   * or a task fails, and waits for those in flight before returning or throwing the first error.
   */
  async runAll<R = ChunkResult>(tasks: Iterable<WorkerTask>, onDone: (task: WorkerTask, result: R) => void, shouldStop: () => boolean = () => false): Promise<void> {
    const it = tasks[Symbol.iterator]();
    const cpuLimit = 2 * Math.max(1, this.opts.pool.size);
    const free = [...this.lanes];
    const running = new Set<Promise<void>>();
    let cpuInFlight = 0;
    let firstError: unknown = null;
    let wake: (() => void) | null = null;
    const stop = () => firstError !== null || shouldStop();
    const settle = (task: WorkerTask, p: Promise<R>) => {
      const tracked: Promise<void> = p
        .then(
          (result) => {
            if (firstError === null) onDone(task, result);
          },
          (e: unknown) => {
            firstError ??= e;
          },
        )
        .catch((e: unknown) => {
          firstError ??= e;
        })
        .finally(() => {
          running.delete(tracked);
          const w = wake;
          wake = null;
          w?.();
        });
      running.add(tracked);
    };

    for (;;) {
      if (stop()) break;
      const next = it.next();
      if (next.done) break;
      const task = next.value;
      // Wait for room of the kind this task needs (re-decided after each wait: the GPU may have failed).
      const onGpu = () => this.gpuUsable && this.kind.usesAccelerator(task);
      while (!stop() && (onGpu() ? free.length === 0 : cpuInFlight >= cpuLimit)) await new Promise<void>((r) => (wake = r));
      if (stop()) break;
      if (onGpu()) {
        const lane = free.pop()!;
        settle(task, this.runOnGpu<R>(lane, task).finally(() => free.push(lane)));
      } else {
        cpuInFlight++;
        this.stats.cpuTasks++;
        settle(task, this.opts.pool.run<R>(task).finally(() => cpuInFlight--));
      }
    }
    while (running.size) await Promise.all([...running]);
    if (firstError !== null) throw firstError;
  }

  /** Closes the file handles this executor opened (outputs are flushed by the caller). */
  close(): void {
    for (const f of this.readers.values()) f.close();
    for (const f of this.writers.values()) f.close();
    this.readers.clear();
    this.writers.clear();
  }

  private reader(file: string): PositionalFile {
    let f = this.readers.get(file);
    if (!f) this.readers.set(file, (f = PositionalFile.openReadOnly(file)));
    return f;
  }

  private writer(file: string): OutputFile {
    let f = this.writers.get(file);
    if (!f) this.writers.set(file, (f = OutputFile.openForWrite(file)));
    return f;
  }

  private async runOnGpu<R>(lane: Lane, t: WorkerTask): Promise<R> {
    const n = (t as unknown as { readonly count: number }).count;
    const reads: Promise<void>[] = [];
    let bytes = 0;
    const inputs = this.kind.inputs(t).map((ref, i) => {
      const d = ref.dtype as FloatDtype;
      // An input with its own count (a low-rank factor) has that many elements; others the task's.
      const k = (ref as { readonly count?: number }).count ?? n;
      const buf = lane.input(i, k * elementBytes(d));
      reads.push(this.reader(ref.file).readInto(buf, ref.position));
      bytes += buf.length;
      return viewElements(d, buf);
    });
    // Every read must have ended before the lane is reused, even when one of them fails.
    const settled = await Promise.allSettled(reads);
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;

    if (this.gpuUsable) {
      let computed: { readonly value: unknown } | null = null;
      try {
        computed = { value: await this.kind.compute(this.opts.gpu, t, inputs, (k) => lane.output(k), this.opts.signal) };
      } catch (e) {
        if (isCancelled(e)) throw e;
        this.gpuFailed(e);
      }
      if (computed) {
        this.stats.gpuTasks++;
        // Outside the try: a failed write is the job's error, not the GPU's.
        return this.kind.finish(t, computed.value, inputs, { write: (file, b, position) => this.writer(file).writeAtSync(b, position) }, bytes) as R;
      }
    }
    if (this.opts.onGpuFailure === 'fail') {
      throw new ChatVecError('Internal', `the GPU failed mid-job (${this.stats.gpuFailure}); the unfinished output is removed`);
    }
    this.stats.cpuTasks++;
    return this.opts.pool.run<R>(t);
  }

  private gpuFailed(e: unknown): void {
    if (this.stats.gpuFailure !== null) return;
    this.stats.gpuFailure = e instanceof Error ? e.message : String(e);
    const then = this.opts.onGpuFailure === 'fail' ? 'failing the job (no output is kept)' : `running the rest on the CPU (${this.opts.pool.size} threads)`;
    this.opts.onLog?.('warn', `GPU failure mid-job (${this.stats.gpuFailure}): ${then}`);
  }
}
