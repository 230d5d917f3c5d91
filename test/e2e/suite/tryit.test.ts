/**
 * Try the result in the real extension host: Evaluate Perplexity… and Sweep Ratios… on the demo
 * checkpoints, through the real task host and llama.cpp, with the CLI (`chatvec eval`) as the
 * oracle for every number the editor shows.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'mocha';
import * as vscode from 'vscode';
import type { EvalReport } from '../../../src/protocol/taskHost';
import type { ChatVectorApi } from '../../../src/extension/extension';
import type { PerplexityResult } from '../../../src/extension/perplexity';
import type { SweepResult } from '../../../src/extension/sweepFlow';
import { formatNll, formatPerplexity } from '../../../src/protocol/evalText';

const EXTENSION_ID = 'chatvector.chat-vector';
// Words of the demo vocabulary and some that are not: byte-level BPE splits both.
const TEXT = 'the model answers the question in the new language. hello world, how are you today? '.repeat(6);

let ext: vscode.Extension<ChatVectorApi>;
let ws: string;
const demo = (role: string) => path.join(ws, `tiny-${role}`);

function cli(args: string[]): string {
  const r = spawnSync(process.execPath, [path.join(ext.extensionPath, 'dist', 'cli.js'), ...args], {
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
  });
  assert.equal(r.status, 0, `chatvec ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** `chatvec eval MODEL --text FILE --json`: its result line. */
function cliEval(model: string, text: string): EvalReport {
  return JSON.parse(cli(['eval', model, '--text', text, '--json']).trim().split('\n').at(-1)!) as EvalReport;
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The same numbers: the same llama.cpp on the same GGUF bytes (thread counts may differ in the last bits). */
function close(a: number, b: number, what: string): void {
  assert.ok(Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)), `${what}: editor ${a} vs chatvec eval ${b}`);
}

describe('Try the result in a real VS Code', function () {
  this.timeout(300_000);
  let text: string;

  before(async () => {
    ws = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
    ext = vscode.extensions.getExtension<ChatVectorApi>(EXTENSION_ID)!;
    if (!fs.existsSync(path.join(demo('base'), 'config.json'))) cli(['demo', '--dir', ws, '--preset', 'tiny']);
    await ext.activate();
    text = path.join(ws, 'tryit-text.txt');
    fs.writeFileSync(text, TEXT);
  });

  after(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    for (const p of [text, path.join(ws, 'tryit-sweep')]) fs.rmSync(p, { recursive: true, force: true });
  });

  it('Evaluate Perplexity gives the numbers of chatvec eval, per model, in one table', async () => {
    const r = (await vscode.commands.executeCommand('chatVector.evaluatePerplexity', { text, models: [demo('cp'), demo('chat')] })) as PerplexityResult;
    assert.ok(r, 'the command returned its result');
    assert.equal(r.cancelled, false);
    assert.equal(r.reports.length, 2);
    for (const [i, model] of [demo('cp'), demo('chat')].entries()) {
      const oracle = cliEval(model, text);
      const got = r.reports[i]!;
      assert.equal(got.scored, oracle.scored, `${model}: tokens scored`);
      assert.deepEqual([got.context, got.stride], [oracle.context, oracle.stride], `${model}: the CLI's default windows`);
      close(got.meanNll, oracle.meanNll, `${model}: mean NLL`);
      close(got.perplexity, oracle.perplexity, `${model}: perplexity`);
      assert.ok(r.markdown.includes(`| ${path.basename(model)} | ${formatNll(oracle.meanNll)} | ${formatPerplexity(oracle.perplexity)} |`), `the table row of ${model}:\n${r.markdown}`);
    }
    // The table is on screen: the rendered Markdown preview of the document the command wrote.
    await waitFor('the Markdown preview', () => {
      const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
      return input instanceof vscode.TabInputWebview && /markdown\.preview/.test(input.viewType);
    });
    const doc = await waitFor('the perplexity document', () => vscode.workspace.textDocuments.find((d) => d.uri.scheme === 'chatvector-eval'));
    assert.equal(doc.getText(), r.markdown);
  });

  it('Sweep Ratios writes each merge, scores it as chatvec eval does, and charts perplexity against ratio', async () => {
    const out = path.join(ws, 'tryit-sweep');
    fs.rmSync(out, { recursive: true, force: true });
    const ratios = [0.5, 1];
    const r = (await vscode.commands.executeCommand('chatVector.sweepRatios', { target: demo('cp'), base: demo('base'), chat: demo('chat'), ratios, text, out, keep: 'all', skipEmbed: true })) as SweepResult;
    assert.ok(r && r.status === 'ok', JSON.stringify(r)?.slice(0, 300));
    assert.deepEqual(fs.readdirSync(out).sort(), ['ratio-0.5', 'ratio-1']);
    assert.deepEqual(r.chart.points.map((p) => p.ratio), ratios);
    const oracle = ratios.map((ratio) => cliEval(path.join(out, `ratio-${ratio}`), text));
    r.chart.points.forEach((p, i) => {
      close(p.meanNll, oracle[i]!.meanNll, `ratio ${p.ratio}: mean NLL`);
      close(p.perplexity, oracle[i]!.perplexity, `ratio ${p.ratio}: perplexity`);
      assert.equal(p.out, path.join(out, `ratio-${p.ratio}`));
    });
    const lowest = oracle.reduce((a, b, i) => (b.meanNll < oracle[a]!.meanNll ? i : a), 0);
    assert.deepEqual(r.chart.points.map((p) => p.best), ratios.map((_, i) => i === lowest));
    await waitFor('the sweep panel', () => vscode.window.tabGroups.all.flatMap((g) => g.tabs).some((t) => t.input instanceof vscode.TabInputWebview && t.input.viewType.endsWith('chatVector.sweep')));
  });
});
