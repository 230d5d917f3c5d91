// Recipes read as current mergekit (0.1.4) reads them, against float64 references written here:
// a model listed twice counts once (first entry's parameters), the tensors after the last layer
// take gradients at t = 0 (t = 1 with `chatvec_post_layer_t: 1`, as mergekit ≤ 0.1.1 did), a
// tokenizer_source with another vocabulary rebuilds the embeddings, and the did-you-mean hints never repeat
// the word. Keys and parameters mergekit ignores are warnings; a task method listing only the base
// outputs the base's bytes; `tokenizer: {source}` and `model:X` read as mergekit reads them.
import Ajv from 'ajv';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DemoTrio, generateDemoTrio } from '../../src/core/demo/generator';
import { recipeDiagnostics } from '../../src/core/recipes/diagnostics';
import { loadRecipeFile } from '../../src/core/recipes/recipe';
import { runMergePlan } from '../../src/core/recipes/run';
import { RECIPE_SCHEMA, schemaIssues } from '../../src/core/recipes/schema';
import { summarizePlan } from '../../src/core/recipes/summary';
import { formatPlanSummary } from '../../src/protocol/planText';
import { perturbedCopy, readAll, tensorBytes } from './support/recipeFixtures';

let dir: string;
let trio: DemoTrio;
let cpSame: string; // a "continually pretrained" model with the base's vocabulary
let counter = 0;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-parity-'));
  trio = generateDemoTrio(path.join(dir, 'demo'), 'tiny', 11);
  cpSame = perturbedCopy(trio.base, path.join(dir, 'cp-same'), 5);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function load(yaml: string) {
  const file = path.join(dir, `recipe-${counter++}.yaml`);
  fs.writeFileSync(file, yaml);
  return loadRecipeFile(file);
}

async function merge(yaml: string): Promise<ReturnType<typeof readAll>> {
  const loaded = load(yaml);
  const out = path.join(dir, `out-${counter++}`);
  await runMergePlan(loaded.plan, { out, threads: 2, recipeText: loaded.text });
  return readAll(out);
}

/** Asserts every tensor of `out` equals `ref(name, base, chat, cp)` within float32 rounding. */
function assertMerged(out: ReturnType<typeof readAll>, ref: (name: string, b: number, c: number, p: number) => number, only?: (name: string) => boolean): void {
  const [B, C, P] = [readAll(trio.base), readAll(trio.chat), readAll(cpSame)];
  let checked = 0;
  for (const [name, b] of B) {
    if (only && !only(name)) continue;
    const c = C.get(name)!.values;
    const p = P.get(name)!.values;
    const o = out.get(name)!.values;
    for (let i = 0; i < o.length; i++) {
      const want = ref(name, b.values[i]!, c[i]!, p[i]!);
      const tol = 1e-6 * (Math.abs(b.values[i]!) + Math.abs(c[i]!) + Math.abs(p[i]!)) + 1e-12;
      if (Math.abs(o[i]! - want) > tol) assert.fail(`${name}[${i}]: got ${o[i]}, reference ${want}`);
    }
    checked++;
  }
  assert.ok(checked > 0);
}

const layerOf = (name: string) => {
  const m = /layers\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : null;
};

