/**
 * The safetensors header, parsed and validated exactly by the rules of the reference
 * implementation (huggingface/safetensors `safetensors/src/tensor.rs`):
 *
 *   [8 bytes: N, u64 little-endian] [N bytes: UTF-8 JSON object] [data bytes]
 *
 * - N ≤ 100,000,000 (checked before anything is allocated) and 8 + N ≤ file size;
 * - the JSON is an object; whitespace around it is tolerated; headers need not be padded to 8;
 * - `__metadata__` is a string → string map, or null;
 * - every other key is a tensor `{dtype, shape, data_offsets: [begin, end]}` with a known dtype;
 * - sorted by offsets, the spans start at 0 and are contiguous (no hole, no overlap);
 * - each span is product(shape) × dtype size bytes, computed without overflow;
 * - the last span ends exactly at the end of the file; tensor names are unique.
 *
 * Pure code: the caller reads the bytes (see reader.ts).
 */
import { ChatVecError } from '../errors';
import { type Dtype, DTYPE_BITS, isDtype } from './dtype';

export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorHeaderEntry {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** Byte offsets relative to the start of the data section (after the header). */
  readonly begin: number;
  readonly end: number;
  /** product(shape); 1 for a scalar (shape []). */
  readonly elementCount: number;
}

export interface SafetensorsHeader {
  /** N: the JSON header's length in bytes. Data starts at byte 8 + N of the file. */
  readonly headerLength: number;
  readonly metadata: Readonly<Record<string, string>> | null;
  /** Tensors in data-offset order. */
  readonly tensors: readonly TensorHeaderEntry[];
}

function bad(file: string, rule: string): ChatVecError {
  return new ChatVecError('BadCheckpoint', `${file}: invalid safetensors file: ${rule}`);
}

/** Untrusted values in messages, shortened: a header may hold 100 MB of names or dimensions. */
function clip(s: string, max = 120): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
function shown(x: unknown): string {
  if (Array.isArray(x) && x.length > 16) return clip(`${JSON.stringify(x.slice(0, 16)).slice(0, -1)}, … (${x.length} items)]`);
  return clip(JSON.stringify(x) ?? String(x));
}
function shapeText(shape: readonly number[]): string {
  return shape.length > 16 ? `[${shape.slice(0, 16).join(', ')}, … (${shape.length} dims)]` : `[${shape.join(', ')}]`;
}

/**
 * Reads N from the first 8 bytes and checks it against the limit and the file size, so that a
 * lying length never makes the caller allocate the claimed size.
 * @param first8 the file's first 8 bytes (fewer means the file is too small)
 * @param fileSize the file's size in bytes
 * @param file the path, for messages
 * @returns N, the header length in bytes
 * @throws ChatVecError BadCheckpoint
 */
