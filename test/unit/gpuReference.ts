/**
 * Independent references for the compute kernels, for the gpu*.test.ts files. Nothing here uses
 * src/core/numeric: 16-bit floats are decoded and rounded with plain arithmetic on powers of two,
 * so a bug shared by the CPU and GPU kernels (both port floatBits.ts) cannot hide.
 */
import type { CombineArgs, KernelArray as ElementArray, KernelDtype } from '../../src/core/compute/types';
import { rng } from './support/rng';

/**
 * One term of a fused apply as these tests write it: a (chat, base) pair, added as
 * ratio·(chat − base), or a precomputed vector τ, added as ratio·τ.
 */
export type ApplyTerm =
  | { readonly ratio: number; readonly chat: ElementArray; readonly base: ElementArray }
  | { readonly ratio: number; readonly tau: ElementArray };

/** out = round_to_outDtype(cp + Σᵢ rᵢ·(chatᵢ − baseᵢ)) as these tests write it; combineArgs() turns it into the kernels' task. */
export interface FusedApplyRequest {
  readonly cp: ElementArray;
  readonly terms: readonly ApplyTerm[];
  readonly outDtype: KernelDtype;
  readonly out?: ElementArray;
}

/** A zero-filled output array. */
export function outArray(dtype: KernelDtype, n: number): ElementArray {
  return dtype === 'F32' ? { dtype, data: new Float32Array(n) } : { dtype, data: new Uint16Array(n) };
}

/** The combine task (compute/types.ts) of a request: target = cp, terms (chat, base) or (τ, none), into `out`. */
export function combineArgs(req: FusedApplyRequest, out: ElementArray = req.out ?? outArray(req.outDtype, req.cp.data.length)): CombineArgs & { readonly out: ElementArray } {
  return {
    target: req.cp,
    terms: req.terms.map((t) => ('tau' in t ? { ratio: t.ratio, a: t.tau, b: null } : { ratio: t.ratio, a: t.chat, b: t.base })),
    out,
  };
}

// Tests import rng from here too.
export { rng };

interface Fmt {
  readonly mant: number;
  readonly exp: number;
}
const FMT: Record<'BF16' | 'F16', Fmt> = { BF16: { mant: 7, exp: 8 }, F16: { mant: 10, exp: 5 } };

/** The value of a 16-bit pattern, by the IEEE formula. */
export function decode16(h: number, dtype: 'BF16' | 'F16'): number {
  const { mant, exp } = FMT[dtype];
  const bias = 2 ** (exp - 1) - 1;
  const sign = h >> 15 ? -1 : 1;
  const e = (h >> mant) & (2 ** exp - 1);
  const m = h & (2 ** mant - 1);
  if (e === 2 ** exp - 1) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** (1 - bias - mant);
  return sign * (2 ** mant + m) * 2 ** (e - bias - mant);
}

/** Element i of a as a number (F32 values are read as they are). */
export function valueAt(a: ElementArray, i: number): number {
  return a.dtype === 'F32' ? a.data[i]! : decode16(a.data[i]!, a.dtype);
}

/**
 * x rounded to the 16-bit format, nearest with ties to even, as a bit pattern
 * (NaN → 0x7fff-ish marker −1: callers compare NaN-ness, not payloads).
 */
export function round16(x: number, dtype: 'BF16' | 'F16'): number {
  if (Number.isNaN(x)) return -1;
  const { mant, exp } = FMT[dtype];
  const bias = 2 ** (exp - 1) - 1;
  const signBit = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const ax = Math.abs(x);
  const infBits = signBit | ((2 ** exp - 1) << mant);
  if (ax === Infinity) return infBits;
  if (ax === 0) return signBit;
  const emin = 1 - bias;
  let e = Math.floor(Math.log2(ax));
  if (2 ** e > ax) e--;
  if (2 ** (e + 1) <= ax) e++;
  e = Math.max(e, emin);
  const q = 2 ** (e - mant); // spacing of representable values around ax
  const m = ax / q; // exact: division by a power of two
  let r = Math.floor(m);
  const frac = m - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r++;
  const v = r * q;
  if (v >= 2 ** (bias + 1)) return infBits;
  if (v < 2 ** emin) return signBit | (v / 2 ** (emin - mant)); // subnormal
  let ev = Math.floor(Math.log2(v));
  if (2 ** ev > v) ev--;
  if (2 ** (ev + 1) <= v) ev++;
  return signBit | ((ev + bias) << mant) | (v / 2 ** (ev - mant) - 2 ** mant);
}

