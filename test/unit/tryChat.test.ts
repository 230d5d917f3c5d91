// `chatvec chat`: the prompt rendered with the chat template of the fixture's
// tokenizer_config.json (checked as text and as token ids written out by hand from the fixture's
// vocabulary and merges), the greedy reply against the float64 reference's argmax, the
// conversation carried into the next turn, a model without a template, cancel.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ChatSession } from '../../src/core/tryit/chatSession';
import { startLlama } from '../../src/core/tryit/llamaRuntime';
import { CLI, ensureCli } from './support/builtCli';
import { tempDir } from './support/engineFixtures';
import { referenceGreedy as greedy, TINY_BOS, TINY_EOT, writeTinyChatModel } from './support/tinyChat';
import { tinyLlamaTensors, writeTinyLlama } from './support/tinyLlama';

const BOS = TINY_BOS;
const EOT = TINY_EOT;
// a–z are ids 0–25, Ġ 26, merge results: he 27, ll 28, Ġh 29, hell 30, Ġhe 31.
const letters = (w: string) => [...w].map((c) => c.charCodeAt(0) - 97);
const PROMPT_IDS = [BOS, ...letters('system'), 26, ...letters('be'), EOT, ...letters('user'), 26, 30, 14, EOT, ...letters('assistant')];

let dir: string;
let cacheDir: string;
let model: string;
const tensors = tinyLlamaTensors(5);
before(() => {
  dir = tempDir('try-chat');
  cacheDir = path.join(dir, 'cache');
  model = writeTinyChatModel(path.join(dir, 'tiny'), tensors);
  ensureCli();
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const OPTS = ['--type', 'f32', '--backend', 'cpu', '--threads', '1'];
function cli(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: cacheDir }, timeout: 120_000 });
}

const referenceGreedy = (prompt: readonly number[], n: number) => greedy(tensors, prompt, n);

describe('chatvec chat', () => {
  it('llama.cpp on the CPU gets no more threads than the cores it counts (node-llama-cpp would give at least 4)', async () => {
    const llama = await startLlama('cpu');
    assert.ok(llama.cpuMathCores >= 1);
    assert.ok(llama.maxThreads <= Math.max(llama.cpuMathCores, 1), `maxThreads ${llama.maxThreads} on ${llama.cpuMathCores} cores`);
  });

  it('--prompt renders the model\'s chat template (text and ids) and replies greedily as the reference does', () => {
    const r = cli(['chat', model, '--system', 'be', '--prompt', 'hello', '--max-tokens', '4', '--json', ...OPTS]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { prompt: string; promptTokens: number[]; replyTokens: number[]; reply: string; stop: string };
    assert.equal(out.prompt, '<|begin_of_text|>system be<|eot_id|>user hello<|eot_id|>assistant');
    assert.deepEqual(out.promptTokens, PROMPT_IDS);
    const want = referenceGreedy(PROMPT_IDS, 4);
    assert.ok(want.tokens.length >= 2, 'the reference replies with tokens, so the comparison is not of two empty replies');
    assert.ok(want.minMargin > 1e-3, `the reference's top two logits are apart (${want.minMargin}), so the argmax is well defined`);
    assert.deepEqual(out.replyTokens, want.tokens);
    assert.equal(out.stop, want.tokens.length < 4 ? 'eog' : 'maxTokens');

    // Without --json: the reply's text and a newline, nothing else on stdout.
    const t = cli(['chat', model, '--system', 'be', '--prompt', 'hello', '--max-tokens', '4', '--quiet', ...OPTS]);
    assert.equal(t.status, 0, t.stderr);
    assert.equal(t.stdout, `${out.reply}\n`);
  });

  it('carries the conversation into the next turn, and a cancelled turn is dropped', async () => {
    const s = await ChatSession.open({ model, cacheDir, type: 'F32', backend: 'cpu', threads: 1 });
    try {
      const first = await s.reply('hello', { maxTokens: 3 });
      const next = await s.renderPrompt('abc');
      assert.equal(next.text, `<|begin_of_text|>user hello<|eot_id|>assistant ${first.text}<|eot_id|>user abc<|eot_id|>assistant`);
      const signal = { cancelled: false };
      const c = await s.reply('more', { maxTokens: 50, signal, onText: () => (signal.cancelled = true) });
      assert.equal(c.stop, 'cancelled');
      assert.ok(c.tokens.length < 50);
      assert.deepEqual(s.messages.map((m) => m.content), ['hello', first.text], 'the cancelled turn is not in the conversation');
      // The second turn's greedy reply continues the rendered conversation as the reference does.
      const second = await s.reply('abc', { maxTokens: 2 });
      assert.deepEqual(second.tokens, referenceGreedy(second.promptTokens, 2).tokens);
    } finally {
      await s.dispose();
    }
  });

  it('a model without a chat template is one clear line', () => {
    const bare = writeTinyLlama(path.join(dir, 'bare'), tensors);
    const tc = JSON.parse(fs.readFileSync(path.join(bare, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    delete tc.chat_template;
    fs.writeFileSync(path.join(bare, 'tokenizer_config.json'), JSON.stringify(tc));
    const r = cli(['chat', bare, '--prompt', 'hello', '--quiet', ...OPTS]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^chatvec: error: the model has no chat template \(tokenizer\.chat_template in tokenizer_config\.json or chat_template\.jinja\); use `chatvec eval` for a base model\n$/);
  });
});
