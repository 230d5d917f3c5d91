// Every recipe in examples/recipes/ plans against freshly generated demo checkpoints (so a new
// example cannot rot), and the examples of methods the CLI test (recipeCli.test.ts) does not run
// are merged here into valid, finite checkpoints.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateDemoTrio } from '../../src/core/demo/generator';
import { loadRecipeFile } from '../../src/core/recipes/recipe';
import { runMergePlan } from '../../src/core/recipes/run';
import { MERGE_METHODS } from '../../src/core/recipes/methods/registry';
import { assertValidCheckpoint, readAll } from './support/recipeFixtures';

const repo = path.resolve(__dirname, '../..');
// A mergekit-multi file (several documents) has its own loader and tests (recipeMulti*.test.ts).
const examples = fs.readdirSync(path.join(repo, 'examples', 'recipes')).filter((f) => f.endsWith('.yaml') && f !== 'multi.yaml');
/** Output tensors of an example: the tiny demo model's 39, or more for a deeper passthrough. */
const TENSORS: Readonly<Record<string, number>> = { 'passthrough.yaml': 39 + 2 * 9 };
/** Run end to end by recipeCli.test.ts. */
const RUN_BY_CLI_TEST = ['task_arithmetic', 'ties', 'dare_ties', 'slerp', 'chat_vector'];
let root: string;

before(() => {
  // The examples name ../../.chatvec-demo relative to examples/recipes: mirror that layout.
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-examples-'));
  generateDemoTrio(path.join(root, '.chatvec-demo'), 'tiny', 42);
  fs.mkdirSync(path.join(root, 'examples', 'recipes'), { recursive: true });
  for (const f of examples) fs.copyFileSync(path.join(repo, 'examples', 'recipes', f), path.join(root, 'examples', 'recipes', f));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

describe('example recipes', () => {
  it('every example plans without errors or warnings', () => {
    for (const f of examples) {
      const loaded = loadRecipeFile(path.join(root, 'examples', 'recipes', f));
      assert.deepEqual(loaded.issues.map((i) => i.message), [], f);
    }
  });

  for (const f of examples.filter((x) => !RUN_BY_CLI_TEST.includes(x.replace(/\.yaml$/, '')))) {
    it(`runs examples/recipes/${f}`, async () => {
      const loaded = loadRecipeFile(path.join(root, 'examples', 'recipes', f));
      const out = path.join(root, 'out', f);
      await runMergePlan(loaded.plan, { out, threads: 2, recipeText: loaded.text });
      assertValidCheckpoint(out);
      const tensors = readAll(out);
      assert.equal(tensors.size, TENSORS[f] ?? 39);
      for (const [t, v] of tensors) assert.ok(v.values.every(Number.isFinite), `${f}: ${t} is finite`);
    });
  }

  it('each method chatvec runs has an example named after it', () => {
    // linear and dare_linear had no example before this rule (their siblings show the form).
    for (const m of MERGE_METHODS) if (m !== 'linear' && m !== 'dare_linear') assert.ok(examples.includes(`${m}.yaml`), `examples/recipes/${m}.yaml`);
  });
});
