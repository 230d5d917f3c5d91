/**
 * Tokenizer metadata of a GGUF export, from tokenizer.json and tokenizer_config.json, as
 * llama.cpp's converter writes it for byte-level BPE (GPT-2, Llama 3, Qwen2: `tokenizer.ggml.model`
 * "gpt2", tokens by id, token types, merges, `tokenizer.ggml.pre`), with the special token ids,
 * add_bos/add_eos and the chat template.
 *
 * SentencePiece-style BPE in tokenizer.json (Llama 2, Mistral: byte fallback, no ByteLevel
 * pre-tokenizer) is written as the converter's LlamaHfVocab path writes it (`tokenizer.ggml.model`
 * "llama", pre "default", `<0xNN>` byte tokens of type BYTE), except for the scores: the converter
 * writes −1000 for every token when it has no tokenizer.model, which leaves llama.cpp's SPM
 * tokenizer no merge order; here a token made by merge r scores −r (the order SentencePiece's own
 * scores give), others −(number of merges).
 *
 * Differences from the converter, which runs the Hugging Face tokenizer:
 * - `tokenizer.ggml.pre` is chosen from the pre-tokenizer's split regex (the converter hashes the
 *   tokenization of a test text); an unknown regex is refused, as the converter refuses an unknown hash.
 * - Added tokens are written as stored (the converter re-decodes non-normalized ones).
 * - tokenizer.model (SentencePiece protobuf) is not read; WordLevel, Unigram and WordPiece are
 *   refused with one line.
 */
import { ChatVecError } from '../errors';
import { entryKind } from '../io/files';
import { join } from '../io/paths';
import { readJsonObject } from '../io/sideFile';
import { readTextOrNull } from '../io/atomicFile';
import type { GgufValue } from './writer';

/** llama.cpp's token types (llama_token_type / gguf-py TokenType). */
export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** Split regexes of the byte-level pre-tokenizers llama.cpp knows, and its names for them. */
const PRE_BY_REGEX: readonly (readonly [string, string])[] = [
  ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", 'llama-bpe'],
  ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", 'qwen2'],
  ["'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", 'gpt-2'],
];

interface PreTokenizer {
  readonly type?: unknown;
  readonly pretokenizers?: unknown;
  readonly pattern?: { readonly Regex?: unknown; readonly String?: unknown };
  readonly use_regex?: unknown;
}

/**
 * Reads the tokenizer of checkpoint folder `folder` into GGUF metadata for a vocabulary of
 * `vocabSize` tokens (the token embedding rows: ids with no token become `[PADi]`, unused).
 * @param config config.json, for bos/eos/pad token ids the tokenizer files do not name
 * @throws ChatVecError Unsupported (no tokenizer.json, a tokenizer kind or pre-tokenizer with no
 *   GGUF form here, more tokens than embedding rows), BadCheckpoint (malformed files)
 */
