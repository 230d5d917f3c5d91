/**
 * The data of the chunk kernels: element arrays, fused-apply requests, diff statistics, and the
 * checks every backend applies to them. (backend.ts re-exports all of this.)
 */
import { ChatVecError } from '../errors';

/** Element dtypes the kernels read and write (F64 tensors are converted by the caller). */
export type KernelDtype = 'BF16' | 'F16' | 'F32';

/**
 * A run of elements of one dtype. BF16 and F16 hold raw 16-bit patterns (little-endian words as
 * read from a safetensors file), F32 holds values. The length of `data` is the element count.
 */
export type ElementArray =
  | { readonly dtype: 'BF16' | 'F16'; readonly data: Uint16Array }
  | { readonly dtype: 'F32'; readonly data: Float32Array };

/**
 * One term of a fused apply: either a (chat, base) pair, added as ratio·(chat − base), or a
 * precomputed vector τ, added as ratio·τ. `ratio` is rounded to float32 before use.
 */
export type ApplyTerm =
  | { readonly ratio: number; readonly chat: ElementArray; readonly base: ElementArray }
  | { readonly ratio: number; readonly tau: ElementArray };

/** The most terms one fused apply takes. */
export const MAX_APPLY_TERMS = 8;

/**
 * out = round_to_outDtype(cp + Σᵢ rᵢ·(chatᵢ − baseᵢ)), all inputs of cp's length.
 * Evaluated in float32 as d = chat − base; m = r·d; acc = acc + m (acc starts at cp, terms in
 * order), then rounded once to `outDtype` (nearest, ties to even; NaN stays NaN).
 */
export interface FusedApplyRequest {
  readonly cp: ElementArray;
  /** 1..MAX_APPLY_TERMS terms, applied in this order. */
  readonly terms: readonly ApplyTerm[];
  readonly outDtype: KernelDtype;
  /** Where to write the result (dtype `outDtype`, cp's length); a new array when absent. */
  readonly out?: ElementArray;
}

/**
 * Delta statistics of b against a over one run of elements. A pair is *finite* when both a and b
 * are finite; the sums and the maximum cover finite pairs only, with d = float32(b − a).
 * Sums are float64 on the CPU; the GPU sums in float32 per workgroup (2,048 elements) and adds
 * those partials in float64, so its sums carry a relative error of about 2⁻¹⁹ of Σ|term|.
 */
export interface DiffStats {
  /** Elements looked at (finite or not). */
  count: number;
  /** Σ d² over finite pairs. */
  sumSqDiff: number;
  /** Σ a² over finite pairs. */
  sumSqA: number;
  /** Σ b² over finite pairs. */
  sumSqB: number;
  /** Σ a·b over finite pairs. */
  sumAB: number;
  /** max |d| over finite pairs (0 when there is none). */
  maxAbsDiff: number;
  /** Σ |d| over finite pairs. */
  sumAbsDiff: number;
  /** Elements where b ≠ a as floats: NaN differs from everything, −0 equals +0. */
  diffCount: number;
  /** Elements where a or b is NaN or ±Inf. */
  nonFinite: number;
}

/** Statistics of zero elements, the identity of mergeDiffStats. */
export function emptyDiffStats(): DiffStats {
  return { count: 0, sumSqDiff: 0, sumSqA: 0, sumSqB: 0, sumAB: 0, maxAbsDiff: 0, sumAbsDiff: 0, diffCount: 0, nonFinite: 0 };
}

/** Adds the statistics `b` into `into` (chunks of one tensor) and returns `into`. */
export function mergeDiffStats(into: DiffStats, b: DiffStats): DiffStats {
  into.count += b.count;
  into.sumSqDiff += b.sumSqDiff;
  into.sumSqA += b.sumSqA;
  into.sumSqB += b.sumSqB;
  into.sumAB += b.sumAB;
  into.maxAbsDiff = Math.max(into.maxAbsDiff, b.maxAbsDiff);
  into.sumAbsDiff += b.sumAbsDiff;
  into.diffCount += b.diffCount;
  into.nonFinite += b.nonFinite;
  return into;
}

