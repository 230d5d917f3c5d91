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
import { HubQuickFixes } from './hubQuickFix';
import { RecipeJobWarnings } from './jobWarnings';
import { PlanDocuments } from './planDoc';
import { RecipeQuickFixes } from './quickFix';
import { isRecipeDocument, mergeMethodLines, RECIPE_SELECTOR } from './selector';
import { ChatvecTaskProvider } from './tasks';

/**
 * The CodeLens row: one lens per command, on the `merge_method:` line (else the first line). In a
 * multi-document file: Run and Dry Run (of the whole file) above the first document, Compare
 * Inputs above each.
 */
export class RecipeCodeLenses extends Disposable implements vscode.CodeLensProvider {
  private readonly changed = this.register(new vscode.EventEmitter<void>());
  readonly onDidChangeCodeLenses = this.changed.event;

  constructor() {
    super();
    this.register(vscode.workspace.onDidGrantWorkspaceTrust(() => this.changed.fire()));
  }

  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    if (!isRecipeDocument(doc)) return [];
    const lines = mergeMethodLines(doc.getText());
    const at = (line: number) => new vscode.Range(line, 0, line, 0);
    const lens = (line: number, title: string, command: string, tooltip: string, arg: unknown = doc.uri) => new vscode.CodeLens(at(line), { title, command, tooltip, arguments: [arg] });
    const compare = 'The base model against the first other model, in the Layer Deltas view';
    let lenses: vscode.CodeLens[];
    if (lines.length === 1) {
      lenses = [
        lens(lines[0]!, '$(play) Run Merge', 'chatVector.runMerge', 'Run this recipe (asks for the output folder)'),
        lens(lines[0]!, '$(checklist) Dry Run', 'chatVector.dryRunMerge', 'Plan: tensors, output size, estimated time and memory, parameter filter matches'),
        lens(lines[0]!, '$(diff) Compare Inputs', 'chatVector.compareRecipeInputs', compare),
      ];
    } else {
      // A mergekit-multi file runs as a whole: one Run and one Dry Run at the top; each document
      // compares its own inputs (a model that is another document's merge is left out).
      const n = lines.length;
      lenses = [
        lens(lines[0]!, `$(play) Run ${n} Merges`, 'chatVector.runMerge', `Run the ${n} merges of this file in dependency order; the final one is written to the output folder it asks for`),
        lens(lines[0]!, `$(checklist) Dry Run (${n} merges)`, 'chatVector.dryRunMerge', 'The run order and each merge\'s plan: tensors, output size, estimates, filter matches'),
        ...lines.map((line, document) => lens(line, '$(diff) Compare Inputs', 'chatVector.compareRecipeInputs', `${compare} (this document)`, { recipe: doc.uri, document })),
      ];
    }
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
    this.register(vscode.languages.registerCodeActionsProvider(RECIPE_SELECTOR, new HubQuickFixes(), HubQuickFixes.metadata));
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
