/**
 * The guided flows behind the palette commands: short sequences of quick picks and input boxes
 * that end in one task-host job. Each flow also takes its answers as an argument object, so
 * keybindings, tasks and the tests can run it without the UI.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ApplyOptions, ExtractOptions, InspectReport, JobOutcome, JobResult } from '../protocol/taskHost';
import { type CheckpointEntry, displayName, dtypeSummary } from './checkpoints';
import { readSettings, type Settings } from './config';
import type { Comparison } from './deltas';
import type { Ctx } from './ctx';
import { ROLE_LABEL, type Role } from './roles';
import { untrainedSpecialTokens } from './specialTokens';
import { formatBytes, formatCount, parseDecimal } from '../protocol/displayFormat';
import { jobDoneMessage } from '../protocol/jobText';

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
export type ExtractArgs = Pick<ExtractOptions, 'base' | 'chat' | 'out' | 'skipEmbed' | 'overwrite'>;
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

interface CheckpointPick extends vscode.QuickPickItem {
  readonly path?: string;
  readonly browse?: boolean;
  readonly none?: boolean;
}

function describe(e: CheckpointEntry, role: Role | undefined): string {
  const r = e.report;
  const bits = [role ? ROLE_LABEL[role] : '', r ? `${e.vector ? 'chat vector' : (r.architecture ?? r.family)} · ${formatCount(r.parameterCount)} · ${dtypeSummary(r)} · ${formatBytes(r.fileBytes)}` : (e.error ?? '')];
  return bits.filter(Boolean).join(' · ');
}

/**
 * Discovered checkpoints first (the one with the preferred role on top), then "Browse…".
 * Returns a path, null for the `none` choice, or undefined when dismissed.
 */
export async function pickCheckpoint(
  ctx: Ctx,
  o: { title: string; placeHolder: string; prefer?: Role; exclude?: readonly string[]; none?: string; many?: false },
): Promise<string | null | undefined> {
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
  const pick = await vscode.window.showQuickPick<CheckpointPick>([...items, ...tail], { title: o.title, placeHolder: o.placeHolder, matchOnDescription: true, matchOnDetail: true, ignoreFocusOut: true });
  if (!pick) return undefined;
  if (pick.none) return null;
  if (pick.browse) {
    const uris = await vscode.window.showOpenDialog({ title: o.title, canSelectFiles: true, canSelectFolders: true, canSelectMany: false, filters: { Safetensors: ['safetensors'] } });
    return uris?.[0]?.fsPath;
  }
  return pick.path;
}

