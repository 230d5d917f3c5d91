/**
 * Runs a planned output job: create the output files at their final sizes inside a temporary
 * sibling folder, stream every chunk task through the worker pool (progress, cancellation) — or,
 * with a GPU selected, the combine tasks through the GPU executor (gpuExecutor.ts) — run
 * the late tasks (row patches that must follow the main pass), flush, add the small files, and
 * rename the folder into place. Any failure or cancel removes the temporary folder.
 */
import { CancelledError, ChatVecError } from '../errors';
import { AtomicOutputDir } from '../io/atomicOutput';
import { availableParallelism } from '../io/files';
import { OutputFile, writeSmallFileSync } from '../io/outputFile';
import { type WorkerTask, WorkerPool } from '../io/workerPool';
import { ProgressMeter } from '../jobs/progressMeter';
import type { JobContext } from '../jobs/types';
import { type CheckpointPlan, createPlannedFile } from '../safetensors/writer';
import type { JobCompute } from './computeSelection';
import { GpuExecutor } from './gpuExecutor';

export interface OutputJob {
  readonly out: string;
  readonly overwrite: boolean;
  readonly plan: CheckpointPlan;
  /**
   * Chunk tasks of the main pass, produced lazily (a 1B model has thousands). `fileOf` maps a
   * planned file name to its path in the temporary output folder.
   */
  readonly tasks: (fileOf: (fileName: string) => string) => Iterable<WorkerTask>;
  /** Bytes the main and late passes will read and write (for progress and GB/s). */
  readonly totalBytes: number;
  /** Tasks that must run after the main pass (e.g. special-token rows over a copied tensor). */
  readonly lateTasks?: (fileOf: (fileName: string) => string) => readonly WorkerTask[];
  /** Writes config, tokenizer files, model card … into the temporary folder. */
  readonly writeExtras: (file: (name: string) => string) => void;
  readonly threads?: number;
  readonly phase: string;
  /** The backend chosen for the job (computeSelection.ts); absent or without a GPU: the worker pool runs everything. */
  readonly compute?: JobCompute;
}

export interface OutputJobResult {
  readonly seconds: number;
  readonly bytesWritten: number;
  readonly threads: number;
  /** What ran the kernels, e.g. "cpu (2 threads)", "gpu: <adapter> (…)", or both after a GPU failure. */
  readonly backend: string;
}

/** Worker threads to use: the option, else every core. */
export function threadCount(threads: number | undefined): number {
  if (threads === undefined) return availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new ChatVecError('InvalidArgument', `--threads must be a whole number ≥ 1, got ${threads}`);
  return threads;
}

/**
 * @throws CancelledError when ctx.signal is raised (nothing is left behind); ChatVecError from
 *   tasks (the first failure stops the job)
 */
export async function runOutputJob(job: OutputJob, ctx: JobContext): Promise<OutputJobResult> {
  const threads = threadCount(job.threads);
  const cancelled = () => ctx.signal?.cancelled === true;
  if (cancelled()) throw new CancelledError();
  const dir = AtomicOutputDir.begin(job.out, job.overwrite);
  let pool: WorkerPool | null = null;
  let gpu: GpuExecutor | null = null;
  try {
    for (const f of job.plan.files) createPlannedFile(dir.file(f.fileName), f).close();
    const fileOf = (fileName: string) => dir.file(fileName);
    const meter = new ProgressMeter(job.phase, job.totalBytes, ctx.onProgress);
    const workers = (pool = new WorkerPool(threads));
    const c = job.compute;
    if (c?.gpu) gpu = new GpuExecutor({ gpu: c.gpu, pool: workers, lanes: c.lanes, signal: ctx.signal, onLog: ctx.onLog, onGpuFailure: c.onGpuFailure });
    const runAll = (tasks: Iterable<WorkerTask>) =>
      gpu ? gpu.runAll(tasks, (_t, bytes) => meter.add(bytes), cancelled) : workers.runAll<WorkerTask, number>(tasks, (_t, bytes) => meter.add(bytes), cancelled);
    await runAll(job.tasks(fileOf));
    if (cancelled()) throw new CancelledError();
    const late = job.lateTasks?.(fileOf) ?? [];
    if (late.length) await runAll(late);
    if (cancelled()) throw new CancelledError();
    gpu?.close();
    await pool.broadcast({ kind: 'closeHandles' });
    for (const f of job.plan.files) OutputFile.openForWrite(dir.file(f.fileName)).syncAndClose();
    if (job.plan.index) writeSmallFileSync(dir.file('model.safetensors.index.json'), JSON.stringify(job.plan.index, null, 2) + '\n');
    job.writeExtras((name) => dir.file(name));
    dir.commit();
    meter.finish('done');
    return { seconds: meter.seconds, bytesWritten: job.plan.totalTensorBytes, threads, backend: backendRan(c, gpu, threads) };
  } catch (e) {
    gpu?.close();
    dir.abort();
    throw e;
  } finally {
    await pool?.close();
  }
}

/** JobOutcome.backend: the selected backend, and the CPU too when it took over after a GPU failure. */
function backendRan(c: JobCompute | undefined, gpu: GpuExecutor | null, threads: number): string {
  const cpu = `cpu (${threads} threads)`;
  if (!c?.gpu || !gpu) return cpu;
  return gpu.stats.gpuFailure === null ? c.label : `${c.label}, then ${cpu} after a GPU failure`;
}