export function tokenizerMetadata(folder: string, vocabSize: number, config: Readonly<Record<string, unknown>>): Map<string, GgufValue> {
  const tjPath = join(folder, 'tokenizer.json');
  if (entryKind(tjPath) !== 'file') {
    throw new ChatVecError('Unsupported', `${folder}: no tokenizer.json; llama.cpp needs the vocabulary in the GGUF file (a tokenizer.model alone is not converted by chatvec)`);
  }
  const tj = readJsonObject(tjPath);
  const model = (tj.model ?? {}) as { type?: unknown; vocab?: unknown; merges?: unknown; byte_fallback?: unknown };
  const kind = String(model.type ?? 'unknown');
  const pres = flattenPre(tj.pre_tokenizer as PreTokenizer | null | undefined);
  const byteLevel = pres.some((p) => p.type === 'ByteLevel');
  const sentencePiece = !byteLevel && model.byte_fallback === true;
  if (kind !== 'BPE' || (!byteLevel && !sentencePiece)) {
    const what = kind === 'BPE' ? 'a BPE tokenizer with neither a ByteLevel pre-tokenizer nor byte fallback' : `a ${kind} tokenizer`;
    throw new ChatVecError('Unsupported', `${tjPath}: ${what} has no GGUF conversion in chatvec; byte-level BPE (GPT-2, Llama 3, Qwen2) and SentencePiece-style BPE (Llama 2, Mistral) are supported`);
  }
  const pre = sentencePiece ? 'default' : preName(tjPath, pres);
  if (!model.vocab || typeof model.vocab !== 'object' || Array.isArray(model.vocab)) throw new ChatVecError('BadCheckpoint', `${tjPath}: model.vocab must be an object of token → id`);

  const byId = new Map<number, string>();
  for (const [tok, id] of Object.entries(model.vocab as Record<string, unknown>)) {
    if (typeof id === 'number' && Number.isInteger(id) && id >= 0) byId.set(id, tok);
  }
  const added = new Map<number, { content: string; special: boolean }>();
  for (const a of Array.isArray(tj.added_tokens) ? (tj.added_tokens as { id?: unknown; content?: unknown; special?: unknown }[]) : []) {
    if (typeof a?.id === 'number' && typeof a.content === 'string') {
      added.set(a.id, { content: a.content, special: a.special === true });
      byId.set(a.id, a.content);
    }
  }
  const maxId = Math.max(-1, ...byId.keys());
  if (maxId >= vocabSize) {
    throw new ChatVecError('Unsupported', `${tjPath}: token id ${maxId} is beyond the model's ${vocabSize} embedding rows`);
  }
  const tokens: string[] = [];
  const types = new Int32Array(vocabSize);
  for (let i = 0; i < vocabSize; i++) {
    const tok = byId.get(i);
    const a = added.get(i);
    if (tok === undefined) {
      tokens.push(`[PAD${i}]`);
      types[i] = TOKEN_TYPE.UNUSED;
    } else {
      tokens.push(tok);
      types[i] = a ? (a.special || looksSpecial(a.content) ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED) : TOKEN_TYPE.NORMAL;
      if (sentencePiece && !a && BYTE_TOKEN.test(tok)) types[i] = TOKEN_TYPE.BYTE;
    }
  }
  const merges = mergesOf(tjPath, model.merges);

  const m = new Map<string, GgufValue>();
  m.set('tokenizer.ggml.model', { type: 'string', value: sentencePiece ? 'llama' : 'gpt2' });
  m.set('tokenizer.ggml.pre', { type: 'string', value: pre });
  m.set('tokenizer.ggml.tokens', { type: 'string[]', value: tokens });
  if (sentencePiece) m.set('tokenizer.ggml.scores', { type: 'f32[]', value: mergeScores(tokens, types, merges) });
  m.set('tokenizer.ggml.token_type', { type: 'i32[]', value: types });
  if (!sentencePiece) m.set('tokenizer.ggml.merges', { type: 'string[]', value: merges });
  addSpecials(m, folder, tokens, config, tj);
  return m;
}

/** SentencePiece's byte-fallback tokens. */
const BYTE_TOKEN = /^<0x[0-9A-Fa-f]{2}>$/;

/**
 * SentencePiece scores from the merge list: the token merge r makes scores −r (earlier merges
 * first, as SentencePiece orders its pieces); unused and control tokens −1000 as the converter
 * writes them; bytes and other tokens −(number of merges), after every merge.
 */
function mergeScores(tokens: readonly string[], types: Int32Array, merges: readonly string[]): Float32Array {
  const rank = new Map<string, number>();
  merges.forEach((mg, r) => {
    const sp = mg.indexOf(' ');
    const made = mg.slice(0, sp) + mg.slice(sp + 1);
    if (!rank.has(made)) rank.set(made, r);
  });
  return Float32Array.from(tokens, (t, i) => {
    if (types[i] === TOKEN_TYPE.UNUSED || types[i] === TOKEN_TYPE.CONTROL || types[i] === TOKEN_TYPE.USER_DEFINED) return -1000;
    return -(rank.get(t) ?? merges.length);
  });
}

function flattenPre(p: PreTokenizer | null | undefined): PreTokenizer[] {
  if (!p || typeof p !== 'object') return [];
  if (p.type === 'Sequence' && Array.isArray(p.pretokenizers)) return (p.pretokenizers as PreTokenizer[]).flatMap(flattenPre);
  return [p];
}

function preName(tjPath: string, pres: readonly PreTokenizer[]): string {
  const split = pres.find((p) => p.type === 'Split');
  const regex = split ? split.pattern?.Regex ?? split.pattern?.String : undefined;
  if (regex === undefined) {
    // ByteLevel alone splits with GPT-2's regex when use_regex is on (its default).
    if (pres.some((p) => p.type === 'ByteLevel' && p.use_regex !== false)) return 'gpt-2';
    throw new ChatVecError('Unsupported', `${tjPath}: a byte-level BPE pre-tokenizer with no split regex; llama.cpp has no pre-tokenizer for it`);
  }
  const hit = PRE_BY_REGEX.find(([r]) => r === regex);
  if (!hit) {
    throw new ChatVecError('Unsupported', `${tjPath}: the pre-tokenizer's regex is not one chatvec maps to llama.cpp (${PRE_BY_REGEX.map(([, n]) => n).join(', ')}); use llama.cpp's convert_hf_to_gguf.py`);
  }
  return hit[1];
}

