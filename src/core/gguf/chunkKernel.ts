/**
 * One chunk of a GGUF export: whole rows of a checkpoint tensor read, decoded to float32 (rows of a
 * rope-permuted q/k taken in llama.cpp's order), encoded as the ggml type (quantize.ts) and written
 * at their place in the file. A chunk is self-contained, so the export runs chunks on the worker
 * pool (task kind `ggufChunk`, registered in worker/workerHandlers.ts) or, for small models, in the
 * calling thread — the same code either way, so the bytes are the same.
 */
import type { OutputFile } from '../io/outputFile';
import type { PositionalFile } from '../io/positionalFile';
import { readerFor, writerFor } from '../io/handleCache';
import { decodeToF32 } from '../numeric/convert';
import { type FloatDtype, dtypeBytes } from '../safetensors/dtype';
import { permutedSourceRow } from './llama';
import { encodeGgml } from './quantize';
import { type GgmlType, ggmlByteLength } from './writer';

/** Rows [firstRow, firstRow + rows) of one tensor, in output order. */
export interface GgufChunkTask {
  readonly kind: 'ggufChunk';
  /** The safetensors shard and the absolute byte position of the chunk's first source row. */
  readonly file: string;
  readonly position: number;
  readonly dtype: FloatDtype;
  readonly rows: number;
  /** Values per row (1 for a vector). */
  readonly columns: number;
  /** Rows per rope head when q/k rows are permuted (chunks hold whole heads); 0 for none. */
  readonly headDim: number;
  readonly type: GgmlType;
  /** The output file and the absolute byte position of the chunk's first encoded row. */
  readonly out: string;
  readonly outPosition: number;
}

/** Bytes read and written, for the progress meter. */
export interface GgufChunkResult {
  readonly bytes: number;
}

// Per-thread scratch, grown to the largest chunk (a few MiB): no allocation per chunk.
let rawScratch = new Uint8Array(0);
let valueScratch = new Float32Array(0);
let encodedScratch = new Uint8Array(0);

/**
 * Runs a chunk with the given files (the calling thread's own handles).
 * @throws ChatVecError Io on a short read or a failed write
 */
export function encodeGgufChunk(t: GgufChunkTask, input: PositionalFile, output: OutputFile): GgufChunkResult {
  const count = t.rows * t.columns;
  const size = dtypeBytes(t.dtype);
  const rawBytes = count * size;
  if (rawScratch.length < rawBytes) rawScratch = new Uint8Array(rawBytes);
  if (valueScratch.length < count) valueScratch = new Float32Array(count);
  const raw = rawScratch.subarray(0, rawBytes);
  const values = valueScratch.subarray(0, count);
  input.readIntoSync(raw, t.position);
  if (t.headDim === 0) decodeToF32(t.dtype, raw, values, count);
  else {
    // Decode each output row straight from its source row: the permutation costs no extra copy.
    const rowBytes = t.columns * size;
    for (let r = 0; r < t.rows; r++) {
      const src = permutedSourceRow(r, t.headDim);
      decodeToF32(t.dtype, raw.subarray(src * rowBytes, (src + 1) * rowBytes), values.subarray(r * t.columns, (r + 1) * t.columns), t.columns);
    }
  }
  const outBytes = ggmlByteLength(t.type, [t.columns, t.rows]);
  if (encodedScratch.length < outBytes) encodedScratch = new Uint8Array(outBytes);
  const encoded = encodedScratch.subarray(0, outBytes);
  encodeGgml(t.type, values, count, encoded);
  output.writeAtSync(encoded, t.outPosition);
  return { bytes: rawBytes + outBytes };
}

/** The worker handler: a chunk with the worker's cached handles (closed by the pool's closeHandles). */
export function runGgufChunk(t: GgufChunkTask): GgufChunkResult {
  return encodeGgufChunk(t, readerFor(t.file), writerFor(t.out));
}
