/**
 * The engine's one chunk kernel, run in worker threads: for `count` elements,
 *
 *   acc = f32(target)                       (or 0 when there is no target)
 *   for each term i:  acc = acc + f32(rᵢ) · (f32(aᵢ) − f32(bᵢ))     (bᵢ absent: acc + rᵢ·aᵢ)
 *   out = round_to_dtype(acc)
 *
 * with every operation rounded to float32 in exactly that order (d = a − b; m = r·d; acc = acc + m)
 * and one rounding to the output dtype at the end. JavaScript computes in float64; rounding each
 * result to float32 gives the correctly rounded float32 operation because float64 has more than
 * twice float32's precision (so the double rounding is innocuous).
 *
 * The same kernel does fused apply (target = CP, terms = (chatᵢ, base)), apply from stored vectors
 * (terms = (τᵢ, none)), extract (no target, one term (chat, base), r = 1), dtype conversion and
 * special-token row copies (target only).
 */
import { ChatVecError } from '../errors';
import { readerFor, writerFor } from '../io/handleCache';
import { decodeToF32, encodeFromF32 } from '../numeric/convert';
import { type Dtype, type FloatDtype, dtypeBytes, isFloatDtype } from '../safetensors/dtype';
import { type SimdKernels, simdKernels } from './wasm/simdKernels';
import { CHUNK_ELEMENTS } from './chunking';
import { type ChunkResult, type StoredRun, checkChunk, readRuns } from './nonFinite';

/** A run of elements in a file: where element 0 of this chunk is and how it is stored. */
export interface ChunkRef {
  readonly file: string;
  /** Absolute byte position of the chunk's first element. */
  readonly position: number;
  readonly dtype: Dtype;
}

export interface CombineTerm {
  readonly ratio: number;
  readonly a: ChunkRef;
  readonly b: ChunkRef | null;
}

export interface CombineTask {
  readonly kind: 'combine';
  readonly count: number;
  readonly target: ChunkRef | null;
  readonly terms: readonly CombineTerm[];
  readonly out: ChunkRef & { readonly dtype: FloatDtype };
}

/** Copies raw bytes (non-float tensors), optionally requiring pairs of inputs to agree. */
export interface CopyBytesTask {
  readonly kind: 'copyBytes';
  readonly byteLength: number;
  readonly source: ChunkRef;
  /** Each pair (e.g. base and chat) must hold the same bytes, else the task fails naming `tensor`. */
  readonly mustAgree: readonly (readonly [ChunkRef, ChunkRef])[];
  readonly tensor: string;
  readonly out: ChunkRef;
}

// Buffers reused across tasks of one worker: memory stays flat whatever the model size.
let raw = new Uint8Array(0);
let acc = new Float32Array(0);
let va = new Float32Array(0);
let vb = new Float32Array(0);
let bytesA = new Uint8Array(0);
let bytesB = new Uint8Array(0);

function ensure(count: number): void {
  if (acc.length >= count) return;
  acc = new Float32Array(count);
  va = new Float32Array(count);
  vb = new Float32Array(count);
  raw = new Uint8Array(count * 8);
}

function load(ref: ChunkRef, count: number, into: Float32Array): void {
  if (!isFloatDtype(ref.dtype)) throw new ChatVecError('Internal', `${ref.file}: ${ref.dtype} is not a float dtype`);
  const bytes = raw.subarray(0, count * dtypeBytes(ref.dtype));
  readerFor(ref.file).readIntoSync(bytes, ref.position);
  decodeToF32(ref.dtype, bytes, into, count);
}

/**
 * Runs a CombineTask: the bytes read and written, and the NaN/±Inf the output holds (nonFinite.ts)
 * when it holds any.
 */
export function runCombine(t: CombineTask): ChunkResult {
  const simd = simdKernels();
  return simd && supportedBySimd(t) ? runCombineSimd(t, simd) : runCombineJs(t);
}

