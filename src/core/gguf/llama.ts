/**
 * The LLaMA family in GGUF, as llama.cpp's converter (convert_hf_to_gguf.py, LlamaModel and
 * Qwen2Model) writes it: arch `llama` for Llama 2/3, Mistral and TinyLlama-shaped checkpoints,
 * arch `qwen2` for Qwen2 (q/k/v biases). Hugging Face names map to llama.cpp's (token_embd,
 * blk.N.attn_q, …, output_norm, output); for arch `llama` the q and k rows are permuted back from
 * Hugging Face's rotate-half layout to the interleaved pairs ggml's rope expects (k by the
 * key-value head count under grouped-query attention). Qwen2 is converted without permutation,
 * as the converter does. Other families are refused by name.
 */
import type { CatalogueEntry, Checkpoint } from '../checkpoint/checkpoint';
import { ChatVecError } from '../errors';
import { ropeScalingOf } from './ropeScaling';
import type { GgmlType, GgufValue } from './writer';

/** The `--type` of an export: the type of the 2-D weights (norms and biases stay F32). */
/** The weight types `chatvec gguf` writes. */
export const GGUF_FILE_TYPES = ['F32', 'F16', 'BF16', 'Q8_0'] as const;
export type GgufFileType = (typeof GGUF_FILE_TYPES)[number];

/** `general.file_type` (llama.cpp's enum llama_ftype: ALL_F32, MOSTLY_F16, MOSTLY_Q8_0, MOSTLY_BF16). */
const FILE_TYPE_ID: Readonly<Record<GgufFileType, number>> = { F32: 0, F16: 1, Q8_0: 7, BF16: 32 };

/** ggml's quantization format version (GGML_QNT_VERSION), written by gguf-py into every file. */
const QUANTIZATION_VERSION = 2;

/** Hugging Face `architectures[0]` → GGUF arch. */
const ARCHES: Readonly<Record<string, 'llama' | 'qwen2'>> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'llama',
  Qwen2ForCausalLM: 'qwen2',
};

/** One tensor of the export read from the checkpoint: where its values come from and how they are laid out. */
export interface GgufSourceTensor {
  readonly name: string;
  readonly source: CatalogueEntry;
  readonly values?: undefined;
  readonly type: GgmlType;
  /** ggml order: [columns, rows] for a matrix, [n] for a vector. */
  readonly dims: readonly number[];
  /** Rows are permuted for rope within groups of this many heads (q: heads, k: key-value heads). */
  readonly permuteHeads?: number;
}

/** A tensor the export computes (llama3 rope scaling's rope_freqs.weight): F32 values in full. */
export interface GgufGeneratedTensor {
  readonly name: string;
  readonly source?: undefined;
  readonly values: Float32Array;
  readonly type: 'F32';
  readonly dims: readonly number[];
}

export interface GgufModelPlan {
  readonly arch: 'llama' | 'qwen2';
  readonly metadata: Map<string, GgufValue>;
  /** Generated tensors first, as the converter yields them before the checkpoint's. */
  readonly tensors: readonly (GgufSourceTensor | GgufGeneratedTensor)[];
  /** Token embedding rows: the vocabulary size the tokenizer metadata must match. */
  readonly vocabSize: number;
}

/** Decoder-layer tensors under `model.layers.N.`: Hugging Face suffix → llama.cpp name. */
const LAYER_NAMES: Readonly<Record<string, string>> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.q_proj.bias': 'attn_q.bias',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.k_proj.bias': 'attn_k.bias',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.v_proj.bias': 'attn_v.bias',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
};

const GLOBAL_NAMES: Readonly<Record<string, string>> = {
  'model.embed_tokens.weight': 'token_embd.weight',
  'model.norm.weight': 'output_norm.weight',
  'lm_head.weight': 'output.weight',
};

