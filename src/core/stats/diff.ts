/**
 * `diff`: where two checkpoints differ, tensor by tensor, layer by layer (or how large a stored chat
 * vector is). Reads headers only to plan, then streams both sides in chunks over worker threads;
 * memory stays flat in model size (a few MiB per worker plus a few numbers per chunk).
 */
import { type Checkpoint, type CatalogueEntry, checkpointIdentity, openCheckpoint } from '../checkpoint/checkpoint';
import { quantizationOf } from '../checkpoint/quantization';
import { CancelledError, ChatVecError, throwIfCancelled } from '../errors';
import { entryKind, fileIdentity } from '../io/files';
import { adapterKeyedLike, isAdapterFolder, openAdapter, requireAdapterFits } from '../lora/adapter';
import type { AdapterLowRank } from '../checkpoint/tensorAddend';
import { lowRankTermAt } from '../engine/adapterTerms';
import { readJsonObject } from '../io/sideFile';
import { threadCount } from '../jobs/threadLimit';
import { isAbsolute, join, resolve } from '../io/paths';
import { WorkerPool } from '../io/workerPool';
import { closeAllHandles } from '../io/handleCache';
import { ProgressMeter } from '../jobs/progressMeter';
import type { DiffOptions, DiffReport } from '../jobs/types';
import { dtypeBytes, isFloatDtype } from '../safetensors/dtype';
import { type ComparedTensor, type TensorSums, aggregate, lineageOf, statsFromSums, tensorDiff } from './aggregate';
import { type DiffCacheInputs, diffCacheKey, readCachedDiff, writeCachedDiff } from './diffCache';
import { addSums, emptySums } from '../compute/elements';
import type { DiffSums } from '../compute/types';
import { type ComputeJobContext, withCompute } from '../engine/computeSelection';
import { GpuExecutor } from '../engine/gpuExecutor';
import { type DiffChunkResult, type DiffChunkTask, diffOnGpu, runDiffChunk } from './diffKernel';
import { hubInputLines } from '../hub/provenance';

/**
 * Elements per task: 8–16 MiB per side in bf16/f32. Each task costs a round of messages between
 * threads and its own setup; on a warm 1b diff (2 threads), tasks of 256 Ki elements took 0.6 CPU-s
 * more than tasks of 1 Mi, and these (read a piece at a time) 0.07 CPU-s less.
 */
export const DIFF_CHUNK_ELEMENTS = 1 << 22;

/**
 * Elements a task reads and sums at a time (2–4 MiB per side), so the bytes a read leaves in the
 * core's cache are still there when the kernel reads them: on the same diff, pieces of 256 Ki
 * elements took 0.2 CPU-s more, and whole 4 Mi tasks as much. Also the task size of a LoRA
 * adapter's comparisons, whose Δ is formed per task.
 */
export const DIFF_PIECE_ELEMENTS = 1 << 20;

/** The file a chat-vector folder carries (written by `chatvec extract`). */
export const CHAT_VECTOR_MANIFEST = 'chatvector.json';

/** Knobs for tests and benchmarks; not part of the job's options. */
export interface DiffTuning {
  /** Elements per worker task (default DIFF_CHUNK_ELEMENTS). */
  readonly chunkElements?: number;
  /** Elements read at a time within a task, and per task of a LoRA comparison (default DIFF_PIECE_ELEMENTS). */
  readonly pieceElements?: number;
  /**
   * The calling thread computes too, as one of the `threads` (WorkerPoolOptions.inline): for a
   * process that runs this one job and nothing else (the CLI). Its cached read handles are closed
   * at the end, so no other job of the process may be reading through them. Not with a GPU.
   */
  readonly callingThreadComputes?: boolean;
}

