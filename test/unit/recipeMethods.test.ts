// The merge methods against float64 references written here from the papers' and mergekit's
// definitions (not from src/core/recipes): linear, task_arithmetic, ties, dare_linear, dare_ties,
// slerp; the exact TIES threshold against sorting; DARE bytes independent of threads and chunk
// sizes; chat_vector == task_arithmetic == the engine's fused apply, byte for byte.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DemoTrio, generateDemoTrio } from '../../src/core/demo/generator';
import { hashString, uniformRange } from '../../src/core/numeric/random';
import { runApply } from '../../src/core/engine/apply';
import { loadRecipeFile } from '../../src/core/recipes/recipe';
import { runMergePlan } from '../../src/core/recipes/run';
import { perturbedCopy, readAll, rng, tensorBytes, writeModel } from './support/recipeFixtures';

const f = Math.fround;
let dir: string;
let trio: DemoTrio;
let cpSame: string; // a "continually pretrained" model with the base's vocabulary
let counter = 0;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-recipes-'));
  trio = generateDemoTrio(path.join(dir, 'demo'), 'tiny', 7);
  cpSame = perturbedCopy(trio.base, path.join(dir, 'cp-same'), 99, 'BF16');
  for (const name of ['tokenizer.json', 'tokenizer_config.json']) if (fs.existsSync(path.join(trio.base, name))) fs.copyFileSync(path.join(trio.base, name), path.join(cpSame, name));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

interface RunOpts {
  threads?: number;
  chunkElements?: number;
}

/** Writes the recipe into the temp folder, plans it and runs it; returns the output folder. */
async function merge(yaml: string, o: RunOpts = {}): Promise<string> {
  const file = path.join(dir, `recipe-${counter++}.yaml`);
  fs.writeFileSync(file, yaml);
  const loaded = loadRecipeFile(file);
  const out = path.join(dir, `out-${counter++}`);
  await runMergePlan(loaded.plan, { out, threads: o.threads ?? 2, chunkElements: o.chunkElements, recipeText: loaded.text });
  return out;
}

type Tensors = ReturnType<typeof readAll>;
const layerOf = (name: string) => {
  const m = /layers\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : null;
};
/**
 * Depth of a tensor in the 4-layer demo: layers i/3; the tensors before and after the layers 0, as
 * mergekit ≥ 0.1.2 evaluates them (`postLayerT` 1: after the layers 1, as mergekit ≤ 0.1.1 did).
 */
const depth = (name: string, postLayerT = 0) => {
  const l = layerOf(name);
  return l !== null ? l / 3 : name.includes('embed_tokens') ? 0 : postLayerT;
};
const grad = (pts: number[], t: number) => {
  const s = t * (pts.length - 1);
  const i0 = Math.trunc(s);
  const i1 = Math.min(pts.length - 1, i0 + 1);
  return (1 - (s - i0)) * pts[i0]! + (s - i0) * pts[i1]!;
};

/** Compares an F32 output against a float64 reference; `fragile(i)` marks elements a sign vote may flip. */
function assertClose(out: Tensors, name: string, ref: Float64Array, scale: Float64Array, fragile: (i: number) => boolean = () => false): void {
  const o = out.get(name);
  assert.ok(o, `output lacks ${name}`);
  assert.equal(o.dtype, 'F32', name);
  assert.equal(o.values.length, ref.length, `${name}: element count`);
  let bad = 0;
  for (let i = 0; i < ref.length; i++) {
    const tol = 1e-6 * (Math.abs(ref[i]!) + scale[i]!) + 1e-12;
    if (Math.abs(o.values[i]! - ref[i]!) > tol) {
      if (fragile(i)) continue;
      if (bad++ < 3) assert.fail(`${name}[${i}]: got ${o.values[i]}, reference ${ref[i]} (tolerance ${tol})`);
    }
  }
}

const prefix = (x: Float64Array, n: number) => x.subarray(0, n);

