// A tiny random LLaMA checkpoint (GQA: 4 query heads over 2 KV heads, 2 layers, untied head) with
// the byte-level BPE tokenizer of ggufReference.ts, for the tests that run it in llama.cpp.
import { LLAMA3_REGEX, writeByteLevelTokenizer } from './ggufReference';
import type { LlamaShape } from './llamaReference';
import { type FixtureTensor, rng, writeModel } from './recipeFixtures';

export const TINY_LLAMA: LlamaShape = { hidden: 64, heads: 4, kvHeads: 2, layers: 2, ffn: 128, vocab: 41, ropeTheta: 10000, eps: 1e-5 };

/** The weights, seeded: scale 0.3 (norms near 1), so that attention is far from uniform and logits spread. */
export function tinyLlamaTensors(seed: number, s: LlamaShape = TINY_LLAMA): FixtureTensor[] {
  const r = rng(seed);
  const hd = s.hidden / s.heads;
  const t = (name: string, shape: number[], norm = false): FixtureTensor => ({ name, shape, values: Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (norm ? 1 + 0.2 * (r() - 0.5) : 0.6 * (r() - 0.5))) });
  const out = [t('model.embed_tokens.weight', [s.vocab, s.hidden])];
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      t(`${p}input_layernorm.weight`, [s.hidden], true),
      t(`${p}self_attn.q_proj.weight`, [s.heads * hd, s.hidden]),
      t(`${p}self_attn.k_proj.weight`, [s.kvHeads * hd, s.hidden]),
      t(`${p}self_attn.v_proj.weight`, [s.kvHeads * hd, s.hidden]),
      t(`${p}self_attn.o_proj.weight`, [s.hidden, s.heads * hd]),
      t(`${p}post_attention_layernorm.weight`, [s.hidden], true),
      t(`${p}mlp.gate_proj.weight`, [s.ffn, s.hidden]),
      t(`${p}mlp.up_proj.weight`, [s.ffn, s.hidden]),
      t(`${p}mlp.down_proj.weight`, [s.hidden, s.ffn]),
    );
  }
  out.push(t('model.norm.weight', [s.hidden], true), t('lm_head.weight', [s.vocab, s.hidden]));
  return out;
}

/** The checkpoint folder (config.json, safetensors, byte-level BPE tokenizer) of `tensors`. */
export function writeTinyLlama(dir: string, tensors: readonly FixtureTensor[], s: LlamaShape = TINY_LLAMA): string {
  const model = writeModel(dir, tensors, {
    hidden_size: s.hidden, num_attention_heads: s.heads, num_key_value_heads: s.kvHeads, num_hidden_layers: s.layers,
    intermediate_size: s.ffn, max_position_embeddings: 128, rope_theta: s.ropeTheta, rms_norm_eps: s.eps, vocab_size: s.vocab,
    ...(s.llama3 ? { rope_scaling: { rope_type: 'llama3', factor: s.llama3.factor, low_freq_factor: s.llama3.lowFreqFactor, high_freq_factor: s.llama3.highFreqFactor, original_max_position_embeddings: s.llama3.original } } : {}),
  });
  writeByteLevelTokenizer(model, LLAMA3_REGEX);
  return model;
}

/** The weights as the float64 reference reads them (rounded to float32 first, as stored). */
export function referenceWeights(tensors: readonly FixtureTensor[]): Map<string, Float64Array> {
  return new Map(tensors.map((t) => [t.name, Float64Array.from(Float32Array.from(t.values))]));
}