/** One tensor to compare: which elements of which files. */
interface Comparison extends ComparedTensor {
  readonly entry: CatalogueEntry;
  /** Leading elements compared (all of them unless only shared rows are). */
  readonly count: number;
  readonly a: CatalogueEntry | null;
  readonly b: CatalogueEntry;
  readonly mode: 'ab' | 'delta';
  /** Δ is a LoRA adapter's B·A, formed per chunk (`b` is then its lora_B, not read). */
  readonly lowRank?: AdapterLowRank;
}

interface Plan {
  readonly mode: 'ab' | 'vector';
  readonly a: Checkpoint;
  readonly b: Checkpoint | null;
  readonly base: Checkpoint | null;
  readonly comparisons: Comparison[];
  readonly onlyInA: string[];
  readonly onlyInB: string[];
  readonly shapeMismatches: { name: string; shapeA: readonly number[]; shapeB: readonly number[] }[];
  readonly skipped: { name: string; reason: string }[];
  readonly warnings: string[];
  /** Further files whose change must invalidate a cached result (an adapter's config). */
  readonly alsoDependsOn?: readonly string[];
}

type Task = DiffChunkTask & { readonly index: number; readonly chunk: number };

/**
 * Computes delta statistics between A and B (Δ = B − A), or of a chat-vector folder A alone (Δ =
 * its tensors, with the base named in its chatvector.json as reference when that still exists).
 * Tensors are matched by name; for shapes that differ only in the leading dimension (an extended
 * vocabulary) the shared leading rows are compared. Non-float tensors are skipped. Values are
 * compared as float32 (BF16/F16 exactly, F64 rounded), with sums within compute/diffBound.ts of
 * float64 ones. Elements where A or B is NaN/±Inf are counted in `nonFinite` and left out of all
 * sums. Work runs on `opts.threads` threads (default: all cores; workers, and with
 * tuning.callingThreadComputes the calling thread as one of them) in tasks of DIFF_CHUNK_ELEMENTS;
 * progress is reported in bytes read.
 *
 * With `opts.cacheDir`, a result for the same input files (path, size, mtime of every shard) is
 * returned at once with `fromCache: true`, and a fresh result is stored there. The key does not
 * name the backend: a GPU result and a CPU result agree within that bound, so either serves both.
 *
 * @throws ChatVecError BadCheckpoint/Unsupported from opening the inputs; InvalidArgument when B
 *   is omitted and A is not a chat-vector folder; Io on read errors; CancelledError when
 *   `ctx.signal` turns cancelled (nothing is written to the cache then)
 */
