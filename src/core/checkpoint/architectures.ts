/**
 * Model families as data, as mergekit's architecture files are: where a family keeps its
 * language model's layers, its token embeddings, final norm and LM head, which config key holds
 * the decoder layer count, and which other towers (vision, audio, projector) sit beside it.
 * `config.json` (`architectures`, `model_type`) picks the table; names pick it only when the
 * config is missing or names a family not listed here (inspect says which).
 *
 * Names are written as literal prefixes and segment names, never as patterns: grouping parses
 * names with string operations, so it stays linear in the name (names come from untrusted headers).
 */

/** A group of tensors beside the language model, merged per tensor and never sliced by layer. */
export type TowerRole = 'vision_tower' | 'projector' | 'audio_tower';

export interface Architecture {
  /** Shown by inspect ("llama", "gpt2", …). */
  readonly name: string;
  /** config.json `architectures[0]` values that select this table. */
  readonly architectures: readonly string[];
  /** config.json `model_type` values (top level or `text_config.model_type`) that select it. */
  readonly modelTypes: readonly string[];
  /**
   * Prefixes under which the language model's tensors sit, most specific first; '' for names with
   * no prefix. Multimodal checkpoints nest the language model (`language_model.model.` in the
   * LLaVA layout before transformers 4.52, `model.language_model.` after).
   */
  readonly lmPrefixes: readonly string[];
  /** The segment before a decoder layer's index under an LM prefix: `layers` in `model.layers.3.…`. */
  readonly layerSegment: string;
  /** First segments (under an LM prefix) of the token embeddings: their rows are token ids. */
  readonly tokenEmbeddings: readonly string[];
  /** Other tensors before the first layer: position embeddings, embedding norms. */
  readonly otherEmbeddings: readonly string[];
  /** First segments (under an LM prefix) of the final norm. */
  readonly finalNorms: readonly string[];
  /** Whole-name prefixes of the LM head (rows are token ids; weight and bias). */
  readonly lmHeads: readonly string[];
  /** Config keys (dotted paths) of the decoder layer count; the first present wins. */
  readonly layerCountKeys: readonly string[];
  /**
   * Decoder layers numbered at or above the layer count are multi-token-prediction layers
   * (DeepSeek-V3 keeps one at `model.layers.{num_hidden_layers}`), with their own token
   * embedding and LM head.
   */
  readonly mtp?: { readonly tokenEmbedding: string; readonly lmHead: string };
  /**
   * Prefixes that name the same tensor with and without them (`transformer.h.0.…` = `h.0.…`), as
   * mergekit's `aliases`: a checkpoint of one layout matches the other by name.
   */
  readonly aliasPrefix?: string;
}

const LLAMA_LIKE = {
  lmPrefixes: ['model.language_model.', 'language_model.model.', 'model.', ''],
  layerSegment: 'layers',
  tokenEmbeddings: ['embed_tokens'],
  otherEmbeddings: [],
  // Phi-2 (PhiForCausalLM) names its final norm `final_layernorm`.
  finalNorms: ['norm', 'final_layernorm'],
  lmHeads: ['lm_head.', 'language_model.lm_head.'],
  layerCountKeys: ['num_hidden_layers', 'text_config.num_hidden_layers'],
} as const;

/** The tables, in the order names are tried when the config does not pick one. */
export const ARCHITECTURES: readonly Architecture[] = [
  {
    name: 'llama',
    ...LLAMA_LIKE,
    architectures: [
      'LlamaForCausalLM', 'MistralForCausalLM', 'MixtralForCausalLM', 'Qwen2ForCausalLM', 'Qwen2MoeForCausalLM', 'Qwen3ForCausalLM',
      'Qwen3MoeForCausalLM', 'GemmaForCausalLM', 'Gemma2ForCausalLM', 'Gemma3ForCausalLM', 'Gemma3ForConditionalGeneration',
      'Phi3ForCausalLM', 'PhiForCausalLM', 'OlmoForCausalLM', 'Olmo2ForCausalLM', 'CohereForCausalLM', 'Cohere2ForCausalLM',
      'StableLmForCausalLM', 'Starcoder2ForCausalLM', 'GraniteForCausalLM', 'DeepseekV2ForCausalLM', 'LlavaForConditionalGeneration',
      'LlavaNextForConditionalGeneration', 'Mistral3ForConditionalGeneration', 'Qwen2VLForConditionalGeneration',
      'Qwen2_5_VLForConditionalGeneration', 'Qwen2AudioForConditionalGeneration',
    ],
    modelTypes: [
      'llama', 'mistral', 'mixtral', 'qwen2', 'qwen2_moe', 'qwen3', 'qwen3_moe', 'gemma', 'gemma2', 'gemma3', 'gemma3_text', 'phi3', 'phi',
      'olmo', 'olmo2', 'cohere', 'cohere2', 'stablelm', 'starcoder2', 'granite', 'deepseek_v2', 'llava', 'llava_next', 'mistral3',
      'qwen2_vl', 'qwen2_5_vl', 'qwen2_audio',
    ],
  },
  {
    name: 'deepseek_v3',
    ...LLAMA_LIKE,
    architectures: ['DeepseekV3ForCausalLM'],
    modelTypes: ['deepseek_v3'],
    mtp: { tokenEmbedding: 'embed_tokens', lmHead: 'shared_head.head' },
  },
  {
    name: 'gpt2',
    architectures: ['GPT2LMHeadModel', 'GPT2Model'],
    modelTypes: ['gpt2'],
    // The Hub's gpt2 files name tensors `h.0.…`; transformers saves `transformer.h.0.…`.
    lmPrefixes: ['transformer.', ''],
    aliasPrefix: 'transformer.',
    layerSegment: 'h',
    tokenEmbeddings: ['wte'],
    otherEmbeddings: ['wpe'],
    finalNorms: ['ln_f'],
    lmHeads: ['lm_head.'],
    layerCountKeys: ['n_layer', 'num_hidden_layers'],
  },
  {
    name: 'falcon',
    architectures: ['FalconForCausalLM', 'BloomForCausalLM'],
    modelTypes: ['falcon', 'bloom'],
    lmPrefixes: ['transformer.'],
    layerSegment: 'h',
    tokenEmbeddings: ['word_embeddings'],
    otherEmbeddings: ['word_embeddings_layernorm'],
    finalNorms: ['ln_f'],
    lmHeads: ['lm_head.'],
    layerCountKeys: ['num_hidden_layers', 'n_layer'],
  },
  {
    name: 'gpt_neox',
    architectures: ['GPTNeoXForCausalLM'],
    modelTypes: ['gpt_neox'],
    lmPrefixes: ['gpt_neox.'],
    layerSegment: 'layers',
    tokenEmbeddings: ['embed_in'],
    otherEmbeddings: [],
    finalNorms: ['final_layer_norm'],
    lmHeads: ['embed_out.'],
    layerCountKeys: ['num_hidden_layers'],
  },
  {
    name: 'opt',
    architectures: ['OPTForCausalLM'],
    modelTypes: ['opt'],
    lmPrefixes: ['model.decoder.'],
    layerSegment: 'layers',
    tokenEmbeddings: ['embed_tokens'],
    otherEmbeddings: ['embed_positions'],
    finalNorms: ['final_layer_norm'],
    lmHeads: ['lm_head.'],
    layerCountKeys: ['num_hidden_layers'],
  },
  {
    name: 'mpt',
    architectures: ['MPTForCausalLM'],
    modelTypes: ['mpt'],
    lmPrefixes: ['transformer.'],
    layerSegment: 'blocks',
    tokenEmbeddings: ['wte'],
    otherEmbeddings: [],
    finalNorms: ['norm_f'],
    lmHeads: ['lm_head.'],
    layerCountKeys: ['n_layers'],
  },
];

