// `chatvec sweep`: each ratio's merge θ_cp + r·(θ_chat − θ_base), computed here in float64, scored
// by the float64 reference forward pass; the table's lowest; `--keep best` removes the others.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, ensureCli } from './support/builtCli';
import { tempDir } from './support/engineFixtures';
import { referenceNlls } from './support/llamaReference';
import { TINY_LLAMA as S, referenceWeights, tinyLlamaTensors, writeTinyLlama } from './support/tinyLlama';

const IDS = [32, 27, 30, 14, 26, 29, 3, 17, 31, 0, 12, 28, 4, 9];
const RATIOS = [0, 0.5, 1];

let dir: string;
before(() => {
  dir = tempDir('try-sweep');
  ensureCli();
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('chatvec sweep', () => {
  it('merges and scores each ratio as the float64 reference does, and --keep best keeps the lowest', () => {
    const [base, chat, cp] = [tinyLlamaTensors(31), tinyLlamaTensors(32), tinyLlamaTensors(33)];
    const dirs = { base: writeTinyLlama(path.join(dir, 'base'), base), chat: writeTinyLlama(path.join(dir, 'chat'), chat), cp: writeTinyLlama(path.join(dir, 'cp'), cp) };
    const ids = path.join(dir, 'ids.json');
    fs.writeFileSync(ids, JSON.stringify(IDS));
    const out = path.join(dir, 'sweep');
    const r = spawnSync(process.execPath, [CLI, 'sweep', '--target', dirs.cp, '--base', dirs.base, '--chat', dirs.chat, '--ratios', RATIOS.join(','), '--eval-ids', ids, '--out', out, '--keep', 'best', '--type', 'f32', '--backend', 'cpu', '--threads', '1', '--json'], {
      encoding: 'utf8',
      env: { ...process.env, XDG_CACHE_HOME: path.join(dir, 'cache') },
      timeout: 300_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const rows = (JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { rows: { ratio: number; out: string | null; meanNll: number; best: boolean }[] }).rows;
    const [wb, wc, wcp] = [referenceWeights(base), referenceWeights(chat), referenceWeights(cp)];
    const want = RATIOS.map((ratio) => {
      const merged = new Map([...wcp].map(([name, v]) => [name, Float64Array.from(Float32Array.from(v.map((x, i) => x + ratio * (wc.get(name)![i]! - wb.get(name)![i]!))))]));
      const nlls = referenceNlls(merged, S, IDS);
      return nlls.reduce((a, b) => a + b, 0) / nlls.length;
    });
    assert.deepEqual(rows.map((x) => x.ratio), RATIOS);
    for (let i = 0; i < RATIOS.length; i++) assert.ok(Math.abs(rows[i]!.meanNll - want[i]!) < 1e-3, `ratio ${RATIOS[i]}: ${rows[i]!.meanNll} vs reference ${want[i]}`);
    assert.ok(Math.max(...want) - Math.min(...want) > 0.01, 'the ratios give different perplexities');
    const best = want.indexOf(Math.min(...want));
    assert.deepEqual(rows.map((x) => x.out !== null), RATIOS.map((_, i) => i === best));
    assert.deepEqual(rows.map((x) => x.best), RATIOS.map((_, i) => i === best));
    assert.deepEqual(fs.readdirSync(out), [`ratio-${RATIOS[best]}`]);
  });
});
