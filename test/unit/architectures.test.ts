// Real architectures (issue 18): tensors grouped by the family table config.json names — vision
// towers and projectors as their own groups, the layer count from the config, DeepSeek-V3's MTP
// layer with its own embedding and head, MoE routers, the module kinds of Phi-2/Falcon/StableLM/
// Phi-3/DeepSeek — and merges that use those roles: slices that keep every tower tensor, gradient
// depths over the decoder layers only, --skip-embed and --special-tokens on every vocabulary
// tensor, GPT-2's two name layouts. Expected values are written here, or computed in float64 from
// the inputs read back independently.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type TensorGroup, groupTensors } from '../../src/core/checkpoint/layers';
import { runApply } from '../../src/core/engine/apply';
import { loadRecipeFile } from '../../src/core/recipes/recipe';
import { runMergePlan } from '../../src/core/recipes/run';
import { D, VOCAB, deepseekV3, gpt2, llava, phi2, qwen2vl, writeLayout } from './support/architectureFixtures';
import { CLI, ensureCli } from './support/builtCli';
import { readAll, writeModel } from './support/recipeFixtures';

let dir: string;
let n = 0;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-arch-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const fresh = (name: string) => path.join(dir, `${name}-${n++}`);

const L = (layer: number, module: TensorGroup['module']): TensorGroup => ({ role: 'layer', layer, module });