export async function runDiff(opts: DiffOptions, ctx: ComputeJobContext = {}, tuning: DiffTuning = {}): Promise<DiffReport> {
  const started = performance.now();
  throwIfCancelled(ctx.signal);
  const plan = opts.b === undefined ? planVector(opts.a) : isAdapterFolder(opts.b) ? planAdapter(opts.a, opts.b) : planPair(opts.a, opts.b);
  for (const w of plan.warnings) ctx.onLog?.('warn', w);
  for (const line of hubInputLines([['A', plan.a.path], ...(plan.b ? [['B', plan.b.path] as const] : [])])) ctx.onLog?.('info', line);

  const inputs: DiffCacheInputs = {
    mode: plan.mode,
    a: checkpointIdentity(plan.a),
    b: plan.b ? [...checkpointIdentity(plan.b), ...(plan.alsoDependsOn ?? []).map(fileIdentity)] : null,
    base: plan.base ? checkpointIdentity(plan.base) : null,
  };
  const key = opts.cacheDir ? diffCacheKey(inputs) : null;
  if (opts.cacheDir && key) {
    const hit = readCachedDiff(opts.cacheDir, key);
    if (hit) {
      ctx.onLog?.('info', `diff: result from the cache (${opts.cacheDir})`);
      return { ...hit, fromCache: true, seconds: (performance.now() - started) / 1000 };
    }
  }

  const sums = await scan(plan, opts, ctx, tuning);
  const tensors: TensorSums[] = plan.comparisons.map((c, i) => ({
    name: c.name,
    group: c.entry.group,
    shapeA: c.shapeA,
    shapeB: c.shapeB,
    ...(c.note ? { note: c.note } : {}),
    sums: sums[i]!,
  }));
  const { groups, total } = aggregate(tensors);
  const totalStats = statsFromSums(total);
  const matrixSums = emptySums();
  for (const t of tensors) if (t.shapeA.length >= 2) addSums(matrixSums, t.sums);
  const report: DiffReport = {
    a: plan.a.path,
    b: plan.b ? plan.b.path : null,
    ...(plan.mode === 'vector' ? { base: plan.base ? plan.base.path : null } : {}),
    total: totalStats,
    lineage: lineageOf(totalStats, matrixSums.elements > 0 ? statsFromSums(matrixSums) : null, plan.mode, tensors.length, notCompared(plan)),
    groups,
    tensors: tensors.map(tensorDiff),
    onlyInA: plan.onlyInA,
    onlyInB: plan.onlyInB,
    shapeMismatches: plan.shapeMismatches,
    skipped: plan.skipped,
    fromCache: false,
    seconds: (performance.now() - started) / 1000,
  };
  if (opts.cacheDir && key) {
    try {
      writeCachedDiff(opts.cacheDir, key, inputs, report);
    } catch (e) {
      // A read-only or full cache folder must not fail a finished job.
      ctx.onLog?.('warn', `diff: could not store the result in the cache: ${(e as Error).message}`);
    }
  }
  return report;
}

function planPair(pathA: string, pathB: string): Plan {
  const a = openCheckpoint(pathA);
  const b = openCheckpoint(pathB);
  const plan: Plan = { mode: 'ab', a, b, base: null, comparisons: [], onlyInA: [], onlyInB: [], shapeMismatches: [], skipped: [], warnings: [] };
  const quantizedA = quantizationOf(a);
  const quantizedB = quantizationOf(b);
  for (const ta of a.tensors) {
    const tb = b.byName.get(ta.name);
    if (!tb) {
      plan.onlyInA.push(ta.name);
      continue;
    }
    // Codes and scales of a quantized weight are not values: their difference means nothing.
    const quantized = quantizedA?.tensors.get(ta.name) ?? quantizedB?.tensors.get(ta.name);
    if (quantized !== undefined) {
      plan.skipped.push({ name: ta.name, reason: `${quantized} (${ta.dtype} / ${tb.dtype})` });
      continue;
    }
    if (!isFloatDtype(ta.dtype) || !isFloatDtype(tb.dtype)) {
      plan.skipped.push({ name: ta.name, reason: `not a float tensor (${ta.dtype} / ${tb.dtype})` });
      continue;
    }
    const shared = sharedElements(ta.shape, tb.shape);
    if (!sameShape(ta.shape, tb.shape)) plan.shapeMismatches.push({ name: ta.name, shapeA: ta.shape, shapeB: tb.shape });
    if (shared === null) {
      plan.skipped.push({ name: ta.name, reason: `shapes ${fmtShape(ta.shape)} and ${fmtShape(tb.shape)} cannot be lined up` });
      continue;
    }
    plan.comparisons.push({
      name: ta.name,
      entry: ta,
      shapeA: ta.shape,
      shapeB: tb.shape,
      ...(shared.note ? { note: shared.note } : {}),
      count: shared.count,
      a: ta,
      b: tb,
      mode: 'ab',
    });
  }
  for (const tb of b.tensors) if (!a.byName.has(tb.name)) plan.onlyInB.push(tb.name);
  return plan;
}

/**
 * A base model and a PEFT LoRA adapter trained on it (Δ = the adapter's update): each adapted
 * tensor against Δ = scale·B·A formed chunk by chunk (never whole), and tensors the adapter saves
 * whole against the base. Tensors the adapter leaves alone (Δ = 0) are not listed.
 */
