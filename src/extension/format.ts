/**
 * Number formatting for tree rows, tooltips and messages. Kept free of `vscode` so the e2e tests
 * can format the CLI's numbers the same way and compare what users see.
 */

export { formatNorm, formatPercent } from '../protocol/displayFormat';
import { formatNorm, formatPercent } from '../protocol/displayFormat';

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 1 : 2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 1 : 2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(n >= 1e4 ? 1 : 2)} K`;
  return String(n);
}

/** Bytes in SI units, as disk tools show them. */
export function formatBytes(n: number): string {
  if (n >= 1e12) return `${(n / 1e12).toFixed(2)} TB`;
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

export function formatRate(bytesPerSecond: number): string {
  return bytesPerSecond > 0 ? `${formatBytes(bytesPerSecond)}/s` : '';
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '';
  if (s < 1) return '<1 s';
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** The description of a delta row: the chosen measure first, the other in parentheses. */
export function deltaDescription(deltaNorm: number, relative: number, mode: 'relative' | 'absolute'): string {
  return mode === 'relative' ? `${formatPercent(relative)} · ‖Δ‖ ${formatNorm(deltaNorm)}` : `‖Δ‖ ${formatNorm(deltaNorm)} · ${formatPercent(relative)}`;
}
