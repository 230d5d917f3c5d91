/**
 * The worker side of `diff`: one task reads a run of elements of A and of B (or of a stored chat
 * vector Δ) from their files and returns the float64 sums from which every statistic of DeltaStats
 * follows exactly (aggregates add sums, never norms).
 *
 * Precision: every float32 input is widened to float64 before any arithmetic, so a product of two
 * inputs is exact (48 significant bits fit in 53) and a difference is exact or rounded once. Sums
 * are taken over blocks of BLOCK elements whose partial sums are then added, so rounding error
 * grows like (BLOCK + n/BLOCK)·ε rather than n·ε: billions of elements stay far inside 1e-6
 * relative of an exact reference. F64 inputs are first rounded to float32, the engine's working
 * precision.
 *
 * Speed: each block runs a branch-free fast loop (WebAssembly SIMD where available, else plain
 * JavaScript); NaN/±Inf anywhere in the block make its Σd² + Σa² + Σb² non-finite, and only then
 * is the block redone element by element, counting and skipping the non-finite pairs.
 */
import { ChatVecError } from '../errors';
import { readerFor } from '../io/handleCache';
import { decodeToF32 } from '../numeric/convert';
import { type FloatDtype, dtypeBytes, isFloatDtype } from '../safetensors/dtype';
import { type DiffSimd, diffSimd } from './wasm/diffSimd';

/** A run of elements in a file: where element 0 of the chunk is and how it is stored. */
export interface DiffChunkRef {
  readonly file: string;
  /** Absolute byte position of the chunk's first element. */
  readonly position: number;
  readonly dtype: FloatDtype;
}

/**
 * Compare `count` elements.
 * - mode 'ab': Δ = B − A.
 * - mode 'delta': `b` holds Δ itself (a chat vector); B = A + Δ when `a` (the base) is given, and
 *   without `a` only the Δ sums are meaningful (A is taken as 0).
 */
export interface DiffChunkTask {
  readonly kind: 'diffChunk';
  readonly count: number;
  readonly mode: 'ab' | 'delta';
  readonly a: DiffChunkRef | null;
  readonly b: DiffChunkRef;
}

/**
 * Float64 sums over a set of elements. Elements where A or B is NaN/±Inf are counted in
 * `nonFinite` and left out of every sum (one bad value must not turn a whole layer's norm into NaN).
 */
export interface DiffSums {
  /** Elements compared (including non-finite ones). */
  elements: number;
  /** Σ(b−a)². */
  sumD2: number;
  /** Σa². */
  sumA2: number;
  /** Σb². */
  sumB2: number;
  /** Σa·b. */
  sumAB: number;
  /** Σ|b−a|. */
  sumAbs: number;
  /** max |b−a| (0 when nothing finite was compared). */
  maxAbs: number;
  /** Count of finite pairs with b ≠ a. */
  changed: number;
  /** Count of positions where A or B is NaN or ±Inf. */
  nonFinite: number;
}

export function emptySums(): DiffSums {
  return { elements: 0, sumD2: 0, sumA2: 0, sumB2: 0, sumAB: 0, sumAbs: 0, maxAbs: 0, changed: 0, nonFinite: 0 };
}

/** Adds `s` into `into` (in place). */
export function addSums(into: DiffSums, s: DiffSums): void {
  into.elements += s.elements;
  into.sumD2 += s.sumD2;
  into.sumA2 += s.sumA2;
  into.sumB2 += s.sumB2;
  into.sumAB += s.sumAB;
  into.sumAbs += s.sumAbs;
  if (s.maxAbs > into.maxAbs) into.maxAbs = s.maxAbs;
  into.changed += s.changed;
  into.nonFinite += s.nonFinite;
}

/** Elements per summation block (a multiple of 8, the widest SIMD step). */
const BLOCK = 4096;

/** Careful element-by-element sums over [start, end), added into `s`. */
type SlowRange = (start: number, end: number, s: DiffSums) => void;

// Buffers reused across the tasks of one worker: memory stays flat whatever the model size.
let raw = new Uint8Array(0);
let jsA = new Float32Array(0);
let jsB = new Float32Array(0);
const jsOut = new Float64Array(8);
const scratchA = new Float32Array(BLOCK);
const scratchB = new Float32Array(BLOCK);

/** WebAssembly memory layout: 64 bytes of results, then region A, then region B (16-aligned). */
const OUT = 0;
const REGION_A = 64;

function rawBuffer(bytes: number): Uint8Array {
  if (raw.length < bytes) raw = new Uint8Array(bytes);
  return raw.subarray(0, bytes);
}