describe('grouping by the family table config.json names', () => {
  for (const old of [true, false]) {
    it(`LLaVA (${old ? 'before' : 'since'} transformers 4.52): vision tower and projector are their own groups; 2 layers as the config says`, () => {
      const layout = llava(old);
      const g = groupTensors(layout.tensors.map((t) => t.name), layout.config);
      assert.equal(g.family, 'llama');
      assert.equal(g.chosenBy, 'config');
      assert.equal(g.layerCount, 2);
      assert.equal(g.layerCountKey, 'text_config.num_hidden_layers');
      const top = old ? '' : 'model.';
      const lm = old ? 'language_model.model.' : 'model.language_model.';
      assert.equal(g.groups.get(`${top}vision_tower.vision_model.encoder.layers.2.self_attn.q_proj.weight`)!.role, 'vision_tower');
      assert.equal(g.groups.get(`${top}vision_tower.vision_model.embeddings.patch_embedding.weight`)!.role, 'vision_tower');
      assert.equal(g.groups.get(`${top}vision_tower.vision_model.embeddings.class_embedding`)!.role, 'vision_tower');
      assert.equal(g.groups.get(`${top}multi_modal_projector.linear_1.weight`)!.role, 'projector');
      assert.deepEqual(g.groups.get(`${lm}layers.1.self_attn.q_proj.weight`), L(1, 'q'));
      assert.deepEqual(g.groups.get(`${lm}embed_tokens.weight`), { role: 'embedding', module: 'embedding', vocab: true });
      assert.deepEqual(g.groups.get(`${lm}norm.weight`), { role: 'final_norm', module: 'norm' });
      assert.deepEqual(g.groups.get(old ? 'language_model.lm_head.weight' : 'lm_head.weight'), { role: 'lm_head', module: 'lm_head', vocab: true });
      const layers = new Set([...g.groups.values()].filter((x) => x.role === 'layer').map((x) => x.layer));
      assert.deepEqual([...layers].sort(), [0, 1]);
    });
  }

  it('Qwen2-VL: `visual.blocks.N` is the vision tower, not layer N', () => {
    const layout = qwen2vl();
    const g = groupTensors(layout.tensors.map((t) => t.name), layout.config);
    assert.equal(g.layerCount, 2);
    assert.equal(g.groups.get('visual.blocks.1.attn.qkv.weight')!.role, 'vision_tower');
    assert.equal(g.groups.get('visual.merger.mlp.0.weight')!.role, 'vision_tower');
    assert.deepEqual(g.groups.get('model.layers.0.self_attn.q_proj.bias'), L(0, 'q'));
  });

  it('DeepSeek-V3: the MTP layer is its own group, with an embedding and an LM head; MLA and MoE kinds', () => {
    const layout = deepseekV3();
    const g = groupTensors(layout.tensors.map((t) => t.name), layout.config);
    assert.equal(g.family, 'deepseek_v3');
    assert.equal(g.layerCount, 2);
    assert.deepEqual(g.groups.get('model.layers.2.embed_tokens.weight'), { role: 'mtp', layer: 2, module: 'embedding', vocab: true });
    assert.deepEqual(g.groups.get('model.layers.2.shared_head.head.weight'), { role: 'mtp', layer: 2, module: 'lm_head', vocab: true });
    assert.deepEqual(g.groups.get('model.layers.2.enorm.weight'), { role: 'mtp', layer: 2, module: 'norm' });
    assert.deepEqual(g.groups.get('model.layers.2.self_attn.q_a_proj.weight'), { role: 'mtp', layer: 2, module: 'q' });
    const want: [string, TensorGroup['module']][] = [
      ['model.layers.1.self_attn.q_a_proj.weight', 'q'],
      ['model.layers.1.self_attn.q_b_proj.weight', 'q'],
      ['model.layers.1.self_attn.kv_a_proj_with_mqa.weight', 'kv'],
      ['model.layers.1.self_attn.kv_b_proj.weight', 'kv'],
      ['model.layers.1.self_attn.q_a_layernorm.weight', 'norm'],
      ['model.layers.1.mlp.gate.weight', 'router'],
      ['model.layers.1.mlp.gate.e_score_correction_bias', 'router'],
      ['model.layers.1.mlp.experts.1.gate_proj.weight', 'gate'],
      ['model.layers.1.mlp.shared_experts.down_proj.weight', 'down'],
    ];
    for (const [name, module] of want) assert.deepEqual(g.groups.get(name), L(1, module), name);
  });

  it('module kinds of Phi-2, Phi-3, Falcon, StableLM-2, Qwen2-MoE and transformers-v5 fused experts', () => {
    const cases: [Record<string, unknown>, string, TensorGroup][] = [
      [{ architectures: ['PhiForCausalLM'] }, 'model.layers.0.self_attn.dense.weight', L(0, 'o')],
      [{ architectures: ['PhiForCausalLM'] }, 'model.final_layernorm.bias', { role: 'final_norm', module: 'norm' }],
      [{ architectures: ['PhiForCausalLM'] }, 'lm_head.bias', { role: 'lm_head', module: 'lm_head', vocab: true }],
      [{ architectures: ['Phi3ForCausalLM'] }, 'model.layers.0.mlp.gate_up_proj.weight', L(0, 'gate_up')],
      [{ architectures: ['Phi3ForCausalLM'] }, 'model.layers.0.self_attn.qkv_proj.weight', L(0, 'qkv')],
      [{ architectures: ['FalconForCausalLM'] }, 'transformer.h.0.ln_attn.weight', L(0, 'norm')],
      [{ architectures: ['FalconForCausalLM'] }, 'transformer.h.0.ln_mlp.bias', L(0, 'norm')],
      [{ architectures: ['FalconForCausalLM'] }, 'transformer.word_embeddings.weight', { role: 'embedding', module: 'embedding', vocab: true }],
      [{ architectures: ['StableLmForCausalLM'] }, 'model.layers.0.self_attn.q_layernorm.norms.3.weight', L(0, 'norm')],
      [{ architectures: ['StableLmForCausalLM'] }, 'model.layers.0.self_attn.k_layernorm.norms.0.weight', L(0, 'norm')],
      [{ architectures: ['Qwen2MoeForCausalLM'] }, 'model.layers.0.mlp.gate.weight', L(0, 'router')],
      [{ architectures: ['Qwen2MoeForCausalLM'] }, 'model.layers.0.mlp.shared_expert_gate.weight', L(0, 'router')],
      [{ architectures: ['Qwen2MoeForCausalLM'] }, 'model.layers.0.mlp.shared_expert.gate_proj.weight', L(0, 'gate')],
      [{ architectures: ['MixtralForCausalLM'] }, 'model.layers.0.mlp.experts.gate_up_proj', L(0, 'gate_up')],
      [{ architectures: ['MixtralForCausalLM'] }, 'model.layers.0.mlp.experts.down_proj', L(0, 'down')],
      [{ architectures: ['MixtralForCausalLM'] }, 'model.layers.0.mlp.gate.weight', L(0, 'router')],
    ];
    for (const [config, name, want] of cases) {
      const names = [name, 'model.layers.0.input_layernorm.weight', 'transformer.h.0.ln_attn.weight'];
      assert.deepEqual(groupTensors(names, { num_hidden_layers: 1, ...config }).groups.get(name), want, name);
    }
  });

  it('a numbered block the family table does not place is "Other", never a decoder layer', () => {
    const names = ['model.layers.0.self_attn.q_proj.weight', 'model.speech_encoder.layers.5.fc1.weight', 'model.norm.weight'];
    const g = groupTensors(names, { architectures: ['LlamaForCausalLM'], num_hidden_layers: 1 });
    assert.deepEqual(g.groups.get('model.speech_encoder.layers.5.fc1.weight'), { role: 'other', module: 'other' });
    assert.equal(g.layerCount, 1);
  });

  it('without a config the names pick the table, and inspect can say so', () => {
    const layout = llava(false);
    const g = groupTensors(layout.tensors.map((t) => t.name), null);
    assert.equal(g.chosenBy, 'names');
    assert.equal(g.groups.get('model.vision_tower.vision_model.encoder.layers.2.mlp.fc1.weight')!.role, 'vision_tower');
    assert.equal(g.layerCount, 2, 'the highest language-model layer + 1');
    assert.equal(groupTensors(['backbone.blocks.0.mixer.weight'], { architectures: ['MambaForCausalLM'] }).chosenBy, 'generic');
  });
});

