/**
 * Diagnostics on merge recipes as they are typed: each pause in typing (300 ms) sends the
 * document's text to the task host's `recipeCheck` (syntax, schema, model folders, safetensors
 * headers — the same checks `chatvec merge` runs), and the answer becomes the document's entries
 * in the Problems panel. Per document the newest request wins: an older one still waiting in the
 * host's queue is cancelled, and an answer for text that has changed since is dropped.
 */
import * as os from 'node:os';
import * as vscode from 'vscode';
import type { RecipeCheckDepth, RecipeDiagnostic } from '../../protocol/taskHost';
import { Disposable } from '../dispose';
import type { TaskHostService } from '../host';
import { idToDownload } from './hubQuickFix';
import { isRecipeDocument, recipePathOf } from './selector';

/** Pause in typing before a check is sent, in ms. */
export const RECIPE_CHECK_DELAY_MS = 300;

const SEVERITY: Record<RecipeDiagnostic['severity'], vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  info: vscode.DiagnosticSeverity.Information,
};

export function toVsDiagnostic(d: RecipeDiagnostic): vscode.Diagnostic {
  const range = new vscode.Range(d.line, d.column, Math.max(d.line, d.endLine), d.endLine > d.line ? d.endColumn : Math.max(d.column, d.endColumn));
  // A Hugging Face id not in the cache is a download away from running: a warning with a quick fix.
  const severity = d.severity === 'error' && idToDownload(d.message) ? vscode.DiagnosticSeverity.Warning : (SEVERITY[d.severity] ?? vscode.DiagnosticSeverity.Error);
  const out = new vscode.Diagnostic(range, d.message, severity);
  out.source = d.source;
  return out;
}

interface DocState {
  timer?: NodeJS.Timeout;
  cts?: vscode.CancellationTokenSource;
  /** Increases with every check sent; an answer to an older one is ignored. */
  seq: number;
}

export class RecipeDiagnostics extends Disposable {
  /** Named apart from the `$chatvec` problem matcher's owner, so a task run does not clear these. */
  readonly collection = this.register(vscode.languages.createDiagnosticCollection('chatvec-recipes'));
  private readonly docs = new Map<string, DocState>();
  private readonly checked = this.register(new vscode.EventEmitter<vscode.Uri>());
  /** A document's diagnostics were replaced by a check's answer (for tests and the CodeLens). */
  readonly onDidCheck = this.checked.event;
  /** Checks sent to the task host (for tests of the debounce). */
  requestsSent = 0;

  constructor(
    private readonly host: TaskHostService,
    private readonly log: vscode.LogOutputChannel,
    private readonly depth: RecipeCheckDepth = 'headers',
  ) {
    super();
    this.register(vscode.workspace.onDidOpenTextDocument((d) => this.schedule(d, 0)));
    this.register(vscode.workspace.onDidChangeTextDocument((e) => e.contentChanges.length && this.schedule(e.document)));
    this.register(vscode.workspace.onDidCloseTextDocument((d) => this.forget(d.uri)));
    // A language change (plain text → YAML) or a rename makes a document a recipe or not.
    this.register(vscode.workspace.onDidRenameFiles(() => this.recheckAll()));
    for (const d of vscode.workspace.textDocuments) this.schedule(d, 0);
  }

  /** Checks every open recipe again (model folders appeared or disappeared). */
  recheckAll(delayMs = RECIPE_CHECK_DELAY_MS): void {
    for (const d of vscode.workspace.textDocuments) this.schedule(d, delayMs);
  }

  /** Checks one document now and returns its diagnostics (used before a merge runs). */
  async checkNow(doc: vscode.TextDocument): Promise<readonly vscode.Diagnostic[]> {
    const st = this.state(doc.uri);
    clearTimeout(st.timer);
    st.timer = undefined;
    await this.check(doc, st);
    return this.collection.get(doc.uri) ?? [];
  }

  private state(uri: vscode.Uri): DocState {
    const key = uri.toString();
    let st = this.docs.get(key);
    if (!st) {
      st = { seq: 0 };
      this.docs.set(key, st);
    }
    return st;
  }

  private schedule(doc: vscode.TextDocument, delayMs = RECIPE_CHECK_DELAY_MS): void {
    if (this.isDisposed) return;
    if (!isRecipeDocument(doc)) {
      // It stopped looking like a recipe (merge_method deleted): its old entries would mislead.
      if (this.docs.has(doc.uri.toString()) || this.collection.has(doc.uri)) this.forget(doc.uri);
      return;
    }
    const st = this.state(doc.uri);
    clearTimeout(st.timer);
    st.timer = setTimeout(() => {
      st.timer = undefined;
      void this.check(doc, st);
    }, delayMs);
  }

  private async check(doc: vscode.TextDocument, st: DocState): Promise<void> {
    st.cts?.cancel();
    st.cts?.dispose();
    const cts = new vscode.CancellationTokenSource();
    st.cts = cts;
    const seq = ++st.seq;
    const version = doc.version;
    const recipePath = recipePathOf(doc, vscode.workspace.workspaceFolders?.[0]?.uri.fsPath, os.homedir());
    this.requestsSent++;
    try {
      const found = await this.host.api.recipeCheck({ text: doc.getText(), recipePath, depth: this.depth }, cts.token);
      // Newest wins: a later check was sent, the text changed since, or the document closed.
      if (seq !== st.seq || doc.isClosed || doc.version !== version || this.docs.get(doc.uri.toString()) !== st) return;
      this.collection.set(doc.uri, found.map(toVsDiagnostic));
      this.checked.fire(doc.uri);
    } catch (e) {
      if (cts.token.isCancellationRequested || this.isDisposed) return;
      // A crashed host is reported by the host service; keep the last diagnostics meanwhile.
      this.log.warn(`recipe check of ${recipePath} failed: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      if (st.cts === cts) st.cts = undefined;
      cts.dispose();
    }
  }

  private forget(uri: vscode.Uri): void {
    const key = uri.toString();
    const st = this.docs.get(key);
    if (st) {
      clearTimeout(st.timer);
      st.cts?.cancel();
      this.docs.delete(key);
    }
    this.collection.delete(uri);
  }

  override dispose(): void {
    for (const st of this.docs.values()) {
      clearTimeout(st.timer);
      st.cts?.cancel();
    }
    this.docs.clear();
    super.dispose();
  }
}
