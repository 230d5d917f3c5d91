/**
 * Evaluate Perplexity…: one `evalModel` job per model in the task host (GGUF conversion into the
 * cache, then llama.cpp over sliding windows, with progress and Cancel), and the results of all
 * models in one table (a Markdown preview; protocol/evalText.ts formats it, as `chatvec eval`
 * formats its numbers). Also the steps the ratio sweep shares: the text file and the windows.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { formatEvalMarkdown } from '../protocol/evalText';
import type { EvalOptions, EvalReport } from '../protocol/taskHost';
import { readSettings } from './config';
import type { Ctx } from './ctx';
import { displayName } from './checkpoints';
import { isObj, pathOf } from './flowSteps';

/** What the command takes as an argument (tests, keybindings): the text, the models, optional windows. */
export interface PerplexityArgs {
  readonly text: string;
  readonly models: readonly string[];
  readonly context?: number;
  readonly stride?: number;
}
const isPerplexityArgs = (x: unknown): x is PerplexityArgs => isObj(x) && typeof x.text === 'string' && Array.isArray(x.models);

/** The result of the command: every finished report, the table shown, and whether the user cancelled. */
export interface PerplexityResult {
  readonly reports: readonly EvalReport[];
  readonly markdown: string;
  readonly cancelled: boolean;
}

/** Text files the palette offers: those of the workspace (up to 200) and Browse…. */
export async function pickTextFile(title: string): Promise<string | undefined> {
  type Item = vscode.QuickPickItem & { path?: string };
  const active = vscode.window.activeTextEditor?.document;
  const files = await vscode.workspace.findFiles('**/*.{txt,md,text}', '**/{node_modules,.git}/**', 200);
  const items: Item[] = files
    .map((u) => u.fsPath)
    .sort((a, b) => Number(b === active?.uri.fsPath) - Number(a === active?.uri.fsPath) || a.localeCompare(b))
    .map((p) => ({ label: path.basename(p), description: vscode.workspace.asRelativePath(p), path: p }));
  items.push({ label: '$(folder-opened) Browse…', alwaysShow: true });
  const pick = await vscode.window.showQuickPick(items, { title, placeHolder: 'The text to score (e.g. in the new language)', matchOnDescription: true, ignoreFocusOut: true });
  if (!pick) return undefined;
  if (pick.path) return pick.path;
  const uris = await vscode.window.showOpenDialog({ title, canSelectFiles: true, canSelectFolders: false, canSelectMany: false });
  return uris?.[0]?.fsPath;
}

/**
 * The windows: the CLI's defaults (context = the training context up to 1024, stride = half),
 * or a custom "context/stride". Undefined when dismissed.
 */
export async function pickWindows(title: string): Promise<{ context?: number; stride?: number } | undefined> {
  const items = [
    { label: 'Default windows', description: 'as chatvec eval', detail: 'context: training context, at most 1024; stride: half', custom: false },
    { label: 'Custom context and stride…', detail: 'e.g. 512/512 for windows that do not overlap', custom: true },
  ];
  const pick = await vscode.window.showQuickPick(items, { title, placeHolder: 'Sliding windows over the text', ignoreFocusOut: true });
  if (!pick) return undefined;
  if (!pick.custom) return {};
  const v = await vscode.window.showInputBox({
    title,
    prompt: 'Context/stride in tokens (stride ≤ context)',
    value: '1024/512',
    ignoreFocusOut: true,
    validateInput: (s) => (parseWindows(s) ? undefined : 'Enter two whole numbers ≥ 1, e.g. 1024/512, the stride at most the context.'),
  });
  return v === undefined ? undefined : (parseWindows(v) ?? undefined);
}

/** "1024/512" → { context: 1024, stride: 512 }; null when malformed or stride > context. */
export function parseWindows(s: string): { context: number; stride: number } | null {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(s);
  if (!m) return null;
  const [context, stride] = [Number(m[1]), Number(m[2])];
  return context >= 1 && stride >= 1 && stride <= context ? { context, stride } : null;
}

