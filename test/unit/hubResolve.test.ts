// Hugging Face ids resolved offline from a hub cache that the tests build as huggingface_hub lays
// it out (support/hubCacheFixture.ts: real symlinks into blobs/, refs, several revisions): the
// cache folder variables, refs and commits, a local folder winning over an id, incomplete
// snapshots, and the one-line message for an id that is not there.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openCheckpoint } from '../../src/core/checkpoint/checkpoint';
import { ChatVecError } from '../../src/core/errors';
import { hubCacheLocation, snapshotOrigin } from '../../src/core/hub/cacheLayout';
import { parseModelId } from '../../src/core/hub/modelId';
import { resolveModelRef } from '../../src/core/hub/resolveModelRef';
import { listCachedModels } from '../../src/core/hub/cachedModels';
import { writeModel } from './support/engineFixtures';
import { fakeCommit, placeInCache } from './support/hubCacheFixture';

let root: string;
let cache: string;
const savedEnv = { ...process.env };
const C1 = fakeCommit('one');
const C2 = fakeCommit('two');

function model(dir: string, scale: number, maxShardBytes?: number): string {
  const t = (name: string, n: number) => ({ name, dtype: 'F32' as const, shape: [n], values: Array.from({ length: n }, (_, i) => scale * (i + 1)) });
  return writeModel(dir, [t('model.embed_tokens.weight', 8), t('model.layers.0.mlp.up_proj.weight', 8), t('model.norm.weight', 4)], { maxShardBytes, files: { 'config.json': { model_type: 'llama', num_hidden_layers: 1 } } });
}

function throwsOneLine(fn: () => unknown, ...patterns: RegExp[]): string {
  let msg = '';
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ChatVecError, String(e));
    assert.equal(e.code, 'BadCheckpoint');
    msg = e.message;
    return true;
  });
  assert.ok(!msg.includes('\n'), `one line: ${msg}`);
  for (const p of patterns) assert.match(msg, p);
  return msg;
}

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-hub-'));
  cache = path.join(root, 'hub');
  placeInCache(cache, 'org/tiny', C1, model(path.join(root, 'src1'), 1), ['main']);
  placeInCache(cache, 'org/tiny', C2, model(path.join(root, 'src2'), 2), ['v2', 'pr/1']);
  placeInCache(cache, 'gpt-like', C1, model(path.join(root, 'src3'), 3));
  placeInCache(cache, 'org/sharded', C1, model(path.join(root, 'src4'), 4, 40));
  process.env.HF_HUB_CACHE = cache;
});
after(() => {
  process.env = savedEnv;
  fs.rmSync(root, { recursive: true, force: true });
});

describe('hub cache location', () => {
  it('HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub', () => {
    const env = { ...process.env };
    try {
      for (const k of ['HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_HOME', 'XDG_CACHE_HOME']) delete process.env[k];
      assert.deepEqual(hubCacheLocation(), { dir: path.join(os.homedir(), '.cache', 'huggingface', 'hub'), from: 'default' });
      process.env.XDG_CACHE_HOME = '/x/cache';
      assert.deepEqual(hubCacheLocation(), { dir: '/x/cache/huggingface/hub', from: 'XDG_CACHE_HOME' });
      process.env.HF_HOME = '~/hf';
      assert.deepEqual(hubCacheLocation(), { dir: path.join(os.homedir(), 'hf', 'hub'), from: 'HF_HOME' });
      process.env.HUGGINGFACE_HUB_CACHE = '/legacy';
      assert.deepEqual(hubCacheLocation(), { dir: '/legacy', from: 'HUGGINGFACE_HUB_CACHE' });
      process.env.HF_HUB_CACHE = '/new';
      assert.deepEqual(hubCacheLocation(), { dir: '/new', from: 'HF_HUB_CACHE' });
    } finally {
      process.env = env;
    }
  });
});

describe('model ids', () => {
  it('org/name and name, optionally @revision; paths and invalid names are not ids', () => {
    assert.deepEqual(parseModelId('mistralai/Mistral-7B-v0.1'), { repoId: 'mistralai/Mistral-7B-v0.1', revision: null });
    assert.deepEqual(parseModelId('gpt2@refs/pr/1'), { repoId: 'gpt2', revision: 'refs/pr/1' });
    assert.deepEqual(parseModelId(`org/m@${C1}`), { repoId: 'org/m', revision: C1 });
    for (const p of ['./org/m', '../m', 'a/b/c', 'org/-m', 'org/m.', 'a--b/m', 'org/m.git', 'model.safetensors', 'org/m@', 'org/m@../x', 'org/m@/abs']) assert.equal(parseModelId(p), null, p);
  });
});

