// Recipes with a tokenizer source (mergekit's tokenizer/build.py and PermutedEmbeddings): the
// output vocabulary (base, a model, or the union with mergekit's id order), every model's
// embedding and LM-head rows rebuilt by token string before merging, `tokens:` rules, padding,
// and the tokenizer files written for it. References are float64 arithmetic written here from
// token strings, independent of src/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadRecipeFile } from '../../src/core/recipes/recipe';
import { recipeDiagnostics } from '../../src/core/recipes/diagnostics';
import { summarizePlan } from '../../src/core/recipes/summary';
import { formatPlanSummary } from '../../src/protocol/planText';
import { mergeRecipeText, readAll, rng, writeModel } from './support/recipeFixtures';

const H = 3;
let dir: string;

interface Tok {
  /** Model vocabulary, in id order. */
  readonly vocab: readonly string[];
  /** Added tokens after the vocabulary, in id order. */
  readonly added: readonly string[];
}

/** Every model's rows by token, float32-exact values (as stored). */
const rowsOf = new Map<string, Map<string, number[]>>();
const headOf = new Map<string, Map<string, number[]>>();
const layerOf = new Map<string, number[]>();

function tokensOf(t: Tok): string[] {
  return [...t.vocab, ...t.added];
}

/** A one-layer llama checkpoint whose embedding rows are named by token, with a WordLevel tokenizer. */
function model(name: string, t: Tok, seed: number): string {
  const r = rng(seed);
  const toks = tokensOf(t);
  const v = () => Math.fround(r() - 0.5);
  const emb = new Map(toks.map((k) => [k, [v(), v(), v()]]));
  const head = new Map(toks.map((k) => [k, [v(), v(), v()]]));
  const layer = Array.from({ length: H * H }, v);
  const d = path.join(dir, name);
  writeModel(
    d,
    [
      { name: 'model.embed_tokens.weight', shape: [toks.length, H], values: toks.flatMap((k) => emb.get(k)!) },
      { name: 'model.layers.0.mlp.down_proj.weight', shape: [H, H], values: layer },
      { name: 'model.norm.weight', shape: [H], values: [1, 1, 1] },
      { name: 'lm_head.weight', shape: [toks.length, H], values: toks.flatMap((k) => head.get(k)!) },
    ],
    { num_hidden_layers: 1, hidden_size: H, vocab_size: toks.length },
  );
  const addedTokens = t.added.map((c, i) => ({ id: t.vocab.length + i, content: c, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  fs.writeFileSync(path.join(d, 'tokenizer.json'), JSON.stringify({ version: '1.0', added_tokens: addedTokens, model: { type: 'WordLevel', vocab: Object.fromEntries(t.vocab.map((k, i) => [k, i])), unk_token: t.vocab[0] } }));
  fs.writeFileSync(path.join(d, 'tokenizer_config.json'), JSON.stringify({ added_tokens_decoder: Object.fromEntries(addedTokens.map((a) => [String(a.id), { content: a.content, special: true }])), tokenizer_class: 'PreTrainedTokenizerFast' }));
  fs.writeFileSync(path.join(d, 'special_tokens_map.json'), JSON.stringify({ bos_token: '<s>' }));
  rowsOf.set(d, emb);
  headOf.set(d, head);
  layerOf.set(d, layer);
  return d;
}

let base: string;
let m1: string; // lacks d; has x and the added <im>
let m2: string; // reordered ids; has y

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-tok-'));
  base = model('base', { vocab: ['a', 'b', 'c', 'd'], added: ['<s>'] }, 1);
  m1 = model('m1', { vocab: ['a', 'b', 'x', 'c'], added: ['<s>', '<im>'] }, 2);
  m2 = model('m2', { vocab: ['b', 'a', 'c', 'd', 'y'], added: ['<s>'] }, 3);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const W = [0.5, 0.3, 0.2]; // base, m1, m2

function linear(extra: string, weights = W): string {
  return `merge_method: linear
base_model: ${base}
models:
  - model: ${base}
    parameters: {weight: ${weights[0]}}
  - model: ${m1}
    parameters: {weight: ${weights[1]}}
  - model: ${m2}
    parameters: {weight: ${weights[2]}}
${extra}`;
}

/** out row = Σ wᵢ·rowᵢ / Σ wᵢ, each model's row given by `pick(model, token)`. */
function expectRows(out: Map<string, { shape: readonly number[]; values: Float64Array }>, tensor: string, order: readonly string[], pick: (m: string, tok: string, table: Map<string, Map<string, number[]>>) => number[], table: Map<string, Map<string, number[]>>, pad?: number): void {
  const o = out.get(tensor)!;
  const rows = pad ?? order.length;
  assert.deepEqual(o.shape, [rows, H], tensor);
  const models = [base, m1, m2];
  const sw = W.reduce((a, b) => a + b, 0);
  const own = (m: string) => order.map((tok) => pick(m, tok, table));
  for (let i = 0; i < rows; i++) {
    for (let k = 0; k < H; k++) {
      let want = 0;
      models.forEach((m, mi) => {
        const rs = own(m);
        // Padding rows: the mean of that model's rebuilt vocabulary rows.
        const val = i < order.length ? rs[i]![k]! : Math.fround(rs.reduce((a, r) => a + r[k]!, 0) / rs.length);
        want += W[mi]! * val;
      });
      want /= sw;
      const got = o.values[i * H + k]!;
      if (Math.abs(got - want) > 1e-6) assert.fail(`${tensor}[${i}, ${k}] (${order[i] ?? 'pad'}): got ${got}, reference ${want}`);
    }
  }
}

/** mergekit's default row for a model lacking a token: the only model that has it, else the base's. */
function defaultPick(m: string, tok: string, table: Map<string, Map<string, number[]>>): number[] {
  const own = table.get(m)!.get(tok);
  if (own) return own;
  const having = [base, m1, m2].filter((x) => table.get(x)!.has(tok));
  if (having.length === 1) return table.get(having[0]!)!.get(tok)!;
  if (having.includes(base)) return table.get(base)!.get(tok)!;
  throw new Error(`no reference rule for ${tok}`);
}

const UNION = ['a', 'b', 'c', 'd', '<s>', 'x', 'y', '<im>'];

function json(p: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(p, 'utf8')) as Record<string, unknown>;
}

/** The output's tokenizer.json as token → id (vocabulary and added tokens). */
function outputIds(out: string): Map<string, number> {
  const t = json(path.join(out, 'tokenizer.json')) as { model: { vocab: Record<string, number> }; added_tokens: { id: number; content: string }[] };
  const ids = new Map(Object.entries(t.model.vocab));
  for (const a of t.added_tokens) ids.set(a.content, a.id);
  return ids;
}

describe('tokenizer_source: union', () => {
  it('builds the union with mergekit ids and rebuilds every model\'s rows by token before merging', async () => {
    const out = await mergeRecipeText(dir, linear('tokenizer_source: union\n'));
    const o = readAll(out);
    expectRows(o, 'model.embed_tokens.weight', UNION, defaultPick, rowsOf);
    expectRows(o, 'lm_head.weight', UNION, defaultPick, headOf);
    // Tokenizer files: ids as assigned, one row per id, vocab_size = rows.
    assert.deepEqual([...outputIds(out)].sort((p, q) => p[1] - q[1]).map(([k]) => k), UNION);
    const dec = (json(path.join(out, 'tokenizer_config.json')).added_tokens_decoder ?? {}) as Record<string, { content: string; special: boolean }>;
    assert.equal(dec['5']!.content, 'x');
    assert.equal(dec['5']!.special, false);
    assert.equal(dec['7']!.content, '<im>');
    assert.equal(dec['7']!.special, true);
    assert.equal(json(path.join(out, 'config.json')).vocab_size, UNION.length);
    assert.deepEqual(json(path.join(out, 'special_tokens_map.json')), { bos_token: '<s>' });
    // The rebuilt rows' temporary folder is gone.
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.partial-')), []);
  });

  it('`tokens:` rules: model_token (token and token_id), a model, zero, force; a new token is added', async () => {
    const extra = `tokenizer:
  source: union
  tokens:
    y: {source: {kind: model_token, model: ${base}, token: b}}
    "<s>": {source: ${m2}, force: true}
    "<new>": {source: {kind: model_token, model: ${m1}, token_id: 2}}
    d: {source: {kind: zero}}
`;
    const out = await mergeRecipeText(dir, linear(extra));
    const order = [...UNION, '<new>'];
    const pick = (m: string, tok: string, table: Map<string, Map<string, number[]>>) => {
      if (tok === '<s>') return table.get(m2)!.get('<s>')!; // forced, even where a model has it
      if (tok === '<new>') return table.get(m1)!.get('x')!; // m1's row 2 is x
      if (tok === 'y') return table.get(m)!.get('y') ?? table.get(base)!.get('b')!;
      if (tok === 'd') return table.get(m)!.get('d') ?? [0, 0, 0];
      return defaultPick(m, tok, table);
    };
    const o = readAll(out);
    expectRows(o, 'model.embed_tokens.weight', order, pick, rowsOf);
    expectRows(o, 'lm_head.weight', order, pick, headOf);
    assert.equal(outputIds(out).get('<new>'), 8);
  });

  it('pad_to_multiple_of pads the rows (mean of each model\'s rows, as mergekit) and vocab_size', async () => {
    const out = await mergeRecipeText(dir, linear('tokenizer:\n  source: union\n  pad_to_multiple_of: 5\n'));
    const o = readAll(out);
    expectRows(o, 'model.embed_tokens.weight', UNION, defaultPick, rowsOf, 10);
    expectRows(o, 'lm_head.weight', UNION, defaultPick, headOf, 10);
    assert.equal(json(path.join(out, 'config.json')).vocab_size, 10);
    // The tokenizer keeps its 8 ids; rows 8 and 9 are padding.
    assert.equal(Math.max(...outputIds(out).values()), 7);
  });
});

describe('tokenizer_source: a model with another vocabulary', () => {
  it('takes that model\'s ids and tokenizer; the other models\' rows are permuted by token', async () => {
    const out = await mergeRecipeText(dir, linear(`tokenizer_source: ${m2}\n`));
    const order = ['b', 'a', 'c', 'd', 'y', '<s>'];
    const o = readAll(out);
    expectRows(o, 'model.embed_tokens.weight', order, defaultPick, rowsOf);
    expectRows(o, 'lm_head.weight', order, defaultPick, headOf);
    assert.deepEqual([...outputIds(out)].sort((p, q) => p[1] - q[1]).map(([k]) => k), order);
    assert.equal(json(path.join(out, 'config.json')).vocab_size, order.length);
    // Layers are merged as usual.
    const layer = o.get('model.layers.0.mlp.down_proj.weight')!.values;
    const l = [base, m1, m2].map((m) => layerOf.get(m)!);
    for (let i = 0; i < layer.length; i++) assert.ok(Math.abs(layer[i]! - (W[0]! * l[0]![i]! + W[1]! * l[1]![i]! + W[2]! * l[2]![i]!)) < 1e-6);
  });

  it('tokenizer_source: base with every model on the base\'s vocabulary reads the rows as they are (no rebuild)', () => {
    const loaded = loadRecipeFile(writeRecipe(`merge_method: linear\nmodels:\n  - model: ${base}\n    parameters: {weight: 1}\n  - model: ${base}\n    parameters: {weight: 1}\ntokenizer_source: base\n`));
    assert.equal(loaded.plan.tensors.filter((t) => t.rebuilt).length, 0);
  });
});

let recipeN = 0;
function writeRecipe(yaml: string): string {
  const f = path.join(dir, `r-${recipeN++}.yaml`);
  fs.writeFileSync(f, yaml);
  return f;
}

describe('dry-run plan and diagnostics', () => {
  it('the plan says what happens to the vocabulary', () => {
    const loaded = loadRecipeFile(writeRecipe(linear('tokenizer_source: union\n')));
    const text = formatPlanSummary(summarizePlan(loaded.plan, 2));
    assert.match(text, /\nvocabulary:\n {2}tokenizer source union: 8 tokens \(3 added to .*base's tokenizer\)\n/);
    assert.match(text, /m1: 6 rows → 8; 2 token\(s\) it lacks take a default row/);
    assert.match(text, /model\.embed_tokens\.weight: every input's rows rebuilt by token/);
    assert.match(text, /lm_head\.weight: every input's rows rebuilt by token/);
  });

  it('a `tokens:` rule naming a token its model lacks is an error at the tokenizer source', () => {
    const ds = recipeDiagnostics(linear(`tokenizer:\n  source: union\n  tokens:\n    x: {source: {kind: model_token, model: ${base}, token: nope}}\n`), { baseDir: dir }).filter((d) => d.severity === 'error');
    assert.ok(ds.length >= 1, 'an error');
    assert.match(ds[0]!.message, /token "nope" is not in the source model's tokenizer/);
  });

  it('model_token needs exactly one of token and token_id; a token needs a source', () => {
    const ds = recipeDiagnostics(linear(`tokenizer:\n  source: union\n  tokens:\n    x: {source: {kind: model_token, model: ${base}}}\n    y: {force: true}\n`), { baseDir: dir }).filter((d) => d.severity === 'error');
    assert.deepEqual(ds.map((d) => d.message.slice(0, 40)).sort(), ['`kind: model_token` needs exactly one of', '`tokens.y` needs `source:` (a model, {ki'].sort());
  });
});
