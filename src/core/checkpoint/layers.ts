/**
 * Layer grouping from tensor names, by data: a table of name templates per model family (as in
 * mergekit's architecture files), tried in order, with a generic fallback. Each tensor gets a
 * role (embedding, layer i, final norm, LM head, other) and, inside a layer, a module kind.
 *
 * Names come from untrusted headers (up to 100 MB of them), so every pattern here runs in time
 * linear in the name: each is anchored at the start or begins with `(?:^|\.)` followed by a
 * fixed alternation of literals, with no nested or adjacent overlapping quantifiers, and the one
 * test that needs "somewhere inside a segment" is done by plain string parsing (`isNormName`).
 * Names longer than {@link MAX_ANALYSED_NAME_LENGTH} are not analysed at all.
 */

/**
 * Longest tensor name (UTF-16 code units) that grouping analyses; a longer name is grouped as
 * "Other", is never an embedding or LM head and never picks the family. Real names are < 200.
 */
export const MAX_ANALYSED_NAME_LENGTH = 1024;

function analysable(name: string): boolean {
  return name.length <= MAX_ANALYSED_NAME_LENGTH;
}

export type TensorRole = 'embedding' | 'layer' | 'final_norm' | 'lm_head' | 'other';

/** Module kinds shown in charts; q/k/v/o attention, gate/up/down MLP, norms. */
export type ModuleKind = 'q' | 'k' | 'v' | 'o' | 'qkv' | 'gate' | 'up' | 'down' | 'norm' | 'router' | 'embedding' | 'lm_head' | 'other';

export const MODULE_KIND_ORDER: readonly ModuleKind[] = ['q', 'k', 'v', 'qkv', 'o', 'gate', 'up', 'down', 'router', 'norm', 'embedding', 'lm_head', 'other'];

export interface TensorGroup {
  readonly role: TensorRole;
  /** Block index for role 'layer'. */
  readonly layer?: number;
  readonly module: ModuleKind;
}

interface Family {
  readonly name: string;
  /** Matches a layer tensor; group 1 is the index. */
  readonly layer: RegExp;
  readonly embedding: RegExp;
  readonly finalNorm: RegExp;
  readonly lmHead: RegExp;
}

/** Name templates of common families; the first whose layer pattern matches any tensor is used. */
export const FAMILIES: readonly Family[] = [
  {
    name: 'llama', // also Mistral, Qwen2, Gemma, Phi-3, Mixtral
    layer: /^(?:model\.(?:language_model\.)?|language_model\.model\.)?layers\.(\d+)\./,
    embedding: /(?:^|\.)embed_tokens\./,
    finalNorm: /^(?:model\.(?:language_model\.)?|language_model\.model\.)?norm\./,
    lmHead: /^(?:language_model\.)?lm_head\./,
  },
  {
    name: 'gpt2', // also Falcon, BLOOM-style `transformer.h`
    layer: /^(?:transformer\.)?h\.(\d+)\./,
    embedding: /^(?:transformer\.)?(?:wte|wpe|word_embeddings(?:_layernorm)?)\./,
    finalNorm: /^(?:transformer\.)?ln_f\./,
    lmHead: /^lm_head\./,
  },
  {
    name: 'gpt_neox',
    layer: /^gpt_neox\.layers\.(\d+)\./,
    embedding: /^gpt_neox\.embed_in\./,
    finalNorm: /^gpt_neox\.final_layer_norm\./,
    lmHead: /^embed_out\./,
  },
  {
    name: 'opt',
    layer: /^model\.decoder\.layers\.(\d+)\./,
    embedding: /^model\.decoder\.embed_(?:tokens|positions)\./,
    finalNorm: /^model\.decoder\.final_layer_norm\./,
    lmHead: /^lm_head\./,
  },
  {
    name: 'mpt',
    layer: /^transformer\.blocks\.(\d+)\./,
    embedding: /^transformer\.wte\./,
    finalNorm: /^transformer\.norm_f\./,
    lmHead: /^lm_head\./,
  },
];

const GENERIC: Family = {
  name: 'generic',
  layer: /(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+)\./,
  embedding: /(?:^|\.)(?:embed_tokens|wte|wpe|word_embeddings|embed_in|tok_embeddings|embeddings?)(?:\.|$)/,
  finalNorm: /(?:^|\.)(?:norm|ln_f|final_layer_norm|norm_f|final_norm)\.[a-z_]+$/,
  lmHead: /(?:^|\.)(?:lm_head|embed_out|output)\.[a-z_]+$/,
};

