/**
 * Fixtures and independent references for the engine tests: float formats decoded from their IEEE
 * definition and rounded to nearest-even by searching a sorted table of values (no bit tricks
 * shared with src/core/numeric), a safetensors reader that parses the files here (not the
 * engine's reader), checkpoint writers over the project's planner, hashing of input trees, and
 * checks that a failed or cancelled job left nothing behind.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChatVecError } from '../../../src/core/errors';
import type { Dtype } from '../../../src/core/safetensors/dtype';
import { type TensorSpec, createPlannedFile, planCheckpoint } from '../../../src/core/safetensors/writer';
import { rng } from './rng';

// Tests run the TypeScript sources in the workers (not a possibly stale dist/worker.js).
process.env.CHATVEC_WORKER_SCRIPT ??= path.join(__dirname, 'tsxWorker.cjs');

export const REPO_ROOT = path.resolve(__dirname, '../../..');

// ---------------------------------------------------------------------------------------------
// Float formats
// ---------------------------------------------------------------------------------------------

export type OutFloat = 'BF16' | 'F16' | 'F32';
export const FLOAT_WIDTH: Record<OutFloat, number> = { BF16: 2, F16: 2, F32: 4 };

/** The value of a 16-bit pattern from its IEEE definition (float64). */
function value16(dtype: 'BF16' | 'F16', bits: number): number {
  const [eBits, mBits] = dtype === 'BF16' ? [8, 7] : [5, 10];
  const eMax = (1 << eBits) - 1;
  const bias = eMax >> 1;
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >> mBits) & eMax;
  const m = bits & ((1 << mBits) - 1);
  if (e === eMax) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** (1 - bias - mBits);
  return sign * (1 + m / 2 ** mBits) * 2 ** (e - bias);
}

const VALUES16: Record<'BF16' | 'F16', Float64Array> = {
  BF16: Float64Array.from({ length: 65536 }, (_, b) => value16('BF16', b)),
  F16: Float64Array.from({ length: 65536 }, (_, b) => value16('F16', b)),
};

const scratch = new DataView(new ArrayBuffer(8));
// Typed-array twins for the hot paths (a DataView call per element is slow).
const f64 = new Float64Array(1);
const f64Words = new Uint32Array(f64.buffer);
const HIGH = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0; // little-endian: word 1
const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);

/** The value of a bit pattern of `dtype` (float64). */
export function valueOf(dtype: OutFloat, bits: number): number {
  if (dtype !== 'F32') return VALUES16[dtype][bits & 0xffff]!;
  scratch.setUint32(0, bits >>> 0);
  return scratch.getFloat32(0);
}

export const NAN_BITS: Record<OutFloat, number> = { BF16: 0x7fc0, F16: 0x7e00, F32: 0x7fc00000 };

const POW2_BIAS = 1100;
const POW2 = Float64Array.from({ length: 2 * POW2_BIAS + 1 }, (_, i) => 2 ** (i - POW2_BIAS));

/**
 * The bit pattern of `x` (any float64) rounded once to `dtype`, nearest with ties to even,
 * overflow to ±Inf, as IEEE 754 defines it; NaN becomes the canonical quiet NaN. 16-bit formats:
 * x is scaled by a power of two (exact) so that the format's quantum in x's binade becomes 1, and
 * the integer part is rounded by comparing the (exact) fraction with one half.
 */
export function roundToBits(x: number, dtype: OutFloat): number {
  if (dtype === 'F32') {
    if (x !== x) return NAN_BITS.F32; // NaN (the only value unequal to itself)
    f32[0] = x; // Math.fround semantics: correctly rounded, ties to even
    return f32Bits[0]!;
  }
  return dtype === 'BF16' ? round16(x, 7, 127) : round16(x, 10, 15);
}

function round16(x: number, p: number, bias: number): number {
  if (x !== x) return p === 7 ? NAN_BITS.BF16 : NAN_BITS.F16; // NaN (the only value unequal to itself)
  const sign = x < 0 || (x === 0 && 1 / x < 0) ? 0x8000 : 0;
  const a = x < 0 ? -x : x;
  const inf = sign | ((2 * bias + 1) << p);
  if (a === Infinity) return inf;
  if (a === 0) return sign;
  f64[0] = a;
  let e = ((f64Words[HIGH]! >>> 20) & 0x7ff) - 1023; // the binade, from the float64's exponent
  if (e < 1 - bias) e = 1 - bias; // subnormals share the smallest normal binade's quantum
  const q = a * POW2[p - e + POW2_BIAS]!; // exact; q < 2^(p+1), so q − ⌊q⌋ is exact too
  let n = Math.floor(q);
  const f = q - n;
  if (f > 0.5 || (f === 0.5 && (n & 1) === 1)) n++;
  const one = 1 << p;
  if (n === 2 * one) {
    n = one;
    e++;
  }
  if (n < one) return sign | n; // subnormal (or zero)
  if (e + bias >= 2 * bias + 1) return inf;
  return sign | ((e + bias) << p) | (n - one);
}

