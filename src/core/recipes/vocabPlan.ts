/**
 * Planning a merge with a tokenizer source (`tokenizer_source:` / `tokenizer:`): the output
 * vocabulary built from every model's tokenizer.json, and for each embedding / LM head the rules
 * that rebuild every input's rows for it by token string (mergekit's PermutedEmbeddings). The
 * rows are written before the merge (vocabRun.ts); a tensor whose inputs already match the output
 * vocabulary row for row is merged as it is.
 */
import type { CatalogueEntry, Checkpoint } from '../checkpoint/checkpoint';
import { toChatVecError } from '../errors';
import { entryKind } from '../io/files';
import { dirname } from '../io/paths';
import { type ModelTokens, readModelTokens } from '../vocab/modelTokens';
import { type OutputVocab, type VocabModel, buildOutputVocab } from '../vocab/outputVocab';
import { type RowRules, type TokenRule, isIdentity, rowRules } from '../vocab/rowRules';
import type { ModelRef, RecipeIssue, ResolvedRecipe } from './types';

export interface VocabPlan {
  /** Every model of the recipe (distinct paths), then the tokenizer source when it is not one. */
  readonly models: readonly ModelRef[];
  readonly tokens: readonly ModelTokens[];
  readonly vocab: OutputVocab;
  /** Rows of the output's embeddings (the vocabulary padded to pad_to_multiple_of). */
  readonly outRows: number;
  /** Folder whose tokenizer files the output starts from. */
  readonly tokenizerFolder: string;
  /** Lines for the dry-run plan. */
  readonly lines: string[];
}

/** How one vocabulary tensor's inputs are rebuilt: input i is vocabulary model models[i]. */
export interface RebuiltRows {
  readonly rules: RowRules;
  readonly models: readonly number[];
}

function folderOf(ref: ModelRef, ck: Checkpoint | null): string {
  if (ck) return ck.folder;
  return entryKind(ref.path) === 'dir' ? ref.path : dirname(ref.path);
}

/** Rows of a checkpoint's input embeddings (its vocab_size as the weights say), or null without one. */
function embeddingRows(ck: Checkpoint | null): number | null {
  const e = ck?.tensors.find((t) => t.group.role === 'embedding');
  return e ? e.shape[0]! : null;
}

/**
 * Builds the output vocabulary of a recipe with a tokenizer source.
 * @param open opens a model's checkpoint (null when it cannot be opened: an issue is already filed)
 * @param openQuiet the same without an issue (for a tokenizer source that is no input)
 * @returns the plan, or null after pushing error issues at the recipe paths concerned
 */
