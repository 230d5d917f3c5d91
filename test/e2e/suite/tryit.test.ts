/**
 * Try the result in the real extension host: Evaluate Perplexity… and Sweep Ratios… on the demo
 * checkpoints, through the real task host and llama.cpp, with the CLI (`chatvec eval`) as the
 * oracle for every number the editor shows.
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'mocha';
import * as vscode from 'vscode';
import type { EvalReport } from '../../../src/protocol/taskHost';
import type { ChatVectorApi } from '../../../src/extension/extension';
import type { PerplexityResult } from '../../../src/extension/perplexity';
import type { SweepResult } from '../../../src/extension/sweepFlow';
import { formatNll, formatPerplexity } from '../../../src/protocol/evalText';
import { waitFor } from './waitFor';

const EXTENSION_ID = 'chatvector.chat-vector';
// Words of the demo vocabulary and some that are not: byte-level BPE splits both. Short: scoring
// reads the full-vocabulary distribution per token, tens of tokens per second on a busy CPU.
const TEXT = 'the model answers the question in the new language. hello world, how are you today?';

let ext: vscode.Extension<ChatVectorApi>;
const api = () => ext.exports;
let ws: string;
const demo = (role: string) => path.join(ws, `tiny-${role}`);

const execFileAsync = promisify(execFile);

/** The CLI, without blocking the extension host (a sync spawn stalls its connection to the window). */
async function cli(args: string[]): Promise<string> {
  const r = await execFileAsync(process.execPath, [path.join(ext.extensionPath, 'dist', 'cli.js'), ...args], {
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
  });
  return r.stdout;
}

/** `chatvec eval A --compare B --text FILE --json`: both reports (one process, one llama.cpp start). */
async function cliEval(a: string, b: string, text: string): Promise<[EvalReport, EvalReport]> {
  const r = JSON.parse((await cli(['eval', a, '--compare', b, '--text', text, '--json'])).trim().split('\n').at(-1)!) as { a: EvalReport; b: EvalReport };
  return [r.a, r.b];
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
    if (!fs.existsSync(path.join(demo('base'), 'config.json'))) await cli(['demo', '--dir', ws, '--preset', 'tiny']);
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
    const oracles = await cliEval(demo('cp'), demo('chat'), text);
    for (const [i, model] of [demo('cp'), demo('chat')].entries()) {
      const oracle = oracles[i]!;
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
    const oracle = await cliEval(path.join(out, 'ratio-0.5'), path.join(out, 'ratio-1'), text);
    r.chart.points.forEach((p, i) => {
      close(p.meanNll, oracle[i]!.meanNll, `ratio ${p.ratio}: mean NLL`);
      close(p.perplexity, oracle[i]!.perplexity, `ratio ${p.ratio}: perplexity`);
      assert.equal(p.out, path.join(out, `ratio-${p.ratio}`));
    });
    const lowest = oracle.reduce((a, b, i) => (b.meanNll < oracle[a]!.meanNll ? i : a), 0);
    assert.deepEqual(r.chart.points.map((p) => p.best), ratios.map((_, i) => i === lowest));
    await waitFor('the sweep panel', () => vscode.window.tabGroups.all.flatMap((g) => g.tabs).some((t) => t.input instanceof vscode.TabInputWebview && t.input.viewType.endsWith('chatVector.sweep')));
  });

  it('Cancel during a sweep keeps the merges already measured and leaves no partial folder', async () => {
    const out = path.join(ws, 'tryit-sweep');
    fs.rmSync(out, { recursive: true, force: true });
    const running = vscode.commands.executeCommand('chatVector.sweepRatios', { target: demo('cp'), base: demo('base'), chat: demo('chat'), ratios: [0, 0.5], text, out, keep: 'all', skipEmbed: true }) as Thenable<SweepResult>;
    // The progress text names the ratio: cancel once the second one has started.
    const job = await waitFor('the sweep to reach ratio 0.5', () => api().ctx.jobs.jobs.find((j) => j.kind === 'sweep' && /ratio 0\.5 \(2\/2\)/.test(api().ctx.jobs.lastProgress.get(j.id) ?? '')), 120_000);
    await vscode.commands.executeCommand('chatVector.cancelJob', job.id);
    const r = await running;
    assert.ok(r && r.status === 'cancelled', JSON.stringify(r)?.slice(0, 300));
    const onDisk = fs.readdirSync(out).sort();
    assert.deepEqual(r.kept, onDisk, 'the message names what is on disk');
    // ratio-0 was measured before the cancel; ratio-0.5, merged or being scored, is removed.
    assert.deepEqual(onDisk, ['ratio-0']);
  });
});
