// Diagnostics of recipes as the editor shows them (0-based lines and columns) and the CLI prints
// them: YAML and schema errors at the right line, missing folders, shapes that cannot merge (from
// headers only), the "weight not under parameters" indentation mistake, filters that never apply.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Ajv from 'ajv';
import { type RecipeDiagnostic, recipeDiagnostics } from '../../src/core/recipes/diagnostics';
import { checkRecipeText } from '../../src/core/recipes/recipe';
import { checkRecipeFileText } from '../../src/core/recipes/multiRecipe';
import { RECIPE_SCHEMA } from '../../src/core/recipes/schema';
import { writeModel } from './support/recipeFixtures';

let dir: string;

const layerTensors = (hidden: number, mlp: number) => [
  { name: 'model.embed_tokens.weight', shape: [16, hidden], values: new Float64Array(16 * hidden).fill(0.5) },
  ...[0, 1].flatMap((l) => [
    { name: `model.layers.${l}.self_attn.q_proj.weight`, shape: [hidden, hidden], values: new Float64Array(hidden * hidden).fill(0.1 * (l + 1)) },
    { name: `model.layers.${l}.mlp.up_proj.weight`, shape: [mlp, hidden], values: new Float64Array(mlp * hidden).fill(0.2) },
    { name: `model.layers.${l}.input_layernorm.weight`, shape: [hidden], values: new Float64Array(hidden).fill(1) },
  ]),
  { name: 'model.norm.weight', shape: [hidden], values: new Float64Array(hidden).fill(1) },
  { name: 'lm_head.weight', shape: [16, hidden], values: new Float64Array(16 * hidden).fill(0.3) },
];

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-recipe-diag-'));
  // Recipes below name these folders relative to `dir`.
  writeModel(path.join(dir, 'a'), layerTensors(8, 12), { num_hidden_layers: 2 });
  writeModel(path.join(dir, 'b'), layerTensors(8, 12), { num_hidden_layers: 2 });
  writeModel(path.join(dir, 'odd'), layerTensors(8, 10), { num_hidden_layers: 2 }); // a different MLP width
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const diag = (text: string) => recipeDiagnostics(text, { baseDir: dir });
const errors = (ds: readonly RecipeDiagnostic[]) => ds.filter((d) => d.severity === 'error');

/** Finds the diagnostic whose message matches; asserts its start line (0-based). */
function at(ds: readonly RecipeDiagnostic[], line: number, re: RegExp): RecipeDiagnostic {
  const d = ds.find((x) => re.test(x.message));
  assert.ok(d, `no diagnostic matching ${re}; got:\n${ds.map((x) => `${x.line}:${x.column} ${x.message}`).join('\n')}`);
  assert.equal(d.line, line, `${re} on line ${d.line}, expected ${line}`);
  return d;
}

