/** `chatvec diff A [B]`: where two checkpoints differ, layer by layer, as a table with bars. */
import type { Command } from 'commander';
import { ChatVecError } from '../../core/errors';
import { userCacheDir } from '../../core/io/files';
import { join } from '../../core/io/paths';
import type { DeltaStats, DiffOptions, DiffReport, JobContext } from '../../core/jobs/types';
import { prefixOnlyDifference } from '../../core/stats/namePrefix';
import { bar, formatCount, formatDuration, formatNorm, formatPercent, printable, printableLines, table } from '../../protocol/displayFormat';
import { formatVerdict } from '../../protocol/verdictText';
import { BACKEND_HELP, oneOf, parseBackend, parseThreads, positiveInt } from '../options';
import { reportLogPrinter, withJobContext } from '../progress';
import { action } from '../run';

type By = 'layer' | 'module' | 'tensor';
type SortBy = 'order' | 'delta';

interface DiffCliOptions {
  by: string;
  sort: string;
  json?: boolean;
  csv?: boolean;
  top?: string;
  cache: boolean;
  threads?: string;
  backend?: string;
  quiet?: boolean;
}

/** How the command runs its job: cli/jobs.ts diffJob (in process or via the task host), or runDiff itself (cli/diffMain.ts). */
export type DiffJob = (opts: DiffOptions, ctx: JobContext) => Promise<DiffReport>;

/** Adds `diff` to `program`; `diffJob` runs the job (it does not import cli/jobs.ts, so the diff-only start path stays small). */
export function registerDiff(program: Command, diffJob: DiffJob): void {
  program
    .command('diff')
    .description('where two checkpoints differ, layer by layer: ‖Δ‖, relative change, cosine, max/mean |Δ| (Δ = B − A); with one argument, the size of a chat vector')
    .argument('<a>', 'reference checkpoint (e.g. the base model; a folder or a Hugging Face id in the hub cache), or a chat-vector folder alone')
    .argument('[b]', 'the other checkpoint (e.g. the chat model)')
    .option('--by <level>', 'rows: layer | module | tensor', 'layer')
    .option('--sort <key>', 'order (network order) | delta (largest relative change first)', 'order')
    .option('--json', 'print the whole report as JSON (NaN/unknown figures are null)')
    .option('--csv', 'print the rows as CSV')
    .option('--top <n>', 'show only the first N rows (after sorting)')
    .option('--no-cache', 'recompute even when a cached result exists (and store none)')
    .option('--threads <n>', 'worker threads (default: all cores)')
    .option('--backend <kind>', `${BACKEND_HELP}; GPU sums agree with CPU sums within 2^-19 relative, counts exactly`, 'auto')
    .option('--quiet', 'no progress on stderr')
    .action(
      action(async (a: string, b: string | undefined, opts: DiffCliOptions) => {
        const by = oneOf<By>(opts.by, ['layer', 'module', 'tensor'], '--by');
        const sort = oneOf<SortBy>(opts.sort, ['order', 'delta'], '--sort');
        if (opts.json && opts.csv) throw new ChatVecError('InvalidArgument', '--json and --csv exclude each other');
        const top = opts.top === undefined ? undefined : positiveInt(opts.top, '--top');
        const threads = parseThreads(opts.threads);
        const backend = parseBackend(opts.backend);
        // --json keeps stdout one JSON document, so no progress at all (not even JSON lines).
        const report = await withJobContext(
          opts.quiet || opts.json ? 'quiet' : 'auto',
          (progress) => reportLogPrinter(progress, opts.quiet === true),
          (ctx) => diffJob({ a, ...(b !== undefined ? { b } : {}), ...(threads ? { threads } : {}), ...(backend ? { backend } : {}), ...(opts.cache ? { cacheDir: join(userCacheDir(), 'diff') } : {}) }, ctx),
        );
        // `verdict`: the sentence of the text output, for scripts that show it.
        if (opts.json) process.stdout.write(JSON.stringify({ ...report, verdict: formatVerdict(report.lineage) }, null, 2) + '\n');
        else if (opts.csv) process.stdout.write(renderDiffCsv(report, by, sort, top));
        else process.stdout.write(renderDiff(report, by, sort, top));
      }),
    );
}

