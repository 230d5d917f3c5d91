// The demo models' byte-level BPE tokenizer, and the demo's merged model exported to GGUF: read
// back with @huggingface/gguf, loaded by llama.cpp (node-llama-cpp 3.21.1, prebuilt CPU binary,
// no build), whose tokenization of English, digits, punctuation and CJK text equals that of a
// reference BPE written here (GPT-2 byte map, Llama 3 split regex, lowest-rank merge first) over
// the tokenizer.json's own vocab and merges.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gguf } from '@huggingface/gguf';
import { generateDemoTrio } from '../../src/core/demo/generator';
import { PRESETS } from '../../src/core/demo/presets';
import { runApply } from '../../src/core/engine/apply';
import { runGgufExport } from '../../src/core/gguf/export';
import { tempDir } from './support/engineFixtures';

interface TokenizerJson {
  added_tokens: { id: number; content: string; special: boolean }[];
  model: { type: string; vocab: Record<string, number>; merges: string[] };
}

/** GPT-2's bytes_to_unicode, written from its definition. */
function gpt2ByteMap(): Map<number, string> {
  const keep: number[] = [];
  for (let b = '!'.charCodeAt(0); b <= '~'.charCodeAt(0); b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const map = new Map(keep.map((b) => [b, String.fromCharCode(b)]));
  let n = 0;
  for (let b = 0; b < 256; b++) if (!map.has(b)) map.set(b, String.fromCharCode(256 + n++));
  return map;
}

// Llama 3's split regex in JavaScript syntax (no inline (?i:) group in Node 20).
const SPLIT = /'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

/** Token ids of `text` by byte-level BPE over `tj`'s vocab and merges (no special tokens, no bos). */
function referenceBpe(tj: TokenizerJson, text: string): number[] {
  const bytes = gpt2ByteMap();
  const rank = new Map(tj.model.merges.map((m, r) => [m, r]));
  const ids: number[] = [];
  for (const piece of text.match(SPLIT) ?? []) {
    let syms = [...Buffer.from(piece, 'utf8')].map((b) => bytes.get(b)!);
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < syms.length; i++) {
        const r = rank.get(`${syms[i]} ${syms[i + 1]}`);
        if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
      }
      if (best < 0) break;
      syms = [...syms.slice(0, best), syms[best]! + syms[best + 1]!, ...syms.slice(best + 2)];
    }
    for (const s of syms) {
      const id = tj.model.vocab[s];
      assert.equal(typeof id, 'number', `symbol ${JSON.stringify(s)} of ${JSON.stringify(piece)} is not in the vocab`);
      ids.push(id!);
    }
  }
  return ids;
}

const TEXTS = ['the tea is here', 'Hello, World 123!\n  and   then', '一丁七中 is 国语', "it's  the end."];

let dir: string;
let trio: ReturnType<typeof generateDemoTrio>;
const tokenizerOf = (model: string) => JSON.parse(fs.readFileSync(path.join(model, 'tokenizer.json'), 'utf8')) as TokenizerJson;

before(() => {
  dir = tempDir('gguf-demo');
  trio = generateDemoTrio(path.join(dir, 'demo'), 'tiny', 42);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('demo tokenizer (byte-level BPE)', () => {
  it('has one token per id, merges of known tokens, and a cp vocabulary that extends base with CJK merges', () => {
    for (const role of ['base', 'chat', 'cp'] as const) {
      const tj = tokenizerOf(trio[role]);
      assert.equal(tj.model.type, 'BPE');
      const n = PRESETS.tiny.vocab + (role === 'cp' ? PRESETS.tiny.cpExtraVocab : 0);
      assert.deepEqual(Object.values(tj.model.vocab).sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i), `${role}: ids 0..${n - 1}, each once`);
      for (const m of tj.model.merges) {
        const [a, b, extra] = m.split(' ');
        assert.ok(extra === undefined && a! in tj.model.vocab && b! in tj.model.vocab && a! + b! in tj.model.vocab, `${role}: merge "${m}"`);
      }
      for (const a of tj.added_tokens) assert.equal(tj.model.vocab[a.content], a.id, a.content);
    }
    const base = tokenizerOf(trio.base);
    const cp = tokenizerOf(trio.cp);
    assert.deepEqual(cp.model.merges.slice(0, base.model.merges.length), base.model.merges, 'cp keeps the base merges, in order');
    for (const [t, id] of Object.entries(base.model.vocab)) assert.equal(cp.model.vocab[t], id, t);
    // The base tokenizer spells 一 in three bytes; cp has it as one new token beyond the base rows.
    assert.equal(referenceBpe(base, '一').length, 3);
    const [one] = referenceBpe(cp, '一');
    assert.ok(referenceBpe(cp, '一').length === 1 && one! >= PRESETS.tiny.vocab);
    // Lower-case English merges, word starts (Ġ = space) first: tiny's 250 reach "Ġt" and "he".
    assert.deepEqual(referenceBpe(base, ' the'), [base.model.vocab['Ġt'], base.model.vocab['he']]);
  });
});

describe('the demo merged model exported to GGUF', () => {
  it('reads back with @huggingface/gguf, loads in llama.cpp on the CPU, and tokenizes as tokenizer.json\'s BPE does', async () => {
    const merged = path.join(dir, 'merged');
    const ids = [509, 510, 511];
    await runApply({ target: trio.cp, base: trio.base, chats: [trio.chat], out: merged, skipEmbed: true, specialTokens: ids.map((i) => [i, i] as const) });
    const out = path.join(dir, 'merged.gguf');
    await runGgufExport({ model: merged, out, type: 'F16' });

    const tj = tokenizerOf(merged);
    const vocab = PRESETS.tiny.vocab + PRESETS.tiny.cpExtraVocab;
    const md = (await gguf(out, { allowLocalFile: true })).metadata as Record<string, unknown>;
    assert.equal(md['general.architecture'], 'llama');
    assert.equal(md['tokenizer.ggml.model'], 'gpt2');
    assert.equal(md['tokenizer.ggml.pre'], 'llama-bpe');
    const tokens = md['tokenizer.ggml.tokens'] as string[];
    assert.equal(tokens.length, vocab);
    for (const [t, id] of Object.entries(tj.model.vocab)) assert.equal(tokens[id], t);
    assert.deepEqual(md['tokenizer.ggml.merges'], tj.model.merges);
    assert.equal(md['tokenizer.ggml.eos_token_id'], tj.model.vocab['<|eot|>'], "the merged model's eos is the chat model's <|eot|>");
    assert.equal(md['tokenizer.ggml.bos_token_id'], 1);
    assert.match(String(md['tokenizer.chat_template']), /<\|assistant\|>/);

    const { getLlama } = await import('node-llama-cpp');
    const llama = await getLlama({ build: 'never', gpu: false, logLevel: 'error' as never });
    try {
      const m = await llama.loadModel({ modelPath: out });
      for (const text of TEXTS) {
        const want = referenceBpe(tj, text);
        assert.deepEqual([...m.tokenize(text, false)], want, JSON.stringify(text));
      }
      assert.ok(referenceBpe(tj, TEXTS[2]!).some((id) => id >= PRESETS.tiny.vocab), 'the CJK text uses the tokens cp added');
      // The chat template's tokens are special tokens to llama.cpp.
      assert.deepEqual([...m.tokenize('<|user|>hi<|eot|>', true)], [509, ...referenceBpe(tj, 'hi'), 511]);
      await m.dispose();
    } finally {
      await llama.dispose();
    }
  });
});
