/**
 * The energy-at-rank job ("how low-rank is this fine-tune"): for each 2-D float matrix of a
 * (base, chat) pair, the fraction of ‖τ‖², τ = chat − base, that an optimal rank-R approximation
 * keeps — what a rank-R LoRA of that matrix could at best hold. One worker task per matrix,
 * largest first (rankEnergyTask.ts: τ and the sketch panels of one matrix per thread, never the
 * model); the GEMMs on the GPU when the backend selects it, as extract --rank. Per group (layer,
 * embeddings …) and in total the figure is Σ captured / Σ ‖τ‖², the energy per-matrix rank-R
 * adapters would keep of that part of τ.
 */
import { type CatalogueEntry, checkpointIdentity } from '../checkpoint/checkpoint';
import { CancelledError, ChatVecError, throwIfCancelled } from '../errors';
import { WorkerPool } from '../io/workerPool';
import { ProgressMeter } from '../jobs/progressMeter';
import { threadCount } from '../jobs/threadLimit';
import type { EnergyAtRankOptions, EnergyAtRankReport } from '../jobs/types';
import type { ChunkRef } from './chunking';
import { type ComputeJobContext, withCompute } from './computeSelection';
import { type EnergyCacheInputs, energyCacheKey, readCachedEnergy, writeCachedEnergy } from './energyCache';
import { energyReport } from './energyReport';
import { openExtractInputs } from './extractInputs';
import { GpuExecutor } from './gpuExecutor';
import { type RankEnergyTask, type RankEnergyTaskResult, rankEnergyOnGpu } from './rankEnergyTask';

/**
 * Runs the energy-at-rank job.
 * @throws ChatVecError InvalidArgument (rank not a whole number ≥ 1; no 2-D float weights; τ with
 *   NaN/±Inf in a matrix), BadCheckpoint, Unsupported (quantized), NameMismatch, ShapeMismatch, Io;
 *   CancelledError (nothing is cached then)
 */
export async function runEnergyAtRank(opts: EnergyAtRankOptions, ctx: ComputeJobContext = {}): Promise<EnergyAtRankReport> {
  const started = performance.now();
  const rank = opts.rank;
  if (!Number.isInteger(rank) || rank < 1) throw new ChatVecError('InvalidArgument', `--rank must be a whole number ≥ 1 (got ${String(rank)})`);
  throwIfCancelled(ctx.signal);
  const skipEmbed = opts.skipEmbed === true;
  const { base, chat, kept } = openExtractInputs(opts.base, opts.chat, skipEmbed);
  const matrices = kept.filter((t) => t.shape.length === 2);
  if (matrices.length === 0) throw new ChatVecError('InvalidArgument', `${base.path}: no 2-D float weights to measure`);

  const inputs: EnergyCacheInputs = { rank, skipEmbed, base: checkpointIdentity(base), chat: checkpointIdentity(chat) };
  const key = opts.cacheDir ? energyCacheKey(inputs) : null;
  if (opts.cacheDir && key) {
    const hit = readCachedEnergy(opts.cacheDir, key);
    if (hit) {
      ctx.onLog?.('info', `energy at rank ${rank}: result from the cache (${opts.cacheDir})`);
      return { ...hit, fromCache: true, seconds: (performance.now() - started) / 1000 };
    }
  }

  const ref = (e: CatalogueEntry): ChunkRef => ({ file: e.file, position: e.position, dtype: e.dtype });
  const totalBytes = matrices.reduce((s, t) => s + t.byteLength + chat.byName.get(t.name)!.byteLength, 0);
  const results = new Map<string, RankEnergyTaskResult>();
  const backend = await withCompute(opts.backend, ctx, async (scope) => {
    const compute = await scope.select(totalBytes, opts.threads);
    // No more threads than matrices: a worker costs more to start than a small matrix takes.
    const threads = Math.max(1, Math.min(matrices.length, threadCount(opts.threads)));
    const meter = new ProgressMeter('energy', totalBytes, ctx.onProgress);
    function* tasks(): Generator<RankEnergyTask> {
      // Largest first, so no thread is left with the embedding at the end; figures do not depend on the order.
      for (const t of [...matrices].sort((p, q) => q.elementCount - p.elementCount)) {
        yield { kind: 'rankEnergy', tensor: t.name, rows: t.shape[0]!, cols: t.shape[1]!, count: t.elementCount, chat: ref(chat.byName.get(t.name)!), base: ref(t), rank };
      }
    }
    const pool = new WorkerPool(threads);
    const gpu = compute.gpu ? new GpuExecutor({ gpu: compute.gpu, pool, accelerated: rankEnergyOnGpu, lanes: compute.lanes ?? 2, signal: ctx.signal, onLog: ctx.onLog, onGpuFailure: compute.onGpuFailure }) : null;
    const onDone = (task: RankEnergyTask, r: RankEnergyTaskResult) => {
      results.set(task.tensor, r);
      meter.add(r.bytes);
    };
    const stop = () => ctx.signal?.cancelled === true;
    try {
      if (gpu) await gpu.runAll<RankEnergyTaskResult>(tasks(), (t, r) => onDone(t as RankEnergyTask, r), stop);
      else await pool.runAll<RankEnergyTask, RankEnergyTaskResult>(tasks(), onDone, stop);
    } finally {
      gpu?.close();
      await pool.broadcast({ kind: 'closeHandles' }).catch(() => undefined);
      await pool.close();
    }
    meter.finish('done');
    return compute.gpu ? `${compute.label} (GEMMs; ${threads} CPU threads)` : compute.label;
  });
  if (ctx.signal?.cancelled) throw new CancelledError();

  const report = energyReport({
    base: base.path,
    chat: chat.path,
    rank,
    measured: matrices.map((t) => ({ entry: t, ...results.get(t.name)! })),
    notMatrices: kept.length - matrices.length,
    backend,
    seconds: (performance.now() - started) / 1000,
  });
  if (opts.cacheDir && key) {
    try {
      writeCachedEnergy(opts.cacheDir, key, inputs, report);
    } catch (e) {
      // A read-only or full cache folder must not fail a finished job.
      ctx.onLog?.('warn', `energy at rank: could not store the result in the cache: ${(e as Error).message}`);
    }
  }
  return report;
}