/** Checkpoints of the Checkpoints view (models, not chat vectors) and the workspace's .gguf files; several may be picked. */
async function pickModels(ctx: Ctx, title: string): Promise<string[] | undefined> {
  type Item = vscode.QuickPickItem & { path?: string };
  const entries = (await ctx.store.ready()).filter((e) => !e.vector && !e.adapter);
  const ggufs = await vscode.workspace.findFiles('**/*.gguf', '**/{node_modules,.git}/**', 100);
  const target = ctx.roles.get('target');
  const items: Item[] = [
    ...entries.map((e) => ({ label: displayName(e), description: ctx.roles.roleOf(e.path) ? `checkpoint · ${ctx.roles.roleOf(e.path)}` : 'checkpoint', path: e.path, picked: e.path === target })),
    ...ggufs.map((u) => ({ label: path.basename(u.fsPath), description: `GGUF · ${vscode.workspace.asRelativePath(u)}`, path: u.fsPath })),
    { label: '$(folder-opened) Browse…', alwaysShow: true },
  ];
  const picks = await vscode.window.showQuickPick(items, { title, placeHolder: 'Models to evaluate (the first is the one the others are compared with)', canPickMany: true, ignoreFocusOut: true });
  if (!picks?.length) return undefined;
  const out = picks.filter((p) => p.path).map((p) => p.path!);
  if (picks.some((p) => !p.path)) {
    const uris = await vscode.window.showOpenDialog({ title, canSelectFiles: true, canSelectFolders: true, canSelectMany: true, filters: { GGUF: ['gguf'] } });
    out.push(...(uris ?? []).map((u) => u.fsPath));
  }
  return out.length ? out : undefined;
}

/**
 * The options every llama.cpp job of the editor shares (Evaluate Perplexity, Sweep Ratios, Try
 * Model): the settings' backend and threads, and the cache folder, whose `gguf/` holds the
 * conversions, so each checkpoint is converted once for all of them.
 */
export function evalCommon(ctx: Pick<Ctx, 'cacheDir'>): Pick<EvalOptions, 'cacheDir' | 'backend' | 'threads'> {
  const s = readSettings();
  return { cacheDir: ctx.cacheDir(), backend: s.computeBackend, ...(s.threads ? { threads: s.threads } : {}) };
}

const EVAL_SCHEME = 'chatvector-eval';
const documents = new Map<string, string>();
let provider: vscode.Disposable | undefined;

/** Shows Markdown rendered (the source where the built-in preview is missing) under a read-only URI. */
async function showMarkdown(ctx: Ctx, name: string, markdown: string): Promise<void> {
  if (!provider) {
    const changed = new vscode.EventEmitter<vscode.Uri>();
    provider = vscode.workspace.registerTextDocumentContentProvider(EVAL_SCHEME, { onDidChange: changed.event, provideTextDocumentContent: (uri) => documents.get(uri.path) ?? '' });
    ctx.context.subscriptions.push(provider, changed);
  }
  const uri = vscode.Uri.from({ scheme: EVAL_SCHEME, path: `/${name}.md` });
  documents.set(uri.path, markdown);
  try {
    await vscode.commands.executeCommand('markdown.showPreview', uri);
  } catch {
    await vscode.window.showTextDocument(uri, { preview: true });
  }
}

/**
 * The command: the text file (the argument, the menu's file, or a pick), the models, the windows;
 * then one job per model, and the table. Cancel stops at the job under way; the finished reports
 * are still shown.
 */
export async function evaluatePerplexityFlow(ctx: Ctx, arg?: unknown): Promise<PerplexityResult | undefined> {
  const title = 'Evaluate Perplexity';
  let a: PerplexityArgs;
  if (isPerplexityArgs(arg)) {
    a = arg;
  } else {
    const text = pathOf(arg) ?? (await pickTextFile(title));
    if (!text) return undefined;
    const models = await pickModels(ctx, title);
    if (!models) return undefined;
    const windows = await pickWindows(title);
    if (!windows) return undefined;
    a = { text, models, ...windows };
  }
  const reports: EvalReport[] = [];
  let cancelled = false;
  for (const [i, model] of a.models.entries()) {
    const count = a.models.length > 1 ? ` (${i + 1}/${a.models.length})` : '';
    const r = await ctx.jobs.run('evalModel', `Evaluating ${path.basename(model)}${count}`, { model, text: a.text, ...(a.context ? { context: a.context } : {}), ...(a.stride ? { stride: a.stride } : {}), ...evalCommon(ctx) });
    if (r.status === 'cancelled') {
      cancelled = true;
      break;
    }
    reports.push(r.result);
    for (const w of r.result.warnings) ctx.log.warn(`${model}: ${w}`);
    ctx.log.info(`perplexity of ${model} on ${a.text}: mean NLL ${r.result.meanNll}, perplexity ${r.result.perplexity} (${r.result.scored} tokens, ${r.result.backend})`);
  }
  const markdown = reports.length ? formatEvalMarkdown(a.text, reports, (m) => path.basename(m)) : '';
  if (reports.length) await showMarkdown(ctx, `Perplexity of ${reports.length === 1 ? path.basename(reports[0]!.model) : `${reports.length} models`} on ${path.basename(a.text)}`, markdown);
  if (cancelled) void vscode.window.showInformationMessage(reports.length ? `Cancelled. ${reports.length} of ${a.models.length} models were evaluated; the table shows them.` : 'Cancelled. No model was evaluated.');
  return { reports, markdown, cancelled };
}
