/** "Dry Run": the plan of a recipe as a read-only text document (what `chatvec merge --dry-run` prints). */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { Disposable } from '../dispose';

export const PLAN_SCHEME = 'chatvector-plan';
/** The plan's language: package.json turns word wrap on for it (warnings are long lines). */
export const PLAN_LANGUAGE = 'chatvec-plan';

export class PlanDocuments extends Disposable implements vscode.TextDocumentContentProvider {
  private readonly texts = new Map<string, string>();
  private readonly changed = this.register(new vscode.EventEmitter<vscode.Uri>());
  readonly onDidChange = this.changed.event;

  constructor() {
    super();
    this.register(vscode.workspace.registerTextDocumentContentProvider(PLAN_SCHEME, this));
  }

  /** The document's address for a recipe: one per recipe, refreshed by each dry run. */
  uriFor(recipePath: string): vscode.Uri {
    return vscode.Uri.from({ scheme: PLAN_SCHEME, path: `/${path.basename(recipePath)} (dry run).txt`, query: new URLSearchParams({ recipe: recipePath }).toString() });
  }

  /** Stores the text and opens (or refreshes) the read-only document beside the recipe. */
  async show(recipePath: string, text: string): Promise<vscode.TextEditor> {
    const uri = this.uriFor(recipePath);
    this.texts.set(uri.toString(), text);
    this.changed.fire(uri);
    let doc = await vscode.workspace.openTextDocument(uri);
    if (doc.languageId !== PLAN_LANGUAGE) doc = await vscode.languages.setTextDocumentLanguage(doc, PLAN_LANGUAGE);
    return vscode.window.showTextDocument(doc, { preview: true, viewColumn: vscode.ViewColumn.Beside });
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.toString()) ?? 'Run "Chat Vector: Dry Run Merge" on the recipe again to see its plan.';
  }
}