export function isNaN16(h: number, dtype: KernelDtype): boolean {
  return dtype === 'BF16' ? (h & 0x7fff) > 0x7f80 : (h & 0x7fff) > 0x7c00;
}

/**
 * fma(a, b, c) rounded once to float32, exactly: a·b of two float32 values is exact in float64;
 * the float64 sum can only mislead fround when it lands exactly on a float32 midpoint, and then
 * the sign of the TwoSum error says which way the exact value lies.
 */
export function fma32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = c + p;
  if (!Number.isFinite(s)) return Math.fround(s);
  const bb = s - c;
  const e = c - (s - bb) + (p - bb); // TwoSum: s + e = c + p exactly
  const m = Math.fround(s);
  if (e === 0 || m === s) return m;
  const other = 2 * s - m;
  const midpoint = Math.fround(other) === other && Math.abs(s - m) === Math.abs(other - s);
  if (!midpoint) return m;
  return e > 0 === other > m ? other : m;
}

/**
 * Fused apply, element by element, in float32 with Math.fround, the reference's own decode and
 * rounding. With `fma`, each m = r·d and acc + m is one fused multiply-add (what a GPU compiler
 * may emit), the CPU's order otherwise.
 */
export function referenceFused(req: FusedApplyRequest, fma = false): { values: Float64Array; bits: Int32Array } {
  const n = req.cp.data.length;
  const values = new Float64Array(n);
  const bits = new Int32Array(n);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < n; i++) {
    let acc = Math.fround(valueAt(req.cp, i));
    for (const t of req.terms) {
      const r = Math.fround(t.ratio);
      const d = 'tau' in t ? Math.fround(valueAt(t.tau, i)) : Math.fround(valueAt(t.chat, i) - valueAt(t.base, i));
      acc = fma ? fma32(r, d, acc) : Math.fround(acc + Math.fround(r * d));
    }
    values[i] = acc;
    if (req.outDtype === 'F32') {
      f[0] = acc;
      bits[i] = Number.isNaN(acc) ? -1 : u[0]! | 0;
    } else bits[i] = round16(acc, req.outDtype);
  }
  return { values, bits };
}

/** Ordered integer of a bit pattern: adjacent floats differ by 1, −0 and +0 coincide. */
export function ordinal(h: number, dtype: KernelDtype): number {
  if (dtype === 'F32') {
    h >>>= 0;
    return h & 0x80000000 ? -(h & 0x7fffffff) : h;
  }
  return h & 0x8000 ? -(h & 0x7fff) : h;
}

/** Bit pattern of element i of an output array (u32 for F32). */
export function bitsAt(a: ElementArray, i: number): number {
  if (a.dtype === 'F32') return new Uint32Array(a.data.buffer, a.data.byteOffset, a.data.length)[i]!;
  return a.data[i]!;
}

export interface Comparison {
  /** Elements whose bits differ (any NaN equals any NaN). */
  differing: number;
  /** Largest distance in units in the last place of the output dtype (Infinity: NaN against a number). */
  maxUlp: number;
  /** First differing index, or -1. */
  first: number;
}

/** Compares an output with referenceFused's bits (−1 = NaN). */
export function compareWithReference(out: ElementArray, ref: { bits: Int32Array }): Comparison {
  let differing = 0;
  let maxUlp = 0;
  let first = -1;
  for (let i = 0; i < out.data.length; i++) {
    const want = ref.bits[i]!;
    const got = bitsAt(out, i);
    const gotNaN = out.dtype === 'F32' ? Number.isNaN(out.data[i]!) : isNaN16(got, out.dtype);
    if (want === -1 && gotNaN) continue;
    if (want !== -1 && !gotNaN && (want >>> 0) === got) continue;
    differing++;
    if (first < 0) first = i;
    maxUlp = Math.max(maxUlp, want === -1 || gotNaN ? Infinity : Math.abs(ordinal(want >>> 0, out.dtype) - ordinal(got, out.dtype)));
  }
  return { differing, maxUlp, first };
}

