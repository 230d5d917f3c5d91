/**
 * Number formats of the chart, the same as the tree's (src/extension/format.ts), which the webview
 * may not import: the layering keeps extension code out of the browser bundle.
 */

export function formatNorm(x: number): string {
  // NaN crosses JSON (the task host's JSON-RPC, `diff --json`) as null.
  if (x === null || x === undefined) return 'n/a';
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'n/a' : x > 0 ? '∞' : '−∞';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-4) return x.toExponential(3);
  return String(Number(x.toPrecision(4)));
}

export function formatPercent(fraction: number): string {
  if (!Number.isFinite(fraction)) return 'n/a';
  const p = fraction * 100;
  if (p === 0) return '0 %';
  const a = Math.abs(p);
  if (a >= 100) return `${p.toFixed(0)} %`;
  if (a >= 10) return `${p.toFixed(1)} %`;
  if (a >= 0.01) return `${p.toFixed(2)} %`;
  return `${p.toExponential(1)} %`;
}
