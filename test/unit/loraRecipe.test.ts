// mergekit's `model+adapter` in recipes (issue 15): the model with a PEFT LoRA adapter merged in,
// read through the adapter (nothing merged ahead). References are computed here in float64 from
// the stored values: w' = w + scale·B·A (transposed for embedding LoRA), a whole saved tensor for
// modules_to_save, then rounded once to the model's dtype — the rule PEFT's merge_and_unload
// follows (the float32 sum it rounds may differ from the float64 one by one ulp of the dtype).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runRecipeFileAll } from '../../src/core/recipes/multiRecipe';
import { checkRecipeText, loadRecipeFile } from '../../src/core/recipes/recipe';
import { summarizePlan } from '../../src/core/recipes/summary';
import { readSafetensorsHeader } from '../../src/core/safetensors/reader';
import { formatPlanSummary } from '../../src/protocol/planText';
import { roundTo, roundToBits, ulpDistance } from './support/engineFixtures';
import { fakeCommit, placeInCache } from './support/hubCacheFixture';
import { loraFactors, loraTauReference, uniformValues, writeAdapter } from './support/loraFixtures';
import { type FixtureTensor, mergeRecipeText, readAll, rng, writeModel } from './support/recipeFixtures';

let dir: string;
let n = 0;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-lora-recipe-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const fresh = (name: string) => path.join(dir, `${name}-${n++}`);

const D = 8;
const V = 16;
const SHAPES: [string, number[]][] = [
  ['model.embed_tokens.weight', [V, D]],
  ...[0, 1].flatMap((i): [string, number[]][] => [
    [`model.layers.${i}.self_attn.q_proj.weight`, [D, D]],
    [`model.layers.${i}.mlp.down_proj.weight`, [D, 12]],
    [`model.layers.${i}.input_layernorm.weight`, [D]],
  ]),
  ['model.norm.weight', [D]],
  ['lm_head.weight', [V, D]],
];

function model(seed: number, dtype: 'BF16' | 'F32', shapes = SHAPES): string {
  const r = rng(seed);
  return writeModel(fresh('model'), shapes.map(([name, shape]) => ({ name, shape, dtype, values: uniformValues(shape.reduce((a, b) => a * b, 1), r) })));
}

const P = 'base_model.model.';
const q = (i: number) => `${P}model.layers.${i}.self_attn.q_proj`;

/** q_proj of both layers (r 4, alpha 8: scale 2; layer 1 r 2 by rank_pattern: scale 4), embedding LoRA, and lm_head saved whole. */
function adapterFor(seed: number, dtype: 'BF16' | 'F32'): string {
  const r = rng(seed);
  const head: FixtureTensor = { name: `${P}lm_head.weight`, shape: [V, D], dtype, values: uniformValues(V * D, r) };
  return writeAdapter(fresh('adapter'), { rank_pattern: { 'model.layers.1.self_attn.q_proj': 2 }, target_modules: ['q_proj', 'embed_tokens'], modules_to_save: ['lm_head'] }, [
    ...loraFactors(q(0), 4, D, D, seed + 1, { dtype: 'BF16' }),
    ...loraFactors(q(1), 2, D, D, seed + 2),
    ...loraFactors(`${P}model.embed_tokens`, 4, V, D, seed + 3, { transposed: true, embedding: true }),
    head,
  ]);
}

/** Every tensor of `base` as the adapter leaves it, in float64 (before rounding to the dtype). */
function mergedReference(base: string, ad: string): Map<string, Float64Array> {
  const w = new Map([...readAll(base)].map(([k, v]) => [k, Float64Array.from(v.values)]));
  const plus = (name: string, tau: Float64Array) => w.set(name, Float64Array.from(w.get(name)!, (x, i) => x + tau[i]!));
  plus('model.layers.0.self_attn.q_proj.weight', loraTauReference(ad, q(0), D, D, 8 / 4, false));
  plus('model.layers.1.self_attn.q_proj.weight', loraTauReference(ad, q(1), D, D, 8 / 2, false));
  plus('model.embed_tokens.weight', loraTauReference(ad, `${P}model.embed_tokens`, V, D, 2, true, ['lora_embedding_A', 'lora_embedding_B']));
  w.set('lm_head.weight', Float64Array.from(readAll(ad).get(`${P}lm_head.weight`)!.values));
  return w;
}

