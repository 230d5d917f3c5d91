/** "Change to `x`": the Quick Fix of a did-you-mean diagnostic on a recipe (lightbulb, Ctrl+.). */
import * as vscode from 'vscode';
import { suggestedReplacement } from '../../protocol/recipeFixes';

export class RecipeQuickFixes implements vscode.CodeActionProvider {
  static readonly kinds = [vscode.CodeActionKind.QuickFix];

  provideCodeActions(doc: vscode.TextDocument, _range: vscode.Range, context: vscode.CodeActionContext): vscode.CodeAction[] {
    const actions: vscode.CodeAction[] = [];
    for (const d of context.diagnostics) {
      if (d.source !== 'chatvec' || d.range.isEmpty || !d.range.isSingleLine) continue;
      const to = suggestedReplacement(d.message);
      if (to === null) continue;
      const action = new vscode.CodeAction(`Change to \`${to}\``, vscode.CodeActionKind.QuickFix);
      action.diagnostics = [d];
      action.isPreferred = true;
      action.edit = new vscode.WorkspaceEdit();
      // A quoted key or value keeps its quotes.
      const text = doc.getText(d.range);
      const q = /^(["'])(.*)\1$/.exec(text);
      action.edit.replace(doc.uri, d.range, q ? `${q[1]}${to}${q[1]}` : to);
      actions.push(action);
    }
    return actions;
  }
}
