// Tiny checkpoints in the tensor layouts of real families (names and configs as transformers
// saves them, per mergekit's architecture files and public weight maps), with small shapes and
// values drawn from a seed. Used by the architecture tests; no code under test is involved.
import { type FixtureTensor, rng, writeModel } from './recipeFixtures';

export interface Layout {
  readonly config: Record<string, unknown>;
  readonly tensors: readonly { readonly name: string; readonly shape: readonly number[] }[];
}

export const D = 8; // hidden size
export const VOCAB = 16;

type T = { name: string; shape: number[] };
const mat = (name: string, rows = D, cols = D): T => ({ name, shape: [rows, cols] });
const vec = (name: string, n = D): T => ({ name, shape: [n] });

/** A Llama-style decoder layer under `p` (e.g. `model.layers.3.`); `bias` adds q/k/v biases (Qwen2). */
function llamaLayer(p: string, bias = false): T[] {
  return [
    mat(`${p}self_attn.q_proj.weight`),
    ...(bias ? [vec(`${p}self_attn.q_proj.bias`), vec(`${p}self_attn.k_proj.bias`), vec(`${p}self_attn.v_proj.bias`)] : []),
    mat(`${p}self_attn.k_proj.weight`),
    mat(`${p}self_attn.v_proj.weight`),
    mat(`${p}self_attn.o_proj.weight`),
    mat(`${p}mlp.gate_proj.weight`),
    mat(`${p}mlp.up_proj.weight`),
    mat(`${p}mlp.down_proj.weight`),
    vec(`${p}input_layernorm.weight`),
    vec(`${p}post_attention_layernorm.weight`),
  ];
}

/** A CLIP vision tower (as LLaVA stores it) under `p` (`vision_tower.` or `model.vision_tower.`). */
function clipTower(p: string, layers: number): T[] {
  return [
    mat(`${p}vision_model.embeddings.patch_embedding.weight`),
    mat(`${p}vision_model.embeddings.position_embedding.weight`),
    vec(`${p}vision_model.embeddings.class_embedding`),
    ...Array.from({ length: layers }, (_, j) => [
      mat(`${p}vision_model.encoder.layers.${j}.self_attn.q_proj.weight`),
      mat(`${p}vision_model.encoder.layers.${j}.self_attn.k_proj.weight`),
      mat(`${p}vision_model.encoder.layers.${j}.mlp.fc1.weight`),
      vec(`${p}vision_model.encoder.layers.${j}.layer_norm1.weight`),
    ]).flat(),
    vec(`${p}vision_model.post_layernorm.weight`),
  ];
}

/**
 * LLaVA with a 2-layer language model and a 3-layer vision tower: `old` is the layout before
 * transformers 4.52 (`language_model.model.…`, `vision_tower.…`), else the current one
 * (`model.language_model.…`, `model.vision_tower.…`, `lm_head` at the top).
 */
export function llava(old: boolean): Layout {
  const lm = old ? 'language_model.model.' : 'model.language_model.';
  const top = old ? '' : 'model.';
  return {
    config: {
      architectures: ['LlavaForConditionalGeneration'],
      model_type: 'llava',
      text_config: { model_type: 'llama', num_hidden_layers: 2, vocab_size: VOCAB, hidden_size: D },
      vision_config: { model_type: 'clip_vision_model', num_hidden_layers: 3 },
    },
    tensors: [
      ...clipTower(`${top}vision_tower.`, 3),
      mat(`${top}multi_modal_projector.linear_1.weight`),
      mat(`${top}multi_modal_projector.linear_2.weight`),
      mat(`${lm}embed_tokens.weight`, VOCAB),
      ...llamaLayer(`${lm}layers.0.`),
      ...llamaLayer(`${lm}layers.1.`),
      vec(`${lm}norm.weight`),
      mat(old ? 'language_model.lm_head.weight' : 'lm_head.weight', VOCAB),
    ],
  };
}

/** Qwen2-VL: a 2-layer Qwen2 language model (with q/k/v biases) and a deeper `visual.` tower of 3 blocks. */
export function qwen2vl(): Layout {
  return {
    config: { architectures: ['Qwen2VLForConditionalGeneration'], model_type: 'qwen2_vl', num_hidden_layers: 2, vision_config: { depth: 3 } },
    tensors: [
      mat('visual.patch_embed.proj.weight'),
      ...[0, 1, 2].flatMap((j) => [mat(`visual.blocks.${j}.attn.qkv.weight`, 3 * D), mat(`visual.blocks.${j}.mlp.fc1.weight`), vec(`visual.blocks.${j}.norm1.weight`)]),
      mat('visual.merger.mlp.0.weight'),
      mat('model.embed_tokens.weight', VOCAB),
      ...llamaLayer('model.layers.0.', true),
      ...llamaLayer('model.layers.1.', true),
      vec('model.norm.weight'),
      mat('lm_head.weight', VOCAB),
    ],
  };
}