/** Grows the kernels' memory to hold two regions of `n` float32; returns region B's offset. */
function reserveSimd(k: DiffSimd, n: number): number {
  const regionB = REGION_A + Math.ceil((n * 4) / 16) * 16;
  const need = regionB + n * 4;
  const have = k.memory.buffer.byteLength;
  if (need > have) k.memory.grow(Math.ceil((need - have) / 65536));
  return regionB;
}

/** Reads `ref` and stores its `count` values as float32 in `into`; returns bytes read. */
function loadF32(ref: DiffChunkRef, count: number, into: Float32Array): number {
  if (!isFloatDtype(ref.dtype)) throw new ChatVecError('Internal', `${ref.file}: ${ref.dtype} is not a float dtype`);
  const n = count * dtypeBytes(ref.dtype);
  if (ref.dtype === 'F32') {
    readerFor(ref.file).readIntoSync(new Uint8Array(into.buffer, into.byteOffset, n), ref.position);
  } else {
    const bytes = rawBuffer(n);
    readerFor(ref.file).readIntoSync(bytes, ref.position);
    decodeToF32(ref.dtype, bytes, into, count);
  }
  return n;
}

/**
 * Runs one diff task in the calling (worker) thread.
 * @returns the chunk's sums and the bytes read
 * @throws ChatVecError Io on a short read, Internal for a non-float dtype
 */
export function runDiffChunk(t: DiffChunkTask): DiffSums & { bytes: number } {
  const n = t.count;
  const k = diffSimd();
  const s = emptySums();
  s.elements = n;
  let bytes = 0;

  if (k && t.mode === 'ab' && t.a?.dtype === 'BF16' && t.b.dtype === 'BF16') {
    // The common case (bf16 checkpoints) reads straight into the kernels' memory: no decode pass.
    const regionB = reserveSimd(k, n);
    const mem = k.memory.buffer;
    readerFor(t.a.file).readIntoSync(new Uint8Array(mem, REGION_A, n * 2), t.a.position);
    readerFor(t.b.file).readIntoSync(new Uint8Array(mem, regionB, n * 2), t.b.position);
    bytes = n * 4;
    const a16 = new Uint16Array(mem, REGION_A, n);
    const b16 = new Uint16Array(mem, regionB, n);
    const out = new Float64Array(mem, OUT, 8);
    drive(
      n,
      (start, end) => k.ab_bf16(REGION_A + start * 2, regionB + start * 2, end - start, OUT),
      out,
      (start, end, acc) => {
        bf16Block(a16, start, end, scratchA);
        bf16Block(b16, start, end, scratchB);
        slowAB(scratchA, scratchB, 0, end - start, acc);
      },
      s,
    );
    return { ...s, bytes };
  }

  let fa: Float32Array;
  let fb: Float32Array;
  let regionB = 0;
  if (k) {
    regionB = reserveSimd(k, n);
    fa = new Float32Array(k.memory.buffer, REGION_A, n);
    fb = new Float32Array(k.memory.buffer, regionB, n);
  } else {
    if (jsA.length < n) {
      jsA = new Float32Array(n);
      jsB = new Float32Array(n);
    }
    fa = jsA.subarray(0, n);
    fb = jsB.subarray(0, n);
  }
  if (t.a) bytes += loadF32(t.a, n, fa);
  else fa.fill(0);
  bytes += loadF32(t.b, n, fb);

  const slow: SlowRange = t.mode === 'ab' ? (st, en, acc) => slowAB(fa, fb, st, en, acc) : (st, en, acc) => slowDelta(fa, fb, st, en, acc);
  if (k) {
    const kernel = t.mode === 'ab' ? k.ab_f32 : k.delta_f32;
    drive(n, (st, en) => kernel(REGION_A + st * 4, regionB + st * 4, en - st, OUT), new Float64Array(k.memory.buffer, OUT, 8), slow, s);
  } else {
    const fast = t.mode === 'ab' ? fastAB : fastDelta;
    drive(n, (st, en) => fast(fa, fb, st, en, jsOut), jsOut, slow, s);
  }
  return { ...s, bytes };
}

/**
 * Runs the fast loop block by block (on whole multiples of 8 elements) and the careful loop for
 * blocks that hold a non-finite value and for the last few elements. `fast` leaves in out[0..7):
 * Σd², Σa², Σb², Σab, Σ|d|, max |d|, count of d = 0.
 */