/** Bytes per element of a kernel dtype. */
export function kernelDtypeBytes(d: KernelDtype): 2 | 4 {
  return d === 'F32' ? 4 : 2;
}

/** A zero-filled array of `count` elements of `dtype`. */
export function allocElements(dtype: KernelDtype, count: number): ElementArray {
  return dtype === 'F32' ? { dtype, data: new Float32Array(count) } : { dtype, data: new Uint16Array(count) };
}

/**
 * A view of little-endian bytes (as read from a safetensors file) as an ElementArray, without a
 * copy when `bytes` is aligned to the element size, with one otherwise.
 * @throws ChatVecError('InvalidArgument') when the byte length is not a multiple of the element size.
 */
export function viewElements(dtype: KernelDtype, bytes: Uint8Array): ElementArray {
  const size = kernelDtypeBytes(dtype);
  if (bytes.byteLength % size !== 0) {
    throw new ChatVecError('InvalidArgument', `${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  }
  const src = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  const n = src.byteLength / size;
  return dtype === 'F32'
    ? { dtype, data: new Float32Array(src.buffer, src.byteOffset, n) }
    : { dtype, data: new Uint16Array(src.buffer, src.byteOffset, n) };
}

/**
 * Checks a fused-apply request and returns its element count.
 * @throws ChatVecError('InvalidArgument') for 0 or more than MAX_APPLY_TERMS terms, unknown
 *   dtypes, lengths that differ from cp's, or an `out` of the wrong dtype or length.
 */
export function checkFusedRequest(req: FusedApplyRequest): number {
  const n = req.cp.data.length;
  const bad = (msg: string): never => {
    throw new ChatVecError('InvalidArgument', `fused apply: ${msg}`);
  };
  const check = (what: string, a: ElementArray): void => {
    if (a.dtype !== 'BF16' && a.dtype !== 'F16' && a.dtype !== 'F32') bad(`${what} has unsupported dtype ${String(a.dtype)}`);
    if (a.data.length !== n) bad(`${what} has ${a.data.length} elements, cp has ${n}`);
  };
  check('cp', req.cp);
  if (req.terms.length < 1 || req.terms.length > MAX_APPLY_TERMS) bad(`${req.terms.length} terms (1..${MAX_APPLY_TERMS} allowed)`);
  req.terms.forEach((t, i) => {
    if (!Number.isFinite(t.ratio) && !Number.isNaN(t.ratio)) bad(`term ${i} has ratio ${t.ratio}`);
    if ('tau' in t) check(`term ${i} τ`, t.tau);
    else {
      check(`term ${i} chat`, t.chat);
      check(`term ${i} base`, t.base);
    }
  });
  if (req.outDtype !== 'BF16' && req.outDtype !== 'F16' && req.outDtype !== 'F32') bad(`unsupported output dtype ${String(req.outDtype)}`);
  if (req.out) {
    if (req.out.dtype !== req.outDtype) bad(`out is ${req.out.dtype}, outDtype is ${req.outDtype}`);
    if (req.out.data.length !== n) bad(`out has ${req.out.data.length} elements, cp has ${n}`);
  }
  return n;
}

/** @throws ChatVecError('InvalidArgument') unless a and b are kernel dtypes of equal length. */
export function checkDiffInputs(a: ElementArray, b: ElementArray): number {
  for (const x of [a, b]) {
    if (x.dtype !== 'BF16' && x.dtype !== 'F16' && x.dtype !== 'F32') {
      throw new ChatVecError('InvalidArgument', `diff: unsupported dtype ${String(x.dtype)}`);
    }
  }
  if (a.data.length !== b.data.length) {
    throw new ChatVecError('InvalidArgument', `diff: ${a.data.length} elements against ${b.data.length}`);
  }
  return a.data.length;
}