describe('resolving ids from the cache', () => {
  it('org/name opens the snapshot refs/main points to, through the links into blobs/', () => {
    const c = openCheckpoint('org/tiny');
    assert.equal(c.path, path.join(cache, 'models--org--tiny', 'snapshots', C1));
    assert.deepEqual(snapshotOrigin(c.path), { repoId: 'org/tiny', commit: C1, snapshot: c.path });
    assert.ok(fs.lstatSync(c.shards[0]!.path).isSymbolicLink(), 'the shard is the snapshot link');
    assert.deepEqual(c.tensors.map((t) => t.name).sort(), ['model.embed_tokens.weight', 'model.layers.0.mlp.up_proj.weight', 'model.norm.weight']);
  });

  it('@branch, @tag with a slash, and @commit select their snapshots; a name without org works', () => {
    assert.equal(openCheckpoint('org/tiny@v2').path, path.join(cache, 'models--org--tiny', 'snapshots', C2));
    assert.equal(openCheckpoint('org/tiny@pr/1').path, path.join(cache, 'models--org--tiny', 'snapshots', C2));
    assert.equal(openCheckpoint(`org/tiny@${C2}`).path, path.join(cache, 'models--org--tiny', 'snapshots', C2));
    assert.equal(openCheckpoint('gpt-like').path, path.join(cache, 'models--gpt-like', 'snapshots', C1));
    const r = resolveModelRef('org/tiny@v2');
    assert.equal(r.kind === 'cache' && `${r.repoId} ${r.revision} ${r.commit}`, `org/tiny v2 ${C2}`);
  });

  it('a sharded snapshot opens with every shard', () => {
    const c = openCheckpoint('org/sharded');
    assert.ok(c.shards.length > 1, 'several shards');
    assert.equal(c.indexFile, path.join(c.path, 'model.safetensors.index.json'));
  });

  it('a local folder of the same name wins over the id', () => {
    const base = path.join(root, 'work');
    model(path.join(base, 'org', 'tiny'), 9);
    assert.deepEqual(resolveModelRef('org/tiny', base), { kind: 'local', given: 'org/tiny', path: path.join(base, 'org', 'tiny') });
    assert.equal(resolveModelRef('org/tiny', root).kind, 'cache');
  });

  it('an id not in the cache is one line naming the id, the cache folder searched and the download command', () => {
    throwsOneLine(() => openCheckpoint('org/absent'), /^org\/absent: /, new RegExp(`searched ${cache.replace(/[/\\]/g, '.')} \\(from HF_HUB_CACHE\\)`), /chatvec download org\/absent$/);
    throwsOneLine(() => openCheckpoint('org/tiny@v9'), /revision "v9" is not in the Hugging Face cache/, /refs main, pr\/1, v2/, /chatvec download org\/tiny@v9$/);
    throwsOneLine(() => openCheckpoint(`org/tiny@${fakeCommit('three')}`), /has no snapshot/);
  });

  it('an incomplete snapshot (a shard the index lists is absent, .incomplete blobs) names the missing files', () => {
    const cacheB = path.join(root, 'hub-incomplete');
    const snap = placeInCache(cacheB, 'org/sharded', C1, path.join(root, 'src4'));
    const shards = fs.readdirSync(snap).filter((n) => n.endsWith('.safetensors')).sort();
    fs.rmSync(path.join(snap, shards[1]!));
    fs.writeFileSync(path.join(cacheB, 'models--org--sharded', 'blobs', `${'a'.repeat(64)}.incomplete`), 'partial');
    process.env.HF_HUB_CACHE = cacheB;
    try {
      throwsOneLine(() => openCheckpoint('org/sharded'), /is incomplete: missing /, new RegExp(shards[1]!.replace(/\./g, '\\.')), /1 unfinished download \(\*\.incomplete\)/, /finish it with: chatvec download org\/sharded$/);
      // A link whose blob is gone is missing too.
      fs.rmSync(path.join(snap, 'model.safetensors.index.json'));
      const blob = fs.realpathSync(path.join(snap, shards[0]!));
      fs.rmSync(blob);
      throwsOneLine(() => openCheckpoint('org/sharded'), new RegExp(`missing ${shards[0]!.replace(/\./g, '\\.')}`));
    } finally {
      process.env.HF_HUB_CACHE = cache;
    }
  });

  it('shard links into the repository\'s blobs/ are allowed; a link elsewhere is refused', () => {
    const cacheC = path.join(root, 'hub-escape');
    const snap = placeInCache(cacheC, 'org/sharded', C1, path.join(root, 'src4'));
    const shard = fs.readdirSync(snap).filter((n) => n.endsWith('.safetensors')).sort()[0]!;
    const outside = path.join(root, 'elsewhere.safetensors');
    fs.copyFileSync(path.join(root, 'src4', shard), outside);
    fs.rmSync(path.join(snap, shard));
    fs.symlinkSync(outside, path.join(snap, shard));
    process.env.HF_HUB_CACHE = cacheC;
    try {
      throwsOneLine(() => openCheckpoint('org/sharded'), /leads outside the checkpoint folder/);
    } finally {
      process.env.HF_HUB_CACHE = cache;
    }
  });
});

describe('listing the cache', () => {
  it('every snapshot with safetensors weights: id, the refs naming it, weight bytes, architecture', () => {
    const bytes = (dir: string) => fs.readdirSync(dir).filter((n) => n.endsWith('.safetensors')).reduce((a, n) => a + fs.statSync(path.join(dir, n)).size, 0);
    // A repository with a config alone is left out.
    fs.mkdirSync(path.join(cache, 'models--org--config-only', 'snapshots', C1), { recursive: true });
    fs.writeFileSync(path.join(cache, 'models--org--config-only', 'snapshots', C1, 'config.json'), '{}');
    const got = listCachedModels(cache).map((m) => [m.repoId, m.commit, m.revisions.join(','), m.weightBytes, m.architecture, m.path]);
    assert.deepEqual(got, [
      ['gpt-like', C1, 'main', bytes(path.join(root, 'src3')), 'llama', path.join(cache, 'models--gpt-like', 'snapshots', C1)],
      ['org/sharded', C1, 'main', bytes(path.join(root, 'src4')), 'llama', path.join(cache, 'models--org--sharded', 'snapshots', C1)],
      ['org/tiny', C2, 'pr/1,v2', bytes(path.join(root, 'src2')), 'llama', path.join(cache, 'models--org--tiny', 'snapshots', C2)],
      ['org/tiny', C1, 'main', bytes(path.join(root, 'src1')), 'llama', path.join(cache, 'models--org--tiny', 'snapshots', C1)],
    ]);
  });
});
