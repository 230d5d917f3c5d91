/**
 * A recipe model that is a Hugging Face id missing from the hub cache: the host's error ends in the
 * command that downloads it ("…; download it with: chatvec download ID"). In the editor that is a
 * warning, not an error — it is one download away from running — with the quick fix "Download ID",
 * which runs Download Model… for that id (disabled in Restricted Mode like every download).
 */
import * as vscode from 'vscode';

const DOWNLOAD_HINT = /(?:download|finish) (?:it|them) with: chatvec download (\S+)$/;

/** The id a diagnostic's message says to download, or null. */
export function idToDownload(message: string): string | null {
  return DOWNLOAD_HINT.exec(message)?.[1] ?? null;
}

export class HubQuickFixes implements vscode.CodeActionProvider {
  static readonly metadata: vscode.CodeActionProviderMetadata = { providedCodeActionKinds: [vscode.CodeActionKind.QuickFix] };

  provideCodeActions(_doc: vscode.TextDocument, _range: vscode.Range, context: vscode.CodeActionContext): vscode.CodeAction[] {
    if (!vscode.workspace.isTrusted) return [];
    return context.diagnostics.flatMap((d) => {
      const id = idToDownload(d.message);
      if (!id) return [];
      const fix = new vscode.CodeAction(`Download ${id}`, vscode.CodeActionKind.QuickFix);
      fix.diagnostics = [d];
      fix.isPreferred = true;
      fix.command = { title: `Download ${id}`, command: 'chatVector.downloadModel', arguments: [id] };
      return [fix];
    });
  }
}
