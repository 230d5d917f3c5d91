/**
 * Warnings of a merge or of its dry run (vocabulary rows cut, tensors left out …) as warning
 * diagnostics on the recipe, so they reach the Problems panel and the editor instead of staying
 * in the log or the plan's text. Their own collection: the as-you-type check replaces its entries
 * on every keystroke, these stay until the recipe's text changes (then they may no longer hold).
 */
import * as vscode from 'vscode';
import { recipeWarningRanges } from '../../protocol/jobText';
import { Disposable } from '../dispose';

export class RecipeJobWarnings extends Disposable {
  readonly collection = this.register(vscode.languages.createDiagnosticCollection('chatvec-job-warnings'));

  constructor() {
    super();
    this.register(vscode.workspace.onDidChangeTextDocument((e) => e.contentChanges.length && this.collection.delete(e.document.uri)));
    this.register(vscode.workspace.onDidCloseTextDocument((d) => this.collection.delete(d.uri)));
  }

  /** Replaces the recipe's job warnings; `origin` says which run found them ("dry run", "merge"). */
  set(uri: vscode.Uri, text: string, warnings: readonly string[], origin: string): void {
    this.collection.set(
      uri,
      recipeWarningRanges(text, warnings).map((w) => {
        const d = new vscode.Diagnostic(new vscode.Range(w.line, w.column, w.line, w.endColumn), `${w.message} (${origin})`, vscode.DiagnosticSeverity.Warning);
        d.source = 'chatvec';
        return d;
      }),
    );
  }
}