/**
 * The same rounding found differently: the nearest of the sorted positive values of the format
 * (and 2^(emax+1) standing for infinity), ties to the even pattern. Slow; checks roundToBits.
 */
export function roundToBitsBySearch(x: number, dtype: 'BF16' | 'F16'): number {
  if (Number.isNaN(x)) return NAN_BITS[dtype];
  const infBits = dtype === 'BF16' ? 0x7f80 : 0x7c00;
  const values = VALUES16[dtype];
  const top = dtype === 'BF16' ? 2 ** 128 : 2 ** 16;
  const at = (k: number) => (k === infBits ? top : values[k]!);
  const negative = x < 0 || Object.is(x, -0);
  const a = Math.abs(x);
  let k: number;
  if (a >= top) k = infBits;
  else {
    let lo = 0;
    let hi = infBits; // at(lo) <= a < at(hi)
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (at(mid) <= a) lo = mid;
      else hi = mid;
    }
    const midpoint = (at(lo) + at(hi)) / 2; // exact: one bit more than the format
    k = a < midpoint ? lo : a > midpoint ? hi : lo % 2 === 0 ? lo : hi;
  }
  return (negative ? 0x8000 : 0) | k;
}

/** `x` rounded to `dtype` and decoded again (the nearest representable value). */
export function roundTo(x: number, dtype: OutFloat): number {
  return valueOf(dtype, roundToBits(x, dtype));
}

export function isNaNBits(bits: number, dtype: OutFloat): boolean {
  return Number.isNaN(valueOf(dtype, bits));
}

/** Distance in units in the last place between two non-NaN patterns (+0 and −0 coincide). */
export function ulpDistance(a: number, b: number, dtype: OutFloat): number {
  const signBit = dtype === 'F32' ? 0x80000000 : 0x8000;
  return Math.abs(ordinal(a >>> 0, signBit) - ordinal(b >>> 0, signBit));
}

/** Position of a pattern on the integer line of its format (sign-magnitude → two's complement). */
function ordinal(x: number, signBit: number): number {
  return (x & signBit) !== 0 ? -(x & (signBit - 1)) : x & (signBit - 1);
}

/** The elements of a little-endian float buffer as bit patterns (copied when unaligned). */
export function bitsArray(bytes: Uint8Array, dtype: OutFloat): Uint16Array | Uint32Array {
  const w = FLOAT_WIDTH[dtype];
  const aligned = bytes.byteOffset % w === 0 ? bytes : new Uint8Array(bytes);
  return w === 4 ? new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.length / 4) : new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.length / 2);
}

/** Element `i` of a little-endian float buffer, as a bit pattern. */
export function bitsAt(bytes: Uint8Array, dtype: OutFloat, i: number): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return dtype === 'F32' ? v.getUint32(i * 4, true) : v.getUint16(i * 2, true);
}

/** All elements of a float tensor's bytes as float64 values. */
export function decodeAll(bytes: Uint8Array, dtype: OutFloat): Float64Array {
  const bits = bitsArray(bytes, dtype);
  const out = new Float64Array(bits.length);
  if (dtype === 'F32') {
    const f = new Float32Array(bits.buffer, bits.byteOffset, bits.length);
    for (let i = 0; i < f.length; i++) out[i] = f[i]!;
  } else {
    const t = VALUES16[dtype];
    for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]!]!;
  }
  return out;
}

