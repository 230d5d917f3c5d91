/**
 * The diff kernel with WebAssembly SIMD (../wasm/diffStats.wat): the JavaScript reference's sums
 * (diffJs.ts) over the same blocks of DIFF_BLOCK elements, but with terms and partial sums of 128
 * elements in float32, four lanes at a time, added in float64, and Σab taken from Σa², Σb² and Σd²:
 * several times the speed of float64 lanes (two per instruction, with a conversion each), within
 * ../diffBound.ts of the reference (counts exactly). Blocks whose sums come out non-finite (NaN/±Inf
 * inside, or finite values too large for float32 squares) are redone by the reference's careful
 * float64 loop.
 *
 * Memory layout (bytes, 16-aligned): 64 bytes of running sums and 64 of the module's block
 * scratch, the task's arrays as `arrays()` hands them out (file bytes are read straight into
 * them), then two float32 regions of n elements for inputs that are not F32 already. Two BF16
 * inputs (mode ab) — the common case — are summed where they lie, without a decode pass.
 */
import { decodeToF32 } from '../../numeric/convert';
import type { FloatDtype } from '../../safetensors/dtype';
import { DIFF_KIND, type DiffSimd, diffSimd } from '../wasm/diffModule';
import { checkDiff, elementBytes, emptySums } from '../elements';
import type { CpuKernel, DiffArgs, DiffSums, ElementArray } from '../types';
import { DIFF_BLOCK, type SlowRange, slowRange } from './diffJs';
import { align16, arrayOffsets, copyIn, growTo, inPlace, viewsAt } from './simdArrays';

// The running sums (7 float64), then the module's 64 bytes of block scratch.
const OUT = 0;
const FIRST = 128;
const scratchA = new Float32Array(DIFF_BLOCK);
const scratchB = new Float32Array(DIFF_BLOCK);

function layout(dtypes: readonly FloatDtype[], n: number): { offsets: number[]; a32: number; b32: number; end: number } {
  const { offsets, after: at } = arrayOffsets(dtypes, n, FIRST);
  const f32 = align16(4 * n);
  return { offsets, a32: at, b32: at + f32, end: at + 2 * f32 };
}

function arraysIn(k: DiffSimd, dtypes: readonly FloatDtype[], n: number): ElementArray[] {
  const { offsets, end } = layout(dtypes, n);
  growTo(k.memory, end);
  return viewsAt(k.memory, dtypes, offsets, n);
}

function listOf(args: DiffArgs): ElementArray[] {
  return args.a ? [args.a, args.b] : [args.b];
}

function bf16Block(src: Uint16Array, start: number, end: number, into: Float32Array): void {
  const bits = new Uint32Array(into.buffer, into.byteOffset, end - start);
  for (let i = start; i < end; i++) bits[i - start] = src[i]! << 16;
}

/** float32 values of `x` (zeros for null) at a byte offset of the memory: where F32 lies, else decoded into `region`. */
function f32At(k: DiffSimd, x: ElementArray | null, at: number, region: number, n: number): number {
  const buf = k.memory.buffer;
  if (x?.dtype === 'F32') return at;
  const dst = new Float32Array(buf, region, n);
  if (x) decodeToF32(x.dtype, new Uint8Array(buf, at, n * elementBytes(x.dtype)), dst, n);
  else dst.fill(0);
  return region;
}

/**
 * The blocks of driveBlocks (diffJs.ts) with the block loop inside the module: one call runs until
 * the end or a block whose float32 sums are not finite, which `slow` then sums in float64. The
 * results are the bits driveBlocks would give with the same kernel.
 */
function driveSimd(k: DiffSimd, kind: number, pa: number, pb: number, bytes: number, n: number, slow: SlowRange, s: DiffSums): void {
  const out = new Float64Array(k.memory.buffer, OUT, 7);
  const fastEnd = n - (n % 16);
  let start = 0;
  while (start < fastEnd) {
    out[0] = s.sumD2;
    out[1] = s.sumA2;
    out[2] = s.sumB2;
    out[3] = s.sumAB;
    out[4] = s.sumAbs;
    out[5] = s.maxAbs;
    out[6] = s.changed;
    const stop = start + k.run(kind, pa + start * bytes, pb + start * bytes, fastEnd - start, OUT);
    s.sumD2 = out[0]!;
    s.sumA2 = out[1]!;
    s.sumB2 = out[2]!;
    s.sumAB = out[3]!;
    s.sumAbs = out[4]!;
    s.maxAbs = out[5]!;
    s.changed = out[6]!;
    if (stop >= fastEnd) break;
    start = Math.min(stop + DIFF_BLOCK, fastEnd);
    slow(stop, start, s);
  }
  if (fastEnd < n) slow(fastEnd, n, s);
}

function run(k: DiffSimd, args: DiffArgs, n: number): DiffSums {
  const s = emptySums();
  s.elements = n;
  const list = listOf(args);
  const { offsets, a32, b32 } = layout(
    list.map((x) => x.dtype),
    n,
  );
  const mem = k.memory.buffer;
  if (args.mode === 'ab' && args.a?.dtype === 'BF16' && args.b.dtype === 'BF16') {
    const [atA, atB] = offsets as [number, number];
    const a16 = new Uint16Array(mem, atA, n);
    const b16 = new Uint16Array(mem, atB, n);
    // driveSimd asks for at most one block at a time.
    const slow: SlowRange = (start, end, acc) => {
      bf16Block(a16, start, end, scratchA);
      bf16Block(b16, start, end, scratchB);
      slowRange(scratchA, scratchB, 0, end - start, acc, false);
    };
    driveSimd(k, DIFF_KIND.abBf16, atA, atB, 2, n, slow, s);
    return s;
  }
  const pa = f32At(k, args.a, args.a ? offsets[0]! : 0, a32, n);
  const pb = f32At(k, args.b, offsets[offsets.length - 1]!, b32, n);
  const fa = new Float32Array(mem, pa, n);
  const fb = new Float32Array(mem, pb, n);
  const delta = args.mode === 'delta';
  const slow: SlowRange = (st, en, acc) => slowRange(fa, fb, st, en, acc, delta);
  driveSimd(k, delta ? DIFF_KIND.deltaF32 : DIFF_KIND.abF32, pa, pb, 4, n, slow, s);
  return s;
}

/**
 * The diff sums of args. Arrays handed out by `arrays()` are used where they lie; others are
 * copied in first (tests pass their own arrays).
 * @throws ChatVecError('Internal') for arrays of this memory passed out of their order
 * @throws ChatVecError('InvalidArgument') for arrays of unequal length (see checkDiff)
 */
function diffSimdRun(k: DiffSimd, args: DiffArgs): DiffSums {
  const n = checkDiff(args);
  const list = listOf(args);
  const dtypes = list.map((x) => x.dtype);
  if (inPlace(k.memory, list, layout(dtypes, n).offsets)) return run(k, args, n);
  const inside = copyIn(k.memory, list, () => arraysIn(k, dtypes, n), 'diff');
  return run(k, { mode: args.mode, a: args.a ? inside[0]! : null, b: inside[inside.length - 1]! }, n);
}

/** The SIMD kernel behind the kernel interface, or null where WebAssembly SIMD is unavailable. */
export function diffSimdKernel(): CpuKernel<DiffArgs, DiffSums> | null {
  const k = diffSimd();
  if (!k) return null;
  return { impl: 'simd', arrays: (dtypes, n) => arraysIn(k, dtypes, n), run: (args) => diffSimdRun(k, args) };
}
