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
import { groupLabel } from '../checkpoint/layers';
import { CancelledError, ChatVecError, throwIfCancelled } from '../errors';
import { WorkerPool } from '../io/workerPool';
import { ProgressMeter } from '../jobs/progressMeter';
import { threadCount } from '../jobs/threadLimit';
import type { EnergyAtRankOptions, EnergyAtRankReport, EnergyFigures, GroupEnergy, MatrixEnergy } from '../jobs/types';
import type { ChunkRef } from './chunking';
import { type ComputeJobContext, withCompute } from './computeSelection';
import { type EnergyCacheInputs, energyCacheKey, readCachedEnergy, writeCachedEnergy } from './energyCache';
import { openExtractInputs } from './extractInputs';
import { GpuExecutor } from './gpuExecutor';
import { type RankEnergyTask, type RankEnergyTaskResult, rankEnergyOnGpu } from './rankEnergyTask';

/**
 * The report's promise for each matrix: the estimate is at most this fraction of ‖τ‖² below the
 * exact energy, and never above it (tested against a Jacobi SVD; see compute/randomizedSvd.ts rankEnergy).
 */
export const ENERGY_TOLERANCE = 0.01;

/** Σ captured / Σ norm² of some matrices; 1 for a zero τ (nothing to lose). */
export function energyFigures(items: readonly { readonly norm2: number; readonly captured2: number }[]): EnergyFigures {
  let norm2 = 0;
  let captured2 = 0;
  for (const x of items) {
    norm2 += x.norm2;
    captured2 += x.captured2;
  }
  return { norm2, captured2, energy: norm2 > 0 ? captured2 / norm2 : 1 };
}

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

  const measured: MatrixEnergy[] = matrices.map((t) => {
    const r = results.get(t.name)!;
    const g = t.group;
    return { name: t.name, role: g.role, layer: g.layer ?? null, module: g.module, shape: [t.shape[0]!, t.shape[1]!], rank: r.rank, powerIterations: r.powerIterations, ...energyFigures([r]) };
  });
  const byLabel = new Map<string, { label: string; role: GroupEnergy['role']; layer: number | null; items: MatrixEnergy[] }>();
  matrices.forEach((t, i) => {
    const label = groupLabel(t.group);
    let g = byLabel.get(label);
    if (!g) byLabel.set(label, (g = { label, role: t.group.role, layer: t.group.layer ?? null, items: [] }));
    g.items.push(measured[i]!);
  });
  const report: EnergyAtRankReport = {
    base: base.path,
    chat: chat.path,
    rank,
    tolerance: ENERGY_TOLERANCE,
    total: energyFigures(measured),
    groups: [...byLabel.values()].map((g) => ({ label: g.label, role: g.role, layer: g.layer, ...energyFigures(g.items) })),
    matrices: measured,
    notMatrices: kept.length - matrices.length,
    backend,
    fromCache: false,
    seconds: (performance.now() - started) / 1000,
  };
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
