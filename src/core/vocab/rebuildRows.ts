/**
 * Writes one model's rebuilt embedding (or LM head) for the output vocabulary to a file of raw
 * row-major bytes in that model's dtype, row by row with bounded memory (a few rows and one
 * batch of output rows): the merge then reads it as it reads any tensor, by position.
 */
import { ChatVecError } from '../errors';
import { OutputFile } from '../io/outputFile';
import { PositionalFile } from '../io/positionalFile';
import { decodeToF32, encodeFromF32 } from '../numeric/convert';
import { type FloatDtype, dtypeBytes, isFloatDtype } from '../safetensors/dtype';
import type { TensorLocation } from '../safetensors/reader';
import type { OutputVocab } from './outputVocab';
import { type RowRules, rowSource } from './rowRules';

const BATCH_BYTES = 4 * 1024 * 1024;

/**
 * Rebuilds `model`'s tensor: row i is rowSource(i) (own rows copied byte for byte; other rows
 * computed in float64 and rounded once to the dtype), rows past the vocabulary the float64 mean
 * of the rebuilt vocabulary rows.
 * @param tensors this tensor in every model of the merge that has it, by model index
 * @returns where the rebuilt tensor lies (`out`, position 0), shape [outRows, …]
 * @throws ChatVecError ShapeMismatch when row lengths differ; Io
 */
export function rebuildRows(out: string, model: number, tensors: ReadonlyMap<number, TensorLocation>, rules: RowRules, vocab: OutputVocab): TensorLocation {
  const own = tensors.get(model)!;
  if (!isFloatDtype(own.dtype)) throw new ChatVecError('Unsupported', `${own.file}: a ${own.dtype} vocabulary tensor cannot be rebuilt (float tensors only)`);
  const dtype: FloatDtype = own.dtype;
  const rowLength = own.elementCount / own.shape[0]!;
  for (const t of tensors.values()) {
    if (t.elementCount / t.shape[0]! !== rowLength) throw new ChatVecError('ShapeMismatch', `${t.file}: vocabulary rows of ${t.elementCount / t.shape[0]!} elements vs ${rowLength} in ${own.file}`);
  }
  const files = new Map<string, PositionalFile>();
  const rowBytes = rowLength * dtypeBytes(dtype);
  const f32 = new Float32Array(rowLength);
  const acc = new Float64Array(rowLength);
  const sum = new Float64Array(rowLength);
  const batch = new Uint8Array(Math.max(rowBytes, Math.floor(BATCH_BYTES / rowBytes) * rowBytes));
  let used = 0;
  let written = 0;
  const file = OutputFile.create(out, rules.outRows * rowBytes);
  const read = (m: number, row: number): { bytes: Uint8Array; dtype: FloatDtype } => {
    const t = tensors.get(m)!;
    let f = files.get(t.file);
    if (!f) files.set(t.file, (f = PositionalFile.openReadOnly(t.file)));
    const bytes = new Uint8Array(rowLength * dtypeBytes(t.dtype));
    f.readIntoSync(bytes, t.position + row * bytes.length);
    return { bytes, dtype: t.dtype as FloatDtype };
  };
  const emit = (bytes: Uint8Array, count: boolean) => {
    if (count) {
      decodeToF32(dtype, bytes, f32, rowLength);
      for (let k = 0; k < rowLength; k++) sum[k]! += f32[k]!;
    }
    if (used + bytes.length > batch.length) flush();
    batch.set(bytes, used);
    used += bytes.length;
  };
  const flush = () => {
    file.writeAtSync(batch.subarray(0, used), written);
    written += used;
    used = 0;
  };
  const fromFloat64 = (v: Float64Array): Uint8Array => {
    for (let k = 0; k < rowLength; k++) f32[k] = v[k]!;
    const bytes = new Uint8Array(rowBytes);
    encodeFromF32(dtype, f32, bytes, rowLength);
    return bytes;
  };
  try {
    for (let id = 0; id < rules.vocabRows; id++) {
      const src = rowSource(rules, vocab, model, id);
      if (src.kind === 'zero') {
        emit(new Uint8Array(rowBytes), true);
        continue;
      }
      const first = read(src.rows[0]!.model, src.rows[0]!.row);
      if (src.rows.length === 1 && first.dtype === dtype) {
        emit(first.bytes, true);
        continue;
      }
      acc.fill(0);
      for (const [i, r] of src.rows.entries()) {
        const got = i === 0 ? first : read(r.model, r.row);
        decodeToF32(got.dtype, got.bytes, f32, rowLength);
        for (let k = 0; k < rowLength; k++) acc[k]! += f32[k]!;
      }
      for (let k = 0; k < rowLength; k++) acc[k]! /= src.rows.length;
      emit(fromFloat64(acc), true);
    }
    if (rules.outRows > rules.vocabRows) {
      for (let k = 0; k < rowLength; k++) acc[k] = sum[k]! / rules.vocabRows;
      const padRow = fromFloat64(acc);
      for (let id = rules.vocabRows; id < rules.outRows; id++) emit(padRow, false);
    }
    flush();
  } finally {
    file.close();
    for (const f of files.values()) f.close();
  }
  const shape = [rules.outRows, ...own.shape.slice(1)];
  return { file: out, dtype, shape, elementCount: rules.outRows * rowLength, position: 0, byteLength: rules.outRows * rowBytes };
}