/** Whole-name prefixes of towers beside the language model (any family), with their group. */
export const TOWER_PREFIXES: readonly (readonly [string, TowerRole])[] = [
  ['vision_tower.', 'vision_tower'],
  ['model.vision_tower.', 'vision_tower'],
  ['visual.', 'vision_tower'],
  ['model.visual.', 'vision_tower'],
  ['vision_model.', 'vision_tower'],
  ['model.vision_model.', 'vision_tower'],
  ['multi_modal_projector.', 'projector'],
  ['model.multi_modal_projector.', 'projector'],
  ['mm_projector.', 'projector'],
  ['model.mm_projector.', 'projector'],
  ['model.connector.', 'projector'],
  ['audio_tower.', 'audio_tower'],
  ['model.audio_tower.', 'audio_tower'],
];

/** The tower a tensor belongs to, or null. */
export function towerOf(name: string): TowerRole | null {
  for (const [p, role] of TOWER_PREFIXES) if (name.startsWith(p)) return role;
  return null;
}

/** A config value at a dotted path (`text_config.num_hidden_layers`), or undefined. */
export function configValue(config: Readonly<Record<string, unknown>> | null, path: string): unknown {
  let v: unknown = config;
  for (const k of path.split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

/**
 * Sets a config value at a dotted path, creating no objects: the path's parents must exist (a
 * layer count is written where the config keeps it, e.g. `text_config.num_hidden_layers`).
 */
export function setConfigValue(config: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let o: Record<string, unknown> = config;
  for (const k of keys.slice(0, -1)) {
    const next = o[k];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) return;
    o = next as Record<string, unknown>;
  }
  o[keys[keys.length - 1]!] = value;
}

/** The table config.json names (by `architectures[0]`, then `model_type`), or null. */
export function architectureFromConfig(config: Readonly<Record<string, unknown>> | null): Architecture | null {
  if (!config) return null;
  const archs = config.architectures;
  const first = Array.isArray(archs) && typeof archs[0] === 'string' ? archs[0] : null;
  if (first !== null) {
    const a = ARCHITECTURES.find((x) => x.architectures.includes(first));
    if (a) return a;
  }
  for (const key of ['model_type', 'text_config.model_type']) {
    const t = configValue(config, key);
    if (typeof t === 'string') {
      const a = ARCHITECTURES.find((x) => x.modelTypes.includes(t));
      if (a) return a;
    }
  }
  return null;
}

/**
 * The decoder layer count the config states (the first of the family's keys that holds a
 * non-negative integer), or null.
 */
export function configLayerCount(arch: Architecture, config: Readonly<Record<string, unknown>> | null): number | null {
  for (const key of arch.layerCountKeys) {
    const v = configValue(config, key);
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  }
  return null;
}

/** The dotted config path that holds the layer count (where a merge writes a new count). */
export function layerCountKeyOf(arch: Architecture, config: Readonly<Record<string, unknown>> | null): string {
  return arch.layerCountKeys.find((k) => configValue(config, k) !== undefined) ?? arch.layerCountKeys[0]!;
}

/**
 * The other spelling of a name under the family's alias prefix (`transformer.h.0.x` ↔ `h.0.x`),
 * or null. Only names of the language model (not heads, not towers) have one.
 */
export function aliasOf(arch: Architecture, name: string): string | null {
  const p = arch.aliasPrefix;
  if (p === undefined || arch.lmHeads.some((h) => name.startsWith(h)) || towerOf(name) !== null) return null;
  return name.startsWith(p) ? name.slice(p.length) : p + name;
}

/** The table of a family by its name, or null ("generic"). */
export function architectureNamed(name: string): Architecture | null {
  return ARCHITECTURES.find((a) => a.name === name) ?? null;
}
