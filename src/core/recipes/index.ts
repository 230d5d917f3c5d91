/**
 * Merge recipes (mergekit-compatible YAML + `merge_method: chat_vector`): the public API for the
 * CLI, the task host and the editor.
 *
 * - checkRecipeText / recipeDiagnostics: text → issues (syntax, schema, folders, headers) with ranges
 * - loadRecipeFile: file → plan, or one InvalidArgument error listing every problem
 * - summarizePlan: the dry run (as text: src/protocol/planText.ts)
 * - runMergePlan / runRecipeFile: the merge itself (streaming, multi-core, atomic output)
 * - RECIPE_SCHEMA: the JSON Schema (also schemas/merge-recipe.schema.json)
 */
export { type RecipeDiagnostic, recipeDiagnostics } from './diagnostics';
export { type CheckedRecipe, type RecipeCheckOptions, checkRecipeText, formatIssue, loadRecipeFile, runRecipeFile } from './recipe';
export { type FilterReport, type MergePlan, type PlannedTensor, planRecipe } from './plan';
export { type MergeRunOptions, runMergePlan } from './run';
export { type PlanSummary, summarizePlan } from './summary';
export { RECIPE_SCHEMA, schemaIssues } from './schema';
export type { IssueSeverity, MergeMethodName, RecipeIssue, RecipePath, ResolvedRecipe } from './types';
export { MERGE_METHODS } from './types';