/** One displayed row: a group, a module kind inside a group, or a tensor. */
export interface DiffRow {
  readonly label: string;
  /** Network position, for --sort order. */
  readonly order: number;
  readonly stats: DeltaStats;
  readonly role: string;
  readonly layer: number | null;
  readonly module: string;
  readonly note?: string;
}

/** The rows for a level, sorted and cut to `top`. */
export function diffRows(r: DiffReport, by: By, sort: SortBy, top?: number): DiffRow[] {
  let rows: DiffRow[];
  if (by === 'layer') {
    rows = r.groups.map((g, i) => ({ label: g.label, order: i, stats: g, role: g.role, layer: g.layer, module: '' }));
  } else if (by === 'module') {
    rows = r.groups.flatMap((g, i) =>
      g.modules.map((m, j) => ({ label: `${g.label} · ${m.module}`, order: i * 100 + j, stats: m, role: g.role, layer: g.layer, module: m.module })),
    );
  } else {
    rows = r.tensors.map((t, i) => ({ label: t.name, order: i, stats: t, role: t.role, layer: t.layer, module: t.module, ...(t.note ? { note: t.note } : {}) }));
  }
  if (sort === 'delta') {
    const key = barMetric(rows);
    rows = [...rows].sort((x, y) => nanLast(key(y.stats)) - nanLast(key(x.stats)) || x.order - y.order);
  }
  return top === undefined ? rows : rows.slice(0, top);
}

function nanLast(x: number): number {
  return Number.isNaN(x) ? -Infinity : x;
}

/** Bars and --sort delta use relative ‖Δ‖ when every row has one, else ‖Δ‖ (chat vector alone). */
function barMetric(rows: readonly DiffRow[]): (s: DeltaStats) => number {
  const relative = rows.length > 0 && rows.every((r) => Number.isFinite(r.stats.relative));
  return relative ? (s) => s.relative : (s) => s.deltaNorm;
}

/**
 * The human-readable report: header, verdict, notes, and a table with an inline bar per row.
 * Names and paths are escaped (`printable`): a tensor name may hold terminal escape sequences.
 */