/** Values (each representable in `dtype`) as little-endian bytes. */
export function encodeAll(values: ArrayLike<number>, dtype: OutFloat): Uint8Array {
  const w = FLOAT_WIDTH[dtype];
  const out = new Uint8Array(values.length * w);
  const bits = w === 4 ? new Uint32Array(out.buffer) : new Uint16Array(out.buffer);
  for (let i = 0; i < values.length; i++) bits[i] = roundToBits(values[i]!, dtype);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Random numbers
// ---------------------------------------------------------------------------------------------

// Tests import rng from here too.
export { rng };

// ---------------------------------------------------------------------------------------------
// Writing and reading checkpoints
// ---------------------------------------------------------------------------------------------

export interface TensorData {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** Float values (each representable in dtype) … */
  readonly values?: ArrayLike<number>;
  /** … or raw little-endian bytes (integer tensors). */
  readonly bytes?: Uint8Array;
}

/**
 * Writes a checkpoint folder with the project's planner (sharded with an index when the budget
 * forces it) plus extra small files (config, tokenizer …).
 */
export function writeModel(dir: string, tensors: readonly TensorData[], opts: { maxShardBytes?: number; files?: Record<string, string | object> } = {}): string {
  fs.mkdirSync(dir, { recursive: true });
  const specs: TensorSpec[] = tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
  const plan = planCheckpoint(specs, opts.maxShardBytes ?? 5e9);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  for (const f of plan.files) {
    const out = createPlannedFile(path.join(dir, f.fileName), f);
    try {
      for (const t of f.tensors) {
        const d = byName.get(t.name)!;
        const bytes = d.bytes ?? encodeAll(d.values!, d.dtype as OutFloat);
        assert.equal(bytes.length, t.byteLength, `fixture ${t.name}: ${bytes.length} bytes for ${t.byteLength}`);
        out.writeAtSync(bytes, t.position);
      }
    } finally {
      out.close();
    }
  }
  if (plan.index) fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(plan.index, null, 2));
  for (const [name, content] of Object.entries(opts.files ?? {})) {
    fs.writeFileSync(path.join(dir, name), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
  return dir;
}

export interface StTensor {
  readonly name: string;
  readonly dtype: string;
  readonly shape: number[];
  readonly bytes: Buffer;
  readonly file: string;
  /** Absolute byte position of the data in `file`. */
  readonly position: number;
}

export interface StCheckpoint {
  /** Shard file names in order (the index's sorted set, or the single file). */
  readonly files: string[];
  /** Tensor names in storage order: file by file, each by data offset. */
  readonly order: string[];
  readonly tensors: Map<string, StTensor>;
  /** `__metadata__` of each file. */
  readonly metadata: Record<string, string>[];
  readonly index: { metadata?: { total_size?: number }; weight_map: Record<string, string> } | null;
}

/** Parses one safetensors file from its bytes (independent of src/core/safetensors). */
export function readSafetensorsFile(file: string): { metadata: Record<string, string>; tensors: StTensor[] } {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const start = 8 + n;
  const { __metadata__: meta, ...rest } = header as Record<string, unknown>;
  const tensors = Object.entries(rest as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>)
    .map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, bytes: buf.subarray(start + t.data_offsets[0], start + t.data_offsets[1]), file, position: start + t.data_offsets[0] }))
    .sort((a, b) => a.position - b.position);
  const last = tensors.length ? Math.max(...Object.values(rest as Record<string, { data_offsets: [number, number] }>).map((t) => t.data_offsets[1])) : 0;
  assert.equal(buf.length, start + last, `${file}: file length is not header + data`);
  return { metadata: (meta ?? {}) as Record<string, string>, tensors };
}

export function readCheckpoint(dir: string): StCheckpoint {
  const indexPath = path.join(dir, 'model.safetensors.index.json');
  let index: StCheckpoint['index'] = null;
  let files: string[];
  if (fs.existsSync(indexPath)) {
    index = JSON.parse(fs.readFileSync(indexPath, 'utf8')) as NonNullable<StCheckpoint['index']>;
    files = [...new Set(Object.values(index.weight_map))].sort();
  } else {
    files = ['model.safetensors'];
  }
  const tensors = new Map<string, StTensor>();
  const order: string[] = [];
  const metadata: Record<string, string>[] = [];
  for (const f of files) {
    const r = readSafetensorsFile(path.join(dir, f));
    metadata.push(r.metadata);
    for (const t of r.tensors) {
      tensors.set(t.name, t);
      order.push(t.name);
      if (index) assert.equal(index.weight_map[t.name], f, `index maps ${t.name} to ${index.weight_map[t.name]} but it is in ${f}`);
    }
  }
  if (index) assert.equal(Object.keys(index.weight_map).length, order.length, 'index and shards hold different tensor sets');
  return { files, order, tensors, metadata, index };
}

/** Float values of one tensor of a checkpoint. */
export function tensorValues(ck: StCheckpoint, name: string): Float64Array {
  const t = ck.tensors.get(name);
  assert.ok(t, `no tensor ${name}`);
  return decodeAll(t.bytes, t.dtype as OutFloat);
}

// ---------------------------------------------------------------------------------------------
// Temporary folders, hashes, leftovers, errors
// ---------------------------------------------------------------------------------------------

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `chatvec-${prefix}-`));
}

