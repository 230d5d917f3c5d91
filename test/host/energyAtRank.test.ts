/**
 * The `energyAtRank` job through the task host from the built bundle: the same report as the
 * in-process engine, parameter validation, and the cache (a second run with the same inputs is
 * served from it; another rank is not).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { runEnergyAtRank } from '../../src/core/engine/energyAtRank';
import { ChatVecError } from '../../src/core/errors';
import { demo, ensureBundles, newClient, tempDir } from './support';

before(() => ensureBundles());

const strip = (x: object) => JSON.parse(JSON.stringify({ ...x, seconds: 0 })) as unknown;

describe('task host: energyAtRank', () => {
  it('gives the in-process report, per matrix and per layer, and serves a repeat from the cache', async () => {
    const t = demo('tiny');
    const cacheDir = tempDir('chatvec-host-energy-');
    const client = newClient();
    const r = await client.runJob('energyAtRank', { base: t.base, chat: t.chat, rank: 2, cacheDir }, { jobId: 'energy-1' });
    assert.ok(r.status === 'ok', JSON.stringify(r));
    const local = await runEnergyAtRank({ base: t.base, chat: t.chat, rank: 2 });
    assert.deepEqual(strip({ ...r.result, backend: '' }), strip({ ...local, backend: '' }));
    assert.equal(r.result.fromCache, false);
    assert.ok(r.result.matrices.length > 0);
    for (const m of r.result.matrices) {
      assert.ok(m.energy >= 0 && m.energy <= 1, `${m.name}: ${m.energy}`);
      assert.equal(m.rank, Math.min(2, ...m.shape));
    }
    // A layer's figure is its matrices' Σ captured / Σ ‖τ‖².
    const layer0 = r.result.groups.find((g) => g.role === 'layer' && g.layer === 0)!;
    const in0 = r.result.matrices.filter((m) => m.role === 'layer' && m.layer === 0);
    const ratio = in0.reduce((s, m) => s + m.captured2, 0) / in0.reduce((s, m) => s + m.norm2, 0);
    assert.ok(Math.abs(layer0.energy - ratio) <= 1e-12);

    const again = await client.runJob('energyAtRank', { base: t.base, chat: t.chat, rank: 2, cacheDir }, { jobId: 'energy-2' });
    assert.ok(again.status === 'ok');
    assert.equal(again.result.fromCache, true);
    assert.deepEqual(strip({ ...again.result, fromCache: false }), strip(r.result));
    const other = await client.runJob('energyAtRank', { base: t.base, chat: t.chat, rank: 3, cacheDir }, { jobId: 'energy-3' });
    assert.ok(other.status === 'ok');
    assert.equal(other.result.fromCache, false, 'the rank is part of the key');
    assert.ok(other.result.total.energy >= r.result.total.energy, 'more rank keeps at least as much');
  });

  it('refuses a missing or non-positive rank with InvalidArgument', async () => {
    const t = demo('tiny');
    const client = newClient();
    for (const options of [{ base: t.base, chat: t.chat }, { base: t.base, chat: t.chat, rank: 0 }, { base: t.base, chat: t.chat, rank: 1.5 }]) {
      await assert.rejects(client.runJob('energyAtRank', options as never, { jobId: `bad-${options.rank}` }), (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument' && /rank/.test(e.message));
    }
  });
});
