import type { Command } from 'commander';
import { ChatVecError } from '../../core/errors';
import { userCacheDir } from '../../core/io/files';
import { printable, printableLines, table } from '../../protocol/displayFormat';
import { SWEEP_TABLE_HEADER, sweepPoints, sweepTableRows } from '../../protocol/sweepChart';
import { sweepJob } from '../jobs';
import { parseBackend, parseRatio, parseThreads } from '../options';
import { progressMode } from '../jobCommand';
import { withJobContext } from '../progress';
import { action } from '../run';
import { TRY_BACKEND_HELP, parseTokens } from './eval';
import { parseGgufType } from './gguf';

interface SweepCli {
  target: string;
  base: string;
  chat: string;
  ratios: string;
  evalText?: string;
  evalIds?: string;
  out: string;
  keep?: string;
  context?: string;
  stride?: string;
  type?: string;
  backend?: string;
  threads?: string;
  skipEmbed?: boolean;
  overwrite?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export function registerSweep(program: Command): void {
  program
    .command('sweep')
    .description('apply the chat vector at several ratios and print the perplexity of each merge on a text')
    .requiredOption('--target <dir>', 'the continually-pretrained (CP) model')
    .requiredOption('--base <dir>', 'the base model')
    .requiredOption('--chat <dir>', 'the chat model')
    .requiredOption('--ratios <list>', 'comma-separated ratios, e.g. 0.25,0.5,0.75,1')
    .option('--eval-text <file>', 'the text to score (e.g. in the CP model\'s language)')
    .option('--eval-ids <file>', 'a JSON file of token ids, instead of --eval-text')
    .requiredOption('--out <dir>', 'folder of the merges: <out>/ratio-<r>')
    .option('--keep <which>', 'all (default): keep every merge; best: only the lowest perplexity\'s')
    .option('--context <n>', 'tokens per window (see chatvec eval)')
    .option('--stride <n>', 'tokens each window advances by (see chatvec eval)')
    .option('--type <type>', 'GGUF weight type for the evaluation: f32 | f16 (default) | bf16 | q8_0')
    .option('--backend <kind>', TRY_BACKEND_HELP)
    .option('--threads <n>', 'threads of the merges and of llama.cpp')
    .option('--skip-embed', 'as apply: copy embeddings and LM head from the target')
    .option('--overwrite', 'replace earlier merges in <out>')
    .option('--json', 'print progress and the result as JSON lines')
    .option('--quiet', 'print nothing but the table and errors')
    .action(
      action(async (o: SweepCli) => {
        if ((o.evalText === undefined) === (o.evalIds === undefined)) throw new ChatVecError('InvalidArgument', 'give exactly one of --eval-text FILE and --eval-ids FILE.json');
        if (o.keep !== undefined && o.keep !== 'all' && o.keep !== 'best') throw new ChatVecError('InvalidArgument', `--keep "${o.keep}" is not one of all, best`);
        const mode = progressMode(o);
        const rows = await withJobContext(
          mode,
          (progress) => (l, m) => {
            if (mode !== 'auto' || l === 'debug') return;
            // Each step is logged (info): end the progress line of the step before.
            progress.end();
            process.stderr.write(`${l}: ${printableLines(m)}\n`);
          },
          (ctx) =>
            sweepJob(
              {
                target: o.target, base: o.base, chat: o.chat, ratios: o.ratios.split(',').map((r) => parseRatio(r.trim())), out: o.out, keep: o.keep as 'all' | 'best' | undefined,
                ...(o.evalText !== undefined ? { text: o.evalText } : { ids: o.evalIds }),
                context: parseTokens('--context', o.context), stride: parseTokens('--stride', o.stride), cacheDir: userCacheDir(), type: parseGgufType(o.type),
                backend: parseBackend(o.backend), threads: parseThreads(o.threads), skipEmbed: o.skipEmbed, overwrite: o.overwrite,
              },
              ctx,
            ),
        );
        if (mode === 'json') {
          process.stdout.write(JSON.stringify({ type: 'result', rows: rows.map((r) => ({ ratio: r.ratio, out: r.out, meanNll: r.report.meanNll, perplexity: r.report.perplexity, scored: r.report.scored, best: r.best })) }) + '\n');
          return;
        }
        const r0 = rows[0]!.report;
        const lines = [[...SWEEP_TABLE_HEADER], ...sweepTableRows(sweepPoints(rows), printable)];
        process.stdout.write(`${r0.scored} tokens scored; context ${r0.context}, stride ${r0.stride}; ${r0.backend}\n${table(lines, new Set([1, 2]))}\n`);
      }),
    );
}
