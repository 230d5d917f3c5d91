// The CPU implementations of the kernels (the JavaScript reference, compute/kernels/*Js.ts, and
// WebAssembly SIMD, *Simd.ts) against the independent references of gpuReference.ts, and the
// backend-neutral helpers. The GPU is held to the JavaScript reference in gpuBackend.test.ts, so
// the CPU kernels are checked here first, on their own.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addSums, checkCombine, emptySums, viewElements } from '../../src/core/compute/elements';
import { combineJsKernel } from '../../src/core/compute/kernels/combineJs';
import { combineSimdKernel } from '../../src/core/compute/kernels/combineSimd';
import { diffJsKernel } from '../../src/core/compute/kernels/diffJs';
import { lowRankChunk } from '../../src/core/compute/kernels/lowRankJs';
import { diffSimdKernel } from '../../src/core/compute/kernels/diffSimd';
import { DIFF_ABSOLUTE_PER_ELEMENT, DIFF_RELATIVE_BOUND, abMagnitude } from '../../src/core/compute/diffBound';
import { gpuSelfTest } from '../../src/core/compute/gpu/selfTest';
import type { CombineArgs, ComputeBackend, CpuKernel, DiffArgs, DiffSums, KernelArray as ElementArray, KernelDtype } from '../../src/core/compute/types';
import { ChatVecError } from '../../src/core/errors';
import {
  type ApplyTerm,
  type FusedApplyRequest,
  close,
  combineArgs,
  compareWithReference,
  decode16,
  fma32,
  float64Violations,
  gen,
  outArray,
  referenceDiff,
  referenceFused,
  rng,
  round16,
  tieValues,
} from './gpuReference';

const DTYPES: readonly KernelDtype[] = ['BF16', 'F16', 'F32'];

describe('gpuReference self-checks', () => {
  it('decode16 and round16 are inverse on every 16-bit pattern', () => {
    for (const dtype of ['BF16', 'F16'] as const) {
      let nan = 0;
      for (let h = 0; h < 65536; h++) {
        const v = decode16(h, dtype);
        if (Number.isNaN(v)) {
          nan++;
          assert.equal(round16(v, dtype), -1);
          continue;
        }
        assert.equal(round16(v, dtype), h, `${dtype} ${h.toString(16)}`);
      }
      assert.equal(nan, dtype === 'BF16' ? 2 * 127 : 2 * 1023);
    }
  });

  it('fma32 rounds a·b + c once', () => {
    const a = 1 + 2 ** -12;
    assert.equal(fma32(a, a, -1), 2 ** -11 + 2 ** -24); // exact: a² − 1
    assert.equal(Math.fround(Math.fround(a * a) - 1), 2 ** -11); // two roundings lose 2⁻²⁴
    assert.equal(fma32(3, Math.fround(0.1), 0), Math.fround(3 * Math.fround(0.1))); // no addend: one rounding of the product
    assert.equal(fma32(2, Infinity, -Infinity), NaN);
  });

  it('round16 rounds ties to even and overflows to Inf', () => {
    assert.equal(round16(1 + 2 ** -8, 'BF16'), 0x3f80); // tie, even stays
    assert.equal(round16(1 + 3 * 2 ** -8, 'BF16'), 0x3f82); // tie, odd goes up
    assert.equal(round16(1 + 2 ** -11, 'F16'), 0x3c00);
    assert.equal(round16(1 + 3 * 2 ** -11, 'F16'), 0x3c02);
    assert.equal(round16(65520, 'F16'), 0x7c00); // halfway to 2^16 rounds to Inf
    assert.equal(round16(65519.99, 'F16'), 0x7bff);
    assert.equal(round16(2 ** -25, 'F16'), 0x0000); // half the smallest subnormal: tie to 0
    assert.equal(round16(3 * 2 ** -25, 'F16'), 0x0002);
    assert.equal(round16(-0, 'BF16'), 0x8000);
  });
});