export function renderDiff(r: DiffReport, by: By, sort: SortBy, top?: number, barWidth = 24): string {
  const vector = r.b === null;
  const lines: string[] = [];
  if (vector) {
    lines.push(`vector  ${printable(r.a)}`);
    lines.push(`base    ${r.base ? printable(r.base) : 'not found (relative figures unknown)'}`);
  } else {
    lines.push(`A  ${printable(r.a)}`, `B  ${printable(r.b ?? '')}`);
  }
  const t = r.total;
  lines.push(`verdict  ${printable(formatVerdict(r.lineage))}`);
  lines.push(
    `total    ‖Δ‖ ${formatNorm(t.deltaNorm)}   ‖A‖ ${formatNorm(t.normA)}   relative ${formatPercent(t.relative)}   cosine ${fmtCos(t.cosine)}   max|Δ| ${formatNorm(t.maxAbsDelta)}   changed ${formatPercent(t.changedFraction)}   ${formatCount(t.elements)} elements in ${r.tensors.length} tensors`,
  );
  const sideA = vector ? 'only in the vector' : 'only in A';
  const sideB = vector ? 'only in the base' : 'only in B';
  if (r.onlyInA.length) lines.push(`note     ${plural(r.onlyInA.length, 'tensor')} ${sideA}: ${listNames(r.onlyInA)}`);
  if (r.onlyInB.length) lines.push(`note     ${plural(r.onlyInB.length, 'tensor')} ${sideB}: ${listNames(r.onlyInB)}`);
  const renamed = prefixOnlyDifference(r.onlyInA, r.onlyInB);
  if (renamed) lines.push(`note     the names differ only by the prefix "${printable(renamed.prefix)}" on the ${renamed.on} side: the same tensors under another layout, so nothing of them was compared`);
  for (const m of r.shapeMismatches) {
    const td = r.tensors.find((x) => x.name === m.name);
    lines.push(`note     ${printable(m.name)}: ${td?.note !== undefined ? printable(td.note) : `shapes [${m.shapeA.join(', ')}] vs [${m.shapeB.join(', ')}]: not compared`}`);
  }
  const skipped = (r.skipped ?? []).filter((s) => !r.shapeMismatches.some((m) => m.name === s.name));
  if (skipped.length) lines.push(`note     ${plural(skipped.length, 'tensor')} not compared: ${listNames(skipped.map((s) => `${s.name} (${s.reason})`))}`);
  if (t.nonFinite > 0) {
    const holding = r.tensors.filter((x) => x.nonFinite > 0);
    lines.push(`note     ${plural(t.nonFinite, 'NaN/Inf value')} in ${plural(holding.length, 'tensor')}, left out of the sums: ${listNames(holding.map((x) => `${x.name} (${x.nonFinite})`))}`);
  }
  if (r.fromCache) lines.push('note     from the cache (--no-cache recomputes)');

  const rows = diffRows(r, by, sort, top);
  if (rows.length === 0) return printableLines(lines.join('\n')) + '\n';
  const metric = barMetric(rows);
  const usesRelative = rows.every((x) => Number.isFinite(x.stats.relative));
  const full = Math.max(0, ...rows.map((x) => nanLast(metric(x.stats))));
  // Positions where A or B is NaN/±Inf, per row: a column only when some row has any.
  const nonFinite = rows.some((x) => x.stats.nonFinite > 0);
  const header = [by === 'tensor' ? 'tensor' : by === 'module' ? 'module' : 'group', '‖Δ‖', '‖A‖', 'rel ‖Δ‖', 'cosine', 'max|Δ|', 'mean|Δ|', 'changed', ...(nonFinite ? ['NaN/Inf'] : []), usesRelative ? 'relative ‖Δ‖' : '‖Δ‖'];
  const body = rows.map((x) => {
    const s = x.stats;
    return [
      printable(x.label) + (x.note ? ' *' : ''),
      formatNorm(s.deltaNorm),
      formatNorm(s.normA),
      formatPercent(s.relative),
      fmtCos(s.cosine),
      formatNorm(s.maxAbsDelta),
      formatNorm(s.meanAbsDelta),
      formatPercent(s.changedFraction),
      ...(nonFinite ? [String(s.nonFinite)] : []),
      bar(full > 0 ? nanLast(metric(s)) / full : 0, barWidth),
    ];
  });
  lines.push('', ...table([header, ...body], new Set([1, 2, 3, 4, 5, 6, 7, ...(nonFinite ? [8] : [])])).split('\n').map((l) => `  ${l}`));
  lines.push(`  bar: ${usesRelative ? 'relative ‖Δ‖' : '‖Δ‖'}, full width = ${usesRelative ? formatPercent(full) : formatNorm(full)}${rows.some((x) => x.note) ? '   * only the shared rows were compared' : ''}`);
  if (top !== undefined) lines.push(`  (first ${rows.length} rows${sort === 'delta' ? ' by change' : ''}; --top to change)`);
  lines.push(`  ${r.fromCache ? 'cached result' : `scanned in ${formatDuration(r.seconds)}`}`);
  // Every field above that comes from the files is escaped; this pass makes sure nothing else slips through.
  return printableLines(lines.join('\n')) + '\n';
}

function fmtCos(c: number): string {
  return Number.isNaN(c) ? 'n/a' : c.toFixed(5);
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

function listNames(names: readonly string[], max = 4): string {
  return names.slice(0, max).map(printable).join(', ') + (names.length > max ? `, … (${names.length - max} more)` : '');
}

const CSV_COLUMNS = ['level', 'name', 'role', 'layer', 'module', 'elements', 'delta_norm', 'norm_a', 'norm_b', 'relative', 'cosine', 'max_abs_delta', 'mean_abs_delta', 'changed_fraction', 'non_finite', 'note'];

/** CSV of the rows (full precision; unknown figures are empty fields). */
export function renderDiffCsv(r: DiffReport, by: By, sort: SortBy, top?: number): string {
  const num = (x: number) => (Number.isFinite(x) ? String(x) : '');
  const lines = [CSV_COLUMNS.join(',')];
  for (const x of diffRows(r, by, sort, top)) {
    const s = x.stats;
    lines.push(
      [by, x.label, x.role, x.layer === null ? '' : String(x.layer), x.module, String(s.elements), num(s.deltaNorm), num(s.normA), num(s.normB), num(s.relative), num(s.cosine), num(s.maxAbsDelta), num(s.meanAbsDelta), num(s.changedFraction), String(s.nonFinite), x.note ?? '']
        .map(csvField)
        .join(','),
    );
  }
  return lines.join('\n') + '\n';
}

function csvField(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}
