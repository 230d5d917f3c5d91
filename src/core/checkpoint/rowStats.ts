/**
 * Statistics of a few rows of one tensor (e.g. embedding rows of special tokens, to tell trained
 * from untrained ones), read by byte range: only the requested rows' bytes are read.
 */
import { ChatVecError } from '../errors';
import { PositionalFile } from '../io/positionalFile';
import { decodeToF32 } from '../numeric/convert';
import { isFloatDtype } from '../safetensors/dtype';
import { readTensorElements } from '../safetensors/reader';
import type { Checkpoint, CatalogueEntry } from './checkpoint';

/** The statistics of one row. */
export interface RowStat {
  /** Index along the tensor's first dimension. */
  readonly row: number;
  /** L2 norm of the row's finite values, summed in float64. */
  readonly norm: number;
  /** Largest |value| among the finite values (0 for an empty or all non-finite row). */
  readonly maxAbs: number;
  /** NaN and ±Infinity values, which norm and maxAbs leave out (JSON has no NaN). */
  readonly nonFinite: number;
}

export interface RowStatsReport {
  /** The tensor's name (the input embedding when none was asked for). */
  readonly tensor: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** In the order asked for. */
  readonly rows: readonly RowStat[];
}

/** Most rows one call reads. */
export const MAX_ROW_STATS_ROWS = 4096;
/** Most bytes one call reads (rows × row bytes): a light request, never a whole large tensor. */
export const MAX_ROW_STATS_BYTES = 64 * 2 ** 20;

const INPUT_EMBEDDING = /(?:^|\.)(?:embed_tokens|wte|word_embeddings|embed_in|tok_embeddings)\.weight$/;

/** The input embedding: a 2-D tensor grouped as embedding, preferring the common names. */
function inputEmbedding(c: Checkpoint): CatalogueEntry | undefined {
  const candidates = c.tensors.filter((t) => t.group.role === 'embedding' && t.shape.length === 2);
  return candidates.find((t) => INPUT_EMBEDDING.test(t.name)) ?? candidates[0];
}

/**
 * Norm, max |value| and non-finite count of `rows` (indices along the first dimension; a row is
 * the product of the other dimensions' elements) of a float tensor, decoded to float32 (exact for
 * BF16/F16/F32; F64 is rounded) and summed in float64.
 * @param tensor a tensor name; default: the input embedding
 * @throws ChatVecError InvalidArgument (unknown tensor, no embedding, non-float dtype, a row out of
 *   range, too many rows or bytes); Io on read errors
 */
export function rowStats(c: Checkpoint, rows: readonly number[], tensor?: string): RowStatsReport {
  const t = tensor === undefined ? inputEmbedding(c) : c.byName.get(tensor);
  if (!t) throw new ChatVecError('InvalidArgument', tensor === undefined ? `${c.path}: no input embedding tensor found` : `${c.path}: no tensor named "${tensor}"`);
  if (!isFloatDtype(t.dtype)) throw new ChatVecError('InvalidArgument', `${c.path}: ${t.name} is ${t.dtype}; row statistics need a float tensor`);
  if (t.shape.length === 0) throw new ChatVecError('InvalidArgument', `${c.path}: ${t.name} is a scalar; it has no rows`);
  const count = t.shape[0]!;
  const cols = t.shape.slice(1).reduce((a, b) => a * b, 1);
  if (rows.length > MAX_ROW_STATS_ROWS) throw new ChatVecError('InvalidArgument', `row statistics: at most ${MAX_ROW_STATS_ROWS} rows per request, got ${rows.length}`);
  const rowBytes = (cols * t.byteLength) / Math.max(1, t.elementCount);
  if (rows.length * rowBytes > MAX_ROW_STATS_BYTES) throw new ChatVecError('InvalidArgument', `row statistics: ${rows.length} rows of ${t.name} are ${rows.length * rowBytes} bytes; at most ${MAX_ROW_STATS_BYTES} per request`);
  for (const r of rows) {
    if (!Number.isInteger(r) || r < 0 || r >= count) throw new ChatVecError('InvalidArgument', `row statistics: row ${r} is outside ${t.name}'s ${count} rows`);
  }
  const file = PositionalFile.openReadOnly(t.file);
  try {
    const bytes = new Uint8Array(rowBytes);
    const vals = new Float32Array(cols);
    const out = rows.map((row) => {
      readTensorElements(file, t, row * cols, cols, bytes);
      decodeToF32(t.dtype as Parameters<typeof decodeToF32>[0], bytes, vals, cols);
      let sum = 0;
      let maxAbs = 0;
      let nonFinite = 0;
      for (let j = 0; j < cols; j++) {
        const v = vals[j]!;
        if (!Number.isFinite(v)) {
          nonFinite++;
          continue;
        }
        sum += v * v;
        const a = Math.abs(v);
        if (a > maxAbs) maxAbs = a;
      }
      return { row, norm: Math.sqrt(sum), maxAbs, nonFinite };
    });
    return { tensor: t.name, dtype: t.dtype, shape: [...t.shape], rows: out };
  } finally {
    file.close();
  }
}
