/**
 * The guided flows behind the palette commands: short sequences of quick picks and input boxes
 * that end in one task-host job. Each flow also takes its answers as an argument object, so
 * keybindings, tasks and the tests can run it without the UI.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ApplyOptions, ExtractOptions, InspectReport, JobOutcome, JobResult } from '../protocol/taskHost';
import { type CheckpointEntry, adapterLabel, displayName, dtypeSummary } from './checkpoints';
import { readSettings, type Settings } from './config';
import type { Comparison } from './deltas';
import type { Ctx } from './ctx';
import { ROLE_LABEL, type Role } from './roles';
import { askApply, askCompare, askExtract } from './guided';
import { formatBytes, formatCount, parseDecimal } from '../protocol/displayFormat';
import { isVocabularyMismatch, jobDoneMessage, uiErrorText } from '../protocol/jobText';

// ---------------------------------------------------------------------------------------------
// Arguments (from menus, keybindings and tests)

/** A tree item (CheckpointEntry), an Explorer resource (Uri) or a path. */
export type CheckpointArg = CheckpointEntry | vscode.Uri | string;

export function pathOf(arg: unknown): string | undefined {
  if (typeof arg === 'string') return arg;
  if (arg instanceof vscode.Uri) return arg.fsPath;
  if (arg && typeof arg === 'object' && typeof (arg as CheckpointEntry).path === 'string' && (arg as CheckpointEntry).uri) return (arg as CheckpointEntry).path;
  return undefined;
}

export interface CompareArgs {
  readonly a: string;
  readonly b?: string | null;
}
/** What the commands accept as an argument (from tests, other extensions or tasks). */
export type ExtractArgs = Pick<ExtractOptions, 'base' | 'chat' | 'out' | 'skipEmbed' | 'overwrite' | 'rank' | 'energy'>;
export type ApplyArgs = Pick<ApplyOptions, 'target' | 'vectors' | 'base' | 'chats' | 'ratios' | 'out' | 'skipEmbed' | 'specialTokens' | 'overwrite'>;
export interface DemoArgs {
  readonly dir?: string;
  readonly preset?: 'tiny' | 'small' | '1b';
  readonly seed?: number;
}

const isObj = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object' && !(x instanceof vscode.Uri);
const isCompareArgs = (x: unknown): x is CompareArgs => isObj(x) && typeof x.a === 'string';
const isExtractArgs = (x: unknown): x is ExtractArgs => isObj(x) && typeof x.base === 'string' && typeof x.chat === 'string' && typeof x.out === 'string';
const isApplyArgs = (x: unknown): x is ApplyArgs => isObj(x) && typeof x.target === 'string' && typeof x.out === 'string';

// ---------------------------------------------------------------------------------------------
// Pickers

const BROWSE = '$(folder-opened) Browse…';

export interface CheckpointPick extends vscode.QuickPickItem {
  readonly path?: string;
  readonly browse?: boolean;
  readonly none?: boolean;
}

function describe(e: CheckpointEntry, role: Role | undefined): string {
  const r = e.report;
  const kind = (r: InspectReport) => (r.adapter ? adapterLabel(r.adapter) : e.vector ? 'chat vector' : (r.architecture ?? r.family));
  const bits = [role ? ROLE_LABEL[role] : '', r ? `${kind(r)} · ${formatCount(r.parameterCount)} · ${dtypeSummary(r)} · ${formatBytes(r.fileBytes)}` : (e.error ?? '')];
  return bits.filter(Boolean).join(' · ');
}

/** Options of a checkpoint pick: the preferred role on top, `exclude`d paths left out, `none` offered last. */
export interface CheckpointPickOptions {
  readonly title: string;
  readonly placeHolder: string;
  readonly prefer?: Role;
  readonly exclude?: readonly string[];
  readonly none?: string;
}

/** Discovered checkpoints first (the one with the preferred role on top), then "Browse…". */
export async function checkpointItems(ctx: Ctx, o: CheckpointPickOptions): Promise<CheckpointPick[]> {
  const entries = await ctx.store.ready();
  const rank = (e: CheckpointEntry) => {
    const r = ctx.roles.roleOf(e.path);
    return r === o.prefer ? 0 : r ? 1 : 2;
  };
  const items: CheckpointPick[] = [...entries]
    .filter((e) => !o.exclude?.includes(e.path))
    .sort((a, b) => rank(a) - rank(b) || a.label.localeCompare(b.label))
    .map((e) => ({ label: displayName(e), description: describe(e, ctx.roles.roleOf(e.path)), detail: e.label, path: e.path }));
  const tail: CheckpointPick[] = [{ label: '', kind: vscode.QuickPickItemKind.Separator }];
  if (o.none) tail.push({ label: o.none, none: true });
  tail.push({ label: BROWSE, browse: true });
  return [...items, ...tail];
}

/** The path a pick stands for: its path, null for `none`, the browsed one, or undefined when the dialog was dismissed. */
export async function pickedPath(pick: CheckpointPick, title: string): Promise<string | null | undefined> {
  if (pick.none) return null;
  if (pick.browse) {
    const uris = await vscode.window.showOpenDialog({ title, canSelectFiles: true, canSelectFolders: true, canSelectMany: false, filters: { Safetensors: ['safetensors'] } });
    return uris?.[0]?.fsPath;
  }
  return pick.path;
}

