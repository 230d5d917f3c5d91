/**
 * Sweep Ratios…: the task host's `sweep` job (an apply and an evaluation per ratio, progress that
 * names the ratio, Cancel) from the editor: target, base and chat (the roles of the Checkpoints
 * view in one choice, or picked as Apply picks them), the ratios, the text, the windows, the
 * output folder and what to keep; then the chart of perplexity against ratio with the table.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { type SweepChartData, sweepChartData } from '../protocol/sweepChart';
import type { SweepOptions, SweepRow } from '../protocol/taskHost';
import { readSettings } from './config';
import type { Ctx } from './ctx';
import { openFolder } from './flows';
import { askOutput, confirmOverwrite, inspectOf, isObj, parseRatios, pickCheckpoint, siblingPath, skipDefault, vocabReason } from './flowSteps';
import { evalCommon, pickTextFile, pickWindows } from './perplexity';
import { SweepPanel } from './sweepPanel';

/** What the command takes as an argument (tests, keybindings); the settings add backend and threads. */
export type SweepArgs = Pick<SweepOptions, 'target' | 'base' | 'chat' | 'ratios' | 'text' | 'out' | 'keep' | 'context' | 'stride' | 'skipEmbed' | 'overwrite'>;
const isSweepArgs = (x: unknown): x is SweepArgs => isObj(x) && typeof x.target === 'string' && typeof x.out === 'string' && Array.isArray(x.ratios);

/** The command's result: the rows and the chart's data, or, when cancelled, the merges that stayed. */
export type SweepResult = { readonly status: 'ok'; readonly rows: readonly SweepRow[]; readonly chart: SweepChartData } | { readonly status: 'cancelled'; readonly kept: readonly string[] };

/** The ratios the paper's comparison needs, and two between. */
export const DEFAULT_SWEEP_RATIOS = '0.25, 0.5, 0.75, 1';

let panel: SweepPanel | undefined;
/** The one sweep panel; created at activation too, so that its serializer can restore it after a reload. */
export function sweepPanel(ctx: Pick<Ctx, 'context' | 'log'>): SweepPanel {
  if (!panel) {
    panel = new SweepPanel(ctx.context.extensionUri, ctx.log, openFolder);
    const p = panel;
    ctx.context.subscriptions.push({ dispose: () => (p.dispose(), panel === p && (panel = undefined)) });
  }
  return panel;
}

/** Target, base and chat: the three roles in one choice when all are set, else three picks. */
async function pickTrio(ctx: Ctx, title: string): Promise<{ target: string; base: string; chat: string } | undefined> {
  const [target, base, chat] = [ctx.roles.get('target'), ctx.roles.get('base'), ctx.roles.get('chat')];
  if (target && base && chat) {
    const items = [
      { label: `$(merge) ${path.basename(target)} + r · (${path.basename(chat)} − ${path.basename(base)})`, detail: 'Target, Base and Chat of the Checkpoints view', roles: true },
      { label: '$(list-selection) Other models…', detail: 'pick the target, the base and the chat model', roles: false },
    ];
    const pick = await vscode.window.showQuickPick(items, { title, placeHolder: 'The merges θ_target + r·(θ_chat − θ_base)', ignoreFocusOut: true });
    if (!pick) return undefined;
    if (pick.roles) return { target, base, chat };
  }
  const t = await pickCheckpoint(ctx, { title, placeHolder: 'Target: the continually-pretrained model', prefer: 'target' });
  if (!t) return undefined;
  const b = await pickCheckpoint(ctx, { title, placeHolder: 'Base model (the chat model was fine-tuned from it)', prefer: 'base', exclude: [t] });
  if (!b) return undefined;
  const c = await pickCheckpoint(ctx, { title, placeHolder: 'Chat model (fine-tuned from the base)', prefer: 'chat', exclude: [t, b] });
  return c ? { target: t, base: b, chat: c } : undefined;
}

