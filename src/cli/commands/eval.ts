import type { Command } from 'commander';
import { ChatVecError } from '../../core/errors';
import { userCacheDir } from '../../core/io/files';
import type { EvalOptions, EvalReport } from '../../core/tryit/evaluate';
import { evalDifference, formatEvalComparison, formatEvalReport } from '../../protocol/evalText';
import { printableLines } from '../../protocol/displayFormat';
import { evalJob } from '../jobs';
import { parseBackend, parseThreads } from '../options';
import { progressMode } from '../jobCommand';
import { withJobContext } from '../progress';
import { action } from '../run';
import { parseGgufType } from './gguf';

interface EvalCli {
  text?: string;
  ids?: string;
  context?: string;
  stride?: string;
  compare?: string;
  type?: string;
  backend?: string;
  threads?: string;
  json?: boolean;
  quiet?: boolean;
}

/** `--context` / `--stride`: a whole number ≥ 1 (the window rules are checked by the evaluation). */
export function parseTokens(what: string, s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const v = /^\s*\d+\s*$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(v) || v < 1) throw new ChatVecError('InvalidArgument', `${what} "${s}" must be a whole number of tokens ≥ 1`);
  return v;
}

export const TRY_BACKEND_HELP = 'where llama.cpp runs: auto (a GPU build when one loads and finds a device, else the CPU; default), cpu, or gpu (an error when no GPU build loads)';

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('mean negative log-likelihood and perplexity of a model on a text, in llama.cpp (sliding windows as in Hugging Face\'s perplexity guide)')
    .argument('<model>', 'a checkpoint folder (converted to GGUF into the cache once per content) or a .gguf file')
    .option('--text <file>', 'a UTF-8 text file, tokenized by the model (with its BOS token)')
    .option('--ids <file>', 'a JSON file of token ids ([1, 2, …] or {"ids": […]}), instead of --text')
    .option('--context <n>', 'tokens per window (default: the training context, at most 1024)')
    .option('--stride <n>', 'tokens each window advances by; only the new ones are scored (default: context / 2)')
    .option('--compare <model>', 'evaluate this model too and print B − A (e.g. the CP model as A, the merge as B)')
    .option('--type <type>', 'weight type when converting a checkpoint: f32 | f16 (default) | bf16 | q8_0')
    .option('--backend <kind>', TRY_BACKEND_HELP)
    .option('--threads <n>', 'llama.cpp threads (default and most: the cores)')
    .option('--json', 'print progress and the result, with per-token NLLs, as JSON lines')
    .option('--quiet', 'print nothing but the result and errors')
    .action(
      action(async (model: string, o: EvalCli) => {
        if ((o.text === undefined) === (o.ids === undefined)) throw new ChatVecError('InvalidArgument', 'give exactly one of --text FILE and --ids FILE.json');
        const base: Omit<EvalOptions, 'model'> = {
          ...(o.text !== undefined ? { text: o.text } : {}),
          ...(o.ids !== undefined ? { ids: o.ids } : {}),
          context: parseTokens('--context', o.context),
          stride: parseTokens('--stride', o.stride),
          cacheDir: userCacheDir(),
          type: parseGgufType(o.type),
          backend: parseBackend(o.backend),
          threads: parseThreads(o.threads),
        };
        const mode = progressMode(o);
        const reports: EvalReport[] = [];
        const showLog = (level: string) => mode !== 'json' && (level !== 'debug' || process.env.CHATVEC_DEBUG !== undefined) && (mode !== 'quiet' || level !== 'info');
        for (const m of o.compare !== undefined ? [model, o.compare] : [model]) {
          reports.push(await withJobContext(mode, () => (l, msg) => showLog(l) && process.stderr.write(`${l}: ${printableLines(msg)}\n`), (ctx) => evalJob({ ...base, model: m }, ctx)));
        }
        const [a, b] = reports as [EvalReport, EvalReport | undefined];
        if (mode === 'json') {
          process.stdout.write(JSON.stringify(b ? { type: 'result', a, b, difference: evalDifference(a, b) } : { type: 'result', ...a }) + '\n');
          return;
        }
        process.stdout.write((b ? `${formatEvalReport(a)}\n${formatEvalReport(b)}\n\n${formatEvalComparison(a, b)}` : formatEvalReport(a)) + '\n');
      }),
    );
}
