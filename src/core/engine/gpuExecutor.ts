/**
 * Runs the chunk tasks of an output job with a GPU: every CombineTask the GPU kernels can take
 * runs on the main thread through ComputeBackend.fusedApply (inputs read by position into reused
 * buffers, the output written at the task's position); everything else (copyBytes, F64 tensors,
 * row copies without terms, more than MAX_APPLY_TERMS terms) goes to the CPU worker pool as before.
 *
 * Several GPU tasks are in flight at once (`lanes`, each with its own buffers), so one task's
 * reads overlap another's upload, compute and readback; memory stays flat at about lanes × (the
 * task's input and output bytes) whatever the model size.
 *
 * A GPU failure (the backend rejects with anything but Cancelled) stops GPU use for the rest of
 * the job: by default the failed task and every later one run on the CPU pool (each task writes
 * its whole output range, so a rerun leaves no trace of the failed attempt); with
 * onGpuFailure 'fail' the job fails and the caller removes the unfinished output.
 *
 * A GPU task checks its output for NaN/±Inf with the CPU tasks' check (nonFinite.ts), against the
 * inputs still in its lane, and reports the counts with its result as they do.
 */
import { ChatVecError, type CancelSignal, isCancelled } from '../errors';
import type { ApplyTerm, ComputeBackend, ElementArray, FusedApplyRequest, KernelDtype } from '../compute/backend';
import { MAX_APPLY_TERMS, kernelDtypeBytes, viewElements } from '../compute/elements';
import { OutputFile } from '../io/outputFile';
import { PositionalFile } from '../io/positionalFile';
import type { WorkerTask } from '../io/workerPool';
import type { LogSink } from '../jobs/types';
import type { Dtype } from '../safetensors/dtype';
import type { ChunkRef, CombineTask } from './combineKernel';
import { type ChunkResult, type RawElements, checkChunk } from './nonFinite';

/** What the executor needs of the CPU worker pool (WorkerPool fits). */
export interface CpuTaskRunner {
  readonly size: number;
  run<R>(task: WorkerTask): Promise<R>;
}

