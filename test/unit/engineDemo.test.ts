// `chatvec demo` end to end through the built command line: generate the tiny trio, extract,
// apply with --skip-embed, verify against the float64 reference, chart ‖τ‖ per layer.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PRESETS } from '../../src/core/demo/presets';
import { REPO_ROOT, readCheckpoint, tempDir } from './support/engineFixtures';

const CLI = path.join(REPO_ROOT, 'dist/cli.js');
let dir: string;

before(() => {
  dir = tempDir('demo');
  if (!fs.existsSync(CLI)) {
    const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts/build.mjs')], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('chatvec demo', () => {
  it('prints a verified merge and a per-layer chart whose relative ‖τ‖ grows with depth', () => {
    const demo = path.join(dir, 'd');
    const r = spawnSync(process.execPath, [CLI, 'demo', '--dir', demo, '--preset', 'tiny'], { encoding: 'utf8', cwd: dir });
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /VERIFIED/);
    assert.doesNotMatch(r.stdout, /MISMATCH/);
    assert.match(r.stdout, /100\.0+ % bit-exact, 0 beyond 1 ulp/);

    const layers = [...r.stdout.matchAll(/^\s+Layer (\d+)\s+(\S*)\s+([\d.]+) %/gm)].map((m) => ({ layer: Number(m[1]), bar: m[2]!, pct: Number(m[3]) }));
    assert.equal(layers.length, PRESETS.tiny.layers, r.stdout);
    layers.forEach((l, i) => assert.equal(l.layer, i));
    for (let i = 1; i < layers.length; i++) {
      assert.ok(layers[i]!.pct > layers[i - 1]!.pct, `layer ${i}: ${layers[i]!.pct} % after ${layers[i - 1]!.pct} %`);
      assert.ok(layers[i]!.bar.length >= layers[i - 1]!.bar.length, 'bars grow with the values');
    }
    assert.ok(layers.at(-1)!.bar.length > layers[0]!.bar.length);

    // What the demo wrote is there and complete.
    const merged = readCheckpoint(path.join(demo, 'tiny-merged'));
    const cp = readCheckpoint(path.join(demo, 'tiny-cp'));
    assert.deepEqual(merged.order, cp.order);
    assert.ok(fs.existsSync(path.join(demo, 'tiny-chat-vector', 'chatvector.json')));
    // The merge exported as GGUF, and the command for the next step.
    assert.match(r.stdout, /^5\. gguf .*tiny-merged\.gguf \(f16, /m);
    assert.match(r.stdout, /chatvec gguf \S+tiny-merged --out \S+\.gguf --type q8_0/);
    assert.equal(fs.readFileSync(path.join(demo, 'tiny-merged.gguf')).toString('latin1', 0, 4), 'GGUF');

    // A second run reuses the generated models and verifies again.
    const again = spawnSync(process.execPath, [CLI, 'demo', '--dir', demo, '--preset', 'tiny', '--quiet'], { encoding: 'utf8', cwd: dir });
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /\(reused\)/);
    assert.match(again.stdout, /VERIFIED/);
  });
});
