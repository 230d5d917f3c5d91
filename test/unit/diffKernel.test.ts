/**
 * The diff worker kernel in-process, both implementations (WebAssembly SIMD and plain JavaScript),
 * on blocks with NaN/±Inf, ±0, equal values and a ragged tail, against the float64 reference.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { closeAllHandles } from '../../src/core/io/handleCache';
import type { FloatDtype } from '../../src/core/safetensors/dtype';
import { readSafetensorsHeader } from '../../src/core/safetensors/reader';
import { statsFromSums } from '../../src/core/stats/aggregate';
import { runDiffChunk } from '../../src/core/stats/diffKernel';
import { useCpuKernels } from '../../src/core/compute/kernels/cpu';
import { DIFF_ABSOLUTE_PER_ELEMENT, DIFF_RELATIVE_BOUND } from '../../src/core/compute/diffBound';
import { RefSums, assertStatsClose, randomValues, readAllTensors, tempDir, writeHandCheckpoint } from './support/diffReference';

const root = tempDir('chatvec-diffkernel-');
after(() => {
  closeAllHandles();
  fs.rmSync(root, { recursive: true, force: true });
});

const N = 3 * 4096 + 13; // three full blocks and a tail that is not a multiple of 8

/** A and B values: mostly small changes, some equal, ±0 pairs, and non-finite values in blocks 1, 2 and the tail. */
function values(): { a: number[]; b: number[] } {
  const a = randomValues(N, 11, 0.05);
  const noise = randomValues(N, 12, 1e-3);
  const b = a.map((v, i) => (i % 7 === 0 ? v : v + noise[i]!));
  a[20] = 0;
  b[20] = -0; // equal values with different bits: unchanged
  a[5000] = NaN;
  b[9000] = Infinity;
  a[9001] = -Infinity;
  b[9001] = -Infinity;
  b[N - 2] = NaN;
  return { a, b };
}

let fileNo = 0;
function tensorFile(dtype: FloatDtype, vals: number[]): { file: string; position: number; values: Float64Array } {
  const dir = path.join(root, `t${fileNo++}`);
  writeHandCheckpoint(dir, [{ name: 'x', dtype, shape: [vals.length], values: vals }]);
  const file = path.join(dir, 'model.safetensors');
  const info = readSafetensorsHeader(file);
  return { file, position: info.dataStart + info.tensors[0]!.begin, values: readAllTensors(dir).get('x')!.values! };
}

for (const kernel of ['simd', 'js'] as const) {
  describe(`diff kernel (${kernel})`, () => {
    const { a, b } = values();
    const cases: [FloatDtype, FloatDtype][] = [
      ['BF16', 'BF16'],
      ['F32', 'BF16'],
      ['F16', 'F32'],
      ['F32', 'F32'],
      ['F64', 'F16'],
    ];
    for (const [da, db] of cases) {
      it(`Δ = B − A with ${da} A and ${db} B matches the reference`, () => {
        assert.equal(useCpuKernels(kernel), kernel);
        const ta = tensorFile(da, a);
        const tb = tensorFile(db, b);
        for (const [first, count] of [[0, N], [8, N - 8], [3, 4096 + 5]] as const) {
          const r = runDiffChunk({
            kind: 'diffChunk',
            count,
            mode: 'ab',
            a: { file: ta.file, position: ta.position + first * bytesOf(da), dtype: da },
            b: { file: tb.file, position: tb.position + first * bytesOf(db), dtype: db },
          });
          const ref = new RefSums().addPairs(ta.values.subarray(first), tb.values.subarray(first), count);
          assertStatsClose(statsFromSums(r), ref.stats(), `${da}/${db} [${first}, +${count})`);
          assert.equal(r.changed, ref.changed);
          assert.equal(r.nonFinite, ref.nonFinite);
          assert.equal(r.maxAbs, ref.maxAbs);
          assert.equal(r.bytes, count * (bytesOf(da) + bytesOf(db)));
        }
      });
    }

    it('1 − cosine of nearly equal tensors is accurate relative to itself, not only to 1', () => {
      // B = A·(1 + ~1e-4): 1 − cosine ≈ 1e-9, below float32's resolution of a summed Σab
      // (compute/diffBound.ts: the SIMD kernel takes Σab from Σa², Σb² and Σd² instead).
      useCpuKernels(kernel);
      const x = randomValues(N, 21, 0.05);
      const noise = randomValues(N, 22, 1e-4);
      const ta = tensorFile('F32', x);
      const tb = tensorFile('F32', x.map((v, i) => v * (1 + noise[i]!)));
      const r = statsFromSums(runDiffChunk({ kind: 'diffChunk', count: N, mode: 'ab', a: { file: ta.file, position: ta.position, dtype: 'F32' }, b: { file: tb.file, position: tb.position, dtype: 'F32' } }));
      const want = 1 - new RefSums().addPairs(ta.values, tb.values, N).stats().cosine;
      assert.ok(want > 1e-10 && want < 1e-8, `1 − cosine ${want}`);
      assert.ok(Math.abs(1 - r.cosine - want) <= 1e-3 * want, `1 − cosine ${1 - r.cosine} vs ${want}`);
    });

    it('a stored Δ with and without its base matches the reference', () => {
      useCpuKernels(kernel);
      const base = tensorFile('BF16', a);
      const delta = tensorFile('F32', b.map((v, i) => v - a[i]!));
      const withBase = runDiffChunk({ kind: 'diffChunk', count: N, mode: 'delta', a: { file: base.file, position: base.position, dtype: 'BF16' }, b: { file: delta.file, position: delta.position, dtype: 'F32' } });
      const ref = new RefSums().addPairs(base.values, delta.values, N, true);
      assertStatsClose(statsFromSums(withBase), ref.stats(), 'delta with base');
      assert.equal(withBase.nonFinite, ref.nonFinite);
      assert.equal(withBase.changed, ref.changed);
      const alone = runDiffChunk({ kind: 'diffChunk', count: N, mode: 'delta', a: null, b: { file: delta.file, position: delta.position, dtype: 'F32' } });
      const refAlone = new RefSums().addPairs(new Float64Array(N), delta.values, N, true);
      // float64 throughout in JavaScript; float32 terms and block sums with SIMD (compute/diffBound.ts)
      const tol = kernel === 'js' ? 1e-12 * refAlone.d2.value : DIFF_RELATIVE_BOUND * refAlone.d2.value + DIFF_ABSOLUTE_PER_ELEMENT * N;
      assert.ok(Math.abs(alone.sumD2 - refAlone.d2.value) <= tol, `Σd² ${alone.sumD2} vs ${refAlone.d2.value}`);
      assert.equal(alone.nonFinite, refAlone.nonFinite);
      assert.equal(alone.changed, refAlone.changed);
    });
  });
}

function bytesOf(d: FloatDtype): number {
  return { F16: 2, BF16: 2, F32: 4, F64: 8 }[d];
}
