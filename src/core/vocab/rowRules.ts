/**
 * Where each row of a rebuilt embedding (or LM head) comes from, per model (mergekit's
 * PermutedEmbeddings): a model's own row for a token it has, else the token's default row —
 * from the `tokens:` rule, else the only model that has it, else the base's row, else the mean of
 * the models that have it (zero when none has it). Rows past the vocabulary (pad_to_multiple_of)
 * are the mean of that model's rebuilt rows, as mergekit pads.
 */
import type { OutputVocab } from './outputVocab';

/**
 * Where a token's default row comes from, as `tokens:` writes it. M names a model: an index into the
 * vocabulary's models here, the recipe's model reference before the plan (recipes/types.ts).
 */
export type TokenRowSource<M = number> =
  | { readonly kind: 'zero' }
  | { readonly kind: 'model'; readonly model: M }
  | { readonly kind: 'model_token'; readonly model: M; readonly token?: string; readonly tokenId?: number };

/** One entry of `tokens:`. */
export interface TokenRule<M = number> {
  readonly token: string;
  readonly source: TokenRowSource<M>;
  /** Use the default row even in models that have the token. */
  readonly force: boolean;
}

/** A row of one model's tensor. */
export interface ModelRow {
  readonly model: number;
  readonly row: number;
}

/** A default row: zeros, a copy of a model's row, or the float64 mean of several. */
export type DefaultRow = { readonly kind: 'zero' } | { readonly kind: 'mean'; readonly rows: readonly ModelRow[] };

export interface RowRules {
  /** Rows of the vocabulary (its size). */
  readonly vocabRows: number;
  /** Rows of the rebuilt tensor: vocabRows rounded up to pad_to_multiple_of. */
  readonly outRows: number;
  /** Default rows by output id (one model's row is a mean of one). */
  readonly defaults: ReadonlyMap<number, DefaultRow>;
  /** Output ids whose default row replaces even a model's own (`force: true`). */
  readonly forced: ReadonlySet<number>;
  /** Tokens no model has (zero rows), for the plan. */
  readonly inNoModel: number;
}

export interface RowRulesInput {
  readonly vocab: OutputVocab;
  /** The models of this tensor (indexes into the vocabulary's models), with their rows. */
  readonly models: readonly number[];
  readonly modelRows: (model: number) => number;
  /** The base model, when it is one of `models`. */
  readonly base: number | null;
  readonly rules: readonly TokenRule[];
  readonly padToMultipleOf: number | null;
  /** Token → id of every model's own tokenizer (for `model_token` with `token:`). */
  readonly tokenId: (model: number, token: string) => number | undefined;
}

/**
 * Assigns default rows as mergekit's assign_embedding_sources and compute_default_embedding do.
 * @returns the rules, or a one-line reason naming the token when a rule cannot be applied
 */
export function rowRules(inp: RowRulesInput): RowRules | string {
  const { vocab, models } = inp;
  const defaults = new Map<number, DefaultRow>();
  const forced = new Set<number>();
  const byToken = new Map(inp.rules.map((r) => [r.token, r]));
  let inNoModel = 0;
  for (const [token, id] of vocab.ids) {
    const rule = byToken.get(token);
    if (rule) {
      const d = ruleRow(inp, rule, id);
      if (typeof d === 'string') return d;
      defaults.set(id, d);
      if (rule.force) forced.add(id);
      continue;
    }
    const present = models.filter((m) => vocab.permutations[m]![id]! >= 0);
    const row = (m: number): ModelRow => ({ model: m, row: vocab.permutations[m]![id]! });
    if (present.length === 0) {
      inNoModel++;
      defaults.set(id, { kind: 'zero' });
    } else if (present.length === 1) defaults.set(id, { kind: 'mean', rows: [row(present[0]!)] });
    else if (inp.base !== null && present.includes(inp.base)) defaults.set(id, { kind: 'mean', rows: [row(inp.base)] });
    else defaults.set(id, { kind: 'mean', rows: present.map(row) });
  }
  const pad = inp.padToMultipleOf;
  const outRows = pad && vocab.size % pad ? (Math.floor(vocab.size / pad) + 1) * pad : vocab.size;
  return { vocabRows: vocab.size, outRows, defaults, forced, inNoModel };
}

function ruleRow(inp: RowRulesInput, rule: TokenRule, id: number): DefaultRow | string {
  const s = rule.source;
  if (s.kind === 'zero') return { kind: 'zero' };
  if (!inp.models.includes(s.model)) return `tokens: ${JSON.stringify(rule.token)} takes its row from a model that is not an input of this tensor`;
  if (s.kind === 'model') {
    const row = inp.vocab.permutations[s.model]![id]!;
    if (row < 0) return `tokens: ${JSON.stringify(rule.token)} takes its row from a model that does not have this token`;
    return { kind: 'mean', rows: [{ model: s.model, row }] };
  }
  const row = s.tokenId ?? inp.tokenId(s.model, s.token!);
  if (row === undefined) return `tokens: ${JSON.stringify(rule.token)}: token ${JSON.stringify(s.token)} is not in the source model's tokenizer`;
  if (!(row >= 0 && row < inp.modelRows(s.model))) return `tokens: ${JSON.stringify(rule.token)}: token id ${row} is outside the source model's ${inp.modelRows(s.model)} rows`;
  return { kind: 'mean', rows: [{ model: s.model, row }] };
}

/**
 * The row of `model`'s rebuilt tensor at output id `id` (< vocabRows): its own row, or the default.
 * A model that lacks a token with no default gets zeros (mergekit logs an error and leaves zeros).
 */
export function rowSource(r: RowRules, vocab: OutputVocab, model: number, id: number): DefaultRow {
  const own = vocab.permutations[model]![id]!;
  if (own >= 0 && !r.forced.has(id)) return { kind: 'mean', rows: [{ model, row: own }] };
  return r.defaults.get(id) ?? { kind: 'zero' };
}

/** Whether a model's rebuilt tensor is its own rows 0..rows-1 unchanged (nothing to rebuild). */
export function isIdentity(r: RowRules, vocab: OutputVocab, model: number, modelRows: number): boolean {
  if (r.outRows !== modelRows || r.vocabRows !== modelRows) return false;
  const p = vocab.permutations[model]!;
  for (let i = 0; i < p.length; i++) if (p[i] !== i || r.forced.has(i)) return false;
  return true;
}
