/**
 * The recipe commands behind the CodeLens: Run Merge (the task host's `merge` job with the usual
 * progress, status bar and Cancel), Dry Run (the host's `recipePlan` as a read-only document) and
 * Compare Inputs (the base model against the first other model in the Layer Deltas view). Each
 * takes the recipe as a Uri (CodeLens, menus), a path, or an argument object (tests, keybindings);
 * without one, the active editor's recipe or a pick among the workspace's recipes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { JobOutcome, JobResult, RecipePlanResult } from '../../protocol/taskHost';
import { readSettings } from '../config';
import type { Ctx } from '../ctx';
import type { Comparison } from '../deltas';
import { openFolder } from '../flows';
import { askOutput, confirmOverwrite, jobCommon } from '../flowSteps';
import { comparedInputs, recipeInputs } from './inputs';
import { isRecipeDocument } from './selector';
import { findRecipes } from './tasks';
import { formatBytes } from '../../protocol/displayFormat';
import { idToDownload } from './hubQuickFix';
import { jobDoneMessage } from '../../protocol/jobText';
import { TRY_MODEL_ACTION, tryModelAction } from '../tryModel';

/** What the commands accept besides a Uri or a path. */
export interface RecipeArgs {
  readonly recipe: string | vscode.Uri;
  /** Run Merge: the output folder (absolute, or relative to the recipe's folder); asked when absent. */
  readonly out?: string;
  readonly overwrite?: boolean;
  /** Run Merge: download the recipe's ids missing from the Hugging Face cache without asking (tests, keybindings). */
  readonly download?: boolean;
  /** Dry Run: list every output tensor. */
  readonly verbose?: boolean;
  /** Compare Inputs: which document of a multi-document file (0-based; default: the final merge). */
  readonly document?: number;
}

function argsOf(arg: unknown): { uri?: vscode.Uri; args: Partial<RecipeArgs> } {
  if (arg instanceof vscode.Uri) return { uri: arg, args: {} };
  if (typeof arg === 'string') return { uri: vscode.Uri.file(arg), args: {} };
  if (arg && typeof arg === 'object' && 'recipe' in arg) {
    const a = arg as RecipeArgs;
    return { uri: a.recipe instanceof vscode.Uri ? a.recipe : vscode.Uri.file(a.recipe), args: a };
  }
  return { args: {} };
}

/** The recipe's document (its current text, saved or not), or undefined when the user dismissed the pick. */
async function recipeDocument(arg: unknown, title: string): Promise<{ doc: vscode.TextDocument; args: Partial<RecipeArgs> } | undefined> {
  const { uri, args } = argsOf(arg);
  if (uri) return { doc: await vscode.workspace.openTextDocument(uri), args };
  const active = vscode.window.activeTextEditor?.document;
  if (active && isRecipeDocument(active)) return { doc: active, args };
  const found = await findRecipes();
  if (!found.length) throw new Error('no merge recipe is open or in the workspace (a YAML file with `merge_method:`)');
  const pick = await vscode.window.showQuickPick(
    found.map((u) => ({ label: path.basename(u.fsPath), description: vscode.workspace.asRelativePath(u, true), uri: u })),
    { title, placeHolder: 'Merge recipe' },
  );
  return pick ? { doc: await vscode.workspace.openTextDocument(pick.uri), args } : undefined;
}

/** `<dir>/<stem>-merged`, or -2, -3 … when that exists. */
export function defaultOutput(recipePath: string): string {
  const dir = path.dirname(recipePath);
  const stem = path.basename(recipePath).replace(/(\.merge)?\.ya?ml$/i, '');
  let candidate = path.join(dir, `${stem}-merged`);
  for (let i = 2; fs.existsSync(candidate); i++) candidate = path.join(dir, `${stem}-merged-${i}`);
  return candidate;
}

// ---------------------------------------------------------------------------------------------
// Run Merge

