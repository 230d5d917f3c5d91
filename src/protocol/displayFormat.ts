/**
 * The one display format of numbers and text, used by the CLI, the extension (tree, tooltips,
 * messages) and the chart webview alike, so a figure reads the same everywhere. One rule for units:
 * bytes in SI powers of 1000 with three significant digits ("1.23 MB", as disk tools and GB/s are
 * quoted), counts with a letter suffix and no space ("1.10B", as model sizes are named), norms with
 * four significant digits, fractions as percentages, durations as "12.3s" / "1m 05s".
 * Also `printable`, the one escaping of untrusted text (tensor names, metadata, paths).
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

// C0 controls (ESC, CR, BEL, TAB, LF …), DEL, C1 controls (0x9B is a one-byte CSI) and the bidi
// embeddings, overrides and isolates that reorder what is shown ("Trojan Source").
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A string from a checkpoint, recipe or path made safe to show on a terminal or in the editor:
 * each control character (C0 incl. ESC and newline, DEL, C1 0x80–0x9F) and each bidi override or
 * isolate (U+202A–202E, U+2066–2069) becomes a visible escape, `\x1b` or `\u202e`; everything
 * else, backslashes included, is unchanged, so ordinary text and Windows paths read as before.
 * JSON output never goes through this (it must stay exact). Linear time; idempotent.
 */
export function printable(s: string): string {
  return s.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
  });
}

/** Like `printable` for text of several lines: the line breaks stay, all else is escaped. */
export function printableLines(s: string): string {
  return s.split('\n').map(printable).join('\n');
}

/** 1234567 → "1.23 MB" (powers of 1000, as disk sizes and GB/s are quoted). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = Math.abs(n);
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  const s = i === 0 ? String(v) : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return `${n < 0 ? '-' : ''}${s} ${units[i]}`;
}

/** Bytes per second → "412 MB/s"; empty when unknown (0 or less). */
export function formatRate(bytesPerSecond: number): string {
  return bytesPerSecond > 0 ? `${formatBytes(bytesPerSecond)}/s` : '';
}

/** 1100048384 → "1.10B"; 12800 → "12.8K" (parameters, elements). */
export function formatCount(n: number): string {
  const units: [number, string][] = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'K']];
  for (const [v, u] of units) if (Math.abs(n) >= v) return `${(n / v).toFixed(n / v >= 100 ? 0 : n / v >= 10 ? 1 : 2)}${u}`;
  return String(n);
}

/** Seconds → "12.3s" / "1m 05s" / "2h 03m"; "?" when unknown. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  const r = Math.round(s - m * 60);
  if (m < 60) return `${m}m ${String(r).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** The description of a delta row: the chosen measure first, the other in parentheses. */
export function deltaDescription(deltaNorm: number, relative: number, mode: 'relative' | 'absolute'): string {
  return mode === 'relative' ? `${formatPercent(relative)} · ‖Δ‖ ${formatNorm(deltaNorm)}` : `‖Δ‖ ${formatNorm(deltaNorm)} · ${formatPercent(relative)}`;
}

/** A value in [0, 1] as a bar of `width` cells using eighth blocks (terminal tables). */
export function bar(fraction: number, width: number): string {
  const f = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
  const eighths = Math.round(f * width * 8);
  const full = Math.floor(eighths / 8);
  const rest = eighths % 8;
  return '█'.repeat(full) + (rest ? '▏▎▍▌▋▊▉'[rest - 1]! : '') + ' '.repeat(Math.max(0, width - full - (rest ? 1 : 0)));
}

/** Pads a table of strings into aligned columns (right-aligns columns listed in `right`). */
export function table(rows: readonly (readonly string[])[], right: ReadonlySet<number> = new Set()): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length)));
  return rows
    .map((r) => r.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

/**
 * A size as users write it ("5GB", "500 MiB", "2k", "1e9", as transformers' max_shard_size reads
 * it: decimal units are powers of 1000, `…iB` powers of 1024) → whole bytes; undefined when it is
 * not a positive size. The one reader of sizes for the CLI's options and the extension's settings.
 */
export function parseByteSize(s: string): number | undefined {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmgt]i?b?|b)?\s*$/i.exec(s);
  if (!m) return undefined;
  const unit = (m[2] ?? 'b').toLowerCase().replace(/b$/, '');
  const pow = { '': 0, k: 1, m: 2, g: 3, t: 4 }[unit[0] ?? ''] ?? 0;
  const bytes = Math.floor(Number(m[1]) * (unit.endsWith('i') ? 1024 : 1000) ** pow);
  return bytes > 0 && Number.isFinite(bytes) ? bytes : undefined;
}

const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * A number as users type it (a ratio, a weight, a count): "1", "-0.5", ".5", "1e3", surrounding
 * spaces ignored → the finite number; anything else (hex, binary, octal, `Infinity`, empty, a
 * value beyond float64) → null. The one reader of typed numbers for the CLI and the extension.
 */
export function parseDecimal(s: string): number | null {
  const t = s.trim();
  const v = DECIMAL.test(t) ? Number(t) : NaN;
  return Number.isFinite(v) ? v : null;
}

/**
 * The Layer Deltas view's description: its order and measure, e.g. "by layer · relative ‖Δ‖/‖A‖";
 * with energy at rank R shown, also that the rows' colours are that energy ("· colour:
 * energy@16"), which the chart's bars and heatmap do not follow.
 */
export function deltaViewDescription(sort: 'order' | 'magnitude', mode: 'relative' | 'absolute', energyRank?: number): string {
  const measure = `${sort === 'order' ? 'by layer' : 'largest first'} · ${mode === 'relative' ? 'relative ‖Δ‖/‖A‖' : 'absolute ‖Δ‖'}`;
  return energyRank === undefined ? measure : `${measure} · colour: energy@${energyRank}`;
}
