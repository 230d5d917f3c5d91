/**
 * `chatvec energy BASE CHAT --rank R`: how low-rank a fine-tune is — per layer (or matrix) the
 * share of ‖τ‖², τ = chat − base, that an optimal rank-R approximation keeps, i.e. what a rank-R
 * LoRA (`extract --rank R`) could at best hold.
 */
import type { Command } from 'commander';
import { ChatVecError } from '../../core/errors';
import { userCacheDir } from '../../core/io/files';
import { join } from '../../core/io/paths';
import type { EnergyAtRankReport, EnergyFigures } from '../../core/jobs/types';
import { bar, formatDuration, formatNorm, formatPercent, parseDecimal, printable, printableLines, table } from '../../protocol/displayFormat';
import { energyJob } from '../jobs';
import { BACKEND_HELP, oneOf, parseBackend, parseThreads } from '../options';
import { reportLogPrinter, withJobContext } from '../progress';
import { action } from '../run';

interface EnergyCliOptions {
  rank: string;
  by: string;
  json?: boolean;
  skipEmbed?: boolean;
  cache: boolean;
  threads?: string;
  backend?: string;
  quiet?: boolean;
}

export function registerEnergy(program: Command): void {
  program
    .command('energy')
    .description('how low-rank a fine-tune is: per layer, the share of ‖τ‖² (τ = chat − base) an optimal rank-R approximation keeps — what a rank-R LoRA could at best hold')
    .argument('<base>', 'the base checkpoint (a folder or a Hugging Face id in the hub cache)')
    .argument('<chat>', 'the fine-tuned checkpoint')
    .option('--rank <r>', 'the rank R (capped per matrix at min(rows, cols))', '16')
    .option('--by <level>', 'rows: layer | tensor', 'layer')
    .option('--json', 'print the whole report as JSON')
    .option('--skip-embed', 'leave token embeddings and LM heads out (vocabularies may differ)')
    .option('--no-cache', 'recompute even when a cached result exists (and store none)')
    .option('--threads <n>', 'worker threads (default: all cores)')
    .option('--backend <kind>', `${BACKEND_HELP}; the GEMMs of the estimate run there`, 'auto')
    .option('--quiet', 'no progress on stderr')
    .action(
      action(async (base: string, chat: string, opts: EnergyCliOptions) => {
        const rank = parseDecimal(opts.rank) ?? NaN;
        if (!Number.isInteger(rank) || rank < 1) throw new ChatVecError('InvalidArgument', `--rank must be a whole number ≥ 1 (got "${opts.rank}")`);
        const by = oneOf(opts.by, ['layer', 'tensor'] as const, '--by');
        const threads = parseThreads(opts.threads);
        const backend = parseBackend(opts.backend);
        const report = await withJobContext(
          opts.quiet || opts.json ? 'quiet' : 'auto',
          (progress) => reportLogPrinter(progress, opts.quiet === true),
          (ctx) => energyJob({ base, chat, rank, ...(opts.skipEmbed ? { skipEmbed: true } : {}), ...(threads ? { threads } : {}), ...(backend ? { backend } : {}), ...(opts.cache ? { cacheDir: join(userCacheDir(), 'energy') } : {}) }, ctx),
        );
        process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : renderEnergy(report, by));
      }),
    );
}

/** The text report: header, total, and one row per layer (or matrix) with a bar of the energy. Names are escaped. */
export function renderEnergy(r: EnergyAtRankReport, by: 'layer' | 'tensor', barWidth = 24): string {
  const head = `energy@${r.rank}`;
  const lines = [
    `base   ${printable(r.base)}`,
    `chat   ${printable(r.chat)}`,
    `total  ${head} ${formatPercent(r.total.energy)} of ‖τ‖² (‖τ‖ ${formatNorm(Math.sqrt(r.total.norm2))}) in ${r.matrices.length} matrices; each figure at most ${formatPercent(r.tolerance)} below the exact one, never above`,
  ];
  if (r.notMatrices > 0) lines.push(`note   ${r.notMatrices} 1-D tensors (norms, biases) are not matrices: left out`);
  const rows: [string, EnergyFigures][] = by === 'layer' ? r.groups.map((g) => [g.label, g]) : r.matrices.map((m) => [m.name, m]);
  const body = rows.map(([label, f]) => [printable(label), formatNorm(Math.sqrt(f.norm2)), formatPercent(f.energy), bar(f.energy, barWidth)]);
  lines.push('', ...table([[by === 'layer' ? 'group' : 'tensor', '‖τ‖', head, head], ...body], new Set([1, 2])).split('\n').map((l) => `  ${l}`));
  lines.push(`  bar: ${head}, full width = 100 %`, `  ${r.fromCache ? 'cached result (--no-cache recomputes)' : `computed in ${formatDuration(r.seconds)} (${r.backend})`}`);
  return printableLines(lines.join('\n')) + '\n';
}