/**
 * Float64 sanity check of a fused output against cp + Σ r·(chat − base) evaluated in float64:
 * |out − exact| ≤ (3T+2)·2⁻²⁴·Σ|operands| + ½ ulp of the output + 2⁻¹³⁰ for the float32 evaluation.
 * Only for elements whose inputs are all finite and below 1e30; returns the count that fail.
 */
export function float64Violations(req: FusedApplyRequest, out: ElementArray): { checked: number; bad: number; first: number } {
  const n = req.cp.data.length;
  const T = req.terms.length;
  let checked = 0;
  let bad = 0;
  let first = -1;
  const ulpOut = req.outDtype === 'BF16' ? 2 ** -8 : req.outDtype === 'F16' ? 2 ** -11 : 2 ** -24;
  const minOut = req.outDtype === 'BF16' ? 2 ** -133 : req.outDtype === 'F16' ? 2 ** -24 : 2 ** -149;
  outer: for (let i = 0; i < n; i++) {
    const cp = valueAt(req.cp, i);
    const ops: number[] = [cp];
    let exact = cp;
    let mag = Math.abs(cp);
    for (const t of req.terms as readonly ApplyTerm[]) {
      const r = Math.fround(t.ratio);
      if ('tau' in t) {
        const tau = valueAt(t.tau, i);
        ops.push(tau);
        exact += r * tau;
        mag += Math.abs(r * tau);
      } else {
        const c = valueAt(t.chat, i);
        const b = valueAt(t.base, i);
        ops.push(c, b);
        exact += r * (c - b);
        mag += Math.abs(r) * (Math.abs(c) + Math.abs(b));
      }
    }
    for (const x of ops) if (!Number.isFinite(x) || Math.abs(x) > 1e30) continue outer;
    const got = out.dtype === 'F32' ? out.data[i]! : decode16(out.data[i]!, out.dtype);
    if (Math.abs(exact) >= (out.dtype === 'F16' ? 65504 : 3.4e38)) continue; // may round to Inf
    checked++;
    const tol = (3 * T + 2) * 2 ** -24 * mag + ulpOut * Math.abs(exact) + minOut + 2 ** -130 * (T + 1);
    if (!(Math.abs(got - exact) <= tol)) {
      bad++;
      if (first < 0) first = i;
    }
  }
  return { checked, bad, first };
}

/** |got − want| ≤ tol, with equal infinities (and NaNs) counted as close. */
export function close(got: number, want: number, tol: number): boolean {
  return Object.is(got, want) || Math.abs(got - want) <= tol;
}

/**
 * The sums of a diff computed straight from the definition of DiffSums in float64 (plus Σ|ab| for
 * tolerances): d = b − a (mode delta: d = b and B = a + d), pairs with a non-finite input left
 * out and counted, changed = finite pairs with d ≠ 0.
 */