function planAdapter(pathBase: string, pathAdapter: string): Plan {
  const a = openCheckpoint(pathBase);
  const adapter = adapterKeyedLike(openAdapter(pathAdapter), a);
  requireAdapterFits(adapter, a, () => false);
  const plan: Plan = { mode: 'ab', a, b: adapter.weights, base: null, comparisons: [], onlyInA: [], onlyInB: [], shapeMismatches: [], skipped: [], warnings: [], alsoDependsOn: [adapter.config.file] };
  let unchanged = 0;
  for (const ta of a.tensors) {
    const full = adapter.full.get(ta.name);
    const factors = adapter.lowRank.get(ta.name);
    if (!full && !factors) {
      unchanged++;
      continue;
    }
    if (!isFloatDtype(ta.dtype)) {
      plan.skipped.push({ name: ta.name, reason: `not a float tensor (${ta.dtype})` });
      continue;
    }
    const common = { name: ta.name, entry: ta, shapeA: ta.shape, shapeB: ta.shape, count: ta.elementCount, a: ta };
    if (full) plan.comparisons.push({ ...common, b: full, mode: 'ab' });
    else plan.comparisons.push({ ...common, b: factors!.b, mode: 'delta', lowRank: { ratio: 1, factors: factors! } });
  }
  if (unchanged) plan.warnings.push(`${unchanged} tensor${unchanged === 1 ? '' : 's'} of the base ${unchanged === 1 ? 'is' : 'are'} not changed by the adapter (Δ = 0) and not listed`);
  return plan;
}

/**
 * A chat-vector folder alone: Δ is each stored tensor. The base named in chatvector.json serves as
 * A (for ‖A‖, relative and cosine, with B = A + Δ) when it still exists. In this mode onlyInA
 * lists vector tensors the base lacks and onlyInB base tensors the vector lacks (e.g. embeddings
 * left out by --skip-embed).
 */
function planVector(pathV: string): Plan {
  if (isAdapterFolder(pathV)) throw new ChatVecError('InvalidArgument', `${pathV} is a LoRA adapter: give the base model it was trained on first, e.g. chatvec diff BASE ${pathV}`);
  const v = openCheckpoint(pathV);
  const manifestPath = join(v.folder, CHAT_VECTOR_MANIFEST);
  if (entryKind(manifestPath) !== 'file') {
    throw new ChatVecError(
      'InvalidArgument',
      `${v.path}: not a chat-vector folder (no ${CHAT_VECTOR_MANIFEST}); give two checkpoints to compare, e.g. chatvec diff BASE CHAT`,
    );
  }
  const manifest = readJsonObject(manifestPath);
  const warnings: string[] = [];
  let base: Checkpoint | null = null;
  const basePath = findBase(manifest.base, v.folder);
  if (basePath === null) {
    warnings.push(`${manifestPath}: the base model ${typeof manifest.base === 'string' ? `"${manifest.base}" ` : ''}was not found; ‖A‖, relative change and cosine are unknown`);
  } else {
    try {
      base = openCheckpoint(basePath);
    } catch (e) {
      warnings.push(`base model ${basePath} cannot be opened (${(e as Error).message}); ‖A‖, relative change and cosine are unknown`);
    }
  }
  const plan: Plan = { mode: 'vector', a: v, b: null, base, comparisons: [], onlyInA: [], onlyInB: [], shapeMismatches: [], skipped: [], warnings };
  for (const t of v.tensors) {
    if (!isFloatDtype(t.dtype)) {
      plan.skipped.push({ name: t.name, reason: `not a float tensor (${t.dtype})` });
      continue;
    }
    let ref: CatalogueEntry | null = null;
    let note: string | undefined;
    if (base) {
      const bt = base.byName.get(t.name);
      if (!bt) plan.onlyInA.push(t.name);
      else if (!isFloatDtype(bt.dtype)) note = `the base's tensor is ${bt.dtype}: norms unknown`;
      else if (!sameShape(bt.shape, t.shape)) {
        plan.shapeMismatches.push({ name: t.name, shapeA: t.shape, shapeB: bt.shape });
        note = `the base's shape is ${fmtShape(bt.shape)}: norms unknown`;
      } else ref = bt;
    }
    plan.comparisons.push({
      name: t.name,
      entry: t,
      shapeA: t.shape,
      shapeB: t.shape,
      ...(note ? { note } : {}),
      count: t.elementCount,
      a: ref,
      b: t,
      mode: 'delta',
    });
  }
  if (base) for (const bt of base.tensors) if (!v.byName.has(bt.name)) plan.onlyInB.push(bt.name);
  return plan;
}