/**
 * Asserts `got` (stored as dtype) is the float64 `want` as PEFT's merge leaves it: BF16 within one
 * ulp of `want` rounded (the float32 sum PEFT rounds may sit across a rounding boundary), F32 within
 * the float32 roundings of τ and of the sum (2⁻²⁴·(|τ| + |w'|) ≤ 2⁻²³·(|w'| + |w|), w the model's value).
 * @returns how many elements are exactly `want` rounded to dtype
 */
function assertRounded(got: { dtype: string; bytes: Uint8Array; values: Float64Array }, want: Float64Array, w: Float64Array, what: string): number {
  const dtype = got.dtype as 'BF16' | 'F32';
  const view = new DataView(got.bytes.buffer, got.bytes.byteOffset);
  let exact = 0;
  for (let i = 0; i < want.length; i++) {
    const bits = dtype === 'F32' ? view.getUint32(4 * i, true) : view.getUint16(2 * i, true);
    const d = ulpDistance(bits, roundToBits(want[i]!, dtype), dtype);
    if (d === 0) exact++;
    const ok = dtype === 'BF16' ? d <= 1 : Math.abs(got.values[i]! - want[i]!) <= 2 ** -23 * (Math.abs(want[i]!) + Math.abs(w[i]!));
    if (!ok) assert.fail(`${what}[${i}]: ${got.values[i]} is ${d} ulps from ${want[i]} rounded to ${dtype}`);
  }
  return exact;
}

const recipe = (text: string) => text.trim() + '\n';

