/**
 * "Download Model…": a Hugging Face model into the hub cache through the task host's
 * `downloadModel` job (progress, Cancel and the status bar like every job). A token entered for a
 * gated or private model is kept in the VS Code SecretStorage — never in settings or logs — and
 * passed to the job; without one the host uses HF_TOKEN or the token file of `hf auth login`.
 */
import * as vscode from 'vscode';
import type { Ctx } from './ctx';

const TOKEN_KEY = 'chatVector.huggingFaceToken';

/**
 * A first check of the input box only (the task host's parser is the authority): `org/name` or
 * `name`, letters, digits, `_.-`, optionally `@revision`.
 */
function idHint(v: string): string | undefined {
  const s = v.trim();
  if (!s) return 'A model id, e.g. mistralai/Mistral-7B-v0.1 or org/name@revision';
  return /^[\w.-]+(\/[\w.-]+)?(@[^\s@\\]+)?$/.test(s) ? undefined : 'Expected org/name or org/name@revision (letters, digits, "_", ".", "-")';
}

/** Downloads `arg` (an id) or the id typed in an input box; resolves the snapshot folder, or undefined when cancelled. */
export async function downloadModelFlow(ctx: Ctx, arg?: unknown): Promise<string | undefined> {
  const id = typeof arg === 'string' ? arg : await vscode.window.showInputBox({ title: 'Download Model from Hugging Face', prompt: 'Model id, optionally @revision (branch, tag or commit)', placeHolder: 'org/name', validateInput: idHint, ignoreFocusOut: true });
  if (!id) return undefined;
  let token = await ctx.context.secrets.get(TOKEN_KEY);
  for (;;) {
    try {
      const r = await ctx.jobs.run('downloadModel', `Downloading ${id.trim()}`, { id: id.trim(), ...(token ? { token } : {}) });
      if (r.status === 'cancelled') {
        void vscode.window.showInformationMessage(`Download of ${id} cancelled; the partial file is kept and resumes next time.`);
        return undefined;
      }
      await ctx.store.refresh();
      ctx.recipes.diagnostics.recheckAll(0);
      void vscode.window.showInformationMessage(`${id}: ${r.result.files.length} files at commit ${r.result.commit.slice(0, 12)} in the Hugging Face cache.`);
      return r.result.snapshot;
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      if (!/HTTP 40[13]/.test(message)) throw e;
      const entered = await vscode.window.showInputBox({ title: `${id} needs a Hugging Face token`, prompt: `${message.split(';')[0]}. Enter an access token (kept in VS Code's secret storage).`, password: true, ignoreFocusOut: true });
      if (!entered) return undefined;
      token = entered.trim();
      await ctx.context.secrets.store(TOKEN_KEY, token);
    }
  }
}
