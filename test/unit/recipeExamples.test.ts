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
/** The output's vocabulary id of `token` (tokenizer.json: the model's vocab or an added token). */
function tokenId(dir: string, token: string): number {
  const t = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> }; added_tokens: { id: number; content: string }[] };
  const id = t.model.vocab[token] ?? t.added_tokens.find((a) => a.content === token)?.id;
  assert.ok(id !== undefined, `${token} in ${dir}`);
  return id;
}
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

  it('tokenizer_union.yaml: the union vocabulary, forced rows are the chat model\'s, <unk> is zero', async () => {
    const f = 'tokenizer_union.yaml';
    const out = path.join(root, 'out', f);
    if (!fs.existsSync(out)) await runMergePlan(loadRecipeFile(path.join(root, 'examples', 'recipes', f)).plan, { out, threads: 2 });
    const chatDir = path.join(root, '.chatvec-demo', 'tiny-chat');
    const cpDir = path.join(root, '.chatvec-demo', 'tiny-cp');
    const merged = readAll(out);
    const chat = readAll(chatDir);
    const cpRows = readAll(cpDir).get('model.embed_tokens.weight')!.shape[0]!;
    for (const name of ['model.embed_tokens.weight', 'lm_head.weight']) {
      const m = merged.get(name)!;
      const c = chat.get(name)!;
      const width = m.shape[1]!;
      // The CP's extended vocabulary (more rows than base and chat), padded to a multiple of 64.
      assert.equal(m.shape[0], Math.ceil(cpRows / 64) * 64, name);
      const row = (v: Float64Array, id: number) => Array.from(v.subarray(id * width, (id + 1) * width));
      // Forced in every model: base + Σ wᵢ(rowᵢ − base) with all rows equal is that row, exactly.
      for (const tok of ['<|user|>', '<|assistant|>', '<|eot|>']) assert.deepEqual(row(m.values, tokenId(out, tok)), row(c.values, tokenId(chatDir, tok)), `${name} ${tok}`);
      assert.ok(row(m.values, tokenId(out, '<unk>')).every((x) => x === 0), `${name} <unk> is zero`);
    }
  });

  it('each method chatvec runs has an example named after it', () => {
    // linear and dare_linear had no example before this rule (their siblings show the form).
    for (const m of MERGE_METHODS) if (m !== 'linear' && m !== 'dare_linear') assert.ok(examples.includes(`${m}.yaml`), `examples/recipes/${m}.yaml`);
  });
});
