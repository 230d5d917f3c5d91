/**
 * The GPU's exactness self-test, run before a GPU is selected: both kernels on special values
 * (±0, subnormals, rounding ties, NaN, ±Inf, the largest finite values) for every dtype, against
 * the JavaScript reference kernels — combine bit for bit, diff counts exactly and sums within
 * DIFF_RELATIVE_BOUND; the GEMMs of the randomized SVD (M·X and Mᵀ·X, several row blocks)
 * against the JavaScript reference within gemmBound (float32 sums); the low-rank product of LoRA
 * adapters (both layouts, ranks 1, 7 and 64, chunks cut inside rows) against the JavaScript
 * reference within lowRankBound.ts, counting the elements whose bits differ. A GPU that flushes
 * subnormals or contracts differently fails here, and selection then keeps the CPU.
 */
import { allocElements } from '../elements';
import { combineJs } from '../kernels/combineJs';
import { diffJs } from '../kernels/diffJs';
import { mulPanel, mulPanelT } from '../kernels/gemmJs';
import { type LowRankArgs, bRowsOf, lowRankChunk } from '../kernels/lowRankJs';
import { lowRankGpuBound } from '../lowRankBound';
import type { CombineArgs, ComputeBackend, DiffSums, ElementArray, KernelDtype } from '../types';
import { DIFF_ABSOLUTE_PER_ELEMENT, DIFF_RELATIVE_BOUND, abMagnitude } from '../diffBound';
import { gemmBound } from './gemmGpu';

/** Result of the self-test. */
export interface SelfTestResult {
  readonly ok: boolean;
  /** What differed, when not ok. */
  readonly reason?: string;
  /** Combine output elements compared and elements whose bits differ (NaN against NaN counts as equal). */
  readonly compared: number;
  readonly differing: number;
  /** Low-rank product elements compared, and those whose bits differ from the reference's (within the bound). */
  readonly lowRank: { readonly compared: number; readonly differing: number };
}

/** The self-test of a GPU backend (see the file comment). */
export async function gpuSelfTest(gpu: ComputeBackend): Promise<SelfTestResult> {
  const f32 = new Float32Array(specialF32());
  const u16 = new Uint16Array(special16());
  const n = Math.max(f32.length, u16.length);
  const pick = (d: KernelDtype, shift: number): ElementArray => {
    if (d === 'F32') {
      const x = new Float32Array(n);
      for (let i = 0; i < n; i++) x[i] = f32[(i + shift) % f32.length]!;
      return { dtype: d, data: x };
    }
    const x = new Uint16Array(n);
    for (let i = 0; i < n; i++) x[i] = u16[(i * 7 + shift) % u16.length]!;
    return { dtype: d, data: x };
  };
  let compared = 0;
  let differing = 0;
  const reasons: string[] = [];
  for (const outDtype of ['BF16', 'F16', 'F32'] as const) {
    for (const inDtype of ['BF16', 'F16', 'F32'] as const) {
      for (const withTarget of [true, false]) {
        const args = (out: ElementArray): CombineArgs => ({
          target: withTarget ? pick(inDtype, 0) : null,
          terms: [
            { ratio: 1, a: pick(inDtype, 3), b: pick('F32', 5) },
            { ratio: 0.5, a: pick('F32', 11), b: pick(inDtype, 13) },
            { ratio: -0.3, a: pick(inDtype, 17), b: null },
          ],
          out,
        });
        const want = allocElements(outDtype, n);
        combineJs(args(want));
        const got = allocElements(outDtype, n);
        await gpu.combine(args(got));
        const bad = countBitDiffs(want, got);
        compared += n;
        differing += bad;
        if (bad) reasons.push(`combine ${withTarget ? inDtype : 'no target'}→${outDtype}: ${bad} of ${n} differ`);
      }
    }
    for (const mode of ['ab', 'delta'] as const) {
      const args = { mode, a: pick(outDtype, 1), b: pick(outDtype, 2) };
      const why = diffDisagreement(diffJs(args), await gpu.diff(args));
      if (why) reasons.push(`diff ${mode} ${outDtype}: ${why}`);
    }
  }
  const gemm = await gemmDisagreement(gpu);
  if (gemm) reasons.push(gemm);
  const lowRank = await lowRankDisagreement(gpu);
  if (lowRank.why) reasons.push(lowRank.why);
  return { ok: reasons.length === 0, reason: reasons.join('; ') || undefined, compared, differing, lowRank: { compared: lowRank.compared, differing: lowRank.differing } };
}

