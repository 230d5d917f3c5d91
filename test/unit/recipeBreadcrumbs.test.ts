// breadcrumbs and breadcrumbs_ties against float64 references written here from mergekit 0.1.4's
// sparsify.py (`magnitude_outliers`) and generalized_task_arithmetic.py, not from src: the kept
// ranks by sorting, the n_top = 0 case (mergekit zeroes the task vector; chatvec keeps the top),
// equal magnitudes across chunk edges, rescale, and bytes independent of threads and chunk sizes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DemoTrio, generateDemoTrio } from '../../src/core/demo/generator';
import { assertClose, gtaReference as reference } from './support/gtaReference';
import { perturbedCopy, readAll, tensorBytes, writeModel, mergeRecipeText } from './support/recipeFixtures';

const f = Math.fround;
let dir: string;
let trio: DemoTrio;
let cpSame: string;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-breadcrumbs-'));
  trio = generateDemoTrio(path.join(dir, 'demo'), 'tiny', 5);
  cpSame = perturbedCopy(trio.base, path.join(dir, 'cp-same'), 17);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const merge = (yaml: string, o?: { threads?: number; chunkElements?: number }) => mergeRecipeText(dir, yaml, o);

const depth = (name: string) => {
  const m = /layers\.(\d+)\./.exec(name);
  return m ? Number(m[1]) / 3 : 0;
};

/**
 * mergekit's magnitude_outliers as a sort: ascending |τ| order, keep indices[n_bot : n − n_top]
 * (n_top = int(gamma·n), cut back when density leaves no room). Equal magnitudes: the higher index
 * sorts lower (so the lower index is kept first, as chatvec documents). With n_top = 0 mergekit's
 * `[n_bot:-0]` is empty; chatvec keeps [n_bot : n) — this reference follows chatvec there.
 */
function breadcrumbsKeep(density: number, gamma: number, rescale: boolean) {
  return (tau: Float64Array): Float64Array => {
    const n = tau.length;
    if (density >= 1) return tau;
    const target = Math.floor(density * n);
    let nTop = Math.floor(gamma * n);
    let nBot = n - target - nTop;
    if (nBot < 0) {
      nTop += nBot;
      nBot = 0;
    }
    const asc = Array.from(tau.keys()).sort((a, b) => Math.abs(tau[a]!) - Math.abs(tau[b]!) || b - a);
    const out = new Float64Array(n);
    for (const i of asc.slice(nBot, n - nTop)) out[i] = tau[i]!;
    if (rescale) {
      const all = tau.reduce((s, x) => s + Math.abs(x), 0);
      const kept = out.reduce((s, x) => s + Math.abs(x), 0);
      if (all >= 1e-7 && kept >= 1e-7) for (let i = 0; i < n; i++) out[i] = out[i]! * (all / kept);
    }
    return out;
  };
}

