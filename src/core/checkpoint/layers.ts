/**
 * Layer grouping: each tensor gets a role (tower, embedding, layer i, final norm, LM head, MTP
 * layer, other), inside a layer a module kind, and a mark when its rows are token ids. The family
 * tables live in `architectures.ts`; this module applies them, with generic name patterns only
 * for checkpoints of no known family.
 *
 * Names come from untrusted headers (up to 100 MB of them), so everything here runs in time
 * linear in the name: tables are applied by string parsing, and each pattern is anchored at the
 * start or begins with `(?:^|\.)` followed by a fixed alternation of literals, with no nested or
 * adjacent overlapping quantifiers; the one test that needs "somewhere inside a segment" is done
 * by plain string parsing (`isNormName`). Names longer than {@link MAX_ANALYSED_NAME_LENGTH} are
 * not analysed at all.
 */
import {
  type Architecture,
  type TowerRole,
  ARCHITECTURES,
  architectureFromConfig,
  configLayerCount,
  layerCountKeyOf,
  towerOf,
} from './architectures';

/**
 * Longest tensor name (UTF-16 code units) that grouping analyses; a longer name is grouped as
 * "Other", is never an embedding or LM head and never picks the family. Real names are < 200.
 */
export const MAX_ANALYSED_NAME_LENGTH = 1024;

function analysable(name: string): boolean {
  return name.length <= MAX_ANALYSED_NAME_LENGTH;
}

/** Where a tensor sits: before the layers, in a decoder layer, after them, in another tower. */
export type TensorRole = 'embedding' | 'layer' | 'final_norm' | 'lm_head' | 'mtp' | TowerRole | 'other';

/**
 * Module kinds shown in charts: q/k/v/o attention (kv: DeepSeek's joint key-value projections,
 * qkv: fused), gate/up/down MLP (gate_up: fused, as Phi-3 stores it), MoE routers, norms.
 */
export type ModuleKind = 'q' | 'k' | 'v' | 'kv' | 'o' | 'qkv' | 'gate' | 'up' | 'gate_up' | 'down' | 'norm' | 'router' | 'embedding' | 'lm_head' | 'other';

export const MODULE_KIND_ORDER: readonly ModuleKind[] = ['q', 'k', 'v', 'kv', 'qkv', 'o', 'gate', 'up', 'gate_up', 'down', 'router', 'norm', 'embedding', 'lm_head', 'other'];

export interface TensorGroup {
  readonly role: TensorRole;
  /** Block index for roles 'layer' and 'mtp'. */
  readonly layer?: number;
  readonly module: ModuleKind;
  /**
   * Rows are token ids: token embeddings and LM heads, weight and bias, also those of an MTP
   * layer. These are what `--skip-embed` takes from the target and `--special-tokens` edits.
   */
  readonly vocab?: true;
}

/** How a checkpoint's tensors were grouped. */
export interface Grouping {
  readonly groups: ReadonlyMap<string, TensorGroup>;
  /** The family table used ("llama", "gpt2", …), or "generic" for name patterns alone. */
  readonly family: string;
  /** 'config': config.json named the family; 'names': the tensor names did; 'generic': neither. */
  readonly chosenBy: 'config' | 'names' | 'generic';
  /** Decoder layers: the config's count when it states one, else the highest layer index + 1. */
  readonly layerCount: number;
  /** The config key that holds the layer count (where a merge writes a new count). */
  readonly layerCountKey: string;
}

const HEAD: TensorGroup = { role: 'lm_head', module: 'lm_head', vocab: true };
const TOKEN_EMBEDDING: TensorGroup = { role: 'embedding', module: 'embedding', vocab: true };
const OTHER_EMBEDDING: TensorGroup = { role: 'embedding', module: 'embedding' };
const FINAL_NORM: TensorGroup = { role: 'final_norm', module: 'norm' };
const OTHER: TensorGroup = { role: 'other', module: 'other' };

