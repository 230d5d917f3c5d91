// della and della_linear against float64 references written here from mergekit 0.1.4's
// sparsify.py (`della_magprune`) and generalized_task_arithmetic.py, not from src: keep
// probabilities from each element's magnitude rank within its row (rows found by sorting here),
// the documented seeded stream, L1 rescale, sign election; chunks that split rows; bytes
// independent of threads and chunk sizes; the density ± epsilon rule.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DemoTrio, generateDemoTrio } from '../../src/core/demo/generator';
import { hashString, uniformRange } from '../../src/core/numeric/random';
import { recipeDiagnostics } from '../../src/core/recipes/diagnostics';
import { assertClose, gtaReference } from './support/gtaReference';
import { perturbedCopy, readAll, tensorBytes, mergeRecipeText } from './support/recipeFixtures';

let dir: string;
let trio: DemoTrio;
let cpSame: string;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-della-'));
  trio = generateDemoTrio(path.join(dir, 'demo'), 'tiny', 9);
  cpSame = perturbedCopy(trio.base, path.join(dir, 'cp-same'), 23);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const merge = (yaml: string, o?: { threads?: number; chunkElements?: number }) => mergeRecipeText(dir, yaml, o);

const depth = (name: string) => {
  const m = /layers\.(\d+)\./.exec(name);
  return m ? Number(m[1]) / 3 : 0;
};

/**
 * mergekit's della_magprune: per row (last dimension; 1-D: one row), ranks by |τ| ascending
 * (equal magnitudes: lower index first, as chatvec documents), p = density − ε + 2ε·rank/(C − 1),
 * keep where the documented stream's u < 2p − 1; L1 rescale when asked.
 */
function dellaKeep(seed: number, inputIndex: number, name: string, shape: readonly number[], density: number, epsilon: number, rescale: boolean) {
  return (tau: Float64Array): Float64Array => {
    if (density >= 1) return tau;
    const n = tau.length;
    const c = shape.length >= 2 ? shape[shape.length - 1]! : n;
    const u = new Float64Array(n);
    uniformRange(hashString(`della:${seed}:${inputIndex}:${name}`), 0, n, u);
    const out = new Float64Array(n);
    for (let row = 0; row < n; row += c) {
      const order = Array.from({ length: c }, (_, i) => row + i).sort((a, b) => Math.abs(tau[a]!) - Math.abs(tau[b]!) || a - b);
      order.forEach((g, rank) => {
        const p = density - epsilon + (c > 1 ? rank / (c - 1) : 0) * 2 * epsilon;
        if (u[g]! < 2 * p - 1) out[g] = tau[g]!;
      });
    }
    if (rescale) {
      const all = tau.reduce((s, x) => s + Math.abs(x), 0);
      const kept = out.reduce((s, x) => s + Math.abs(x), 0);
      if (all >= 1e-7 && kept >= 1e-7) for (let i = 0; i < n; i++) out[i] = out[i]! * (all / kept);
    }
    return out;
  };
}

describe('della', () => {
  it('della: ranked keep probabilities per row, L1 rescale, sign election, normalize (defaults), density gradient', async () => {
    const out = readAll(
      await merge(
        `merge_method: della
base_model: ${trio.base}
models:
  - model: ${trio.chat}
    parameters: {weight: 0.6, density: 0.5, epsilon: 0.2}
  - model: ${cpSame}
    parameters: {weight: 0.4, density: [0.4, 0.7]}
random_seed: 3
out_dtype: float32
`,
        { chunkElements: 3001 },
      ),
    );
    const [B, C, P] = [readAll(trio.base), readAll(trio.chat), readAll(cpSame)];
    for (const [name, b] of B) {
      const n = b.values.length;
      const d2 = 0.4 + depth(name) * 0.3;
      const r = gtaReference(b.values, [C.get(name)!.values.subarray(0, n), P.get(name)!.values], [0.6, 0.4], [dellaKeep(3, 0, name, b.shape, 0.5, 0.2, true), dellaKeep(3, 1, name, b.shape, d2, 0.15, true)], {
        consensus: true,
        normalize: true,
        lambda: 1,
      });
      assertClose(name, out.get(name)!.values, r);
    }
  });

  it('della_linear: no rescale when asked, λ, 1-D tensors ranked as one row', async () => {
    const out = readAll(
      await merge(
        `merge_method: della_linear
base_model: ${trio.base}
models:
  - model: ${trio.chat}
    parameters: {weight: 0.7, density: 0.3, epsilon: 0.1}
  - model: ${cpSame}
    parameters: {weight: 0.5, density: 0.6, epsilon: 0.3}
parameters: {rescale: false, lambda: 1.5}
out_dtype: float32
`,
        { chunkElements: 50 },
      ),
    );
    const [B, C, P] = [readAll(trio.base), readAll(trio.chat), readAll(cpSame)];
    for (const [name, b] of B) {
      const n = b.values.length;
      const r = gtaReference(b.values, [C.get(name)!.values.subarray(0, n), P.get(name)!.values], [0.7, 0.5], [dellaKeep(0, 0, name, b.shape, 0.3, 0.1, false), dellaKeep(0, 1, name, b.shape, 0.6, 0.3, false)], {
        consensus: false,
        normalize: false,
        lambda: 1.5,
      });
      assertClose(name, out.get(name)!.values, r);
    }
  });

  it('the bytes do not depend on threads or chunk sizes; another seed gives another mask', async () => {
    const recipe = (seed: number) => `merge_method: della
base_model: ${trio.base}
models:
  - model: ${trio.chat}
    parameters: {weight: 1, density: 0.5}
random_seed: ${seed}
out_dtype: float32
`;
    const a = tensorBytes(await merge(recipe(1), { threads: 1, chunkElements: 7 }));
    const b = tensorBytes(await merge(recipe(1), { threads: 3, chunkElements: 100000 }));
    const c = tensorBytes(await merge(recipe(2), { threads: 2 }));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.get('model.layers.0.mlp.up_proj.weight'), c.get('model.layers.0.mlp.up_proj.weight'));
  });

  it('density ± epsilon outside (0, 1) is an error at the model, as mergekit refuses it', () => {
    const ds = recipeDiagnostics(
      `merge_method: della
base_model: ${trio.base}
models:
  - model: ${trio.chat}
    parameters: {weight: 1, density: 0.9, epsilon: 0.15}
`,
      { baseDir: dir },
    );
    const e = ds.filter((d) => d.severity === 'error');
    assert.equal(e.length, 1, JSON.stringify(ds));
    assert.match(e[0]!.message, /^density ± epsilon must lie in \(0, 1\) .*density 0\.9 and epsilon 0\.15/);
    assert.equal(e[0]!.line, 3);
  });
});