export function referenceDiff(a: ElementArray, b: ElementArray, mode: 'ab' | 'delta' = 'ab') {
  let sumD2 = 0, sumA2 = 0, sumB2 = 0, sumAB = 0, sumAbs = 0, maxAbs = 0, changed = 0, nonFinite = 0;
  let magAB = 0;
  for (let i = 0; i < a.data.length; i++) {
    const x = valueAt(a, i);
    const v = valueAt(b, i);
    if (!Number.isFinite(x) || !Number.isFinite(v)) {
      nonFinite++;
      continue;
    }
    const d = mode === 'ab' ? v - x : v;
    const y = mode === 'ab' ? v : x + v;
    if (d !== 0) changed++;
    sumD2 += d * d;
    sumA2 += x * x;
    sumB2 += y * y;
    sumAB += x * y;
    magAB += Math.abs(x * y);
    sumAbs += Math.abs(d);
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  return { elements: a.data.length, sumD2, sumA2, sumB2, sumAB, sumAbs, maxAbs, changed, nonFinite, magAB };
}

// ---------------------------------------------------------------------------------------------
// Data

const f1 = new Float32Array(1);
const u1 = new Uint32Array(f1.buffer);
function f32Bits(x: number): number {
  f1[0] = x;
  return u1[0]!;
}
function fromBits(b: number): number {
  u1[0] = b >>> 0;
  return f1[0]!;
}

/** Specials per dtype: ±0, subnormals, extremes, ±Inf, NaN (incl. a signalling one). */
const SPECIAL_F32 = [0, -0, 1e-45, -1e-45, 1.1754942e-38, 5e-39, -3e-42, 3.4028235e38, -3.4028235e38, Infinity, -Infinity, NaN, fromBits(0x7f800001), fromBits(0xffc00001)];
const SPECIAL_16: Record<'BF16' | 'F16', number[]> = {
  BF16: [0x0000, 0x8000, 0x0001, 0x8001, 0x007f, 0x0080, 0x7f7f, 0xff7f, 0x7f80, 0xff80, 0x7fc0, 0x7f81, 0xffc1],
  F16: [0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfe01],
};

/** Nearest 16-bit pattern of a float32 (via the reference rounding). */
function to16(x: number, dtype: 'BF16' | 'F16'): number {
  const h = round16(x, dtype);
  return h === -1 ? (dtype === 'BF16' ? 0x7fc0 : 0x7e00) : h;
}

export interface GenOptions {
  /** Fraction of special values (NaN, Inf, ±0, subnormals, extremes). */
  readonly special?: number;
  /** Fraction of uniformly random bit patterns. */
  readonly rawBits?: number;
  /** Scale of the weight-like values. */
  readonly scale?: number;
  /** false: no finite special above 1e18 (float32 squares of those overflow). Default true. */
  readonly huge?: boolean;
  /** Adds this array's values (rounded) times (1+small noise): models chat ≈ base. */
  readonly near?: ElementArray;
}

/** n weight-like values of `dtype` with the given mix of special and raw-bit elements. */
export function gen(dtype: KernelDtype, n: number, seed: number, o: GenOptions = {}): ElementArray {
  const r = rng(seed);
  const special = o.special ?? 0.01;
  const raw = o.rawBits ?? 0.01;
  const scale = o.scale ?? 0.05;
  const value = (i: number): number => {
    const p = r();
    const tame = (v: number): number => (o.huge === false && Number.isFinite(v) && Math.abs(v) > 1e18 ? v * 1e-30 : v);
    if (p < special) {
      if (dtype === 'F32') return tame(SPECIAL_F32[Math.floor(r() * SPECIAL_F32.length)]!);
      const s = SPECIAL_16[dtype];
      return tame(decode16(s[Math.floor(r() * s.length)]!, dtype));
    }
    if (p < special + raw) {
      if (dtype === 'F32') return tame(fromBits(Math.floor(r() * 2 ** 32)));
      return tame(decode16(Math.floor(r() * 65536), dtype));
    }
    // roughly normal (sum of uniforms), some near the base array
    const g = (r() + r() + r() + r() - 2) * scale;
    if (o.near && r() < 0.7) {
      const v = valueAt(o.near, i);
      return Number.isFinite(v) ? v + g * 0.01 : g;
    }
    return g;
  };
  if (dtype === 'F32') {
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) d[i] = value(i);
    return { dtype, data: d };
  }
  const d = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const v = value(i);
    d[i] = Number.isNaN(v) ? (dtype === 'BF16' ? 0x7fc0 : 0x7e00) : to16(v, dtype);
  }
  // keep raw NaN payloads too
  return { dtype, data: d };
}

/**
 * float32 values that round to an exact tie in `dtype` (low bits exactly half an ulp), with even
 * and odd neighbours, positive and negative, plus subnormal-range ties for F16.
 */
export function tieValues(dtype: 'BF16' | 'F16', n: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let bits: number;
    if (dtype === 'BF16') {
      // any float32 whose low 16 bits are 0x8000 is halfway between two bf16 values
      const hi = Math.floor(r() * 0x7f7f) | (r() < 0.5 ? 0x8000 : 0);
      bits = ((hi << 16) | 0x8000) >>> 0;
    } else if (r() < 0.2) {
      // halfway between two binary16 subnormals: (2k+1)·2⁻²⁵
      const k = Math.floor(r() * 1023);
      bits = f32Bits((2 * k + 1) * 2 ** -25 * (r() < 0.5 ? -1 : 1));
    } else {
      // normal binary16 range: exponent 113..142 in float32, low 13 bits 0x1000
      const e = 113 + Math.floor(r() * 30);
      bits = (((r() < 0.5 ? 1 : 0) << 31) | (e << 23) | (Math.floor(r() * 0x3ff) << 13) | 0x1000) >>> 0;
    }
    out[i] = fromBits(bits);
  }
  return out;
}