async function pickMany(ctx: Ctx, title: string, placeHolder: string): Promise<string[] | undefined> {
  const entries = await ctx.store.ready();
  // Chat-vector folders first: that is what this list is for.
  const sorted = [...entries].sort((x, y) => Number(y.vector) - Number(x.vector) || x.label.localeCompare(y.label));
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

async function inspectOf(ctx: Ctx, p: string): Promise<InspectReport> {
  return ctx.store.find(p)?.report ?? ctx.host.inspect(p);
}

function siblingPath(of: string, suffix: string): string {
  const dir = path.dirname(of);
  const stem = path.basename(of).replace(/\.safetensors$/, '');
  let candidate = path.join(dir, `${stem}${suffix}`);
  for (let i = 2; fs.existsSync(candidate); i++) candidate = path.join(dir, `${stem}${suffix}-${i}`);
  return candidate;
}

export async function askOutput(title: string, suggestion: string): Promise<string | undefined> {
  return vscode.window.showInputBox({
    title,
    prompt: 'Output folder (written atomically: nothing appears there until the job has finished)',
    value: suggestion,
    valueSelection: [suggestion.length - path.basename(suggestion).length, suggestion.length],
    ignoreFocusOut: true,
    validateInput: (v) => {
      if (!v.trim()) return 'Enter a folder.';
      if (!path.isAbsolute(v.trim())) return 'Enter an absolute path.';
      if (fs.existsSync(v.trim())) return { message: 'This folder exists and would be replaced.', severity: vscode.InputBoxValidationSeverity.Warning };
      return undefined;
    },
  });
}

export async function confirmOverwrite(out: string): Promise<boolean | undefined> {
  if (!fs.existsSync(out)) return false;
  // The task host decides what may be replaced (core/io/outputGuard.ts): an empty folder or an
  // earlier Chat Vector output; anything else is refused and left untouched.
  const ok = await vscode.window.showWarningMessage(`${out} exists. Replace it?`, { modal: true, detail: 'Only an empty folder or an earlier Chat Vector output is replaced. Anything else (an input model, a folder with other files) is refused and left as it is.' }, 'Replace');
  return ok === 'Replace' ? true : undefined;
}

interface OptionPick extends vscode.QuickPickItem {
  readonly id: 'skipEmbed' | 'specialTokens';
}

/** Why embeddings should be skipped, or null when the vocabularies match. */
function vocabReason(target: InspectReport, other: InspectReport, otherName: string): string | null {
  if (target.vocabSize === null || other.vocabSize === null || target.vocabSize === other.vocabSize) return null;
  return `vocabularies differ: target ${target.vocabSize} tokens, ${otherName} ${other.vocabSize}; embeddings and LM head are then taken from the target`;
}

function skipDefault(s: Settings, reason: string | null): boolean {
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
  let a = pathOf(arg);
  let b: string | null | undefined = pathOf(second);
  if (!a) {
    a = (await pickCheckpoint(ctx, { title: 'Compare Checkpoints (1/2)', placeHolder: 'Checkpoint A (the reference, e.g. the base model)', prefer: 'base' })) ?? undefined;
    if (!a) return undefined;
  }
  if (b === undefined) {
    b = await pickCheckpoint(ctx, {
      title: 'Compare Checkpoints (2/2)',
      placeHolder: `Compare ${path.basename(a)} with…`,
      prefer: ctx.roles.roleOf(a) === 'chat' ? 'base' : 'chat',
      exclude: [a],
      // Only a chat-vector folder (chatvector.json, written by extract) can be shown alone.
      ...(isChatVectorFolder(ctx, a) ? { none: `$(symbol-operator) Nothing: ${path.basename(a)} is a chat vector, show its own magnitudes` } : {}),
    });
    if (b === undefined) return undefined;
  }
  return ctx.compare(a, b);
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
    o = { base: arg.base, chat: arg.chat, out: arg.out, skipEmbed: arg.skipEmbed, overwrite: arg.overwrite, ...jobCommon(s), ...(s.outputDtype !== 'auto' ? { dtype: s.outputDtype } : {}) };
  } else {
    const title = 'Extract Chat Vector';
    const base = await pickCheckpoint(ctx, { title: `${title} (1/4)`, placeHolder: 'Base model (the chat model was fine-tuned from it)', prefer: 'base' });
    if (!base) return undefined;
    const chat = await pickCheckpoint(ctx, { title: `${title} (2/4)`, placeHolder: 'Chat model', prefer: 'chat', exclude: [base] });
    if (!chat) return undefined;
    const [rb, rc] = await Promise.all([inspectOf(ctx, base), inspectOf(ctx, chat)]);
    const reason = vocabReason(rb, rc, 'chat');
    const opts = await vscode.window.showQuickPick<OptionPick>(
      [{ id: 'skipEmbed', label: 'Skip embeddings', description: 'leave embed_tokens and lm_head out of the vector', detail: reason ?? 'The vocabularies match.', picked: skipDefault(s, reason) }],
      { title: `${title} (3/4)`, placeHolder: 'Options (Enter to continue)', canPickMany: true, ignoreFocusOut: true },
    );
    if (!opts) return undefined;
    const out = await askOutput(`${title} (4/4)`, siblingPath(chat, '-vector'));
    if (!out) return undefined;
    const overwrite = await confirmOverwrite(out.trim());
    if (overwrite === undefined) return undefined;
    o = { base, chat, out: out.trim(), overwrite, skipEmbed: opts.some((x) => x.id === 'skipEmbed'), ...jobCommon(s), ...(s.outputDtype !== 'auto' ? { dtype: s.outputDtype } : {}) };
  }
  const r = await ctx.jobs.run('extract', `Extracting chat vector ${path.basename(o.out)}`, o);
  finished(ctx, r, o.out, 'Chat vector extracted', null);
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
    o = asked;
  }
  const r = await ctx.jobs.run('apply', `Applying chat vector to ${path.basename(o.target)}`, o);
  finished(ctx, r, o.out, 'Chat vector applied', o.target);
  return r;
}

