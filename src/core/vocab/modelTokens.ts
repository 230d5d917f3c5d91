/**
 * A model's whole vocabulary from its tokenizer.json: every token with its id (the tokenizer
 * model's vocabulary and the added tokens) and each added token's attributes. This is what
 * building an output vocabulary needs; tokenizerVocab.ts answers single lookups lazily instead.
 */
import { ChatVecError } from '../errors';
import { entryKind } from '../io/files';
import { join } from '../io/paths';
import { readJsonObject } from '../io/sideFile';

/** An added token as tokenizer.json writes it (`id`, `content`, `special`, `normalized`, …). */
export interface AddedToken {
  readonly id: number;
  readonly content: string;
  readonly [attribute: string]: unknown;
}

export interface ModelTokens {
  /** The tokenizer.json read. */
  readonly file: string;
  /** Token → id, for the tokenizer model's vocabulary and the added tokens. */
  readonly ids: ReadonlyMap<string, number>;
  /** Added tokens by content. */
  readonly added: ReadonlyMap<string, AddedToken>;
}

/**
 * Reads the vocabulary of the tokenizer.json in `folder` (BPE, WordPiece and WordLevel
 * dictionaries; Unigram lists, where the id is the position).
 * @throws ChatVecError BadCheckpoint when there is no tokenizer.json or it has no vocabulary; Io
 */
export function readModelTokens(folder: string): ModelTokens {
  const file = join(folder, 'tokenizer.json');
  if (entryKind(file) !== 'file') throw new ChatVecError('BadCheckpoint', `${file}: not found (building a vocabulary needs each model's tokenizer.json)`);
  const t = readJsonObject(file);
  const ids = new Map<string, number>();
  const added = new Map<string, AddedToken>();
  const put = (token: unknown, id: unknown) => {
    if (typeof token === 'string' && typeof id === 'number' && Number.isInteger(id) && id >= 0 && !ids.has(token)) ids.set(token, id);
  };
  const model = t.model as { vocab?: unknown } | undefined;
  if (model?.vocab && typeof model.vocab === 'object' && !Array.isArray(model.vocab)) {
    for (const [tok, id] of Object.entries(model.vocab as Record<string, unknown>)) put(tok, id);
  } else if (Array.isArray(model?.vocab)) {
    (model.vocab as unknown[]).forEach((p, i) => Array.isArray(p) && put(p[0], i));
  } else {
    throw new ChatVecError('BadCheckpoint', `${file}: no model.vocab (not a tokenizers file with a vocabulary)`);
  }
  if (Array.isArray(t.added_tokens)) {
    for (const a of t.added_tokens as Record<string, unknown>[]) {
      if (!a || typeof a.content !== 'string' || typeof a.id !== 'number' || !Number.isInteger(a.id) || a.id < 0) continue;
      // An added token's id wins over the same string in the model's vocabulary, as in tokenizers.
      ids.set(a.content, a.id);
      if (!added.has(a.content)) added.set(a.content, a as unknown as AddedToken);
    }
  }
  return { file, ids, added };
}
