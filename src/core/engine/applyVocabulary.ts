/**
 * apply with a tokenizer source (`--tokenizer-source cp|base|union`): the target (CP), base and
 * chat models' embeddings and LM heads are rebuilt by token for one output vocabulary before the
 * fused apply, as a recipe's tokenizer_source does (vocab/). With `cp`, a token only the CP has
 * gets the CP's row in base and chat alike, so its chat vector is zero and the output keeps the
 * CP's row; a token the chat lacks takes the base's row (τ = 0 there too).
 */
import type { CatalogueEntry, Checkpoint } from '../checkpoint/checkpoint';
import { isVocabTensor } from '../checkpoint/layers';
import { ChatVecError } from '../errors';
import { AtomicOutputDir } from '../io/atomicOutput';
import type { TensorLocation } from '../safetensors/reader';
import { type ModelTokens, readModelTokens } from '../vocab/modelTokens';
import { type OutputVocab, buildOutputVocab } from '../vocab/outputVocab';
import { rebuildRows } from '../vocab/rebuildRows';
import { isIdentity, rowRules } from '../vocab/rowRules';

export type ApplyTokenizerSource = 'cp' | 'base' | 'union';

export interface ApplyVocabulary {
  /** The checkpoints with their vocabulary tensors read from the rebuilt rows. */
  readonly target: Checkpoint;
  readonly base: Checkpoint;
  readonly chats: readonly Checkpoint[];
  readonly vocab: OutputVocab;
  /** Rows of the output's vocabulary tensors. */
  readonly outRows: number;
  /** Folder whose tokenizer files the output gets (then the vocabulary's added tokens). */
  readonly tokenizerFolder: string;
  /** One line for the log: what happens to the vocabulary. */
  readonly summary: string;
  /** Removes the temporary folder of rebuilt rows. */
  readonly dispose: () => void;
}

function withEntries(c: Checkpoint, replaced: ReadonlyMap<string, CatalogueEntry>): Checkpoint {
  if (!replaced.size) return c;
  return {
    ...c,
    tensors: c.tensors.map((t) => replaced.get(t.name) ?? t),
    byName: new Map([...c.byName].map(([k, e]) => [k, replaced.get(e.name) ?? e])),
  };
}

/**
 * Rebuilds every vocabulary tensor of the target, base and chats for the output vocabulary into a
 * temporary folder beside `out`.
 * @param inputs every input path (the temporary folder obeys the output rules against them)
 * @throws ChatVecError BadCheckpoint (a model without tokenizer.json), NameMismatch (a vocabulary
 *   tensor missing from a model), ShapeMismatch (row lengths differ); Io
 */
export function rebuildApplyVocabulary(source: ApplyTokenizerSource, target: Checkpoint, base: Checkpoint, chats: readonly Checkpoint[], out: string, overwrite: boolean, inputs: readonly string[]): ApplyVocabulary {
  const cks = [target, base, ...chats];
  const tokens: ModelTokens[] = cks.map((c) => readModelTokens(c.folder));
  const rowsOf = (c: Checkpoint) => c.tensors.find((t) => t.group.role === 'embedding')?.shape[0] ?? Number.MAX_SAFE_INTEGER;
  // Vocabulary model 1 is apply's base: mergekit's base for `union` and the default rows.
  const vocab = buildOutputVocab(cks.map((c, i) => ({ tokens: tokens[i]!, rows: rowsOf(c) })), 1, source === 'cp' ? { model: 0 } : source);
  const models = cks.map((_, i) => i);
  const rules = rowRules({ vocab, models, modelRows: (m) => rowsOf(cks[m]!), base: 1, rules: [], padToMultipleOf: null, tokenId: (m, t) => tokens[m]!.ids.get(t) });
  if (typeof rules === 'string') throw new ChatVecError('Internal', rules);
  const replaced = cks.map(() => new Map<string, CatalogueEntry>());
  let temp: AtomicOutputDir | null = null;
  try {
    let n = 0;
    for (const t of target.tensors) {
      if (!isVocabTensor(t)) continue;
      const entries = cks.map((c) => c.byName.get(t.name));
      const lacking = cks.filter((_, i) => !entries[i]);
      if (lacking.length) throw new ChatVecError('NameMismatch', `${t.name} is missing from ${lacking[0]!.path}; --tokenizer-source rebuilds it from every model`);
      if (entries.every((e, i) => isIdentity(rules, vocab, i, e!.shape[0]!))) continue;
      temp ??= AtomicOutputDir.begin(out, { overwrite, inputs, tag: `vocab-${Date.now().toString(36)}` });
      const locations = new Map<number, TensorLocation>(entries.map((e, i) => [i, e!]));
      entries.forEach((e, i) => replaced[i]!.set(e!.name, { ...e!, ...rebuildRows(temp!.file(`rows-${n++}.bin`), i, locations, rules, vocab) }));
    }
  } catch (e) {
    temp?.abort();
    throw e;
  }
  const lacks = (i: number) => vocab.permutations[i]!.filter((r) => r < 0).length;
  const label = source === 'cp' ? `the target's (${target.path})` : source === 'base' ? `the base's (${base.path})` : 'the union of all';
  return {
    target: withEntries(target, replaced[0]!),
    base: withEntries(base, replaced[1]!),
    chats: chats.map((c, i) => withEntries(c, replaced[i + 2]!)),
    vocab,
    outRows: vocab.size,
    tokenizerFolder: cks[vocab.from]!.folder,
    summary: `vocabulary: ${label}, ${vocab.size} tokens; tokens lacking: target ${lacks(0)}, base ${lacks(1)}, ${chats.map((_, i) => `chat ${lacks(i + 2)}`).join(', ')} (rows from the base, else the only model that has them)`,
    dispose: () => temp?.abort(),
  };
}