/**
 * `seg.<digits>.rest` at the start of `s` → [index, rest], else null (string parsing, linear).
 */
function layerIndexAfter(s: string, seg: string): [number, string] | null {
  if (!s.startsWith(seg) || s[seg.length] !== '.') return null;
  let i = seg.length + 1;
  const from = i;
  while (i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
  if (i === from || i - from > 9 || s[i] !== '.') return null;
  return [Number(s.slice(from, i)), s.slice(i + 1)];
}

function firstSegment(s: string): string {
  const dot = s.indexOf('.');
  return dot < 0 ? s : s.slice(0, dot);
}

/** A name's group under a family table, or null when the table does not place it. */
function classifyIn(a: Architecture, name: string, layerCount: number | null): TensorGroup | null {
  for (const h of a.lmHeads) if (name.startsWith(h)) return HEAD;
  for (const p of a.lmPrefixes) {
    if (!name.startsWith(p)) continue;
    const rest = name.slice(p.length);
    const at = layerIndexAfter(rest, a.layerSegment);
    if (at) {
      const [layer, inner] = at;
      if (a.mtp && layerCount !== null && layer >= layerCount) {
        if (inner.startsWith(`${a.mtp.tokenEmbedding}.`)) return { role: 'mtp', layer, module: 'embedding', vocab: true };
        if (inner.startsWith(`${a.mtp.lmHead}.`)) return { role: 'mtp', layer, module: 'lm_head', vocab: true };
        return { role: 'mtp', layer, module: moduleKindOf(name) };
      }
      return { role: 'layer', layer, module: moduleKindOf(name) };
    }
    const first = firstSegment(rest);
    if (a.tokenEmbeddings.includes(first)) return TOKEN_EMBEDDING;
    if (a.otherEmbeddings.includes(first)) return OTHER_EMBEDDING;
    if (a.finalNorms.includes(first)) return FINAL_NORM;
  }
  return null;
}

function placesLayers(a: Architecture, names: readonly string[]): boolean {
  return names.some((n) => {
    const g = classifyIn(a, n, null);
    return g !== null && g.role === 'layer';
  });
}

/** Name patterns for checkpoints of no known family (the fallback; inspect says so). */
const GENERIC = {
  layer: /(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+)\./,
  embedding: /(?:^|\.)(?:embed_tokens|wte|wpe|word_embeddings|embed_in|tok_embeddings|embeddings?)(?:\.|$)/,
  finalNorm: /(?:^|\.)(?:norm|ln_f|final_layer_norm|final_layernorm|norm_f|final_norm)\.[a-z_]+$/,
  lmHead: /(?:^|\.)(?:lm_head|embed_out|output)\.[a-z_]+$/,
  /** Token-id rows among the embeddings and heads (position embeddings are not). */
  vocab: /(?:^|\.)(?:embed_tokens|wte|word_embeddings|embed_in|tok_embeddings|lm_head|embed_out)\.(?:weight|bias)$/,
};

function classifyGeneric(name: string, layers = true): TensorGroup {
  const m = layers ? GENERIC.layer.exec(name) : null;
  if (m) return { role: 'layer', layer: Number(m[1]), module: moduleKindOf(name) };
  const vocab = GENERIC.vocab.test(name);
  if (GENERIC.embedding.test(name)) return vocab ? TOKEN_EMBEDDING : OTHER_EMBEDDING;
  if (GENERIC.lmHead.test(name)) return vocab ? HEAD : { role: 'lm_head', module: 'lm_head' };
  if (GENERIC.finalNorm.test(name)) return FINAL_NORM;
  return OTHER;
}

/**
 * Groups a checkpoint's tensors: towers (vision, audio, projector) by prefix, then the family
 * table config.json names (when it places the layers), else the first table whose layer template
 * matches the names, else generic name patterns. The layer count comes from the config where it
 * states one, so an MTP layer or a vision encoder never adds depth.
 */
export function groupTensors(names: readonly string[], config: Readonly<Record<string, unknown>> | null): Grouping {
  const usable = names.filter((n) => analysable(n) && towerOf(n) === null);
  const fromConfig = architectureFromConfig(config);
  let arch: Architecture | null = null;
  let chosenBy: Grouping['chosenBy'] = 'generic';
  if (fromConfig && (placesLayers(fromConfig, usable) || !usable.some((n) => GENERIC.layer.test(n)))) {
    arch = fromConfig;
    chosenBy = 'config';
  } else {
    arch = ARCHITECTURES.find((a) => placesLayers(a, usable)) ?? null;
    if (arch) chosenBy = 'names';
  }
  const stated = arch ? configLayerCount(arch, config) : null;
  const groups = new Map<string, TensorGroup>();
  let maxLayer = -1;
  for (const name of names) {
    const g = classifyOne(arch, name, stated);
    if (g.role === 'layer') maxLayer = Math.max(maxLayer, g.layer!);
    groups.set(name, g);
  }
  return {
    groups,
    family: arch?.name ?? 'generic',
    chosenBy,
    layerCount: stated ?? maxLayer + 1,
    layerCountKey: arch ? layerCountKeyOf(arch, config) : 'num_hidden_layers',
  };
}

function classifyOne(arch: Architecture | null, name: string, layerCount: number | null): TensorGroup {
  if (!analysable(name)) return OTHER;
  const tower = towerOf(name);
  if (tower) return { role: tower, module: moduleKindOf(name) };
  if (arch === null) return classifyGeneric(name);
  // A name the table does not place (a variant it does not list) still gets the generic patterns,
  // except the layer pattern: the table knows where this family's decoder layers are, so a numbered
  // block elsewhere (an unlisted encoder) is kept as "Other", never counted as a decoder layer.
  return classifyIn(arch, name, layerCount) ?? classifyGeneric(name, false);
}

/** Assigns each name its group (no config: the family is chosen by the names). */
export function classifyTensors(names: readonly string[]): Map<string, TensorGroup> {
  return new Map(groupTensors(names, null).groups);
}

// Each alternative ends at a segment boundary or the name's end: transformers v5 stores fused
// expert tensors without a `.weight` suffix (`mlp.experts.gate_up_proj`). The router comes before
// `gate`: a bare `gate` segment is an MoE router in every family that has one (Mixtral's
// `block_sparse_moe.gate`, Qwen-MoE's and DeepSeek's `mlp.gate` with `e_score_correction_bias`).
const MODULE_PATTERNS: readonly [RegExp, ModuleKind][] = [
  [/(?:^|\.)(?:q_proj|q_a_proj|q_b_proj|query|wq|q)(?:\.|$)/, 'q'],
  [/(?:^|\.)(?:k_proj|key|wk|k)(?:\.|$)/, 'k'],
  [/(?:^|\.)(?:v_proj|value|wv|v)(?:\.|$)/, 'v'],
  [/(?:^|\.)(?:kv_a_proj_with_mqa|kv_b_proj)(?:\.|$)/, 'kv'],
  [/(?:^|\.)(?:query_key_value|c_attn|qkv_proj|Wqkv|qkv)(?:\.|$)/, 'qkv'],
  [/(?:^|\.)(?:o_proj|out_proj|wo|attention\.dense|self_attention\.dense|self_attn\.dense|attn\.c_proj)(?:\.|$)/, 'o'],
  [/(?:^|\.)(?:router|gate|shared_expert_gate|e_score_correction_bias)(?:\.|$)/, 'router'],
  [/(?:^|\.)gate_up_proj(?:\.|$)/, 'gate_up'],
  [/(?:^|\.)(?:gate_proj|w1)(?:\.|$)/, 'gate'],
  [/(?:^|\.)(?:up_proj|w3|c_fc|dense_h_to_4h|fc1|fc_in)(?:\.|$)/, 'up'],
  [/(?:^|\.)(?:down_proj|w2|dense_4h_to_h|fc2|fc_out|mlp\.c_proj)(?:\.|$)/, 'down'],
];

const PARAM_SEGMENT = /^[a-z_]+$/i;
const NORM_WORD = /norm|ln_\d|ln_f|ln_attn|ln_mlp/i; // "layernorm" contains "norm"; Falcon's ln_attn/ln_mlp

/**
 * A norm tensor: the segment before the last holds norm/ln_<digit>/ln_f (any case) and the last
 * segment is a parameter name of letters and `_` ("input_layernorm.weight", "ln_1.bias"). The
 * former single pattern `(norm|…)[^.]*\.[a-z_]+$` was quadratic on a long dot-free run of "norm".
 */
function isNormName(name: string): boolean {
  const last = name.lastIndexOf('.');
  if (last < 0 || !PARAM_SEGMENT.test(name.slice(last + 1))) return false;
  let end = last;
  let start = name.lastIndexOf('.', end - 1) + 1;
  // StableLM-2 keeps one norm per head: `q_layernorm.norms.3.weight`; look past the index and `norms`.
  if (/^\d+$/.test(name.slice(start, end)) && start > 0) {
    end = start - 1;
    start = name.lastIndexOf('.', end - 1) + 1;
    if (name.slice(start, end) === 'norms' && start > 0) {
      end = start - 1;
      start = name.lastIndexOf('.', end - 1) + 1;
    }
  }
  return NORM_WORD.test(name.slice(start, end));
}

/** The module kind of a tensor inside a layer, from its name ('other' for over-long names). */
export function moduleKindOf(name: string): ModuleKind {
  if (!analysable(name)) return 'other';
  for (const [re, kind] of MODULE_PATTERNS) if (re.test(name)) return kind;
  return isNormName(name) ? 'norm' : 'other';
}

const TOWER_LABEL: Readonly<Record<TowerRole, string>> = { vision_tower: 'Vision tower', projector: 'Projector', audio_tower: 'Audio tower' };

/** A readable group label: "Embeddings", "Layer 3", "Final norm", "LM head", "Vision tower", … */
export function groupLabel(g: TensorGroup): string {
  switch (g.role) {
    case 'embedding':
      return 'Embeddings';
    case 'layer':
      return `Layer ${g.layer}`;
    case 'final_norm':
      return 'Final norm';
    case 'lm_head':
      return 'LM head';
    case 'mtp':
      return `MTP layer ${g.layer}`;
    case 'vision_tower':
    case 'projector':
    case 'audio_tower':
      return TOWER_LABEL[g.role];
    default:
      return 'Other';
  }
}

/** A sort key that orders groups as they sit in the network (towers first, then the LM). */
export function groupOrder(g: TensorGroup): number {
  switch (g.role) {
    case 'vision_tower':
      return -4;
    case 'audio_tower':
      return -3;
    case 'projector':
      return -2;
    case 'embedding':
      return -1;
    case 'layer':
      return g.layer ?? 0;
    case 'final_norm':
      return 1e9;
    case 'lm_head':
      return 1e9 + 1;
    case 'mtp':
      return 1e9 + 2 + (g.layer ?? 0);
    default:
      return 2e9;
  }
}

/** Whether a role is a tower beside the language model (merged per tensor, never sliced). */
export function isTowerRole(role: TensorRole): boolean {
  return role === 'vision_tower' || role === 'projector' || role === 'audio_tower';
}

/**
 * Whether a tensor's rows are token ids (token embeddings and LM heads, weights and biases,
 * also an MTP layer's): what `--skip-embed` takes from the target and `--special-tokens` edits.
 */
export function isVocabTensor(t: { readonly group: TensorGroup }): boolean {
  return t.group.vocab === true;
}
