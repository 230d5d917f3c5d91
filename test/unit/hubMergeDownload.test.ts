// `chatvec merge --download`: the Hugging Face ids a recipe names (in every document of a
// mergekit-multi file) that the hub cache lacks are fetched from a Hub served by the test on
// 127.0.0.1 (support/fakeHub.ts, reached through HF_ENDPOINT) before the merge runs; without
// --download the error names the missing ids and the option. missingRecipeModelIds is checked on a
// cache built by the test as huggingface_hub lays it out (support/hubCacheFixture.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { generateDemoTrio } from '../../src/core/demo/generator';
import { missingRecipeModelIds } from '../../src/core/recipes/missingModels';
import { readCheckpoint, readSafetensorsFile, tensorValues } from './support/engineFixtures';
import { FakeHub, isolateHubEnv } from './support/fakeHub';
import { fakeCommit, placeInCache } from './support/hubCacheFixture';

const repo = path.resolve(__dirname, '../..');
const savedEnv = { ...process.env };
const TOKEN = 'hf_merge_download_secret_0123456789';
const hub = new FakeHub();
let root: string;
let cache: string;
let demo: { base: string; chat: string; cp: string };

const folderFiles = (dir: string) => new Map(fs.readdirSync(dir).map((n) => [n, fs.readFileSync(path.join(dir, n))]));
const snapshotOf = (id: string, commit: string) => path.join(cache, `models--${id.replace('/', '--')}`, 'snapshots', commit);

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-merge-download-'));
  demo = generateDemoTrio(path.join(root, 'models'), 'tiny', 7);
  hub.repos.set('org/base', { commit: fakeCommit('org/base'), branches: { main: fakeCommit('org/base') }, files: folderFiles(demo.base) });
  hub.repos.set('org/chat', { commit: fakeCommit('org/chat'), branches: { main: fakeCommit('org/chat'), v2: fakeCommit('org/chat') }, files: folderFiles(demo.chat) });
  // Gated: --download must pass the token the way `chatvec download` does.
  hub.repos.set('org/cp', { commit: fakeCommit('org/cp'), branches: { main: fakeCommit('org/cp') }, files: folderFiles(demo.cp), token: TOKEN });
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

/** `chatvec merge …` in its own process; asynchronous, since the fake Hub answers from this one. */
function merge(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    const c = spawn(process.execPath, ['--import', 'tsx', path.join(repo, 'src/cli/main.ts'), 'merge', ...args], {
      cwd: repo,
      env: { ...process.env, CHATVEC_WORKER_SCRIPT: path.join(repo, 'test/unit/support/tsxWorker.cjs') },
    });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (status) => ok({ status, stdout, stderr }));
  });
}

/** Two documents: `soup` averages base and chat@v2, the final merge adds cp's task vector to it. */
function multiRecipe(): string {
  const file = path.join(root, `multi-${path.basename(cache)}.yaml`);
  fs.writeFileSync(
    file,
    `name: soup
merge_method: linear
models:
  - model: org/base
    parameters: {weight: 0.5}
  - model: org/chat@v2
    parameters: {weight: 0.5}
dtype: float32
---
merge_method: task_arithmetic
base_model: org/base
models:
  - model: soup
    parameters: {weight: 1.0}
  - model: org/cp
    parameters: {weight: 1.0}
dtype: float32
`,
  );
  return file;
}

