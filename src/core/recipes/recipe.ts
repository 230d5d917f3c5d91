/**
 * The recipe pipeline in one call: text → YAML → schema → resolved models → plan from headers.
 * The CLI, the task host and the editor's diagnostics all go through checkRecipeText, so they
 * report the same issues at the same places.
 */
import { ChatVecError } from '../errors';
import { readSmallText } from '../io/sideFile';
import { dirname, resolve } from '../io/paths';
import type { JobContext, JobOutcome } from '../jobs/types';
import { resolveRecipe } from './normalize';
import { type MergePlan, filterIssues, planRecipe } from './plan';
import { type MergeRunOptions, runMergePlan } from './run';
import { schemaIssues } from './schema';
import type { RawRecipe, RecipeIssue, ResolvedRecipe } from './types';
import { type ParsedRecipeText, issueRange, parseRecipeText } from './yamlSource';

export interface RecipeCheckOptions {
  /** The recipe file; relative model paths are resolved against its folder. */
  readonly recipePath?: string;
  /** Folder for relative model paths when there is no file (default: the working directory). */
  readonly baseDir?: string;
  /** Working directory, only for a hint when a path exists relative to it instead. */
  readonly cwd?: string;
  /**
   * 'none': syntax and schema only; 'folders': also that model folders exist; 'headers' (default):
   * also read checkpoint headers and plan (shapes, names, per-tensor parameters).
   */
  readonly depth?: 'none' | 'folders' | 'headers';
  /** Rewrites the recipe data after the schema check (a multi-document file's references to merges). */
  readonly substitute?: (raw: RawRecipe) => RawRecipe;
}

export interface CheckedRecipe {
  readonly parsed: ParsedRecipeText;
  /** The recipe data when it passed the schema. */
  readonly raw: RawRecipe | null;
  readonly recipe: ResolvedRecipe | null;
  readonly plan: MergePlan | null;
  /** Every issue found, in document order. */
  readonly issues: readonly RecipeIssue[];
}

/** Checks recipe text as far as `depth` allows; never throws for problems of the recipe or its models. */
export function checkRecipeText(text: string, opts: RecipeCheckOptions = {}): CheckedRecipe {
  const parsed = parseRecipeText(text);
  const issues: RecipeIssue[] = [...parsed.issues];
  let raw: RawRecipe | null = null;
  let recipe: ResolvedRecipe | null = null;
  let plan: MergePlan | null = null;
  if (!parsed.issues.some((i) => i.severity === 'error')) {
    const schema = schemaIssues(parsed.data, parsed);
    issues.push(...schema);
    if (!schema.some((i) => i.severity === 'error')) {
      raw = opts.substitute ? opts.substitute(parsed.data as RawRecipe) : (parsed.data as RawRecipe);
      const depth = opts.depth ?? 'headers';
      const baseDir = opts.recipePath ? dirname(resolve(opts.recipePath)) : resolve(opts.baseDir ?? '.');
      const r = resolveRecipe(raw, { baseDir, cwd: opts.cwd, checkFiles: depth !== 'none' });
      issues.push(...r.issues);
      recipe = r.recipe;
      if (recipe && depth === 'headers') {
        const p = planRecipe(recipe);
        issues.push(...p.issues);
        plan = p.plan;
        if (plan) issues.push(...filterIssues(plan));
      }
    }
  }
  const pos = (i: RecipeIssue) => {
    const r = issueRange(parsed, i);
    return r.line * 1e6 + r.column;
  };
  issues.sort((a, b) => pos(a) - pos(b));
  return { parsed, raw, recipe, plan, issues };
}

/** "recipe.yaml:3:5: error: message" (1-based, the format problem matchers read). */
export function formatIssue(file: string, parsed: ParsedRecipeText, issue: RecipeIssue): string {
  const r = issueRange(parsed, issue);
  const [first, ...rest] = issue.message.split('\n');
  return [`${file}:${r.line + 1}:${r.column + 1}: ${issue.severity}: ${first}`, ...rest.map((l) => `    ${l}`)].join('\n');
}

/**
 * Reads and checks a recipe file down to a plan.
 * @throws ChatVecError InvalidArgument listing every error (file:line:col: …) when the recipe
 *   cannot run; Io when the file cannot be read
 */
export function loadRecipeFile(path: string, opts: Omit<RecipeCheckOptions, 'recipePath' | 'depth'> = {}): CheckedRecipe & { readonly plan: MergePlan; readonly text: string } {
  const abs = resolve(path);
  const text = readSmallText(abs, 'recipe');
  const checked = checkRecipeText(text, { ...opts, recipePath: abs, depth: 'headers' });
  const errors = checked.issues.filter((i) => i.severity === 'error');
  if (errors.length || !checked.plan) {
    const lines = (errors.length ? errors : checked.issues).map((i) => formatIssue(path, checked.parsed, i));
    throw new ChatVecError('InvalidArgument', `${path}: the recipe has ${errors.length || 'unresolved'} error${errors.length === 1 ? '' : 's'}:\n${lines.join('\n')}`);
  }
  return { ...checked, plan: checked.plan, text };
}

/**
 * Runs a recipe file: check, plan, merge into `opts.out`.
 * @throws as loadRecipeFile and runMergePlan
 */
export async function runRecipeFile(path: string, opts: Omit<MergeRunOptions, 'recipeText'>, ctx: JobContext = {}, check: Omit<RecipeCheckOptions, 'recipePath' | 'depth'> = {}): Promise<JobOutcome> {
  const loaded = loadRecipeFile(path, check);
  for (const w of loaded.issues.filter((i) => i.severity === 'warning')) ctx.onLog?.('warn', formatIssue(path, loaded.parsed, w));
  return runMergePlan(loaded.plan, { ...opts, recipePath: resolve(path), recipeText: loaded.text }, ctx);
}