/** A request whose terms cycle through the dtypes so every input slot sees every dtype. */
function request(cpDtype: KernelDtype, outDtype: KernelDtype, n: number, seed: number, terms = 3): FusedApplyRequest {
  const cp = gen(cpDtype, n, seed);
  const list: ApplyTerm[] = [];
  const ratios = [1, 0.5, -0.75, 0.3, 2, -1, 0.1, 1.7];
  for (let t = 0; t < terms; t++) {
    const d1 = DTYPES[(DTYPES.indexOf(cpDtype) + t) % 3]!;
    const d2 = DTYPES[(DTYPES.indexOf(cpDtype) + 2 * t + 1) % 3]!;
    if (t % 3 === 2) list.push({ ratio: ratios[t]!, tau: gen(d1, n, seed + 100 * t + 1, { scale: 0.01 }) });
    else {
      const base = gen(d2, n, seed + 100 * t + 2);
      list.push({ ratio: ratios[t]!, chat: gen(d1, n, seed + 100 * t + 3, { near: base }), base });
    }
  }
  return { cp, terms: list, outDtype };
}

const combineKernels: CpuKernel<CombineArgs, void>[] = [combineJsKernel, ...[combineSimdKernel()].filter((k) => k !== null)];
const diffKernels: CpuKernel<DiffArgs, DiffSums>[] = [diffJsKernel, ...[diffSimdKernel()].filter((k) => k !== null)];

it('both CPU implementations of each kernel are present (WebAssembly SIMD in this Node)', () => {
  assert.deepEqual(
    combineKernels.map((k) => k.impl),
    ['js', 'simd'],
  );
  assert.deepEqual(
    diffKernels.map((k) => k.impl),
    ['js', 'simd'],
  );
});

