/**
 * The output's tokenizer files for a built vocabulary: the source tokenizer's files (already
 * copied into the output) gain the added tokens, with the ids the vocabulary assigned, in
 * tokenizer.json's `added_tokens` and tokenizer_config.json's `added_tokens_decoder`, as
 * transformers' add_tokens + save_pretrained write them in mergekit.
 */
import { entryKind } from '../io/files';
import { writeSmallFileSync } from '../io/outputFile';
import { readJsonObject } from '../io/sideFile';
import type { AddedToken } from './modelTokens';

/** tokenizer_config.json's view of an added token (no id: it is the key). */
function decoderEntry(t: AddedToken): Record<string, unknown> {
  return {
    content: t.content,
    lstrip: t.lstrip ?? false,
    normalized: t.normalized ?? true,
    rstrip: t.rstrip ?? false,
    single_word: t.single_word ?? false,
    special: t.special ?? false,
  };
}

/**
 * Adds `added` to the tokenizer files already written at `file(name)`; a file that is absent stays absent.
 * @throws ChatVecError BadCheckpoint when a file is not a JSON object; Io
 */
export function addTokensToOutput(file: (name: string) => string, added: readonly AddedToken[]): void {
  if (!added.length) return;
  const tj = file('tokenizer.json');
  if (entryKind(tj) === 'file') {
    const t = readJsonObject(tj);
    const list = Array.isArray(t.added_tokens) ? (t.added_tokens as unknown[]) : [];
    t.added_tokens = [...list, ...added.map((a) => ({ id: a.id, ...decoderEntry(a) }))];
    writeSmallFileSync(tj, JSON.stringify(t, null, 2) + '\n');
  }
  const tc = file('tokenizer_config.json');
  if (entryKind(tc) === 'file') {
    const c = readJsonObject(tc);
    const dec = c.added_tokens_decoder && typeof c.added_tokens_decoder === 'object' ? { ...(c.added_tokens_decoder as Record<string, unknown>) } : {};
    for (const a of added) dec[String(a.id)] = decoderEntry(a);
    c.added_tokens_decoder = dec;
    writeSmallFileSync(tc, JSON.stringify(c, null, 2) + '\n');
  }
}
