/**
 * Merge recipes in the real editor: diagnostics from the task host while typing (before anything
 * runs), the CodeLens, Run Merge / Dry Run / Compare Inputs through their commands, and the
 * `chatvec` task type with its problem matcher in a real terminal. The CLI is the oracle: the
 * editor's merge must give the bytes of `chatvec merge`, its dry run the CLI's text.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'mocha';
import * as vscode from 'vscode';
import type { InspectReport, JobOutcome, JobResult, RecipePlanResult } from '../../../src/protocol/taskHost';
import type { Comparison } from '../../../src/extension/deltas';
import type { ChatVectorApi } from '../../../src/extension/extension';
import type { Ctx } from '../../../src/extension/ctx';
import { waitFor } from './waitFor';

let ext: vscode.Extension<ChatVectorApi>;
let api: ChatVectorApi;
let ctx: Ctx;
let ws: string;
let dir: string;
const demo = (role: string) => path.join(ws, `tiny-${role}`);

/** Runs the bundled CLI with `cwd`; returns stdout, asserting the exit code. */
function cli(args: string[], cwd: string, status = 0): string {
  const r = spawnSync(process.execPath, [path.join(ext.extensionPath, 'dist', 'cli.js'), ...args], {
    cwd,
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
  });
  assert.equal(r.status, status, `chatvec ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** The recipe diagnostics of this extension (not the problem matcher's). */
const recipeDiags = (uri: vscode.Uri) => vscode.languages.getDiagnostics(uri).filter((d) => d.source === 'chatvec');

/** Every file of two checkpoint folders is byte-identical. */
function assertSameFolder(actual: string, expected: string): void {
  const files = fs.readdirSync(expected).sort();
  assert.ok(files.some((f) => f.endsWith('.safetensors')), `${expected} holds tensors`);
  assert.deepEqual(fs.readdirSync(actual).sort(), files);
  for (const f of files) assert.ok(fs.readFileSync(path.join(actual, f)).equals(fs.readFileSync(path.join(expected, f))), `${f} is byte-identical to the CLI's`);
}

// Line numbers below are 0-based, as in vscode.Range.
const BROKEN = `# a recipe with two mistakes
merge_method: task_arithmetic
base_model: ../tiny-base
models:
  - model: ../tiny-chat
    parameters:
    weight: 0.7
  - model: ../tiny-cp
    parameters:
      weight: 1.0
dtype: bfloat17
`;
const FIXED = BROKEN.replace('    weight: 0.7', '      weight: 0.7').replace('bfloat17', 'bfloat16');

const TASK_ARITHMETIC = `# task arithmetic over the demo checkpoints
merge_method: task_arithmetic
base_model: ../tiny-base
models:
  - model: ../tiny-chat
    parameters:
      weight: 0.7
  - model: ../tiny-cp
    parameters:
      weight: [0.3, 1.0]
parameters:
  lambda: 0.9
dtype: bfloat16
`;

describe('Merge recipes in the editor', function () {
  this.timeout(120_000);
  let broken: vscode.Uri;
  let recipe: vscode.Uri;
  let taskBroken: vscode.Uri;
  let refused: vscode.Uri;
  /** `chatvec merge` of the recipe as it is after the Run Merge test (the oracle for the task too). */
  let oracle: string;

  before(async () => {
    ws = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
    ext = vscode.extensions.getExtension<ChatVectorApi>('chatvector.chat-vector')!;
    if (!fs.existsSync(path.join(demo('base'), 'config.json'))) cli(['demo', '--dir', ws, '--preset', 'tiny'], ws);
    api = await ext.activate();
    ctx = api.ctx;
    dir = path.join(ws, 'recipes');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    broken = vscode.Uri.file(path.join(dir, 'broken.merge.yaml'));
    recipe = vscode.Uri.file(path.join(dir, 'ta.merge.yaml'));
    taskBroken = vscode.Uri.file(path.join(dir, 'task-broken.merge.yaml'));
    refused = vscode.Uri.file(path.join(dir, 'refused.merge.yaml'));
    fs.writeFileSync(refused.fsPath, BROKEN);
    fs.writeFileSync(broken.fsPath, BROKEN);
    fs.writeFileSync(recipe.fsPath, TASK_ARITHMETIC);
    fs.writeFileSync(taskBroken.fsPath, BROKEN);
    oracle = path.join(path.dirname(ws), `${path.basename(ws)}-cli-merge`);
  });

  after(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(oracle, { recursive: true, force: true });
  });

  it('shows the errors of a broken recipe in the Problems panel as soon as it is opened, and clears them when fixed', async () => {
    const doc = await vscode.workspace.openTextDocument(broken);
    await vscode.window.showTextDocument(doc);
    const diags = await waitFor('diagnostics of the broken recipe', () => recipeDiags(broken).length >= 3 && recipeDiags(broken));
    const at = (line: number) => diags.filter((d) => d.range.start.line === line);
    assert.deepEqual(
      diags.map((d) => d.range.start.line).sort((a, b) => a - b),
      [5, 6, 10],
      diags.map((d) => `${d.range.start.line}: ${d.message}`).join('\n'),
    );
    for (const d of diags) assert.equal(d.severity, vscode.DiagnosticSeverity.Error, d.message);
    // The indentation mistake, explained at the key that is out of place.
    const weight = at(6)[0]!;
    assert.match(weight.message, /`weight` is not inside `parameters:`.*Indent `weight:` further/);
    assert.deepEqual([weight.range.start.character, weight.range.end.line, weight.range.end.character], [4, 6, 10]);
    assert.match(at(5)[0]!.message, /parameters is empty/);
    // The schema error, with the schema's suggestion.
    const dtype = at(10)[0]!;
    assert.match(dtype.message, /dtype must be one of .*bfloat16.*did you mean `bfloat16`/);
    assert.equal(doc.getText(dtype.range), 'bfloat17');
    // The CLI says the same at the same places (1-based there).
    const cliOut = spawnSync(process.execPath, [path.join(ext.extensionPath, 'dist', 'cli.js'), 'merge', broken.fsPath, '--dry-run'], { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, encoding: 'utf8' });
    assert.equal(cliOut.status, 2);
    for (const d of diags) assert.ok(cliOut.stderr.includes(`:${d.range.start.line + 1}:${d.range.start.character + 1}: error: ${d.message}`), `the CLI reports ${d.message}`);

    // Fixing the text (unsaved) clears them.
    const edit = new vscode.WorkspaceEdit();
    edit.replace(broken, new vscode.Range(0, 0, doc.lineCount, 0), FIXED);
    assert.ok(await vscode.workspace.applyEdit(edit));
    await waitFor('the diagnostics to clear', () => recipeDiags(broken).length === 0);
    assert.ok(doc.isDirty, 'checked from the editor, not from the file');
  });

  it('checks once per pause in typing, and the newest text wins', async () => {
    const doc = await vscode.workspace.openTextDocument(broken);
    await waitFor('a clean state', () => recipeDiags(broken).length === 0);
    const sentBefore = ctx.recipes.diagnostics.requestsSent;
    // Six keystrokes in a row into the dtype value: "bfloat16" → "bfloat16xxxxxx".
    const keys = 6;
    for (let i = 0; i < keys; i++) {
      const line = doc.lineAt(10);
      const e = new vscode.WorkspaceEdit();
      e.insert(broken, line.range.end, 'x');
      assert.ok(await vscode.workspace.applyEdit(e));
    }
    const d = await waitFor('the diagnostic of the last text', () => recipeDiags(broken).find((x) => x.message.includes('bfloat16xxxxxx')));
    assert.equal(d.range.start.line, 10);
    assert.equal(recipeDiags(broken).length, 1);
    const sent = ctx.recipes.diagnostics.requestsSent - sentBefore;
    assert.ok(sent >= 1 && sent < keys, `${sent} checks for ${keys} keystrokes`);
    // Back to the fixed recipe, saved, so closing the editor asks nothing.
    const e = new vscode.WorkspaceEdit();
    e.replace(broken, new vscode.Range(0, 0, doc.lineCount, 0), FIXED);
    await vscode.workspace.applyEdit(e);
    await doc.save();
    await waitFor('the diagnostics to clear', () => recipeDiags(broken).length === 0);
  });

  it('offers Run Merge, Dry Run and Compare Inputs as CodeLens on the merge_method line, and nothing on other YAML', async () => {
    // The command asks the renderer's model of the document: it must be open (not necessarily shown).
    await vscode.workspace.openTextDocument(recipe);
    const lenses = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', recipe);
    const ours = lenses.filter((l) => l.command?.command.startsWith('chatVector.'));
    assert.deepEqual(
      ours.map((l) => [l.command!.command, l.command!.title.replace(/^\$\([\w-]+\) /, '')]),
      [
        ['chatVector.runMerge', 'Run Merge'],
        ['chatVector.dryRunMerge', 'Dry Run'],
        ['chatVector.compareRecipeInputs', 'Compare Inputs'],
      ],
    );
    for (const l of ours) {
      assert.equal(l.range.start.line, 1, 'the merge_method line (after the comment)');
      assert.equal((l.command!.arguments![0] as vscode.Uri).toString(), recipe.toString());
    }
    const other = vscode.Uri.file(path.join(dir, 'other.yaml'));
    fs.writeFileSync(other.fsPath, 'name: not a recipe\nsteps: [1, 2]\n');
    await vscode.workspace.openTextDocument(other);
    const none = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', other);
    assert.equal(none.filter((l) => l.command?.command.startsWith('chatVector.')).length, 0);
  });

  it('runs the merge from the editor (saving unsaved edits first) with the same bytes as `chatvec merge`', async () => {
    const doc = await vscode.workspace.openTextDocument(recipe);
    await vscode.window.showTextDocument(doc);
    // An unsaved edit: the merge must run what the editor shows.
    const e = new vscode.WorkspaceEdit();
    e.replace(recipe, doc.lineAt(6).range, '      weight: 0.6');
    assert.ok(await vscode.workspace.applyEdit(e));
    assert.ok(doc.isDirty);
    const out = path.join(dir, 'ta-from-editor');
    const r = await vscode.commands.executeCommand<JobResult<JobOutcome>>('chatVector.runMerge', { recipe, out, overwrite: true });
    assert.ok(r && r.status === 'ok', JSON.stringify(r ?? api.errors.at(-1)));
    assert.equal(r.result.out, out);
    assert.equal(doc.isDirty, false, 'the recipe was saved');
    assert.match(fs.readFileSync(recipe.fsPath, 'utf8'), /weight: 0\.6/);

    cli(['merge', recipe.fsPath, '--out', oracle, '--overwrite', '--quiet'], ws);
    assertSameFolder(out, oracle);
    // A valid checkpoint: the task host reads it back with every tensor of the base model.
    const report = JSON.parse(cli(['inspect', out, '--json'], ws)) as InspectReport;
    const base = JSON.parse(cli(['inspect', demo('base'), '--json'], ws)) as InspectReport;
    assert.equal(report.tensorCount, base.tensorCount);
    assert.equal(report.parameterCount, base.parameterCount);
    assert.equal(r.result.tensorCount, base.tensorCount);
    await waitFor('the Checkpoints view to list the output', () => ctx.store.find(out)?.report);

    // Its warnings reach the user: on the completion message (quoted, with Show Warnings) and as
    // warning diagnostics on the base_model line (the CP model's extra vocabulary rows are cut).
    assert.ok(r.result.warnings.some((w) => /vocabularies differ/.test(w)), JSON.stringify(r.result.warnings));
    const done = ctx.jobs.doneMessages.at(-1)!;
    assert.deepEqual(done.warnings, r.result.warnings);
    assert.match(done.message, /^Merged ta\.merge\.yaml: ta-from-editor — \d+ tensors, .* on cpu[^()]*(\(\d+ threads?\))?\. \d+ warnings?(, the first)?: .*vocabularies differ/);
    const warned = vscode.languages.getDiagnostics(recipe).filter((d) => d.severity === vscode.DiagnosticSeverity.Warning && /vocabularies differ.*\(merge\)$/.test(d.message));
    assert.equal(warned.length, r.result.warnings.filter((w) => /vocabularies differ/.test(w)).length);
    for (const d of warned) assert.equal(d.range.start.line, 2, `${d.message} on the base_model line`);
  });

  it('refuses to run a broken recipe and writes nothing', async () => {
    const out = path.join(dir, 'should-not-exist');
    const errorsBefore = api.errors.length;
    const r = await vscode.commands.executeCommand('chatVector.runMerge', { recipe: refused, out, overwrite: true });
    assert.equal(r, undefined);
    assert.ok(!fs.existsSync(out));
    const err = api.errors.at(-1);
    assert.ok(api.errors.length === errorsBefore + 1 && err, 'one error was reported');
    assert.match(err.message, /refused\.merge\.yaml has 3 errors .*Problems.*line 6/);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('shows the dry run: the plan `chatvec merge --dry-run` prints', async () => {
    const r = await vscode.commands.executeCommand<RecipePlanResult>('chatVector.dryRunMerge', recipe);
    assert.ok(r, JSON.stringify(api.errors.at(-1)));
    assert.equal(r.summary.method, 'task_arithmetic');
    assert.equal(r.summary.tensorCount, 39);
    const expected = cli(['merge', recipe.fsPath, '--dry-run'], ws);
    assert.equal(r.text.trimEnd(), expected.trimEnd());
    const shown = await waitFor('the dry-run document', () => vscode.window.visibleTextEditors.find((ed) => ed.document.uri.scheme === 'chatvector-plan')?.document);
    assert.ok(shown.getText().startsWith(r.text), shown.getText().slice(0, 200));
    assert.match(shown.getText(), /vocabularies differ/);
    // The plan wraps (its warnings are long lines) …
    assert.equal(shown.languageId, 'chatvec-plan');
    assert.equal(vscode.workspace.getConfiguration('editor', { languageId: 'chatvec-plan' }).get('wordWrap'), 'on');
    // … and its warnings are in the Problems panel, on the recipe, until the recipe changes.
    const warned = vscode.languages.getDiagnostics(recipe).filter((d) => d.severity === vscode.DiagnosticSeverity.Warning && /\(dry run\)$/.test(d.message));
    assert.deepEqual(warned.map((d) => d.message.replace(/ \(dry run\)$/, '')), r.summary.warnings);
    assert.ok(warned.every((d) => d.range.start.line === 2), 'on the base_model line');
    const doc = await vscode.workspace.openTextDocument(recipe);
    const e = new vscode.WorkspaceEdit();
    e.insert(recipe, new vscode.Position(0, 0), '# edited\n');
    assert.ok(await vscode.workspace.applyEdit(e));
    await waitFor('the stale warnings to go', () => !vscode.languages.getDiagnostics(recipe).some((d) => /\(dry run\)$/.test(d.message)));
    const undo = new vscode.WorkspaceEdit();
    undo.delete(recipe, new vscode.Range(0, 0, 1, 0));
    assert.ok(await vscode.workspace.applyEdit(undo));
    await doc.save();
  });

  it('compares the inputs of the recipe (base against the first model) in the Layer Deltas view', async () => {
    const c = await vscode.commands.executeCommand<Comparison>('chatVector.compareRecipeInputs', recipe);
    assert.ok(c, JSON.stringify(api.errors.at(-1)));
    assert.equal(c.report.a, demo('base'));
    assert.equal(c.report.b, demo('chat'));
    assert.equal(ctx.deltas.comparison?.report.b, demo('chat'));
  });

  describe('the chatvec task type', () => {
    /** Runs a task in a terminal and resolves its process's exit code. */
    async function runTask(task: vscode.Task): Promise<number | undefined> {
      // Subscribed before the start: a tiny merge can end before executeTask's promise settles.
      const ended = new Promise<number | undefined>((resolve) => {
        const sub = vscode.tasks.onDidEndTaskProcess((e) => {
          if (e.execution.task.name === task.name && e.execution.task.source === task.source) {
            sub.dispose();
            resolve(e.exitCode);
          }
        });
      });
      await vscode.tasks.executeTask(task);
      return ended;
    }

    it('lists one task per recipe, and running one writes the same bytes as the CLI', async () => {
      const tasks = await vscode.tasks.fetchTasks({ type: 'chatvec' });
      const recipes = tasks.map((t) => t.definition.recipe as string).sort();
      assert.deepEqual(recipes, ['recipes/broken.merge.yaml', 'recipes/refused.merge.yaml', 'recipes/ta.merge.yaml', 'recipes/task-broken.merge.yaml']);
      const task = tasks.find((t) => t.definition.recipe === 'recipes/ta.merge.yaml')!;
      assert.deepEqual({ ...task.definition }, { type: 'chatvec', recipe: 'recipes/ta.merge.yaml', out: 'recipes/ta-merged' });
      assert.equal(task.source, 'chatvec');
      assert.deepEqual(task.problemMatchers, ['$chatvec']);
      const out = path.join(ws, 'recipes', 'ta-merged');
      fs.rmSync(out, { recursive: true, force: true });
      assert.equal(await runTask(task), 0);
      assertSameFolder(out, oracle);
    });

    it('reports a broken recipe through the $chatvec problem matcher', async () => {
      // Never opened in an editor: whatever the Problems panel shows for it comes from the task.
      assert.ok(!vscode.workspace.textDocuments.some((d) => d.uri.toString() === taskBroken.toString()));
      const task = (await vscode.tasks.fetchTasks({ type: 'chatvec' })).find((t) => t.definition.recipe === 'recipes/task-broken.merge.yaml')!;
      assert.equal(await runTask(task), 2);
      const diags = await waitFor('problem-matcher diagnostics', () => {
        const d = vscode.languages.getDiagnostics(taskBroken);
        return d.length >= 3 && d;
      }).catch((e: unknown) => {
        const all = vscode.languages.getDiagnostics().map(([u, ds]) => `${u.toString()}: ${ds.map((d) => `${d.source}@${d.range.start.line}`).join(',')}`);
        // What the Problems panel holds instead, for the log of a failed run.
        console.log(`diagnostics when the wait for ${taskBroken.toString()} timed out:\n${all.join('\n')}`);
        throw e;
      });
      const weight = diags.find((d) => d.range.start.line === 6);
      assert.ok(weight, diags.map((d) => `${d.range.start.line}:${d.range.start.character} ${d.message}`).join('\n'));
      assert.equal(weight.range.start.character, 4);
      assert.equal(weight.severity, vscode.DiagnosticSeverity.Error);
      assert.match(weight.message, /`weight` is not inside `parameters:`/);
      assert.ok(!fs.existsSync(path.join(ws, 'recipes', 'task-broken-merged')));
    });
  });
  // Last: a recipe opened, fixed and saved by this test (even outside the workspace) has made the
  // $chatvec problem-matcher test above time out in some runs; run it after the task tests.
  describe('quick fixes', () => {
    it('offers a Quick Fix for a did-you-mean diagnostic, and applying it fixes the recipe', async () => {
      // Outside the workspace: a recipe file created and removed inside it upset the later task
      // tests' problem matcher (no diagnostics), and the fix needs no model folders.
      const typoDir = fs.mkdtempSync(path.join(path.dirname(ws), 'typo-'));
      const typo = vscode.Uri.file(path.join(typoDir, 'typo.merge.yaml'));
      fs.writeFileSync(typo.fsPath, TASK_ARITHMETIC.replace('base_model:', 'base_modle:'));
      const doc = await vscode.workspace.openTextDocument(typo);
      await vscode.window.showTextDocument(doc);
      const d = await waitFor('the did-you-mean diagnostic', () => recipeDiags(typo).find((x) => /did you mean `base_model`/.test(x.message)));
      assert.equal(doc.getText(d.range), 'base_modle');
      const actions = await vscode.commands.executeCommand<vscode.CodeAction[]>('vscode.executeCodeActionProvider', typo, d.range, vscode.CodeActionKind.QuickFix.value);
      const fix = actions.find((a) => a.title === 'Change to `base_model`');
      assert.ok(fix?.edit, JSON.stringify(actions.map((a) => a.title)));
      assert.ok(await vscode.workspace.applyEdit(fix.edit));
      assert.equal(doc.lineAt(2).text, 'base_model: ../tiny-base');
      await waitFor('the diagnostic to go', () => !recipeDiags(typo).some((x) => /base_modle/.test(x.message)));
      // Saved, then closed and removed: no dirty editor is left for later tests to save.
      assert.ok(await doc.save());
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
      fs.rmSync(typoDir, { recursive: true, force: true });
    });
  });
});