for (const kernel of combineKernels) {
/** The combine kernel on a request: into req.out when given, else a new array. */
const fusedApplyChunk = (req: FusedApplyRequest): ElementArray => {
  const out = req.out ?? outArray(req.outDtype, req.cp.data.length);
  kernel.run(combineArgs(req, out));
  return out;
};

describe(`combine kernel (${kernel.impl})`, () => {
  it('equals the float32 reference bit for bit for every input/output dtype', () => {
    for (const cpDtype of DTYPES) {
      for (const outDtype of DTYPES) {
        const req = request(cpDtype, outDtype, 5003, 17 + DTYPES.indexOf(cpDtype) * 3 + DTYPES.indexOf(outDtype));
        const out = fusedApplyChunk(req);
        const c = compareWithReference(out, referenceFused(req));
        assert.equal(c.differing, 0, `${cpDtype}→${outDtype}: ${c.differing} differ, first at ${c.first}`);
        const v = float64Violations(req, out);
        assert.ok(v.checked > 4000, `checked ${v.checked}`);
        assert.equal(v.bad, 0, `${cpDtype}→${outDtype}: ${v.bad} outside the float64 bound, first at ${v.first}`);
      }
    }
  });

  it('handles 1..8 terms, τ terms and raw bit patterns (NaN, Inf, subnormals)', () => {
    for (let terms = 1; terms <= 8; terms++) {
      const req = request('BF16', terms % 2 ? 'BF16' : 'F16', 3001, 1000 + terms, terms);
      const c = compareWithReference(fusedApplyChunk(req), referenceFused(req));
      assert.equal(c.differing, 0, `${terms} terms`);
    }
    const n = 4096;
    const raw = (d: KernelDtype, s: number) => gen(d, n, s, { special: 0.2, rawBits: 0.5 });
    const req: FusedApplyRequest = {
      cp: raw('F16', 1),
      outDtype: 'BF16',
      terms: [
        { ratio: 1, chat: raw('BF16', 2), base: raw('F32', 3) },
        { ratio: -2.5, tau: raw('F16', 4) },
      ],
    };
    const c = compareWithReference(fusedApplyChunk(req), referenceFused(req));
    assert.equal(c.differing, 0);
  });

  it('rounds exact ties to even once (F32 cp, terms that add zero)', () => {
    for (const outDtype of ['BF16', 'F16'] as const) {
      const cp: ElementArray = { dtype: 'F32', data: tieValues(outDtype, 4000, 5) };
      const zero: ElementArray = { dtype: 'F32', data: new Float32Array(4000) };
      const req: FusedApplyRequest = { cp, outDtype, terms: [{ ratio: 0.7, chat: zero, base: zero }] };
      const out = fusedApplyChunk(req);
      const ref = referenceFused(req);
      assert.equal(compareWithReference(out, ref).differing, 0);
      // and they really were ties: the result's last bit is even wherever rounding moved the value
      let even = 0;
      for (let i = 0; i < 4000; i++) if ((out.data[i]! & 1) === 0) even++;
      assert.ok(even > 3900, `${even} of 4000 results even`);
    }
  });

  it('keeps NaN as NaN and −0 + 0·d as +0, in every output dtype', () => {
    const cp: ElementArray = { dtype: 'F32', data: new Float32Array([NaN, -0, -0, 1, Infinity, Infinity]) };
    const chat: ElementArray = { dtype: 'F32', data: new Float32Array([1, 0, -0, Infinity, 1, -Infinity]) };
    const base: ElementArray = { dtype: 'F32', data: new Float32Array([1, 0, 0, Infinity, 1, 0]) };
    for (const outDtype of DTYPES) {
      const out = fusedApplyChunk({ cp, outDtype, terms: [{ ratio: 1, chat, base }] });
      const v = [...out.data].map((h, i) => (outDtype === 'F32' ? out.data[i]! : decode16(h, outDtype)));
      assert.ok(Number.isNaN(v[0]!), 'NaN stays NaN');
      assert.ok(Object.is(v[1], 0), '−0 + (+0) = +0');
      assert.ok(Object.is(v[2], -0), '−0 + (−0) = −0');
      assert.ok(Number.isNaN(v[3]!), 'Inf − Inf = NaN');
      assert.equal(v[4], Infinity);
      assert.ok(Number.isNaN(v[5]!), 'Inf + (−Inf) = NaN');
    }
  });

  it('writes into a given output and validates requests', () => {
    const req = request('F32', 'F16', 100, 3, 1);
    const out: ElementArray = { dtype: 'F16', data: new Uint16Array(100) };
    assert.equal(fusedApplyChunk({ ...req, out }), out);
    assert.equal(compareWithReference(out, referenceFused(req)).differing, 0);
    const bad = (r: FusedApplyRequest) => assert.throws(() => fusedApplyChunk(r), (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument');
    bad({ ...req, cp: gen('F32', 99, 1) });
    bad({ ...req, out: { dtype: 'BF16', data: new Uint16Array(99) } });
    bad({ ...req, terms: [{ ...req.terms[0]!, ratio: Infinity }] });
    bad({ ...req, cp: { dtype: 'I32' as KernelDtype, data: new Float32Array(100) } as ElementArray });
    assert.equal(checkCombine(combineArgs(req)), 100);
  });

  it('computes in place in the arrays it hands out (file bytes are read straight into them)', () => {
    const req = request('BF16', 'BF16', 3001, 21, 1);
    const want = fusedApplyChunk(req);
    const t = req.terms[0] as Extract<ApplyTerm, { chat: unknown }>;
    const [cp, chat, base, out] = kernel.arrays([req.cp.dtype, t.chat.dtype, t.base.dtype, 'BF16'], 3001) as ElementArray[];
    const copy = (dst: ElementArray, src: ElementArray) => new Uint8Array(dst.data.buffer, dst.data.byteOffset, dst.data.byteLength).set(new Uint8Array(src.data.buffer, src.data.byteOffset, src.data.byteLength));
    copy(cp!, req.cp);
    copy(chat!, t.chat);
    copy(base!, t.base);
    kernel.run({ target: cp!, terms: [{ ratio: t.ratio, a: chat!, b: base! }], out: out! });
    assert.deepEqual([...out!.data], [...want.data]);
    if (kernel.impl === 'simd') {
      // Its own arrays out of order could be overwritten by the copy-in: refused.
      assert.throws(() => kernel.run({ target: chat!, terms: [{ ratio: t.ratio, a: cp!, b: base! }], out: out! }), (e: unknown) => e instanceof ChatVecError && e.code === 'Internal');
    }
  });
});
}

/**
 * How far a diff sum over n elements whose terms have magnitude Σ|terms| = `mag` may lie from the
 * float64 definition: the JavaScript reference (float64 throughout) to float64 accuracy, the SIMD
 * kernel (float32 terms and block sums) within the bound of compute/diffBound.ts.
 */
function sumTolerance(impl: 'js' | 'simd', mag: number, n: number): number {
  return impl === 'js' ? 1e-12 * mag : DIFF_RELATIVE_BOUND * mag + DIFF_ABSOLUTE_PER_ELEMENT * n;
}

/** The maximum |d|: exact in float64, one float32 rounding of d (relative 2⁻²⁴ ≤ the bound) with SIMD. */
function maxTolerance(impl: 'js' | 'simd', max: number): number {
  return impl === 'js' ? 0 : DIFF_RELATIVE_BOUND * max;
}

/** Every sum of `got` within the tolerance of `impl` of the float64 definition `ref`; counts exactly. */
function assertDiffWithin(impl: 'js' | 'simd', got: DiffSums, ref: ReturnType<typeof referenceDiff>, what: string): void {
  assert.equal(got.elements, ref.elements, `${what}: elements`);
  assert.equal(got.changed, ref.changed, `${what}: changed`);
  assert.equal(got.nonFinite, ref.nonFinite, `${what}: nonFinite`);
  const n = ref.elements;
  assert.ok(close(got.maxAbs, ref.maxAbs, maxTolerance(impl, ref.maxAbs)), `${what}: max ${got.maxAbs} vs ${ref.maxAbs}`);
  for (const k of ['sumD2', 'sumA2', 'sumB2', 'sumAbs'] as const) assert.ok(close(got[k], ref[k], sumTolerance(impl, ref[k], n)), `${what}: ${k} ${got[k]} vs ${ref[k]}`);
  // Σab's bound is relative to abMagnitude (the SIMD kernel derives it from Σa², Σb², Σd²).
  assert.ok(close(got.sumAB, ref.sumAB, sumTolerance(impl, abMagnitude(ref), n)), `${what}: Σab ${got.sumAB} vs ${ref.sumAB} (magnitude ${abMagnitude(ref)})`);
}

for (const kernel of diffKernels) {
describe(`diff kernel (${kernel.impl})`, () => {
  const reduceDiffChunk = (a: ElementArray, b: ElementArray, mode: 'ab' | 'delta' = 'ab'): DiffSums => kernel.run({ mode, a, b });

  it('matches the float64 definition: counts exactly, sums and max within the kernel\'s tolerance', () => {
    for (const mode of ['ab', 'delta'] as const) {
      for (const da of DTYPES) {
        for (const db of DTYPES) {
          const huge = (DTYPES.indexOf(da) + DTYPES.indexOf(db)) % 2 === 0; // some runs with finite values near float32's limit
          const a = gen(da, 20011, 7 + DTYPES.indexOf(da), { huge });
          const b = gen(db, 20011, 70 + DTYPES.indexOf(db), { near: mode === 'ab' ? a : undefined, special: 0.02, huge });
          const got = reduceDiffChunk(a, b, mode);
          const ref = referenceDiff(a, b, mode);
          assert.equal(got.elements, 20011);
          assert.ok(ref.nonFinite > 100 && ref.changed > 10000, 'the data has specials and differences');
          assertDiffWithin(kernel.impl, got, ref, `${mode} ${da}/${db}`);
        }
      }
    }
  });

  it('stays within its tolerance of the float64 definition on adversarial data (magnitudes 2⁻⁷⁵…2⁶⁰, cancellation, long runs, float32 overflow)', () => {
    const n = 6 * 4096 + 21;
    const r = rng(99);
    const x = new Float64Array(n);
    const y = new Float64Array(n);
    const sign = () => (r() < 0.5 ? -1 : 1);
    for (let i = 0; i < n; i++) {
      const part = Math.floor(i / 4096);
      const v = sign() * 2 ** Math.floor(r() * 136 - 75) * (1 + r()); // 2⁻⁷⁵ … 2⁶⁰: squares from below float32's subnormals to 2¹²¹
      if (part === 0) [x[i], y[i]] = [v, v * (1 + (r() - 0.5) * 2 ** -8)]; // magnitude spread, small relative changes
      else if (part === 1) [x[i], y[i]] = [v, sign() * v * (1 + r() * 2 ** -4)]; // Σab cancels: random signs of a·b
      else if (part === 2) [x[i], y[i]] = [1 + (i % 128) * 2 ** -20, 1 + 2 ** -10 + (i % 64) * 2 ** -21]; // long runs of near-equal terms
      else if (part === 3) [x[i], y[i]] = [i % 256 === 0 ? 2 ** 50 : 2 ** -30 * (1 + r()), i % 256 === 0 ? -(2 ** 50) : 2 ** -30 * r()]; // one huge term among tiny ones
      else if (part === 4) [x[i], y[i]] = [v * 2 ** -20, -v * 2 ** -20 * (1 - 2 ** -12)]; // B ≈ −A: d ≈ 2a, and B = A + Δ cancels in delta mode
      else [x[i], y[i]] = [i % 1000 === 7 ? 2 ** 70 : v, i % 999 === 8 ? -(2 ** 66) : v + 2 ** -20]; // finite values whose float32 squares overflow
    }
    const arrays = (dtype: 'F32' | 'BF16', vals: Float64Array): ElementArray =>
      dtype === 'F32' ? { dtype, data: Float32Array.from(vals) } : { dtype, data: Uint16Array.from(vals, (v) => round16(v, 'BF16')) };
    let checked = 0;
    for (const dtype of ['F32', 'BF16'] as const) {
      for (const mode of ['ab', 'delta'] as const) {
        const a = arrays(dtype, x);
        const b = arrays(dtype, mode === 'ab' ? y : y.map((v, i) => v - x[i]!));
        const ref = referenceDiff(a, b, mode);
        assert.equal(ref.nonFinite, 0);
        assert.ok(Math.abs(ref.sumAB) < 0.5 * ref.magAB, 'Σab cancels');
        assertDiffWithin(kernel.impl, reduceDiffChunk(a, b, mode), ref, `${mode} ${dtype}`);
        // and on each part alone, where one kind of data dominates the sums
        for (let p = 0; p < 6; p++) {
          const part = (e: ElementArray): ElementArray => ({ dtype: e.dtype, data: e.data.subarray(p * 4096, Math.min(n, (p + 1) * 4096 + (p === 5 ? 21 : 0))) } as ElementArray);
          assertDiffWithin(kernel.impl, reduceDiffChunk(part(a), part(b), mode), referenceDiff(part(a), part(b), mode), `${mode} ${dtype} part ${p}`);
          checked++;
        }
      }
    }
    assert.equal(checked, 24);
  });

  it('takes d = b − a in float64: finite inputs whose float32 difference would overflow stay finite', () => {
    const a: ElementArray = { dtype: 'F32', data: new Float32Array([-3e38, 1]) };
    const b: ElementArray = { dtype: 'F32', data: new Float32Array([3e38, 2]) };
    const st = reduceDiffChunk(a, b);
    const d = Math.fround(3e38) - Math.fround(-3e38);
    assert.equal(st.nonFinite, 0);
    assert.equal(st.sumD2, d * d + 1);
    assert.equal(st.maxAbs, d);
    assert.equal(st.sumA2, Math.fround(-3e38) ** 2 + 1);
  });

  it('counts −0 = +0 as unchanged and leaves NaN/Inf pairs out', () => {
    const a: ElementArray = { dtype: 'F32', data: new Float32Array([0, NaN, 1, Infinity, 2]) };
    const b: ElementArray = { dtype: 'F32', data: new Float32Array([-0, NaN, 1, Infinity, 3]) };
    const st = reduceDiffChunk(a, b);
    assert.deepEqual(
      { changed: st.changed, nonFinite: st.nonFinite, maxAbs: st.maxAbs, sumD2: st.sumD2, sumA2: st.sumA2 },
      { changed: 1, nonFinite: 2, maxAbs: 1, sumD2: 1, sumA2: 5 },
    );
  });

  it('merges chunk sums into the whole', () => {
    const a = gen('BF16', 9000, 1);
    const b = gen('BF16', 9000, 2, { near: a });
    const whole = reduceDiffChunk(a, b);
    const parts = emptySums();
    for (let s = 0; s < 9000; s += 2500) {
      const sl = (x: ElementArray): ElementArray => ({ dtype: 'BF16', data: (x.data as Uint16Array).subarray(s, s + 2500) });
      addSums(parts, reduceDiffChunk(sl(a), sl(b)));
    }
    assert.equal(parts.elements, whole.elements);
    assert.equal(parts.changed, whole.changed);
    assert.equal(parts.maxAbs, whole.maxAbs);
    // Both lie within the tolerance of the definition (blocks fall differently in the parts).
    assert.ok(Math.abs(parts.sumD2 - whole.sumD2) <= 2 * sumTolerance(kernel.impl, whole.sumD2, 9000));
  });
});
}

describe('viewElements', () => {
  it('views aligned bytes without a copy and copies unaligned ones', () => {
    const buf = new Uint8Array(10);
    new DataView(buf.buffer).setUint16(2, 0x3f80, true);
    const aligned = viewElements('BF16', buf.subarray(2, 6));
    assert.equal(aligned.data.buffer, buf.buffer);
    assert.equal(aligned.data[0], 0x3f80);
    const odd = viewElements('F16', buf.subarray(1, 5));
    assert.notEqual(odd.data.buffer, buf.buffer);
    assert.equal(odd.data.length, 2);
    assert.throws(() => viewElements('F32', buf.subarray(0, 6)), ChatVecError);
  });
});

describe('the GPU self-test (on a stand-in backend, no GPU needed)', () => {
  /** A ComputeBackend that runs the JavaScript reference, optionally spoiling one figure. */
  const standIn = (spoil: (s: DiffSums) => void = () => {}, flip = false, gemmOff = false, lowRankOff = false): ComputeBackend => ({
    kind: 'gpu',
    name: 'stand-in',
    describe: () => ({ kind: 'gpu', name: 'stand-in' }),
    combine: async (args) => {
      combineJsKernel.run(args);
      if (flip && args.out.data.length > 3) args.out.data[3] = args.out.data[3]! + 1;
    },
    diff: async (args) => {
      const s = diffJsKernel.run(args);
      spoil(s);
      return s;
    },
    gemm: () => ({
      impl: 'wgsl',
      // float32 sums, as a GPU computes them: within the bound. gemmOff: one element 1 % off.
      mulPanel: async (M, m, n, X, l, out) => float32Product(M, m, n, X, l, out, false, gemmOff),
      mulPanelT: async (M, m, n, X, l, out) => float32Product(M, m, n, X, l, out, true, gemmOff),
      release: () => {},
    }),
    // The float64 reference rounded once (what the double-float GPU kernel gives); lowRankOff: element 0 2 % off.
    lowRank: async (args, out) => {
      lowRankChunk(args, out);
      if (lowRankOff) out[0] = out[0]! * 1.02;
    },
    dispose: async () => {},
  });

  it('passes the reference itself and fails a backend that differs in one combine element or one diff figure', async () => {
    assert.equal((await gpuSelfTest(standIn())).ok, true);
    const flipped = await gpuSelfTest(standIn(undefined, true));
    assert.equal(flipped.ok, false);
    assert.ok(flipped.differing > 0);
    assert.match(flipped.reason ?? '', /combine/);
    const counted = await gpuSelfTest(standIn((s) => (s.changed += 1)));
    assert.match(counted.reason ?? '', /diff .*changed/);
    // beyond 2⁻¹⁹ relative: refused; within it: accepted
    const off = await gpuSelfTest(standIn((s) => (s.sumD2 *= 1 + 2 ** -17)));
    assert.match(off.reason ?? '', /sumD2/);
    assert.equal((await gpuSelfTest(standIn((s) => (s.sumD2 *= 1 + 2 ** -21)))).ok, true);
    // GEMM: float32 sums pass; one element 1 % off fails
    const gemmOff = await gpuSelfTest(standIn(undefined, false, true));
    assert.equal(gemmOff.ok, false);
    assert.match(gemmOff.reason ?? '', /gemm panel: element 0/);
    // Low-rank product: the reference's bits pass (none differ); one element 2 % off fails
    const exact = await gpuSelfTest(standIn());
    assert.ok(exact.lowRank.compared > 0);
    assert.equal(exact.lowRank.differing, 0);
    const lowRankOff = await gpuSelfTest(standIn(undefined, false, false, true));
    assert.equal(lowRankOff.ok, false);
    assert.match(lowRankOff.reason ?? '', /low-rank BA rank 1: element 0/);
  });
});

/**
 * out = M·X (or Mᵀ·X) summed sequentially in float32 with X rounded to float32 (what the GPU's
 * GEMM does, written here independently); `spoil` puts element 0 off by 1 %.
 */
function float32Product(M: Float32Array, m: number, n: number, X: Float64Array, l: number, out: Float64Array, transposed: boolean, spoil: boolean): void {
  const [oRows, K] = transposed ? [n, m] : [m, n];
  for (let i = 0; i < oRows; i++) {
    for (let c = 0; c < l; c++) {
      let s = 0;
      for (let k = 0; k < K; k++) s = Math.fround(s + Math.fround((transposed ? M[k * n + i]! : M[i * n + k]!) * Math.fround(X[k * l + c]!)));
      out[i * l + c] = s;
    }
  }
  if (spoil) out[0] = out[0]! * 1.01;
}
