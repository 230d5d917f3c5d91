/**
 * Hugging Face ids in the real editor. The harness points HF_HUB_CACHE at an empty folder of the
 * run and HF_ENDPOINT at a port on 127.0.0.1 (driver.mjs); this suite fills the cache as
 * huggingface_hub lays it out (refs, snapshots of relative links into blobs/) and serves a Hub on
 * that port (test/unit/support/fakeHub.ts). Checked: the Hugging Face Cache section of the
 * Checkpoints view lists the cached models; a recipe naming them by id runs from the editor with
 * the bytes of `chatvec merge`; an id missing from the cache is downloaded before the merge; the
 * `chatVector.modelFolders` setting adds a section with the checkpoints of a folder outside the
 * workspace.
 *
 * Named to sort after recipes.test.ts (the runner loads files in name order): the $chatvec
 * problem-matcher test there has timed out in runs where other recipes were opened before it.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'mocha';
import * as vscode from 'vscode';
import type { JobOutcome, JobResult } from '../../../src/protocol/taskHost';
import type { CheckpointEntry } from '../../../src/extension/checkpoints';
import type { Ctx } from '../../../src/extension/ctx';
import type { ChatVectorApi } from '../../../src/extension/extension';
import { FakeHub } from '../../unit/support/fakeHub';
import { fakeCommit, placeInCache } from '../../unit/support/hubCacheFixture';
import { waitFor as waitUntil } from './waitFor';

/** waitFor with this suite's longer default (30 s: downloads from the fake hub). */
const waitFor = <T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> => waitUntil(what, probe, timeoutMs);