describe('model+adapter in recipes', () => {
  for (const dtype of ['BF16', 'F32'] as const) {
    it(`passthrough of base+adapter (${dtype}) is the model with the adapter merged in, rounded once to ${dtype}`, async () => {
      const base = model(1, dtype);
      const ad = adapterFor(10, dtype);
      const out = await mergeRecipeText(dir, recipe(`
merge_method: passthrough
models:
  - model: ${base}+${ad}
`));
      const got = readAll(out);
      const want = mergedReference(base, ad);
      let exact = 0;
      let total = 0;
      const b = readAll(base);
      for (const [name, w] of want) {
        exact += assertRounded(got.get(name)!, w, b.get(name)!.values, name);
        total += w.length;
      }
      // BF16: the float32 sum PEFT rounds is off the float64 one by far less than a BF16 ulp.
      if (dtype === 'BF16') assert.ok(exact >= 0.98 * total, `${exact} of ${total} exact`);
      // What the adapter does not touch is the model's bytes.
      for (const name of ['model.layers.0.mlp.down_proj.weight', 'model.norm.weight']) assert.deepEqual(got.get(name)!.bytes, b.get(name)!.bytes, name);
      // …and the adapted tensors did change.
      assert.notDeepEqual(got.get('model.layers.0.self_attn.q_proj.weight')!.bytes, b.get('model.layers.0.self_attn.q_proj.weight')!.bytes);
      assert.match(fs.readFileSync(path.join(out, 'README.md'), 'utf8'), /LoRA adapter .* merged in/);
    });
  }

  for (const dtype of ['F32', 'BF16'] as const) {
    it(`task_arithmetic with base_model and base+adapter (${dtype} model, float32 out): base + w·(merged − base), the merged model in ${dtype}`, async () => {
      const base = model(2, dtype);
      const ad = adapterFor(20, dtype);
      const out = await mergeRecipeText(dir, recipe(`
merge_method: task_arithmetic
base_model: ${base}
models:
  - model: ${base}+${ad}
    parameters:
      weight: 0.5
dtype: float32
`));
      const got = readAll(out);
      const b = readAll(base);
      let near = 0;
      let total = 0;
      for (const [name, m64] of mergedReference(base, ad)) {
        const bv = b.get(name)!.values;
        // The merged model as PEFT stores it: rounded to the model's dtype before the task vector is taken.
        const m = Float64Array.from(m64, (x) => roundTo(x, dtype));
        const g = got.get(name)!.values;
        for (let i = 0; i < m.length; i++) {
          const want = bv[i]! + 0.5 * (m[i]! - bv[i]!);
          total++;
          if (Math.abs(g[i]! - want) <= 2 ** -22 * (Math.abs(bv[i]!) + Math.abs(m[i]!))) continue;
          // BF16: the float32 sum PEFT rounds may round to the neighbour of m: 0.5 × one BF16 ulp (≤ 2⁻⁷|m|) away.
          assert.ok(dtype === 'BF16' && Math.abs(g[i]! - want) <= 0.51 * 2 ** -7 * Math.abs(m[i]!), `${name}[${i}]: ${g[i]} vs ${want}`);
          near++;
        }
      }
      assert.ok(near <= 0.02 * total, `${near} of ${total} one ulp off`);
    });
  }

  it('slices: an adapter on one slice\'s model changes that slice only (embedding LoRA from the first slice)', async () => {
    const base = model(3, 'BF16');
    const ad = adapterFor(30, 'BF16');
    const out = await mergeRecipeText(dir, recipe(`
merge_method: passthrough
slices:
  - sources:
      - model: ${base}+${ad}
        layer_range: [0, 1]
  - sources:
      - model: ${base}
        layer_range: [1, 2]
`));
    const got = readAll(out);
    const b = readAll(base);
    const want = mergedReference(base, ad);
    for (const name of ['model.layers.0.self_attn.q_proj.weight', 'model.embed_tokens.weight']) assertRounded(got.get(name)!, want.get(name)!, b.get(name)!.values, name);
    assert.deepEqual(got.get('model.layers.1.self_attn.q_proj.weight')!.bytes, b.get('model.layers.1.self_attn.q_proj.weight')!.bytes, 'layer 1 from the base alone');
    assert.deepEqual(got.get('lm_head.weight')!.bytes, b.get('lm_head.weight')!.bytes, 'lm_head from the last slice (the base alone)');
  });

  it('a model listed with and without the adapter counts as two models (linear average of the two)', async () => {
    const base = model(4, 'F32');
    const ad = adapterFor(40, 'F32');
    const out = await mergeRecipeText(dir, recipe(`
merge_method: linear
models:
  - model: ${base}
    parameters: {weight: 1.0}
  - model: ${base}+${ad}
    parameters: {weight: 1.0}
`));
    const got = readAll(out);
    const b = readAll(base);
    for (const [name, m] of mergedReference(base, ad)) {
      const bv = b.get(name)!.values;
      const g = got.get(name)!.values;
      for (let i = 0; i < m.length; i++) assert.ok(Math.abs(g[i]! - (bv[i]! + m[i]!) / 2) <= 4 * 2 ** -24 * (Math.abs(bv[i]!) + Math.abs(m[i]!)) + 1e-30, `${name}[${i}]`);
    }
  });

  it('ties (the recipe kernels\' path) with one adapted model at density 1 gives the merged model', async () => {
    const base = model(8, 'BF16');
    const ad = adapterFor(80, 'BF16');
    const out = await mergeRecipeText(dir, recipe(`
merge_method: ties
base_model: ${base}
models:
  - model: ${base}+${ad}
    parameters: {weight: 1.0, density: 1.0}
`));
    const got = readAll(out);
    const b = readAll(base);
    // base + 1·(merged − base), merged already BF16: the sum is merged, within one BF16 ulp.
    for (const [name, w] of mergedReference(base, ad)) assertRounded(got.get(name)!, w, b.get(name)!.values, name);
  });

  it('mergekit-multi: `name+adapter` is the earlier merge with the adapter merged in', async () => {
    const base = model(9, 'F32');
    const ad = adapterFor(90, 'F32');
    const file = path.join(dir, `multi-${n++}.yaml`);
    fs.writeFileSync(file, recipe(`
name: first
merge_method: passthrough
models:
  - model: ${base}
    parameters: {weight: 1.0}
dtype: float32
---
merge_method: passthrough
models:
  - model: first+${ad}
`));
    const out = fresh('multi-out');
    await runRecipeFileAll(file, { out, threads: 2 });
    const got = readAll(out);
    const b = readAll(base);
    for (const [name, w] of mergedReference(base, ad)) assertRounded(got.get(name)!, w, b.get(name)!.values, name);
  });

  it('chat_vector: `base+adapter` as a chat model is the adapter as the chat vector; an adapter on another model is an error', async () => {
    const base = model(11, 'F32');
    const ad = adapterFor(110, 'F32');
    const cp = model(12, 'F32');
    const out = await mergeRecipeText(dir, recipe(`
merge_method: chat_vector
base_model: ${base}
target_model: ${cp}
chat_models:
  - model: ${base}+${ad}
    ratio: 1.0
`));
    const got = readAll(out);
    const [B, C] = [readAll(base), readAll(cp)];
    for (const [name, m] of mergedReference(base, ad)) {
      const want = Float64Array.from(m, (x, i) => C.get(name)!.values[i]! + (x - B.get(name)!.values[i]!));
      const g = got.get(name)!.values;
      for (let i = 0; i < want.length; i++) assert.ok(Math.abs(g[i]! - want[i]!) <= 2 ** -22 * (Math.abs(want[i]!) + Math.abs(m[i]!) + Math.abs(B.get(name)!.values[i]!)), `${name}[${i}]: ${g[i]} vs ${want[i]}`);
    }
    const bad = checkRecipeText(recipe(`
merge_method: chat_vector
base_model: ${base}
target_model: ${cp}
chat_models:
  - model: ${cp}+${ad}
`), { depth: 'headers' }).issues.filter((i) => i.severity === 'error');
    assert.match(bad[0]!.message, /the adapter must be on the base model/);
  });

  it('Hub ids on both sides (`org/model+org/adapter`) resolve offline in the hub cache', async () => {
    const cache = fresh('hub');
    const base = model(13, 'BF16');
    const ad = adapterFor(130, 'BF16');
    placeInCache(cache, 'org/model', fakeCommit('model'), base);
    placeInCache(cache, 'org/adapter', fakeCommit('adapter'), ad);
    const saved = process.env.HF_HUB_CACHE;
    process.env.HF_HUB_CACHE = cache;
    try {
      const out = await mergeRecipeText(dir, recipe(`
merge_method: passthrough
models:
  - model: org/model+org/adapter
`));
      const got = readAll(out);
      const b = readAll(base);
      for (const [name, w] of mergedReference(base, ad)) assertRounded(got.get(name)!, w, b.get(name)!.values, name);
      const meta = JSON.parse(readSafetensorsHeader(path.join(out, 'model.safetensors')).metadata!.chatvec!) as { models: string[]; hub_sources: Record<string, string> };
      assert.deepEqual(Object.values(meta.hub_sources).sort(), [`org/adapter@${fakeCommit('adapter')}`, `org/model@${fakeCommit('model')}`]);
    } finally {
      if (saved === undefined) delete process.env.HF_HUB_CACHE;
      else process.env.HF_HUB_CACHE = saved;
    }
  });

  it('dry run and diagnostics show the adapter: rank, alpha, what it changes', () => {
    const base = model(5, 'BF16');
    const ad = adapterFor(50, 'BF16');
    const file = path.join(dir, `dry-${n++}.yaml`);
    fs.writeFileSync(file, recipe(`
merge_method: passthrough
models:
  - model: ${base}+${ad}
`));
    const loaded = loadRecipeFile(file);
    const text = formatPlanSummary(summarizePlan(loaded.plan, 2));
    assert.match(text, /adapters \(merged in as read\):/);
    assert.match(text, /LoRA r=4 \(also 2 by rank_pattern\), lora_alpha=8: 3 matrices \(embed_tokens, q_proj\), 1 whole tensor/);
    const info = checkRecipeText(fs.readFileSync(file, 'utf8'), { recipePath: file, depth: 'headers' }).issues.filter((i) => i.severity === 'info');
    assert.ok(info.some((i) => /LoRA r=4/.test(i.message) && JSON.stringify(i.path) === JSON.stringify(['models', 0, 'model'])), JSON.stringify(info));
  });

  it('an adapter that does not fit the model is an error naming both; so are a folder without adapter_config.json and two +', () => {
    const base = model(6, 'BF16');
    const small = model(7, 'BF16', SHAPES.map(([name, shape]): [string, number[]] => [name, name.includes('q_proj') ? [4, D] : shape]));
    const ad = adapterFor(60, 'BF16');
    const check = (text: string) => {
      const file = path.join(dir, `bad-${n++}.yaml`);
      fs.writeFileSync(file, recipe(text));
      return checkRecipeText(fs.readFileSync(file, 'utf8'), { recipePath: file, depth: 'headers' }).issues.filter((i) => i.severity === 'error');
    };
    const misfit = check(`
merge_method: passthrough
models:
  - model: ${small}+${ad}
`);
    assert.equal(misfit.length, 1, JSON.stringify(misfit));
    assert.ok(misfit[0]!.message.includes(ad) && misfit[0]!.message.includes(small), misfit[0]!.message);
    assert.match(misfit[0]!.message, /does not fit .*model\.layers\.0\.self_attn\.q_proj\.weight: \[4,8\] in the model, \[8, 8\] from the adapter's factors/);
    assert.deepEqual(misfit[0]!.path, ['models', 0, 'model']);
    const notAdapter = check(`
merge_method: passthrough
models:
  - model: ${base}+${small}
`);
    assert.match(notAdapter[0]!.message, /is not a LoRA adapter folder: it has no adapter_config\.json/);
    const twice = check(`
merge_method: passthrough
models:
  - model: ${base}+${ad}+${ad}
`);
    assert.match(twice[0]!.message, /more than one `\+`/);
  });
});