/** DeepSeek-V3 attention (MLA) under `p`. */
function mla(p: string): T[] {
  return [
    mat(`${p}self_attn.q_a_proj.weight`),
    vec(`${p}self_attn.q_a_layernorm.weight`),
    mat(`${p}self_attn.q_b_proj.weight`),
    mat(`${p}self_attn.kv_a_proj_with_mqa.weight`),
    vec(`${p}self_attn.kv_a_layernorm.weight`),
    mat(`${p}self_attn.kv_b_proj.weight`),
    mat(`${p}self_attn.o_proj.weight`),
    vec(`${p}input_layernorm.weight`),
    vec(`${p}post_attention_layernorm.weight`),
  ];
}

/** DeepSeek-V3 MoE MLP under `p`: router with its bias correction, two experts, a shared expert. */
function moe(p: string): T[] {
  return [
    mat(`${p}mlp.gate.weight`, 2),
    vec(`${p}mlp.gate.e_score_correction_bias`, 2),
    ...[0, 1].flatMap((e) => [mat(`${p}mlp.experts.${e}.gate_proj.weight`), mat(`${p}mlp.experts.${e}.up_proj.weight`), mat(`${p}mlp.experts.${e}.down_proj.weight`)]),
    mat(`${p}mlp.shared_experts.gate_proj.weight`),
    mat(`${p}mlp.shared_experts.down_proj.weight`),
  ];
}

/**
 * DeepSeek-V3 with 2 decoder layers (a dense one, an MoE one) and its multi-token-prediction
 * layer at `model.layers.2` (its own embed_tokens and shared_head.head); `vocab` rows.
 */
export function deepseekV3(vocab = VOCAB): Layout {
  return {
    config: { architectures: ['DeepseekV3ForCausalLM'], model_type: 'deepseek_v3', num_hidden_layers: 2, num_nextn_predict_layers: 1, vocab_size: vocab },
    tensors: [
      mat('model.embed_tokens.weight', vocab),
      ...mla('model.layers.0.'),
      mat('model.layers.0.mlp.gate_proj.weight'),
      mat('model.layers.0.mlp.up_proj.weight'),
      mat('model.layers.0.mlp.down_proj.weight'),
      ...mla('model.layers.1.'),
      ...moe('model.layers.1.'),
      mat('model.layers.2.embed_tokens.weight', vocab),
      vec('model.layers.2.enorm.weight'),
      vec('model.layers.2.hnorm.weight'),
      mat('model.layers.2.eh_proj.weight', D, 2 * D),
      ...mla('model.layers.2.'),
      ...moe('model.layers.2.'),
      vec('model.layers.2.shared_head.norm.weight'),
      mat('model.layers.2.shared_head.head.weight', vocab),
      vec('model.norm.weight'),
      mat('lm_head.weight', vocab),
    ],
  };
}

/** Phi-2 (PhiForCausalLM): `self_attn.dense`, `final_layernorm`, an LM head with a bias. */
export function phi2(vocab = VOCAB): Layout {
  const layer = (i: number): T[] => [
    mat(`model.layers.${i}.self_attn.q_proj.weight`),
    mat(`model.layers.${i}.self_attn.dense.weight`),
    mat(`model.layers.${i}.mlp.fc1.weight`),
    mat(`model.layers.${i}.mlp.fc2.weight`),
    vec(`model.layers.${i}.input_layernorm.weight`),
  ];
  return {
    config: { architectures: ['PhiForCausalLM'], model_type: 'phi', num_hidden_layers: 2, vocab_size: vocab },
    tensors: [mat('model.embed_tokens.weight', vocab), ...layer(0), ...layer(1), vec('model.final_layernorm.weight'), vec('model.final_layernorm.bias'), mat('lm_head.weight', vocab), vec('lm_head.bias', vocab)],
  };
}

/** GPT-2 with 2 blocks; `prefixed`: as transformers saves it (`transformer.h.0.…`), else as the Hub's gpt2 files (`h.0.…`). */
export function gpt2(prefixed: boolean): Layout {
  const p = prefixed ? 'transformer.' : '';
  return {
    config: { architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', n_layer: 2, vocab_size: VOCAB },
    tensors: [
      mat(`${p}wte.weight`, VOCAB),
      mat(`${p}wpe.weight`, 4),
      ...[0, 1].flatMap((i) => [mat(`${p}h.${i}.attn.c_attn.weight`, D, 3 * D), vec(`${p}h.${i}.attn.c_attn.bias`, 3 * D), mat(`${p}h.${i}.mlp.c_fc.weight`), vec(`${p}h.${i}.ln_1.weight`)]),
      vec(`${p}ln_f.weight`),
    ],
  };
}

/**
 * Writes `layout` to `dir` (F32, values in [-1, 1) from `seed`); `rows` overrides the first
 * dimension of the named tensors (a target with an extended vocabulary).
 */
export function writeLayout(dir: string, layout: Layout, seed: number, rows: Readonly<Record<string, number>> = {}, drop: readonly string[] = []): string {
  const r = rng(seed);
  const tensors: FixtureTensor[] = layout.tensors
    .filter((t) => !drop.includes(t.name))
    .map((t) => {
      const shape = rows[t.name] !== undefined ? [rows[t.name]!, ...t.shape.slice(1)] : [...t.shape];
      const n = shape.reduce((a, b) => a * b, 1);
      return { name: t.name, shape, values: Array.from({ length: n }, () => 2 * r() - 1) };
    });
  return writeModel(dir, tensors, layout.config);
}
