/**
 * The combine kernel with WebAssembly SIMD (../wasm/combine.wat): the same float32 operations in
 * the same order as the JavaScript reference (combineJs.ts), so the results are equal bit for bit.
 *
 * Memory layout of one task (bytes, 16-aligned): the task's arrays as `arrays()` hands them out
 * (file bytes are read straight into them), then three float32 regions of n elements: ACC, A, B.
 * BF16 is widened and rounded inside the module; F16 and F64 go through the JavaScript converters;
 * F32 term inputs are read where they lie. A BF16 target with one BF16 (a, b) term and BF16 output
 * — the usual fused apply — runs in one pass without float32 regions (fused_bf16).
 */
import { decodeToF32, encodeFromF32 } from '../../numeric/convert';
import type { FloatDtype } from '../../safetensors/dtype';
import { type SimdKernels, simdKernels } from '../wasm/combineModule';
import { bytesOf, checkCombine, elementBytes } from '../elements';
import type { CombineArgs, CpuKernel, ElementArray } from '../types';
import { align16, arrayOffsets, copyIn, growTo, inPlace, viewsAt } from './simdArrays';

/** Memory is reserved for chunks of at least this many elements (the engine's chunk size), so the footprint does not depend on the model. */
const RESERVE_ELEMENTS = 1 << 20;

/** Byte offsets of a task's arrays and of the float32 regions after them. */
function layout(dtypes: readonly FloatDtype[], n: number): { offsets: number[]; acc: number; a: number; b: number; end: number } {
  const { offsets, after: at } = arrayOffsets(dtypes, n, 0);
  const f32 = align16(4 * n);
  return { offsets, acc: at, a: at + f32, b: at + 2 * f32, end: at + 3 * f32 };
}

function arraysIn(k: SimdKernels, dtypes: readonly FloatDtype[], n: number): ElementArray[] {
  // Reserve (and touch) the arrays for the largest chunk at once: the footprint is then the same
  // for every model size. The float32 regions after them are only grown here (no view may be
  // detached by a later grow), and stay untouched — out of the working set — on the fused path.
  const big = layout(dtypes, Math.max(n, RESERVE_ELEMENTS));
  k.reserve(big.acc);
  growTo(k.memory, Math.max(big.end, layout(dtypes, n).end));
  return viewsAt(k.memory, dtypes, layout(dtypes, n).offsets, n);
}

/** The dtypes of a task's arrays in layout order: target, each term's a and b, out. */
function dtypesOf(args: CombineArgs): FloatDtype[] {
  const out: FloatDtype[] = args.target ? [args.target.dtype] : [];
  for (const t of args.terms) out.push(t.a.dtype, ...(t.b ? [t.b.dtype] : []));
  out.push(args.out.dtype);
  return out;
}

/** The task's arrays in layout order (as dtypesOf). */
function arraysOf(args: CombineArgs): ElementArray[] {
  const out: ElementArray[] = args.target ? [args.target] : [];
  for (const t of args.terms) out.push(t.a, ...(t.b ? [t.b] : []));
  out.push(args.out);
  return out;
}

/** Puts float32 values of `x` (stored at byte `at`) into region `dst`, or returns `at` itself for F32 when `dst` may alias it. */
function widen(k: SimdKernels, x: ElementArray, at: number, dst: number, n: number, mayAlias: boolean): number {
  const buf = k.memory.buffer;
  if (x.dtype === 'F32') {
    if (mayAlias) return at;
    new Float32Array(buf, dst, n).set(new Float32Array(buf, at, n));
  } else if (x.dtype === 'BF16') k.bf16_to_f32(at, dst, n);
  else decodeToF32(x.dtype, new Uint8Array(buf, at, n * elementBytes(x.dtype)), new Float32Array(buf, dst, n), n);
  return dst;
}

function run(k: SimdKernels, args: CombineArgs, n: number): void {
  const list = arraysOf(args);
  const { offsets, acc, a: regionA, b: regionB } = layout(
    list.map((x) => x.dtype),
    n,
  );
  const outAt = offsets[offsets.length - 1]!;
  const term0 = args.terms[0];
  if (args.terms.length === 1 && args.target?.dtype === 'BF16' && args.out.dtype === 'BF16' && term0!.a.dtype === 'BF16' && term0!.b?.dtype === 'BF16') {
    k.fused_bf16(offsets[0]!, offsets[1]!, offsets[2]!, outAt, Math.fround(term0!.ratio), n);
    return;
  }
  let slot = 0;
  let started = false;
  if (args.target) {
    widen(k, args.target, offsets[slot++]!, acc, n, false);
    started = true;
  }
  for (const term of args.terms) {
    const r = Math.fround(term.ratio);
    const a = widen(k, term.a, offsets[slot++]!, regionA, n, true);
    if (term.b) {
      const b = widen(k, term.b, offsets[slot++]!, regionB, n, true);
      if (started) k.acc_diff(acc, a, b, r, n);
      else k.set_diff(acc, a, b, r, n);
    } else if (started) k.acc_scaled(acc, a, r, n);
    else k.set_scaled(acc, a, r, n);
    started = true;
  }
  const buf = k.memory.buffer;
  const sum = new Float32Array(buf, acc, n);
  if (!started) sum.fill(0);
  if (args.out.dtype === 'BF16') k.f32_to_bf16(acc, outAt, n);
  else encodeFromF32(args.out.dtype, sum, new Uint8Array(buf, outAt, n * elementBytes(args.out.dtype)), n);
}

/**
 * Runs a combine into args.out. Arrays handed out by `arrays()` are used where they lie; others
 * are copied in and the output copied back (tests pass their own arrays).
 * @throws ChatVecError('Internal') for arrays of this memory passed out of their order
 * @throws ChatVecError('InvalidArgument') for a malformed task (see checkCombine)
 */
function combineSimd(k: SimdKernels, args: CombineArgs): void {
  const n = checkCombine(args);
  const list = arraysOf(args);
  const dtypes = dtypesOf(args);
  if (inPlace(k.memory, list, layout(dtypes, n).offsets)) return run(k, args, n);
  const inside = copyIn(k.memory, list, () => arraysIn(k, dtypes, n), 'combine');
  let i = 0;
  const next = () => inside[i++]!;
  const target = args.target ? next() : null;
  const terms = args.terms.map((t) => ({ ratio: t.ratio, a: next(), b: t.b ? next() : null }));
  const out = next();
  run(k, { target, terms, out }, n);
  bytesOf(args.out).set(bytesOf(out));
}

/** The SIMD kernel behind the kernel interface, or null where WebAssembly SIMD is unavailable. */
export function combineSimdKernel(): CpuKernel<CombineArgs, void> | null {
  const k = simdKernels();
  if (!k) return null;
  return { impl: 'simd', arrays: (dtypes, n) => arraysIn(k, dtypes, n), run: (args) => combineSimd(k, args) };
}