describe('a model listed twice counts once, with its first entry\'s parameters (mergekit)', () => {
  it('slices: the base listed twice is not a zero task vector in the normalize divisor', async () => {
    const yaml = `merge_method: task_arithmetic
base_model: ${trio.base}
slices:
  - sources:
      - model: ${trio.base}
        layer_range: [0, 4]
      - model: ${trio.chat}
        layer_range: [0, 4]
        parameters: {weight: 0.7}
      - model: ${trio.base}
        layer_range: [0, 4]
        parameters: {weight: 0.9}
      - model: ${cpSame}
        layer_range: [0, 4]
        parameters: {weight: 0.3}
parameters: {normalize: true}
out_dtype: float32
`;
    const loaded = load(yaml);
    const w = loaded.issues.find((i) => i.severity === 'warning' && /listed again/.test(i.message));
    assert.ok(w, loaded.issues.map((i) => i.message).join('\n'));
    assert.deepEqual(w.path, ['slices', 0, 'sources', 2, 'model']);
    const d = recipeDiagnostics(yaml, { baseDir: dir }).find((x) => /listed again/.test(x.message));
    assert.equal(d?.line, 9);
    assert.match(formatPlanSummary(summarizePlan(loaded.plan, 2)), /slices\[0\]\.sources\[2\]: .* is listed again: mergekit counts a model once per slice/);
    // Reference with the duplicate removed: base + (0.7·τc + 0.3·τp) / (0.7 + 0.3).
    assertMerged(await merge(yaml), (_, b, c, p) => b + (0.7 * (c - b) + 0.3 * (p - b)) / 1.0);
  });

  it('models: a repeated model is ignored (its parameters too), with a warning instead of an error', async () => {
    const yaml = `merge_method: task_arithmetic
base_model: ${trio.base}
models:
  - model: ${trio.chat}
    parameters: {weight: 0.7}
  - model: ${cpSame}
    parameters: {weight: 0.3}
  - model: ${trio.chat}
    parameters: {weight: 5}
out_dtype: float32
`;
    const loaded = load(yaml);
    assert.ok(loaded.issues.some((i) => i.severity === 'warning' && /listed again/.test(i.message) && i.path?.join('/') === 'models/2/model'));
    assertMerged(await merge(yaml), (_, b, c, p) => b + 0.7 * (c - b) + 0.3 * (p - b));
  });
});

describe('gradients of the tensors after the last layer', () => {
  const recipe = (extra: string) => `merge_method: task_arithmetic
base_model: ${trio.base}
models:
  - model: ${cpSame}
    parameters: {weight: [0.2, 1.0]}
out_dtype: float32
${extra}`;
  const post = (name: string) => layerOf(name) === null && !name.includes('embed_tokens');

  it('are evaluated at t = 0 by default (mergekit ≥ 0.1.2)', async () => {
    const out = await merge(recipe(''));
    assert.ok(out.has('model.norm.weight') && out.has('lm_head.weight'));
    assertMerged(out, (_, b, _c, p) => b + 0.2 * (p - b), post);
    assertMerged(out, (name, b, _c, p) => b + (0.2 + 0.8 * (layerOf(name)! / 3)) * (p - b), (n) => layerOf(n) !== null);
  });

  it('at t = 1 with chatvec_post_layer_t: 1 (mergekit ≤ 0.1.1)', async () => {
    const out = await merge(recipe('chatvec_post_layer_t: 1\n'));
    assertMerged(out, (_, b, _c, p) => b + 1.0 * (p - b), post);
    assertMerged(out, (_, b, _c, p) => b + 0.2 * (p - b), (n) => n.includes('embed_tokens'));
  });

  it('chatvec_post_layer_t takes 0 or 1 only', () => {
    const issues = schemaIssues({ merge_method: 'linear', models: [{ model: 'a', parameters: { weight: 1 } }], chatvec_post_layer_t: 0.5 });
    assert.equal(issues.length, 1);
    assert.deepEqual(issues[0]!.path, ['chatvec_post_layer_t']);
    assert.match(issues[0]!.message, /^chatvec_post_layer_t must be one of 0, 1/);
  });
});

describe('tokenizer_source', () => {
  it('a model with another vocabulary is no longer an error: its rows are rebuilt (recipeTokenizers.test.ts checks the values)', () => {
    const yaml = `merge_method: task_arithmetic
base_model: ${trio.base}
models:
  - model: ${trio.chat}
    parameters: {weight: 1}
tokenizer_source: ${trio.cp}
`;
    assert.deepEqual(recipeDiagnostics(yaml, { baseDir: dir }).filter((d) => d.severity === 'error'), []);
    const plan = load(yaml).plan;
    const cpRows = readAll(trio.cp).get('model.embed_tokens.weight')!.shape[0];
    assert.equal(plan.tensors.find((t) => t.role === 'embedding')!.shape[0], cpRows);
    assert.ok(plan.tensors.find((t) => t.role === 'embedding')!.rebuilt);
  });
});