describe('merge methods against float64 references', () => {
  it('linear: weighted average, normalised, vocabularies cut to the smallest', async () => {
    const out = readAll(
      await merge(`merge_method: linear
models:
  - model: ${trio.base}
    parameters: {weight: 1}
  - model: ${trio.chat}
    parameters: {weight: 2}
  - model: ${trio.cp}
    parameters:
      weight: [{filter: mlp, value: 0.5}, {value: 1}]
out_dtype: float32
`),
    );
    const [B, C, P] = [readAll(trio.base), readAll(trio.chat), readAll(trio.cp)];
    for (const [name, b] of B) {
      const n = Math.min(b.values.length, P.get(name)!.values.length);
      const w = [1, 2, name.includes('mlp') ? 0.5 : 1];
      const xs = [prefix(b.values, n), prefix(C.get(name)!.values, n), prefix(P.get(name)!.values, n)];
      const sw = w[0]! + w[1]! + w[2]!;
      const ref = new Float64Array(n);
      const scale = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        ref[i] = (w[0]! * xs[0]![i]! + w[1]! * xs[1]![i]! + w[2]! * xs[2]![i]!) / sw;
        scale[i] = Math.abs(xs[0]![i]!) + Math.abs(xs[1]![i]!) + Math.abs(xs[2]![i]!);
      }
      assertClose(out, name, ref, scale);
    }
    assert.deepEqual(out.get('model.embed_tokens.weight')!.shape, [512, 64]);
  });

  it('task_arithmetic: base + λ·Σ wᵢ(mᵢ − base), weight gradient over depth', async () => {
    const out = readAll(
      await merge(`merge_method: task_arithmetic
base_model: ${trio.base}
models:
  - model: ${trio.chat}
    parameters: {weight: 0.8}
  - model: ${cpSame}
    parameters: {weight: [0.2, 1.0]}
parameters: {lambda: 0.5}
out_dtype: float32
`),
    );
    const [B, C, P] = [readAll(trio.base), readAll(trio.chat), readAll(cpSame)];
    for (const [name, b] of B) {
      const c = C.get(name)!.values;
      const p = P.get(name)!.values;
      const w2 = grad([0.2, 1.0], depth(name));
      const ref = b.values.map((x, i) => x + 0.5 * (0.8 * (c[i]! - x) + w2 * (p[i]! - x)));
      const scale = b.values.map((x, i) => Math.abs(x) + Math.abs(c[i]!) + Math.abs(p[i]!));
      assertClose(out, name, ref, scale);
    }
  });

  /** TIES / DARE reference: trimmed or dropped task vectors, optional sign election, mix. */
  function gtaReference(
    name: string,
    base: Float64Array,
    models: Float64Array[],
    weights: number[],
    keep: ((tau: Float64Array) => Float64Array)[],
    o: { consensus: boolean; normalize: boolean; lambda: number },
  ): { ref: Float64Array; scale: Float64Array; fragile: (i: number) => boolean } {
    const n = base.length;
    const taus = models.map((m) => {
      const t = new Float64Array(n);
      for (let i = 0; i < n; i++) t[i] = f(m[i]! - base[i]!); // task vectors are float32
      return t;
    });
    const trimmed = taus.map((t, k) => keep[k]!(t));
    const ref = new Float64Array(n);
    const scale = new Float64Array(n);
    const fragile = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const v = trimmed.map((t, k) => t[i]! * weights[k]!);
      const sum = v.reduce((a, x) => a + x, 0);
      const mass = v.reduce((a, x) => a + Math.abs(x), 0);
      const maj = sum >= 0 ? 1 : -1;
      let mixed = 0;
      let div = 0;
      v.forEach((x, k) => {
        if (!o.consensus || Math.sign(x) === maj) {
          mixed += x;
          div += weights[k]!;
        }
      });
      if (o.consensus ? div === 0 : Math.abs(div) < 1e-8) div = 1;
      if (!o.consensus) div = weights.reduce((a, w) => a + w, 0) || 1;
      if (o.normalize) mixed /= div;
      ref[i] = base[i]! + o.lambda * mixed;
      scale[i] = Math.abs(base[i]!) + mass * Math.max(1, o.lambda);
      fragile[i] = o.consensus && Math.abs(sum) <= 1e-5 * mass ? 1 : 0;
    }
    void name;
    return { ref, scale, fragile: (i) => fragile[i] === 1 };
  }

  /** Keeps the k = ⌊density·n⌋ largest |τ| (ties to the lower index), by sorting. */
  const topK = (density: number) => (tau: Float64Array) => {
    const k = Math.floor(density * tau.length);
    const order = Array.from(tau.keys()).sort((a, b) => Math.abs(tau[b]!) - Math.abs(tau[a]!) || a - b);
    const out = new Float64Array(tau.length);
    for (const i of order.slice(0, k)) out[i] = tau[i]!;
    return out;
  };

  it('ties: top-k trim per tensor (density gradient), sign election by mass, disjoint mean, λ', async () => {
    const out = readAll(
      await merge(
        `merge_method: ties
base_model: ${trio.base}
models:
  - model: ${trio.chat}
    parameters: {weight: 0.7, density: 0.4}
  - model: ${trio.cp}
    parameters: {weight: 0.5, density: [0.3, 0.9]}
parameters: {lambda: 0.9}
out_dtype: float32
`,
        { chunkElements: 4096 },
      ),
    );
    const [B, C, P] = [readAll(trio.base), readAll(trio.chat), readAll(trio.cp)];
    for (const [name, b] of B) {
      const n = b.values.length; // task vectors use the base's vocabulary (mergekit's submatrix)
      const r = gtaReference(name, b.values, [C.get(name)!.values, prefix(P.get(name)!.values, n)], [0.7, 0.5], [topK(0.4), topK(grad([0.3, 0.9], depth(name)))], {
        consensus: true,
        normalize: true,
        lambda: 0.9,
      });
      assertClose(out, name, r.ref, r.scale, r.fragile);
    }
  });

  /** DARE's documented drop stream: element j of input i is kept when uniform(seed_i)[j] < 2·density − 1. */
  const dareKeep = (seed: number, inputIndex: number, name: string, density: number) => (tau: Float64Array) => {
    const u = new Float64Array(tau.length);
    uniformRange(hashString(`dare:${seed}:${inputIndex}:${name}`), 0, tau.length, u);
    let all = 0;
    let kept = 0;
    const out = new Float64Array(tau.length);
    for (let i = 0; i < tau.length; i++) {
      all += Math.abs(tau[i]!);
      if (u[i]! < 2 * density - 1) {
        out[i] = tau[i]!;
        kept += Math.abs(tau[i]!);
      }
    }
    const scale = all < 1e-7 || kept < 1e-7 ? 1 : all / kept; // mergekit: L1 rescale
    return out.map((x) => x * scale);
  };

  for (const method of ['dare_ties', 'dare_linear'] as const) {
    it(`${method}: seeded drop with L1 rescale${method === 'dare_ties' ? ', sign election' : ''}`, async () => {
      const out = readAll(
        await merge(
          `merge_method: ${method}
base_model: ${trio.base}
models:
  - model: ${trio.chat}
    parameters: {weight: 0.6, density: 0.5}
  - model: ${cpSame}
    parameters: {weight: 0.4, density: 0.7}
random_seed: 11
out_dtype: float32
`,
          { chunkElements: 3000 },
        ),
      );
      const [B, C, P] = [readAll(trio.base), readAll(trio.chat), readAll(cpSame)];
      for (const [name, b] of B) {
        const r = gtaReference(name, b.values, [C.get(name)!.values, P.get(name)!.values], [0.6, 0.4], [dareKeep(11, 0, name, 0.5), dareKeep(11, 1, name, 0.7)], {
          consensus: method === 'dare_ties',
          normalize: false,
          lambda: 1,
        });
        assertClose(out, name, r.ref, r.scale, r.fragile);
      }
    });
  }

  it('slerp: per-tensor spherical interpolation, t by filter and gradient', async () => {
    const out = readAll(
      await merge(
        `merge_method: slerp
base_model: ${trio.base}
slices:
  - sources:
      - model: ${trio.base}
        layer_range: [0, 4]
      - model: ${trio.chat}
        layer_range: [0, 4]
parameters:
  t:
    - filter: self_attn
      value: [0, 0.5, 1]
    - value: 0.3
out_dtype: float32
`,
        { chunkElements: 5000 },
      ),
    );
    const [B, C] = [readAll(trio.base), readAll(trio.chat)];
    for (const [name, b] of B) {
      const a = b.values;
      const c = C.get(name)!.values;
      const t = name.includes('self_attn') ? grad([0, 0.5, 1], depth(name)) : 0.3;
      let aa = 0;
      let cc = 0;
      let ac = 0;
      for (let i = 0; i < a.length; i++) {
        aa += a[i]! * a[i]!;
        cc += c[i]! * c[i]!;
        ac += a[i]! * c[i]!;
      }
      const na = Math.sqrt(aa) > 1e-8 ? Math.sqrt(aa) : 1;
      const nc = Math.sqrt(cc) > 1e-8 ? Math.sqrt(cc) : 1;
      const dot = ac / (na * nc);
      let s0 = 1 - t;
      let s1 = t;
      if (Math.abs(dot) <= 0.9995) {
        const th = Math.acos(dot);
        s0 = Math.sin((1 - t) * th) / Math.sin(th);
        s1 = Math.sin(t * th) / Math.sin(th);
      }
      const ref = a.map((x, i) => s0 * x + s1 * c[i]!);
      assertClose(out, name, ref, a.map((x, i) => Math.abs(x) + Math.abs(c[i]!)));
    }
  });
});