function mergesOf(tjPath: string, merges: unknown): string[] {
  if (!Array.isArray(merges)) throw new ChatVecError('BadCheckpoint', `${tjPath}: a BPE model needs model.merges`);
  return merges.map((x, i) => {
    if (typeof x === 'string') return x;
    if (Array.isArray(x) && x.length === 2 && typeof x[0] === 'string' && typeof x[1] === 'string') return `${x[0]} ${x[1]}`;
    throw new ChatVecError('BadCheckpoint', `${tjPath}: model.merges[${i}] is neither "a b" nor ["a", "b"]`);
  });
}

/** The converter's does_token_look_special, in short: `<|…|>` and `<…>` control-style names. */
function looksSpecial(s: string): boolean {
  return /^<\|.*\|>$/s.test(s) || /^<\/?[A-Za-z_]+>$/.test(s) || /^\[[A-Z_]+\]$/.test(s);
}

/** bos/eos/unk/pad ids, add_bos/add_eos, and the chat template(s). */
function addSpecials(m: Map<string, GgufValue>, folder: string, tokens: readonly string[], config: Readonly<Record<string, unknown>>, tj: Record<string, unknown>): void {
  const tcPath = join(folder, 'tokenizer_config.json');
  const tc = entryKind(tcPath) === 'file' ? readJsonObject(tcPath) : {};
  const idOf = new Map<string, number>();
  tokens.forEach((t, i) => idOf.has(t) || idOf.set(t, i));
  for (const [key, ggufKey] of [
    ['bos', 'bos_token_id'],
    ['eos', 'eos_token_id'],
    ['unk', 'unknown_token_id'],
    ['pad', 'padding_token_id'],
  ] as const) {
    const named = tc[`${key}_token`];
    const content = typeof named === 'string' ? named : typeof (named as { content?: unknown } | null)?.content === 'string' ? (named as { content: string }).content : undefined;
    let id = content !== undefined ? idOf.get(content) : undefined;
    const fromConfig = config[`${key}_token_id`];
    if (id === undefined && typeof fromConfig === 'number' && Number.isInteger(fromConfig) && fromConfig >= 0 && fromConfig < tokens.length) id = fromConfig;
    if (id !== undefined) m.set(`tokenizer.ggml.${ggufKey}`, { type: 'u32', value: id });
  }
  const addBos = typeof tc.add_bos_token === 'boolean' ? tc.add_bos_token : postProcessorAddsBos(tj.post_processor);
  if (addBos !== undefined) m.set('tokenizer.ggml.add_bos_token', { type: 'bool', value: addBos });
  if (typeof tc.add_eos_token === 'boolean') m.set('tokenizer.ggml.add_eos_token', { type: 'bool', value: tc.add_eos_token });
  if (typeof tc.add_prefix_space === 'boolean') m.set('tokenizer.ggml.add_space_prefix', { type: 'bool', value: tc.add_prefix_space });
  const jinja = readTextOrNull(join(folder, 'chat_template.jinja'));
  if (jinja !== null) m.set('tokenizer.chat_template', { type: 'string', value: jinja });
  else if (typeof tc.chat_template === 'string') m.set('tokenizer.chat_template', { type: 'string', value: tc.chat_template });
  else if (Array.isArray(tc.chat_template)) {
    for (const t of tc.chat_template as { name?: unknown; template?: unknown }[]) {
      if (typeof t?.name !== 'string' || typeof t.template !== 'string') continue;
      m.set(t.name === 'default' ? 'tokenizer.chat_template' : `tokenizer.chat_template.${t.name}`, { type: 'string', value: t.template });
    }
  }
}

/** A TemplateProcessing post-processor whose single-sequence template starts with a special token adds bos. */
function postProcessorAddsBos(pp: unknown): boolean | undefined {
  const list = (pp as { type?: unknown; processors?: unknown } | null)?.type === 'Sequence' ? ((pp as { processors: unknown[] }).processors ?? []) : [pp];
  for (const p of list as { type?: unknown; single?: unknown }[]) {
    if (p?.type !== 'TemplateProcessing' || !Array.isArray(p.single)) continue;
    return typeof (p.single[0] as { SpecialToken?: unknown } | undefined)?.SpecialToken === 'object';
  }
  return undefined;
}