/** sha256 of every file under `root` (relative path → hex), including the folder listing. */
export function hashTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const st = fs.statSync(p);
        out.set(path.relative(root, p), `${crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex')} ${st.mtimeMs}`);
      }
    }
  };
  walk(root);
  return out;
}

/** The output path and any temporary sibling of it that still exists. */
export function leftovers(out: string): string[] {
  const parent = path.dirname(out);
  const base = path.basename(out);
  const found: string[] = [];
  if (fs.existsSync(out)) found.push(out);
  if (fs.existsSync(parent) && fs.statSync(parent).isDirectory()) {
    for (const n of fs.readdirSync(parent)) if (n.startsWith(`.${base}.partial-`)) found.push(path.join(parent, n));
  }
  return found;
}

export function assertNothingLeft(out: string): void {
  assert.deepEqual(leftovers(out), [], `a failed or cancelled job left output behind`);
}

/** Awaits `p`, requires a ChatVecError with `code` whose message matches every pattern. */
export async function rejectsWith(p: Promise<unknown> | (() => Promise<unknown>), code: string, ...patterns: (RegExp | string)[]): Promise<ChatVecError> {
  let caught: unknown = null;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ChatVecError, `expected a ChatVecError ${code}, got ${caught === null ? 'success' : String(caught)}`);
  assert.equal(caught.code, code, `code ${caught.code}: ${caught.message}`);
  for (const pat of patterns) {
    if (typeof pat === 'string') assert.ok(caught.message.includes(pat), `message lacks ${JSON.stringify(pat)}: ${caught.message}`);
    else assert.match(caught.message, pat);
  }
  return caught;
}

/** Copies a checkpoint folder (to damage or edit the copy, never the original). */
export function copyFolder(from: string, to: string): string {
  fs.cpSync(from, to, { recursive: true });
  return to;
}

// ---------------------------------------------------------------------------------------------
// The exact-order reference over whole tensors
// ---------------------------------------------------------------------------------------------

export interface RefTerm {
  readonly ratio: number;
  readonly a: StTensor;
  /** null: `a` is a stored chat vector. */
  readonly b: StTensor | null;
}

/**
 * The bytes apply must write for one tensor: round(f32(cp) + Σ f32(rᵢ)·(f32(aᵢ) − f32(bᵢ))),
 * float32 after every operation, in that order; NaN as the canonical quiet NaN.
 */
export function expectedBytes(cp: StTensor, terms: readonly RefTerm[], outDtype: OutFloat): Uint8Array {
  const c = decodeAll(cp.bytes, cp.dtype as OutFloat);
  const ts = terms.map((t) => ({ r: Math.fround(t.ratio), a: decodeAll(t.a.bytes, t.a.dtype as OutFloat), b: t.b ? decodeAll(t.b.bytes, t.b.dtype as OutFloat) : null }));
  const out = new Float64Array(c.length);
  for (let i = 0; i < c.length; i++) {
    let acc = Math.fround(c[i]!);
    for (const t of ts) acc = Math.fround(acc + Math.fround(t.r * (t.b ? Math.fround(t.a[i]! - t.b[i]!) : t.a[i]!)));
    out[i] = acc;
  }
  return encodeAll(out, outDtype);
}

/** Compares bytes treating any two NaN patterns as equal; names the first differing element. */
export function assertSameFloats(got: Uint8Array, want: Uint8Array, dtype: OutFloat, what: string): void {
  assert.equal(got.length, want.length, `${what}: byte length`);
  const n = got.length / FLOAT_WIDTH[dtype];
  for (let i = 0; i < n; i++) {
    const g = bitsAt(got, dtype, i);
    const w = bitsAt(want, dtype, i);
    if (g !== w && !(isNaNBits(g, dtype) && isNaNBits(w, dtype))) {
      assert.fail(`${what}: element ${i} is ${valueOf(dtype, g)} (0x${g.toString(16)}), expected ${valueOf(dtype, w)} (0x${w.toString(16)})`);
    }
  }
}

/** Row `row` of a 2-D tensor's bytes. */
export function rowBytes(t: StTensor, row: number): Buffer {
  const cols = t.shape[1]!;
  const w = t.bytes.length / (t.shape[0]! * cols);
  return t.bytes.subarray(row * cols * w, (row + 1) * cols * w);
}

/** Overwrites a tensor's data in place (in a copy of a checkpoint). */
export function overwriteTensor(t: StTensor, bytes: Uint8Array): void {
  assert.equal(bytes.length, t.bytes.length);
  const fd = fs.openSync(t.file, 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, t.position);
  } finally {
    fs.closeSync(fd);
  }
}
