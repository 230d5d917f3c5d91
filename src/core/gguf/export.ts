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
import { decodeToF32 } from '../numeric/convert';
import { type FloatDtype, dtypeBytes, isFloatDtype } from '../safetensors/dtype';
import { readTensorElements } from '../safetensors/reader';
import { JobInputs } from '../engine/jobInputs';
import { type GgufFileType, type GgufSourceTensor, permutedSourceRow, planLlamaFamily } from './llama';
import { Q8_0_BLOCK, Q8_0_BLOCK_BYTES, encodeGgml } from './quantize';
import { tokenizerMetadata } from './tokenizer';
import { type GgmlType, planGguf } from './writer';

export interface GgufExportOptions {
  /** Checkpoint folder (config.json, safetensors, tokenizer.json). */
  readonly model: string;
  /** The .gguf file to write. */
  readonly out: string;
  /** Type of the 2-D weights; default F16 (norms and biases are always F32). */
  readonly type?: GgufFileType;
  /** Replace an existing file at `out` (never a folder or an input). */
  readonly overwrite?: boolean;
}

/** Values per chunk: 4 MiB of float32, whatever the tensor's size. */
const CHUNK_ELEMENTS = 1 << 20;

/**
 * Runs the export.
 * @throws ChatVecError Unsupported (another family, a tokenizer with no GGUF form here, a
 *   quantized or non-float checkpoint), BadCheckpoint, OutputExists, InvalidArgument (output
 *   path rules), Io (also when an input changed while the job ran); CancelledError when
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

  const totalBytes = model.tensors.reduce((a, t) => a + t.source.byteLength, 0) + plan.fileSize;
  const out = AtomicOutputFile.begin(opts.out, plan.fileSize, { overwrite: opts.overwrite === true, inputs: inputs.paths });
  const meter = new ProgressMeter('gguf', totalBytes, ctx.onProgress);
  const files = new Map<string, PositionalFile>();
  try {
    out.file.writeAtSync(plan.header, 0);
    meter.add(plan.header.length);
    for (let k = 0; k < model.tensors.length; k++) {
      const t = model.tensors[k]!;
      const position = plan.tensors[k]!.position;
      let f = files.get(t.source.file);
      if (!f) files.set(t.source.file, (f = PositionalFile.openReadOnly(t.source.file)));
      for (const chunk of tensorChunks(f, t)) {
        const bytes = new Uint8Array(encodedBytes(t.type, chunk.values.length));
        encodeGgml(t.type, chunk.values, chunk.values.length, bytes);
        out.file.writeAtSync(bytes, position + encodedBytes(t.type, chunk.firstRow * chunk.columns));
        meter.add(chunk.sourceBytes + bytes.length);
        // Let a cancel request (Ctrl-C, the task host) be seen between chunks.
        await new Promise((r) => setImmediate(r));
        if (cancelled()) throw new CancelledError();
      }
    }
    inputs.assertUnchanged();
    out.commit();
  } catch (e) {
    out.abort();
    throw e;
  } finally {
    for (const f of files.values()) f.close();
  }
  meter.finish('done');
  const fallback = model.tensors.filter((t) => type === 'Q8_0' && t.dims.length === 2 && t.type !== 'Q8_0').map((t) => t.name);
  const warnings = fallback.length ? [`${fallback.length} matrices have rows that are not whole blocks of 32 and were written as F16, as llama.cpp's converter does (${fallback.slice(0, 3).join(', ')}${fallback.length > 3 ? ', …' : ''})`] : [];
  for (const w of warnings) ctx.onLog?.('warn', w);
  return { out: inputs.out, tensorCount: model.tensors.length, bytesWritten: plan.fileSize, seconds: meter.seconds, backend: 'cpu (1 thread)', warnings };
}

function encodedBytes(type: GgmlType, count: number): number {
  switch (type) {
    case 'F32':
      return 4 * count;
    case 'F16':
    case 'BF16':
      return 2 * count;
    case 'Q8_0':
      return (count / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES;
  }
}

interface Chunk {
  readonly firstRow: number;
  readonly columns: number;
  /** Rows [firstRow, firstRow + n) in output order, as float32. */
  readonly values: Float32Array;
  readonly sourceBytes: number;
}

/**
 * A tensor's rows in output order, a bounded number at a time: whole rows, and whole heads for a
 * rope-permuted q/k (a head's rows are reordered among themselves only).
 */
function* tensorChunks(f: PositionalFile, t: GgufSourceTensor): Generator<Chunk> {
  const s = t.source;
  const rows = s.shape[0]!;
  const columns = s.shape.length === 2 ? s.shape[1]! : 1;
  const headDim = t.permuteHeads !== undefined ? rows / t.permuteHeads : 1;
  const step = Math.max(headDim, Math.floor(Math.max(1, Math.floor(CHUNK_ELEMENTS / columns)) / headDim) * headDim);
  const dtype = s.dtype as FloatDtype;
  const size = dtypeBytes(dtype);
  for (let first = 0; first < rows; first += step) {
    const n = Math.min(step, rows - first);
    const count = n * columns;
    const raw = new Uint8Array(count * size);
    readTensorElements(f, s, first * columns, count, raw);
    const stored = new Float32Array(count);
    decodeToF32(dtype, raw, stored, count);
    let values = stored;
    if (t.permuteHeads !== undefined) {
      values = new Float32Array(count);
      for (let r = 0; r < n; r++) {
        const src = permutedSourceRow(r, headDim);
        values.set(stored.subarray(src * columns, (src + 1) * columns), r * columns);
      }
    }
    yield { firstRow: first, columns, values, sourceBytes: raw.length };
  }
}
