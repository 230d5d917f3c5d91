// The `sweep` job in the task host: each ratio's merge scored as the float64 reference forward pass
// scores θ_cp + r·(θ_chat − θ_base) computed in the test; progress names the ratio; cancel during
// a ratio's evaluation removes that ratio's merge and keeps the ones already measured.
// First: the bundled host and this process then key the GGUF cache by the same tool version.
import './toolVersion';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { referenceNlls } from '../unit/support/llamaReference';
import { TINY_LLAMA as S, referenceWeights, tinyLlamaTensors, writeTinyLlama } from '../unit/support/tinyLlama';
import { ensureBundles, newClient, partials, tempDir } from './support';

const IDS = [32, 27, 30, 14, 26, 29, 3, 17, 31, 0, 12, 28, 4, 9];
const RATIOS = [0, 0.5, 1];

describe('task host sweep', () => {
  before(() => ensureBundles());

  it('scores each ratio as the float64 reference does, keeps the best, and cancels cleanly', async () => {
    const dir = tempDir('chatvec-host-sweep-');
    const [base, chat, cp] = [tinyLlamaTensors(31), tinyLlamaTensors(32), tinyLlamaTensors(33)];
    const models = { base: writeTinyLlama(path.join(dir, 'base'), base), chat: writeTinyLlama(path.join(dir, 'chat'), chat), target: writeTinyLlama(path.join(dir, 'cp'), cp) };
    const ids = path.join(dir, 'ids.json');
    fs.writeFileSync(ids, JSON.stringify(IDS));
    const common = { ...models, cacheDir: path.join(dir, 'cache'), type: 'F32' as const, backend: 'cpu' as const, threads: 1 };
    const client = newClient();
    const messages: string[] = [];
    const out = path.join(dir, 'sweep');
    const r = await client.runJob('sweep', { ...common, ids, ratios: RATIOS, out, keep: 'best' }, { onProgress: (p) => p.message && messages.push(p.message) });
    assert.ok(r.status === 'ok', JSON.stringify(r).slice(0, 300));
    const [wb, wc, wcp] = [referenceWeights(base), referenceWeights(chat), referenceWeights(cp)];
    const want = RATIOS.map((ratio) => {
      const merged = new Map([...wcp].map(([name, v]) => [name, Float64Array.from(Float32Array.from(v.map((x, i) => x + ratio * (wc.get(name)![i]! - wb.get(name)![i]!))))]));
      const nlls = referenceNlls(merged, S, IDS);
      return nlls.reduce((a, b) => a + b, 0) / nlls.length;
    });
    assert.deepEqual(r.result.map((x) => x.ratio), RATIOS);
    for (let i = 0; i < RATIOS.length; i++) assert.ok(Math.abs(r.result[i]!.report.meanNll - want[i]!) < 1e-3, `ratio ${RATIOS[i]}: ${r.result[i]!.report.meanNll} vs reference ${want[i]}`);
    assert.ok(Math.max(...want) - Math.min(...want) > 0.01, 'the ratios give different perplexities');
    const best = want.indexOf(Math.min(...want));
    assert.deepEqual(r.result.map((x) => x.out !== null), RATIOS.map((_, i) => i === best));
    assert.deepEqual(r.result.map((x) => x.best), RATIOS.map((_, i) => i === best));
    assert.deepEqual(fs.readdirSync(out), [`ratio-${RATIOS[best]}`]);
    for (const [i, ratio] of RATIOS.entries()) assert.ok(messages.some((m) => m.startsWith(`ratio ${ratio} (${i + 1}/3): `)), `a progress message names ratio ${ratio}`);

    // Cancel while the second ratio is being scored: hundreds of one-token-stride windows.
    const longIds = path.join(dir, 'long.json');
    fs.writeFileSync(longIds, JSON.stringify(Array.from({ length: 600 }, (_, i) => (i * 7) % S.vocab)));
    const out2 = path.join(dir, 'cancelled');
    const abort = new AbortController();
    const c = await client.runJob('sweep', { ...common, ids: longIds, context: 4, stride: 1, ratios: RATIOS, out: out2 }, {
      cancellation: abort.signal,
      onProgress: (p) => {
        if (p.phase === 'eval' && p.done > 0 && p.message?.startsWith('ratio 0.5 (2/3)')) abort.abort();
      },
    });
    assert.deepEqual(c, { status: 'cancelled' });
    assert.deepEqual(fs.readdirSync(out2), ['ratio-0'], 'the measured merge stays; the one being scored is removed');
    assert.deepEqual(partials(out2), []);
    assert.equal((await client.status()).jobs.length, 0, 'no job left running');
  });
});