/**
 * The low-rank product of 37 × 29 matrices (factors over twelve binary orders of magnitude, both
 * signs), both layouts, ranks 1, 7 and 64, a chunk from element 5 to 6 before the end: each GPU
 * element must lie in [fround(S − E), fround(S + E)] for the float64 sum S and E of
 * lowRankGpuBound, and its bits are compared with the JavaScript reference's. A rejection of the
 * GPU counts as a disagreement.
 */
async function lowRankDisagreement(gpu: ComputeBackend): Promise<{ why: string | null; compared: number; differing: number }> {
  const [rows, cols] = [37, 29];
  const [first, count] = [5, rows * cols - 11];
  const value = seeded(6789);
  let compared = 0;
  let differing = 0;
  try {
    for (const layout of ['BA', 'transposed'] as const) {
      for (const rank of [1, 7, 64]) {
        const [r0, nRows] = bRowsOf(first, count, cols);
        const [nl, nr] = layout === 'BA' ? [nRows * rank, rank * cols] : [rank * rows, cols * rank];
        const args: LowRankArgs = { layout, rank, rows, cols, first, count, left: Float32Array.from({ length: nl }, value), right: Float32Array.from({ length: nr }, value) };
        const want = new Float32Array(count);
        lowRankChunk(args, want);
        const got = new Float32Array(count);
        await gpu.lowRank(args, got);
        for (let e = 0; e < count; e++) {
          const idx = first + e;
          const i = Math.floor(idx / cols);
          const j = idx - i * cols;
          let sum = 0;
          let sumAbs = 0;
          for (let k = 0; k < rank; k++) {
            const t = layout === 'BA' ? args.left[(i - r0) * rank + k]! * args.right[k * cols + j]! : args.left[k * rows + i]! * args.right[j * rank + k]!;
            sum += t;
            sumAbs += Math.abs(t);
          }
          const E = lowRankGpuBound(rank, sumAbs);
          compared++;
          if (!Object.is(got[e], want[e])) differing++;
          if (!(Math.fround(sum - E) <= got[e]! && got[e]! <= Math.fround(sum + E))) {
            return { why: `low-rank ${layout} rank ${rank}: element ${e} is ${got[e]} instead of ${want[e]} (float64 sum ${sum} ± ${E})`, compared, differing };
          }
        }
      }
    }
    return { why: null, compared, differing };
  } catch (e) {
    return { why: `low-rank: ${e instanceof Error ? e.message : String(e)}`, compared, differing };
  }
}

/** Values over twelve binary orders of magnitude, both signs, from a fixed seed. */
function seeded(seed: number): () => number {
  let s = seed;
  const next = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
  return () => (next() < 0.5 ? -1 : 1) * (0.5 + next()) * 2 ** Math.floor(12 * next() - 6);
}

/**
 * Both GEMM products of a 75 × 53 matrix (values over twelve binary orders of magnitude, both
 * signs) with a 19-column panel, against the JavaScript reference: what lies outside gemmBound,
 * or null. A rejection of the GPU counts as a disagreement.
 */
