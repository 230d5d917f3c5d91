/** `chatvec diff` end to end through the bundled CLI (dist/cli.js + dist/worker.js). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateDemoTrio } from '../../src/core/demo/generator';
import type { DiffReport } from '../../src/core/jobs/types';
import { tempDir } from './support/diffReference';

const repo = path.resolve(__dirname, '../..');
const root = tempDir('chatvec-diffcli-');
const cacheHome = path.join(root, 'xdg-cache');
after(() => fs.rmSync(root, { recursive: true, force: true }));

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(repo, 'dist/cli.js'), ...args], {
    encoding: 'utf8',
    // The user's real cache stays untouched; no worker override: the bundle's own worker runs.
    env: { ...process.env, XDG_CACHE_HOME: cacheHome, CHATVEC_WORKER_SCRIPT: '' },
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('chatvec diff (CLI)', () => {
  let trio: ReturnType<typeof generateDemoTrio>;
  before(() => {
    const b = spawnSync(process.execPath, [path.join(repo, 'scripts/build.mjs')], { cwd: repo, encoding: 'utf8' });
    assert.equal(b.status, 0, b.stderr);
    trio = generateDemoTrio(path.join(root, 'demo'), 'tiny', 42);
  });

  it('prints a table whose bars grow with depth on the demo base → chat', () => {
    const r = cli('diff', trio.base, trio.chat, '--no-cache', '--threads', '2');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^verdict {2}B looks fine-tuned from A: relative change \d+\.\d+ % \(weight matrices\)$/m);
    assert.match(r.stdout, /^total {4}‖Δ‖ /m);
    const barCells = (label: string) => {
      const line = r.stdout.split('\n').find((l) => l.trimStart().startsWith(label + ' '));
      assert.ok(line, `row ${label}`);
      const cells = [...line.replace(/ +$/, '').matchAll(/[█▏▎▍▌▋▊▉]/g)];
      return cells.reduce((s, m) => s + (m[0] === '█' ? 8 : '▏▎▍▌▋▊▉'.indexOf(m[0]) + 1), 0);
    };
    const bars = [0, 1, 2, 3].map((i) => barCells(`Layer ${i}`));
    for (let i = 1; i < bars.length; i++) assert.ok(bars[i]! > bars[i - 1]!, `bars ${bars.join(' < ')}`);
    const errLines = r.stderr.trim().split('\n');
    assert.ok(errLines.every((l) => /^diff +\d+% /.test(l)), `only progress lines on stderr: ${r.stderr}`);
    assert.match(errLines.at(-1)!, /^diff 100% /);
    assert.equal(cli('diff', trio.base, trio.chat, '--no-cache', '--quiet').stderr, '', '--quiet');
    assert.ok(!fs.existsSync(cacheHome), '--no-cache stores nothing');
  });

  it('--json prints the whole report; a second run comes from the cache', () => {
    const first = cli('diff', trio.base, trio.chat, '--json');
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.stderr, '', 'no progress with --json');
    const r1 = JSON.parse(first.stdout) as DiffReport;
    assert.equal(r1.fromCache, false);
    const layers = r1.groups.filter((g) => g.role === 'layer');
    for (let i = 1; i < layers.length; i++) assert.ok(layers[i]!.relative > layers[i - 1]!.relative);
    assert.equal(r1.tensors.length, 39);
    assert.ok(fs.readdirSync(path.join(cacheHome, 'chatvec', 'diff')).length === 1);
    const second = cli('diff', trio.base, trio.chat, '--json');
    const r2 = JSON.parse(second.stdout) as DiffReport;
    assert.equal(r2.fromCache, true);
    assert.deepEqual({ ...r2, fromCache: false, seconds: 0 }, { ...r1, seconds: 0 });
    assert.match(cli('diff', trio.base, trio.chat).stdout, /from the cache/);
  });

  it('--csv at every level, with --sort delta and --top', () => {
    const byLayer = cli('diff', trio.base, trio.chat, '--csv', '--no-cache').stdout.trim().split('\n');
    assert.equal(byLayer[0], 'level,name,role,layer,module,elements,delta_norm,norm_a,norm_b,relative,cosine,max_abs_delta,mean_abs_delta,changed_fraction,non_finite,note');
    assert.deepEqual(byLayer.slice(1).map((l) => l.split(',')[1]), ['Embeddings', 'Layer 0', 'Layer 1', 'Layer 2', 'Layer 3', 'Final norm', 'LM head']);
    const byTensor = cli('diff', trio.base, trio.chat, '--csv', '--by', 'tensor', '--no-cache').stdout.trim().split('\n');
    assert.equal(byTensor.length, 1 + 39);
    const byModule = cli('diff', trio.base, trio.chat, '--csv', '--by', 'module', '--no-cache').stdout.trim().split('\n');
    assert.equal(byModule.length, 1 + 1 + 4 * 8 + 1 + 1);
    const top = cli('diff', trio.base, trio.chat, '--csv', '--by', 'module', '--sort', 'delta', '--top', '5', '--no-cache').stdout.trim().split('\n').slice(1);
    assert.equal(top.length, 5);
    const rel = top.map((l) => Number(l.split(',')[9]));
    for (let i = 1; i < rel.length; i++) assert.ok(rel[i]! <= rel[i - 1]!, `sorted: ${rel.join(' ≥ ')}`);
  });

  it('shows shape notes for an extended vocabulary', () => {
    const r = cli('diff', trio.base, trio.cp, '--no-cache', '--by', 'tensor');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /note {5}model\.embed_tokens\.weight: shapes differ \(\[512, 64\] vs \[576, 64\]\): compared the 512 leading rows/);
    assert.match(r.stdout, /model\.embed_tokens\.weight \*/);
  });

  it('--backend cpu and gpu give the same figures (the GPU within its stated bound; here on whatever adapter exists, else the CPU after a warning)', () => {
    const cpu = cli('diff', trio.base, trio.chat, '--no-cache', '--json', '--backend', 'cpu');
    assert.equal(cpu.status, 0, cpu.stderr);
    const gpu = cli('diff', trio.base, trio.chat, '--no-cache', '--json', '--backend', 'gpu');
    assert.equal(gpu.status, 0, gpu.stderr);
    const a = JSON.parse(cpu.stdout) as DiffReport;
    const b = JSON.parse(gpu.stdout) as DiffReport;
    assert.equal(b.total.elements, a.total.elements);
    assert.equal(b.total.changedFraction, a.total.changedFraction);
    assert.ok(Math.abs(b.total.deltaNorm - a.total.deltaNorm) <= 2 ** -19 * a.total.deltaNorm, `‖Δ‖ ${b.total.deltaNorm} vs ${a.total.deltaNorm}`);
    assert.equal((b as DiffReport & { verdict: string }).verdict, (a as DiffReport & { verdict: string }).verdict);
  });

  it('rejects bad options and a lone non-vector folder with a usage error', () => {
    for (const args of [['--by', 'row'], ['--sort', 'size'], ['--top', '0'], ['--threads', 'x'], ['--json', '--csv'], ['--backend', 'fast']]) {
      const r = cli('diff', trio.base, trio.chat, '--no-cache', ...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^chatvec: error: /);
    }
    const lone = cli('diff', trio.base);
    assert.equal(lone.status, 2);
    assert.match(lone.stderr, /not a chat-vector folder/);
    const missing = cli('diff', trio.base, path.join(root, 'nope'));
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /no such file or folder/);
  });
});
