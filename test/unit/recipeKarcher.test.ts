// karcher against a float64 reference written here from mergekit 0.1.4's karcher_merge_tensors
// (merge_methods/karcher.py), run on whole vectors as mergekit does — not from src, which runs the
// same iteration on coefficients from a Gram matrix: the output must agree to float32 rounding.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DemoTrio, generateDemoTrio } from '../../src/core/demo/generator';
import { readAll, shiftedCopy, tensorBytes, writeModel, mergeRecipeText } from './support/recipeFixtures';

let dir: string;
let trio: DemoTrio;
let models: string[];

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-karcher-'));
  trio = generateDemoTrio(path.join(dir, 'demo'), 'tiny', 33);
  models = [51, 52].map((s) => shiftedCopy(trio.base, path.join(dir, `m-${s}`), s));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const merge = (yaml: string, o?: { threads?: number; chunkElements?: number }) => mergeRecipeText(dir, yaml, o);

const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const norm = (a: Float64Array) => Math.sqrt(dot(a, a));

/** mergekit's karcher_merge_tensors on whole float64 vectors, equal alphas. */
function karcherRef(xs: Float64Array[], maxIter: number, tol: number): Float64Array {
  if (xs.length === 1) return xs[0]!;
  const alphas = xs.map(() => 1 / xs.length);
  const norms = xs.map(norm);
  const units = xs.map((x, i) => (norms[i] === 0 ? x.map(() => 0) : x.map((v) => v / norms[i]!)));
  const valid = norms.map((n, i) => (n > tol ? i : -1)).filter((i) => i >= 0);
  if (!valid.length) return xs[0]!.map(() => 0);
  const asum = valid.reduce((s, i) => s + alphas[i]!, 0);
  const w = valid.map((i) => alphas[i]! / asum);
  const us = valid.map((i) => units[i]!);
  let u = new Float64Array(xs[0]!.length);
  us.forEach((ui, a) => ui.forEach((v, j) => (u[j]! += w[a]! * v)));
  const nu = norm(u);
  u = nu < tol ? us[0]!.slice() : u.map((v) => v / nu);
  for (let iter = 0; iter < maxIter; iter++) {
    const T = new Float64Array(u.length);
    us.forEach((ui, a) => {
      const d = Math.min(1, Math.max(-1, dot(u, ui)));
      const theta = Math.acos(d);
      if (theta < tol) return;
      for (let j = 0; j < T.length; j++) T[j]! += w[a]! * (theta / Math.sin(theta)) * (ui[j]! - d * u[j]!);
    });
    const nT = norm(T);
    if (nT < tol) break;
    u = u.map((v, j) => Math.cos(nT) * v + Math.sin(nT) * (T[j]! / nT));
    const un = norm(u);
    if (un > tol) u = u.map((v) => v / un);
  }
  const s = alphas.reduce((acc, a, i) => acc + a * norms[i]!, 0);
  return u.map((v) => s * v);
}

function assertClose(name: string, got: Float64Array, ref: Float64Array, inputs: Float64Array[]): void {
  assert.equal(got.length, ref.length, name);
  let bad = 0;
  for (let i = 0; i < ref.length; i++) {
    const tol = 4e-6 * (Math.abs(ref[i]!) + inputs.reduce((a, x) => a + Math.abs(x[i]!), 0)) + 1e-12;
    if (Math.abs(got[i]! - ref[i]!) > tol && bad++ < 3) assert.fail(`${name}[${i}]: got ${got[i]}, reference ${ref[i]}`);
  }
}

describe('karcher', () => {
  for (const [maxIter, tol] of [
    [10, 1e-5],
    [1, 1e-5],
  ] as const) {
    it(`max_iter ${maxIter}: the base model counts as one more input; the Karcher mean of the directions × the mean norm`, async () => {
      const out = readAll(
        await merge(
          `merge_method: karcher
base_model: ${trio.base}
models:
${models.map((m) => `  - model: ${m}`).join('\n')}
parameters: {max_iter: ${maxIter}, tol: ${tol}}
out_dtype: float32
`,
          { chunkElements: 1234 },
        ),
      );
      const [M0, M1, B] = [readAll(models[0]!), readAll(models[1]!), readAll(trio.base)];
      for (const [name, b] of B) {
        const xs = [M0.get(name)!.values, M1.get(name)!.values, b.values];
        assertClose(name, out.get(name)!.values, karcherRef(xs, maxIter, tol), xs);
      }
    });
  }

  it('a zero tensor counts in the mean norm but not in the mean direction; bytes independent of threads and chunk sizes', async () => {
    const n = 300;
    const a = Array.from({ length: n }, (_, i) => Math.sin(i));
    const b = Array.from({ length: n }, (_, i) => Math.cos(i * 0.5) * 2);
    const files = [a, b, a.map(() => 0)].map((v, k) => writeModel(path.join(dir, `z-${k}`), [{ name: 'model.norm.weight', shape: [n], values: v }]));
    const yaml = `merge_method: karcher\nmodels:\n${files.map((f) => `  - model: ${f}`).join('\n')}\nout_dtype: float32\n`;
    const x = await merge(yaml, { threads: 1, chunkElements: 37 });
    const y = await merge(yaml, { threads: 3 });
    assert.deepEqual(tensorBytes(x), tensorBytes(y));
    const xs = [Float64Array.from(a, (v) => Math.fround(v)), Float64Array.from(b, (v) => Math.fround(v)), new Float64Array(n)];
    assertClose('norm', readAll(x).get('model.norm.weight')!.values, karcherRef(xs, 10, 1e-5), xs);
  });
});