/** Reads a merge's output and its inputs; `same(a, b)` compares float64 arrays bit for bit. */
function same(a: Float64Array, b: Float64Array, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

/** The decoder layer of a language-model tensor of the fixtures (2 layers; DeepSeek's layer 2 is MTP), else null. */
function decoderLayer(name: string): number | null {
  const m = /^(?:language_model\.model\.|model\.language_model\.|model\.)layers\.(\d+)\./.exec(name);
  return m && Number(m[1]) < 2 ? Number(m[1]) : null;
}

async function mergeYaml(yaml: string): Promise<string> {
  const file = fresh('recipe') + '.yaml';
  fs.writeFileSync(file, yaml);
  const loaded = loadRecipeFile(file);
  assert.ok(loaded.plan, JSON.stringify(loaded.issues));
  const out = fresh('out');
  await runMergePlan(loaded.plan, { out, threads: 2, recipeText: loaded.text });
  return out;
}

describe('merges of multimodal checkpoints keep every tower tensor', () => {
  it('a slices: frankenmerge of LLaVA keeps all vision and projector tensors, stacks 3 layers and writes text_config.num_hidden_layers', async () => {
    const a = writeLayout(fresh('llava-a'), llava(false), 1);
    const b = writeLayout(fresh('llava-b'), llava(false), 2);
    const out = await mergeYaml(`merge_method: linear
slices:
  - sources:
      - model: ${a}
        layer_range: [0, 2]
  - sources:
      - model: ${b}
        layer_range: [1, 2]
parameters:
  weight: 1.0
dtype: float32
`);
    const [A, B, O] = [readAll(a), readAll(b), readAll(out)];
    const towers = [...A.keys()].filter((k) => k.startsWith('model.vision_tower.') || k.startsWith('model.multi_modal_projector.'));
    assert.equal(towers.length, 18);
    for (const k of towers) same(O.get(k)!.values, A.get(k)!.values, k);
    same(O.get('model.language_model.layers.2.mlp.up_proj.weight')!.values, B.get('model.language_model.layers.1.mlp.up_proj.weight')!.values, 'layer 2 from b');
    same(O.get('model.language_model.layers.0.mlp.up_proj.weight')!.values, A.get('model.language_model.layers.0.mlp.up_proj.weight')!.values, 'layer 0 from a');
    assert.equal(O.size, A.size + 9, 'every input tensor plus one decoder layer');
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')) as { num_hidden_layers?: number; text_config: { num_hidden_layers: number }; vision_config: { num_hidden_layers: number } };
    assert.equal(config.text_config.num_hidden_layers, 3);
    assert.equal(config.num_hidden_layers, undefined, 'no top-level count where the config keeps it in text_config');
    assert.equal(config.vision_config.num_hidden_layers, 3);
  });

  for (const [what, layout] of [['LLaVA', llava(true)], ['Qwen2-VL', qwen2vl()], ['DeepSeek-V3', deepseekV3()]] as const) {
    it(`${what}: a gradient spreads over the decoder layers only (the last layer gets the gradient's end)`, async () => {
      const base = writeLayout(fresh('base'), layout, 3);
      const chat = writeLayout(fresh('chat'), layout, 4);
      // linear with weights base [1, 0], chat [0, 1]: layer 0 is the base, the last layer the chat.
      const out = await mergeYaml(`merge_method: linear
models:
  - model: ${base}
    parameters: { weight: [1.0, 0.0] }
  - model: ${chat}
    parameters: { weight: [0.0, 1.0] }
dtype: float32
`);
      const [B, C, O] = [readAll(base), readAll(chat), readAll(out)];
      let checked = 0;
      for (const [name, b] of B) {
        const o = O.get(name)!.values;
        const layer = decoderLayer(name);
        if (layer !== null) {
          same(o, (layer === 0 ? B : C).get(name)!.values, `${name} (layer ${layer})`);
          checked++;
        } else {
          // Towers, embeddings, the final norm, heads and the MTP layer: depth 0 (mergekit ≥ 0.1.2).
          same(o, b.values, name);
        }
      }
      assert.ok(checked > 10);
    });
  }
});

describe('vocabulary tensors: --skip-embed and --special-tokens cover every one', () => {
  it('DeepSeek-V3 with an extended target vocabulary: --skip-embed keeps the MTP embedding and head too', async () => {
    const layout = deepseekV3();
    const base = writeLayout(fresh('ds-base'), layout, 5);
    const chat = writeLayout(fresh('ds-chat'), layout, 6);
    const wide = { 'model.embed_tokens.weight': VOCAB + 4, 'lm_head.weight': VOCAB + 4, 'model.layers.2.embed_tokens.weight': VOCAB + 4, 'model.layers.2.shared_head.head.weight': VOCAB + 4 };
    const cp = writeLayout(fresh('ds-cp'), deepseekV3(VOCAB + 4), 7, wide);
    const out = fresh('ds-out');
    await runApply({ target: cp, base, chats: [chat], out, skipEmbed: true, threads: 2 });
    const [B, C, P, O] = [readAll(base), readAll(chat), readAll(cp), readAll(out)];
    for (const name of Object.keys(wide)) same(O.get(name)!.values, P.get(name)!.values, name);
    const name = 'model.layers.2.eh_proj.weight';
    const want = Float64Array.from(P.get(name)!.values, (p, i) => Math.fround(p + (C.get(name)!.values[i]! - B.get(name)!.values[i]!)));
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(O.get(name)!.values[i]! - want[i]!) <= 1e-6 * (1 + Math.abs(want[i]!)), `${name}[${i}]`);
  });

  it('DeepSeek-V3: --special-tokens edits the MTP embedding and head rows as well as the main ones', async () => {
    const layout = deepseekV3();
    const base = writeLayout(fresh('ds-base'), layout, 8);
    const chat = writeLayout(fresh('ds-chat'), layout, 9);
    const cp = writeLayout(fresh('ds-cp'), layout, 10);
    const out = fresh('ds-out');
    await runApply({ target: cp, base, chats: [chat], out, skipEmbed: true, specialTokens: [[3, 5]], threads: 2 });
    const [C, O] = [readAll(chat), readAll(out)];
    for (const name of ['model.embed_tokens.weight', 'lm_head.weight', 'model.layers.2.embed_tokens.weight', 'model.layers.2.shared_head.head.weight']) {
      same(O.get(name)!.values.slice(3 * D, 4 * D), C.get(name)!.values.slice(5 * D, 6 * D), `${name} row 3`);
    }
  });

  it("Phi-2 with an extended target vocabulary: --skip-embed covers lm_head.bias; --special-tokens copies the bias's row", async () => {
    const base = writeLayout(fresh('phi-base'), phi2(), 11);
    const chat = writeLayout(fresh('phi-chat'), phi2(), 12);
    const wide = { 'model.embed_tokens.weight': VOCAB + 4, 'lm_head.weight': VOCAB + 4, 'lm_head.bias': VOCAB + 4 };
    const cp = writeLayout(fresh('phi-cp'), phi2(VOCAB + 4), 13, wide);
    const out = fresh('phi-out');
    await runApply({ target: cp, base, chats: [chat], out, skipEmbed: true, specialTokens: [[17, 2]], threads: 2 });
    const [C, P, O] = [readAll(chat), readAll(cp), readAll(out)];
    const bias = O.get('lm_head.bias')!.values;
    same(bias.slice(0, 17), P.get('lm_head.bias')!.values.slice(0, 17), 'lm_head.bias rows 0-16 (target)');
    assert.equal(bias[17], C.get('lm_head.bias')!.values[2], 'lm_head.bias row 17 = chat row 2');
  });

  it("--special-tokens with a tied chat model and an untied target: the chat's head rows are its embedding rows", async () => {
    const layout = llava(false);
    const tied = ['lm_head.weight'];
    const base = writeLayout(fresh('tied-base'), layout, 14, {}, tied);
    const chat = writeLayout(fresh('tied-chat'), layout, 15, {}, tied);
    const cp = writeLayout(fresh('untied-cp'), layout, 16);
    const out = fresh('tied-out');
    await runApply({ target: cp, base, chats: [chat], out, skipEmbed: true, specialTokens: [[1, 4]], threads: 2 });
    const [C, P, O] = [readAll(chat), readAll(cp), readAll(out)];
    const emb = C.get('model.language_model.embed_tokens.weight')!.values;
    same(O.get('lm_head.weight')!.values.slice(D, 2 * D), emb.slice(4 * D, 5 * D), 'head row 1 = chat embedding row 4');
    same(O.get('lm_head.weight')!.values.slice(0, D), P.get('lm_head.weight')!.values.slice(0, D), 'head row 0 (target)');
  });
});

