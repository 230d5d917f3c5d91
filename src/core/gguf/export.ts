/**
 * `chatvec gguf`: a LLaMA-family checkpoint (llama.ts) with its byte-level BPE tokenizer
 * (tokenizer.ts) written as one GGUF v3 file (writer.ts). Streamed tensor by tensor in chunks of
 * whole rows (whole heads where rows are permuted), so memory stays bounded whatever the model's
 * size; progress after each chunk, cancellation between chunks; the file is written under a
 * temporary name and renamed into place only when complete (io/atomicOutputFile.ts).
 */
import { openCheckpoint } from '../checkpoint/checkpoint';
import { requireUnquantized } from '../checkpoint/quantization';
import { CancelledError, ChatVecError } from '../errors';
import { AtomicOutputFile } from '../io/atomicOutputFile';
import { basename } from '../io/paths';
import { PositionalFile } from '../io/positionalFile';
import { ProgressMeter } from '../jobs/progressMeter';
import type { JobContext, JobOutcome } from '../jobs/types';
import { WorkerPool } from '../io/workerPool';
import { threadCount } from '../jobs/threadLimit';
import { type FloatDtype, dtypeBytes, isFloatDtype } from '../safetensors/dtype';
import { JobInputs } from '../engine/jobInputs';
import { type GgufChunkResult, type GgufChunkTask, encodeGgufChunk } from './chunkKernel';
import { type GgufFileType, type GgufSourceTensor, planLlamaFamily } from './llama';
import { encodeGgml } from './quantize';
import { tokenizerMetadata } from './tokenizer';
import { type GgufPlacedTensor, ggmlByteLength, planGguf } from './writer';

export interface GgufExportOptions {
  /** Checkpoint folder (config.json, safetensors, tokenizer.json). */
  readonly model: string;
  /** The .gguf file to write. */
  readonly out: string;
  /** Type of the 2-D weights; default F16 (norms and biases are always F32). */
  readonly type?: GgufFileType;
  /** Replace an existing file at `out` (never a folder or an input). */
  readonly overwrite?: boolean;
  /**
   * Worker threads converting chunks; default: all cores for a model of POOL_MIN_BYTES or more,
   * else 1. With 1 the chunks run in the calling thread (no worker start-up).
   */
  readonly threads?: number;
}

/** Below this many source bytes, starting workers costs more than the whole conversion. */
const POOL_MIN_BYTES = 64 << 20;

/** Values per chunk: 4 MiB of float32, whatever the tensor's size. */
const CHUNK_ELEMENTS = 1 << 20;

/**
 * Runs the export.
 * @throws ChatVecError Unsupported (another family, a tokenizer with no GGUF form here, a
 *   quantized or non-float checkpoint), BadCheckpoint, OutputExists, InvalidArgument (output
 *   path rules, `threads`), Io (also when an input changed while the job ran); CancelledError when
 *   ctx.signal is raised (no file is left behind)
 */
