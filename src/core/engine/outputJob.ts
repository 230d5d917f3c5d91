/**
 * Runs a planned output job: create the output files at their final sizes inside a temporary
 * sibling folder, stream every chunk task through the worker pool (progress, cancellation) — or,
 * with a GPU selected, the combine tasks through the GPU executor (gpuExecutor.ts) — run
 * the late tasks (row patches that must follow the main pass), flush, add the small files, and
 * rename the folder into place. Any failure or cancel removes the temporary folder.
 */
import { CancelledError } from '../errors';
import { AtomicOutputDir } from '../io/atomicOutput';
import { OutputFile, writeSmallFileSync } from '../io/outputFile';
import { type WorkerTask, WorkerPool } from '../io/workerPool';
import { ProgressMeter } from '../jobs/progressMeter';
import { threadCount } from '../jobs/threadLimit';
import type { JobContext } from '../jobs/types';
import { type CheckpointPlan, createPlannedFile } from '../safetensors/writer';
import type { JobCompute } from './computeSelection';
import { GpuExecutor } from './gpuExecutor';
import { type ChunkResult, type NonFinitePolicy, NonFiniteTally } from './nonFinite';
import type { JobInputs } from './jobInputs';
import { TOOL_VERSION } from '../version';

export interface OutputJob {
  /**
   * Where the job writes and what it reads (checked against each other before computing): the
   * output may not overlap an input, and the job fails when an input file changes before the
   * output is committed.
   */
  readonly inputs: JobInputs;
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
  /** What to do with NaN/±Inf the tasks produce from finite inputs (nonFinite.ts); default: fail the job. */
  readonly nonFinite?: NonFinitePolicy;
}

export interface OutputJobResult {
  readonly seconds: number;
  readonly bytesWritten: number;
  readonly threads: number;
  /** What ran the kernels, e.g. "cpu (2 threads)", "gpu: <adapter> (…)", or both after a GPU failure. */
  readonly backend: string;
  /** NaN/±Inf in the output (allowed ones, inputs' passed through); also appended to job.nonFinite.warnings. */
  readonly warnings: readonly string[];
}

/**
 * @throws CancelledError when ctx.signal is raised (nothing is left behind); ChatVecError from
 *   tasks (the first failure stops the job); ChatVecError InvalidArgument when tasks produce
 *   NaN/±Inf from finite inputs and job.nonFinite does not allow it (the job stops at the first)
 */
export async function runOutputJob(job: OutputJob, ctx: JobContext): Promise<OutputJobResult> {
  const threads = threadCount(job.threads);
  const cancelled = () => ctx.signal?.cancelled === true;
  if (cancelled()) throw new CancelledError();
  const dir = AtomicOutputDir.begin(job.inputs.out, { overwrite: job.inputs.overwrite, inputs: job.inputs.paths, writtenBy: `chatvec ${TOOL_VERSION} ${job.phase}` });
  let pool: WorkerPool | null = null;
  let gpu: GpuExecutor | null = null;
  try {
    for (const f of job.plan.files) createPlannedFile(dir.file(f.fileName), f).close();
    const fileOf = (fileName: string) => dir.file(fileName);
    const meter = new ProgressMeter(job.phase, job.totalBytes, ctx.onProgress);
    const workers = (pool = new WorkerPool(threads));
    const c = job.compute;
    if (c?.gpu) gpu = new GpuExecutor({ gpu: c.gpu, pool: workers, lanes: c.lanes, signal: ctx.signal, onLog: ctx.onLog, onGpuFailure: c.onGpuFailure });
    const tally = new NonFiniteTally(job.phase, job.plan, fileOf, job.nonFinite);
    const stop = () => cancelled() || tally.mustStop;
    const onDone = (t: WorkerTask, r: ChunkResult) => {
      meter.add(r.bytes);
      tally.add(r, (t as { readonly out?: { readonly file: string; readonly position: number } }).out);
    };
    const runAll = async (tasks: Iterable<WorkerTask>) => {
      let complete = false;
      const all = (function* () {
        yield* tasks;
        complete = true;
      })();
      await (gpu ? gpu.runAll(all, onDone, stop) : workers.runAll<WorkerTask, ChunkResult>(all, onDone, stop));
      tally.throwIfFailed(complete);
    };
    await runAll(job.tasks(fileOf));
    if (cancelled()) throw new CancelledError();
    const late = job.lateTasks?.(fileOf) ?? [];
    if (late.length) await runAll(late);
    if (cancelled()) throw new CancelledError();
    gpu?.close();
    await pool.broadcast({ kind: 'closeHandles' });
    for (const f of job.plan.files) OutputFile.openForWrite(dir.file(f.fileName)).syncAndClose();
    if (job.plan.index) writeSmallFileSync(dir.file('model.safetensors.index.json'), JSON.stringify(job.plan.index, null, 2) + '\n');
    const warnings = tally.warnings();
    job.writeExtras((name) => dir.file(name));
    job.inputs.assertUnchanged();
    dir.commit();
    meter.finish('done');
    return { seconds: meter.seconds, bytesWritten: job.plan.totalTensorBytes, threads, backend: backendRan(c, gpu, threads), warnings };
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
