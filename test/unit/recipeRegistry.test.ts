// The merge-method registry is the one list of methods: the JSON schema (hand-maintained for the
// editor's YAML extension), the methods table of docs/recipes.md and the `chatvec merge` help must
// say the same. Each check reads the other place as text, so an edit to one side alone fails here.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { registerMerge } from '../../src/cli/commands/merge';
import { MERGE_METHODS, METHODS, parameterCell } from '../../src/core/recipes/methods/registry';

const repo = path.resolve(__dirname, '../..');

/** The rows of the first table after `## Methods` in docs/recipes.md, as cells. */
function docsRows(): string[][] {
  const text = fs.readFileSync(path.join(repo, 'docs/recipes.md'), 'utf8');
  const section = text.slice(text.indexOf('\n## Methods\n'));
  const lines = section.split('\n');
  const start = lines.findIndex((l) => l.startsWith('| method |'));
  const rows: string[][] = [];
  for (const l of lines.slice(start + 2)) {
    if (!l.startsWith('|')) break;
    rows.push(l.slice(1, -1).split(' | ').map((c) => c.trim()));
  }
  return rows;
}

describe('merge method registry', () => {
  const schema = JSON.parse(fs.readFileSync(path.join(repo, 'schemas/merge-recipe.schema.json'), 'utf8')) as {
    properties: { merge_method: { enum: string[] } };
    definitions: { parameters: { properties: Record<string, unknown> } };
  };

  it('the schema lists exactly the registry\'s methods, in its order, and describes every parameter they read', () => {
    assert.deepEqual(schema.properties.merge_method.enum, MERGE_METHODS);
    for (const m of METHODS) for (const p of m.parameters) assert.ok(p.name in schema.definitions.parameters.properties, `schema lacks parameter ${p.name} (${m.name})`);
  });

  it('docs/recipes.md has one methods-table row per method, with the registry\'s parameters and defaults', () => {
    const rows = docsRows();
    assert.deepEqual(
      rows.map((r) => r[0]),
      MERGE_METHODS.map((m) => `\`${m}\``),
    );
    for (const m of METHODS) assert.equal(rows.find((r) => r[0] === `\`${m.name}\``)![2], parameterCell(m), `docs row of ${m.name}`);
  });

  it('`chatvec merge --help` names every method', () => {
    const program = new Command();
    registerMerge(program);
    const help = program.commands.find((c) => c.name() === 'merge')!.description();
    const inner = /\(mergekit YAML: (.*)\)$/.exec(help);
    assert.ok(inner, help);
    assert.deepEqual(inner[1]!.split(/[,;] (?:or )?/), MERGE_METHODS, help);
  });

  it('every method has a reference and a row of parameters with known types', () => {
    for (const m of METHODS) {
      assert.ok(m.referenceUrl === null || /^https:\/\//.test(m.referenceUrl), m.name);
      for (const p of m.parameters) assert.ok(p.default === undefined || typeof p.default === p.type, `${m.name}.${p.name}`);
    }
  });
});