describe('messages', () => {
  it('a did-you-mean never repeats the word', () => {
    for (const method of ['linear ', 'Linear']) {
      const [m] = schemaIssues({ merge_method: method, models: [{ model: 'a', parameters: { weight: 1 } }] });
      assert.ok(m);
      assert.doesNotMatch(m.message, /did you mean `linear`/);
      assert.match(m.message, /write it exactly `linear`/);
    }
    const [typo] = schemaIssues({ merge_method: 'ties', base_model: 'a', models: [{ model: 'a', parameters: { desnity: 0.5 } }] });
    assert.match(typo!.message, /unknown parameter `desnity` \(did you mean `density`\?\)/);
  });

  it('a parameter of another method names that method', () => {
    const ds0 = recipeDiagnostics(`merge_method: ties\nbase_model: ${trio.base}\nmodels:\n  - model: ${trio.chat}\n    parameters: {weight: 1, select_topk: 0.1}\n`, { baseDir: dir });
    assert.equal(ds0.find((d) => /select_topk/.test(d.message))?.message, '`select_topk` is a parameter of sce, not of ties');
    const ds = recipeDiagnostics(`merge_method: ties\nbase_model: ${trio.base}\nmodels:\n  - model: ${trio.chat}\n    parameters: {weight: 1, t: 0.5}\n`, { baseDir: dir });
    const t = ds.find((d) => /`t`/.test(d.message));
    assert.equal(t?.message, '`t` is a parameter of slerp, not of ties');
    assert.equal(t?.severity, 'warning');
  });
});

describe('keys and parameters mergekit ignores are warnings, and the merge runs (issue 13, item 4)', () => {
  const yaml = () => `merge_method: task_arithmetic
base_model: ${trio.base}
out_path: ./merged
models:
  - model: ${cpSame}
    parameters:
      weight: 0.5
      dare_pruning_rate: 0.3
      desnity: 0.5
      epsilon: 0.1
    notes: from the hub
parameters:
  normalize: false
out_dtype: float32
`;

  it('each is a warning at its key, with a did-you-mean where one is close', () => {
    const ds = recipeDiagnostics(yaml(), { baseDir: dir });
    assert.deepEqual(ds.filter((d) => d.severity === 'error'), []);
    const warned = (line: number, re: RegExp) => {
      const d = ds.find((x) => x.line === line && x.severity === 'warning');
      assert.ok(d, `no warning on line ${line}: ${ds.map((x) => `${x.line}: ${x.message}`).join('\n')}`);
      assert.match(d.message, re);
    };
    warned(2, /^unknown key `out_path` at the top level, ignored \(as mergekit does\)$/);
    warned(7, /^unknown parameter `dare_pruning_rate`, ignored/);
    warned(8, /^unknown parameter `desnity` \(did you mean `density`\?\), ignored/);
    warned(9, /^`epsilon` is a parameter of della or della_linear, not of task_arithmetic$/);
    warned(10, /^unknown key `notes` in models\[0\], ignored/);
    for (const d of ds) assert.doesNotMatch(d.message, /did you mean `(out_path|notes|dare_pruning_rate)`/);
  });

  it('the merge is base + 0.5·(cp − base), as without them', async () => {
    assertMerged(await merge(yaml()), (_, b, _c, p) => b + 0.5 * (p - b));
  });

  it('misplaced known keys and type errors of known keys stay errors', () => {
    const misplaced = recipeDiagnostics(`merge_method: linear\nmodels:\n  - model: ${trio.base}\n    weight: 1\n`, { baseDir: dir });
    assert.equal(misplaced.filter((d) => d.severity === 'error').length, 1);
    assert.match(misplaced[0]!.message, /^`weight` is a parameter and must be under/);
    const inSlice = schemaIssues({ merge_method: 'linear', slices: [{ sources: [{ model: 'a', layer_range: [0, 2] }], density: 0.5 }] });
    assert.deepEqual(inSlice.map((i) => i.severity), ['error']);
    assert.match(inSlice[0]!.message, /^`density` is a parameter and must be under `parameters:` of slices\[0\]/);
    const typed = schemaIssues({ merge_method: 'linear', models: [{ model: 'a', parameters: { weight: 'heavy' } }], out_path: 'x' });
    assert.deepEqual(typed.map((i) => [i.severity, (i.path ?? []).join('.')]), [['warning', 'out_path'], ['error', 'models.0.parameters.weight']]);
    const chat = schemaIssues({ merge_method: 'chat_vector', base_model: 'a', target_model: 'b', chat_models: [{ model: 'c', ratoi: 1 }] });
    assert.equal(chat[0]?.severity, 'error'); // chat_vector is chatvec's own form: no mergekit to follow
  });

  it('the schema file accepts them (the editor checks recipes with it), the strict check does not', () => {
    const data = { merge_method: 'ties', base_model: 'a', out_path: 'x', models: [{ model: 'a', foo: 1, parameters: { weight: 1, dare_pruning_rate: 0.1 } }], slices: undefined };
    const loose = new Ajv({ allErrors: true, allowUnionTypes: true }).compile(RECIPE_SCHEMA);
    assert.ok(loose(JSON.parse(JSON.stringify(data))), JSON.stringify(loose.errors));
    assert.equal(schemaIssues(JSON.parse(JSON.stringify(data))).length, 3);
  });
});

