/** `chatvec merge RECIPE --out DIR [--dry-run]`: run a mergekit-compatible YAML recipe. */
import type { Command } from 'commander';
import { threadCount } from '../../core/jobs/threadLimit';
import { formatIssue } from '../../core/recipes/recipe';
import { loadRecipeFileAll, summarizeRecipeFile } from '../../core/recipes/multiRecipe';
import { summarizePlan } from '../../core/recipes/summary';
import { formatRecipeFilePlan } from '../../protocol/multiPlanText';
import { methodList } from '../../core/recipes/methods/registry';
import { formatPlanSummary } from '../../protocol/planText';
import { ChatVecError } from '../../core/errors';
import { printableLines } from '../../protocol/displayFormat';
import { mergeJob } from '../jobs';
import { parseShardSize, parseThreads } from '../options';
import { progressMode, runOutputCommand } from '../jobCommand';
import { action } from '../run';
import { fetchModels } from '../fetchModels';
import { TOKEN_HELP } from './download';
import { missingRecipeModelIds } from '../../core/recipes/missingModels';
import { readSmallText } from '../../core/io/sideFile';
import { dirname, resolve } from '../../core/io/paths';

interface MergeCli {
  out?: string;
  dryRun?: boolean;
  overwrite?: boolean;
  allowNonFinite?: boolean;
  threads?: string;
  maxShardSize?: string;
  verbose?: boolean;
  json?: boolean;
  quiet?: boolean;
  intermediateDir?: string;
  download?: boolean;
  token?: string;
}

/** The Hugging Face ids of the recipe that are not in the cache (none when the file is unreadable: the load says why). */
function missingIds(recipePath: string): string[] {
  let text: string;
  try {
    text = readSmallText(resolve(recipePath), 'recipe');
  } catch {
    return [];
  }
  return missingRecipeModelIds(text, dirname(resolve(recipePath)));
}

/**
 * Loads the recipe; when it fails and ids are missing from the cache, the error ends with how to
 * fetch them all at once (each id's own line names `chatvec download ID`).
 */
function loadOrHint(recipePath: string, intermediateDir: string | undefined): ReturnType<typeof loadRecipeFileAll> {
  try {
    return loadRecipeFileAll(recipePath, { cwd: process.cwd(), intermediateDir });
  } catch (e) {
    if (!(e instanceof ChatVecError)) throw e;
    const missing = missingIds(recipePath);
    if (!missing.length) throw e;
    const n = missing.length === 1 ? 'the model' : `the ${missing.length} models`;
    throw new ChatVecError(e.code, `${e.message}\nrun the merge with --download to fetch ${n} missing from the Hugging Face cache first (${missing.join(', ')})`, e.details);
  }
}

export function registerMerge(program: Command): void {
  program
    .command('merge')
    .description(`run a merge recipe (mergekit YAML: ${methodList()})`)
    .argument('<recipe>', 'the recipe file (.yaml); model paths in it are relative to its folder')
    .option('--out <dir>', 'output folder (required unless --dry-run)')
    .option('--dry-run', 'check the recipe and print the plan (tensors, output size, estimates, filter matches); write nothing')
    .option('--intermediate-dir <dir>', 'multi-document (mergekit-multi) recipes: keep the named merges in DIR/<name> and reuse them while their recipe is unchanged (default: a temporary folder next to --out, removed after the run)')
    .option('--overwrite', 'replace an existing output folder')
    .option('--allow-non-finite', 'write the output even when finite weights give NaN/±Inf (e.g. an overflowing weight), with a warning; default: fail and write nothing')
    .option('--threads <n>', 'worker threads (default: all cores)')
    .option('--max-shard-size <size>', 'shard budget, e.g. 5GB (default), 500MB')
    .option('--verbose', 'with --dry-run: list every output tensor')
    .option('--json', 'print the plan / progress and the result as JSON lines')
    .option('--quiet', 'print nothing but errors')
    .option('--download', 'first download the Hugging Face ids the recipe names (every document) that are not in the hub cache, as `chatvec download` does; with --dry-run too')
    .option('--token <token>', `with --download: ${TOKEN_HELP}`)
    .action(
      action(async (recipePath: string, o: MergeCli) => {
        if (!o.dryRun && !o.out) throw new ChatVecError('InvalidArgument', 'give --out DIR (or --dry-run to only check the recipe)');
        const mode = progressMode(o);
        const threads = parseThreads(o.threads);
        if (o.token !== undefined && !o.download) throw new ChatVecError('InvalidArgument', '--token is used by --download only (merges read the cache offline)');
        if (o.download) await fetchModels(missingIds(recipePath), { token: o.token }, mode);
        const loaded = loadOrHint(recipePath, o.intermediateDir);
        if (o.intermediateDir !== undefined && loaded.graph === null) throw new ChatVecError('InvalidArgument', `--intermediate-dir applies to recipes with several YAML documents (mergekit-multi); ${recipePath} has one`);
        const warnings = loaded.issues.filter((i) => i.severity !== 'error');
        if (mode === 'auto') for (const w of warnings) process.stderr.write(`${printableLines(formatIssue(recipePath, loaded.parsed, w))}\n`);
        if (o.dryRun && loaded.graph !== null) {
          const documents = summarizeRecipeFile(loaded, threadCount(threads));
          if (mode === 'json') {
            const issues = warnings.map((w) => ({ severity: w.severity, message: w.message, where: formatIssue(recipePath, loaded.parsed, w).split(': ')[0] }));
            process.stdout.write(JSON.stringify({ type: 'plan', documents, issues }) + '\n');
          } else if (mode === 'auto') {
            process.stdout.write(formatRecipeFilePlan(documents, o.verbose === true) + '\n');
          }
          return;
        }
        if (o.dryRun) {
          const summary = summarizePlan(loaded.documents[0]!.checked.plan!, threadCount(threads));
          if (mode === 'json') {
            const issues = warnings.map((w) => ({ severity: w.severity, message: w.message, where: formatIssue(recipePath, loaded.parsed, w).split(': ')[0] }));
            process.stdout.write(JSON.stringify({ type: 'plan', ...summary, issues }) + '\n');
          } else if (mode === 'auto') {
            process.stdout.write(formatPlanSummary(summary, o.verbose === true) + '\n');
          }
          return;
        }
        // The job checks the recipe again where it runs (here or in the task host) and repeats its
        // warnings on the job log; they were printed above.
        const printed = new Set(loaded.issues.filter((i) => i.severity === 'warning').map((w) => formatIssue(recipePath, loaded.parsed, w)));
        await runOutputCommand(
          mode,
          (ctx) => mergeJob({ recipe: recipePath, out: o.out!, intermediateDir: o.intermediateDir, overwrite: o.overwrite, allowNonFinite: o.allowNonFinite, threads, maxShardBytes: parseShardSize(o.maxShardSize) }, ctx),
          { showLog: (l, m) => mode === 'auto' && !(l === 'warn' && printed.has(m)) },
        );
      }),
    );
}
