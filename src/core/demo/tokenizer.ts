/**
 * Tokenizer and generation files of the demo models: a word-level vocabulary, the chat template's
 * special tokens at the end of the base vocabulary, and a chat template on the chat model only.
 */
import type { DemoRole, DemoShape } from './presets';

export const SPECIAL_TOKENS = ['<|user|>', '<|assistant|>', '<|eot|>'] as const;

/** Ids of the chat template's special tokens: the last three ids of the base vocabulary. */
export function specialTokenIds(vocab: number): number[] {
  return SPECIAL_TOKENS.map((_, i) => vocab - SPECIAL_TOKENS.length + i);
}

const CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'user' %}<|user|>{{ message['content'] }}<|eot|>{% else %}<|assistant|>{{ message['content'] }}<|eot|>{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";

export function demoTokenizerFiles(role: DemoRole, shape: DemoShape, vocab: number): Record<string, string> {
  const ids = specialTokenIds(shape.vocab);
  const words: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let i = 3; i < shape.vocab - SPECIAL_TOKENS.length; i++) words[`w${i}`] = i;
  SPECIAL_TOKENS.forEach((t, i) => (words[t] = ids[i]!));
  for (let i = shape.vocab; i < vocab; i++) words[`zh${i}`] = i; // the cp model's new language
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const added = [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>'), ...SPECIAL_TOKENS.map((t, i) => special(ids[i]!, t))];
  const tokenizer = {
    version: '1.0',
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    model: { type: 'WordLevel', vocab: words, unk_token: '<unk>' },
  };
  const isChat = role === 'chat';
  const tokConfig: Record<string, unknown> = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: '<s>',
    eos_token: isChat ? '<|eot|>' : '</s>',
    unk_token: '<unk>',
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
