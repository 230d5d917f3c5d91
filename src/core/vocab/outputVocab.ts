/**
 * The output vocabulary of a merge with a tokenizer source (mergekit's tokenizer/build.py): the
 * base's, one model's, or the union of every model's, and for each model the permutation from
 * output ids to its embedding rows. Token strings are the identity of a row across models.
 */
import type { AddedToken, ModelTokens } from './modelTokens';

/** A model of the merge: its tokens and how many embedding rows it has (its vocab_size). */
export interface VocabModel {
  readonly tokens: ModelTokens;
  readonly rows: number;
}

/** `base`, `union`, or the index of a model whose tokenizer the output gets. */
export type VocabSource = 'base' | 'union' | { readonly model: number };

export interface OutputVocab {
  /** Token → output id. */
  readonly ids: ReadonlyMap<string, number>;
  /** Output ids run over [0, size): the largest id + 1. */
  readonly size: number;
  /** Which model's tokenizer.json the output tokenizer starts from (index into the models). */
  readonly from: number;
  /** Tokens the output tokenizer gains over that file, in id order, as tokenizer.json's added_tokens entries. */
  readonly added: readonly AddedToken[];
  /** Per model: output id → that model's row, or -1 when it lacks the token (or its id ≥ its rows). */
  readonly permutations: readonly Int32Array[];
}

/** What mergekit's `tokenizer.add_tokens(str)` gives: a plain, normalized, non-special token. */
function plainToken(content: string, id: number): AddedToken {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: false };
}

/** The largest id (-1 for none); a loop, as vocabularies are too large to spread into Math.max. */
function maxId(ids: ReadonlyMap<string, number>): number {
  let m = -1;
  for (const id of ids.values()) if (id > m) m = id;
  return m;
}

/** A model's tokens that have a row (id < rows), sorted by id. */
function usable(m: VocabModel): [string, number][] {
  return [...m.tokens.ids].filter(([, id]) => id < m.rows).sort((a, b) => a[1] - b[1]);
}

/**
 * Builds the output vocabulary.
 *
 * `union` follows mergekit's build_union_tokenizer: the base's tokens keep their ids; then, with
 * ids from the base's largest + 1, the tokens of the other models' vocabularies that the base
 * lacks (models in order, each by id; mergekit iterates a hash map here, so its order within a
 * model is arbitrary), then their added tokens (first model's attributes win). `extraTokens` (the
 * keys of `tokens:`) that are still missing are added last, as mergekit's add_tokens does.
 * @param models every model of the merge
 * @param baseIndex the base model (mergekit: base_model, else the first model)
 */
export function buildOutputVocab(models: readonly VocabModel[], baseIndex: number, source: VocabSource, extraTokens: readonly string[] = []): OutputVocab {
  const from = source === 'base' || source === 'union' ? baseIndex : source.model;
  const ids = new Map<string, number>(models[from]!.tokens.ids);
  let next = maxId(ids) + 1;
  const added: AddedToken[] = [];
  const add = (tok: AddedToken) => {
    if (ids.has(tok.content)) return;
    const t = { ...tok, id: next++ };
    ids.set(t.content, t.id);
    added.push(t);
  };
  if (source === 'union') {
    const order = [baseIndex, ...models.map((_, i) => i).filter((i) => i !== baseIndex)];
    const addedAnywhere = new Set(order.flatMap((i) => [...models[i]!.tokens.added.keys()]));
    for (const i of order) for (const [tok] of usable(models[i]!)) if (!addedAnywhere.has(tok)) add(plainToken(tok, 0));
    for (const i of order) {
      const m = models[i]!;
      for (const [tok, id] of usable(m)) {
        const a = m.tokens.added.get(tok);
        if (a && a.id === id) add(a);
      }
    }
  }
  for (const tok of extraTokens) add(plainToken(tok, 0));
  const size = maxId(ids) + 1;
  const permutations = models.map((m) => {
    const p = new Int32Array(size).fill(-1);
    for (const [tok, id] of ids) {
      const own = m.tokens.ids.get(tok);
      if (own !== undefined && own < m.rows) p[id] = own;
    }
    return p;
  });
  return { ids, size, from, added, permutations };
}
