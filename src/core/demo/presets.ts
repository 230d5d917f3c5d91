/**
 * LLaMA-shaped demo models. `1b` has TinyLlama's shapes (hidden 2048, 22 layers, intermediate
 * 5632, vocabulary 32000, grouped-query attention with 4 key/value heads), bf16, ~2.2 GB per model.
 */
import type { TensorSpec } from '../safetensors/writer';

/** The three models of the demo trio. */
export type DemoRole = 'base' | 'chat' | 'cp';

export type PresetName = 'tiny' | 'small' | '1b';
export const PRESET_NAMES: readonly PresetName[] = ['tiny', 'small', '1b'];

export interface DemoShape {
  readonly hidden: number;
  readonly layers: number;
  readonly intermediate: number;
  readonly heads: number;
  readonly kvHeads: number;
  /** Vocabulary of base and chat. */
  readonly vocab: number;
  /** Tokens the continually-pretrained model adds (e.g. a new language's words). */
  readonly cpExtraVocab: number;
  /** Shard budget for the generated inputs, in bytes (small and 1b come sharded). */
  readonly maxShardBytes: number;
}

export const PRESETS: Readonly<Record<PresetName, DemoShape>> = {
  tiny: { hidden: 64, layers: 4, intermediate: 176, heads: 4, kvHeads: 2, vocab: 512, cpExtraVocab: 64, maxShardBytes: 5e9 },
  small: { hidden: 256, layers: 8, intermediate: 704, heads: 8, kvHeads: 4, vocab: 4096, cpExtraVocab: 512, maxShardBytes: 8e6 },
  '1b': { hidden: 2048, layers: 22, intermediate: 5632, heads: 32, kvHeads: 4, vocab: 32000, cpExtraVocab: 3000, maxShardBytes: 1e9 },
};

/** The tensors of a LLaMA model in the order transformers saves them. */
export function llamaTensorSpecs(s: DemoShape, vocab: number): TensorSpec[] {
  const h = s.hidden;
  const kv = (h / s.heads) * s.kvHeads;
  const specs: TensorSpec[] = [{ name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [vocab, h] }];
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}.`;
    specs.push(
      { name: `${p}input_layernorm.weight`, dtype: 'BF16', shape: [h] },
      { name: `${p}mlp.down_proj.weight`, dtype: 'BF16', shape: [h, s.intermediate] },
      { name: `${p}mlp.gate_proj.weight`, dtype: 'BF16', shape: [s.intermediate, h] },
      { name: `${p}mlp.up_proj.weight`, dtype: 'BF16', shape: [s.intermediate, h] },
      { name: `${p}post_attention_layernorm.weight`, dtype: 'BF16', shape: [h] },
      { name: `${p}self_attn.k_proj.weight`, dtype: 'BF16', shape: [kv, h] },
      { name: `${p}self_attn.o_proj.weight`, dtype: 'BF16', shape: [h, h] },
      { name: `${p}self_attn.q_proj.weight`, dtype: 'BF16', shape: [h, h] },
      { name: `${p}self_attn.v_proj.weight`, dtype: 'BF16', shape: [kv, h] },
    );
  }
  specs.push({ name: 'model.norm.weight', dtype: 'BF16', shape: [h] }, { name: 'lm_head.weight', dtype: 'BF16', shape: [vocab, h] });
  return specs;
}