describe('breadcrumbs', () => {
  it('breadcrumbs: drops the gamma outliers and the smallest, sums (small tensors: no outliers dropped)', async () => {
    const out = readAll(
      await merge(
        `merge_method: breadcrumbs
base_model: ${trio.base}
models:
  - model: ${trio.chat}
    parameters: {weight: 0.7, density: 0.6, gamma: 0.1}
  - model: ${cpSame}
    parameters: {weight: 0.5, density: [0.3, 0.9]}
out_dtype: float32
`,
        { chunkElements: 3000 },
      ),
    );
    const [B, C, P] = [readAll(trio.base), readAll(trio.chat), readAll(cpSame)];
    for (const [name, b] of B) {
      const n = b.values.length;
      const r = reference(b.values, [C.get(name)!.values.subarray(0, n), P.get(name)!.values], [0.7, 0.5], [breadcrumbsKeep(0.6, 0.1, false), breadcrumbsKeep((1 - depth(name)) * 0.3 + depth(name) * 0.9, 0.01, false)], {
        consensus: false,
        normalize: false,
        lambda: 1,
      });
      assertClose(name, out.get(name)!.values, r);
    }
  });

  it('breadcrumbs_ties: sign election, gamma gradient, rescale, normalize, λ', async () => {
    const out = readAll(
      await merge(
        `merge_method: breadcrumbs_ties
base_model: ${trio.base}
models:
  - model: ${trio.chat}
    parameters: {weight: 0.6, density: 0.5, gamma: [0.05, 0.3]}
  - model: ${cpSame}
    parameters: {weight: 0.4, density: 0.8, gamma: 0.25}
parameters: {rescale: true, normalize: true, lambda: 0.8}
out_dtype: float32
`,
        { chunkElements: 2500 },
      ),
    );
    const [B, C, P] = [readAll(trio.base), readAll(trio.chat), readAll(cpSame)];
    for (const [name, b] of B) {
      const n = b.values.length;
      const g = 0.05 + depth(name) * 0.25;
      const r = reference(b.values, [C.get(name)!.values.subarray(0, n), P.get(name)!.values], [0.6, 0.4], [breadcrumbsKeep(0.5, g, true), breadcrumbsKeep(0.8, 0.25, true)], {
        consensus: true,
        normalize: true,
        lambda: 0.8,
      });
      assertClose(name, out.get(name)!.values, r);
    }
  });

  it('equal magnitudes at both cuts go to the lower index, across chunk edges, whatever the threads and chunk size', async () => {
    // |τ| takes few distinct values, so both cuts fall among ties; chunks of 7 split them.
    const n = 300;
    const base = Array.from({ length: n }, (_, i) => (i % 5) * 0.25);
    const other = base.map((x, i) => x + [1, -1, 0.5, -0.5, 2, -2][(i * 7) % 6]! * [1, 1, 0.25][i % 3]!);
    const m0 = writeModel(path.join(dir, 'tie-base'), [{ name: 'model.norm.weight', shape: [n], values: base }]);
    const m1 = writeModel(path.join(dir, 'tie-other'), [{ name: 'model.norm.weight', shape: [n], values: other }]);
    const recipe = `merge_method: breadcrumbs
base_model: ${m0}
models:
  - model: ${m1}
    parameters: {weight: 1, density: 0.35, gamma: 0.13}
out_dtype: float32
`;
    const a = await merge(recipe, { chunkElements: 7, threads: 1 });
    const b = await merge(recipe, { chunkElements: 1000, threads: 3 });
    const r = reference(Float64Array.from(base), [Float64Array.from(other)], [1], [breadcrumbsKeep(0.35, 0.13, false)], { consensus: false, normalize: false, lambda: 1 });
    const got = readAll(a).get('model.norm.weight')!.values;
    assert.deepEqual([...got], [...r.ref], 'exact: every value is base + τ or base');
    assert.deepEqual(tensorBytes(a), tensorBytes(b));
  });

  it('gamma 0 keeps the density·n largest (mergekit would zero the task vector); density 1 keeps all', async () => {
    const n = 50;
    const base = Array.from({ length: n }, (_, i) => Math.sin(i));
    const other = base.map((x, i) => x + Math.cos(3 * i));
    const m0 = writeModel(path.join(dir, 'g0-base'), [{ name: 'model.norm.weight', shape: [n], values: base }]);
    const m1 = writeModel(path.join(dir, 'g0-other'), [{ name: 'model.norm.weight', shape: [n], values: other }]);
    for (const [density, gamma] of [
      [0.4, 0],
      [1, 0.2],
    ] as const) {
      const got = readAll(
        await merge(`merge_method: breadcrumbs
base_model: ${m0}
models:
  - model: ${m1}
    parameters: {weight: 1, density: ${density}, gamma: ${gamma}}
out_dtype: float32
`),
      ).get('model.norm.weight')!.values;
      const r = reference(Float64Array.from(base), [Float64Array.from(other)], [1], [breadcrumbsKeep(density, gamma, false)], { consensus: false, normalize: false, lambda: 1 });
      assertClose(`density ${density} gamma ${gamma}`, got, r);
      const changed = got.filter((x, i) => x !== f(base[i]!)).length;
      assert.equal(changed, density === 1 ? n : Math.floor(density * n), 'kept count');
    }
  });
});