describe("GPT-2's two layouts match by name", () => {
  it('a `transformer.h.N` target takes the chat vector of `h.N` base and chat models; names follow the target', async () => {
    const base = writeLayout(fresh('g-base'), gpt2(false), 17);
    const chat = writeLayout(fresh('g-chat'), gpt2(false), 18);
    const cp = writeLayout(fresh('g-cp'), gpt2(true), 19);
    const out = fresh('g-out');
    await runApply({ target: cp, base, chats: [chat], out, ratios: [0.5], threads: 2 });
    const [B, C, P, O] = [readAll(base), readAll(chat), readAll(cp), readAll(out)];
    assert.deepEqual([...O.keys()].sort(), [...P.keys()].sort());
    for (const [name, p] of P) {
      const short = name.replace(/^transformer\./, '');
      const o = O.get(name)!.values;
      for (let i = 0; i < o.length; i++) {
        const want = p.values[i]! + 0.5 * (C.get(short)!.values[i]! - B.get(short)!.values[i]!);
        assert.ok(Math.abs(o[i]! - want) <= 1e-6 * (1 + Math.abs(want)), `${name}[${i}]: ${o[i]} vs ${want}`);
      }
    }
  });
});

describe('diff and inspect as a user sees them (the built CLI)', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CHATVEC_WORKER_SCRIPT: '' }, timeout: 60_000 });
  before(() => ensureCli());

  it('inspect of LLaVA: 2 layers, the vision tower and projector as groups, the table named with its source', () => {
    const m = writeLayout(fresh('llava-inspect'), llava(true), 20);
    const r = run('inspect', m);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /layer names: llama, from config\.json/);
    assert.match(r.stdout, /^ {2}layers {8}2 {3}vocabulary 16$/m);
    assert.match(r.stdout, /Vision tower/);
    assert.match(r.stdout, /Projector/);
    assert.doesNotMatch(r.stdout, /Layer 2/);
  });

  it('diff of the two GPT-2 layouts compares every tensor', () => {
    const a = writeLayout(fresh('g-a'), gpt2(false), 21);
    const b = writeLayout(fresh('g-b'), gpt2(true), 22);
    const r = run('diff', a, b, '--no-cache', '--json');
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { tensors: unknown[]; onlyInA: string[]; onlyInB: string[] };
    assert.equal(report.tensors.length, gpt2(true).tensors.length);
    assert.deepEqual([report.onlyInA, report.onlyInB], [[], []]);
  });

  it('diff says when the names differ only by a prefix the families do not alias', () => {
    const names = ['layers.0.self_attn.q_proj.weight', 'layers.0.mlp.up_proj.weight', 'norm.weight'];
    const a = writeModel(fresh('bare'), names.map((name) => ({ name, shape: [2, 2], values: [1, 2, 3, 4] })));
    const b = writeModel(fresh('prefixed'), names.map((name) => ({ name: `model.${name}`, shape: [2, 2], values: [1, 2, 3, 4] })));
    const r = run('diff', a, b, '--no-cache');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /the names differ only by the prefix "model\." on the B side/);
  });
});