export async function runMergeFlow(ctx: Ctx, arg?: unknown): Promise<JobResult<JobOutcome> | undefined> {
  const got = await recipeDocument(arg, 'Run Merge');
  if (!got) return undefined;
  const { doc, args } = got;
  if (doc.isUntitled) throw new Error('save the recipe to a file first: relative model paths are resolved against its folder');
  // The merge job reads the file: what the editor shows must be what runs.
  if (doc.isDirty && !(await doc.save())) throw new Error(`could not save ${path.basename(doc.fileName)}`);
  const recipe = doc.uri.fsPath;

  // Hugging Face ids not in the cache: offered for download first (then checked again).
  const missing = [...new Set((await ctx.recipes.diagnostics.checkNow(doc)).map((d) => idToDownload(d.message)).filter((id): id is string => id !== null))];
  if (missing.length) {
    // Downloading writes, so in Restricted Mode this command (and chatVector.downloadModel) is refused before it gets here.
    const what = missing.length === 1 ? 'Download 1 model and merge?' : `Download ${missing.length} models and merge?`;
    const detail = `${path.basename(recipe)} names ${missing.length === 1 ? 'a model' : 'models'} not in the Hugging Face cache: ${missing.join(', ')}.`;
    const go = args.download ? 'Download and Merge' : await vscode.window.showWarningMessage(what, { modal: true, detail }, 'Download and Merge');
    if (go !== 'Download and Merge') return undefined;
    for (const id of missing) if ((await vscode.commands.executeCommand('chatVector.downloadModel', id)) === undefined) return undefined;
  }
  // The same check as the diagnostics, now: a broken recipe is refused before anything is asked.
  const errors = (await ctx.recipes.diagnostics.checkNow(doc)).filter((d) => d.severity === vscode.DiagnosticSeverity.Error || idToDownload(d.message));
  if (errors.length) {
    const first = errors[0]!;
    void vscode.commands.executeCommand('workbench.actions.view.problems');
    throw new Error(`${path.basename(recipe)} has ${errors.length} error${errors.length > 1 ? 's' : ''} (see the Problems panel); line ${first.range.start.line + 1}: ${first.message}`);
  }

  let out = args.out;
  let overwrite = args.overwrite;
  if (!out) {
    out = (await askOutput(`Run Merge: ${path.basename(recipe)}`, defaultOutput(recipe)))?.trim();
    if (!out) return undefined;
  }
  out = path.resolve(path.dirname(recipe), out);
  if (overwrite === undefined) {
    overwrite = await confirmOverwrite(out);
    if (overwrite === undefined) return undefined;
  }
  const s = readSettings(doc.uri);
  const r = await ctx.jobs.run('merge', `Merging ${path.basename(recipe)}`, { recipe, out, overwrite, ...jobCommon(s) });
  mergeFinished(ctx, r, doc);
  return r;
}

/** The end of a merge: a message with Open Folder and Compare with Base (not awaited). */
function mergeFinished(ctx: Ctx, r: JobResult<JobOutcome>, doc: vscode.TextDocument): void {
  const recipe = doc.uri.fsPath;
  const text = doc.getText();
  const name = path.basename(recipe);
  if (r.status === 'cancelled') {
    ctx.log.info(`merge ${recipe}: cancelled; nothing was written`);
    void vscode.window.showInformationMessage(`Merge cancelled. Nothing was written.`);
    return;
  }
  const x = r.result;
  ctx.log.info(`merge ${recipe}: ${x.out} — ${x.tensorCount} tensors, ${formatBytes(x.bytesWritten)} in ${x.seconds.toFixed(1)} s on ${x.backend}`);
  for (const w of x.warnings) ctx.log.warn(w);
  ctx.store.scheduleRefresh(0);
  let against: { label: string; path: string } | undefined;
  try {
    const i = recipeInputs(text, path.dirname(recipe));
    // chat_vector adds to the target: comparing with it shows what was added.
    against = i.method === 'chat_vector' && i.target ? { label: 'Compare with Target', path: i.target } : i.base ? { label: 'Compare with Base', path: i.base } : undefined;
  } catch {
    // The merge ran, so the YAML parsed; nothing to offer otherwise.
  }
  ctx.recipes.jobWarnings.set(doc.uri, text, x.warnings, 'merge');
  const actions = ['Open Folder', ...(against ? [against.label] : []), TRY_MODEL_ACTION];
  void ctx.jobs.showDone(jobDoneMessage(`Merged ${name}`, path.basename(x.out), x), x.warnings, actions).then(async (pick) => {
    try {
      if (pick === 'Open Folder') await openFolder(x.out);
      else if (pick && against && pick === against.label) await ctx.compare(against.path, x.out);
      else if (pick === TRY_MODEL_ACTION) tryModelAction(ctx, x.out);
    } catch (e) {
      void vscode.window.showErrorMessage(e instanceof Error ? e.message : String(e));
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Dry Run

export async function dryRunFlow(ctx: Ctx, arg?: unknown): Promise<RecipePlanResult | undefined> {
  const got = await recipeDocument(arg, 'Dry Run');
  if (!got) return undefined;
  const { doc, args } = got;
  const recipePath = doc.isUntitled ? undefined : doc.uri.fsPath;
  // The editor's text, saved or not; relative paths still resolve against the file's folder.
  const r = await ctx.host.api.recipePlan({ ...(recipePath ? { recipePath } : {}), text: doc.getText(), ...(args.verbose ? { verbose: true } : {}) });
  const notes = r.issues.map((i) => `${i.severity}: line ${i.line + 1}: ${i.message}`);
  if (!doc.isUntitled) ctx.recipes.jobWarnings.set(doc.uri, doc.getText(), r.summary.warnings, 'dry run');
  await ctx.recipes.plans.show(recipePath ?? doc.uri.path, notes.length ? `${r.text}\n\n${notes.join('\n')}\n` : `${r.text}\n`);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Compare Inputs

export async function compareInputsFlow(ctx: Ctx, arg?: unknown): Promise<Comparison | undefined> {
  const got = await recipeDocument(arg, 'Compare Inputs');
  if (!got) return undefined;
  const { doc, args } = got;
  const dir = doc.isUntitled ? (vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? process.cwd()) : path.dirname(doc.uri.fsPath);
  const pair = comparedInputs(recipeInputs(doc.getText(), dir, args.document));
  if (!pair) throw new Error(`${path.basename(doc.fileName)} names fewer than two models to compare (base_model and models, slices or chat_models; another document's merge is not a checkpoint yet)`);
  return ctx.compare(pair.a, pair.b);
}
