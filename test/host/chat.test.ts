// Chat sessions in the task host (chatOpen/chatSend/chatCancel/chatClose): the reply streamed in
// pieces whose concatenation is the one-shot CLI's reply and the float64 reference's greedy
// tokens; `chatvec --via-host chat` prints what the in-process chat prints; cancel mid-reply (by
// chatCancel and by $/cancelRequest); a model that cannot be converted is one line; two sessions
// at once each give their own reference reply.
import './toolVersion';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { HostChat } from '../../src/taskhost/chatClient';
import { toChatVecError } from '../../src/core/errors';
import { referenceGreedy, writeTinyChatModel } from '../unit/support/tinyChat';
import { tinyLlamaTensors } from '../unit/support/tinyLlama';
import { CLI_SCRIPT, ensureBundles, newClient, tempDir } from './support';

const OPEN = { type: 'F32', backend: 'cpu', threads: 1 } as const;

describe('task host chat sessions', () => {
  const dir = tempDir('chatvec-host-chat-');
  const cacheDir = path.join(dir, 'cache');
  const tensors = tinyLlamaTensors(5);
  const model = writeTinyChatModel(path.join(dir, 'tiny'), tensors);
  before(() => ensureBundles());

  const cli = (args: string[]) =>
    spawnSync(process.execPath, [CLI_SCRIPT, ...args], { encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: cacheDir, CHATVEC_WORKER_SCRIPT: '' }, timeout: 120_000 });
  const oneShot = (via: boolean) => {
    const r = cli([...(via ? ['--via-host'] : []), 'chat', model, '--system', 'be', '--prompt', 'hello', '--max-tokens', '6', '--json', '--type', 'f32', '--backend', 'cpu', '--threads', '1']);
    assert.equal(r.status, 0, r.stderr);
    const { tokensPerSecond: _rate, ...out } = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { prompt: string; promptTokens: number[]; reply: string; replyTokens: number[]; stop: string; tokensPerSecond: number };
    return out;
  };

  it('streams the reply in pieces that add up to the CLI one-shot reply and the reference argmax; --via-host prints the same', async () => {
    const local = oneShot(false);
    const via = oneShot(true);
    assert.deepEqual(via, local, 'chatvec --via-host chat gives the in-process answer');
    const want = referenceGreedy(tensors, local.promptTokens, 6);
    assert.ok(want.tokens.length >= 2 && want.minMargin > 1e-3, 'a reply of several well-defined argmax tokens');

    const client = newClient();
    const progress: string[] = [];
    const chat = await HostChat.open(client, { model: path.join(dir, 'tiny'), cacheDir: path.join(dir, 'cache2'), system: 'be', ...OPEN }, { onProgress: (p) => progress.push(p.phase) });
    assert.equal(chat.info.ggufFrom, 'converted');
    assert.ok(progress.includes('gguf'), `conversion progress reported: ${progress.join(',')}`);
    assert.equal(chat.info.hasChatTemplate, true);
    const pieces: string[] = [];
    const rates: number[] = [];
    const r = await chat.reply('hello', { maxTokens: 6, onText: (p) => (pieces.push(p.text), rates.push(p.tokensPerSecond)) });
    assert.ok(pieces.length >= 2, `streamed in ${pieces.length} pieces`);
    assert.equal(pieces.join(''), r.text);
    assert.equal(r.text, local.reply);
    assert.deepEqual(r.tokens, want.tokens);
    assert.ok(rates.every((x) => x > 0));
    await chat.dispose();
  });

  it('cancels a reply mid-way (chatCancel and $/cancelRequest); the session goes on', async () => {
    const client = newClient();
    const chat = await HostChat.open(client, { model, cacheDir, ...OPEN });
    let sent = false;
    const c = await chat.reply('more', {
      maxTokens: 400,
      onText: () => {
        if (!sent) void chat.cancel().then((s) => assert.equal(s.state, 'replying'));
        sent = true;
      },
    });
    assert.equal(c.stop, 'cancelled');
    assert.ok(c.tokens.length < 400, `${c.tokens.length} tokens`);
    const abort = new AbortController();
    const d = await chat.reply('more', { maxTokens: 400, cancellation: abort.signal, onText: () => abort.abort() });
    assert.equal(d.stop, 'cancelled');
    assert.ok(d.tokens.length < 400);
    // The cancelled turns are not in the conversation: the next reply is the first turn's.
    const next = await chat.reply('hello', { maxTokens: 3 });
    const fresh = await HostChat.open(client, { model, cacheDir, ...OPEN });
    assert.deepEqual(next.tokens, (await fresh.reply('hello', { maxTokens: 3 })).tokens);
    assert.deepEqual(await chat.cancel(), { state: 'idle' });
    await chat.dispose();
    await fresh.dispose();
    assert.deepEqual(await chat.cancel(), { state: 'unknown' }, 'closed');
  });

  it('a model that cannot be converted is one line naming it', async () => {
    const bad = writeTinyChatModel(path.join(dir, 'gemma'), tensors);
    const cfg = JSON.parse(fs.readFileSync(path.join(bad, 'config.json'), 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(path.join(bad, 'config.json'), JSON.stringify({ ...cfg, architectures: ['Gemma2ForCausalLM'], model_type: 'gemma2' }));
    const client = newClient();
    const e = toChatVecError(await HostChat.open(client, { model: bad, cacheDir, ...OPEN }).then(() => assert.fail('opened'), (x: unknown) => x));
    assert.equal(e.code, 'Unsupported');
    assert.match(e.message, /Gemma2ForCausalLM/);
    assert.ok(!e.message.includes('\n'), e.message);
    const st = await client.status();
    assert.equal(st.jobs.length, 0);
  });

  it('two sessions at once each reply as their own model', async () => {
    const other = tinyLlamaTensors(9);
    const second = writeTinyChatModel(path.join(dir, 'other'), other);
    const client = newClient();
    const [a, b] = await Promise.all([HostChat.open(client, { model, cacheDir, ...OPEN }), HostChat.open(client, { model: second, cacheDir, ...OPEN })]);
    const pa: string[] = [];
    const pb: string[] = [];
    const [ra, rb] = await Promise.all([a.reply('hello', { maxTokens: 5, onText: (p) => pa.push(p.text) }), b.reply('hello', { maxTokens: 5, onText: (p) => pb.push(p.text) })]);
    assert.deepEqual(ra.tokens, referenceGreedy(tensors, ra.promptTokens, 5).tokens);
    assert.deepEqual(rb.tokens, referenceGreedy(other, rb.promptTokens, 5).tokens);
    assert.notDeepEqual(ra.tokens, rb.tokens, 'the two models differ, so a mix-up would show');
    assert.equal(pa.join(''), ra.text);
    assert.equal(pb.join(''), rb.text);
    await Promise.all([a.dispose(), b.dispose()]);
  });
});
