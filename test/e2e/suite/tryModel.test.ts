/**
 * Try Model and Compare Replies in the real extension host: the panel's page loads and says
 * `ready`, the model is loaded in the task host's chat session, a prompt sent as the page sends it
 * gets the reply the CLI's one-shot `chatvec chat --prompt` prints for the same model (greedy, so
 * equal), Stop cuts a reply short, and Compare Replies shows each model's own reply side by side.
 * The demo merged model is made by Apply, whose completion message offers Try Model.
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'mocha';
import * as vscode from 'vscode';
import type { JobOutcome, JobResult } from '../../../src/protocol/taskHost';
import type { ChatVectorApi } from '../../../src/extension/extension';
import type { TryModelPanel } from '../../../src/extension/tryPanel';
import { waitFor as waitUntil } from './waitFor';

const EXTENSION_ID = 'chatvector.chat-vector';

describe('Try Model and Compare Replies', function () {
  this.timeout(240_000);
  let ext: vscode.Extension<ChatVectorApi>;
  let api: ChatVectorApi;
  let ws: string;
  let merged: string;
  const demo = (role: string) => path.join(ws, `tiny-${role}`);

  /**
   * The CLI's one-shot reply (its stdout without the final newline). Run without blocking: a
   * spawnSync would freeze the extension host for the CLI's whole run (conversion included).
   */
  function cliReply(model: string, prompt: string, maxTokens: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const args = [path.join(ext.extensionPath, 'dist', 'cli.js'), 'chat', model, '--prompt', prompt, '--max-tokens', String(maxTokens), '--threads', '1', '--quiet'];
      execFile(process.execPath, args, { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) reject(new Error(`chatvec chat failed: ${stderr || err.message}`));
        else resolve(stdout.replace(/\n$/, ''));
      });
    });
  }
  /** The oracle replies, started as soon as the merged model exists (they run while the panels load). */
  let oracle: { merged: Promise<string>; chat: Promise<string> };
  /** waitFor with this suite's longer default (60 s: llama.cpp loads models). */
  const waitFor = <T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> => waitUntil(what, probe, timeoutMs);

  /** The panel's page has loaded and every model is loaded. */
  async function loaded(panel: TryModelPanel): Promise<void> {
    await waitFor('the Try Model page to say ready', () => panel.isReady);
    await panel.whenLoaded();
    for (const c of panel.snapshot.columns) assert.equal(c.status, 'ready', `${c.model}: ${c.message}`);
  }

  before(async () => {
    ws = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
    ext = vscode.extensions.getExtension<ChatVectorApi>(EXTENSION_ID)!;
    api = await ext.activate();
    // One llama.cpp thread per process, here and in the CLI: llama.cpp's threads wait for each
    // other by spinning, which on a loaded machine with several llama.cpp processes (the panel's
    // host and the oracle CLIs) slows replies down a hundredfold. The replies are the same.
    await vscode.workspace.getConfiguration('chatVector').update('threads', 1, vscode.ConfigurationTarget.Global);
    merged = path.join(ws, 'tiny-try-merged');
    fs.rmSync(merged, { recursive: true, force: true });
    const r = (await vscode.commands.executeCommand('chatVector.applyChatVector', { target: demo('cp'), base: demo('base'), chats: [demo('chat')], ratios: [1], out: merged, skipEmbed: true, overwrite: true })) as JobResult<JobOutcome> | undefined;
    assert.ok(r && r.status === 'ok', JSON.stringify(r ?? api.errors.at(-1)));
    oracle = { merged: cliReply(merged, 'hello', 12), chat: cliReply(demo('chat'), 'hello', 12) };
    // A failure is reported by the test that awaits it.
    oracle.merged.catch(() => undefined);
    oracle.chat.catch(() => undefined);
  });

  after(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await vscode.workspace.getConfiguration('chatVector').update('threads', undefined, vscode.ConfigurationTarget.Global);
    fs.rmSync(merged, { recursive: true, force: true });
  });

  it("Apply's completion message offers Try Model", () => {
    const done = api.ctx.jobs.doneMessages.at(-1)!;
    assert.ok(done.actions.includes('Try Model'), JSON.stringify(done.actions));
  });

  it('streams the reply the CLI prints for the same model and prompt, and Stop cuts one short', async () => {
    const panel = (await vscode.commands.executeCommand('chatVector.tryModel', merged)) as TryModelPanel;
    assert.ok(panel, JSON.stringify(api.errors.at(-1)));
    await loaded(panel);
    assert.equal(panel.panel.title, 'Try: tiny-try-merged');
    assert.ok(panel.snapshot.columns[0]!.backend?.startsWith('llama.cpp'));

    await panel.handle({ type: 'send', text: 'hello', system: '', maxTokens: 12 });
    const turn = panel.snapshot.turns[0]!;
    assert.notEqual(turn.stops[0], 'error', turn.replies[0]);
    assert.equal(turn.replies[0], await oracle.merged);
    assert.ok((panel.snapshot.columns[0]!.tokensPerSecond ?? 0) > 0, 'tokens/s shown');

    // Stop: the reply stops where it is and is marked stopped.
    const sending = panel.handle({ type: 'send', text: 'tell me more', system: '', maxTokens: 1000 });
    await waitFor('the reply to start', () => (panel.snapshot.turns[1]?.replies[0]?.length ?? 0) > 0);
    await panel.handle({ type: 'stop' });
    await sending;
    const stopped = panel.snapshot.turns[1]!;
    assert.equal(stopped.stops[0], 'cancelled', `${stopped.stops[0]}: ${stopped.replies[0]}`);
    assert.equal(panel.snapshot.busy, false);
    panel.panel.dispose();
  });

  it('Compare Replies shows each model its own reply, side by side', async () => {
    const panel = (await vscode.commands.executeCommand('chatVector.compareReplies', demo('chat'), merged)) as TryModelPanel;
    assert.ok(panel, JSON.stringify(api.errors.at(-1)));
    await loaded(panel);
    assert.equal(panel.snapshot.columns.length, 2);
    await panel.handle({ type: 'send', text: 'hello', system: '', maxTokens: 12 });
    const turn = panel.snapshot.turns[0]!;
    assert.deepEqual(turn.replies, [await oracle.chat, await oracle.merged]);
    panel.panel.dispose();
  });
});