/** Picks the family whose layer template matches these names (by data, not by config). */
export function detectFamily(names: Iterable<string>): Family {
  const list = [...names].filter(analysable);
  for (const f of FAMILIES) if (list.some((n) => f.layer.test(n))) return f;
  return GENERIC;
}

const MODULE_PATTERNS: readonly [RegExp, ModuleKind][] = [
  [/(?:^|\.)(?:q_proj|query|wq|q)\./, 'q'],
  [/(?:^|\.)(?:k_proj|key|wk|k)\./, 'k'],
  [/(?:^|\.)(?:v_proj|value|wv|v)\./, 'v'],
  [/(?:^|\.)(?:query_key_value|c_attn|qkv_proj|Wqkv|qkv)\./, 'qkv'],
  [/(?:^|\.)(?:o_proj|out_proj|wo|attention\.dense|self_attention\.dense|attn\.c_proj)\./, 'o'],
  [/(?:^|\.)(?:router|block_sparse_moe\.gate)\./, 'router'],
  [/(?:^|\.)(?:gate_proj|w1|gate)\./, 'gate'],
  [/(?:^|\.)(?:up_proj|w3|c_fc|dense_h_to_4h|fc1|fc_in)\./, 'up'],
  [/(?:^|\.)(?:down_proj|w2|dense_4h_to_h|fc2|fc_out|mlp\.c_proj)\./, 'down'],
];

const PARAM_SEGMENT = /^[a-z_]+$/i;
const NORM_WORD = /norm|ln_\d|ln_f/i; // "layernorm" contains "norm"

/**
 * A norm tensor: the segment before the last holds norm/ln_<digit>/ln_f (any case) and the last
 * segment is a parameter name of letters and `_` ("input_layernorm.weight", "ln_1.bias"). The
 * former single pattern `(norm|…)[^.]*\.[a-z_]+$` was quadratic on a long dot-free run of "norm".
 */
function isNormName(name: string): boolean {
  const last = name.lastIndexOf('.');
  if (last < 0 || !PARAM_SEGMENT.test(name.slice(last + 1))) return false;
  return NORM_WORD.test(name.slice(name.lastIndexOf('.', last - 1) + 1, last));
}

/** The module kind of a tensor inside a layer, from its name ('other' for over-long names). */
export function moduleKindOf(name: string): ModuleKind {
  if (!analysable(name)) return 'other';
  for (const [re, kind] of MODULE_PATTERNS) if (re.test(name)) return kind;
  return isNormName(name) ? 'norm' : 'other';
}

/** Assigns each name its group. */
export function classifyTensors(names: readonly string[]): Map<string, TensorGroup> {
  const fam = detectFamily(names);
  const out = new Map<string, TensorGroup>();
  for (const name of names) out.set(name, classifyWith(fam, name));
  return out;
}

function classifyWith(fam: Family, name: string): TensorGroup {
  if (!analysable(name)) return { role: 'other', module: 'other' };
  const m = fam.layer.exec(name) ?? GENERIC.layer.exec(name);
  if (m) return { role: 'layer', layer: Number(m[1]), module: moduleKindOf(name) };
  if (fam.embedding.test(name) || GENERIC.embedding.test(name)) return { role: 'embedding', module: 'embedding' };
  if (fam.lmHead.test(name) || GENERIC.lmHead.test(name)) return { role: 'lm_head', module: 'lm_head' };
  if (fam.finalNorm.test(name) || GENERIC.finalNorm.test(name)) return { role: 'final_norm', module: 'norm' };
  return { role: 'other', module: 'other' };
}

/** A readable group label: "Embeddings", "Layer 3", "Final norm", "LM head", "Other". */
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
    default:
      return 'Other';
  }
}

/** A sort key that orders groups as they sit in the network. */
export function groupOrder(g: TensorGroup): number {
  switch (g.role) {
    case 'embedding':
      return -1;
    case 'layer':
      return g.layer ?? 0;
    case 'final_norm':
      return 1e9;
    case 'lm_head':
      return 1e9 + 1;
    default:
      return 1e9 + 2;
  }
}

/**
 * Names of the input embeddings and the LM head, which `--skip-embed` copies from the target and
 * `--special-tokens` edits row by row. Recognises embed_tokens, wte, word_embeddings, embed_in,
 * tok_embeddings, lm_head, embed_out.
 */
export const EMBEDDING_OR_HEAD = /(?:^|\.)(?:embed_tokens|wte|word_embeddings|embed_in|tok_embeddings|lm_head|embed_out)\.weight$/;

export function isEmbeddingOrHead(name: string): boolean {
  return analysable(name) && EMBEDDING_OR_HEAD.test(name);
}