describe('a task method whose only model is the base outputs the base (issue 13, item 5)', () => {
  const methods = ['task_arithmetic', 'ties', 'dare_linear', 'dare_ties'];
  for (const method of methods) {
    it(`${method}: the output tensors are the base model's bytes`, async () => {
      const loaded = load(`merge_method: ${method}\nbase_model: ${trio.base}\nmodels:\n  - model: ${trio.base}\n    parameters: {weight: 1, density: 0.5, lora_rank: 16}\nparameters:\n  normalize: true\n`);
      assert.ok(loaded.issues.some((i) => i.severity === 'warning' && /only the base model is listed: the output is the base model/.test(i.message)));
      assert.match(formatPlanSummary(summarizePlan(loaded.plan, 2)), /only the base model is listed: the output is the base model, as in mergekit/);
      const out = path.join(dir, `out-${counter++}`);
      await runMergePlan(loaded.plan, { out, threads: 2, recipeText: loaded.text });
      const [want, got] = [tensorBytes(trio.base), tensorBytes(out)];
      assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
      for (const [name, bytes] of want) assert.ok(Buffer.from(got.get(name)!).equals(Buffer.from(bytes)), name);
    });
  }

  it('with another out_dtype, the base converted', async () => {
    assertMerged(await merge(`merge_method: ties\nbase_model: ${trio.base}\nmodels:\n  - model: ${trio.base}\nout_dtype: float32\n`), (_, b) => b);
  });

  // linear already gave the base before: this guards "linear where it applies".
  it('linear listing only the base gives the base', async () => {
    assertMerged(await merge(`merge_method: linear\nbase_model: ${trio.base}\nmodels:\n  - model: ${trio.base}\n    parameters: {weight: 0.7}\n`), (_, b) => b);
  });
});

describe('tokenizer sources as mergekit reads them (issue 13, item 6)', () => {
  const body = () => `merge_method: task_arithmetic\nbase_model: ${trio.base}\nmodels:\n  - model: ${trio.chat}\n    parameters: {weight: 1}\n`;

  it('`tokenizer: {source: X}` without tokens is tokenizer_source: X', async () => {
    const loaded = load(`${body()}tokenizer:\n  source: ${trio.cp}\n`);
    assert.equal(loaded.recipe!.tokenizerFrom!.path, path.resolve(trio.cp));
    assert.equal(typeof loaded.recipe!.vocabulary!.source === 'object' && loaded.recipe!.vocabulary!.source.path, path.resolve(trio.cp));
  });

  it('`tokenizer_source: model:X` (mergekit ≤ 0.0.5) is X', () => {
    const loaded = load(`${body()}tokenizer_source: model:${trio.cp}\n`);
    assert.equal(loaded.recipe!.tokenizerFrom!.path, path.resolve(trio.cp));
  });

});