describe('recipe diagnostics', () => {
  it('a good recipe has none', () => {
    assert.deepEqual(diag(`merge_method: ties\nbase_model: a\nmodels:\n  - model: b\n    parameters:\n      weight: 0.5\n      density: 0.5\n`), []);
  });

  it('schema errors point at the offending value or key', () => {
    const ds = diag(`merge_method: ties
base_model: a
models:
  - model: b
    parameters:
      weight: heavy
      desnity: 0.3
dtype: float8
`);
    const w = at(ds, 5, /weight must be a number, a gradient/);
    assert.equal(w.column, 14);
    assert.equal(w.endColumn, 19);
    // mergekit ignores parameters it does not know: a warning, not an error.
    assert.equal(at(ds, 6, /unknown parameter `desnity` \(did you mean `density`\?\)/).severity, 'warning');
    at(ds, 7, /dtype must be one of float32, float16, bfloat16/);
    assert.equal(errors(ds).length, 2);
  });

  it('an unsupported merge method names the supported ones', () => {
    const d = at(diag('merge_method: arcee_fusion\nmodels:\n  - model: a\n'), 0, /merge_method `arcee_fusion` is not supported by chatvec; use one of linear, passthrough, task_arithmetic/);
    assert.equal(d.column, 14);
  });

  it('YAML syntax errors are reported at their line', () => {
    const ds = diag('merge_method: ties\nmodels:\n  - model: a\n   parameters: x\n');
    assert.equal(ds.length >= 1, true);
    assert.match(ds[0]!.message, /^YAML: /);
    assert.equal(ds[0]!.line, 3);
  });

  it('explains "weight" written beside `parameters:` instead of under it', () => {
    const empty = diag(`merge_method: task_arithmetic
base_model: a
models:
  - model: b
    parameters:
    weight: 0.5
`);
    at(empty, 5, /`weight` is not inside `parameters:` of models\[0\]: `parameters:` is empty here, so the lines below it are not under it\. Indent `weight:` further/);
    const missing = diag(`merge_method: task_arithmetic
base_model: a
models:
  - model: b
    weight: 0.5
`);
    const d = at(missing, 4, /`weight` is a parameter and must be under `parameters:` of models\[0\]/);
    assert.equal(d.column, 4);
    assert.equal(d.endColumn, 10);
    at(diag('merge_method: linear\nweight: 1\nmodels:\n  - model: a\n    parameters: {weight: 1}\n'), 1, /must be under the top-level `parameters:`/);
  });

  it('missing folders and Hugging Face ids not in the cache are clear errors (nothing is downloaded)', () => {
    const saved = process.env.HF_HUB_CACHE;
    process.env.HF_HUB_CACHE = path.join(dir, 'empty-hub-cache');
    try {
      const ds = diag(`merge_method: task_arithmetic
base_model: ./nowhere
models:
  - model: mistralai/Mistral-7B-v0.1
    parameters: {weight: 1}
`);
      at(ds, 1, /model folder not found: .*nowhere/);
      at(ds, 3, /^mistralai\/Mistral-7B-v0\.1: not a local file or folder .*not in the Hugging Face cache \(searched .*empty-hub-cache \(from HF_HUB_CACHE\)\); download it with: chatvec download mistralai\/Mistral-7B-v0\.1$/);
    } finally {
      if (saved === undefined) delete process.env.HF_HUB_CACHE;
      else process.env.HF_HUB_CACHE = saved;
    }
  });

  it('paths are relative to the recipe file, with a hint when they exist relative to the working directory', () => {
    const sub = path.join(dir, 'recipes');
    fs.mkdirSync(sub, { recursive: true });
    const text = 'merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 1}\n';
    const ds = recipeDiagnostics(text, { recipePath: path.join(sub, 'r.yaml'), cwd: dir });
    at(ds, 2, /model folder not found: .*recipes\/a \(it exists relative to the working directory; chatvec resolves paths relative to the recipe's folder/);
    assert.deepEqual(recipeDiagnostics(text.replace('model: a', 'model: ../a'), { recipePath: path.join(sub, 'r.yaml') }), []);
  });

  it('shapes that cannot merge are found from the headers, at the model that differs', () => {
    const ds = diag(`merge_method: linear
models:
  - model: a
    parameters: {weight: 1}
  - model: odd
    parameters: {weight: 1}
`);
    const d = at(ds, 4, /shapes that cannot merge: model\.layers\.0\.mlp\.up_proj\.weight: \[10, 8\] here vs \[12, 8\] in a/);
    assert.equal(d.severity, 'error');
  });

  it('method rules: base model, weights, slerp arity, slice lengths, density that keeps nothing', () => {
    at(diag('merge_method: ties\nmodels:\n  - model: a\n    parameters: {weight: 1}\n'), 0, /ties needs `base_model:`/);
    at(diag('merge_method: task_arithmetic\nbase_model: a\nmodels:\n  - model: b\n'), 3, /task_arithmetic needs `weight` for b/);
    at(diag('merge_method: slerp\nbase_model: a\nmodels:\n  - model: b\n  - model: odd\nparameters: {t: 0.5}\n'), 2, /slerp merges exactly two models/);
    at(
      diag(`merge_method: slerp
base_model: a
slices:
  - sources:
      - model: a
        layer_range: [0, 2]
      - model: b
        layer_range: [0, 1]
parameters: {t: 0.5}
`),
      3,
      /all sources of a slice must span the same number of layers \(got 2, 1\)/,
    );
    at(diag('merge_method: ties\nbase_model: a\nmodels:\n  - model: b\n    parameters: {weight: 1, density: 0.01}\n'), 3, /density 0\.01 keeps no element of a tensor this small/);
    at(diag('merge_method: linear\nbase_model: a\nmodels:\n  - model: b\n    parameters: {weight: 1}\n'), 1, /linear averages the listed models only/);
  });

  it('chat_vector keys and the other methods\' keys do not mix', () => {
    const ds = diag(`merge_method: chat_vector
base_model: a
target_model: b
chat_models:
  - model: b
    ratio: 0.5
models:
  - model: a
special_tokens:
  abc: 3
`);
    at(ds, 6, /`models` is not used by merge_method chat_vector/);
    at(ds, 9, /special_tokens: keys must be token ids/);
    at(diag('merge_method: ties\nbase_model: a\nskip_embed: true\nmodels:\n  - model: b\n    parameters: {weight: 1}\n'), 2, /`skip_embed` belongs to merge_method chat_vector, not ties/);
    at(diag('merge_method: chat_vector\nbase_model: a\nchat_models:\n  - model: b\n'), 0, /merge_method chat_vector needs `target_model`/);
  });

  it('warns about filters that match nothing or are always shadowed, and about ignored parameters', () => {
    const ds = diag(`merge_method: slerp
base_model: a
models:
  - model: a
  - model: b
parameters:
  t:
    - filter: self_attn
      value: 0.2
    - filter: q_proj
      value: 0.9
    - filter: nonexistent
      value: 0.1
    - value: 0.5
  density: 0.5
`);
    assert.equal(errors(ds).length, 0);
    at(ds, 9, /filter "q_proj" never applies: an earlier entry matches every tensor it matches/);
    at(ds, 11, /filter "nonexistent" matches no tensor/);
    at(ds, 14, /^`density` is a parameter of ties, dare_linear, dare_ties, breadcrumbs, breadcrumbs_ties, della or della_linear, not of slerp$/);
  });

  it('the plan lists which tensors each filter applies to', () => {
    const c = checkRecipeText(`merge_method: slerp\nbase_model: a\nmodels:\n  - model: a\n  - model: b\nparameters:\n  t:\n    - filter: self_attn\n      value: [0, 1]\n    - value: 0.5\n`, { baseDir: dir });
    assert.ok(c.plan);
    assert.deepEqual(
      c.plan.filters.map((f) => [f.filter, f.matched, f.shadowed]),
      [
        ['self_attn', 2, 0],
        [null, 7, 2],
      ],
    );
    const q0 = c.plan.tensors.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight')!;
    const q1 = c.plan.tensors.find((t) => t.name === 'model.layers.1.self_attn.q_proj.weight')!;
    assert.equal(q0.slerpT, 0);
    assert.equal(q1.slerpT, 1);
  });

  it('the schema file compiles on its own and accepts every example recipe', () => {
    const validate = new Ajv({ allErrors: true, allowUnionTypes: true }).compile(RECIPE_SCHEMA);
    const examples = path.resolve(__dirname, '../../examples/recipes');
    for (const f of fs.readdirSync(examples).filter((n) => n.endsWith('.yaml'))) {
      const c = checkRecipeFileText(fs.readFileSync(path.join(examples, f), 'utf8'), { recipePath: path.join(examples, f), depth: 'none' });
      assert.deepEqual(c.issues, [], f);
      // A multi-document file (multi.yaml): every document is a recipe.
      for (const d of c.documents) assert.ok(validate(d.checked.parsed.data), f);
    }
  });
});
