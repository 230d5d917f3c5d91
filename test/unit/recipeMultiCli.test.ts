// `chatvec merge` on a mergekit-multi file, end to end through the real CLI entry: a linear merge of
// a linear merge matches a float64 reference computed here; the temporary intermediate folder next
// to the output is gone afterwards; --intermediate-dir keeps the named merge and reuses it while its
// recipe is unchanged; an existing output is refused before anything is computed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { readAll, rng, writeModel } from './support/recipeFixtures';

const repo = path.resolve(__dirname, '../..');
let root: string;
const SHAPES: [string, number[]][] = [
  ['model.embed_tokens.weight', [8, 4]],
  ['model.layers.0.mlp.up_proj.weight', [6, 4]],
  ['model.layers.1.mlp.up_proj.weight', [6, 4]],
  ['model.norm.weight', [4]],
];

function chatvec(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  // Run in the test's folder (relative paths as a user gives them), with the repository's tsx.
  const tsx = pathToFileURL(path.join(repo, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const r = spawnSync(process.execPath, ['--import', tsx, path.join(repo, 'src/cli/main.ts'), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, CHATVEC_WORKER_SCRIPT: path.join(repo, 'test/unit/support/tsxWorker.cjs') },
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// The final merge first in the file: the references, not the file order, decide the order.
const recipe = (w: number) => `# final: linear of the merge "ab" and c
merge_method: linear
models:
  - model: ab
    parameters: {weight: 0.5}
  - model: c
    parameters: {weight: 1.5}
dtype: float32
---
name: ab
merge_method: linear
models:
  - model: a
    parameters: {weight: ${w}}
  - model: b
    parameters: {weight: 0.7}
dtype: float32
`;

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-multi-cli-'));
  for (const [name, seed] of [['a', 1], ['b', 2], ['c', 3]] as const) {
    const r = rng(seed);
    writeModel(path.join(root, name), SHAPES.map(([n, shape]) => ({ name: n, shape, values: Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => r() * 2 - 1) })));
  }
  fs.writeFileSync(path.join(root, 'multi.yaml'), recipe(0.3));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** linear(linear(a, b), c) in float64 from the stored float32 inputs, normalized as mergekit does. */
function reference(wa: number): Map<string, Float64Array> {
  const [A, B, C] = ['a', 'b', 'c'].map((m) => readAll(path.join(root, m)));
  const out = new Map<string, Float64Array>();
  for (const [name, a] of A!) {
    const b = B!.get(name)!.values;
    const c = C!.get(name)!.values;
    // The intermediate is stored as float32: round it as the file does.
    const ab = a.values.map((x, i) => Math.fround((wa * x + 0.7 * b[i]!) / (wa + 0.7)));
    out.set(name, ab.map((x, i) => (0.5 * x + 1.5 * c[i]!) / 2));
  }
  return out;
}

function assertMatches(out: string, wa: number): void {
  const got = readAll(out);
  const want = reference(wa);
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [name, w] of want) {
    const g = got.get(name)!.values;
    for (let i = 0; i < w.length; i++) assert.ok(Math.abs(g[i]! - w[i]!) <= 1e-6 * (1 + Math.abs(w[i]!)), `${name}[${i}]: ${g[i]} vs ${w[i]}`);
  }
}

const partials = () => fs.readdirSync(root).filter((n) => n.includes('.partial-'));

describe('chatvec merge: mergekit-multi files', () => {
  it('runs the merges in dependency order; the output matches linear(linear(a, b), c); no intermediate is left', () => {
    const r = chatvec('merge', 'multi.yaml', '--out', 'out', '--threads', '2');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /merge 1 of 2: ab →/);
    assert.match(r.stderr, /merge 2 of 2: the final merge →/);
    assertMatches(path.join(root, 'out'), 0.3);
    assert.deepEqual(partials(), []);
    assert.ok(!fs.existsSync(path.join(root, 'ab')), 'no folder named after the merge');
    assert.equal(fs.readFileSync(path.join(root, 'out', 'mergekit_config.yml'), 'utf8'), recipe(0.3), 'the whole file is the record');
  });

  it('refuses an existing output before computing anything', () => {
    const before = fs.readFileSync(path.join(root, 'out', 'model.safetensors'));
    const r = chatvec('merge', 'multi.yaml', '--out', 'out', '--quiet');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /already exists/);
    assert.doesNotMatch(r.stderr, /merge 1 of 2/);
    assert.deepEqual(partials(), []);
    assert.deepEqual(fs.readFileSync(path.join(root, 'out', 'model.safetensors')), before);
  });

  it('--dry-run shows every document in run order', () => {
    const r = chatvec('merge', 'multi.yaml', '--dry-run');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /1\. `ab` \(line 10\) → a temporary folder[^\n]*\n {2}2\. the final merge \(line 2, uses `ab`\) → the output/);
    assert.match(r.stdout, /== 1\. `ab` \(line 10\) ==\nmerge_method: linear\ntensors: +4/);
    assert.match(r.stdout, /planned when `ab` is made/);
  });

  it('--intermediate-dir keeps the named merge, reuses it while its recipe is unchanged, and plans every document', () => {
    const first = chatvec('merge', 'multi.yaml', '--out', 'kept-out', '--intermediate-dir', 'steps', '--quiet');
    assert.equal(first.status, 0, first.stderr);
    assertMatches(path.join(root, 'kept-out'), 0.3);
    const ab = readAll(path.join(root, 'steps', 'ab'));
    const [A, B] = ['a', 'b'].map((m) => readAll(path.join(root, m)));
    for (const [name, t] of ab) {
      t.values.forEach((v, i) => assert.ok(Math.abs(v - (0.3 * A!.get(name)!.values[i]! + 0.7 * B!.get(name)!.values[i]!)) <= 1e-6, name));
    }
    const stamp = fs.statSync(path.join(root, 'steps', 'ab', 'model.safetensors')).mtimeMs;

    const dry = chatvec('merge', 'multi.yaml', '--dry-run', '--intermediate-dir', 'steps');
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, /`ab` \(line 10\) → reused/);
    assert.match(dry.stdout, /== 2\. the final merge \(line 2\) ==\nmerge_method: linear\ntensors: +4/);

    const again = chatvec('merge', 'multi.yaml', '--out', 'kept-out', '--intermediate-dir', 'steps', '--overwrite');
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /ab: reused/);
    assert.equal(fs.statSync(path.join(root, 'steps', 'ab', 'model.safetensors')).mtimeMs, stamp, 'not written again');
    assertMatches(path.join(root, 'kept-out'), 0.3);

    // A changed recipe: the kept merge is stale; replacing it needs --overwrite, as any output does.
    fs.writeFileSync(path.join(root, 'multi.yaml'), recipe(0.4));
    const stale = chatvec('merge', 'multi.yaml', '--out', 'kept-out-2', '--intermediate-dir', 'steps', '--quiet');
    assert.notEqual(stale.status, 0);
    assert.match(stale.stderr, /steps\/ab already exists \(pass --overwrite/);
    assert.ok(!fs.existsSync(path.join(root, 'kept-out-2')));
    const redo = chatvec('merge', 'multi.yaml', '--out', 'kept-out-2', '--intermediate-dir', 'steps', '--overwrite', '--quiet');
    assert.equal(redo.status, 0, redo.stderr);
    assertMatches(path.join(root, 'kept-out-2'), 0.4);
    fs.writeFileSync(path.join(root, 'multi.yaml'), recipe(0.3));
  });

  it('--intermediate-dir on a one-document recipe is refused', () => {
    fs.writeFileSync(path.join(root, 'one.yaml'), 'merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 1}\n');
    const r = chatvec('merge', 'one.yaml', '--out', 'one-out', '--intermediate-dir', 'steps');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--intermediate-dir applies to recipes with several YAML documents/);
  });
});
