// `chatvec download` against a Hub served by the test on 127.0.0.1 (support/fakeHub.ts), reached
// through HF_ENDPOINT: the files land in the hub cache as huggingface_hub lays them out (blobs named
// by sha256 / git blob id, relative snapshot links, refs), only what a merge needs is fetched, an
// interrupted transfer resumes with a Range request, a corrupted file is rejected and never placed,
// and a gated repository without its token is a clear 401.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { openCheckpoint } from '../../src/core/checkpoint/checkpoint';
import { ChatVecError } from '../../src/core/errors';
import { downloadModel } from '../../src/core/download/download';
import { parseModelId } from '../../src/core/hub/modelId';
import type { ProgressEvent } from '../../src/core/jobs/types';
import { writeModel } from './support/engineFixtures';
import { FakeHub, isolateHubEnv } from './support/fakeHub';
import { TaskHostClient } from '../../src/taskhost/client';
import { fakeCommit } from './support/hubCacheFixture';

const repo = path.resolve(__dirname, '../..');
const savedEnv = { ...process.env };
const COMMIT = fakeCommit('hub-main');
const TOKEN = 'hf_secret_token_for_tests_0123456789';
let root: string;
let cache: string;
let files: Map<string, Buffer>;
const hub = new FakeHub();

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const gitOid = (b: Buffer) => crypto.createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const storage = (id: string) => path.join(cache, `models--${id.replace('/', '--')}`);
const shardNames = () => [...files.keys()].filter((n) => /^model-.*\.safetensors$/.test(n)).sort();

function download(id: string, extra: { include?: string[]; token?: string; onProgress?: (e: ProgressEvent) => void } = {}) {
  return downloadModel({ id: parseModelId(id)!, ...extra });
}

