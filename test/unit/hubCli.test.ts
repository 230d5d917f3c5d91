// The CLI accepts Hugging Face ids wherever it takes a checkpoint: `inspect`, `apply`
// (--target/--base/--chat), `merge` recipes (models, base_model); the ids resolve from a hub cache
// built by the test (support/hubCacheFixture.ts), the log and the dry run say which snapshot was
// used, and the output's __metadata__ and model card record each input's commit.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateDemoTrio } from '../../src/core/demo/generator';
import { readSafetensorsFile, tensorValues, readCheckpoint } from './support/engineFixtures';
import { fakeCommit, placeInCache } from './support/hubCacheFixture';

const repo = path.resolve(__dirname, '../..');
let root: string;
let cache: string;
const BASE = fakeCommit('base');
const CHAT = fakeCommit('chat');
const CP = fakeCommit('cp');

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-hub-cli-'));
  const demo = generateDemoTrio(path.join(root, 'models'), 'tiny', 42);
  cache = path.join(root, 'hub');
  placeInCache(cache, 'demo/tiny-base', BASE, demo.base);
  placeInCache(cache, 'demo/tiny-chat', CHAT, demo.chat, ['main', 'v1']);
  placeInCache(cache, 'demo/tiny-cp', CP, demo.cp);
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

function chatvec(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repo, 'src/cli/main.ts'), ...args], {
    cwd: repo, // tsx resolves from the repository; no folder there is named like the ids
    encoding: 'utf8',
    env: { ...process.env, HF_HUB_CACHE: cache, CHATVEC_WORKER_SCRIPT: path.join(repo, 'test/unit/support/tsxWorker.cjs') },
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('CLI with Hugging Face ids', () => {
  it('inspect takes an id and shows the snapshot', () => {
    const r = chatvec('inspect', 'demo/tiny-base');
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.startsWith(path.join(cache, 'models--demo--tiny-base', 'snapshots', BASE)), r.stdout);
  });

  it('the task host resolves ids too (--via-host, as the extension runs jobs): inspect and apply', () => {
    const r = chatvec('--via-host', 'inspect', 'demo/tiny-chat@v1');
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.startsWith(path.join(cache, 'models--demo--tiny-chat', 'snapshots', CHAT)), r.stdout);
    const out = path.join(root, 'out-via-host');
    const a = chatvec('--via-host', 'apply', '--target', 'demo/tiny-cp', '--base', 'demo/tiny-base', '--chat', 'demo/tiny-chat', '--out', out, '--threads', '1', '--skip-embed');
    assert.equal(a.status, 0, a.stderr);
    assert.match(a.stderr, new RegExp(`base: demo/tiny-base commit ${BASE} \\(Hugging Face cache`));
  });

  it('extract --base/--chat and diff A B take ids; the vector records the commits', () => {
    const out = path.join(root, 'out-extract');
    const e = chatvec('extract', '--base', 'demo/tiny-base', '--chat', `demo/tiny-chat@${CHAT}`, '--out', out, '--threads', '1');
    assert.equal(e.status, 0, e.stderr);
    const meta = JSON.parse(readSafetensorsFile(path.join(out, readCheckpoint(out).files[0]!)).metadata.chatvec!) as { hub_sources: Record<string, string> };
    assert.deepEqual(Object.values(meta.hub_sources).sort(), [`demo/tiny-base@${BASE}`, `demo/tiny-chat@${CHAT}`]);
    const d = chatvec('diff', 'demo/tiny-base', 'demo/tiny-chat', '--json');
    assert.equal(d.status, 0, d.stderr);
    assert.ok(d.stdout.includes(path.join(cache, 'models--demo--tiny-chat', 'snapshots', CHAT)), 'the report names the snapshot');
  });

  it('inspect of an id not in the cache: one line with the download command, exit 1', () => {
    const r = chatvec('inspect', 'demo/absent');
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /demo\/absent: .*not in the Hugging Face cache \(searched .*hub \(from HF_HUB_CACHE\)\); download it with: chatvec download demo\/absent/);
  });

  it('apply --target/--base/--chat ids: logs the snapshots, records each commit in __metadata__ and the model card', () => {
    const out = path.join(root, 'out-apply');
    const r = chatvec('apply', '--target', 'demo/tiny-cp', '--base', 'demo/tiny-base', '--chat', 'demo/tiny-chat@v1', '--out', out, '--threads', '1', '--skip-embed');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`target: demo/tiny-cp commit ${CP} \\(Hugging Face cache`));
    assert.match(r.stderr, new RegExp(`chat: demo/tiny-chat commit ${CHAT}`));
    const meta = JSON.parse(readSafetensorsFile(path.join(out, readCheckpoint(out).files[0]!)).metadata.chatvec!) as { hub_sources: Record<string, string> };
    assert.deepEqual(Object.values(meta.hub_sources).sort(), [`demo/tiny-base@${BASE}`, `demo/tiny-chat@${CHAT}`, `demo/tiny-cp@${CP}`]);
    const card = fs.readFileSync(path.join(out, 'README.md'), 'utf8');
    for (const [id, c] of [['demo/tiny-cp', CP], ['demo/tiny-base', BASE], ['demo/tiny-chat', CHAT]]) assert.ok(card.includes(`\`${id}\` at commit \`${c}\``), card);
    // The same arithmetic as with the folders themselves: cp + (chat − base), checked on one tensor.
    const [b, c, p] = ['tiny-base', 'tiny-chat', 'tiny-cp'].map((m) => readCheckpoint(path.join(root, 'models', m)));
    const name = 'model.norm.weight';
    const got = tensorValues(readCheckpoint(out), name);
    const want = tensorValues(p!, name).map((v, i) => v + tensorValues(c!, name)[i]! - tensorValues(b!, name)[i]!);
    for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-2 * Math.max(1, Math.abs(want[i]!)), `${name}[${i}]`);
  });

  it('merge: a recipe naming ids runs; --dry-run says which snapshot each id resolved to', () => {
    const recipe = path.join(root, 'ids.yaml');
    fs.writeFileSync(recipe, `merge_method: task_arithmetic
base_model: demo/tiny-base
models:
  - model: demo/tiny-chat
    parameters: {weight: 0.5}
  - model: demo/tiny-cp
    parameters: {weight: 0.5}
dtype: float32
`);
    const dry = chatvec('merge', recipe, '--dry-run');
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stderr, new RegExp(`demo/tiny-chat: Hugging Face cache, demo/tiny-chat commit ${CHAT} \\(main\\)`));
    const out = path.join(root, 'out-merge');
    const r = chatvec('merge', recipe, '--out', out, '--threads', '1', '--quiet');
    assert.equal(r.status, 0, r.stderr);
    const meta = JSON.parse(readSafetensorsFile(path.join(out, readCheckpoint(out).files[0]!)).metadata.chatvec!) as { hub_sources: Record<string, string> };
    assert.deepEqual(Object.values(meta.hub_sources).sort(), [`demo/tiny-base@${BASE}`, `demo/tiny-chat@${CHAT}`, `demo/tiny-cp@${CP}`]);
    assert.match(fs.readFileSync(path.join(out, 'README.md'), 'utf8'), new RegExp(`\`demo/tiny-chat\` at commit \`${CHAT}\``));
  });
});
