/**
 * Integration tests inside the real extension host (code-server or desktop VS Code): no mocks, the
 * real task host process, real demo checkpoints made by the real CLI, and the CLI as the oracle
 * for the numbers the views show.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'mocha';
import * as vscode from 'vscode';
import type { DiffReport, EnergyAtRankReport, InspectReport, JobOutcome, JobResult } from '../../../src/protocol/taskHost';
import type { CheckpointEntry } from '../../../src/extension/checkpoints';
import type { Ctx } from '../../../src/extension/ctx';
import type { Comparison, DeltaNode, GroupNode } from '../../../src/extension/deltas';
import type { ChatVectorApi } from '../../../src/extension/extension';
import { deltaDescription, formatPercent } from '../../../src/protocol/displayFormat';
import { progressMessage } from '../../../src/extension/jobs';
import { untrainedSpecialTokens } from '../../../src/extension/specialTokens';
import { makeStressTrio } from '../fixtures';
import { waitFor } from './waitFor';

const EXTENSION_ID = 'chatvector.chat-vector';

let ext: vscode.Extension<ChatVectorApi>;
let api: ChatVectorApi;
let ctx: Ctx;
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

/** Relative closeness for numbers that crossed JSON twice (host → extension, CLI → test). */
function close(a: number | null, b: number | null, what: string): void {
  if (a === null || b === null || Number.isNaN(a) || Number.isNaN(b)) {
    assert.ok((a === null || Number.isNaN(a)) && (b === null || Number.isNaN(b)), `${what}: ${a} vs ${b}`);
    return;
  }
  assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(a), Math.abs(b)), `${what}: ${a} vs ${b}`);
}

