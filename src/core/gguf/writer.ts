/**
 * The GGUF v3 container (llama.cpp's model file; ggml/include/gguf.h and gguf-py's gguf_writer.py
 * describe it): a header of typed key–value metadata and tensor infos, then the tensor data, each
 * tensor at an offset that is a multiple of `general.alignment` from the start of the data section.
 * Everything is little-endian. This module plans the layout and encodes the header; the tensor
 * bytes are streamed by the caller at the planned positions, so nothing here holds tensor data.
 */
import { ChatVecError } from '../errors';

/** `general.alignment`: gguf's default, which llama.cpp also assumes when the key is absent. */
export const GGUF_ALIGNMENT = 32;

/** GGUF metadata value types (gguf.h enum gguf_type). */
export const GGUF_VALUE = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** The ggml tensor types this tool writes (ggml.h enum ggml_type). */
export type GgmlType = 'F32' | 'F16' | 'Q8_0' | 'BF16';
export const GGML_TYPE_ID: Readonly<Record<GgmlType, number>> = { F32: 0, F16: 1, Q8_0: 8, BF16: 30 };

/** A metadata value with its GGUF type; arrays hold one element type. */
export type GgufValue =
  | { readonly type: 'u32'; readonly value: number }
  | { readonly type: 'i32'; readonly value: number }
  | { readonly type: 'f32'; readonly value: number }
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'string[]'; readonly value: readonly string[] }
  | { readonly type: 'i32[]'; readonly value: ArrayLike<number> }
  | { readonly type: 'f32[]'; readonly value: ArrayLike<number> };

/** One tensor as GGUF lists it: `dims` in ggml order (innermost first: [columns, rows]). */
export interface GgufTensorSpec {
  readonly name: string;
  readonly type: GgmlType;
  readonly dims: readonly number[];
}

export interface GgufPlacedTensor extends GgufTensorSpec {
  /** Absolute byte position of the tensor's data in the file. */
  readonly position: number;
  readonly byteLength: number;
}

export interface GgufPlan {
  /** The encoded header (magic … tensor infos), padded to the alignment. */
  readonly header: Uint8Array;
  readonly tensors: readonly GgufPlacedTensor[];
  /** Total file size in bytes. */
  readonly fileSize: number;
}

/**
 * Bytes of one tensor's data: elements × size, or for Q8_0 blocks of 32 (a f16 scale and 32 int8).
 * @throws ChatVecError Internal when a Q8_0 row is not a whole number of blocks
 */
export function ggmlByteLength(type: GgmlType, dims: readonly number[]): number {
  const n = dims.reduce((a, d) => a * d, 1);
  switch (type) {
    case 'F32':
      return 4 * n;
    case 'F16':
    case 'BF16':
      return 2 * n;
    case 'Q8_0':
      if (dims[0]! % 32 !== 0) throw new ChatVecError('Internal', `Q8_0 rows must hold a multiple of 32 values, not ${dims[0]}`);
      return (n / 32) * 34;
  }
}

/**
 * Lays out a GGUF v3 file: the header with `metadata` (in the given order; `general.alignment`
 * is added when missing) and the tensor infos, then each tensor's data aligned to 32 bytes.
 * @throws ChatVecError Internal for a duplicate key or tensor name, or a dimension that is not a positive integer
 */
export function planGguf(metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensorSpec[]): GgufPlan {
  const kv = new Map(metadata);
  if (!kv.has('general.alignment')) kv.set('general.alignment', { type: 'u32', value: GGUF_ALIGNMENT });
  const names = new Set<string>();
  let offset = 0;
  const relative: number[] = [];
  for (const t of tensors) {
    if (names.has(t.name)) throw new ChatVecError('Internal', `GGUF tensor "${t.name}" listed twice`);
    names.add(t.name);
    if (t.dims.length === 0 || t.dims.some((d) => !Number.isSafeInteger(d) || d <= 0)) {
      throw new ChatVecError('Internal', `GGUF tensor "${t.name}" has dims [${t.dims.join(', ')}]`);
    }
    relative.push(offset);
    offset = alignUp(offset + ggmlByteLength(t.type, t.dims));
  }
  const w = new ByteSink();
  w.u32(0x46554747); // "GGUF" read as a little-endian u32
  w.u32(3);
  w.u64(tensors.length);
  w.u64(kv.size);
  for (const [key, v] of kv) {
    w.str(key);
    writeValue(w, v);
  }
  tensors.forEach((t, i) => {
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GGML_TYPE_ID[t.type]);
    w.u64(relative[i]!);
  });
  w.padTo(GGUF_ALIGNMENT);
  const header = w.bytes();
  const placed = tensors.map((t, i) => ({ ...t, position: header.length + relative[i]!, byteLength: ggmlByteLength(t.type, t.dims) }));
  // The data section ends padded, as gguf-py writes it.
  return { header, tensors: placed, fileSize: header.length + offset };
}

function alignUp(n: number): number {
  return Math.ceil(n / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
}

function writeValue(w: ByteSink, v: GgufValue): void {
  switch (v.type) {
    case 'u32':
      w.u32(GGUF_VALUE.UINT32);
      w.u32(v.value);
      return;
    case 'i32':
      w.u32(GGUF_VALUE.INT32);
      w.i32(v.value);
      return;
    case 'f32':
      w.u32(GGUF_VALUE.FLOAT32);
      w.f32(v.value);
      return;
    case 'bool':
      w.u32(GGUF_VALUE.BOOL);
      w.u8(v.value ? 1 : 0);
      return;
    case 'string':
      w.u32(GGUF_VALUE.STRING);
      w.str(v.value);
      return;
    case 'string[]':
      w.u32(GGUF_VALUE.ARRAY);
      w.u32(GGUF_VALUE.STRING);
      w.u64(v.value.length);
      for (const s of v.value) w.str(s);
      return;
    case 'i32[]':
      w.u32(GGUF_VALUE.ARRAY);
      w.u32(GGUF_VALUE.INT32);
      w.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) w.i32(v.value[i]!);
      return;
    case 'f32[]':
      w.u32(GGUF_VALUE.ARRAY);
      w.u32(GGUF_VALUE.FLOAT32);
      w.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) w.f32(v.value[i]!);
      return;
  }
}

/** A growable little-endian byte buffer for the header (megabytes at most: a vocabulary). */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  private n = 0;
  private readonly utf8 = new TextEncoder();

  private room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + k) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(x: number): void {
    this.room(1);
    this.view.setUint8(this.n, x);
    this.n += 1;
  }

  u32(x: number): void {
    this.room(4);
    this.view.setUint32(this.n, x, true);
    this.n += 4;
  }

  i32(x: number): void {
    this.room(4);
    this.view.setInt32(this.n, x, true);
    this.n += 4;
  }

  f32(x: number): void {
    this.room(4);
    this.view.setFloat32(this.n, x, true);
    this.n += 4;
  }

  u64(x: number): void {
    this.room(8);
    this.view.setBigUint64(this.n, BigInt(x), true);
    this.n += 8;
  }

  /** A GGUF string: u64 byte length, then UTF-8 bytes (no terminator). */
  str(s: string): void {
    const b = this.utf8.encode(s);
    this.u64(b.length);
    this.room(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
  }

  padTo(alignment: number): void {
    const pad = (alignment - (this.n % alignment)) % alignment;
    this.room(pad);
    this.buf.fill(0, this.n, this.n + pad);
    this.n += pad;
  }

  bytes(): Uint8Array {
    return this.buf.slice(0, this.n);
  }
}
