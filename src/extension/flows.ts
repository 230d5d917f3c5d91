/**
 * The guided flows behind the palette commands: short sequences of quick picks and input boxes
 * that end in one task-host job. Each flow also takes its answers as an argument object, so
 * keybindings, tasks and the tests can run it without the UI.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ApplyOptions, ExtractOptions, JobOutcome, JobResult } from '../protocol/taskHost';
import { readSettings } from './config';
import type { Comparison } from './deltas';
import type { Ctx } from './ctx';
import { type DemoArgs, confirmOverwrite, isApplyArgs, isCompareArgs, isExtractArgs, isObj, jobCommon, pathOf } from './flowSteps';
import { askApply, askCompare, askExtract } from './guided';
import { TRY_MODEL_ACTION, tryModelAction } from './tryModel';
import { SHOW_ENERGY_ACTION, showEnergyReport } from './deltaEnergy';
import { formatBytes } from '../protocol/displayFormat';
import { isVocabularyMismatch, jobDoneMessage, uiErrorText } from '../protocol/jobText';

// ---------------------------------------------------------------------------------------------
// Compare

export async function compareFlow(ctx: Ctx, arg?: unknown, second?: unknown): Promise<Comparison | undefined> {
  if (isCompareArgs(arg)) return ctx.compare(arg.a, arg.b ?? null);
  const a = pathOf(arg);
  const b: string | null | undefined = pathOf(second);
  if (a && b !== undefined) return ctx.compare(a, b);
  const asked = await askCompare(ctx, a, (p) => isChatVectorFolder(ctx, p));
  return asked ? ctx.compare(asked.a, asked.b) : undefined;
}

/** A chat-vector folder: discovered as one, or a folder with the chatvector.json extract writes. */
function isChatVectorFolder(ctx: Ctx, p: string): boolean {
  return !!ctx.store.find(p)?.vector || fs.existsSync(path.join(p, 'chatvector.json'));
}

// ---------------------------------------------------------------------------------------------
// Extract

