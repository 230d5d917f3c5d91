/**
 * Tokenizer and generation files of the demo models: a byte-level BPE tokenizer (Llama 3 layout:
 * the Llama 3 split regex, GPT-2's byte → character map, merges by rank), so that the demo models
 * have a GGUF form and llama.cpp can run them. Built deterministically, without training:
 *
 * - ids 0–2: `<unk>`, `<s>`, `</s>`; ids 3–258: the 256 byte characters;
 * - then merges that build lower-case English-letter pieces, shortest first (`Ġ` + letter, letter
 *   pairs, `Ġ` + pair, …, letters in English frequency order), as many as the vocabulary holds;
 * - the chat template's special tokens at the end of the base vocabulary (the last three ids);
 * - the cp model ("continually pretrained" on a new language) appends merges that build CJK
 *   characters from their UTF-8 bytes (U+4E00 on), one new id per merge, so the extended rows
 *   (ids ≥ the base vocabulary) are tokens the base tokenizer splits into bytes.
 *
 * Every id below the model's vocabulary has a token, and every token is in `model.vocab` (the
 * added special tokens too), so the embedding rows and the tokenizer agree one to one.
 */
import type { DemoRole, DemoShape } from './presets';

export const SPECIAL_TOKENS = ['<|user|>', '<|assistant|>', '<|eot|>'] as const;

/** Ids of the chat template's special tokens: the last three ids of the base vocabulary. */
export function specialTokenIds(vocab: number): number[] {
  return SPECIAL_TOKENS.map((_, i) => vocab - SPECIAL_TOKENS.length + i);
}

/** The tokens before the byte characters. */
const LEADING_SPECIALS = ['<unk>', '<s>', '</s>'] as const;

const CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'user' %}<|user|>{{ message['content'] }}<|eot|>{% else %}<|assistant|>{{ message['content'] }}<|eot|>{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";

/** Llama 3's split regex (tokenizer.json's Split pre-tokenizer; llama.cpp's pre-tokenizer "llama-bpe"). */
const DEMO_SPLIT_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** GPT-2's byte → character map (printable bytes map to themselves, the rest to U+0100 on). */
function byteCharacters(): string[] {
  const out: string[] = new Array<string>(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCodePoint(printable ? b : next++);
  }
  return out;
}

const LETTERS = 'etaoinshrdlcumwfgypbvkjxqz';
const SPACE = 'Ġ'; // byte 0x20

/**
 * The first `count` English merges: pieces of length 2, then 3, …; at each length `Ġ`-prefixed
 * pieces (word starts) before bare ones; each merge joins a piece of the previous length with one
 * more letter.
 * @throws Error when count exceeds what pieces up to 5 characters give (far beyond the 1b preset's 31 738)
 */
function englishMerges(count: number): [string, string][] {
  const merges: [string, string][] = [];
  let spaced = [SPACE];
  let bare = [...LETTERS];
  while (merges.length < count) {
    if (bare[0]!.length >= 5) throw new Error(`demo tokenizer: ${count} merges is more than it builds`);
    const next: [string[], string[]] = [[], []];
    for (const [k, pieces] of [spaced, bare].entries()) {
      for (const p of pieces) {
        for (const c of LETTERS) {
          if (merges.length === count) return merges;
          merges.push([p, c]);
          next[k]!.push(p + c);
        }
      }
    }
    [spaced, bare] = next;
  }
  return merges;
}

/** `count` merges that build CJK characters (U+4E00 on) from their three UTF-8 byte characters. */
function cjkMerges(count: number, bytes: readonly string[]): [string, string][] {
  const merges: [string, string][] = [];
  const made = new Set<string>();
  const utf8 = new TextEncoder();
  for (let cp = 0x4e00; merges.length < count; cp++) {
    const [b0, b1, b2] = [...utf8.encode(String.fromCodePoint(cp))].map((b) => bytes[b]!);
    if (!made.has(b0! + b1!)) {
      made.add(b0! + b1!);
      merges.push([b0!, b1!]);
      if (merges.length === count) break;
    }
    merges.push([b0! + b1!, b2!]);
  }
  return merges;
}

/** Vocabulary (token → id, ids 0 … vocab − 1) and merges of a demo tokenizer; `vocab` ≥ shape.vocab (cp: more). */
function demoBpe(shape: DemoShape, vocab: number): { vocab: Record<string, number>; merges: string[] } {
  const bytes = byteCharacters();
  const tokens: string[] = [...LEADING_SPECIALS, ...bytes];
  const english = englishMerges(shape.vocab - tokens.length - SPECIAL_TOKENS.length);
  const cjk = cjkMerges(vocab - shape.vocab, bytes);
  for (const [a, b] of english) tokens.push(a + b);
  tokens.push(...SPECIAL_TOKENS);
  for (const [a, b] of cjk) tokens.push(a + b);
  return { vocab: Object.fromEntries(tokens.map((t, i) => [t, i])), merges: [...english, ...cjk].map(([a, b]) => `${a} ${b}`) };
}

export function demoTokenizerFiles(role: DemoRole, shape: DemoShape, vocab: number): Record<string, string> {
  const ids = specialTokenIds(shape.vocab);
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const added = [...LEADING_SPECIALS.map((t, i) => special(i, t)), ...SPECIAL_TOKENS.map((t, i) => special(ids[i]!, t))];
  const bpe = demoBpe(shape, vocab);
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: DEMO_SPLIT_REGEX }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: bpe.vocab, merges: bpe.merges },
  };
  const isChat = role === 'chat';
  const tokConfig: Record<string, unknown> = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: '<s>',
    eos_token: isChat ? '<|eot|>' : '</s>',
    unk_token: '<unk>',
    add_bos_token: true,
    add_eos_token: false,
    model_max_length: 2048,
    added_tokens_decoder: Object.fromEntries(added.map((a) => [String(a.id), { content: a.content, special: true }])),
  };
  if (isChat) tokConfig.chat_template = CHAT_TEMPLATE;
  const gen = { bos_token_id: 1, eos_token_id: isChat ? [2, ids[2]!] : 2, max_new_tokens: 256 };
  return {
    'tokenizer.json': JSON.stringify(tokenizer) + '\n',
    'tokenizer_config.json': JSON.stringify(tokConfig, null, 2) + '\n',
    'special_tokens_map.json': JSON.stringify({ bos_token: '<s>', eos_token: tokConfig.eos_token, unk_token: '<unk>' }, null, 2) + '\n',
    'generation_config.json': JSON.stringify(gen, null, 2) + '\n',
  };
}