export async function runGgufExport(opts: GgufExportOptions, ctx: JobContext = {}): Promise<JobOutcome> {
  const type = opts.type ?? 'F16';
  const c = requireUnquantized(openCheckpoint(opts.model));
  for (const t of c.tensors) {
    if (!isFloatDtype(t.dtype)) throw new ChatVecError('Unsupported', `${t.file}: tensor "${t.name}" is ${t.dtype}; GGUF export reads float tensors only`);
  }
  const model = planLlamaFamily(c, type, basename(c.folder));
  const metadata = new Map([...model.metadata, ...tokenizerMetadata(c.folder, model.vocabSize, c.config ?? {})]);
  const plan = planGguf(metadata, model.tensors);
  const inputs = JobInputs.check(opts.out, opts.overwrite === true, [c], [], true);
  const cancelled = () => ctx.signal?.cancelled === true;
  if (cancelled()) throw new CancelledError();

  const sourceBytes = model.tensors.reduce((a, t) => a + (t.source?.byteLength ?? 0), 0);
  const threads = opts.threads !== undefined ? threadCount(opts.threads) : sourceBytes >= POOL_MIN_BYTES ? threadCount(undefined) : 1;
  const out = AtomicOutputFile.begin(opts.out, plan.fileSize, { overwrite: opts.overwrite === true, inputs: inputs.paths });
  const meter = new ProgressMeter('gguf', sourceBytes + plan.fileSize, ctx.onProgress);
  let pool: WorkerPool | null = null;
  let ran = 1;
  /** The inputs the calling thread reads (threads 1). */
  const here = new Map<string, PositionalFile>();
  try {
    out.file.writeAtSync(plan.header, 0);
    meter.add(plan.header.length);
    const tasks: GgufChunkTask[] = [];
    model.tensors.forEach((t, k) => {
      const placed = plan.tensors[k]!;
      if (t.values) {
        const bytes = new Uint8Array(placed.byteLength);
        encodeGgml(t.type, t.values, t.values.length, bytes);
        out.file.writeAtSync(bytes, placed.position);
        meter.add(bytes.length);
      } else tasks.push(...chunkTasks(t, placed, out.tempPath));
    });
    // One thread: the chunks run here, on the pool's inline lane (a cancel is seen between them),
    // reading through this job's own handles. Else no more workers than chunks: starting one costs
    // more than converting a small tensor.
    const readHere = (file: string): PositionalFile => {
      let f = here.get(file);
      if (!f) here.set(file, (f = PositionalFile.openReadOnly(file)));
      return f;
    };
    pool =
      threads === 1
        ? new WorkerPool(0, undefined, { inline: (t) => encodeGgufChunk(t as GgufChunkTask, readHere((t as GgufChunkTask).file), out.file) })
        : new WorkerPool((ran = Math.max(1, Math.min(threads, tasks.length))));
    await pool.runAll<GgufChunkTask, GgufChunkResult>(tasks, (_, r) => meter.add(r.bytes), cancelled);
    await pool.broadcast({ kind: 'closeHandles' });
    if (cancelled()) throw new CancelledError();
    inputs.assertUnchanged();
    out.commit();
  } catch (e) {
    out.abort();
    throw e;
  } finally {
    await pool?.close();
    for (const f of here.values()) f.close();
  }
  meter.finish('done');
  const fallback = model.tensors.filter((t) => type === 'Q8_0' && t.dims.length === 2 && t.type !== 'Q8_0').map((t) => t.name);
  const warnings = fallback.length ? [`${fallback.length} matrices have rows that are not whole blocks of 32 and were written as F16, as llama.cpp's converter does (${fallback.slice(0, 3).join(', ')}${fallback.length > 3 ? ', …' : ''})`] : [];
  for (const w of warnings) ctx.onLog?.('warn', w);
  return { out: inputs.out, tensorCount: model.tensors.length, bytesWritten: plan.fileSize, seconds: meter.seconds, backend: ran === 1 ? 'cpu (1 thread)' : `cpu (${ran} threads)`, warnings };
}

/**
 * A tensor's chunks: whole rows, about CHUNK_ELEMENTS values each, and whole heads for a
 * rope-permuted q/k (a head's rows are reordered among themselves only).
 */
function chunkTasks(t: GgufSourceTensor, placed: GgufPlacedTensor, outPath: string): GgufChunkTask[] {
  const s = t.source;
  const rows = s.shape[0]!;
  const columns = s.shape.length === 2 ? s.shape[1]! : 1;
  const headDim = t.permuteHeads !== undefined ? rows / t.permuteHeads : 0;
  const unit = Math.max(1, headDim);
  const step = Math.max(unit, Math.floor(Math.max(1, Math.floor(CHUNK_ELEMENTS / columns)) / unit) * unit);
  const dtype = s.dtype as FloatDtype;
  const rowBytes = columns * dtypeBytes(dtype);
  const tasks: GgufChunkTask[] = [];
  for (let first = 0; first < rows; first += step) {
    const n = Math.min(step, rows - first);
    tasks.push({
      kind: 'ggufChunk', file: s.file, position: s.position + first * rowBytes, dtype, rows: n, columns, headDim, type: t.type,
      out: outPath, outPosition: placed.position + ggmlByteLength(t.type, [columns, first]),
    });
  }
  return tasks;
}