describe('chatvec merge --download', () => {
  it('without --download: the error names each missing id and the option, and nothing is fetched', async () => {
    const r = await merge(multiRecipe(), '--out', path.join(root, 'never'));
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /org\/base: .*not in the Hugging Face cache.*download it with: chatvec download org\/base/);
    assert.match(r.stderr, /run the merge with --download to fetch the 3 models missing from the Hugging Face cache first \(org\/base, org\/chat@v2, org\/cp\)/);
    assert.equal(hub.requests.length, 0, 'offline unless asked');
    assert.ok(!fs.existsSync(path.join(root, 'never')));
  });

  it('fetches the missing ids of every document (with the token), then merges; the output is soup + (cp − base)', async () => {
    const out = path.join(root, 'out-multi');
    const r = await merge(multiRecipe(), '--download', '--token', TOKEN, '--out', out, '--threads', '1');
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!r.stderr.includes(TOKEN) && !r.stdout.includes(TOKEN), 'the token is never printed');
    for (const id of ['org/base', 'org/chat', 'org/cp']) {
      assert.ok(fs.existsSync(path.join(snapshotOf(id, fakeCommit(id)), 'model.safetensors')), `${id} downloaded`);
    }
    assert.equal(fs.readFileSync(path.join(cache, 'models--org--chat', 'refs', 'v2'), 'utf8'), fakeCommit('org/chat'));
    assert.match(r.stderr, /download org\/cp +100% /, 'progress as chatvec download shows it');
    assert.match(r.stderr, /org\/chat@v2: \d+ files at commit [0-9a-f]{40}/);
    assert.ok(hub.requests.some((q) => q.authorization === `Bearer ${TOKEN}`));
    // float64 reference: 0.5·base + 0.5·chat + (cp − base) on one tensor.
    const name = 'model.norm.weight';
    const [b, c, p] = [demo.base, demo.chat, demo.cp].map((d) => tensorValues(readCheckpoint(d), name));
    const got = tensorValues(readCheckpoint(out), name);
    for (let i = 0; i < got.length; i++) {
      const want = 0.5 * b![i]! + 0.5 * c![i]! + (p![i]! - b![i]!);
      assert.ok(Math.abs(got[i]! - want) <= 1e-5 * Math.max(1, Math.abs(want)), `${name}[${i}]: ${got[i]} vs ${want}`);
    }
    const meta = JSON.parse(readSafetensorsFile(path.join(out, readCheckpoint(out).files[0]!)).metadata.chatvec!) as { hub_sources: Record<string, string> };
    assert.ok(Object.values(meta.hub_sources).includes(`org/cp@${fakeCommit('org/cp')}`), JSON.stringify(meta.hub_sources));
    // Everything is cached now: a second run fetches nothing.
    hub.requests.length = 0;
    const again = await merge(multiRecipe(), '--download', '--out', path.join(root, 'out-multi-2'), '--threads', '1', '--quiet');
    assert.equal(again.status, 0, again.stderr);
    assert.equal(hub.requests.length, 0);
  });

  it('a gated id without a token: the 401 message of chatvec download, no output', async () => {
    const out = path.join(root, 'out-denied');
    const r = await merge(multiRecipe(), '--download', '--out', out);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /chatvec: error: org\/cp: the Hub refused access \(HTTP 401\).*no token was sent/);
    assert.ok(!fs.existsSync(out));
  });

  it('--token without --download is refused (merges read the cache offline)', async () => {
    const r = await merge(multiRecipe(), '--token', TOKEN, '--dry-run');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--token is used by --download only/);
    assert.ok(!r.stderr.includes(TOKEN));
  });
});

describe('missingRecipeModelIds', () => {
  it('lists ids the cache cannot serve (absent, unknown revision, incomplete snapshot), once each, document by document; not local folders, cached ids or merge names', () => {
    placeInCache(cache, 'org/base', fakeCommit('org/base'), demo.base, ['main']);
    const partial = placeInCache(cache, 'org/broken', fakeCommit('broken'), demo.chat, ['main']);
    fs.rmSync(path.join(partial, 'model.safetensors'));
    fs.writeFileSync(path.join(partial, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { x: 'model-00001-of-00002.safetensors' } }));
    const dir = path.join(root, 'recipes');
    fs.mkdirSync(path.join(dir, 'local', 'model'), { recursive: true });
    const text = `name: first
merge_method: linear
models:
  - model: org/base
  - model: org/base@v9
  - model: local/model
  - model: org/broken
dtype: float32
---
merge_method: task_arithmetic
base_model: org/base
tokenizer_source: org/tok
models:
  - model: first
  - model: org/new+org/lora
  - model: org/base@v9
`;
    assert.deepEqual(missingRecipeModelIds(text, dir), ['org/base@v9', 'org/broken', 'org/new', 'org/lora', 'org/tok']);
    assert.deepEqual(missingRecipeModelIds('merge_method: linear\nmodels:\n  - model: org/base\n', dir), []);
  });
});
