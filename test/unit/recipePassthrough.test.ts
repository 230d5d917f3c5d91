// passthrough (mergekit's frankenmerge): slices of one model each stacked into a deeper model,
// layers renumbered, embeddings from the first slice's model and the tensors after the last layer
// from the last slice's, the config's layer count rewritten, `scale` applied, the layer map in the
// dry run. Expected bytes and values come from the inputs read back here.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DemoTrio, generateDemoTrio } from '../../src/core/demo/generator';
import { loadRecipeFile } from '../../src/core/recipes/recipe';
import { runMergePlan } from '../../src/core/recipes/run';
import { summarizePlan } from '../../src/core/recipes/summary';
import { formatPlanSummary } from '../../src/protocol/planText';
import { readAll } from './support/recipeFixtures';

let dir: string;
let trio: DemoTrio;
let n = 0;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-passthrough-'));
  trio = generateDemoTrio(path.join(dir, 'demo'), 'tiny', 5);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function load(yaml: string) {
  const file = path.join(dir, `recipe-${n++}.yaml`);
  fs.writeFileSync(file, yaml);
  return loadRecipeFile(file);
}

const FRANKEN = () => `merge_method: passthrough
slices:
  - sources:
      - model: ${trio.base}
        layer_range: [0, 4]
  - sources:
      - model: ${trio.chat}
        layer_range: [2, 4]
`;

describe('passthrough', () => {
  it('stacks 4 base layers and chat layers 2-3 into a 6-layer model, bytes unchanged, config and dry-run layer map', async () => {
    const loaded = load(FRANKEN());
    assert.ok(loaded.plan, JSON.stringify(loaded.issues));
    const text = formatPlanSummary(summarizePlan(loaded.plan, 2));
    assert.match(text, /6 layers/);
    assert.match(text, /layers \(output ← model\):\n {2}0–3 +← +\S*tiny-base +0–3\n {2}4–5 +← +\S*tiny-chat +2–3/);
    const out = path.join(dir, `out-${n++}`);
    await runMergePlan(loaded.plan, { out, threads: 2, recipeText: loaded.text });
    const [B, C, O] = [readAll(trio.base), readAll(trio.chat), readAll(out)];
    const layerOf = (name: string) => Number(/layers\.(\d+)\./.exec(name)?.[1] ?? NaN);
    let layers = 0;
    for (const [name, o] of O) {
      const k = layerOf(name);
      let want: Uint8Array;
      if (Number.isNaN(k)) want = (name.includes('embed_tokens') ? B : C).get(name)!.bytes;
      else {
        const [src, from] = k < 4 ? [B, k] : [C, k - 2];
        want = src.get(name.replace(`layers.${k}.`, `layers.${from}.`))!.bytes;
        layers = Math.max(layers, k + 1);
      }
      assert.deepEqual(o.bytes, want, name);
    }
    assert.equal(layers, 6);
    const perLayer = [...B.keys()].filter((k) => k.includes('layers.0.')).length;
    assert.equal(O.size, B.size + 2 * perLayer);
    assert.equal((JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')) as { num_hidden_layers: number }).num_hidden_layers, 6);
  });

  it('scale multiplies the tensors it applies to (float32, one rounding); other tensors keep their bytes', async () => {
    const loaded = load(`${FRANKEN()}parameters:
  scale:
    - filter: mlp
      value: 0.5
    - value: 1
`);
    assert.ok(loaded.plan, JSON.stringify(loaded.issues));
    const out = path.join(dir, `out-${n++}`);
    await runMergePlan(loaded.plan, { out, threads: 2, recipeText: loaded.text });
    const [B, O] = [readAll(trio.base), readAll(out)];
    const mlp = 'model.layers.1.mlp.up_proj.weight';
    // Halving a bf16 value is exact (no subnormals at these magnitudes).
    assert.deepEqual([...O.get(mlp)!.values], [...B.get(mlp)!.values].map((v) => v / 2));
    assert.deepEqual(O.get('model.layers.1.self_attn.q_proj.weight')!.bytes, B.get('model.layers.1.self_attn.q_proj.weight')!.bytes);
  });

  it('refuses two models in a slice, as mergekit does', () => {
    assert.throws(
      () =>
        load(`merge_method: passthrough
slices:
  - sources:
      - model: ${trio.base}
        layer_range: [0, 4]
      - model: ${trio.chat}
        layer_range: [0, 4]
`),
      /passthrough takes exactly one model per slice \(got 2\)/,
    );
  });
});
