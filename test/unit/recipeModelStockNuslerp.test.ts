// model_stock and nuslerp against float64 references written here from mergekit 0.1.4's
// merge_methods/model_stock.py and nuslerp.py, not from src: whole-tensor and per-row angles
// (rows: the last dimension, a 1-D tensor is one row), chunks that split rows, bytes independent of
// threads and chunk sizes, and the recipe rules (model counts, the unsupported column mode).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DemoTrio, generateDemoTrio } from '../../src/core/demo/generator';
import { recipeDiagnostics } from '../../src/core/recipes/diagnostics';
import { readAll, shiftedCopy, tensorBytes, mergeRecipeText } from './support/recipeFixtures';

let dir: string;
let trio: DemoTrio;
let models: string[];

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-gram-'));
  trio = generateDemoTrio(path.join(dir, 'demo'), 'tiny', 21);
  models = [41, 42, 43].map((s) => shiftedCopy(trio.base, path.join(dir, `m-${s}`), s));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const merge = (yaml: string, o?: { threads?: number; chunkElements?: number }) => mergeRecipeText(dir, yaml, o);

/** Rows [start, end) of a tensor: the last dimension, or the whole tensor. */
function groups(shape: readonly number[], n: number, whole: boolean): [number, number][] {
  const c = whole || shape.length < 2 ? n : shape[shape.length - 1]!;
  const out: [number, number][] = [];
  for (let s = 0; s < n; s += c) out.push([s, s + c]);
  return out;
}

const dot = (a: Float64Array, b: Float64Array, s: number, e: number) => {
  let x = 0;
  for (let i = s; i < e; i++) x += a[i]! * b[i]!;
  return x;
};

/** mergekit's ModelStockMergeTask.execute in float64. */
function modelStockRef(w0: Float64Array, ws: Float64Array[], shape: readonly number[], filterWise: boolean): Float64Array {
  const n = w0.length;
  const off = ws.map((w) => w.map((x, i) => Math.fround(x - w0[i]!)));
  const out = new Float64Array(n);
  for (const [s, e] of groups(shape, n, !filterWise)) {
    const cos: number[] = [];
    for (let i = 0; i < off.length; i++) {
      for (let j = i + 1; j < off.length; j++) {
        const np = Math.sqrt(dot(off[i]!, off[i]!, s, e)) * Math.sqrt(dot(off[j]!, off[j]!, s, e));
        cos.push(Math.min(1, Math.max(-1, dot(off[i]!, off[j]!, s, e) / Math.max(np, 1e-6))));
      }
    }
    const c = cos.reduce((a, b) => a + b, 0) / cos.length;
    const N = ws.length;
    const t = (N * c) / (1 + (N - 1) * c);
    for (let i = s; i < e; i++) out[i] = t * (ws.reduce((a, w) => a + w[i]!, 0) / N) + (1 - t) * w0[i]!;
  }
  return out;
}

/** mergekit's nuslerp (with a base: base + nuslerp of the task vectors) in float64. */
function nuslerpRef(base: Float64Array | null, m0: Float64Array, m1: Float64Array, w: [number, number], shape: readonly number[], flatten: boolean): Float64Array {
  const t = Math.abs(w[0] + w[1]) < 1e-6 ? 0.5 : w[1] / (w[0] + w[1]);
  const v0 = base ? m0.map((x, i) => Math.fround(x - base[i]!)) : m0;
  const v1 = base ? m1.map((x, i) => Math.fround(x - base[i]!)) : m1;
  const out = new Float64Array(m0.length);
  for (const [s, e] of groups(shape, m0.length, flatten)) {
    const n0 = Math.max(Math.sqrt(dot(v0, v0, s, e)), 1e-7);
    const n1 = Math.max(Math.sqrt(dot(v1, v1, s, e)), 1e-7);
    const theta = Math.acos(Math.min(1, Math.max(-1, dot(v0, v1, s, e) / (n0 * n1))));
    const sin = Math.sin(theta);
    for (let i = s; i < e; i++) {
      const r = Math.abs(sin) < 1e-8 ? (1 - t) * v0[i]! + t * v1[i]! : (Math.sin((1 - t) * theta) * v0[i]! + Math.sin(t * theta) * v1[i]!) / sin;
      out[i] = (base ? base[i]! : 0) + r;
    }
  }
  return out;
}

