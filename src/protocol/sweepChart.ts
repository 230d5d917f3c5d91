/**
 * The ratio sweep as the editor shows it: the table (the same columns as `chatvec sweep` prints)
 * and the chart of perplexity against ratio drawn by the chart webview (webview/main.ts). Pure:
 * both the extension and the webview import it, and the tests check the numbers and the points.
 */
import type { SweepRow } from '../core/tryit/sweep';
import { niceTicks } from './chartAxis';
import { formatNll, formatPerplexity } from './evalText';

/** One measured ratio. */
export interface SweepPoint {
  readonly ratio: number;
  readonly meanNll: number;
  readonly perplexity: number;
  /** The merge's folder; null when removed (keep best). */
  readonly out: string | null;
  /** The lowest mean NLL of the sweep (the first of equals). */
  readonly best: boolean;
}

/** What the sweep panel shows; sizes are O(ratios). */
export interface SweepChartData {
  readonly title: string;
  /** The text (or ids file) scored. */
  readonly text: string;
  /** The folder of the merges. */
  readonly out: string;
  readonly context: number;
  readonly stride: number;
  readonly scored: number;
  readonly backend: string;
  readonly points: readonly SweepPoint[];
}

/**
 * The chart's data from the sweep job's rows (in the order of the ratios asked for).
 * @throws Error when there are no rows (a finished sweep has at least one)
 */
export function sweepChartData(rows: readonly SweepRow[], o: { title: string; text: string; out: string }): SweepChartData {
  const first = rows[0];
  if (!first) throw new Error('a sweep without ratios has nothing to show');
  return { ...o, context: first.report.context, stride: first.report.stride, scored: first.report.scored, backend: first.report.backend, points: sweepPoints(rows) };
}

/** The rows as points (`best` as the sweep marked it). */
export function sweepPoints(rows: readonly SweepRow[]): SweepPoint[] {
  return rows.map((r) => ({ ratio: r.ratio, meanNll: r.report.meanNll, perplexity: r.report.perplexity, out: r.out, best: r.best }));
}

/** The table's columns, as `chatvec sweep` prints them. */
export const SWEEP_TABLE_HEADER = ['ratio', 'mean NLL', 'perplexity', 'merge'] as const;

/** One row per point: ratio, mean NLL, perplexity, the merge's folder ("(removed)" when gone) and "← lowest" on the best. */
export function sweepTableRows(points: readonly SweepPoint[], name: (out: string) => string = (p) => p): string[][] {
  return points.map((p) => [String(p.ratio), formatNll(p.meanNll), formatPerplexity(p.perplexity), `${p.out === null ? '(removed)' : name(p.out)}${p.best ? '  ← lowest' : ''}`]);
}

/** Where the chart draws: pixels from the top left of its SVG. */
export interface SweepPlot {
  readonly points: readonly { readonly x: number; readonly y: number }[];
  /** Value-axis ticks at round perplexities (chartAxis.ts niceTicks, from 0). */
  readonly yTicks: readonly { readonly value: number; readonly y: number }[];
  /** One tick per ratio measured. */
  readonly xTicks: readonly { readonly value: number; readonly x: number }[];
}

/**
 * Points of perplexity against ratio in a `width` × `height` box less its margins: ratios spread
 * linearly from the smallest (left edge) to the largest (right edge), a single ratio in the middle;
 * perplexity from 0 (bottom) to the top tick.
 */
export function sweepPlot(points: readonly SweepPoint[], width: number, height: number, m: { left: number; right: number; top: number; bottom: number }): SweepPlot {
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const ratios = points.map((p) => p.ratio);
  const lo = Math.min(...ratios);
  const hi = Math.max(...ratios);
  const x = (r: number) => m.left + (hi > lo ? ((r - lo) / (hi - lo)) * plotW : plotW / 2);
  const ticks = niceTicks(Math.max(0, ...points.map((p) => p.perplexity)), 4);
  const top = ticks.at(-1)!;
  const y = (v: number) => m.top + plotH - (top > 0 ? (plotH * v) / top : 0);
  return {
    points: points.map((p) => ({ x: x(p.ratio), y: y(p.perplexity) })),
    yTicks: ticks.map((value) => ({ value, y: y(value) })),
    xTicks: [...new Set(ratios)].sort((a, b) => a - b).map((value) => ({ value, x: x(value) })),
  };
}

/** What the sweep page keeps with `setState`, handed back by the panel serializer after a reload. */
export interface SweepPanelState {
  readonly sweep: SweepChartData;
}

/**
 * The sweep a restored panel shows again, or undefined when the saved state is not one (another
 * version's, or damaged): the page's state is not trusted, each field is checked.
 */
export function restoredSweep(s: unknown): SweepChartData | undefined {
  const d = (s as Partial<SweepPanelState> | null)?.sweep as Partial<SweepChartData> | undefined;
  if (typeof d !== 'object' || d === null) return undefined;
  const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  const isPoint = (p: unknown): p is SweepPoint => {
    const q = p as Partial<SweepPoint> | null;
    return num(q?.ratio) && num(q.meanNll) && num(q.perplexity) && (q.out === null || typeof q.out === 'string') && typeof q.best === 'boolean';
  };
  if (![d.title, d.text, d.out, d.backend].every((x) => typeof x === 'string') || ![d.context, d.stride, d.scored].every(num)) return undefined;
  if (!Array.isArray(d.points) || d.points.length === 0 || !d.points.every(isPoint)) return undefined;
  return d as SweepChartData;
}