export interface GpuExecutorOptions {
  readonly gpu: ComputeBackend;
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

const isKernelDtype = (d: Dtype): d is KernelDtype => d === 'BF16' || d === 'F16' || d === 'F32';

/** True for a CombineTask the GPU's fused kernel computes exactly as combineKernel.ts does. */
export function gpuEligible(task: WorkerTask): task is CombineTask {
  if (task.kind !== 'combine') return false;
  const t = task as CombineTask;
  return (
    t.count > 0 &&
    t.terms.length >= 1 &&
    t.terms.length <= MAX_APPLY_TERMS &&
    isKernelDtype(t.out.dtype) &&
    (t.target === null || isKernelDtype(t.target.dtype)) &&
    t.terms.every((x) => isKernelDtype(x.a.dtype) && (x.b === null || isKernelDtype(x.b.dtype)))
  );
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
  /** −0 as BF16: the additive identity that stands in for a missing target (−0 + x = x, even for x = −0). */
  private negZero = new Uint16Array(0);

  constructor(private readonly opts: GpuExecutorOptions) {
    this.lanes = Array.from({ length: Math.max(1, Math.min(8, opts.lanes ?? 3)) }, () => new Lane());
  }

  /** Whether GPU tasks still go to the GPU. */
  get gpuUsable(): boolean {
    return this.stats.gpuFailure === null;
  }

  /**
   * Runs every task, calling `onDone(task, result)` as each finishes (bytes read and written, and
   * non-finite outputs when there are any). Stops handing out tasks when `shouldStop()` turns true
   * or a task fails, and waits for those in flight before returning or throwing the first error.
   */
  async runAll(tasks: Iterable<WorkerTask>, onDone: (task: WorkerTask, result: ChunkResult) => void, shouldStop: () => boolean = () => false): Promise<void> {
    const it = tasks[Symbol.iterator]();
    const cpuLimit = 2 * Math.max(1, this.opts.pool.size);
    const free = [...this.lanes];
    const running = new Set<Promise<void>>();
    let cpuInFlight = 0;
    let firstError: unknown = null;
    let wake: (() => void) | null = null;
    const stop = () => firstError !== null || shouldStop();
    const settle = (task: WorkerTask, p: Promise<ChunkResult>) => {
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
      const onGpu = () => this.gpuUsable && gpuEligible(task);
      while (!stop() && (onGpu() ? free.length === 0 : cpuInFlight >= cpuLimit)) await new Promise<void>((r) => (wake = r));
      if (stop()) break;
      if (onGpu()) {
        const lane = free.pop()!;
        settle(task, this.runOnGpu(lane, task as CombineTask).finally(() => free.push(lane)));
      } else {
        cpuInFlight++;
        this.stats.cpuTasks++;
        settle(task, this.opts.pool.run<ChunkResult>(task).finally(() => cpuInFlight--));
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

  private negZeros(n: number): ElementArray {
    if (this.negZero.length < n) this.negZero = new Uint16Array(n).fill(0x8000);
    return { dtype: 'BF16', data: this.negZero.subarray(0, n) };
  }

  private async runOnGpu(lane: Lane, t: CombineTask): Promise<ChunkResult> {
    const n = t.count;
    const reads: Promise<void>[] = [];
    const inputs: RawElements[] = [];
    let slot = 0;
    let bytes = 0;
    const read = (ref: ChunkRef): ElementArray => {
      const d = ref.dtype as KernelDtype;
      const buf = lane.input(slot++, n * kernelDtypeBytes(d));
      reads.push(this.reader(ref.file).readInto(buf, ref.position));
      inputs.push({ dtype: d, bytes: buf });
      bytes += buf.length;
      return viewElements(d, buf);
    };
    const cp = t.target ? read(t.target) : this.negZeros(n);
    const terms: ApplyTerm[] = t.terms.map((x) => (x.b ? { ratio: x.ratio, chat: read(x.a), base: read(x.b) } : { ratio: x.ratio, tau: read(x.a) }));
    // Every read must have ended before the lane is reused, even when one of them fails.
    const settled = await Promise.allSettled(reads);
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;

    const outDtype = t.out.dtype as KernelDtype;
    const outBytes = lane.output(n * kernelDtypeBytes(outDtype));
    const req: FusedApplyRequest = { cp, terms, outDtype, out: viewElements(outDtype, outBytes) };
    if (this.gpuUsable) {
      let computed = false;
      try {
        await this.opts.gpu.fusedApply(req, { signal: this.opts.signal });
        computed = true;
      } catch (e) {
        if (isCancelled(e)) throw e;
        this.gpuFailed(e);
      }
      if (computed) {
        // Outside the try: a failed write is the job's error, not the GPU's.
        this.writer(t.out.file).writeAtSync(outBytes, t.out.position);
        this.stats.gpuTasks++;
        // The lane still holds the inputs (the −0 standing in for a missing target is none).
        const nonFinite = checkChunk({ dtype: outDtype, bytes: outBytes }, n, () => inputs);
        return nonFinite ? { bytes: bytes + outBytes.length, nonFinite } : { bytes: bytes + outBytes.length };
      }
    }
    if (this.opts.onGpuFailure === 'fail') {
      throw new ChatVecError('Internal', `the GPU failed mid-job (${this.stats.gpuFailure}); the unfinished output is removed`);
    }
    this.stats.cpuTasks++;
    return this.opts.pool.run<ChunkResult>(t);
  }

  private gpuFailed(e: unknown): void {
    if (this.stats.gpuFailure !== null) return;
    this.stats.gpuFailure = e instanceof Error ? e.message : String(e);
    const then = this.opts.onGpuFailure === 'fail' ? 'failing the job (no output is kept)' : `running the rest on the CPU (${this.opts.pool.size} threads)`;
    this.opts.onLog?.('warn', `GPU failure mid-job (${this.stats.gpuFailure}): ${then}`);
  }
}
