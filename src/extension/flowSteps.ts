/**
 * The steps the guided flows share (flows.ts runs them, guided.ts builds the multi-step inputs from
 * them): what a command's argument names, checkpoint pick lists, output folders, option texts and
 * job settings. Its own module so that flows.ts and guided.ts do not import each other.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ApplyOptions, ExtractOptions, InspectReport } from '../protocol/taskHost';
import { type CheckpointEntry, adapterLabel, displayName, dtypeSummary } from './checkpoints';
import type { Settings } from './config';
import type { Ctx } from './ctx';
import { ROLE_LABEL, type Role } from './roles';
import { formatBytes, formatCount, parseDecimal } from '../protocol/displayFormat';

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

export const isObj = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object' && !(x instanceof vscode.Uri);
export const isCompareArgs = (x: unknown): x is CompareArgs => isObj(x) && typeof x.a === 'string';
export const isExtractArgs = (x: unknown): x is ExtractArgs => isObj(x) && typeof x.base === 'string' && typeof x.chat === 'string' && typeof x.out === 'string';
export const isApplyArgs = (x: unknown): x is ApplyArgs => isObj(x) && typeof x.target === 'string' && typeof x.out === 'string';

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


export function parseRatios(v: string): number[] | undefined {
  const nums = v.split(',').map(parseDecimal);
  return nums.every((x): x is number => x !== null) ? nums : undefined;
}
