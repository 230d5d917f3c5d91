/**
 * Editor diagnostics for a recipe: text in, ranges and messages out. Pure core code (no `vscode`):
 * the extension maps each entry to a vscode.Diagnostic (lines and columns are 0-based, like
 * vscode.Position; end exclusive) and the CLI prints the same issues as file:line:col.
 */
import { type RecipeFileOptions, checkRecipeFileText } from './multiRecipe';
import type { IssueSeverity } from './types';
import { issueRange } from './yamlSource';

export interface RecipeDiagnostic {
  /** 0-based line of the start. */
  readonly line: number;
  /** 0-based column (UTF-16 code units) of the start. */
  readonly column: number;
  readonly endLine: number;
  /** Exclusive. */
  readonly endColumn: number;
  readonly severity: IssueSeverity;
  /** May span several lines (an example of the fix). */
  readonly message: string;
  /** Always "chatvec" (the diagnostic's source). */
  readonly source: 'chatvec';
}

/**
 * Diagnostics for recipe text as it is being typed. With `depth: 'headers'` (default) model
 * folders are checked and their safetensors headers read (kilobytes per model, no tensor data);
 * use 'none' for syntax and schema only. A multi-document (mergekit-multi) file gets each
 * document's diagnostics at its own lines.
 */
export function recipeDiagnostics(text: string, opts: RecipeFileOptions = {}): RecipeDiagnostic[] {
  const checked = checkRecipeFileText(text, opts);
  return checked.issues.map((i) => ({ ...issueRange(checked.parsed, i), severity: i.severity, message: i.message, source: 'chatvec' as const }));
}