async function gemmDisagreement(gpu: ComputeBackend): Promise<string | null> {
  const [m, n, l] = [75, 53, 19];
  const value = seeded(12345);
  const M = Float32Array.from({ length: m * n }, value);
  const absM = M.map(Math.abs);
  const kernel = gpu.gemm();
  try {
    for (const op of ['panel', 'panelT'] as const) {
      const [xRows, oRows, K] = op === 'panel' ? [n, m, n] : [m, n, m];
      const X = Float64Array.from({ length: xRows * l }, value);
      const want = new Float64Array(oRows * l);
      const mag = new Float64Array(oRows * l);
      const got = new Float64Array(oRows * l);
      const ref = op === 'panel' ? mulPanel : mulPanelT;
      ref(M, m, n, X, l, want);
      ref(absM, m, n, X.map(Math.abs), l, mag);
      await (op === 'panel' ? kernel.mulPanel(M, m, n, X, l, got) : kernel.mulPanelT(M, m, n, X, l, got));
      const [rel, abs] = gemmBound(K);
      for (let i = 0; i < got.length; i++) {
        if (!(Math.abs(got[i]! - want[i]!) <= rel * mag[i]! + abs)) return `gemm ${op}: element ${i} is ${got[i]} instead of ${want[i]} (bound ${rel * mag[i]! + abs})`;
      }
    }
    return null;
  } catch (e) {
    return `gemm: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    kernel.release();
  }
}

/**
 * What in `got` (a GPU's sums) lies outside the stated bound of `want` (the reference's); null
 * when nothing does. Σab is checked against the bound of abMagnitude (diffBound.ts).
 */
function diffDisagreement(want: DiffSums, got: DiffSums): string | null {
  for (const k of ['elements', 'changed', 'nonFinite'] as const) if (want[k] !== got[k]) return `${k} ${got[k]} instead of ${want[k]}`;
  const abs = DIFF_ABSOLUTE_PER_ELEMENT * want.elements;
  const near = (x: number, y: number, mag: number) => Object.is(x, y) || Math.abs(x - y) <= DIFF_RELATIVE_BOUND * mag + abs;
  for (const k of ['sumD2', 'sumA2', 'sumB2', 'sumAbs', 'maxAbs'] as const) if (!near(got[k], want[k], Math.abs(want[k]))) return `${k} ${got[k]} instead of ${want[k]}`;
  if (!near(got.sumAB, want.sumAB, abMagnitude(want))) return `sumAB ${got.sumAB} instead of ${want.sumAB}`;
  return null;
}

/** Bits differ, counting any NaN equal to any NaN. */
function countBitDiffs(a: ElementArray, b: ElementArray): number {
  const x = a.dtype === 'F32' ? new Uint32Array(a.data.buffer, a.data.byteOffset, a.data.length) : a.data;
  const y = b.dtype === 'F32' ? new Uint32Array(b.data.buffer, b.data.byteOffset, b.data.length) : b.data;
  const isNaN = a.dtype === 'F32' ? (v: number) => (v & 0x7fffffff) >>> 0 > 0x7f800000 : a.dtype === 'BF16' ? (v: number) => (v & 0x7fff) > 0x7f80 : (v: number) => (v & 0x7fff) > 0x7c00;
  let bad = 0;
  for (let i = 0; i < x.length; i++) {
    const p = x[i]!;
    const q = y[i]!;
    if (p !== q && !(isNaN(p) && isNaN(q))) bad++;
  }
  return bad;
}

/** float32 values that exercise every rounding path. */
function specialF32(): number[] {
  const bits = [
    0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007fffff, 0x00400000, 0x00800000, 0x80800000, // ±0, subnormals, smallest normals
    0x3f808000, 0x3f818000, 0x3f80c000, 0x3f807fff, // bf16 ties (even and odd) and near-ties
    0x3f801000, 0x3f803000, 0x3f800fff, 0x38800000, 0x33800000, 0x33000000, 0x387fc000, // f16 ties, f16 subnormal range
    0x477fe000, 0x477ff000, 0x47800000, 0x7f7fffff, 0xff7fffff, // f16 overflow edge, f32 max
    0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, // ±Inf, NaNs (quiet and signalling)
    0x3f800000, 0xbf800000, 0x3c23d70a, 0xbc23d70a, 0x40490fdb, 0x3eaaaaab, 0x2f800000, 0x1e3ce508,
  ];
  const f = new Float32Array(new Uint32Array(bits).buffer);
  return [...f];
}

/** 16-bit patterns (read as BF16 or F16) with zeros, subnormals, ties, extremes and NaNs. */
function special16(): number[] {
  return [
    0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0200, 0x0400, 0x007f, 0x0080, 0x3c00, 0xbc00, 0x3c01, 0x7bff, 0xfbff,
    0x7c00, 0xfc00, 0x7e00, 0x7c01, 0x7f7f, 0xff7f, 0x7f80, 0xff80, 0x7fc0, 0x7f81, 0x3f80, 0xbf80, 0x3e4c, 0x2a3b,
    0x1234, 0x9abc, 0x5555, 0xaaaa, 0x4049, 0xc049, 0x0f0f, 0xf0f0, 0x3555, 0x00ff,
  ];
}
