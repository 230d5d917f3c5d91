// `chatvec merge` end to end: the example recipes over freshly generated demo checkpoints, run
// through the real CLI entry (TypeScript sources under tsx), produce valid checkpoints; --dry-run
// prints the plan; a broken recipe fails with file:line:col messages and exit code 2.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateDemoTrio } from '../../src/core/demo/generator';
import { assertValidCheckpoint, readAll } from './support/recipeFixtures';

const repo = path.resolve(__dirname, '../..');
let root: string;

before(() => {
  // The examples name ../../.chatvec-demo relative to examples/recipes: mirror that layout.
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-merge-cli-'));
  generateDemoTrio(path.join(root, '.chatvec-demo'), 'tiny', 42);
  fs.mkdirSync(path.join(root, 'examples', 'recipes'), { recursive: true });
  for (const f of fs.readdirSync(path.join(repo, 'examples', 'recipes'))) fs.copyFileSync(path.join(repo, 'examples', 'recipes', f), path.join(root, 'examples', 'recipes', f));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

function chatvec(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repo, 'src/cli/main.ts'), ...args], {
    cwd: repo, // model paths are relative to the recipe's folder, never to the working directory
    encoding: 'utf8',
    env: { ...process.env, CHATVEC_WORKER_SCRIPT: path.join(repo, 'test/unit/support/tsxWorker.cjs') },
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('chatvec merge', () => {
  for (const name of ['task_arithmetic', 'ties', 'dare_ties', 'slerp', 'chat_vector', 'multi']) {
    it(`runs examples/recipes/${name}.yaml into a valid checkpoint`, () => {
      const out = path.join(root, 'out', name);
      const r = chatvec('merge', path.join(root, `examples/recipes/${name}.yaml`), '--out', out, '--threads', '2', '--quiet');
      assert.equal(r.status, 0, r.stderr);
      assertValidCheckpoint(out);
      const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')) as { torch_dtype?: string };
      assert.equal(config.torch_dtype, 'bfloat16');
      assert.ok(fs.existsSync(path.join(out, 'tokenizer.json')), 'tokenizer files are copied');
      if (name !== 'chat_vector') assert.equal(fs.readFileSync(path.join(out, 'mergekit_config.yml'), 'utf8'), fs.readFileSync(path.join(root, 'examples/recipes', `${name}.yaml`), 'utf8'));
      const tensors = readAll(out);
      assert.equal(tensors.size, 39);
      for (const [t, v] of tensors) assert.ok(v.values.every(Number.isFinite), `${t} is finite`);
    });
  }

  it('task_arithmetic output matches a float64 reference within bf16 rounding', () => {
    const out = readAll(path.join(root, 'out', 'task_arithmetic'));
    const demo = path.join(root, '.chatvec-demo');
    const [B, C, P] = ['tiny-base', 'tiny-chat', 'tiny-cp'].map((m) => readAll(path.join(demo, m)));
    for (const [name, b] of B!) {
      const l = /layers\.(\d+)\./.exec(name);
      // Tensors before and after the layers: t = 0 (mergekit ≥ 0.1.2).
      const t = l ? Number(l[1]) / 3 : 0;
      const w2 = 0.3 + 0.7 * t;
      const c = C!.get(name)!.values;
      const p = P!.get(name)!.values;
      const o = out.get(name)!.values;
      for (let i = 0; i < b.values.length; i++) {
        const x = b.values[i]!;
        const ref = x + 0.9 * (0.7 * (c[i]! - x) + w2 * (p[i]! - x));
        assert.ok(Math.abs(o[i]! - ref) <= 2 ** -8 * Math.abs(ref) + 1e-6, `${name}[${i}]: ${o[i]} vs ${ref}`);
      }
    }
  });

  it('--dry-run prints tensors, size, estimates and filter matches, and writes nothing', () => {
    const r = chatvec('merge', path.join(root, 'examples/recipes/ties.yaml'), '--dry-run');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /tensors: +39/);
    assert.match(r.stdout, /output size:/);
    assert.match(r.stdout, /estimate:.*memory/);
    assert.match(r.stdout, /models\[0\]\.parameters\.density\[0\] +"self_attn" +16 tensors/);
    const j = chatvec('merge', path.join(root, 'examples/recipes/ties.yaml'), '--dry-run', '--json');
    const plan = JSON.parse(j.stdout) as { type: string; tensorCount: number; outputBytes: number };
    assert.equal(plan.type, 'plan');
    assert.equal(plan.tensorCount, 39);
    assert.ok(plan.outputBytes > 0);
  });

  it('a broken recipe fails before any work with file:line:col errors (exit 2)', () => {
    const bad = path.join(root, 'examples', 'recipes', 'broken.yaml');
    fs.writeFileSync(bad, 'merge_method: ties\nbase_model: ../../.chatvec-demo/tiny-base\nmodels:\n  - model: ../../.chatvec-demo/tiny-chat\n    weight: 0.5\n  - model: ../../.chatvec-demo/nope\n    parameters: {weight: 1}\n');
    const out = path.join(root, 'out', 'broken');
    const r = chatvec('merge', bad, '--out', out);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /broken\.yaml:5:5: error: `weight` is a parameter and must be under `parameters:`/);
    assert.ok(!fs.existsSync(out));
  });

  it('CHATVEC_LINGER_MS (the VS Code task) keeps the process alive after its last error line, exit code unchanged', async () => {
    // VS Code's problem matcher stops reading 100 ms after the task's process exits.
    const bad = path.join(root, 'examples', 'recipes', 'broken-linger.yaml');
    fs.writeFileSync(bad, 'merge_method: ties\nbase_model: ../../.chatvec-demo/tiny-base\nmodels:\n  - model: ../../.chatvec-demo/tiny-chat\n    weight: 0.5\n');
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(repo, 'src/cli/main.ts'), 'merge', bad, '--out', path.join(root, 'out', 'linger')], {
      cwd: repo,
      env: { ...process.env, CHATVEC_LINGER_MS: '1500' },
    });
    let stderr = '';
    let lastOutput = 0;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      lastOutput = Date.now();
    });
    const status = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const gap = Date.now() - lastOutput;
    assert.equal(status, 2, stderr);
    assert.match(stderr, /broken-linger\.yaml:5:5: error: /);
    assert.ok(gap >= 1400, `exited ${gap} ms after its last line`);
  });

  it('refuses to write without --out and to overwrite without --overwrite', () => {
    assert.equal(chatvec('merge', path.join(root, 'examples/recipes/slerp.yaml')).status, 2);
    const r = chatvec('merge', path.join(root, 'examples/recipes/slerp.yaml'), '--out', path.join(root, 'out', 'slerp'), '--quiet');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /already exists/);
  });
});