export function planVocabulary(recipe: ResolvedRecipe, open: (ref: ModelRef) => Checkpoint | null, openQuiet: (ref: ModelRef) => Checkpoint | null, issues: RecipeIssue[]): VocabPlan | null {
  const spec = recipe.vocabulary!;
  const models: ModelRef[] = [];
  for (const sl of recipe.slices) for (const s of sl.sources) if (!models.some((m) => m.path === s.model.path)) models.push(s.model);
  // mergekit's build_tokenizer: base_model, else the first model.
  const baseRef = spec.base;
  let baseIndex = baseRef ? models.findIndex((m) => m.path === baseRef.path) : 0;
  if (baseIndex < 0) {
    models.push(baseRef!);
    baseIndex = models.length - 1;
  }
  const inputCount = models.length;
  let fromIndex = baseIndex;
  if (typeof spec.source !== 'string') {
    const src = spec.source;
    fromIndex = models.findIndex((m) => m.path === src.path);
    if (fromIndex < 0) {
      models.push(src);
      fromIndex = models.length - 1;
    }
  }
  // The tokenizer source may be no input (even a folder of tokenizer files only): opened quietly.
  const cks = models.map((m, i) => (i < inputCount ? open(m) : openQuiet(m)));
  const tokens: (ModelTokens | null)[] = [];
  let failed = false;
  models.forEach((m, i) => {
    try {
      tokens.push(readModelTokens(folderOf(m, cks[i]!)));
    } catch (e) {
      tokens.push(null);
      // As mergekit: a model without a readable tokenizer is assumed to have the base's; the
      // base and the tokenizer source must have one.
      const needed = i === baseIndex || i === fromIndex;
      if (needed) failed = true;
      issues.push({ severity: needed ? 'error' : 'warning', message: needed ? toChatVecError(e).message : `${toChatVecError(e).message}; assuming the base model's vocabulary, as mergekit does`, path: m.at });
    }
  });
  if (failed) return null;
  const own = tokens.map((t) => t ?? tokens[baseIndex]!);
  const vmodels: VocabModel[] = models.map((_, i) => ({ tokens: own[i]!, rows: embeddingRows(cks[i]!) ?? Number.MAX_SAFE_INTEGER }));
  const source = spec.source === 'base' || spec.source === 'union' ? spec.source : { model: fromIndex };
  const vocab = buildOutputVocab(vmodels, baseIndex, source, spec.tokens.map((t) => t.token));
  const pad = spec.padToMultipleOf;
  const outRows = pad && vocab.size % pad ? (Math.floor(vocab.size / pad) + 1) * pad : vocab.size;
  const label = typeof spec.source === 'string' ? (spec.source === 'base' ? `base (${models[baseIndex]!.given})` : 'union') : spec.source.given;
  const lines = [
    `tokenizer source ${label}: ${vocab.size} tokens${vocab.added.length ? ` (${vocab.added.length} added to ${models[vocab.from]!.given}'s tokenizer)` : ''}${outRows !== vocab.size ? `, padded to ${outRows} rows (pad_to_multiple_of ${pad})` : ''}`,
    ...models.slice(0, inputCount).map((m, i) => {
      const p = vocab.permutations[i]!;
      let missing = 0;
      let moved = 0;
      for (let id = 0; id < p.length; id++) {
        if (p[id]! < 0) missing++;
        else if (p[id] !== id) moved++;
      }
      const rows = vmodels[i]!.rows;
      return `${m.given}: ${rows} rows → ${outRows}; ${missing} token(s) it lacks take a default row${moved ? `, ${moved} row(s) move to new ids` : ''}`;
    }),
  ];
  return { models, tokens: own, vocab, outRows, tokenizerFolder: folderOf(models[vocab.from]!, cks[vocab.from]!), lines };
}

/**
 * The rebuild of one vocabulary tensor (an embedding or LM head, or its bias) for its inputs.
 * @param inputs the tensor's inputs: their model and catalogue entry
 * @returns null when every input already matches the output vocabulary row for row; the rules;
 *   or a one-line reason (a `tokens:` rule that cannot apply)
 */
export function planRebuiltRows(vp: VocabPlan, recipe: ResolvedRecipe, inputs: readonly { model: ModelRef; entry: CatalogueEntry }[]): RebuiltRows | null | string {
  const models = inputs.map((i) => vp.models.findIndex((m) => m.path === i.model.path));
  const rowsOf = (m: number) => inputs[models.indexOf(m)]?.entry.shape[0] ?? 0;
  const rules: TokenRule[] = recipe.vocabulary!.tokens.map((t) => ({
    token: t.token,
    force: t.force,
    source: t.source.kind === 'zero' ? { kind: 'zero' } : t.source.kind === 'model' ? { kind: 'model', model: vp.models.findIndex((m) => m.path === (t.source as { model: ModelRef }).model.path) } : { kind: 'model_token', model: vp.models.findIndex((m) => m.path === (t.source as { model: ModelRef }).model.path), ...(t.source.token !== undefined ? { token: t.source.token } : { tokenId: t.source.tokenId! }) },
  }));
  const r = rowRules({
    vocab: vp.vocab,
    models,
    modelRows: rowsOf,
    base: recipe.vocabulary!.base ? vp.models.findIndex((m) => m.path === recipe.vocabulary!.base!.path) : null,
    rules,
    padToMultipleOf: recipe.vocabulary!.padToMultipleOf,
    tokenId: (m, tok) => vp.tokens[m]!.ids.get(tok),
  });
  if (typeof r === 'string') return r;
  if (models.every((m, i) => isIdentity(r, vp.vocab, m, inputs[i]!.entry.shape[0]!))) return null;
  return { rules: r, models };
}