describe('Hugging Face ids in the editor', function () {
  this.timeout(120_000);
  let ext: vscode.Extension<ChatVectorApi>;
  let api: ChatVectorApi;
  let ctx: Ctx;
  let ws: string;
  let dir: string;
  let cache: string;
  let elsewhere: string;
  const hub = new FakeHub();
  const demo = (role: string) => path.join(ws, `tiny-${role}`);
  const BASE = fakeCommit('e2e/tiny-base');
  const CHAT = fakeCommit('e2e/tiny-chat');
  const CP = fakeCommit('e2e/tiny-cp');

  function cli(args: string[]): string {
    const r = spawnSync(process.execPath, [path.join(ext.extensionPath, 'dist', 'cli.js'), ...args], { cwd: ws, env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, encoding: 'utf8' });
    assert.equal(r.status, 0, `chatvec ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  before(async function () {
    if (!vscode.workspace.isTrusted) this.skip();
    ws = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
    ext = vscode.extensions.getExtension<ChatVectorApi>('chatvector.chat-vector')!;
    if (!fs.existsSync(path.join(demo('base'), 'config.json'))) cli(['demo', '--dir', ws, '--preset', 'tiny']);
    api = await ext.activate();
    ctx = api.ctx;
    cache = process.env.HF_HUB_CACHE ?? '';
    assert.ok(path.isAbsolute(cache), 'the harness sets HF_HUB_CACHE (driver.mjs)');
    placeInCache(cache, 'e2e/tiny-base', BASE, demo('base'));
    placeInCache(cache, 'e2e/tiny-chat', CHAT, demo('chat'), ['main', 'v1']);
    // tiny-cp is on the (fake) Hub only.
    hub.repos.set('e2e/tiny-cp', { commit: CP, branches: { main: CP }, files: new Map(fs.readdirSync(demo('cp')).map((n) => [n, fs.readFileSync(path.join(demo('cp'), n))])) });
    await hub.start(Number(new URL(process.env.HF_ENDPOINT!).port));
    dir = path.join(ws, 'hub-recipes');
    fs.mkdirSync(dir, { recursive: true });
    elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'model-folder-'));
  });

  after(async () => {
    await hub.stop();
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    if (ctx) await vscode.workspace.getConfiguration('chatVector').update('modelFolders', undefined, vscode.ConfigurationTarget.Global);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (elsewhere) fs.rmSync(elsewhere, { recursive: true, force: true });
  });

  it('the Hugging Face Cache section lists the models of the cache with their revision and header facts', async () => {
    await ctx.store.refresh();
    const top = await ctx.checkpointsView.getChildren();
    const section = top.find((n) => 'hubSection' in n);
    assert.ok(section, 'a Hugging Face Cache section');
    const item = ctx.checkpointsView.getTreeItem(section);
    assert.equal(item.label, 'Hugging Face Cache');
    assert.equal(item.description, '2 models');
    assert.equal(item.collapsibleState, vscode.TreeItemCollapsibleState.Collapsed);
    const models = (await ctx.checkpointsView.getChildren(section)) as CheckpointEntry[];
    assert.deepEqual(models.map((m) => m.label), ['e2e/tiny-base@main', 'e2e/tiny-chat@main']);
    assert.equal(models[1]!.path, path.join(cache, 'models--e2e--tiny-chat', 'snapshots', CHAT));
    assert.deepEqual(models[1]!.hub?.revisions, ['main', 'v1']);
    assert.equal(models[0]!.report?.architecture, 'LlamaForCausalLM');
    assert.match(String(ctx.checkpointsView.getTreeItem(models[0]!).description), new RegExp(`commit ${BASE.slice(0, 12)}`));
  });

  it('a recipe naming cached models by id runs from the editor, with the bytes of `chatvec merge`', async () => {
    const recipe = path.join(dir, 'ids.merge.yaml');
    fs.writeFileSync(recipe, 'merge_method: task_arithmetic\nbase_model: e2e/tiny-base\nmodels:\n  - model: e2e/tiny-chat@v1\n    parameters:\n      weight: 0.5\ndtype: float32\n');
    const doc = await vscode.workspace.openTextDocument(recipe);
    await vscode.window.showTextDocument(doc);
    const out = path.join(dir, 'ids-merged');
    const r = await vscode.commands.executeCommand<JobResult<JobOutcome>>('chatVector.runMerge', { recipe, out, overwrite: false });
    assert.ok(r && r.status === 'ok', JSON.stringify(r ?? api.errors.at(-1)));
    const oracle = path.join(dir, 'ids-cli');
    cli(['merge', recipe, '--out', oracle, '--quiet']);
    const files = fs.readdirSync(oracle).sort();
    assert.deepEqual(fs.readdirSync(out).sort(), files);
    for (const f of files.filter((n) => n.endsWith('.safetensors'))) assert.ok(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(oracle, f))), `${f} is byte-identical to the CLI's`);
    assert.match(fs.readFileSync(path.join(out, 'README.md'), 'utf8'), new RegExp(`\`e2e/tiny-chat\` at commit \`${CHAT}\``));
  });

  it('an id missing from the cache is a warning with Download; Run Merge downloads it first, then merges', async () => {
    const recipe = vscode.Uri.file(path.join(dir, 'missing.merge.yaml'));
    fs.writeFileSync(recipe.fsPath, 'merge_method: task_arithmetic\nbase_model: e2e/tiny-base\nmodels:\n  - model: e2e/tiny-cp\n    parameters:\n      weight: 1.0\ndtype: float32\n');
    await vscode.window.showTextDocument(recipe);
    const d = await waitFor('the missing-id diagnostic', () => vscode.languages.getDiagnostics(recipe).find((x) => /chatvec download e2e\/tiny-cp$/.test(x.message)));
    assert.equal(d.severity, vscode.DiagnosticSeverity.Warning);
    const out = path.join(dir, 'missing-merged');
    // `download: true` answers the "Download 1 model and merge?" prompt (a modal dialog).
    const r = await vscode.commands.executeCommand<JobResult<JobOutcome>>('chatVector.runMerge', { recipe, out, overwrite: false, download: true });
    assert.ok(r && r.status === 'ok', JSON.stringify(r ?? api.errors.at(-1)));
    const snapshot = path.join(cache, 'models--e2e--tiny-cp', 'snapshots', CP);
    assert.deepEqual(fs.readdirSync(snapshot).sort(), fs.readdirSync(demo('cp')).filter((n) => !n.startsWith('.')).sort());
    assert.ok(hub.requests.some((q) => q.url.startsWith('/cdn/')), 'the weights came from the Hub');
    assert.ok(fs.existsSync(path.join(out, 'model.safetensors')) || fs.readdirSync(out).some((n) => n.endsWith('.safetensors')));
    await waitFor('the diagnostic to clear', () => !vscode.languages.getDiagnostics(recipe).some((x) => /chatvec download/.test(x.message)));
  });

  it('chatVector.modelFolders adds a section with the checkpoints of a folder outside the workspace', async () => {
    const model = path.join(elsewhere, 'org', 'my-chat');
    fs.cpSync(demo('chat'), model, { recursive: true });
    await vscode.workspace.getConfiguration('chatVector').update('modelFolders', [elsewhere], vscode.ConfigurationTarget.Global);
    const found = await waitFor('the folder\'s checkpoint', () => ctx.store.all.find((e) => e.modelFolder === elsewhere));
    assert.equal(found.path, model);
    assert.equal(found.label, path.join('org', 'my-chat'));
    await waitFor('its header facts', () => ctx.store.find(model)?.report);
    const top = await ctx.checkpointsView.getChildren();
    const section = top.find((n) => 'modelFolder' in n && !('path' in n));
    assert.ok(section, 'a section for the folder');
    const item = ctx.checkpointsView.getTreeItem(section);
    assert.equal(item.label, elsewhere);
    assert.equal(item.description, '1 checkpoint');
    assert.deepEqual(((await ctx.checkpointsView.getChildren(section)) as CheckpointEntry[]).map((e) => e.path), [model]);
    assert.equal(ctx.checkpointsView.getParent(found), section);
    // Not listed twice: the workspace section does not hold it.
    assert.ok(!top.some((n) => 'path' in n && (n as CheckpointEntry).path === model));
    await vscode.workspace.getConfiguration('chatVector').update('modelFolders', undefined, vscode.ConfigurationTarget.Global);
    await waitFor('the section to go', () => !ctx.store.all.some((e) => e.modelFolder === elsewhere));
  });
});