/**
 * Tensors of A or B that were not compared: skipped ones (quantized, non-float, shapes that cannot
 * be lined up) and, for two checkpoints, those on one side only. Any of them rules out "identical".
 */
function notCompared(plan: Plan): number {
  return plan.skipped.length + (plan.mode === 'ab' ? plan.onlyInA.length + plan.onlyInB.length : 0);
}

/** Resolves chatvector.json's "base": absolute, else relative to the vector folder, else to cwd. */
function findBase(base: unknown, folder: string): string | null {
  if (typeof base !== 'string' || base.length === 0) return null;
  const candidates = isAbsolute(base) ? [base] : [join(folder, base), resolve(base)];
  for (const c of candidates) if (entryKind(c) !== 'missing') return c;
  return null;
}

function sameShape(x: readonly number[], y: readonly number[]): boolean {
  return x.length === y.length && x.every((d, i) => d === y[i]);
}

function fmtShape(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

/**
 * How many leading elements two shapes share: all when equal; the shared leading rows when only
 * the first dimension differs (row-major storage puts those rows first in both); null otherwise.
 */
function sharedElements(x: readonly number[], y: readonly number[]): { count: number; note?: string } | null {
  const n = x.reduce((p, d) => p * d, 1);
  if (sameShape(x, y)) return { count: n };
  if (x.length === 0 || x.length !== y.length || !x.slice(1).every((d, i) => d === y[i + 1])) return null;
  const rows = Math.min(x[0]!, y[0]!);
  const rowSize = x.slice(1).reduce((p, d) => p * d, 1);
  return {
    count: rows * rowSize,
    note: `shapes differ (${fmtShape(x)} vs ${fmtShape(y)}): compared the ${rows} leading rows both have`,
  };
}

/** Runs every chunk of every comparison on the pool (or the GPU); returns each comparison's sums. */
async function scan(plan: Plan, opts: DiffOptions, ctx: ComputeJobContext, tuning: DiffTuning): Promise<DiffSums[]> {
  const piece = Math.max(1024, Math.floor(tuning.pieceElements ?? DIFF_PIECE_ELEMENTS));
  const sizes: TaskSizes = { chunk: Math.max(piece, Math.floor(tuning.chunkElements ?? DIFF_CHUNK_ELEMENTS)), piece };
  const results: DiffSums[][] = plan.comparisons.map((c) => new Array<DiffSums>(Math.ceil(c.count / chunkOf(c, sizes))));
  let totalBytes = 0;
  let taskCount = 0;
  for (const c of plan.comparisons) {
    totalBytes += c.count * ((c.lowRank ? 4 : dtypeBytes(c.b.dtype)) + (c.a ? dtypeBytes(c.a.dtype) : 0));
    taskCount += Math.ceil(c.count / chunkOf(c, sizes));
  }
  const meter = new ProgressMeter('diff', totalBytes, ctx.onProgress, 'bytes');
  if (taskCount > 0) {
    await withCompute(opts.backend, ctx, async (scope) => {
      const compute = await scope.select(totalBytes, opts.threads);
      const wanted = threadCount(opts.threads);
      // No more threads than tasks: starting a worker costs more than a small model's whole scan.
      // With a GPU the pool takes what the GPU cannot (F64 tensors) and reruns after a GPU failure.
      const threads = Math.max(1, Math.min(taskCount, wanted));
      const inline = tuning.callingThreadComputes === true && !compute.gpu;
      const pool = inline ? new WorkerPool(threads - 1, undefined, { inline: (t) => runDiffChunk(t as DiffChunkTask) }) : new WorkerPool(threads);
      const gpu = compute.gpu
        ? new GpuExecutor({ gpu: compute.gpu, pool, accelerated: diffOnGpu, lanes: compute.lanes, signal: ctx.signal, onLog: ctx.onLog, onGpuFailure: compute.onGpuFailure })
        : null;
      const onDone = (task: Task, r: DiffChunkResult) => {
        results[task.index]![task.chunk] = r;
        meter.add(r.bytes);
      };
      const stop = () => ctx.signal?.cancelled === true;
      try {
        if (gpu) await gpu.runAll<DiffChunkResult>(tasks(plan.comparisons, sizes), (t, r) => onDone(t as Task, r), stop);
        else await pool.runAll<Task, DiffChunkResult>(tasks(plan.comparisons, sizes), onDone, stop);
      } finally {
        gpu?.close();
        await closePool(pool);
        if (inline) closeAllHandles();
      }
    });
    if (ctx.signal?.cancelled) throw new CancelledError();
  }
  meter.finish();
  return plan.comparisons.map((c, i) => {
    // Chunks are added in file order, not completion order, so results repeat to the last bit.
    const s = emptySums();
    for (const r of results[i]!) addSums(s, r);
    if (c.mode === 'delta' && c.a === null) {
      // No reference: the kernel took A as 0, which says nothing about the real ‖A‖.
      s.sumA2 = NaN;
      s.sumB2 = NaN;
      s.sumAB = NaN;
    }
    return s;
  });
}

/** Elements per task and per read within a task. */
interface TaskSizes {
  readonly chunk: number;
  readonly piece: number;
}

/** A LoRA comparison's tasks are one piece each: its Δ is formed per task. */
function chunkOf(c: Comparison, sizes: TaskSizes): number {
  return c.lowRank ? sizes.piece : sizes.chunk;
}

function* tasks(comparisons: readonly Comparison[], sizes: TaskSizes): Generator<Task> {
  for (let index = 0; index < comparisons.length; index++) {
    const c = comparisons[index]!;
    const chunk = chunkOf(c, sizes);
    const bytesA = c.a ? dtypeBytes(c.a.dtype) : 0;
    const bytesB = dtypeBytes(c.b.dtype);
    for (let first = 0, k = 0; first < c.count; first += chunk, k++) {
      yield {
        kind: 'diffChunk',
        index,
        chunk: k,
        count: Math.min(chunk, c.count - first),
        mode: c.mode,
        a: c.a ? { file: c.a.file, position: c.a.position + first * bytesA, dtype: c.a.dtype } : null,
        b: { file: c.b.file, position: c.b.position + first * bytesB, dtype: c.b.dtype },
        ...(chunk > sizes.piece ? { piece: sizes.piece } : {}),
        ...(c.lowRank ? { lowRank: lowRankTermAt(c.lowRank, first, Math.min(chunk, c.count - first)) } : {}),
      };
    }
  }
}

/** Closes cached read handles in every worker (they outlive tasks), then stops the workers. */
async function closePool(pool: WorkerPool): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    // A worker that died never answers; do not let that hang the job's cleanup.
    await Promise.race([pool.broadcast({ kind: 'closeHandles' }), new Promise((r) => (timer = setTimeout(r, 5000)))]);
  } catch {
    // The pool already failed; the job's own error is the one to report.
  } finally {
    if (timer) clearTimeout(timer);
    await pool.close();
  }
}
