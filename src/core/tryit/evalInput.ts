/**
 * The token ids a perplexity evaluation scores: a UTF-8 text tokenized by the model itself (with
 * its BOS token first when the model asks for one, as Hugging Face's tokenizers do), or a JSON
 * file of ids (used exactly as given).
 */
import type { LlamaModel } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { ChatVecError } from '../errors';
import { readSmallText } from '../io/sideFile';

/**
 * Parses a JSON token-id list: `[1, 2, 3]` or `{ "ids": [1, 2, 3] }`.
 * @throws ChatVecError InvalidArgument naming the file when it is not such a list of integers in [0, vocab)
 */
export function parseIdsJson(file: string, text: string, vocab: number): number[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ChatVecError('InvalidArgument', `${file}: not valid JSON (${(e as Error).message})`);
  }
  const ids = Array.isArray(v) ? v : typeof v === 'object' && v !== null && Array.isArray((v as { ids?: unknown }).ids) ? (v as { ids: unknown[] }).ids : null;
  if (ids === null) throw new ChatVecError('InvalidArgument', `${file}: must be a JSON array of token ids or an object with an "ids" array`);
  const bad = ids.findIndex((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x >= vocab);
  if (bad >= 0) throw new ChatVecError('InvalidArgument', `${file}: ids[${bad}] = ${JSON.stringify(ids[bad])} is not a token id of this model (integers 0 to ${vocab - 1})`);
  return ids as number[];
}

/** The model's vocabulary size (tokens in its GGUF metadata, else the embedding's rows). */
export function vocabSize(model: LlamaModel): number {
  const tokens = (model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: readonly unknown[] } } }).tokenizer?.ggml?.tokens;
  if (tokens?.length) return tokens.length;
  const emb = model.fileInfo.tensorInfo?.find((t) => t.name === 'token_embd.weight');
  return Number(emb?.dimensions[1] ?? 0);
}

/**
 * The ids of `--text FILE` or `--ids FILE`.
 * @throws ChatVecError InvalidArgument (unreadable or malformed file)
 */
export function evalTokens(model: LlamaModel, source: { readonly text?: string; readonly ids?: string }): number[] {
  if (source.ids !== undefined) return parseIdsJson(source.ids, readSmallText(source.ids, 'input'), vocabSize(model));
  if (source.text === undefined) throw new ChatVecError('InvalidArgument', 'give the text to score: --text FILE or --ids FILE.json');
  const text = readSmallText(source.text, 'input');
  // Special-token text in a corpus ("<|eot_id|>" inside an article) is read as plain text.
  const ids = [...model.tokenize(text, false)] as number[];
  const bos = model.tokens.bos;
  return model.tokens.shouldPrependBosToken && bos !== null ? [bos as number, ...ids] : ids;
}
