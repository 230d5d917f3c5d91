// sce against a float64 reference written here from mergekit 0.1.4's merge_methods/sce.py, not
// from src: variance across task vectors, top-k by sorting (k = int(nonzero·select_topk)),
// weights from mean squares, sign election on the unweighted sum, division clamped at 1e-6;
// bytes independent of threads and chunk sizes; select_topk 0 and a base-only recipe.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DemoTrio, generateDemoTrio } from '../../src/core/demo/generator';
import { perturbedCopy, readAll, tensorBytes, writeModel, mergeRecipeText } from './support/recipeFixtures';

const f = Math.fround;
let dir: string;
let trio: DemoTrio;
let cps: string[];

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-sce-'));
  trio = generateDemoTrio(path.join(dir, 'demo'), 'tiny', 13);
  cps = [31, 32].map((s) => perturbedCopy(trio.base, path.join(dir, `cp-${s}`), s));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const merge = (yaml: string, o?: { threads?: number; chunkElements?: number }) => mergeRecipeText(dir, yaml, o);

/** mergekit's sce_merge in float64 (the variance rounded to float32 for ranking; equal variances: lower index first). */
function sceReference(base: Float64Array, models: Float64Array[], selectTopk: number): { ref: Float64Array; scale: Float64Array; fragile: Uint8Array } {
  const n = base.length;
  const m = models.length;
  const tvs = models.map((x) => Float64Array.from(x, (v, i) => f(v - base[i]!)));
  if (selectTopk < 1) {
    const variance = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const mean = tvs.reduce((a, t) => a + t[i]!, 0) / m;
      variance[i] = f(tvs.reduce((a, t) => a + (t[i]! - mean) ** 2, 0) / m);
    }
    const nonzero = variance.filter((v) => v !== 0).length;
    const k = selectTopk <= 0 ? 0 : Math.floor(nonzero * selectTopk);
    const keep = new Uint8Array(n);
    for (const i of Array.from(variance.keys()).sort((a, b) => variance[b]! - variance[a]! || a - b).slice(0, k)) keep[i] = 1;
    for (const t of tvs) for (let i = 0; i < n; i++) if (!keep[i]) t[i] = 0;
  }
  const means = tvs.map((t) => t.reduce((a, x) => a + x * x, 0) / n);
  const total = means.reduce((a, x) => a + x, 0);
  const w = Math.abs(total) < 1e-6 ? means.map(() => 1 / m) : means.map((x) => x / total);
  const ref = new Float64Array(n);
  const scale = new Float64Array(n);
  const fragile = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const sum = tvs.reduce((a, t) => a + t[i]!, 0);
    const mass = tvs.reduce((a, t) => a + Math.abs(t[i]!), 0);
    const maj = sum >= 0 ? 1 : -1;
    let merged = 0;
    let d = 0;
    tvs.forEach((t, k) => {
      if (Math.sign(t[i]!) === maj) {
        merged += t[i]! * w[k]!;
        d += w[k]!;
      }
    });
    ref[i] = base[i]! + merged / Math.max(d, 1e-6);
    scale[i] = Math.abs(base[i]!) + 4 * mass;
    fragile[i] = mass > 0 && Math.abs(sum) <= 1e-5 * mass ? 1 : 0; // a vote a rounding may flip
  }
  return { ref, scale, fragile };
}

function assertClose(name: string, got: Float64Array, r: ReturnType<typeof sceReference>): void {
  assert.equal(got.length, r.ref.length, name);
  let bad = 0;
  for (let i = 0; i < got.length; i++) {
    const tol = 1e-6 * (Math.abs(r.ref[i]!) + r.scale[i]!) + 1e-12;
    if (Math.abs(got[i]! - r.ref[i]!) > tol && !r.fragile[i] && bad++ < 3) assert.fail(`${name}[${i}]: got ${got[i]}, reference ${r.ref[i]}`);
  }
}

const recipe = (topk: number | string, models: string[] = [trio.chat, ...cps]) => `merge_method: sce
base_model: ${trio.base}
models:
${models.map((m) => `  - model: ${m}`).join('\n')}
parameters:
  select_topk: ${topk}
out_dtype: float32
`;

describe('sce', () => {
  for (const topk of [0.3, 1]) {
    it(`select_topk ${topk}: ${topk < 1 ? 'variance top-k, ' : ''}mean-square weights, sign election, clamped division`, async () => {
      const out = readAll(await merge(recipe(topk), { chunkElements: 2999 }));
      const [B, C, P, Q] = [readAll(trio.base), readAll(trio.chat), readAll(cps[0]!), readAll(cps[1]!)];
      for (const [name, b] of B) {
        const n = b.values.length;
        const r = sceReference(b.values, [C.get(name)!.values.subarray(0, n), P.get(name)!.values, Q.get(name)!.values], topk);
        assertClose(name, out.get(name)!.values, r);
      }
    });
  }

  it('select_topk by filter, bytes independent of threads and chunk sizes', async () => {
    const yaml = recipe('[{filter: mlp, value: 0.5}, {value: 0.2}]');
    const a = await merge(yaml, { threads: 1, chunkElements: 97 });
    const b = await merge(yaml, { threads: 3, chunkElements: 100000 });
    assert.deepEqual(tensorBytes(a), tensorBytes(b));
    const out = readAll(a);
    const [B, C, P, Q] = [readAll(trio.base), readAll(trio.chat), readAll(cps[0]!), readAll(cps[1]!)];
    for (const name of ['model.layers.1.mlp.down_proj.weight', 'model.layers.2.self_attn.o_proj.weight', 'model.norm.weight']) {
      const bv = B.get(name)!.values;
      assertClose(name, out.get(name)!.values, sceReference(bv, [C.get(name)!.values, P.get(name)!.values, Q.get(name)!.values], name.includes('mlp') ? 0.5 : 0.2));
    }
  });

  it('equal variances at the cut go to the lower index; select_topk 0 gives the base', async () => {
    const n = 40;
    const base = Array.from({ length: n }, () => 0);
    const m0 = writeModel(path.join(dir, 'eq-base'), [{ name: 'model.norm.weight', shape: [n], values: base }]);
    const m1 = writeModel(path.join(dir, 'eq-a'), [{ name: 'model.norm.weight', shape: [n], values: base.map((_, i) => [1, 0.5, 2, 0][i % 4]!) }]);
    const m2 = writeModel(path.join(dir, 'eq-b'), [{ name: 'model.norm.weight', shape: [n], values: base.map((_, i) => [-1, 0.5, 0, 0][i % 4]!) }]);
    const eq = (topk: number) => `merge_method: sce
base_model: ${m0}
models:
  - model: ${m1}
  - model: ${m2}
parameters: {select_topk: ${topk}}
out_dtype: float32
`;
    const got = readAll(await merge(eq(0.45), { chunkElements: 3 })).get('model.norm.weight')!.values;
    const r = sceReference(Float64Array.from(base), [Float64Array.from(base, (_, i) => [1, 0.5, 2, 0][i % 4]!), Float64Array.from(base, (_, i) => [-1, 0.5, 0, 0][i % 4]!)], 0.45);
    assertClose('ties', got, r);
    assert.ok(got.some((x) => x !== 0), 'something is kept');
    const zero = readAll(await merge(eq(0))).get('model.norm.weight')!.values;
    assert.deepEqual([...zero], base);
  });
});