function drive(n: number, fast: (start: number, end: number) => void, out: Float64Array, slow: SlowRange, s: DiffSums): void {
  for (let start = 0; start < n; start += BLOCK) {
    const end = Math.min(n, start + BLOCK);
    const fastEnd = start + ((end - start) & ~7);
    if (fastEnd > start) {
      fast(start, fastEnd);
      // Finite inputs cannot overflow float64 sums, so a non-finite total means NaN/±Inf inside.
      if (Number.isFinite(out[0]! + out[1]! + out[2]!)) {
        s.sumD2 += out[0]!;
        s.sumA2 += out[1]!;
        s.sumB2 += out[2]!;
        s.sumAB += out[3]!;
        s.sumAbs += out[4]!;
        if (out[5]! > s.maxAbs) s.maxAbs = out[5]!;
        s.changed += fastEnd - start - out[6]!;
      } else {
        slow(start, fastEnd, s);
      }
    }
    if (fastEnd < end) slow(fastEnd, end, s);
  }
}

function bf16Block(src: Uint16Array, start: number, end: number, into: Float32Array): void {
  const bits = new Uint32Array(into.buffer, into.byteOffset, end - start);
  for (let i = start; i < end; i++) bits[i - start] = src[i]! << 16;
}

// The loops below come in pairs (Δ = B − A, and a stored Δ with B = A + Δ) written out separately:
// this is the hot path, and a per-element branch on the mode costs measurable time. The fast loops
// are free of data-dependent branches (random signs and zeros would defeat branch prediction).

function fastAB(a: Float32Array, b: Float32Array, start: number, end: number, out: Float64Array): void {
  let d2 = 0, a2 = 0, b2 = 0, ab = 0, sa = 0, mx = 0, z = 0;
  for (let i = start; i < end; i++) {
    const x = a[i]!;
    const y = b[i]!;
    const d = y - x;
    d2 += d * d;
    a2 += x * x;
    b2 += y * y;
    ab += x * y;
    const ad = Math.abs(d);
    sa += ad;
    mx = ad > mx ? ad : mx;
    z += +(d === 0);
  }
  out[0] = d2;
  out[1] = a2;
  out[2] = b2;
  out[3] = ab;
  out[4] = sa;
  out[5] = mx;
  out[6] = z;
}

function fastDelta(a: Float32Array, delta: Float32Array, start: number, end: number, out: Float64Array): void {
  let d2 = 0, a2 = 0, b2 = 0, ab = 0, sa = 0, mx = 0, z = 0;
  for (let i = start; i < end; i++) {
    const x = a[i]!;
    const d = delta[i]!;
    const y = x + d;
    d2 += d * d;
    a2 += x * x;
    b2 += y * y;
    ab += x * y;
    const ad = Math.abs(d);
    sa += ad;
    mx = ad > mx ? ad : mx;
    z += +(d === 0);
  }
  out[0] = d2;
  out[1] = a2;
  out[2] = b2;
  out[3] = ab;
  out[4] = sa;
  out[5] = mx;
  out[6] = z;
}

function slowAB(a: Float32Array, b: Float32Array, start: number, end: number, s: DiffSums): void {
  let d2 = 0, a2 = 0, b2 = 0, ab = 0, sa = 0, mx = s.maxAbs, ch = 0, nf = 0;
  for (let i = start; i < end; i++) {
    const x = a[i]!;
    const y = b[i]!;
    const d = y - x;
    // A non-finite operand always gives a non-finite d (finite float32 values cannot overflow
    // in float64), and only a non-finite d has d − d ≠ 0: one test covers NaN and ±Inf in both.
    if (d - d !== 0) {
      nf++;
      continue;
    }
    d2 += d * d;
    a2 += x * x;
    b2 += y * y;
    ab += x * y;
    const ad = Math.abs(d);
    sa += ad;
    if (ad > mx) mx = ad;
    if (d !== 0) ch++;
  }
  s.sumD2 += d2;
  s.sumA2 += a2;
  s.sumB2 += b2;
  s.sumAB += ab;
  s.sumAbs += sa;
  s.maxAbs = mx;
  s.changed += ch;
  s.nonFinite += nf;
}

function slowDelta(a: Float32Array, delta: Float32Array, start: number, end: number, s: DiffSums): void {
  let d2 = 0, a2 = 0, b2 = 0, ab = 0, sa = 0, mx = s.maxAbs, ch = 0, nf = 0;
  for (let i = start; i < end; i++) {
    const x = a[i]!;
    const d = delta[i]!;
    const y = x + d;
    if (y - y !== 0) {
      nf++;
      continue;
    }
    d2 += d * d;
    a2 += x * x;
    b2 += y * y;
    ab += x * y;
    const ad = Math.abs(d);
    sa += ad;
    if (ad > mx) mx = ad;
    if (d !== 0) ch++;
  }
  s.sumD2 += d2;
  s.sumA2 += a2;
  s.sumB2 += b2;
  s.sumAB += ab;
  s.sumAbs += sa;
  s.maxAbs = mx;
  s.changed += ch;
  s.nonFinite += nf;
}