/**
 * Maps a LLaMA-family checkpoint onto GGUF tensors and `{arch}.*`/`general.*` metadata.
 * @param name `general.name`
 * @throws ChatVecError Unsupported (another family, a rope scaling llama.cpp has no form of (ropeScaling.ts), a tensor with no GGUF name),
 *   BadCheckpoint (no config.json, a missing or non-numeric hyperparameter, shapes that do not fit it)
 */
export function planLlamaFamily(c: Checkpoint, type: GgufFileType, name: string): GgufModelPlan {
  const cfg = c.config;
  if (!cfg) throw new ChatVecError('BadCheckpoint', `${c.path}: GGUF export needs the checkpoint folder's config.json`);
  const hfArch = Array.isArray(cfg.architectures) && typeof cfg.architectures[0] === 'string' ? cfg.architectures[0] : String(cfg.model_type ?? 'unknown');
  const arch = ARCHES[hfArch];
  if (!arch) {
    throw new ChatVecError('Unsupported', `${c.path}: GGUF export supports ${Object.keys(ARCHES).join(', ')}; this checkpoint is ${hfArch}`);
  }
  const int = (key: string, fallback?: number): number => {
    const v = cfg[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new ChatVecError('BadCheckpoint', `${c.folder}/config.json: "${key}" must be a positive integer for GGUF export`);
    return v;
  };
  const num = (v: unknown, key: string): number => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ChatVecError('BadCheckpoint', `${c.folder}/config.json: "${key}" must be a number for GGUF export`);
    return v;
  };
  const hidden = int('hidden_size');
  const heads = int('num_attention_heads');
  const kvHeads = int('num_key_value_heads', heads);
  const headDim = typeof cfg.head_dim === 'number' ? int('head_dim') : hidden / heads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new ChatVecError('BadCheckpoint', `${c.folder}/config.json: hidden_size ${hidden} / num_attention_heads ${heads} is not an even head size`);
  const layers = int('num_hidden_layers');
  const params = cfg.rope_parameters as { rope_theta?: unknown } | undefined;
  const ropeTheta = num(cfg.rope_theta ?? params?.rope_theta ?? 10000, 'rope_theta');
  const eps = num(cfg.rms_norm_eps ?? 1e-6, 'rms_norm_eps');
  const tied = cfg.tie_word_embeddings === true;
  const scaling = ropeScalingOf(cfg, c.folder, arch, headDim, ropeTheta);

  const tensors: (GgufSourceTensor | GgufGeneratedTensor)[] = [];
  if (scaling.ropeFreqs) tensors.push({ name: 'rope_freqs.weight', values: scaling.ropeFreqs, type: 'F32', dims: [scaling.ropeFreqs.length] });
  for (const t of c.tensors) {
    if (t.name.endsWith('.rotary_emb.inv_freq')) continue; // recomputed by llama.cpp, as the converter drops it
    const ggufName = ggufNameOf(t);
    if (ggufName === null) throw new ChatVecError('Unsupported', `${t.file}: tensor "${t.name}" has no place in a GGUF ${arch} model`);
    if (ggufName === 'output.weight' && tied) continue; // llama.cpp reads the tied head from token_embd
    const matrix = t.shape.length === 2;
    if (t.shape.length !== 1 && !matrix) throw new ChatVecError('BadCheckpoint', `${t.file}: tensor "${t.name}" has shape [${t.shape.join(', ')}]; expected 1 or 2 dimensions`);
    const dims = matrix ? [t.shape[1]!, t.shape[0]!] : [t.shape[0]!];
    const permuteHeads = arch === 'llama' ? permuteHeadsOf(t.name, heads, kvHeads) : undefined;
    if (permuteHeads !== undefined && t.shape[0]! % (2 * permuteHeads) !== 0) {
      throw new ChatVecError('BadCheckpoint', `${t.file}: tensor "${t.name}" has ${t.shape[0]} rows, not a whole number of ${permuteHeads} heads of even size`);
    }
    tensors.push({ name: ggufName, source: t, type: tensorType(type, dims), dims, ...(permuteHeads !== undefined ? { permuteHeads } : {}) });
  }
  const embd = tensors.find((t) => t.name === 'token_embd.weight');
  if (!embd) throw new ChatVecError('BadCheckpoint', `${c.path}: no model.embed_tokens.weight (token embeddings)`);
  const vocabSize = embd.dims[1]!;

  const m = new Map<string, GgufValue>();
  m.set('general.architecture', { type: 'string', value: arch });
  m.set('general.type', { type: 'string', value: 'model' });
  m.set('general.name', { type: 'string', value: name });
  m.set(`${arch}.vocab_size`, { type: 'u32', value: vocabSize });
  m.set(`${arch}.context_length`, { type: 'u32', value: int('max_position_embeddings', 4096) });
  m.set(`${arch}.embedding_length`, { type: 'u32', value: hidden });
  m.set(`${arch}.block_count`, { type: 'u32', value: layers });
  m.set(`${arch}.feed_forward_length`, { type: 'u32', value: int('intermediate_size') });
  m.set(`${arch}.attention.head_count`, { type: 'u32', value: heads });
  m.set(`${arch}.attention.head_count_kv`, { type: 'u32', value: kvHeads });
  m.set(`${arch}.rope.freq_base`, { type: 'f32', value: ropeTheta });
  m.set(`${arch}.attention.layer_norm_rms_epsilon`, { type: 'f32', value: eps });
  if (headDim !== hidden / heads) {
    m.set(`${arch}.attention.key_length`, { type: 'u32', value: headDim });
    m.set(`${arch}.attention.value_length`, { type: 'u32', value: headDim });
  }
  m.set(`${arch}.rope.dimension_count`, { type: 'u32', value: headDim });
  for (const [k, v] of scaling.metadata) m.set(k, v);
  m.set('general.file_type', { type: 'u32', value: FILE_TYPE_ID[type] });
  m.set('general.quantization_version', { type: 'u32', value: QUANTIZATION_VERSION });
  return { arch, metadata: m, tensors, vocabSize };
}

