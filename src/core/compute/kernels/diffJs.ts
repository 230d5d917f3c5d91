/**
 * The diff kernel's JavaScript reference (see DiffSums in ../types.ts): the float64 definition the
 * WASM SIMD kernel (diffSimd.ts) and the GPU are held to (within ../diffBound.ts), and the CPU path
 * where WebAssembly SIMD is unavailable (or CHATVEC_KERNEL=js).
 *
 * Precision: every float32 input is widened to float64 before any arithmetic, so a product of two
 * inputs is exact (48 significant bits fit in 53) and a difference is exact or rounded once. Sums
 * are taken over blocks of DIFF_BLOCK elements whose partial sums are then added, so rounding
 * error grows like (DIFF_BLOCK + n/DIFF_BLOCK)·ε rather than n·ε: billions of elements stay far
 * inside 1e-6 relative of an exact reference. F64 inputs are first rounded to float32, the
 * engine's working precision.
 *
 * Speed: each block runs a branch-free fast loop; NaN/±Inf anywhere in the block make its
 * Σd² + Σa² + Σb² non-finite, and only then is the block redone element by element, counting and
 * skipping the non-finite pairs.
 */
import { decodeToF32 } from '../../numeric/convert';
import { bytesOf, checkDiff, emptySums } from '../elements';
import type { CpuKernel, DiffArgs, DiffSums, ElementArray } from '../types';
import { ScratchArrays, f32Scratch } from './scratch';

/** Elements per summation block (a multiple of 16, the SIMD kernel's step). */
export const DIFF_BLOCK = 4096;

/** Careful element-by-element sums over [start, end), added into `s`. */
export type SlowRange = (start: number, end: number, s: DiffSums) => void;

const jsA = { buf: new Float32Array(0) };
const jsB = { buf: new Float32Array(0) };
const jsOut = new Float64Array(8);
const scratch = new ScratchArrays();

/** `x` as float32 values (zeros for null): a view of F32 data, else decoded into `into`. */
function asF32(x: ElementArray | null, n: number, into: { buf: Float32Array }): Float32Array {
  if (x?.dtype === 'F32') return x.data;
  const f = f32Scratch(into, n);
  if (x) decodeToF32(x.dtype, bytesOf(x), f, n);
  else f.fill(0);
  return f;
}

/**
 * The diff sums of args.
 * @throws ChatVecError('InvalidArgument') for arrays of unequal length (see checkDiff)
 */
export function diffJs(args: DiffArgs): DiffSums {
  const n = checkDiff(args);
  const s = emptySums();
  s.elements = n;
  const fa = asF32(args.a, n, jsA);
  const fb = asF32(args.b, n, jsB);
  const delta = args.mode === 'delta';
  driveBlocks(n, (st, en) => fastRange(fa, fb, st, en, jsOut, delta), jsOut, (st, en, acc) => slowRange(fa, fb, st, en, acc, delta), s);
  return s;
}

/** diffJs behind the kernel interface. */
export const diffJsKernel: CpuKernel<DiffArgs, DiffSums> = {
  impl: 'js',
  arrays: (dtypes, n) => scratch.arrays(dtypes, n),
  run: diffJs,
};

/** Adds the results of a fast loop over `count` finite pairs (see driveBlocks) into `s`. */
function addFast(s: DiffSums, out: Float64Array, count: number): void {
  s.sumD2 += out[0]!;
  s.sumA2 += out[1]!;
  s.sumB2 += out[2]!;
  s.sumAB += out[3]!;
  s.sumAbs += out[4]!;
  if (out[5]! > s.maxAbs) s.maxAbs = out[5]!;
  s.changed += count - out[6]!;
}

/**
 * Runs the fast loop block by block (on whole multiples of 16 elements) and the careful loop for
 * blocks whose fast sums came out non-finite and for the last few elements. `fast` leaves in
 * out[0..7): Σd², Σa², Σb², Σab, Σ|d|, max |d|, count of d = 0.
 */
export function driveBlocks(n: number, fast: (start: number, end: number) => void, out: Float64Array, slow: SlowRange, s: DiffSums): void {
  for (let start = 0; start < n; start += DIFF_BLOCK) {
    const end = Math.min(n, start + DIFF_BLOCK);
    const fastEnd = start + ((end - start) & ~15);
    if (fastEnd > start) {
      fast(start, fastEnd);
      // Finite inputs cannot overflow float64 sums, so a non-finite sum means NaN/±Inf inside, or
      // (the SIMD kernel's float32 terms) a finite value too large for float32 products: the
      // careful loop then sums that block in float64.
      if (Number.isFinite(out[0]! + out[1]! + out[2]! + out[3]! + out[4]!)) {
        addFast(s, out, fastEnd - start);
      } else {
        slow(start, fastEnd, s);
      }
    }
    if (fastEnd < end) slow(fastEnd, end, s);
  }
}

// One loop for both modes (Δ = B − A, and a stored Δ with B = A + Δ): the mode is a constant of
// each call. The fast loop is free of data-dependent branches (random signs and zeros would defeat
// branch prediction); WebAssembly SIMD (diffSimd.ts) runs it where the runtime has SIMD.

function fastRange(a: Float32Array, b: Float32Array, start: number, end: number, out: Float64Array, delta: boolean): void {
  let d2 = 0, a2 = 0, b2 = 0, ab = 0, sa = 0, mx = 0, z = 0;
  for (let i = start; i < end; i++) {
    const x = a[i]!;
    const v = b[i]!;
    const y = delta ? x + v : v;
    const d = delta ? v : v - x;
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

const slowOut = new Float64Array(8);

/**
 * The careful sums over [start, end), added into `s`: pairs with a non-finite value are counted
 * and skipped, the runs of finite pairs between them go through the fast loop. Δ = b − a, or with
 * `delta` a stored Δ in `b` and B = A + Δ.
 */
export function slowRange(a: Float32Array, b: Float32Array, start: number, end: number, s: DiffSums, delta: boolean): void {
  let run = start;
  for (let i = start; i <= end; i++) {
    if (i < end) {
      const x = a[i]!;
      const v = b[i]!;
      // A non-finite operand always gives a non-finite y or d (finite float32 values cannot
      // overflow in float64), and only a non-finite value has v − v ≠ 0.
      const y = delta ? x + v : v;
      const d = delta ? v : v - x;
      if (d - d === 0 && y - y === 0) continue;
      s.nonFinite++;
    }
    if (i > run) {
      fastRange(a, b, run, i, slowOut, delta);
      addFast(s, slowOut, i - run);
    }
    run = i + 1;
  }
}