export function parseHeaderLength(first8: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8 || first8.length < 8) throw bad(file, `file is ${fileSize} bytes, smaller than the 8-byte header length`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw bad(file, `header length ${n} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const len = Number(n);
  if (8 + len > fileSize) {
    throw bad(file, `header length ${len} bytes runs past the end of the ${fileSize}-byte file`);
  }
  return len;
}

/**
 * Lists the keys of the top-level JSON object in order, duplicates included (JSON.parse keeps only
 * the last of duplicate keys, so it cannot see them). `json` must already be valid JSON.
 */
export function topLevelKeys(json: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let i = 0;
  const n = json.length;
  while (i < n) {
    const c = json.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      i++;
      while (i < n) {
        const d = json.charCodeAt(i);
        if (d === 0x5c /* \ */) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
      const end = i + 1;
      i = end;
      if (depth === 1) {
        let j = i;
        while (j < n && /\s/.test(json[j]!)) j++;
        if (json[j] === ':') keys.push(JSON.parse(json.slice(start, end)) as string);
      }
      continue;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) depth++;
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
    i++;
  }
  return keys;
}

function isNonNegInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0;
}

/**
 * Parses and validates the JSON header.
 * @param headerBytes the N header bytes (after the 8-byte length)
 * @param fileSize the file's total size in bytes (used for the exact-end rule)
 * @param file the path, for messages
 * @throws ChatVecError BadCheckpoint naming the file and the broken rule
 */
export function parseHeader(headerBytes: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const headerLength = headerBytes.length;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw bad(file, 'header is not valid UTF-8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw bad(file, `header is not valid JSON (${(e as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw bad(file, 'header is not a JSON object');
  }
  const keys = topLevelKeys(text);
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k)) throw bad(file, `tensor name "${clip(k)}" appears twice in the header`);
    seen.add(k);
  }

  const obj = parsed as Record<string, unknown>;
  let metadata: Record<string, string> | null = null;
  const tensors: TensorHeaderEntry[] = [];
  for (const name of keys) {
    const value = obj[name];
    if (name === '__metadata__') {
      if (value === null) continue;
      if (typeof value !== 'object' || Array.isArray(value)) throw bad(file, '__metadata__ must be an object of strings');
      metadata = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') throw bad(file, `__metadata__ value for "${clip(k)}" is not a string`);
        // defineProperty: a key named `__proto__` is data, not the object's prototype
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    tensors.push(parseEntry(name, value, file));
  }

  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const t of tensors) {
    if (t.begin !== expected) {
      throw bad(
        file,
        t.begin > expected
          ? `tensor "${clip(t.name)}" data_offsets [${t.begin}, ${t.end}] leave a hole at byte ${expected}`
          : `tensor "${clip(t.name)}" data_offsets [${t.begin}, ${t.end}] overlap the previous tensor, which ends at ${expected}`,
      );
    }
    if (t.end < t.begin) throw bad(file, `tensor "${clip(t.name)}" data_offsets [${t.begin}, ${t.end}] end before they begin`);
    const bits = BigInt(DTYPE_BITS[t.dtype]) * BigInt(t.elementCount);
    if (bits % 8n !== 0n) {
      throw bad(file, `tensor "${clip(t.name)}" of ${t.elementCount} ${t.dtype} elements does not fill whole bytes`);
    }
    const nbytes = bits / 8n;
    if (nbytes !== BigInt(t.end - t.begin)) {
      throw bad(
        file,
        `tensor "${clip(t.name)}" (${t.dtype}, shape ${shapeText(t.shape)}) needs ${nbytes} bytes but data_offsets span ${t.end - t.begin}`,
      );
    }
    expected = t.end;
  }
  const dataBytes = fileSize - 8 - headerLength;
  if (expected !== dataBytes) {
    throw bad(
      file,
      expected < dataBytes
        ? `${dataBytes - expected} trailing bytes after the last tensor (data ends at ${expected}, file has ${dataBytes} data bytes)`
        : `file is truncated: tensors need ${expected} data bytes, file has ${dataBytes}`,
    );
  }
  return { headerLength, metadata, tensors };
}

function parseEntry(name: string, value: unknown, file: string): TensorHeaderEntry {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw bad(file, `entry "${clip(name)}" is not an object with dtype, shape and data_offsets`);
  }
  const v = value as Record<string, unknown>;
  if (!isDtype(v.dtype)) {
    throw bad(file, `tensor "${clip(name)}" has unknown dtype ${shown(v.dtype)}`);
  }
  if (!Array.isArray(v.shape) || !v.shape.every(isNonNegInt)) {
    throw bad(file, `tensor "${clip(name)}" shape ${shown(v.shape)} is not a list of non-negative integers`);
  }
  const offs = v.data_offsets;
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isNonNegInt)) {
    throw bad(file, `tensor "${clip(name)}" data_offsets ${shown(offs)} is not a pair of non-negative integers`);
  }
  const shape = v.shape as number[];
  // Stop multiplying once past 2^53: the full BigInt product of a header-sized shape (tens of
  // millions of dims) takes quadratic time. A zero dimension makes the product 0 whatever the rest.
  let count = 1n;
  if (shape.includes(0)) count = 0n;
  else for (const d of shape) if ((count *= BigInt(d)) > BigInt(Number.MAX_SAFE_INTEGER)) break;
  const [begin, end] = offs as [number, number];
  if (count > BigInt(Number.MAX_SAFE_INTEGER) || !Number.isSafeInteger(begin) || !Number.isSafeInteger(end)) {
    throw bad(file, `tensor "${clip(name)}" shape or offsets overflow (shape ${shapeText(shape)}, offsets [${begin}, ${end}])`);
  }
  return { name, dtype: v.dtype, shape, begin, end, elementCount: Number(count) };
}