describe('recipes over vocabulary tensors of every kind', () => {
  it('task_arithmetic onto an extended vocabulary: Phi-2 lm_head.bias and the DeepSeek MTP embedding/head take the base rows (mergekit)', async () => {
    for (const [make, wideNames] of [
      [phi2, ['model.embed_tokens.weight', 'lm_head.weight', 'lm_head.bias']],
      [deepseekV3, ['model.embed_tokens.weight', 'lm_head.weight', 'model.layers.2.embed_tokens.weight', 'model.layers.2.shared_head.head.weight']],
    ] as const) {
      const base = writeLayout(fresh('v-base'), make(), 23);
      const chat = writeLayout(fresh('v-chat'), make(), 24);
      const cp = writeLayout(fresh('v-cp'), make(VOCAB + 4), 25, Object.fromEntries(wideNames.map((k) => [k, VOCAB + 4])));
      const out = await mergeYaml(`merge_method: task_arithmetic
base_model: ${base}
models:
  - model: ${chat}
    parameters: { weight: 1.0 }
  - model: ${cp}
    parameters: { weight: 1.0 }
dtype: float32
`);
      const [B, C, P, O] = [readAll(base), readAll(chat), readAll(cp), readAll(out)];
      for (const name of wideNames) {
        const o = O.get(name)!.values;
        const b = B.get(name)!.values;
        assert.equal(o.length, b.length, `${name}: the base's rows`);
        for (let i = 0; i < o.length; i++) {
          const want = b[i]! + (C.get(name)!.values[i]! - b[i]!) + (P.get(name)!.values[i]! - b[i]!);
          assert.ok(Math.abs(o[i]! - want) <= 1e-6 * (1 + Math.abs(want)), `${name}[${i}]: ${o[i]} vs ${want}`);
        }
      }
    }
  });
});