describe('slices and output files', () => {
  it('slices renumber layers, pick the sources\' ranges, and update num_hidden_layers; tokenizer_source picks the tokenizer', async () => {
    const outDir = await merge(`merge_method: linear
slices:
  - sources:
      - model: ${trio.base}
        layer_range: [0, 2]
        parameters: {weight: 1}
      - model: ${trio.chat}
        layer_range: [1, 3]
        parameters: {weight: 3}
  - sources:
      - model: ${trio.base}
        layer_range: [3, 4]
        parameters: {weight: 1}
      - model: ${trio.chat}
        layer_range: [3, 4]
        parameters: {weight: 1}
tokenizer_source: ${trio.chat}
out_dtype: float32
`);
    const out = readAll(outDir);
    const [B, C] = [readAll(trio.base), readAll(trio.chat)];
    const layerNames = [...out.keys()].filter((n) => n.includes('layers.')).map((n) => layerOf(n));
    assert.deepEqual([...new Set(layerNames)], [0, 1, 2]);
    const check = (outLayer: number, baseLayer: number, chatLayer: number, wb: number, wc: number) => {
      for (const [name] of B) {
        if (layerOf(name) !== baseLayer) continue;
        const suffix = name.replace(/^model\.layers\.\d+\./, '');
        const b = B.get(name)!.values;
        const c = C.get(`model.layers.${chatLayer}.${suffix}`)!.values;
        const ref = b.map((x, i) => (wb * x + wc * c[i]!) / (wb + wc));
        assertClose(out, `model.layers.${outLayer}.${suffix}`, ref, b.map((x, i) => Math.abs(x) + Math.abs(c[i]!)));
      }
    };
    check(0, 0, 1, 1, 3);
    check(1, 1, 2, 1, 3);
    check(2, 3, 3, 1, 1);
    const config = JSON.parse(fs.readFileSync(path.join(outDir, 'config.json'), 'utf8')) as { num_hidden_layers: number; torch_dtype: string };
    assert.equal(config.num_hidden_layers, 3);
    assert.equal(config.torch_dtype, 'float32');
    assert.equal(fs.readFileSync(path.join(outDir, 'tokenizer_config.json'), 'utf8').includes('chat_template'), true, "the chat model's tokenizer files");
  });
});