export async function extractFlow(ctx: Ctx, arg?: unknown): Promise<JobResult<JobOutcome> | undefined> {
  const s = readSettings();
  let o: ExtractOptions;
  if (isExtractArgs(arg)) {
    const lowRank = arg.rank !== undefined ? { rank: arg.rank, ...(arg.energy !== undefined ? { energy: arg.energy } : {}) } : s.outputDtype !== 'auto' ? { dtype: s.outputDtype } : {};
    o = { base: arg.base, chat: arg.chat, out: arg.out, skipEmbed: arg.skipEmbed, overwrite: arg.overwrite, ...jobCommon(s), ...lowRank };
  } else {
    const asked = await askExtract(ctx, s);
    if (!asked) return undefined;
    const overwrite = await confirmOverwrite(asked.out);
    if (overwrite === undefined) return undefined;
    o = { ...asked, overwrite };
  }
  const what = o.rank !== undefined ? 'LoRA adapter extracted' : 'Chat vector extracted';
  const r = await withSkipEmbeddingsRetry(ctx, o, () => ctx.jobs.run('extract', `Extracting ${o.rank !== undefined ? 'LoRA adapter' : 'chat vector'} ${path.basename(o.out)}`, o), (skip) =>
    extractFlow(ctx, { base: o.base, chat: o.chat, out: o.out, overwrite: o.overwrite, skipEmbed: skip, rank: o.rank, energy: o.energy }),
  );
  finished(ctx, r, o.out, what, null);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Apply

export async function applyFlow(ctx: Ctx, arg?: unknown): Promise<JobResult<JobOutcome> | undefined> {
  const s = readSettings();
  let o: ApplyOptions;
  if (isApplyArgs(arg)) {
    o = {
      target: arg.target,
      ...(arg.vectors ? { vectors: [...arg.vectors] } : { base: arg.base, chats: arg.chats ? [...arg.chats] : undefined }),
      ratios: arg.ratios ? [...arg.ratios] : [s.defaultRatio],
      out: arg.out,
      skipEmbed: arg.skipEmbed,
      specialTokens: arg.specialTokens,
      overwrite: arg.overwrite,
      ...jobCommon(s),
      ...(s.outputDtype !== 'auto' ? { dtype: s.outputDtype } : {}),
    };
  } else {
    const asked = await askApply(ctx, s, pathOf(arg));
    if (!asked) return undefined;
    const overwrite = await confirmOverwrite(asked.out);
    if (overwrite === undefined) return undefined;
    o = { ...asked, overwrite };
  }
  const r = await withSkipEmbeddingsRetry(ctx, o, () => ctx.jobs.run('apply', `Applying chat vector to ${path.basename(o.target)}`, o), (skip) =>
    applyFlow(ctx, { target: o.target, vectors: o.vectors, base: o.base, chats: o.chats, ratios: o.ratios, out: o.out, specialTokens: o.specialTokens, overwrite: o.overwrite, skipEmbed: skip }),
  );
  finished(ctx, r, o.out, 'Chat vector applied', o.target);
  return r;
}

/** An error the flow has already shown with its own recovery action (the command wrapper only logs it). */
export class ShownError extends Error {}

/** The action that runs a job again with "Skip embeddings" after it failed on differing vocabularies. */
export const RETRY_SKIP_EMBEDDINGS = 'Retry with Skip Embeddings';

/**
 * Runs `job`; when it fails because the vocabularies differ and embeddings were not skipped, the
 * error (in the editor's words) offers RETRY_SKIP_EMBEDDINGS, which runs `again(true)`.
 */
async function withSkipEmbeddingsRetry<T>(ctx: Ctx, o: { skipEmbed?: boolean }, job: () => Promise<T>, again: (skip: true) => Promise<unknown>): Promise<T> {
  try {
    return await job();
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (o.skipEmbed || !isVocabularyMismatch(message)) throw e;
    void vscode.window.showErrorMessage(`Chat Vector: ${uiErrorText(message)}`, RETRY_SKIP_EMBEDDINGS, 'Show Log').then((pick) => {
      if (pick === RETRY_SKIP_EMBEDDINGS) void again(true).catch((err: unknown) => void vscode.window.showErrorMessage(`Chat Vector: ${uiErrorText(err instanceof Error ? err.message : String(err))}`));
      else if (pick === 'Show Log') ctx.log.show(true);
    });
    throw new ShownError(message);
  }
}

/** The end of a writing job: a message with follow-up actions (not awaited, so flows return). */
function finished(ctx: Ctx, r: JobResult<JobOutcome>, out: string, what: string, target: string | null): void {
  if (r.status === 'cancelled') {
    ctx.log.info(`${what}: cancelled; ${out} was not written`);
    void vscode.window.showInformationMessage(`Cancelled. Nothing was written to ${path.basename(out)}.`);
    return;
  }
  const x = r.result;
  ctx.log.info(`${what}: ${x.out} — ${x.tensorCount} tensors, ${formatBytes(x.bytesWritten)} in ${x.seconds.toFixed(1)} s on ${x.backend}`);
  for (const w of x.warnings) ctx.log.warn(w);
  ctx.store.scheduleRefresh(0);
  // Apply (it has a target) writes a model to chat with; Extract writes a chat vector, and a
  // low-rank one knows the energy its factors keep per layer.
  const actions = ['Open Folder', ...(target ? ['Compare with Target', TRY_MODEL_ACTION] : ['Show Deltas']), ...(x.lowRank ? [SHOW_ENERGY_ACTION] : [])];
  void ctx.jobs.showDone(jobDoneMessage(what, path.basename(x.out), x), x.warnings, actions).then(async (pick) => {
    try {
      if (pick === 'Open Folder') await openFolder(x.out);
      else if (pick === 'Compare with Target' && target) await ctx.compare(target, x.out);
      else if (pick === 'Show Deltas') await ctx.compare(x.out, null);
      else if (pick === TRY_MODEL_ACTION) tryModelAction(ctx, x.out);
      else if (pick === SHOW_ENERGY_ACTION && x.lowRank) await showEnergyReport(ctx, x.lowRank.byLayer);
    } catch (e) {
      void vscode.window.showErrorMessage(e instanceof Error ? e.message : String(e));
    }
  });
}

export async function openFolder(p: string): Promise<void> {
  const uri = vscode.Uri.file(p);
  if (vscode.workspace.getWorkspaceFolder(uri)) {
    await vscode.commands.executeCommand('revealInExplorer', uri);
  } else {
    await vscode.commands.executeCommand('vscode.openFolder', uri, { forceNewWindow: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Demo

/**
 * Generates the demo trio in the task host (`createDemo`: progress, Cancel, status bar like every
 * job; a matching trio is reused at once) and sets it up: roles Base/Chat/Target, then Base vs
 * Chat in the Layer Deltas view.
 */
export async function demoFlow(ctx: Ctx, arg?: unknown): Promise<{ base: string; chat: string; cp: string } | undefined> {
  const a: DemoArgs = isObj(arg) ? (arg as DemoArgs) : {};
  let preset = a.preset;
  if (!preset) {
    const pick = await vscode.window.showQuickPick(
      [
        { label: 'tiny', description: '4 layers, hidden 64 — about 0.4 MB per model, instant', preset: 'tiny' as const },
        { label: 'small', description: '8 layers, hidden 256 — about 15 MB per model, sharded', preset: 'small' as const },
        { label: '1b', description: 'TinyLlama shapes, 22 layers — about 2.2 GB per model, minutes', preset: '1b' as const },
      ],
      { title: 'Create Demo Checkpoints', placeHolder: 'Size of the generated base, chat and continually-pretrained models' },
    );
    if (!pick) return undefined;
    preset = pick.preset;
  }
  const ws = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  let dir = a.dir;
  if (!dir) {
    if (!ws) {
      const uris = await vscode.window.showOpenDialog({ title: 'Folder for the demo checkpoints', canSelectFolders: true, canSelectFiles: false });
      dir = uris?.[0]?.fsPath;
    } else {
      dir = path.join(ws, 'chatvec-demo');
    }
    if (!dir) return undefined;
  }
  const root = dir;
  const r = await ctx.jobs.run('createDemo', `Creating ${preset} demo checkpoints`, { dir: root, preset, ...(a.seed !== undefined ? { seed: a.seed } : {}) });
  if (r.status === 'cancelled') {
    void vscode.window.showInformationMessage('Demo generation cancelled. Nothing was left behind.');
    return undefined;
  }
  ctx.log.info(`demo: ${preset} checkpoints in ${root}${r.result.reused ? ' (reused: already there)' : ''}`);
  const trio = { base: r.result.base, chat: r.result.chat, cp: r.result.cp };
  await ctx.store.refresh();
  await ctx.roles.set('base', trio.base);
  await ctx.roles.set('chat', trio.chat);
  await ctx.roles.set('target', trio.cp);
  await ctx.compare(trio.base, trio.chat);
  void vscode.window.showInformationMessage(`Demo checkpoints in ${vscode.workspace.asRelativePath(root)}: Base, Chat and Target are set, and the Layer Deltas view compares Base with Chat.`, 'Apply Chat Vector…').then((pick) => {
    if (pick) void vscode.commands.executeCommand('chatVector.applyChatVector');
  });
  return trio;
}