function assertClose(name: string, got: Float64Array, ref: Float64Array, inputs: Float64Array[]): void {
  assert.equal(got.length, ref.length, name);
  let bad = 0;
  for (let i = 0; i < ref.length; i++) {
    const tol = 2e-6 * (Math.abs(ref[i]!) + inputs.reduce((a, x) => a + Math.abs(x[i]!), 0)) + 1e-12;
    if (Math.abs(got[i]! - ref[i]!) > tol && bad++ < 3) assert.fail(`${name}[${i}]: got ${got[i]}, reference ${ref[i]}`);
  }
}

describe('model_stock', () => {
  for (const filterWise of [false, true]) {
    it(`filter_wise ${filterWise}: t = N·cos/(1 + (N − 1)·cos) from the mean pairwise angle of the offsets${filterWise ? ', per row' : ''}`, async () => {
      const out = readAll(
        await merge(
          `merge_method: model_stock
base_model: ${trio.base}
models:
${models.map((m) => `  - model: ${m}`).join('\n')}
parameters: {filter_wise: ${filterWise}}
out_dtype: float32
`,
          { chunkElements: 1000 },
        ),
      );
      const [B, ...M] = [readAll(trio.base), ...models.map((m) => readAll(m))];
      let moved = 0;
      for (const [name, b] of B) {
        const ws = M.map((x) => x.get(name)!.values);
        const ref = modelStockRef(b.values, ws, b.shape, filterWise);
        assertClose(name, out.get(name)!.values, ref, [b.values, ...ws]);
        moved += Math.abs(ref[0]! - b.values[0]!);
      }
      assert.ok(moved > 0.01, 'the merge moves away from the base (t is not 0)');
    });
  }
});

