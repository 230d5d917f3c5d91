/**
 * The engine functions behind each request: the very code the CLI runs in-process, so a job gives
 * the same bytes (and a check the same diagnostics) whichever way it is started.
 */
import { openCheckpoint } from '../core/checkpoint/checkpoint';
import { formatPlanSummary } from '../protocol/planText';
import { rowStats as readRowStats } from '../core/checkpoint/rowStats';
import { runCreateDemo } from '../core/demo/job';
import { runDownloadJob } from '../core/download/download';
import { runApply } from '../core/engine/apply';
import { runEnergyAtRank } from '../core/engine/energyAtRank';
import { runExtract } from '../core/engine/extract';
import { threadCount } from '../core/jobs/threadLimit';
import type { JobContext, JobOutcome, MergeOptions } from '../core/jobs/types';
import { type RecipeDiagnostic, recipeDiagnostics } from '../core/recipes/diagnostics';
import { checkRecipeFileText, loadRecipeFileAll, runRecipeFileAll, summarizeRecipeFile, throwRecipeFileErrors } from '../core/recipes/multiRecipe';
import { summarizePlan } from '../core/recipes/summary';
import type { RecipeIssue } from '../core/recipes/types';
import { issueRange } from '../core/recipes/yamlSource';
import { runDiff } from '../core/stats/diff';
import { runEval } from '../core/tryit/evaluate';
import { runSweep } from '../core/tryit/sweep';
import { formatRecipeFilePlan } from '../protocol/multiPlanText';
import type { RecipeCheckParams, RecipePlanParams, RecipePlanResult, RowStatsParams, RowStatsResult } from '../protocol/taskHost';
import type { JobRunners } from './jobManager';

/**
 * A merge job: the recipe file checked, planned from headers and merged into `opts.out`. The
 * recipe's warnings go to the job's log as file:line:col lines.
 * A multi-document (mergekit-multi) recipe runs every merge the final one needs, in order.
 * @throws as core/recipes runRecipeFileAll (InvalidArgument listing the recipe's errors, OutputExists …)
 */
export function runMerge(opts: MergeOptions, ctx: JobContext = {}): Promise<JobOutcome> {
  const { recipe, out, overwrite, threads, maxShardBytes, backend, allowNonFinite, intermediateDir } = opts;
  return runRecipeFileAll(recipe, { out, overwrite, threads, maxShardBytes, backend, allowNonFinite, intermediateDir }, ctx);
}

/** diff → runDiff, extract → runExtract, apply → runApply, merge → runMerge, createDemo → runCreateDemo, downloadModel → runDownloadJob, evalModel → runEval, sweep → runSweep, energyAtRank → runEnergyAtRank. */
export const ENGINE_RUNNERS: JobRunners = {
  diff: runDiff,
  extract: runExtract,
  apply: runApply,
  merge: runMerge,
  createDemo: runCreateDemo,
  downloadModel: runDownloadJob,
  evalModel: runEval,
  sweep: runSweep,
  energyAtRank: runEnergyAtRank,
};

/**
 * `rowStats`: the requested rows of one tensor (default: the input embedding), read by byte range.
 * @throws ChatVecError BadCheckpoint, InvalidArgument (unknown tensor, row out of range), Io
 */
export function rowStatsRequest(p: RowStatsParams): RowStatsResult {
  return readRowStats(openCheckpoint(p.path), p.rows, p.tensor);
}

/** `recipeCheck`: recipeDiagnostics of the text, relative paths resolved against the recipe's folder. */
export function recipeCheck(p: RecipeCheckParams): RecipeDiagnostic[] {
  return recipeDiagnostics(p.text, { recipePath: p.recipePath, depth: p.depth ?? 'headers' });
}

/**
 * `recipePlan`: the dry run of `chatvec merge --dry-run`. `defaultThreads` is the host's default
 * for jobs (null: all cores), so the estimate fits the merge the host would run.
 * @throws ChatVecError InvalidArgument listing the errors of a recipe that cannot run; Io
 */
export function recipePlan(p: RecipePlanParams, defaultThreads: number | null): RecipePlanResult {
  const label = p.recipePath ?? 'recipe';
  const file = p.text === undefined ? loadRecipeFileAll(label) : checkRecipeFileText(p.text, { recipePath: p.recipePath, depth: 'headers' });
  // loadRecipeFileAll throws for these itself; text gets the same message.
  throwRecipeFileErrors(label, file);
  const threads = threadCount(p.threads ?? defaultThreads ?? undefined);
  const toDiagnostic = (i: RecipeIssue): RecipeDiagnostic => ({ ...issueRange(file.parsed, i), severity: i.severity, message: i.message, source: 'chatvec' });
  const issues = file.issues.map(toDiagnostic);
  if (file.graph === null) {
    const summary = summarizePlan(file.documents[0]!.checked.plan!, threads);
    return { summary, text: formatPlanSummary(summary, p.verbose === true), issues };
  }
  const documents = summarizeRecipeFile(file, threads);
  // Some document has no inputs from another, so some plan exists; the final one's when it can be planned.
  const summary = [...documents].reverse().find((d) => d.role !== 'unused' && d.plan)!.plan!;
  return { summary, text: formatRecipeFilePlan(documents, p.verbose === true), issues, documents };
}
