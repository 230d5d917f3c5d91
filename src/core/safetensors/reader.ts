/**
 * Reading safetensors files: the header by itself (cheap: two small reads), and tensor data by
 * element range into caller-provided buffers.
 */
import { ChatVecError } from '../errors';
import { PositionalFile } from '../io/positionalFile';
import { type Dtype, dtypeBits } from './dtype';
import { type SafetensorsHeader, parseHeader, parseHeaderLength } from './header';

export interface SafetensorsFileInfo extends SafetensorsHeader {
  readonly path: string;
  /** File size in bytes. */
  readonly size: number;
  readonly mtimeMs: number;
  /** Absolute byte position where the data section starts (8 + header length). */
  readonly dataStart: number;
}

/**
 * Opens a safetensors file and reads and validates its header only.
 * @throws ChatVecError BadCheckpoint (names the file and the rule) or Io
 */
export function readSafetensorsHeader(path: string): SafetensorsFileInfo {
  const f = PositionalFile.openReadOnly(path);
  try {
    const first8 = new Uint8Array(Math.min(8, f.size));
    f.readIntoSync(first8, 0);
    const n = parseHeaderLength(first8, f.size, path);
    const headerBytes = new Uint8Array(n);
    f.readIntoSync(headerBytes, 8);
    const header = parseHeader(headerBytes, f.size, path);
    return { ...header, path, size: f.size, mtimeMs: f.mtimeMs, dataStart: 8 + n };
  } finally {
    f.close();
  }
}

/** Where one tensor's bytes lie: plain data, so it can be sent to worker threads. */
export interface TensorLocation {
  readonly file: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly elementCount: number;
  /** Absolute byte position of element 0 in `file`. */
  readonly position: number;
  readonly byteLength: number;
}

/**
 * Reads elements [first, first + count) of a tensor into `into` (which must hold exactly
 * count × element size bytes). Sub-byte dtypes are read only on whole-byte boundaries.
 * @throws ChatVecError InvalidArgument for an out-of-range or misaligned range; Io on read errors
 */
export function readTensorElements(
  file: PositionalFile,
  t: TensorLocation,
  first: number,
  count: number,
  into: Uint8Array,
): void {
  if (first < 0 || count < 0 || first + count > t.elementCount) {
    throw new ChatVecError('InvalidArgument', `${t.file}: element range [${first}, ${first + count}) outside tensor of ${t.elementCount}`);
  }
  const bits = dtypeBits(t.dtype);
  if ((first * bits) % 8 !== 0 || (count * bits) % 8 !== 0) {
    throw new ChatVecError('InvalidArgument', `${t.file}: element range [${first}, ${first + count}) splits a byte of ${t.dtype}`);
  }
  const byteCount = (count * bits) / 8;
  if (into.length !== byteCount) {
    throw new ChatVecError('InvalidArgument', `buffer of ${into.length} bytes for ${byteCount} bytes of ${t.dtype}`);
  }
  file.readIntoSync(into, t.position + (first * bits) / 8);
}

/**
 * Streams one tensor in chunks of at most `chunkElements` elements, reusing one buffer.
 * The yielded view is overwritten by the next step: copy what must outlive it.
 */
export function* tensorChunks(
  file: PositionalFile,
  t: TensorLocation,
  chunkElements: number,
): Generator<{ first: number; count: number; bytes: Uint8Array }> {
  const bits = dtypeBits(t.dtype);
  const step = Math.max(8, Math.floor(chunkElements / 8) * 8);
  const buf = new Uint8Array(Math.ceil((Math.min(step, t.elementCount) * bits) / 8));
  for (let first = 0; first < t.elementCount; first += step) {
    const count = Math.min(step, t.elementCount - first);
    const view = buf.subarray(0, (count * bits) / 8);
    readTensorElements(file, t, first, count, view);
    yield { first, count, bytes: view };
  }
}