/** The questions of the command; undefined when the user left. */
async function askSweep(ctx: Ctx): Promise<SweepArgs | undefined> {
  const title = 'Sweep Ratios';
  const trio = await pickTrio(ctx, title);
  if (!trio) return undefined;
  const ratioText = await vscode.window.showInputBox({
    title,
    prompt: 'Ratios r, comma-separated: one merge θ_target + r·τ and one evaluation each',
    value: DEFAULT_SWEEP_RATIOS,
    ignoreFocusOut: true,
    validateInput: (v) => {
      const rs = parseRatios(v);
      if (!rs) return 'Enter numbers separated by commas, e.g. 0.25, 0.5, 0.75, 1.';
      return new Set(rs).size === rs.length ? undefined : 'A ratio is listed twice.';
    },
  });
  if (ratioText === undefined) return undefined;
  const text = await pickTextFile(title);
  if (!text) return undefined;
  const windows = await pickWindows(title);
  if (!windows) return undefined;
  const out = await askOutput(title, siblingPath(trio.target, '-sweep'));
  if (!out) return undefined;
  const keepPick = await vscode.window.showQuickPick(
    [
      { label: 'Keep every merge', detail: 'one folder per ratio: ratio-0.25, ratio-0.5 …', keep: 'all' as const },
      { label: 'Keep only the best merge', detail: 'the lowest perplexity; the others are removed at the end', keep: 'best' as const },
    ],
    { title, placeHolder: 'Which merges stay in the output folder', ignoreFocusOut: true },
  );
  if (!keepPick) return undefined;
  const overwrite = await confirmOverwrite(out.trim());
  if (overwrite === undefined) return undefined;
  // As Apply: embeddings skipped when the vocabularies differ (the setting decides).
  const [t, c] = await Promise.all([inspectOf(ctx, trio.target), inspectOf(ctx, trio.chat)]);
  const skipEmbed = skipDefault(readSettings(), vocabReason(t, c, 'chat'));
  return { ...trio, ratios: parseRatios(ratioText)!, text, ...windows, out: out.trim(), keep: keepPick.keep, skipEmbed, overwrite };
}

/** The command. Cancel removes the merge under way; the merges already measured stay and are named. */
export async function sweepRatiosFlow(ctx: Ctx, arg?: unknown): Promise<SweepResult | undefined> {
  const a = isSweepArgs(arg) ? arg : await askSweep(ctx);
  if (!a) return undefined;
  const options: SweepOptions = { ...a, ratios: [...a.ratios], ...evalCommon(ctx) };
  const r = await ctx.jobs.run('sweep', `Sweeping ratios ${a.ratios.join(', ')} of ${path.basename(a.target)}`, options);
  ctx.store.scheduleRefresh(0);
  if (r.status === 'cancelled') {
    const kept = fs.existsSync(a.out) ? fs.readdirSync(a.out).filter((n) => !n.startsWith('.')).sort() : [];
    ctx.log.info(`sweep cancelled; ${kept.length ? `finished merges in ${a.out}: ${kept.join(', ')}` : 'no merge finished'}`);
    void vscode.window.showInformationMessage(kept.length ? `Sweep cancelled. Finished merges stay in ${path.basename(a.out)}: ${kept.join(', ')}.` : 'Sweep cancelled. No merge had finished; nothing was left behind.');
    return { status: 'cancelled', kept };
  }
  const rows = r.result;
  const chart = sweepChartData(rows, { title: `Ratio sweep of ${path.basename(a.target)}`, text: path.basename(a.text ?? ''), out: a.out });
  for (const row of rows) ctx.log.info(`sweep ratio ${row.ratio}: mean NLL ${row.report.meanNll}, perplexity ${row.report.perplexity} → ${row.out ?? '(removed)'}`);
  sweepPanel(ctx).show(chart);
  const best = chart.points.find((p) => p.best)!;
  void ctx.jobs.showDone(`Sweep done: ratio ${best.ratio} has the lowest perplexity.`, rows.flatMap((x) => x.report.warnings), best.out ? ['Reveal Best Merge'] : []).then((pick) => {
    if (pick && best.out) void openFolder(best.out);
  });
  return { status: 'ok', rows, chart };
}

/** The sweep panel's data (for the tests), undefined before the first sweep. */
export function shownSweep(): SweepChartData | undefined {
  return panel?.shown;
}