/** One checkpoint (outside a multi-step flow). Returns a path, null for the `none` choice, or undefined when dismissed. */
export async function pickCheckpoint(ctx: Ctx, o: CheckpointPickOptions): Promise<string | null | undefined> {
  const pick = await vscode.window.showQuickPick<CheckpointPick>(await checkpointItems(ctx, o), { title: o.title, placeHolder: o.placeHolder, matchOnDescription: true, matchOnDetail: true, ignoreFocusOut: true });
  return pick ? pickedPath(pick, o.title) : undefined;
}

export async function pickMany(ctx: Ctx, title: string, placeHolder: string): Promise<string[] | undefined> {
  const entries = await ctx.store.ready();
  // Chat-vector folders first: that is what this list is for.
  const sorted = [...entries].sort((x, y) => Number(y.vector || y.adapter) - Number(x.vector || x.adapter) || x.label.localeCompare(y.label));
  const items: CheckpointPick[] = sorted.map((e) => ({ label: displayName(e), description: describe(e, ctx.roles.roleOf(e.path)), detail: e.label, path: e.path }));
  items.push({ label: BROWSE, browse: true, alwaysShow: true });
  const picks = await vscode.window.showQuickPick<CheckpointPick>(items, { title, placeHolder, canPickMany: true, ignoreFocusOut: true });
  if (!picks?.length) return undefined;
  const out = picks.filter((p) => p.path).map((p) => p.path!);
  if (picks.some((p) => p.browse)) {
    const uris = await vscode.window.showOpenDialog({ title, canSelectFiles: true, canSelectFolders: true, canSelectMany: true });
    out.push(...(uris ?? []).map((u) => u.fsPath));
  }
  return out.length ? out : undefined;
}

export async function inspectOf(ctx: Ctx, p: string): Promise<InspectReport> {
  return ctx.store.find(p)?.report ?? ctx.host.inspect(p);
}

export function siblingPath(of: string, suffix: string): string {
  const dir = path.dirname(of);
  const stem = path.basename(of).replace(/\.safetensors$/, '');
  let candidate = path.join(dir, `${stem}${suffix}`);
  for (let i = 2; fs.existsSync(candidate); i++) candidate = path.join(dir, `${stem}${suffix}-${i}`);
  return candidate;
}

/** The output-folder check of every flow: empty or relative paths block; an existing folder warns. */
export function outputValidation(v: string): string | vscode.InputBoxValidationMessage | undefined {
  if (!v.trim()) return 'Enter a folder.';
  if (!path.isAbsolute(v.trim())) return 'Enter an absolute path.';
  if (fs.existsSync(v.trim())) return { message: 'This folder exists and would be replaced.', severity: vscode.InputBoxValidationSeverity.Warning };
  return undefined;
}

export async function askOutput(title: string, suggestion: string): Promise<string | undefined> {
  return vscode.window.showInputBox({
    title,
    prompt: 'Output folder (written atomically: nothing appears there until the job has finished)',
    value: suggestion,
    valueSelection: [suggestion.length - path.basename(suggestion).length, suggestion.length],
    ignoreFocusOut: true,
    validateInput: outputValidation,
  });
}

export async function confirmOverwrite(out: string): Promise<boolean | undefined> {
  if (!fs.existsSync(out)) return false;
  // The task host decides what may be replaced (core/io/outputGuard.ts): an empty folder or an
  // earlier Chat Vector output; anything else is refused and left untouched.
  const ok = await vscode.window.showWarningMessage(`${out} exists. Replace it?`, { modal: true, detail: 'Only an empty folder or an earlier Chat Vector output is replaced. Anything else (an input model, a folder with other files) is refused and left as it is.' }, 'Replace');
  return ok === 'Replace' ? true : undefined;
}

export interface OptionPick extends vscode.QuickPickItem {
  readonly id: 'skipEmbed' | 'specialTokens';
}

/** "target 576 tokens, chat 512" when the vocabularies differ, else null (also when one is unknown). */
export function vocabSizes(a: InspectReport, aName: string, b: InspectReport, bName: string): string | null {
  if (a.vocabSize === null || b.vocabSize === null || a.vocabSize === b.vocabSize) return null;
  return `${aName} ${a.vocabSize} tokens, ${bName} ${b.vocabSize}`;
}

/** Why embeddings should be skipped, or null when the vocabularies match. */
export function vocabReason(target: InspectReport, other: InspectReport, otherName: string): string | null {
  const sizes = vocabSizes(target, 'target', other, otherName);
  return sizes && `vocabularies differ: ${sizes}; embeddings and LM head are then taken from the target`;
}

export function skipDefault(s: Settings, reason: string | null): boolean {
  return s.skipEmbeddings === 'always' || (s.skipEmbeddings === 'auto' && reason !== null);
}

export function jobCommon(s: Settings): { threads?: number; backend?: Settings['computeBackend']; maxShardBytes?: number } {
  return {
    ...(s.threads ? { threads: s.threads } : {}),
    backend: s.computeBackend,
    ...(s.maxShardBytes ? { maxShardBytes: s.maxShardBytes } : {}),
  };
}

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

export function parseRatios(v: string): number[] | undefined {
  const nums = v.split(',').map(parseDecimal);
  return nums.every((x): x is number => x !== null) ? nums : undefined;
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
  const actions = ['Open Folder', ...(target ? ['Compare with Target'] : ['Show Deltas'])];
  void ctx.jobs.showDone(jobDoneMessage(what, path.basename(x.out), x), x.warnings, actions).then(async (pick) => {
    try {
      if (pick === 'Open Folder') await openFolder(x.out);
      else if (pick === 'Compare with Target' && target) await ctx.compare(target, x.out);
      else if (pick === 'Show Deltas') await ctx.compare(x.out, null);
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
