/**
 * "Show Energy at Rank…" for the Layer Deltas view: for the compared pair (A = base, B = chat),
 * the task host's `energyAtRank` job measures each matrix's share of ‖τ‖² an optimal rank-R
 * approximation keeps; the tree then shows it beside ‖Δ‖ (description) and colours its rows by it.
 * The colour uses the view's one heat scale on a fixed 0…100 % range, so the same colour means
 * the same share at any rank and in any comparison. Cleared when another comparison is shown.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { EnergyAtRankReport } from '../protocol/taskHost';
import { formatPercent } from '../protocol/displayFormat';
import { parseRankChoice } from '../protocol/rankChoice';
import { readSettings } from './config';
import type { Ctx } from './ctx';
import { EnergyOverlay } from './energyOverlay';

/** The rank the input box proposes. */
export const DEFAULT_ENERGY_RANK = 16;

/** Whole numbers ≥ 1 (extract's rank text, without its `@ energy`); the input box's check. */
export function parseEnergyRank(text: string): number | null {
  const c = parseRankChoice(text);
  return typeof c === 'string' || c.energy !== undefined ? null : c.rank;
}

/** The completion action of a low-rank Extract: its own figures per layer (showEnergyReport). */
export const SHOW_ENERGY_ACTION = 'Show Energy per Layer';

const isEnergyReport = (x: unknown): x is EnergyAtRankReport =>
  typeof x === 'object' && x !== null && typeof (x as EnergyAtRankReport).base === 'string' && typeof (x as EnergyAtRankReport).chat === 'string' && Array.isArray((x as EnergyAtRankReport).matrices);

/**
 * Shows a finished report — `extract --rank`'s, the energy its factors keep — over the comparison
 * of its base and chat (compared first; the diff comes from the task host's cache when it can).
 */
export async function showEnergyReport(ctx: Ctx, report: EnergyAtRankReport): Promise<void> {
  if (!(await ctx.compare(report.base, report.chat))) return;
  ctx.deltas.showEnergy(new EnergyOverlay(report));
}

/**
 * The command: asks for R (default 16; a number argument skips the box), runs the job for the
 * compared pair and shows the result in the tree. Returns the report, or undefined when cancelled.
 * A report as the argument (a low-rank Extract's) is shown as it is.
 */
export async function showEnergyFlow(ctx: Ctx, arg?: unknown): Promise<EnergyAtRankReport | undefined> {
  if (isEnergyReport(arg)) {
    await showEnergyReport(ctx, arg);
    return arg;
  }
  const c = ctx.deltas.comparison;
  if (!c || c.report.b === null) throw new Error('Show Energy at Rank needs a compared pair (base → chat) in the Layer Deltas view: compare two checkpoints first.');
  let rank = typeof arg === 'number' ? arg : null;
  if (rank === null) {
    const text = await vscode.window.showInputBox({
      title: 'Show Energy at Rank',
      prompt: 'Rank R: the share of each matrix’s ‖τ‖² (τ = B − A) an optimal rank-R approximation (the best rank-R LoRA) keeps',
      value: String(DEFAULT_ENERGY_RANK),
      validateInput: (v) => (parseEnergyRank(v) === null ? 'A whole number ≥ 1' : undefined),
    });
    if (text === undefined) return undefined;
    rank = parseEnergyRank(text);
  }
  if (rank === null || !Number.isSafeInteger(rank) || rank < 1) throw new Error(`The rank must be a whole number ≥ 1 (got ${String(arg)}).`);
  const s = readSettings();
  const { a, b } = c.report;
  const r = await ctx.jobs.run(
    'energyAtRank',
    `Energy at rank ${rank}: ${path.basename(a)} → ${path.basename(b)}`,
    { base: a, chat: b, rank, cacheDir: ctx.cacheDir(), ...(s.threads ? { threads: s.threads } : {}), backend: s.computeBackend },
  );
  if (r.status === 'cancelled') return undefined;
  // The comparison may have changed while the job ran: show only what belongs to the current one.
  const now = ctx.deltas.comparison?.report;
  if (now?.a !== a || now?.b !== b) return r.result;
  ctx.deltas.showEnergy(new EnergyOverlay(r.result));
  ctx.log.info(`energy at rank ${rank} ${a} → ${b}: ${formatPercent(r.result.total.energy)} of ‖τ‖²${r.result.fromCache ? ' (cached)' : ''}`);
  return r.result;
}