async function askApply(ctx: Ctx, s: Settings, preTarget?: string): Promise<ApplyOptions | undefined> {
  const title = 'Apply Chat Vector';
  const target =
    preTarget ?? (await pickCheckpoint(ctx, { title: `${title} (1/5)`, placeHolder: 'Target: the continually-pretrained model that should learn to chat', prefer: 'target' }));
  if (!target) return undefined;

  interface SourcePick extends vscode.QuickPickItem {
    readonly id: 'fused' | 'vectors';
  }
  const base = ctx.roles.get('base');
  const chat = ctx.roles.get('chat');
  const source = await vscode.window.showQuickPick<SourcePick>(
    [
      { id: 'fused', label: '$(merge) From a base model and chat model(s)', detail: base && chat ? `${path.basename(base)} → ${path.basename(chat)} (Base and Chat in the Checkpoints view)` : 'τ = chat − base is computed on the fly; nothing extra is written' },
      { id: 'vectors', label: '$(symbol-operator) From extracted chat vector folder(s)', detail: 'folders written by "Extract Chat Vector…"' },
    ],
    { title: `${title} (2/5)`, placeHolder: 'Where does the chat vector come from?', ignoreFocusOut: true },
  );
  if (!source) return undefined;

  let vectors: string[] | undefined;
  let baseSel: string | undefined;
  let chats: string[] | undefined;
  let chatForTokens: string | undefined;
  if (source.id === 'fused') {
    baseSel = (await pickCheckpoint(ctx, { title: `${title}: base model`, placeHolder: 'Base model', prefer: 'base', exclude: [target] })) ?? undefined;
    if (!baseSel) return undefined;
    const c = await pickCheckpoint(ctx, { title: `${title}: chat model`, placeHolder: 'Chat model (fine-tuned from the base)', prefer: 'chat', exclude: [target, baseSel] });
    if (!c) return undefined;
    chats = [c];
    chatForTokens = c;
  } else {
    vectors = await pickMany(ctx, `${title}: chat vectors`, 'One or more chat-vector folders (each gets its own ratio)');
    if (!vectors) return undefined;
    chatForTokens = chat;
  }
  const n = vectors?.length ?? chats?.length ?? 1;

  const ratioText = await vscode.window.showInputBox({
    title: `${title} (3/5)`,
    prompt: n > 1 ? `Ratio for each of the ${n} vectors, comma-separated (or one for all)` : 'Ratio r in θ_out = θ_target + r·τ (the paper also uses 0.5 against answers in the wrong language)',
    value: String(s.defaultRatio),
    ignoreFocusOut: true,
    validateInput: (v) => {
      const r = parseRatios(v);
      if (!r) return 'Enter numbers separated by commas, e.g. 1 or 0.5, 0.5.';
      if (r.length !== 1 && r.length !== n) return `Enter one ratio or ${n}.`;
      return undefined;
    },
  });
  if (ratioText === undefined) return undefined;
  const ratios = parseRatios(ratioText)!;

  // Options: what the inputs say (vocabulary sizes, untrained special tokens), pre-selected.
  const tReport = await inspectOf(ctx, target);
  const other = chats?.[0] ?? vectors?.[0];
  const oReport = other ? await inspectOf(ctx, other).catch(() => undefined) : undefined;
  const reason = oReport ? vocabReason(tReport, oReport, chats ? 'chat' : 'vector') : null;
  const items: OptionPick[] = [{ id: 'skipEmbed', label: 'Skip embeddings', description: 'take embed_tokens and lm_head from the target', detail: reason ?? 'The vocabularies match.', picked: skipDefault(s, reason) }];
  let tokenMap: [number, number][] = [];
  if (chatForTokens) {
    const rows = await untrainedSpecialTokens(chatForTokens, tReport, ctx.host.api).catch((e: unknown) => {
      ctx.log.warn(`special-token check: ${String(e)}`);
      return [];
    });
    if (rows.length) {
      tokenMap = rows.map((r) => [r.targetId, r.chatId]);
      items.push({
        id: 'specialTokens',
        label: `Map ${rows.length} special token${rows.length > 1 ? 's' : ''} from the chat model`,
        description: rows.map((r) => r.token).join(' '),
        detail: `The chat template uses them, but their rows in the target are near zero (untrained): ${rows.map((r) => `${r.token} id ${r.targetId} ← ${r.chatId}`).join(', ')}`,
        picked: true,
      });
    }
  }
  const picked = await vscode.window.showQuickPick<OptionPick>(items, { title: `${title} (4/5)`, placeHolder: 'Options (Enter to continue)', canPickMany: true, ignoreFocusOut: true });
  if (!picked) return undefined;

  const out = await askOutput(`${title} (5/5)`, siblingPath(target, '-chat'));
  if (!out) return undefined;
  const overwrite = await confirmOverwrite(out.trim());
  if (overwrite === undefined) return undefined;
  return {
    target,
    ...(vectors ? { vectors } : { base: baseSel, chats }),
    ratios,
    out: out.trim(),
    overwrite,
    skipEmbed: picked.some((p) => p.id === 'skipEmbed'),
    ...(picked.some((p) => p.id === 'specialTokens') ? { specialTokens: tokenMap } : {}),
    ...jobCommon(s),
    ...(s.outputDtype !== 'auto' ? { dtype: s.outputDtype } : {}),
  };
}

export function parseRatios(v: string): number[] | undefined {
  const nums = v.split(',').map(parseDecimal);
  return nums.every((x): x is number => x !== null) ? nums : undefined;
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
