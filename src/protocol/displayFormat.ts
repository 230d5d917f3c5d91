/**
 * How statistics of the protocol's results are shown, shared by the tree (src/extension) and the
 * chart (webview), which may import nothing else in common: one format, so both read the same.
 */

/** ‖Δ‖ and other norms: 4 significant digits, exponent form only when far from 1. */
export function formatNorm(x: number): string {
  // NaN crosses JSON (the task host's JSON-RPC, `diff --json`) as null.
  if (x === null || x === undefined) return 'n/a';
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'n/a' : x > 0 ? '∞' : '−∞';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-4) return x.toExponential(3);
  return String(Number(x.toPrecision(4)));
}

/** A fraction as a percentage: "2.31 %", "0.052 %", "n/a" when undefined (‖A‖ = 0). */
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