async function rejects(p: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<string> {
  let msg = '';
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ChatVecError, String(e));
    assert.equal(e.code, code, e.message);
    msg = e.message;
    return true;
  });
  assert.ok(!msg.includes('\n'), msg);
  for (const re of patterns) assert.match(msg, re);
  return msg;
}

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-download-'));
  const t = (name: string, n: number, k: number) => ({ name, dtype: 'F32' as const, shape: [n], values: Array.from({ length: n }, (_, i) => k + i) });
  const src = writeModel(path.join(root, 'src'), [t('model.embed_tokens.weight', 64, 1), t('model.layers.0.mlp.up_proj.weight', 64, 2), t('model.norm.weight', 16, 3)], {
    maxShardBytes: 300,
    files: { 'config.json': { model_type: 'llama', num_hidden_layers: 1 }, 'tokenizer_config.json': { eos_token: '</s>' }, 'chat_template.jinja': '{{ messages }}' },
  });
  files = new Map(fs.readdirSync(src).map((n) => [n, fs.readFileSync(path.join(src, n))]));
  assert.ok(shardNames().length >= 2, 'a sharded model');
  // What a merge does not need: pickled weights, a second copy of the weights, docs.
  const extra = new Map<string, Buffer>([
    ['pytorch_model.bin', Buffer.from('pickle')],
    ['consolidated.safetensors', files.get(shardNames()[0]!)!],
    ['original/params.pth', Buffer.from('pickle')],
    ['README.md', Buffer.from('# model\n')],
  ]);
  hub.repos.set('org/model', { commit: COMMIT, branches: { main: COMMIT }, files: new Map([...files, ...extra]) });
  hub.repos.set('org/gated', { commit: COMMIT, branches: { main: COMMIT }, files, token: TOKEN });
  await hub.start();
});
beforeEach(() => {
  cache = isolateHubEnv(hub, root, savedEnv);
});
after(async () => {
  process.env = savedEnv;
  await hub.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('chatvec download', () => {
  it('writes the huggingface_hub cache layout with only what a merge needs, and the id then opens offline', async () => {
    const events: ProgressEvent[] = [];
    const r = await download('org/model', { onProgress: (e) => events.push(e) });
    const st = storage('org/model');
    assert.equal(r.commit, COMMIT);
    assert.equal(r.snapshot, path.join(st, 'snapshots', COMMIT));
    assert.equal(fs.readFileSync(path.join(st, 'refs', 'main'), 'utf8'), COMMIT);
    assert.deepEqual(fs.readdirSync(r.snapshot).sort(), [...files.keys()].sort(), 'no .bin, .pth, README or second copy of the weights');
    for (const [name, bytes] of files) {
      const link = path.join(r.snapshot, name);
      const etag = name.endsWith('.safetensors') ? sha256(bytes) : gitOid(bytes);
      assert.equal(fs.readlinkSync(link), path.join('..', '..', 'blobs', etag), `${name} links relatively into blobs/`);
      assert.deepEqual(fs.readFileSync(link), bytes, name);
    }
    assert.deepEqual(fs.readdirSync(path.join(st, 'blobs')).filter((n) => n.endsWith('.incomplete')), []);
    assert.ok(hub.requests.some((q) => q.url.startsWith('/cdn/')), 'LFS files came through the redirect');
    // Progress counts what was still missing once the index (read first, to choose the shards) was in.
    const total = [...files].filter(([n]) => n !== 'model.safetensors.index.json').reduce((a, [, b]) => a + b.length, 0);
    assert.equal(events.at(-1)!.done, total);
    assert.equal(events.at(-1)!.total, total);
    assert.equal(openCheckpoint('org/model').path, r.snapshot);
    // A second run finds every blob and transfers nothing.
    hub.requests.length = 0;
    assert.equal((await download('org/model')).bytesReceived, 0);
    assert.ok(!hub.requests.some((q) => q.url.includes('/resolve/') || q.url.startsWith('/cdn/')), 'nothing fetched again');
  });

  it('--include replaces the selection (globs), still never pickled files', async () => {
    const r = await download('org/model', { include: ['*.json', '**/*.pth'] });
    assert.deepEqual([...r.files].sort(), [...files.keys()].filter((n) => n.endsWith('.json')).sort());
  });

  it('an interrupted transfer leaves only a .incomplete file, and the next run resumes it with a Range request', async () => {
    const shard = shardNames()[1]!;
    const bytes = files.get(shard)!;
    hub.cutOnce.set(shard, 100);
    await rejects(download('org/model'), 'Io', new RegExp(`${shard.replace(/\./g, '\\.')}: the transfer broke off after \\d+ of ${bytes.length} bytes.*run the download again to resume`));
    const blob = path.join(storage('org/model'), 'blobs', sha256(bytes));
    assert.ok(!fs.existsSync(blob), 'no blob under its final name');
    assert.equal(fs.statSync(`${blob}.incomplete`).size, 100);
    assert.throws(() => openCheckpoint('org/model'), /is incomplete: missing .*unfinished download/);
    hub.requests.length = 0;
    await download('org/model');
    assert.ok(hub.requests.some((q) => q.url.startsWith('/cdn/') && q.range === 'bytes=100-'), JSON.stringify(hub.requests));
    assert.deepEqual(fs.readFileSync(blob), bytes);
    assert.ok(!fs.existsSync(`${blob}.incomplete`));
  });

  it('a file whose bytes do not match its sha256 is rejected and never placed', async () => {
    const shard = shardNames()[0]!;
    hub.corrupt.add(shard);
    try {
      await rejects(download('org/model'), 'BadCheckpoint', /corrupted download: sha256 [0-9a-f]{64} does not match/, new RegExp(shard.replace(/\./g, '\\.')));
    } finally {
      hub.corrupt.delete(shard);
    }
    const blob = path.join(storage('org/model'), 'blobs', sha256(files.get(shard)!));
    assert.ok(!fs.existsSync(blob) && !fs.existsSync(`${blob}.incomplete`), 'neither the blob nor a partial file');
    assert.ok(!fs.existsSync(path.join(storage('org/model'), 'snapshots', COMMIT, shard)));
  });

  it('a gated repository: 401 with a clear message without the token; HF_TOKEN, --token and the token file work; the token is never shown', async () => {
    const m1 = await rejects(download('org/gated'), 'Io', /^org\/gated: the Hub refused access \(HTTP 401\): the repository is gated or private.*no token was sent \(set HF_TOKEN, pass --token/);
    const m2 = await rejects(download('org/gated', { token: 'hf_wrong' }), 'Io', /the token sent was refused/);
    assert.ok(!m2.includes('hf_wrong') && !m1.includes(TOKEN));
    assert.equal((await download('org/gated', { token: TOKEN })).commit, COMMIT);
    assert.ok(hub.requests.every((q) => q.authorization === undefined || q.authorization === `Bearer ${TOKEN}` || q.authorization === 'Bearer hf_wrong'));
    fs.rmSync(cache, { recursive: true, force: true });
    process.env.HF_TOKEN = TOKEN;
    assert.equal((await download('org/gated')).commit, COMMIT);
    delete process.env.HF_TOKEN;
    fs.rmSync(cache, { recursive: true, force: true });
    fs.mkdirSync(path.join(root, 'home'), { recursive: true });
    fs.writeFileSync(path.join(root, 'home', 'token'), TOKEN);
    process.env.HF_HOME = path.join(root, 'home');
    assert.equal((await download('org/gated')).commit, COMMIT);
  });

  it('the CLI: progress and the result line; a 401 is one line, exit 1, without the token', async () => {
    // Asynchronous: the fake Hub answers from this process's event loop.
    const run = (...args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((ok) => {
        const global = args[0] === '--via-host' ? [args.shift()!] : [];
        const c = spawn(process.execPath, ['--import', 'tsx', path.join(repo, 'src/cli/main.ts'), ...global, 'download', ...args], { cwd: repo, env: process.env });
        let stdout = '';
        let stderr = '';
        c.stdout.on('data', (d) => (stdout += d));
        c.stderr.on('data', (d) => (stderr += d));
        c.on('close', (status) => ok({ status, stdout, stderr }));
      });
    const ok = await run('org/model');
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`org/model: ${files.size} files at commit ${COMMIT} \\(.* received\\) in ${cache.replace(/[/.]/g, '.')}`));
    assert.match(ok.stderr, /download org\/model +100% .* \/ /, 'a progress line with bytes');
    const denied = await run('org/gated', '--token', 'hf_wrong_cli');
    assert.equal(denied.status, 1);
    assert.equal(denied.stderr.trim().split('\n').filter((l) => !l.startsWith('cache: ')).length, 1, denied.stderr);
    assert.match(denied.stderr, /chatvec: error: org\/gated: the Hub refused access \(HTTP 401\)/);
    assert.ok(!denied.stderr.includes('hf_wrong_cli'));
    // Through the task host (as the extension downloads): the same job, progress and result.
    fs.rmSync(cache, { recursive: true, force: true });
    const host = await run('--via-host', 'org/model');
    assert.equal(host.status, 0, host.stderr);
    assert.match(host.stdout, new RegExp(`org/model: ${files.size} files at commit ${COMMIT}`));
    assert.match(host.stderr, /download org\/model +100% /);
    assert.deepEqual(fs.readdirSync(path.join(storage('org/model'), 'snapshots', COMMIT)).sort(), [...files.keys()].sort());
  });

  it('a file list naming a path outside the snapshot (../) is refused before anything is written', async () => {
    hub.repos.set('org/evil', { commit: COMMIT, branches: { main: COMMIT }, files: new Map([...files, ['../../escape.json', Buffer.from('{}')]]) });
    await rejects(download('org/evil', { include: ['**'] }), 'Io', /"\.\.\/\.\.\/escape\.json", which would lie outside the snapshot folder/);
    assert.ok(!fs.existsSync(path.join(storage('org/evil'), 'escape.json')) && !fs.existsSync(path.join(cache, 'escape.json')));
  });

  it('the task host lists the downloaded model for the Checkpoints view (hubCacheList)', async () => {
    const r = await download('org/model');
    const client = new TaskHostClient({ hostScript: path.join(repo, 'dist', 'taskhost.js') });
    try {
      const listed = await client.hubCacheList();
      assert.deepEqual(listed.map((m) => [m.repoId, m.commit, m.revisions, m.path, m.architecture]), [['org/model', COMMIT, ['main'], r.snapshot, 'llama']]);
      const weights = shardNames().reduce((a, n) => a + files.get(n)!.length, 0);
      assert.equal(listed[0]!.weightBytes, weights);
    } finally {
      await client.dispose();
    }
  });
});
