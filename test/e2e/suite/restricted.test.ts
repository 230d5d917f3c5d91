/**
 * Restricted Mode (an untrusted folder): inspection and layer deltas work, every command that
 * writes files refuses and writes nothing. Run by the harness in a second VS Code session with
 * workspace trust on (E2E_SUITE=restricted); skipped by desktop runs of a trusted folder.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'mocha';
import * as vscode from 'vscode';
import type { Comparison } from '../../../src/extension/deltas';
import type { ChatVectorApi } from '../../../src/extension/extension';
import { fakeCommit, placeInCache } from '../../unit/support/hubCacheFixture';
import { waitFor } from './waitFor';

describe('Chat Vector in Restricted Mode', function () {
  this.timeout(60_000);
  let api: ChatVectorApi;
  let ws: string;
  const demo = (role: string) => path.join(ws, `tiny-${role}`);

  before(async function () {
    if (vscode.workspace.isTrusted) this.skip();
    ws = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
    const ext = vscode.extensions.getExtension<ChatVectorApi>('chatvector.chat-vector')!;
    if (!fs.existsSync(path.join(demo('base'), 'config.json'))) {
      const r = spawnSync(process.execPath, [path.join(ext.extensionPath, 'dist', 'cli.js'), 'demo', '--dir', ws, '--preset', 'tiny'], { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } });
      assert.equal(r.status, 0, String(r.stderr));
    }
    api = await ext.activate();
  });

  it('still discovers and inspects checkpoints', async () => {
    assert.equal(vscode.workspace.isTrusted, false);
    await api.ctx.store.refresh();
    assert.equal(api.ctx.store.find(demo('cp'))?.report?.architecture, 'LlamaForCausalLM');
  });

  it('still compares checkpoints', async () => {
    const c = await vscode.commands.executeCommand<Comparison>('chatVector.compareCheckpoints', { a: demo('base'), b: demo('chat') });
    assert.ok(c, JSON.stringify(api.errors.at(-1)));
    assert.equal(c.groups.length, 7);
  });

  function writeRecipe(name: string, text: string): string {
    const dir = path.join(ws, 'recipes');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
    return path.join(dir, name);
  }

  it('still shows recipe diagnostics, and CodeLens without Run Merge', async () => {
    const uri = vscode.Uri.file(writeRecipe('typo.merge.yaml', 'merge_method: linera\nmodels:\n  - model: ../tiny-base\n'));
    await vscode.window.showTextDocument(uri);
    const d = await waitFor('the recipe\'s chatvec diagnostic', () => vscode.languages.getDiagnostics(uri).find((x) => x.source === 'chatvec' && x.range.start.line === 0));
    assert.match(d.message, /merge_method/);
    const lenses = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', uri);
    assert.deepEqual(
      lenses.map((l) => l.command?.command),
      ['chatVector.dryRunMerge', 'chatVector.compareRecipeInputs'],
    );
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('still lists the Hugging Face cache (reading it is allowed); downloading is refused', async () => {
    const cache = process.env.HF_HUB_CACHE!;
    placeInCache(cache, 'e2e/tiny-base', fakeCommit('restricted'), demo('base'));
    await api.ctx.store.refresh();
    assert.ok(api.ctx.store.all.some((e) => e.hub?.repoId === 'e2e/tiny-base' && e.report));
    const errors = api.errors.length;
    assert.equal(await vscode.commands.executeCommand('chatVector.downloadModel', 'e2e/absent'), undefined);
    assert.equal(api.errors.length, errors, 'refused before it tried (a failed try would be an error)');
    assert.ok(!fs.existsSync(path.join(cache, 'models--e2e--absent')));
  });

  it("ignores the workspace's chatVector.modelFolders (a restricted setting)", async () => {
    const folder = path.join(path.dirname(ws), `${path.basename(ws)}-model-folder`);
    fs.cpSync(demo('chat'), path.join(folder, 'm'), { recursive: true });
    try {
      await vscode.workspace.getConfiguration('chatVector').update('modelFolders', [folder], vscode.ConfigurationTarget.Workspace);
      await api.ctx.store.refresh();
      assert.deepEqual(api.ctx.store.modelFolders, []);
      assert.ok(!api.ctx.store.all.some((e) => e.modelFolder !== undefined));
    } finally {
      await vscode.workspace.getConfiguration('chatVector').update('modelFolders', undefined, vscode.ConfigurationTarget.Workspace);
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });

  it('refuses every command that writes files, and writes nothing', async () => {
    const out = path.join(ws, 'should-not-exist');
    const calls: [string, unknown][] = [
      ['chatVector.applyChatVector', { target: demo('cp'), base: demo('base'), chats: [demo('chat')], out }],
      ['chatVector.extractChatVector', { base: demo('base'), chat: demo('chat'), out }],
      ['chatVector.createDemoCheckpoints', { dir: out, preset: 'tiny' }],
      ['chatVector.runMerge', { recipe: writeRecipe('refused.merge.yaml', 'merge_method: linear\nmodels:\n  - model: ../tiny-base\n  - model: ../tiny-chat\n'), out, overwrite: true }],
      // Try Model converts into the cache and runs llama.cpp's parser on the file: trusted only.
      ['chatVector.tryModel', demo('cp')],
      ['chatVector.compareReplies', demo('cp')],
    ];
    for (const [id, args] of calls) {
      assert.equal(await vscode.commands.executeCommand(id, args), undefined, id);
      assert.ok(!fs.existsSync(out), `${id} wrote ${out}`);
    }
    assert.equal(api.ctx.jobs.jobs.length, 0);
    assert.equal(api.ctx.tryModel.panels.length, 0, 'no chat panel opened');
  });
});
