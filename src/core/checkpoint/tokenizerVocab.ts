/**
 * Token ↔ id lookups from a checkpoint's tokenizer files, for checks such as "does the chat
 * model's eos token have the same id in the target's vocabulary". Reads tokenizer_config.json's
 * added_tokens_decoder, tokenizer.json's added_tokens and model vocabulary, and added_tokens.json.
 */
import { entryKind } from '../io/files';
import { readJsonObject } from '../io/sideFile';
import { join } from '../io/paths';

export interface Vocabulary {
  tokenOf(id: number): string | undefined;
  idOf(token: string): number | undefined;
}

export function readVocabulary(folder: string): Vocabulary {
  const toToken = new Map<number, string>();
  const toId = new Map<string, number>();
  const add = (id: unknown, token: unknown) => {
    if (typeof token !== 'string' || typeof id !== 'number' || !Number.isInteger(id)) return;
    if (!toToken.has(id)) toToken.set(id, token);
    if (!toId.has(token)) toId.set(token, id);
  };
  const tc = join(folder, 'tokenizer_config.json');
  if (entryKind(tc) === 'file') {
    const dec = readJsonObject(tc).added_tokens_decoder;
    if (dec && typeof dec === 'object') {
      for (const [id, v] of Object.entries(dec as Record<string, { content?: unknown }>)) add(Number(id), v?.content);
    }
  }
  const at = join(folder, 'added_tokens.json');
  if (entryKind(at) === 'file') for (const [tok, id] of Object.entries(readJsonObject(at))) add(id, tok);
  // tokenizer.json holds the whole vocabulary (megabytes for large vocabularies): special tokens
  // are usually found above, so it is parsed only on a miss.
  let full = false;
  const loadFull = () => {
    if (full) return;
    full = true;
    const tj = join(folder, 'tokenizer.json');
    if (entryKind(tj) !== 'file') return;
    const t = readJsonObject(tj);
    if (Array.isArray(t.added_tokens)) for (const a of t.added_tokens as { id?: unknown; content?: unknown }[]) add(a?.id, a?.content);
    const model = t.model as { vocab?: unknown } | undefined;
    if (model?.vocab && typeof model.vocab === 'object' && !Array.isArray(model.vocab)) {
      for (const [tok, id] of Object.entries(model.vocab as Record<string, unknown>)) add(id, tok);
    } else if (Array.isArray(model?.vocab)) {
      // Unigram: [[piece, score], …], the id is the position.
      (model.vocab as unknown[]).forEach((p, i) => Array.isArray(p) && add(i, p[0]));
    }
  };
  return {
    tokenOf: (id) => toToken.get(id) ?? (loadFull(), toToken.get(id)),
    idOf: (tok) => toId.get(tok) ?? (loadFull(), toId.get(tok)),
  };
}
