/**
 * Merge recipes in the editor: diagnostics as you type, CodeLens above the recipe (Run Merge, Dry
 * Run, Compare Inputs), the Dry Run document and the `chatvec` task type. The commands themselves
 * are in the extension's one command table (../commands.ts), their flows in ./flows.ts.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { Disposable } from '../dispose';
import type { TaskHostService } from '../host';
import { RecipeDiagnostics } from './diagnostics';
import { RecipeJobWarnings } from './jobWarnings';
import { PlanDocuments } from './planDoc';
import { RecipeQuickFixes } from './quickFix';
import { isRecipeDocument, mergeMethodLine, RECIPE_SELECTOR } from './selector';
import { ChatvecTaskProvider } from './tasks';

/** The CodeLens row: one lens per command, on the `merge_method:` line (else the first line). */
export class RecipeCodeLenses extends Disposable implements vscode.CodeLensProvider {
  private readonly changed = this.register(new vscode.EventEmitter<void>());
  readonly onDidChangeCodeLenses = this.changed.event;

  constructor() {
    super();
    this.register(vscode.workspace.onDidGrantWorkspaceTrust(() => this.changed.fire()));
  }

  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    if (!isRecipeDocument(doc)) return [];
    const line = mergeMethodLine(doc.getText());
    const range = new vscode.Range(line, 0, line, 0);
    const lens = (title: string, command: string, tooltip: string) => new vscode.CodeLens(range, { title, command, tooltip, arguments: [doc.uri] });
    const lenses = [
      lens('$(play) Run Merge', 'chatVector.runMerge', 'Run this recipe (asks for the output folder)'),
      lens('$(checklist) Dry Run', 'chatVector.dryRunMerge', 'Plan: tensors, output size, estimated time and memory, parameter filter matches'),
      lens('$(diff) Compare Inputs', 'chatVector.compareRecipeInputs', 'The base model against the first other model, in the Layer Deltas view'),
    ];
    // Writing is disabled in Restricted Mode; the lens would only earn a refusal.
    return vscode.workspace.isTrusted ? lenses : lenses.slice(1);
  }
}

export class RecipeFeatures extends Disposable {
  readonly diagnostics: RecipeDiagnostics;
  readonly plans = this.register(new PlanDocuments());
  /** Warnings of the last merge or dry run, on the recipe. */
  readonly jobWarnings = this.register(new RecipeJobWarnings());
  readonly tasks: ChatvecTaskProvider;

  constructor(context: vscode.ExtensionContext, host: TaskHostService, log: vscode.LogOutputChannel) {
    super();
    this.diagnostics = this.register(new RecipeDiagnostics(host, log));
    this.register(vscode.languages.registerCodeLensProvider(RECIPE_SELECTOR, this.register(new RecipeCodeLenses())));
    this.register(vscode.languages.registerCodeActionsProvider(RECIPE_SELECTOR, new RecipeQuickFixes(), { providedCodeActionKinds: RecipeQuickFixes.kinds }));
    this.tasks = this.register(new ChatvecTaskProvider(context.asAbsolutePath(path.join('dist', 'cli.js'))));
    // `chatVector.recipeEditor`: the editor menus offer the recipe commands only on recipes.
    const update = () => {
      const doc = vscode.window.activeTextEditor?.document;
      const is = !!doc && isRecipeDocument(doc);
      if (is !== this.recipeEditor) {
        this.recipeEditor = is;
        void vscode.commands.executeCommand('setContext', 'chatVector.recipeEditor', is);
      }
    };
    this.register(vscode.window.onDidChangeActiveTextEditor(update));
    this.register(vscode.workspace.onDidChangeTextDocument((e) => e.document === vscode.window.activeTextEditor?.document && update()));
    update();
  }

  private recipeEditor: boolean | undefined;
}
