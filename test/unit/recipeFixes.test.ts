// The Quick Fix of a did-you-mean diagnostic: the suggestion read from the checker's real messages,
// applied to the diagnostic's range, leaves a recipe without that diagnostic.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type RecipeDiagnostic, recipeDiagnostics } from '../../src/core/recipes/diagnostics';
import { suggestedReplacement } from '../../src/protocol/recipeFixes';

/** Replaces a single-line diagnostic's range in `text`, as the editor's WorkspaceEdit does. */
function applyFix(text: string, d: RecipeDiagnostic, to: string): string {
  const lines = text.split('\n');
  const l = lines[d.line]!;
  lines[d.line] = l.slice(0, d.column) + to + l.slice(d.endColumn);
  return lines.join('\n');
}

const RECIPE = ['merge_method: task_arithmetic', 'base_modle: ./base', 'models:', '  - model: ./chat', '    parameters:', '      weight: 0.5', '      desnity: 0.5', 'dtype: bfloat16', ''].join('\n');

describe('recipe Quick Fixes', () => {
  it('reads the suggestion of "did you mean" and "write it exactly" messages, and nothing else', () => {
    assert.equal(suggestedReplacement('unknown key `base_modle` at the top level (did you mean `base_model`?), ignored (as mergekit does)'), 'base_model');
    assert.equal(suggestedReplacement('unknown parameter `Weight` (write it exactly `weight`: names are case- and space-sensitive)'), 'weight');
    assert.equal(suggestedReplacement('models[0].parameters is empty'), null);
  });

  for (const [word, fixed] of [
    ['base_modle', 'base_model'],
    ['desnity', 'density'],
  ] as const) {
    it(`fixes \`${word}\` to \`${fixed}\` on the checker's own range`, () => {
      const before = recipeDiagnostics(RECIPE, { depth: 'none' });
      const d = before.find((x) => x.message.includes(`\`${word}\``));
      assert.ok(d, JSON.stringify(before.map((x) => x.message)));
      assert.equal(RECIPE.split('\n')[d.line]!.slice(d.column, d.endColumn), word, 'the range is the misspelt word');
      const to = suggestedReplacement(d.message);
      assert.equal(to, fixed);
      const after = recipeDiagnostics(applyFix(RECIPE, d, to!), { depth: 'none' });
      assert.ok(!after.some((x) => x.message.includes(`\`${word}\``)), JSON.stringify(after.map((x) => x.message)));
      assert.ok(!after.some((x) => x.line === d.line && /unknown/.test(x.message)), 'the fixed line has no unknown name left');
    });
  }
});