describe('ties: the streaming threshold is exact', () => {
  // base = 0, so the output is the kept task vector itself; values come from a few levels so
  // that the k-th largest magnitude is shared by many elements across chunk boundaries.
  const n = 100 * 57;
  let zero: string;
  let model: string;
  let tau: Float64Array;
  before(() => {
    const r = rng(5);
    tau = new Float64Array(n).map(() => {
      const level = [0, 0.25, 0.5, 0.75, 1, 1.5, 3e-3, 1e-30][Math.floor(r() * 8)]!;
      return (r() < 0.5 ? -1 : 1) * level;
    });
    tau[17] = NaN; // NaN ranks above every number (kept first), as in a descending sort
    zero = writeModel(path.join(dir, 'zero'), [{ name: 'model.layers.0.mlp.up_proj.weight', shape: [100, 57], values: new Float64Array(n) }]);
    model = writeModel(path.join(dir, 'levels'), [{ name: 'model.layers.0.mlp.up_proj.weight', shape: [100, 57], values: tau }]);
  });

  for (const density of [0.37, 0.5, 0.013, 0.0004]) {
    it(`density ${density}: the kept set equals sorting |τ| (ties to the lower index) on any chunking`, async () => {
      const k = Math.floor(density * n);
      const order = Array.from(tau.keys()).sort((a, b) => {
        const x = Math.abs(tau[a]!);
        const y = Math.abs(tau[b]!);
        if (Number.isNaN(x) !== Number.isNaN(y)) return Number.isNaN(x) ? -1 : 1;
        return y - x || a - b;
      });
      const expected = new Float64Array(n);
      for (const i of order.slice(0, k)) expected[i] = tau[i]!;
      const results: Uint8Array[] = [];
      for (const [threads, chunkElements] of [
        [1, 700],
        [2, 333],
        [2, undefined],
      ] as const) {
        const out = await merge(
          `merge_method: ties
base_model: ${zero}
models:
  - model: ${model}
    parameters: {weight: 1, density: ${density}}
`,
          { threads, chunkElements },
        );
        const got = readAll(out).get('model.layers.0.mlp.up_proj.weight')!;
        for (let i = 0; i < n; i++) {
          if (Number.isNaN(expected[i]!)) assert.ok(Number.isNaN(got.values[i]!), `element ${i} (NaN) kept`);
          else assert.equal(got.values[i], expected[i], `element ${i} (|τ| = ${Math.abs(tau[i]!)}), chunks of ${chunkElements}`);
        }
        results.push(got.bytes);
      }
      assert.deepEqual(results[1], results[0]);
      assert.deepEqual(results[2], results[0]);
    });
  }

  it('rescale: true scales the kept values to the L1 norm of the whole task vector', async () => {
    const finite = tau.map((x) => (Number.isNaN(x) ? 0 : x));
    const fin = writeModel(path.join(dir, 'levels-finite'), [{ name: 'model.layers.0.mlp.up_proj.weight', shape: [100, 57], values: finite }]);
    const out = await merge(`merge_method: ties
base_model: ${zero}
models:
  - model: ${fin}
    parameters: {weight: 1, density: 0.37}
parameters: {rescale: true}
`);
    const got = readAll(out).get('model.layers.0.mlp.up_proj.weight')!.values;
    const order = Array.from(finite.keys()).sort((a, b) => Math.abs(finite[b]!) - Math.abs(finite[a]!) || a - b);
    const kept = new Set(order.slice(0, Math.floor(0.37 * n)));
    const all = finite.reduce((a, x) => a + Math.abs(x), 0);
    const keptL1 = [...kept].reduce((a, i) => a + Math.abs(finite[i]!), 0);
    const scale = f(all / keptL1);
    for (let i = 0; i < n; i++) assert.equal(got[i], kept.has(i) ? f(f(finite[i]!) * scale) : 0, `element ${i}`);
  });
});