describe('nuslerp', () => {
  it('with a base, flattened (default): base + slerp of the task vectors at t = w₁/(w₀ + w₁)', async () => {
    const out = readAll(
      await merge(`merge_method: nuslerp
base_model: ${trio.base}
models:
  - model: ${models[0]}
    parameters: {weight: 0.3}
  - model: ${models[1]}
    parameters: {weight: 0.9}
out_dtype: float32
`),
    );
    const [B, A, C] = [readAll(trio.base), readAll(models[0]!), readAll(models[1]!)];
    for (const [name, b] of B) {
      const [a, c] = [A.get(name)!.values, C.get(name)!.values];
      assertClose(name, out.get(name)!.values, nuslerpRef(b.values, a, c, [0.3, 0.9], b.shape, true), [b.values, a, c]);
    }
  });

  it('without a base, per row (nuslerp_flatten: false), chunks splitting rows; bytes independent of threads and chunk sizes', async () => {
    const yaml = `merge_method: nuslerp
models:
  - model: ${models[1]}
    parameters: {weight: 1}
  - model: ${models[2]}
    parameters: {weight: [1, 3]}
parameters: {nuslerp_flatten: false}
out_dtype: float32
`;
    const dirA = await merge(yaml, { chunkElements: 777, threads: 1 });
    const dirB = await merge(yaml, { chunkElements: 100000, threads: 3 });
    assert.deepEqual(tensorBytes(dirA), tensorBytes(dirB));
    const out = readAll(dirA);
    const [A, C] = [readAll(models[1]!), readAll(models[2]!)];
    for (const [name, a] of A) {
      const l = /layers\.(\d+)\./.exec(name);
      const w1 = 1 + 2 * (l ? Number(l[1]) / 3 : 0);
      const c = C.get(name)!.values;
      assertClose(name, out.get(name)!.values, nuslerpRef(null, a.values, c, [1, w1], a.shape, false), [a.values, c]);
    }
  });

  it('per column (nuslerp_row_wise: true, nuslerp_flatten: false) with a base: each dim-0 vector on its own; bytes independent of threads and chunks', async () => {
    const yaml = `merge_method: nuslerp
base_model: ${trio.base}
models:
  - model: ${models[0]}
    parameters: {weight: 0.3}
  - model: ${models[1]}
    parameters: {weight: 0.9}
parameters: {nuslerp_row_wise: true, nuslerp_flatten: false}
out_dtype: float32
`;
    const dirA = await merge(yaml, { chunkElements: 333, threads: 1 });
    const dirB = await merge(yaml, { chunkElements: 100000, threads: 3 });
    assert.deepEqual(tensorBytes(dirA), tensorBytes(dirB));
    const out = readAll(dirA);
    const [B, A, C] = [readAll(trio.base), readAll(models[0]!), readAll(models[1]!)];
    const t = 0.9 / 1.2;
    let columnsChecked = 0;
    for (const [name, b] of B) {
      const [a, c] = [A.get(name)!.values, C.get(name)!.values];
      if (b.shape.length < 2) {
        // A 1-D tensor is one vector (mergekit's transpose of a 1-D tensor changes nothing).
        assertClose(name, out.get(name)!.values, nuslerpRef(b.values, a, c, [0.3, 0.9], b.shape, true), [b.values, a, c]);
        continue;
      }
      // mergekit transposes dim 0 to the end: the vectors are x[:, j] over the other dims flattened.
      const stride = b.values.length / b.shape[0]!;
      const want = new Float64Array(b.values.length);
      for (let j = 0; j < stride; j++) {
        const idx = Array.from({ length: b.shape[0]! }, (_, r) => r * stride + j);
        const v0 = idx.map((i) => Math.fround(a[i]! - b.values[i]!));
        const v1 = idx.map((i) => Math.fround(c[i]! - b.values[i]!));
        const d = (x: number[], y: number[]) => x.reduce((s2, xv, k) => s2 + xv * y[k]!, 0);
        const theta = Math.acos(Math.min(1, Math.max(-1, d(v0, v1) / (Math.max(Math.sqrt(d(v0, v0)), 1e-7) * Math.max(Math.sqrt(d(v1, v1)), 1e-7)))));
        const sin = Math.sin(theta);
        idx.forEach((i, k) => {
          const r = Math.abs(sin) < 1e-8 ? (1 - t) * v0[k]! + t * v1[k]! : (Math.sin((1 - t) * theta) * v0[k]! + Math.sin(t * theta) * v1[k]!) / sin;
          want[i] = b.values[i]! + r;
        });
        columnsChecked++;
      }
      assertClose(name, out.get(name)!.values, want, [b.values, a, c]);
    }
    assert.ok(columnsChecked > 0);
  });

  it('recipe rules: model counts as mergekit requires them', () => {
    const errors = (yaml: string) => recipeDiagnostics(yaml, { baseDir: dir }).filter((d) => d.severity === 'error').map((d) => d.message);
    assert.match(errors(`merge_method: model_stock\nbase_model: ${trio.base}\nmodels:\n  - model: ${models[0]}\n`).join('\n'), /model_stock needs the base model and at least two others \(got 1\)/);
    assert.match(errors(`merge_method: nuslerp\nmodels:\n${models.map((m) => `  - model: ${m}\n    parameters: {weight: 1}`).join('\n')}\n`).join('\n'), /nuslerp interpolates exactly two models .*got 3/);
    assert.match(errors(`merge_method: nuslerp\nbase_model: ${models[0]}\nmodels:\n${models.slice(0, 2).map((m) => `  - model: ${m}\n    parameters: {weight: 1}`).join('\n')}\n`).join('\n'), /base model cannot be one of the two models/);
    assert.deepEqual(errors(`merge_method: nuslerp\nmodels:\n${models.slice(0, 2).map((m) => `  - model: ${m}\n    parameters: {weight: 1}`).join('\n')}\nparameters: {nuslerp_row_wise: true}\n`), []);
  });
});