/** The inputs a combine task's output elements come from (target, then each term's a and b). */
function inputRuns(t: CombineTask): StoredRun[] {
  const runs = t.target ? [t.target] : [];
  for (const x of t.terms) runs.push(x.a, ...(x.b ? [x.b] : []));
  // Every input of a combine task is a float tensor (load() refuses anything else).
  return runs as StoredRun[];
}

/**
 * The result of a task that wrote `out` (`count` elements of t.out.dtype) and read `bytes`. In the
 * SIMD path `out` is in the kernels' memory, where nonFinite.ts scans it in place.
 */
function resultOf(t: CombineTask, out: Uint8Array, bytes: number): ChunkResult {
  const nonFinite = checkChunk({ dtype: t.out.dtype, bytes: out }, t.count, () => readRuns(inputRuns(t), t.count));
  return nonFinite ? { bytes: bytes + out.length, nonFinite } : { bytes: bytes + out.length };
}

function supportedBySimd(t: CombineTask): boolean {
  const ok = (d: Dtype) => d === 'BF16' || d === 'F32' || d === 'F16';
  return ok(t.out.dtype) && (!t.target || ok(t.target.dtype)) && t.terms.every((x) => ok(x.a.dtype) && (!x.b || ok(x.b.dtype)));
}

/** The plain JavaScript loops (any float dtype). */
function runCombineJs(t: CombineTask): ChunkResult {
  const n = t.count;
  ensure(n);
  let bytes = 0;
  let started = false;
  if (t.target) {
    load(t.target, n, acc);
    bytes += n * dtypeBytes(t.target.dtype);
    started = true;
  }
  for (const term of t.terms) {
    const r = Math.fround(term.ratio);
    load(term.a, n, va);
    bytes += n * dtypeBytes(term.a.dtype);
    if (term.b) {
      load(term.b, n, vb);
      bytes += n * dtypeBytes(term.b.dtype);
      if (!started) {
        for (let i = 0; i < n; i++) acc[i] = r * Math.fround(va[i]! - vb[i]!);
      } else {
        for (let i = 0; i < n; i++) acc[i] = acc[i]! + Math.fround(r * Math.fround(va[i]! - vb[i]!));
      }
    } else if (!started) {
      for (let i = 0; i < n; i++) acc[i] = r * va[i]!;
    } else {
      for (let i = 0; i < n; i++) acc[i] = acc[i]! + Math.fround(r * va[i]!);
    }
    started = true;
  }
  if (!started) acc.fill(0, 0, n);
  const outBytes = raw.subarray(0, n * dtypeBytes(t.out.dtype));
  encodeFromF32(t.out.dtype, acc, outBytes, n);
  writerFor(t.out.file).writeAtSync(outBytes, t.out.position);
  return resultOf(t, outBytes, bytes);
}

/**
 * The same arithmetic with WebAssembly SIMD: file bytes are read straight into the module's
 * memory, bf16 is widened and rounded there; f16 goes through the JavaScript converters.
 * Regions (bytes): acc [0, 4n), a [4n, 8n), b [8n, 12n), raw [12n, 16n).
 */
