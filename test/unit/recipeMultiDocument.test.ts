// mergekit-multi files (several YAML documents, later ones naming earlier merges): the split into
// documents keeps the file's lines, the run order follows the references, the final merge is the
// unnamed document (else the last one nobody uses), and duplicate names, cycles, misspelt names
// and YAML errors are reported at their line, by the same diagnostics the editor shows.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { recipeDiagnostics } from '../../src/core/recipes/diagnostics';
import { documentGraph, substituteMerges } from '../../src/core/recipes/multiDocument';
import { checkRecipeFileText } from '../../src/core/recipes/multiRecipe';
import { recipeInputs } from '../../src/extension/recipes/inputs';
import { mergeMethodLines } from '../../src/extension/recipes/selector';
import { recipePlan } from '../../src/taskhost/runners';
import { writeModel } from './support/recipeFixtures';

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-multi-'));
  const t = (v: number) => [{ name: 'model.layers.0.mlp.up_proj.weight', shape: [2, 2], values: [v, v + 1, v + 2, v + 3] }];
  writeModel(path.join(dir, 'a'), t(1));
  writeModel(path.join(dir, 'b'), t(5));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** 1-based line of the first line containing `needle` (the test's own reading of the text). */
function lineOf(text: string, needle: string, from = 0): number {
  const i = text.indexOf(needle, from);
  assert.ok(i >= 0, needle);
  return text.slice(0, i).split('\n').length;
}

const diag = (text: string) => recipeDiagnostics(text, { recipePath: path.join(dir, 'multi.yaml') });

describe('multi-document recipes: order and final merge', () => {
  it('orders by the references, not the file order, and picks the unnamed document as final', () => {
    const text = ['merge_method: linear', 'parameters: {weight: 0.5}', 'models:', '  - model: second', '  - model: a', '---', 'name: second', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models:', '  - model: first', '  - model: b', '---', 'name: first', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models: [{model: a}, {model: b}]', ''].join('\n');
    const g = documentGraph(text);
    assert.deepEqual(g.issues, []);
    assert.deepEqual(g.documents.map((d) => d.name), [null, 'second', 'first']);
    assert.deepEqual(g.order, [2, 1, 0]);
    assert.equal(g.final, 0);
    assert.deepEqual(g.documents[0]!.uses, [{ name: 'second', path: ['models', 0, 'model'] }]);
  });

  it('every document named: the last one no other uses is final; one nobody needs is not run (a warning at its name)', () => {
    const text = ['name: x', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models: [{model: a}, {model: b}]', '---', 'name: spare', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models: [{model: a}, {model: b}]', '---', 'name: y', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models: [{model: x}, {model: b}]', ''].join('\n');
    const g = documentGraph(text);
    assert.equal(g.documents[g.final!]!.name, 'y');
    const f = checkRecipeFileText(text, { recipePath: path.join(dir, 'm.yaml') });
    assert.deepEqual(f.documents.map((d) => [d.doc.name, d.role]), [['x', 'intermediate'], ['spare', 'unused'], ['y', 'final']]);
    const w = diag(text).filter((d) => d.severity === 'warning');
    assert.equal(w.length, 1);
    assert.equal(w[0]!.line + 1, lineOf(text, 'name: spare'));
    assert.match(w[0]!.message, /`spare` is not used by the final merge.*--intermediate-dir/);
    // With a kept folder every named merge is made, as mergekit-multi does.
    const kept = checkRecipeFileText(text, { recipePath: path.join(dir, 'm.yaml'), intermediateDir: path.join(dir, 'steps') });
    assert.deepEqual(kept.documents.map((d) => d.role), ['intermediate', 'intermediate', 'final']);
  });

  it('replaces references in every model position, tokenizer_source `model:` form included', () => {
    const data = { base_model: 'm', models: ['m', { model: 'n' }], slices: [{ base_model: 'm', sources: [{ model: 'm', layer_range: [0, 1] }] }], tokenizer_source: 'model:m', tokenizer: { source: 'm' }, parameters: { weight: 'm' } };
    const out = substituteMerges(data, new Map([['m', '/x/m']]));
    assert.deepEqual(out, { base_model: '/x/m', models: ['/x/m', { model: 'n' }], slices: [{ base_model: '/x/m', sources: [{ model: '/x/m', layer_range: [0, 1] }] }], tokenizer_source: 'model:/x/m', tokenizer: { source: '/x/m' }, parameters: { weight: 'm' } });
    assert.equal(data.base_model, 'm', 'the input is not modified');
  });
});

describe('multi-document recipes: errors at their line', () => {
  it('a cycle is an error at each reference on it; a merge using itself too', () => {
    const text = ['name: p', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models:', '  - model: q', '  - model: a', '---', 'name: q', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models:', '  - model: b', '  - model: p', '---', 'name: r', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models: [{model: r}, {model: a}]', '---', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models: [{model: q}, {model: a}]', ''].join('\n');
    const errors = diag(text).filter((d) => d.severity === 'error');
    const at = errors.map((e) => [e.line + 1, e.column]);
    assert.deepEqual(at, [
      [lineOf(text, 'model: q'), 11],
      [lineOf(text, 'model: p'), 11],
      [lineOf(text, 'models: [{model: r}, {model: a}]'), 17],
    ]);
    assert.match(errors[0]!.message, /cycle \(`p` → `q` → `p`\)/);
    assert.match(errors[2]!.message, /`r` uses its own output/);
  });

  it('duplicate names, two unnamed documents and a slash in a name are errors at the right line', () => {
    const text = ['name: s', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models: [{model: a}, {model: b}]', '---', 'name: s', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models: [{model: a}, {model: b}]', '---', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models: [{model: s}, {model: a}]', '---', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models: [{model: a}, {model: b}]', '---', 'name: x/y', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models: [{model: a}, {model: b}]', ''].join('\n');
    const errors = diag(text).filter((d) => d.severity === 'error');
    // Lines 6 (the second `name: s`), 15 (the second document without a name), 19 (`x/y`).
    assert.deepEqual(
      errors.map((e) => e.line + 1),
      [6, 15, 19],
    );
    assert.match(errors[0]!.message, /`s` is already used by the document at line 1/);
    assert.match(errors[1]!.message, /two documents have no `name:` \(the other starts at line 11\)/);
    assert.match(errors[2]!.message, /contains a slash/);
  });

  it('a misspelt merge name is a missing model at its line, with the merge suggested', () => {
    const text = ['name: first-merge', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models: [{model: a}, {model: b}]', '---', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models:', '  - model: a', '  - model: frist-merge', ''].join('\n');
    const errors = diag(text).filter((d) => d.severity === 'error');
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.line + 1, 10);
    assert.match(errors[0]!.message, /not found.*did you mean the merge `first-merge`\?/);
  });

  it('problems of a later document are reported at its lines, naming the merge; a merge not made yet is not "missing"', () => {
    const text = ['name: first', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models: [{model: a}, {model: b}]', '---', 'merge_method: task_arithmetic', 'base_model: a', 'models:', '  - model: first', '    parameters:', '      wieght: 0.5', ''].join('\n');
    const d = diag(text);
    assert.deepEqual(
      d.map((x) => [x.severity, x.line + 1]),
      [
        ['error', lineOf(text, 'model: first')],
        ['warning', lineOf(text, 'wieght')],
      ],
    );
    assert.match(d[0]!.message, /needs `weight` for `first`:/);
    assert.match(d[1]!.message, /did you mean `weight`/);
  });

  it('a YAML error in the second document is located there, not reported as the YAML library\'s API', () => {
    const text = ['name: first', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models: [{model: a}, {model: b}]', '---', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models: [first, a', ''].join('\n');
    const d = diag(text);
    assert.ok(d.length >= 1);
    assert.ok(d.every((x) => !/parseAllDocuments|multiple documents/i.test(x.message)), d.map((x) => x.message).join('\n'));
    assert.ok(d[0]!.line + 1 >= lineOf(text, 'models: [first'), `line ${d[0]!.line + 1}`);
  });
});

describe('multi-document recipes: the dry run (task host recipePlan)', () => {
  it('plans documents whose inputs exist and says which wait for a merge', () => {
    const text = ['name: first', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models: [{model: a}, {model: b}]', '---', 'merge_method: linear', 'parameters: {weight: 0.5}', 'models: [{model: first}, {model: a}]', ''].join('\n');
    const r = recipePlan({ recipePath: path.join(dir, 'multi.yaml'), text }, 1);
    assert.equal(r.documents?.length, 2);
    assert.equal(r.documents![0]!.name, 'first');
    assert.equal(r.documents![0]!.plan?.tensorCount, 1);
    assert.equal(r.documents![1]!.plan, null);
    assert.deepEqual(r.documents![1]!.waitingFor, ['first']);
    assert.match(r.text, /1\. `first` \(line 1\) → a temporary folder/);
    assert.match(r.text, /2\. the final merge \(line 6, uses `first`\) → the output/);
    assert.match(r.text, /planned when `first` is made/);
  });
});

describe('multi-document recipes in the editor (CodeLens lines, Compare Inputs)', () => {
  const text = ['# two merges', 'name: first', 'merge_method: linear', 'models: [{model: a}, {model: b}]', '---', '', 'base_model: a', 'merge_method: task_arithmetic', 'models: [{model: first}, {model: b}]', '---', ''].join('\n');

  it('one CodeLens line per document: its merge_method line', () => {
    assert.deepEqual(mergeMethodLines(text), [2, 7]);
    assert.deepEqual(mergeMethodLines('# c\nmerge_method: linear\n'), [1]);
  });

  it('Compare Inputs takes the chosen document (default: the final merge) and leaves out other merges', () => {
    assert.deepEqual(recipeInputs(text, '/r', 0).models, ['/r/a', '/r/b']);
    const final = recipeInputs(text, '/r');
    assert.equal(final.base, '/r/a');
    assert.deepEqual(final.models, ['/r/b']);
  });
});
