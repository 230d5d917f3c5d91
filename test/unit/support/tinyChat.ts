/**
 * The tiny LLaMA fixture as a chat model (a chat template in its tokenizer_config.json), and greedy
 * decoding with the float64 reference forward pass: the expected replies of chat tests.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FixtureTensor } from './recipeFixtures';
import { referenceLogits } from './llamaReference';
import { TINY_LLAMA, referenceWeights, writeTinyLlama } from './tinyLlama';

// Only lowercase letters, spaces and the fixture's two special tokens: the tiny vocabulary has no other bytes.
export const TINY_CHAT_TEMPLATE = "{{ bos_token }}{% for m in messages %}{{ m['role'] }} {{ m['content'] }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}assistant{% endif %}";
/** The fixture's BOS and end-of-turn ids. */
export const TINY_BOS = 32;
export const TINY_EOT = 33;

/** writeTinyLlama, with TINY_CHAT_TEMPLATE as its chat template. */
export function writeTinyChatModel(dir: string, tensors: readonly FixtureTensor[]): string {
  const model = writeTinyLlama(dir, tensors);
  const tc = JSON.parse(fs.readFileSync(path.join(model, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(model, 'tokenizer_config.json'), JSON.stringify({ ...tc, chat_template: TINY_CHAT_TEMPLATE }));
  return model;
}

/** Greedy decoding with the float64 reference: argmax of the last position's logits, until EOT or n tokens. */
export function referenceGreedy(tensors: readonly FixtureTensor[], prompt: readonly number[], n: number): { tokens: number[]; minMargin: number } {
  const w = referenceWeights(tensors);
  const tokens: number[] = [];
  let minMargin = Infinity;
  while (tokens.length < n) {
    const logits = referenceLogits(w, TINY_LLAMA, [...prompt, ...tokens]).at(-1)!;
    const order = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]!);
    minMargin = Math.min(minMargin, logits[order[0]!]! - logits[order[1]!]!);
    if (order[0] === TINY_EOT) break;
    tokens.push(order[0]!);
  }
  return { tokens, minMargin };
}
