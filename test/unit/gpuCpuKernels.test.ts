// The CPU reference kernels (src/core/compute/cpuKernels.ts) against the independent references
// of gpuReference.ts, and the backend-neutral helpers. The GPU is held to these kernels in
// gpuBackend.test.ts, so they are checked here first, on their own.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkFusedRequest,
  emptyDiffStats,
  mergeDiffStats,
  viewElements,
  type ApplyTerm,
  type ElementArray,
  type FusedApplyRequest,
  type KernelDtype,
} from '../../src/core/compute/backend';
import { CpuBackend } from '../../src/core/compute/cpuBackend';
import { fusedApplyChunk, reduceDiffChunk } from '../../src/core/compute/cpuKernels';
import { ChatVecError } from '../../src/core/errors';
import { close, compareWithReference, decode16, fma32, float64Violations, gen, referenceDiff, referenceFused, round16, tieValues } from './gpuReference';

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

describe('cpuKernels.fusedApplyChunk', () => {
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
    const bad = (r: FusedApplyRequest) => assert.throws(() => fusedApplyChunk(r), (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument');
    bad({ ...req, terms: [] });
    bad({ ...req, terms: Array.from({ length: 9 }, () => req.terms[0]!) });
    bad({ ...req, cp: gen('F32', 99, 1) });
    bad({ ...req, out: { dtype: 'BF16', data: new Uint16Array(100) } });
    bad({ ...req, outDtype: 'F64' as KernelDtype });
    assert.equal(checkFusedRequest(req), 100);
  });
});

describe('cpuKernels.reduceDiffChunk', () => {
  it('matches the float64 definition: counts and max exactly, sums to float64 accuracy', () => {
    for (const da of DTYPES) {
      for (const db of DTYPES) {
        const huge = (DTYPES.indexOf(da) + DTYPES.indexOf(db)) % 2 === 0; // some runs with Σ = Inf
        const a = gen(da, 20011, 7 + DTYPES.indexOf(da), { huge });
        const b = gen(db, 20011, 70 + DTYPES.indexOf(db), { near: a, special: 0.02, huge });
        const got = reduceDiffChunk(a, b);
        const ref = referenceDiff(a, b);
        assert.equal(got.count, 20011);
        assert.equal(got.diffCount, ref.diffCount);
        assert.equal(got.nonFinite, ref.nonFinite);
        assert.ok(ref.nonFinite > 100 && ref.diffCount > 10000, 'the data has specials and differences');
        assert.equal(got.maxAbsDiff, ref.maxAbsDiff);
        if (!huge) assert.ok(Number.isFinite(ref.sumSqA + ref.sumSqB + ref.sumSqDiff), 'tame data has finite sums');
        assert.ok(close(got.sumSqDiff, ref.sumSqDiff, 1e-12 * ref.sumSqDiff), `Σd² ${got.sumSqDiff} vs ${ref.sumSqDiff}`);
        assert.ok(close(got.sumAbsDiff, ref.sumAbsDiff, 1e-12 * ref.sumAbsDiff));
        for (const k of ['sumSqA', 'sumSqB'] as const) assert.ok(close(got[k], ref[k], 1e-12 * ref[k]), k);
        assert.ok(close(got.sumAB, ref.sumAB, 1e-12 * ref.magAB));
      }
    }
  });

  it('takes d = float32(b − a): finite inputs whose difference overflows give Σd² = Inf', () => {
    const a: ElementArray = { dtype: 'F32', data: new Float32Array([-3e38, 1]) };
    const b: ElementArray = { dtype: 'F32', data: new Float32Array([3e38, 2]) };
    const st = reduceDiffChunk(a, b);
    assert.equal(st.nonFinite, 0);
    assert.equal(st.sumSqDiff, Infinity);
    assert.equal(st.maxAbsDiff, Infinity);
    assert.equal(st.sumSqA, Math.fround(-3e38) ** 2 + 1);
  });

  it('counts −0 = +0 as equal and NaN = NaN as different', () => {
    const a: ElementArray = { dtype: 'F32', data: new Float32Array([0, NaN, 1, Infinity, 2]) };
    const b: ElementArray = { dtype: 'F32', data: new Float32Array([-0, NaN, 1, Infinity, 3]) };
    const st = reduceDiffChunk(a, b);
    assert.deepEqual(
      { diffCount: st.diffCount, nonFinite: st.nonFinite, maxAbsDiff: st.maxAbsDiff, sumSqDiff: st.sumSqDiff, sumSqA: st.sumSqA },
      { diffCount: 2, nonFinite: 2, maxAbsDiff: 1, sumSqDiff: 1, sumSqA: 5 },
    );
  });

  it('merges chunk statistics into the whole', () => {
    const a = gen('BF16', 9000, 1);
    const b = gen('BF16', 9000, 2, { near: a });
    const whole = reduceDiffChunk(a, b);
    const parts = emptyDiffStats();
    for (let s = 0; s < 9000; s += 2500) {
      const sl = (x: ElementArray): ElementArray => ({ dtype: 'BF16', data: (x.data as Uint16Array).subarray(s, s + 2500) });
      mergeDiffStats(parts, reduceDiffChunk(sl(a), sl(b)));
    }
    assert.equal(parts.count, whole.count);
    assert.equal(parts.diffCount, whole.diffCount);
    assert.equal(parts.maxAbsDiff, whole.maxAbsDiff);
    assert.ok(Math.abs(parts.sumSqDiff - whole.sumSqDiff) <= 1e-12 * whole.sumSqDiff);
  });
});

describe('CpuBackend and viewElements', () => {
  it('runs the same kernels behind the ComputeBackend interface', async () => {
    const cpu = new CpuBackend();
    const req = request('BF16', 'BF16', 777, 9);
    const out = await cpu.fusedApply(req);
    assert.equal(compareWithReference(out, referenceFused(req)).differing, 0);
    assert.equal(cpu.describe().kind, 'cpu');
    await assert.rejects(cpu.fusedApply(req, { signal: { cancelled: true } }), (e: unknown) => e instanceof ChatVecError && e.code === 'Cancelled');
    await cpu.dispose();
  });

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