function ggufNameOf(t: CatalogueEntry): string | null {
  const global = GLOBAL_NAMES[t.name];
  if (global) return global;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(t.name);
  if (!m || t.group.role !== 'layer') return null;
  const suffix = LAYER_NAMES[m[2]!];
  return suffix ? `blk.${Number(m[1])}.${suffix}` : null;
}

/** Heads per permutation group: q by the attention heads, k by the key-value heads (GQA). */
function permuteHeadsOf(name: string, heads: number, kvHeads: number): number | undefined {
  if (name.endsWith('.self_attn.q_proj.weight') || name.endsWith('.self_attn.q_proj.bias')) return heads;
  if (name.endsWith('.self_attn.k_proj.weight') || name.endsWith('.self_attn.k_proj.bias')) return kvHeads;
  return undefined;
}

/**
 * The converter's choice per tensor: vectors (norms, biases) F32; matrices the requested type,
 * except Q8_0 rows that are not whole blocks of 32, which fall back to F16.
 */
function tensorType(type: GgufFileType, dims: readonly number[]): GgmlType {
  if (dims.length === 1) return 'F32';
  if (type === 'Q8_0' && dims[0]! % 32 !== 0) return 'F16';
  return type;
}

/**
 * Source row of output row `r` under the rope permutation: within each head of `headDim` rows,
 * output row i·2 + j takes input row j·(headDim/2) + i (the converter's reshape(n_head, 2,
 * headDim/2, …).swapaxes(1, 2)).
 */
export function permutedSourceRow(r: number, headDim: number): number {
  const head = Math.floor(r / headDim);
  const within = r % headDim;
  const i = within >> 1;
  const j = within & 1;
  return head * headDim + j * (headDim / 2) + i;
}