describe('determinism and equivalences', () => {
  it('dare_ties: the same seed gives the same bytes with 1 or 2 threads and any chunk size', async () => {
    const recipe = `merge_method: dare_ties
base_model: ${trio.base}
models:
  - model: ${trio.chat}
    parameters: {weight: 0.6, density: 0.5}
  - model: ${trio.cp}
    parameters: {weight: 0.4, density: 0.3}
random_seed: 3
`;
    const a = tensorBytes(await merge(recipe, { threads: 1, chunkElements: 4096 }));
    const b = tensorBytes(await merge(recipe, { threads: 2, chunkElements: 4096 }));
    const c = tensorBytes(await merge(recipe, { threads: 2, chunkElements: 1000 }));
    const d = tensorBytes(await merge(recipe, { threads: 2 }));
    for (const other of [b, c, d]) {
      assert.deepEqual([...other.keys()], [...a.keys()]);
      for (const [name, bytes] of a) assert.deepEqual(other.get(name), bytes, name);
    }
    const e = tensorBytes(await merge(recipe.replace('random_seed: 3', 'random_seed: 4'), { threads: 2 }));
    assert.notDeepEqual(e.get('model.layers.1.mlp.up_proj.weight'), a.get('model.layers.1.mlp.up_proj.weight'), 'another seed drops other elements');
  });

  for (const ratio of [0.5, 1]) {
    it(`chat_vector == task_arithmetic (CP weight 1, chat weight ${ratio}) == fused apply, byte for byte`, async () => {
      const cv = tensorBytes(
        await merge(`merge_method: chat_vector
base_model: ${trio.base}
target_model: ${cpSame}
chat_models:
  - model: ${trio.chat}
    ratio: ${ratio}
`),
      );
      const ta = tensorBytes(
        await merge(`merge_method: task_arithmetic
base_model: ${trio.base}
models:
  - model: ${cpSame}
    parameters: {weight: 1}
  - model: ${trio.chat}
    parameters: {weight: ${ratio}}
`),
      );
      const applied = path.join(dir, `apply-${counter++}`);
      await runApply({ target: cpSame, base: trio.base, chats: [trio.chat], ratios: [ratio], out: applied, threads: 2 });
      const ap = tensorBytes(applied);
      assert.deepEqual([...cv.keys()].sort(), [...ap.keys()].sort());
      assert.deepEqual([...ta.keys()].sort(), [...ap.keys()].sort());
      for (const [name, bytes] of ap) {
        assert.deepEqual(cv.get(name), bytes, `chat_vector ${name}`);
        assert.deepEqual(ta.get(name), bytes, `task_arithmetic ${name}`);
      }
    });
  }

  it('chat_vector with skip_embed and special_tokens is the fused apply with those options', async () => {
    const cv = tensorBytes(
      await merge(`merge_method: chat_vector
base_model: ${trio.base}
target_model: ${trio.cp}
chat_models:
  - model: ${trio.chat}
    ratio: 0.5
skip_embed: true
special_tokens:
  3: 4
  10: 2
`),
    );
    const applied = path.join(dir, `apply-${counter++}`);
    await runApply({ target: trio.cp, base: trio.base, chats: [trio.chat], ratios: [0.5], skipEmbed: true, specialTokens: [[3, 4], [10, 2]], out: applied, threads: 1 });
    const ap = tensorBytes(applied);
    for (const [name, bytes] of ap) assert.deepEqual(cv.get(name), bytes, name);
  });
});