function runCombineSimd(t: CombineTask, k: SimdKernels): ChunkResult {
  const n = t.count;
  const ACC = 0;
  const A = 4 * n;
  const B = 8 * n;
  const RAW = 12 * n;
  // Reserve for the largest chunk at once: the footprint is then the same for every model size.
  k.reserve(16 * Math.max(n, CHUNK_ELEMENTS));
  if (isFusedBf16(t)) return runFusedBf16(t, k);
  let bytes = 0;
  const loadAt = (ref: ChunkRef, region: number) => {
    const buf = k.memory.buffer;
    if (ref.dtype === 'F32') {
      readerFor(ref.file).readIntoSync(new Uint8Array(buf, region, 4 * n), ref.position);
    } else if (ref.dtype === 'BF16') {
      readerFor(ref.file).readIntoSync(new Uint8Array(buf, RAW, 2 * n), ref.position);
      k.bf16_to_f32(RAW, region, n);
    } else {
      const rawView = new Uint8Array(buf, RAW, 2 * n);
      readerFor(ref.file).readIntoSync(rawView, ref.position);
      decodeToF32(ref.dtype as FloatDtype, rawView, new Float32Array(buf, region, n), n);
    }
    bytes += n * dtypeBytes(ref.dtype);
  };
  let started = false;
  if (t.target) {
    loadAt(t.target, ACC);
    started = true;
  }
  for (const term of t.terms) {
    const r = Math.fround(term.ratio);
    loadAt(term.a, A);
    if (term.b) {
      loadAt(term.b, B);
      if (started) k.acc_diff(ACC, A, B, r, n);
      else k.set_diff(ACC, A, B, r, n);
    } else if (started) k.acc_scaled(ACC, A, r, n);
    else k.set_scaled(ACC, A, r, n);
    started = true;
  }
  const buf = k.memory.buffer;
  if (!started) new Float32Array(buf, ACC, n).fill(0);
  let out: Uint8Array;
  if (t.out.dtype === 'BF16') {
    k.f32_to_bf16(ACC, RAW, n);
    out = new Uint8Array(buf, RAW, 2 * n);
  } else if (t.out.dtype === 'F32') {
    out = new Uint8Array(buf, ACC, 4 * n);
  } else {
    out = new Uint8Array(buf, RAW, dtypeBytes(t.out.dtype) * n);
    encodeFromF32(t.out.dtype, new Float32Array(buf, ACC, n), out, n);
  }
  writerFor(t.out.file).writeAtSync(out, t.out.position);
  return resultOf(t, out, bytes);
}

/** bf16 target, one (bf16 chat, bf16 base) term, bf16 output: the usual fused apply. */
function isFusedBf16(t: CombineTask): boolean {
  const term = t.terms[0];
  return t.terms.length === 1 && t.target?.dtype === 'BF16' && t.out.dtype === 'BF16' && term!.a.dtype === 'BF16' && term!.b?.dtype === 'BF16';
}

function runFusedBf16(t: CombineTask, k: SimdKernels): ChunkResult {
  const n = t.count;
  const term = t.terms[0]!;
  const [CP, CHAT, BASE, OUT] = [0, 2 * n, 4 * n, 6 * n];
  const buf = k.memory.buffer;
  readerFor(t.target!.file).readIntoSync(new Uint8Array(buf, CP, 2 * n), t.target!.position);
  readerFor(term.a.file).readIntoSync(new Uint8Array(buf, CHAT, 2 * n), term.a.position);
  readerFor(term.b!.file).readIntoSync(new Uint8Array(buf, BASE, 2 * n), term.b!.position);
  k.fused_bf16(CP, CHAT, BASE, OUT, Math.fround(term.ratio), n);
  const out = new Uint8Array(buf, OUT, 2 * n);
  writerFor(t.out.file).writeAtSync(out, t.out.position);
  return resultOf(t, out, 6 * n);
}

/** Runs a CopyBytesTask; returns the number of bytes read and written (raw bytes: no NaN check). */
export function runCopyBytes(t: CopyBytesTask): ChunkResult {
  const n = t.byteLength;
  if (bytesA.length < n) bytesA = new Uint8Array(n);
  const src = bytesA.subarray(0, n);
  readerFor(t.source.file).readIntoSync(src, t.source.position);
  let bytes = n;
  for (const [x, y] of t.mustAgree) {
    if (bytesB.length < 2 * n) bytesB = new Uint8Array(2 * n);
    const bx = bytesB.subarray(0, n);
    const by = bytesB.subarray(n, 2 * n);
    readerFor(x.file).readIntoSync(bx, x.position);
    readerFor(y.file).readIntoSync(by, y.position);
    bytes += 2 * n;
    if (!sameBytes(bx, by)) {
      throw new ChatVecError('ShapeMismatch', `tensor "${t.tensor}" is not a float tensor and differs between ${x.file} and ${y.file}; cannot combine it`);
    }
  }
  writerFor(t.out.file).writeAtSync(src, t.out.position);
  return { bytes: bytes + n };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