function listDirSafe(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

describe('Chat Vector in a real VS Code', function () {
  this.timeout(120_000);

  before(async () => {
    ws = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
    ext = vscode.extensions.getExtension<ChatVectorApi>(EXTENSION_ID)!;
    assert.ok(ext, `${EXTENSION_ID} is installed`);
    // Desktop runs (.vscode-test.mjs) start from an empty folder; the harness pre-generates these.
    if (!fs.existsSync(path.join(demo('base'), 'config.json'))) cli(['demo', '--dir', ws, '--preset', 'tiny']);
    api = await ext.activate();
    ctx = api.ctx;
  });

  after(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('activates in the real extension host and registers every command of its manifest', async () => {
    assert.ok(vscode.version.startsWith('1.'), vscode.version);
    assert.equal(ext.isActive, true);
    const manifest = ext.packageJSON as { contributes: { commands: { command: string; category: string }[] } };
    const all = new Set(await vscode.commands.getCommands(true));
    for (const c of manifest.contributes.commands) {
      assert.ok(all.has(c.command), `${c.command} is registered`);
      assert.equal(c.category, 'Chat Vector', `${c.command} has the category`);
      assert.match(c.command, /^chatVector\.[a-z]+[A-Za-z]*$/);
    }
    const defaults = vscode.workspace.getConfiguration('chatVector');
    assert.equal(defaults.inspect('defaultRatio')?.defaultValue, 1);
    assert.equal(defaults.inspect('computeBackend')?.defaultValue, 'auto');
    assert.equal(defaults.inspect('maxShardSize')?.defaultValue, '5GB');
  });

  it('discovers the demo checkpoints and shows header facts from the task host', async () => {
    await ctx.store.refresh();
    const names = ctx.store.all.map((e) => path.basename(e.path));
    for (const n of ['tiny-base', 'tiny-chat', 'tiny-cp']) assert.ok(names.includes(n), `found ${n} in ${names.join(', ')}`);
    const oracle = JSON.parse(cli(['inspect', demo('cp'), '--json'])) as InspectReport;
    const cp = ctx.store.find(demo('cp'))!;
    assert.ok(cp.report, cp.error);
    assert.equal(cp.report.parameterCount, oracle.parameterCount);
    assert.equal(cp.report.vocabSize, oracle.vocabSize);
    assert.equal(cp.report.architecture, 'LlamaForCausalLM');
    // The hidden temporary siblings of atomic outputs never show up.
    assert.ok(!names.some((n) => n.startsWith('.')));
    await vscode.commands.executeCommand('workbench.view.extension.chatVector');
  });

  it('refreshes the Checkpoints view when checkpoints appear and disappear on disk', async () => {
    const copy = path.join(ws, 'copied-base');
    fs.cpSync(demo('base'), copy, { recursive: true });
    try {
      await waitFor('the watcher to find copied-base', () => ctx.store.find(copy)?.report);
    } finally {
      fs.rmSync(copy, { recursive: true, force: true });
    }
    await waitFor('copied-base to disappear', () => !ctx.store.find(copy));
  });

  it('assigns roles from the view and the Explorer and keeps them in workspaceState', async () => {
    // Explorer passes a Uri, the Checkpoints view its own item.
    await vscode.commands.executeCommand('chatVector.setAsBase', vscode.Uri.file(demo('base')));
    const chatEntry = ctx.store.find(demo('chat')) as CheckpointEntry;
    await vscode.commands.executeCommand('chatVector.setAsChat', chatEntry);
    await vscode.commands.executeCommand('chatVector.setAsTarget', demo('cp'));
    assert.equal(ctx.roles.get('base'), demo('base'));
    assert.equal(ctx.roles.get('chat'), demo('chat'));
    assert.equal(ctx.roles.get('target'), demo('cp'));
    assert.deepEqual(ctx.context.workspaceState.get('chatVector.roles'), { base: demo('base'), chat: demo('chat'), target: demo('cp') });
    // One role per checkpoint, nothing lost silently: making the chat model the target swaps the
    // two roles, says so, and the rows keep their order (by path, not by role).
    const order = () => (ctx.checkpointsView.getChildren() as Promise<CheckpointEntry[]>).then((l) => l.map((e) => e.path));
    const before = await order();
    await vscode.commands.executeCommand('chatVector.setAsTarget', demo('chat'));
    assert.equal(ctx.roles.get('target'), demo('chat'));
    assert.equal(ctx.roles.get('chat'), demo('cp'));
    assert.equal(ctx.roles.get('base'), demo('base'));
    assert.equal(ctx.roles.lastChange, 'tiny-chat is now Target (was Chat); tiny-cp is now Chat (was Target).');
    assert.deepEqual(await order(), before);
    await vscode.commands.executeCommand('chatVector.setAsChat', demo('chat'));
    assert.deepEqual(ctx.context.workspaceState.get('chatVector.roles'), { base: demo('base'), chat: demo('chat'), target: demo('cp') });
    // The checked item ("Set as Target ✓", on the holder only) clears the role and says so; on
    // another checkpoint it changes nothing.
    await vscode.commands.executeCommand('chatVector.unsetAsTarget', demo('base'));
    assert.equal(ctx.roles.get('target'), demo('cp'));
    await vscode.commands.executeCommand('chatVector.unsetAsTarget', vscode.Uri.file(demo('cp')));
    assert.equal(ctx.roles.get('target'), undefined);
    assert.equal(ctx.roles.lastChange, 'tiny-cp is no longer Target.');
    assert.deepEqual(await order(), before);
    await vscode.commands.executeCommand('chatVector.setAsTarget', demo('cp'));
    assert.deepEqual(ctx.context.workspaceState.get('chatVector.roles'), { base: demo('base'), chat: demo('chat'), target: demo('cp') });
  });

  it('inspects a checkpoint into a read-only Markdown document, opened as its preview', async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    const md = await vscode.commands.executeCommand<string>('chatVector.inspectCheckpoint', demo('base'));
    assert.match(md, /LlamaForCausalLM/);
    // The rendered preview is the active tab, not the Markdown source.
    const tab = await waitFor('the Markdown preview', () => {
      const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
      return input instanceof vscode.TabInputWebview && /markdown\.preview/.test(input.viewType) && input;
    });
    assert.ok(tab);
    assert.ok(!vscode.window.visibleTextEditors.some((e) => e.document.uri.scheme === 'chatvector-inspect'), 'no source editor');
    const doc = await waitFor('the inspect document', () => vscode.workspace.textDocuments.find((d) => d.uri.scheme === 'chatvector-inspect'));
    assert.match(doc.getText(), /model\.layers\.3\.self_attn\.q_proj\.weight/);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it("shows the same deltas in the Layer Deltas tree as `chatvec diff --json`", async () => {
    const c = await vscode.commands.executeCommand<Comparison>('chatVector.compareCheckpoints', { a: demo('base'), b: demo('chat') });
    assert.ok(c, 'the comparison ran');
    const oracle = JSON.parse(cli(['diff', demo('base'), demo('chat'), '--json', '--no-cache', '--quiet'])) as DiffReport;
    const tree = ctx.deltas;
    tree.setSort('order');
    tree.setValueMode('relative');
    assert.equal(ctx.deltaView.description, 'by layer · relative ‖Δ‖/‖A‖', 'the view says its order and measure');
    tree.setSort('magnitude');
    tree.setValueMode('absolute');
    assert.equal(ctx.deltaView.description, 'largest first · absolute ‖Δ‖');
    tree.setSort('order');
    tree.setValueMode('relative');
    const [model] = tree.getChildren();
    assert.ok(model && model.kind === 'model');
    assert.equal(tree.getTreeItem(model).label, 'tiny-base → tiny-chat');
    const groups = tree.getChildren(model) as GroupNode[];
    assert.deepEqual(
      groups.map((g) => g.group.label),
      oracle.groups.map((g) => g.label),
    );
    // A layer's tensor rows in the order the block runs them (the heatmap's columns), norms last.
    const blockOrder = ['q', 'k', 'v', 'o', 'gate', 'up', 'down', 'norm'];
    const layer3 = groups.find((g) => g.kind === 'group' && g.key === 'layer:3') as GroupNode;
    const modules = (tree.getChildren(layer3) as DeltaNode[]).map((t) => (t.kind === 'tensor' ? t.tensor.module : '?'));
    assert.deepEqual(modules, ['q', 'k', 'v', 'o', 'gate', 'up', 'down', 'norm', 'norm'], modules.join(' '));
    assert.ok(modules.every((m, i) => i === 0 || blockOrder.indexOf(modules[i - 1]!) <= blockOrder.indexOf(m)));
    let tensorRows = 0;
    groups.forEach((g, i) => {
      const o = oracle.groups[i]!;
      close(g.group.deltaNorm, o.deltaNorm, `${o.label} ‖Δ‖`);
      close(g.group.relative, o.relative, `${o.label} relative`);
      assert.equal(tree.getTreeItem(g).description, deltaDescription(o.deltaNorm, o.relative, 'relative'), o.label);
      for (const t of tree.getChildren(g) as DeltaNode[]) {
        assert.ok(t.kind === 'tensor');
        const ot = oracle.tensors.find((x) => x.name === t.tensor.name);
        assert.ok(ot, `${t.tensor.name} is in the CLI report`);
        close(t.tensor.deltaNorm, ot.deltaNorm, `${ot.name} ‖Δ‖`);
        assert.equal(tree.getTreeItem(t).description, deltaDescription(ot.deltaNorm, ot.relative, 'relative'), ot.name);
        tensorRows++;
      }
    });
    assert.equal(tensorRows, oracle.tensors.length, 'every tensor has a row');
    // The demo's chat deltas grow with depth, and the tree shows it.
    const layers = groups.filter((g) => g.group.role === 'layer').map((g) => g.group.relative);
    assert.ok(layers.length >= 4 && layers.every((v, i) => i === 0 || v > layers[i - 1]!), `growing: ${layers.join(', ')}`);

    // Sorting by magnitude puts the largest relative change first; the absolute view leads with ‖Δ‖.
    tree.setSort('magnitude');
    const sorted = tree.getChildren(model) as GroupNode[];
    assert.equal(sorted[0]!.group.relative, Math.max(...oracle.groups.map((g) => g.relative)));
    tree.setValueMode('absolute');
    assert.match(String(tree.getTreeItem(sorted[0]!).description), /^‖Δ‖ /);
    tree.setSort('order');
    tree.setValueMode('relative');

    // A second run comes from the task host's cache.
    const again = await vscode.commands.executeCommand<Comparison>('chatVector.refreshDeltas');
    assert.equal(again.report.fromCache, true);
  });

  it('Show Energy at Rank puts each matrix’s and layer’s energy in the tree, as `chatvec energy --json` reports it', async () => {
    await vscode.commands.executeCommand('chatVector.compareCheckpoints', { a: demo('base'), b: demo('chat') });
    const shown = await vscode.commands.executeCommand<EnergyAtRankReport>('chatVector.showEnergyAtRank', 4);
    assert.ok(shown && shown.rank === 4, 'the job ran for rank 4');
    const oracle = JSON.parse(cli(['energy', demo('base'), demo('chat'), '--rank', '4', '--json', '--no-cache', '--quiet'])) as EnergyAtRankReport;
    const tree = ctx.deltas;
    tree.setValueMode('relative');
    const suffix = (energy: number) => ` · energy@4 ${formatPercent(energy)}`;
    const [model] = tree.getChildren();
    assert.ok(String(tree.getTreeItem(model!).description).endsWith(suffix(oracle.total.energy)), String(tree.getTreeItem(model!).description));
    let rows = 0;
    for (const g of tree.getChildren(model) as GroupNode[]) {
      const og = oracle.groups.find((x) => x.label === g.group.label);
      if (og) assert.ok(String(tree.getTreeItem(g).description).endsWith(suffix(og.energy)), `${og.label}: ${String(tree.getTreeItem(g).description)}`);
      for (const t of tree.getChildren(g) as DeltaNode[]) {
        assert.ok(t.kind === 'tensor');
        const om = oracle.matrices.find((m) => m.name === t.tensor.name);
        const d = String(tree.getTreeItem(t).description);
        if (!om) {
          assert.ok(!d.includes('energy@'), `${t.tensor.name} is not a matrix: ${d}`);
          // not coloured on the ‖Δ‖ scale while the tree's colours are the energy's
          assert.equal((tree.getTreeItem(t).iconPath as vscode.ThemeIcon).id, 'circle-outline', `${t.tensor.name}: icon`);
          continue;
        }
        close(shown.matrices.find((m) => m.name === om.name)!.energy, om.energy, `${om.name} energy`);
        assert.ok(d.endsWith(suffix(om.energy)), `${om.name}: ${d}`);
        rows++;
      }
    }
    assert.equal(rows, oracle.matrices.length, 'every matrix row shows its energy');
    assert.equal(ctx.deltaView.description, 'by layer · relative ‖Δ‖/‖A‖ · colour: energy@4', 'the view says its rows are coloured by the energy');
    // Hidden again on request, and by the next comparison.
    await vscode.commands.executeCommand('chatVector.hideEnergy');
    assert.ok(!String(tree.getTreeItem(tree.getChildren()[0]!).description).includes('energy@'));
    assert.equal(ctx.deltaView.description, 'by layer · relative ‖Δ‖/‖A‖');
    await vscode.commands.executeCommand('chatVector.showEnergyAtRank', 4);
    assert.ok(tree.energy, 'shown again (from the cache)');
    assert.equal(tree.energy.report.fromCache, true);
    await vscode.commands.executeCommand('chatVector.refreshDeltas');
    assert.equal(tree.energy, undefined, 'a new comparison clears it');
  });

  it('opens the chart, reveals layers both ways and saves PNG and CSV', async () => {
    await vscode.commands.executeCommand('chatVector.compareCheckpoints', { a: demo('base'), b: demo('chat') });
    await vscode.commands.executeCommand('chatVector.openChart');
    await waitFor('the chart webview to say ready', () => ctx.chart.isReady);
    const data = ctx.chart.shown!;
    assert.equal(data.title, 'tiny-base → tiny-chat');
    assert.deepEqual(
      data.groups.filter((g) => g.layer !== null).map((g) => g.key),
      ['layer:0', 'layer:1', 'layer:2', 'layer:3'],
    );
    assert.ok(data.columns.includes('q') && data.columns.includes('down'), data.columns.join(','));
    // Chart → tree: what a click on a bar sends.
    assert.equal(await vscode.commands.executeCommand('chatVector.revealLayer', 'layer:2'), true);
    const sel = await waitFor('the tree selection', () => ctx.deltaView.selection[0]);
    assert.ok(sel.kind === 'group' && sel.key === 'layer:2');

    // Kept beside the workspace (in e2e-results/ under the harness) as artifacts of the run.
    const csv = vscode.Uri.file(path.join(path.dirname(ws), 'chart-export.csv'));
    await vscode.commands.executeCommand('chatVector.saveChartCsv', csv);
    const lines = fs.readFileSync(csv.fsPath, 'utf8').trim().split('\n');
    assert.match(lines[0]!, /^group,layer,delta_norm,relative,q_delta_norm/);
    assert.equal(lines.length, 1 + data.groups.length);
    const png = vscode.Uri.file(path.join(path.dirname(ws), 'chart-export.png'));
    await vscode.commands.executeCommand('chatVector.saveChartPng', png);
    const bytes = fs.readFileSync(png.fsPath);
    assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG file');
    assert.ok(bytes.length > 2000, `PNG of ${bytes.length} bytes`);
  });

  it('finds the untrained special tokens of the chat template in the target (row statistics from the task host)', async () => {
    const rows = await untrainedSpecialTokens(demo('chat'), ctx.store.find(demo('cp'))!.report!, ctx.host.api);
    assert.deepEqual(
      rows.map((r) => r.token),
      ['<|user|>', '<|assistant|>', '<|eot|>'],
    );
    for (const r of rows) assert.ok(r.rms < 0.02 * r.referenceRms);
  });

  it('applies a chat vector through the command, with the same bytes as the CLI', async () => {
    const out = path.join(ws, 'tiny-cp-chat');
    const oracleOut = path.join(path.dirname(ws), `${path.basename(ws)}-cli-apply`);
    const specialTokens: [number, number][] = [
      [509, 509],
      [510, 510],
      [511, 511],
    ];
    const r = await vscode.commands.executeCommand<JobResult<JobOutcome>>('chatVector.applyChatVector', {
      target: demo('cp'),
      base: demo('base'),
      chats: [demo('chat')],
      ratios: [1],
      out,
      skipEmbed: true,
      specialTokens,
      overwrite: true,
    });
    assert.ok(r && r.status === 'ok', JSON.stringify(r ?? api.errors.at(-1)));
    assert.equal(r.result.out, out);
    cli(['apply', '--target', demo('cp'), '--base', demo('base'), '--chat', demo('chat'), '--ratio', '1', '--out', oracleOut, '--skip-embed', '--special-tokens', '509:509,510:510,511:511', '--overwrite', '--quiet']);
    const files = fs.readdirSync(oracleOut).sort();
    assert.deepEqual(fs.readdirSync(out).sort(), files);
    for (const f of files) assert.ok(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(oracleOut, f))), `${f} is byte-identical to the CLI's`);
    fs.rmSync(oracleOut, { recursive: true, force: true });
    // The output is a chat model: the chat template came along.
    assert.match(fs.readFileSync(path.join(out, 'tokenizer_config.json'), 'utf8'), /chat_template/);
    await waitFor('the Checkpoints view to list the output', () => ctx.store.find(out)?.report);
    // The completion message: plurals right, the backend without nested parentheses, and the
    // job's warnings (if any) quoted with Show Warnings instead of "(1 warning in the log)".
    const done = ctx.jobs.doneMessages.at(-1)!;
    assert.match(done.message, /^Chat vector applied: tiny-cp-chat — \d+ tensors, .* on [^()]+( \(\d+ threads?\))?\.( \d+ warnings?(, the first)?: .+)?$/, done.message);
    assert.doesNotMatch(done.message, /in the log/);
    assert.deepEqual(done.warnings, r.result.warnings);
    assert.equal(/warning/.test(done.message), r.result.warnings.length > 0);
  });

  it('an apply that fails on differing vocabularies is reported once, in the editor\'s words, with a retry', async () => {
    const out = path.join(ws, 'tiny-cp-no-skip');
    const errorsBefore = api.errors.length;
    const r = await vscode.commands.executeCommand('chatVector.applyChatVector', { target: demo('cp'), base: demo('base'), chats: [demo('chat')], ratios: [1], out, skipEmbed: false, overwrite: true });
    assert.equal(r, undefined);
    assert.equal(api.errors.length, errorsBefore + 1, 'one error');
    assert.match(api.errors.at(-1)!.message, /vocabularies differ[\s\S]*--skip-embed/);
    assert.ok(!fs.existsSync(out), 'nothing was written');
  });

  it('the computeBackend setting "gpu" runs apply on a GPU adapter (or falls back, saying so), with the same tensor bytes', async function () {
    this.timeout(120_000);
    const outCpu = path.join(path.dirname(ws), `${path.basename(ws)}-backend-cpu`);
    const outGpu = path.join(path.dirname(ws), `${path.basename(ws)}-backend-gpu`);
    const args = { target: demo('cp'), base: demo('base'), chats: [demo('chat')], ratios: [0.5], skipEmbed: true, overwrite: true };
    const config = vscode.workspace.getConfiguration('chatVector');
    try {
      await config.update('computeBackend', 'cpu', vscode.ConfigurationTarget.Global);
      const cpu = await vscode.commands.executeCommand<JobResult<JobOutcome>>('chatVector.applyChatVector', { ...args, out: outCpu });
      assert.ok(cpu && cpu.status === 'ok', JSON.stringify(cpu ?? api.errors.at(-1)));
      assert.match(cpu.result.backend, /^cpu/);
      await config.update('computeBackend', 'gpu', vscode.ConfigurationTarget.Global);
      const gpu = await vscode.commands.executeCommand<JobResult<JobOutcome>>('chatVector.applyChatVector', { ...args, out: outGpu });
      assert.ok(gpu && gpu.status === 'ok', JSON.stringify(gpu ?? api.errors.at(-1)));
      // CI installs Mesa's software adapter and sets CHATVEC_GPU_TEST=require: there the GPU must
      // run; elsewhere a machine without an adapter falls back to the CPU and the outcome says so.
      if (process.env.CHATVEC_GPU_TEST === 'require') assert.match(gpu.result.backend, /^gpu: /);
      else assert.match(gpu.result.backend, /^(gpu: |cpu)/);
      const meta = JSON.parse(JSON.parse(cli(['inspect', outGpu, '--json'])).shards[0].metadata.chatvec) as { backend?: string };
      assert.equal(meta.backend?.startsWith(gpu.result.backend.startsWith('gpu') ? 'gpu' : 'cpu'), true, JSON.stringify(meta));
      // Same tensors, bit for bit: compare the data after each header.
      const data = (f: string) => {
        const b = fs.readFileSync(f);
        return b.subarray(8 + Number(b.readBigUInt64LE(0)));
      };
      const shards = fs.readdirSync(outCpu).filter((f) => f.endsWith('.safetensors'));
      assert.ok(shards.length > 0);
      for (const f of shards) assert.ok(data(path.join(outGpu, f)).equals(data(path.join(outCpu, f))), `${f}: GPU tensor bytes equal the CPU's`);
    } finally {
      await config.update('computeBackend', undefined, vscode.ConfigurationTarget.Global);
      fs.rmSync(outCpu, { recursive: true, force: true });
      fs.rmSync(outGpu, { recursive: true, force: true });
    }
  });

  it('asks Extract in numbered steps with Back; with Base and Chat set, one confirmation replaces two picks', async () => {
    assert.equal(ctx.roles.get('base'), demo('base'));
    assert.equal(ctx.roles.get('chat'), demo('chat'));
    const running = vscode.commands.executeCommand('chatVector.extractChatVector');
    await waitFor('step 1 of 4 (models, full or low-rank, options, output)', () => api.stepTitle() === 'Extract Chat Vector (1/4)');
    await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    await waitFor('step 2 of 4 (full or low-rank)', () => api.stepTitle() === 'Extract Chat Vector (2/4)');
    // "Low-rank adapter" adds the rank step: five steps.
    await vscode.commands.executeCommand('workbench.action.quickOpenSelectNext');
    await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    await waitFor('step 3 of 5 (rank)', () => api.stepTitle() === 'Extract Chat Vector (3/5)');
    await vscode.commands.executeCommand('workbench.action.quickInputBack');
    await waitFor('Back: step 2 of 5 again', () => api.stepTitle() === 'Extract Chat Vector (2/5)');
    await vscode.commands.executeCommand('workbench.action.quickInputBack');
    await waitFor('Back: step 1 of 5 (the low-rank choice is kept)', () => api.stepTitle() === 'Extract Chat Vector (1/5)');
    // "Other models…" adds the base and chat picks: seven steps.
    await vscode.commands.executeCommand('workbench.action.quickOpenSelectNext');
    await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    await waitFor('step 2 of 7 (base model)', () => api.stepTitle() === 'Extract Chat Vector (2/7)');
    await vscode.commands.executeCommand('workbench.action.closeQuickOpen');
    assert.equal(await running, undefined, 'Escape ends the flow without a job');
    assert.equal(api.stepTitle(), undefined);
  });

  it('a low-rank Extract offers its energy per layer, and shows its own figures in the Layer Deltas tree', async () => {
    const out = path.join(ws, 'tiny-chat-lora-ext');
    const r = await vscode.commands.executeCommand<JobResult<JobOutcome>>('chatVector.extractChatVector', { base: demo('base'), chat: demo('chat'), out, rank: 4, overwrite: true });
    assert.ok(r && r.status === 'ok' && r.result.lowRank, JSON.stringify(r ?? api.errors.at(-1)));
    assert.ok(ctx.jobs.doneMessages.at(-1)!.actions.includes('Show Energy per Layer'), JSON.stringify(ctx.jobs.doneMessages.at(-1)));
    // The figures are the extraction's own, as its report file has them per matrix.
    const written = JSON.parse(fs.readFileSync(path.join(out, 'chatvec_extract.json'), 'utf8')) as { matrices: { tensor: string; norm2: number; captured2: number }[] };
    const byLayer = r.result.lowRank.byLayer;
    assert.equal(byLayer.matrices.length, written.matrices.length);
    for (const m of written.matrices) close(byLayer.matrices.find((x) => x.name === m.tensor)!.energy, m.norm2 > 0 ? m.captured2 / m.norm2 : 1, `${m.tensor} energy`);
    // What the action does (the notification's button cannot be clicked from here).
    await vscode.commands.executeCommand('chatVector.showEnergyAtRank', byLayer);
    const tree = ctx.deltas;
    assert.equal(tree.comparison?.title, 'tiny-base → tiny-chat');
    assert.equal(tree.energy?.report, byLayer);
    const [model] = tree.getChildren();
    assert.ok(String(tree.getTreeItem(model!).description).endsWith(` · energy@4 ${formatPercent(byLayer.total.energy)}`), String(tree.getTreeItem(model!).description));
    await vscode.commands.executeCommand('chatVector.hideEnergy');
    fs.rmSync(out, { recursive: true, force: true });
  });

  it('extracts a chat vector through the command, with the same bytes as the CLI, and measures it alone', async () => {
    const out = path.join(ws, 'tiny-chat-vector-ext');
    const oracleOut = path.join(path.dirname(ws), `${path.basename(ws)}-cli-extract`);
    const r = await vscode.commands.executeCommand<JobResult<JobOutcome>>('chatVector.extractChatVector', { base: demo('base'), chat: demo('chat'), out, overwrite: true });
    assert.ok(r && r.status === 'ok', JSON.stringify(r ?? api.errors.at(-1)));
    cli(['extract', '--base', demo('base'), '--chat', demo('chat'), '--out', oracleOut, '--overwrite', '--quiet']);
    const tensors = fs.readdirSync(oracleOut).filter((f) => f.endsWith('.safetensors'));
    assert.ok(tensors.length > 0);
    for (const f of tensors) assert.ok(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(oracleOut, f))), `${f} is byte-identical to the CLI's`);
    fs.rmSync(oracleOut, { recursive: true, force: true });
    // Discovered as a chat vector, and "Compare" with nothing shows its own magnitudes.
    const entry = await waitFor('the vector in the Checkpoints view', () => ctx.store.find(out)?.report && ctx.store.find(out));
    assert.equal(entry.vector, true);
    const c = await vscode.commands.executeCommand<Comparison>('chatVector.compareCheckpoints', { a: out, b: null });
    assert.ok(c, JSON.stringify(api.errors.at(-1)));
    assert.equal(c.report.b, null);
    assert.equal(c.title, 'tiny-chat-vector-ext (chat vector)');
    const oracle = JSON.parse(cli(['diff', out, '--json', '--no-cache', '--quiet'])) as DiffReport;
    c.groups.forEach((g, i) => close(g.group.deltaNorm, oracle.groups[i]!.deltaNorm, `${g.group.label} ‖τ‖`));
    fs.rmSync(out, { recursive: true, force: true });
  });

  it('creates the demo checkpoints from the command and compares Base with Chat', async () => {
    const dir = path.join(ws, 'more-demo');
    const trio = await vscode.commands.executeCommand<{ base: string; chat: string; cp: string }>('chatVector.createDemoCheckpoints', { dir, preset: 'tiny' });
    assert.ok(trio, JSON.stringify(api.errors.at(-1)));
    assert.equal(ctx.roles.get('base'), trio.base);
    assert.equal(ctx.roles.get('target'), trio.cp);
    assert.equal(ctx.deltas.comparison?.report.a, trio.base);
    assert.ok(ctx.store.find(trio.cp)?.report);
    fs.rmSync(dir, { recursive: true, force: true });
    // Back to the main demo for the tests below.
    await vscode.commands.executeCommand('chatVector.setAsBase', demo('base'));
    await vscode.commands.executeCommand('chatVector.setAsChat', demo('chat'));
    await vscode.commands.executeCommand('chatVector.setAsTarget', demo('cp'));
  });

  describe('job control on a model large enough to take seconds', () => {
    let stress: { base: string; chat: string; cp: string };
    const fixtures = () => path.join(path.dirname(ws), `${path.basename(ws)}-stress`);

    before(() => {
      stress = makeStressTrio(fixtures(), 768);
    });
    after(() => {
      fs.rmSync(fixtures(), { recursive: true, force: true });
    });

    /** Runs an apply of the stress trio and calls `during` at its first progress report. */
    async function applyStress(out: string, during: () => void): Promise<{ r: JobResult<JobOutcome> | undefined; progress: string[] }> {
      const progress: string[] = [];
      let fired = false;
      const sub = ctx.host.api.onProgress((p) => {
        if (p.kind !== 'apply') return;
        progress.push(progressMessage(p));
        if (!fired && p.state === 'running') {
          fired = true;
          during();
        }
      });
      try {
        const r = await vscode.commands.executeCommand<JobResult<JobOutcome> | undefined>('chatVector.applyChatVector', { target: stress.cp, base: stress.base, chats: [stress.chat], out });
        return { r, progress };
      } finally {
        sub.dispose();
      }
    }

    function assertNoOutput(out: string): void {
      assert.ok(!fs.existsSync(out), `${out} must not exist`);
    }

    it('cancel stops the job quickly and leaves no output', async () => {
      const out = path.join(fixtures(), 'cancelled-out');
      let cancelledAt = 0;
      const { r, progress } = await applyStress(out, () => {
        cancelledAt = Date.now();
        const job = ctx.jobs.jobs.find((j) => j.kind === 'apply');
        assert.ok(job, 'the job is listed for Cancel Job');
        void vscode.commands.executeCommand('chatVector.cancelJob', job.id);
      });
      assert.equal(r?.status, 'cancelled', JSON.stringify(r ?? api.errors.at(-1)));
      assert.ok(Date.now() - cancelledAt < 5000, `stopped ${Date.now() - cancelledAt} ms after the cancel`);
      assertNoOutput(out);
      assert.deepEqual(
        listDirSafe(fixtures()).filter((n) => n.startsWith('.cancelled-out')),
        [],
        'the temporary sibling was removed',
      );
      assert.ok(progress.length > 0, 'progress was reported');
      assert.equal(ctx.jobs.jobs.length, 0, 'no job is left running');
    });

    it('a killed task host is reported, and the next request starts a new one', async () => {
      const out = path.join(fixtures(), 'crashed-out');
      const crashesBefore = ctx.host.crashCount;
      const errorsBefore = api.errors.length;
      let pid = 0;
      const crashed = new Promise<void>((resolve) => {
        const d = ctx.host.onDidCrash(() => {
          d.dispose();
          resolve();
        });
      });
      const { r } = await applyStress(out, () => {
        pid = ctx.host.pid!;
        process.kill(pid, 'SIGKILL');
      });
      await crashed;
      assert.equal(r, undefined, 'the command reported a failure');
      assert.equal(ctx.host.crashCount, crashesBefore + 1);
      const err = api.errors.at(-1);
      assert.ok(api.errors.length > errorsBefore && err && /crash/i.test(err.message), JSON.stringify(err));
      assert.match(ctx.host.lastCrash ?? '', /SIGKILL/);
      assertNoOutput(out);
      // Recovered: the next request runs on a new host process.
      const c = await vscode.commands.executeCommand<Comparison>('chatVector.compareCheckpoints', { a: demo('base'), b: demo('chat') });
      assert.ok(c, JSON.stringify(api.errors.at(-1)));
      assert.ok(ctx.host.pid && ctx.host.pid !== pid, `new pid ${ctx.host.pid} vs ${pid}`);
      for (const n of listDirSafe(fixtures())) if (n.startsWith('.crashed-out')) fs.rmSync(path.join(fixtures(), n), { recursive: true, force: true });
    });
  });
});
