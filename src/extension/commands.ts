/**
 * Every command of the extension in one table, each registered through one wrapper that logs,
 * turns errors into one message with "Show Log", and refuses file-writing commands in Restricted
 * Mode (the manifest's `when` clauses hide them there too; this check covers keybindings and
 * other extensions calling them).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from './ctx';
import type { DeltaNode } from './deltas';
import { applyFlow, compareFlow, demoFlow, extractFlow, ShownError } from './flows';
import { pathOf, pickCheckpoint } from './flowSteps';
import type { Role } from './roles';
import { inspectMarkdown, INSPECT_SCHEME } from './inspectDoc';
import { compareInputsFlow, dryRunFlow, runMergeFlow } from './recipes/flows';
import { downloadModelFlow } from './hubDownload';
import { showEnergyFlow } from './deltaEnergy';
import { uiErrorText } from '../protocol/jobText';
import { evaluatePerplexityFlow } from './perplexity';
import { sweepRatiosFlow } from './sweepFlow';
import { compareRepliesFlow, tryModelFlow } from './tryModel';

interface CommandSpec {
  /** Writes files: disabled in Restricted Mode. */
  readonly writes?: boolean;
  readonly run: (ctx: Ctx, ...args: unknown[]) => unknown;
}

const setRole = (role: Role) => async (ctx: Ctx, arg?: unknown) => {
  const p =
    pathOf(arg) ??
    (await pickCheckpoint(ctx, { title: `Set as ${role[0]!.toUpperCase()}${role.slice(1)}`, placeHolder: 'Checkpoint', prefer: role })) ??
    undefined;
  if (!p) return;
  // From the Explorer any folder can be chosen: only a readable checkpoint gets a role.
  if (!ctx.store.find(p)?.report) await ctx.host.inspect(p);
  await ctx.roles.set(role, p);
  ctx.store.scheduleRefresh(0);
};

/** The checked twin of "Set as <role>" on the checkpoint that holds it: clicking it clears the role. */
const unsetRole = (role: Role) => async (ctx: Ctx, arg?: unknown) => {
  const p = pathOf(arg);
  if (p && ctx.roles.get(role) === p) await ctx.roles.set(role, undefined);
};

export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  'chatVector.extractChatVector': { writes: true, run: (ctx, arg) => extractFlow(ctx, arg) },
  'chatVector.applyChatVector': { writes: true, run: (ctx, arg) => applyFlow(ctx, arg) },
  'chatVector.compareCheckpoints': { run: (ctx, a, b) => compareFlow(ctx, a, b) },
  'chatVector.createDemoCheckpoints': { writes: true, run: (ctx, arg) => demoFlow(ctx, arg) },
  'chatVector.downloadModel': { writes: true, run: (ctx, arg) => downloadModelFlow(ctx, arg) },
  'chatVector.cancelJob': { run: (ctx, id) => ctx.jobs.cancel(typeof id === 'string' ? id : undefined) },
  'chatVector.showJobs': { run: (ctx) => ctx.jobs.showJobs(ctx.log) },
  'chatVector.showTaskHostLog': { run: (ctx) => ctx.log.show(true) },
  'chatVector.restartTaskHost': {
    run: async (ctx) => {
      await ctx.host.restart();
      void vscode.window.showInformationMessage(`Chat Vector: background process restarted (pid ${ctx.host.pid ?? '?'}).`);
    },
  },

  // Try the result: perplexity of models on a text, and the ratio sweep (both write GGUF conversions to the cache)
  'chatVector.evaluatePerplexity': { writes: true, run: (ctx, arg) => evaluatePerplexityFlow(ctx, arg) },
  'chatVector.sweepRatios': { writes: true, run: (ctx, arg) => sweepRatiosFlow(ctx, arg) },

  // Checkpoints view
  'chatVector.refreshCheckpoints': { run: (ctx) => ctx.store.refresh() },
  'chatVector.setAsBase': { run: setRole('base') },
  'chatVector.setAsChat': { run: setRole('chat') },
  'chatVector.setAsTarget': { run: setRole('target') },
  'chatVector.unsetAsBase': { run: unsetRole('base') },
  'chatVector.unsetAsChat': { run: unsetRole('chat') },
  'chatVector.unsetAsTarget': { run: unsetRole('target') },
  'chatVector.clearRole': {
    run: async (ctx, arg) => {
      const p = pathOf(arg);
      if (p) await ctx.roles.clear(p);
    },
  },
  'chatVector.inspectCheckpoint': {
    run: async (ctx, arg) => {
      const p = pathOf(arg) ?? (await pickCheckpoint(ctx, { title: 'Inspect Checkpoint', placeHolder: 'Checkpoint' })) ?? undefined;
      if (!p) return undefined;
      const report = await ctx.host.inspect(p);
      const uri = vscode.Uri.from({ scheme: INSPECT_SCHEME, path: `/${path.basename(p)}.md`, query: new URLSearchParams({ path: p }).toString() });
      // Rendered, not the Markdown source; the source only where the built-in preview is missing.
      try {
        await vscode.commands.executeCommand('markdown.showPreview', uri);
      } catch {
        await vscode.window.showTextDocument(uri, { preview: true });
      }
      return inspectMarkdown(report);
    },
  },
  'chatVector.compareWith': {
    run: async (ctx, arg) => {
      const a = pathOf(arg);
      if (!a) return compareFlow(ctx);
      return compareFlow(ctx, a);
    },
  },
  'chatVector.compareBaseAndChat': {
    run: async (ctx) => {
      const a = ctx.roles.get('base');
      const b = ctx.roles.get('chat');
      return a && b ? ctx.compare(a, b) : compareFlow(ctx);
    },
  },

  // Try Model (chat panels; writes: a checkpoint is converted into the cache, see tryModel.ts)
  'chatVector.tryModel': { writes: true, run: (ctx, arg) => tryModelFlow(ctx, arg) },
  'chatVector.compareReplies': { writes: true, run: (ctx, a, b) => compareRepliesFlow(ctx, a, b) },

  // Merge recipes (CodeLens, editor menus)
  'chatVector.runMerge': { writes: true, run: (ctx, arg) => runMergeFlow(ctx, arg) },
  'chatVector.dryRunMerge': { run: (ctx, arg) => dryRunFlow(ctx, arg) },
  'chatVector.compareRecipeInputs': { run: (ctx, arg) => compareInputsFlow(ctx, arg) },

  // Layer Deltas view
  'chatVector.refreshDeltas': {
    run: async (ctx) => {
      const c = ctx.deltas.comparison;
      if (c) return ctx.compare(c.report.a, c.report.b);
      return undefined;
    },
  },
  /** An R argument (a number) skips the input box (tests, keybindings). */
  'chatVector.showEnergyAtRank': { run: (ctx, rank) => showEnergyFlow(ctx, rank) },
  'chatVector.hideEnergy': { run: (ctx) => ctx.deltas.showEnergy(undefined) },
  'chatVector.sortByOrder': { run: (ctx) => ctx.deltas.setSort('order') },
  'chatVector.sortByMagnitude': { run: (ctx) => ctx.deltas.setSort('magnitude') },
  'chatVector.showRelative': { run: (ctx) => setMode(ctx, 'relative') },
  'chatVector.showAbsolute': { run: (ctx) => setMode(ctx, 'absolute') },
  'chatVector.openChart': {
    run: (ctx) => {
      const c = ctx.deltas.comparison;
      ctx.chart.open(c?.chartData(), ctx.deltas.mode);
      const sel = ctx.deltaView.selection[0];
      if (sel) ctx.chart.reveal(groupKeyOf(sel));
    },
  },
  'chatVector.saveChartPng': {
    run: async (ctx, target?: unknown) => {
      const uri = target instanceof vscode.Uri ? target : await ctx.chart.askTarget('png');
      if (!uri) return undefined;
      await vscode.workspace.fs.writeFile(uri, await ctx.chart.renderPng());
      return uri;
    },
  },
  'chatVector.saveChartCsv': {
    run: async (ctx, target?: unknown) => {
      const uri = target instanceof vscode.Uri ? target : await ctx.chart.askTarget('csv');
      if (!uri) return undefined;
      await vscode.workspace.fs.writeFile(uri, Buffer.from(ctx.chart.csv(), 'utf8'));
      return uri;
    },
  },
  /** From the chart: select a group in the tree. */
  'chatVector.revealLayer': {
    run: async (ctx, key: unknown) => {
      const node = typeof key === 'string' ? ctx.deltas.comparison?.group(key) : undefined;
      if (!node) return false;
      try {
        await ctx.deltaView.reveal(node, { select: true, focus: false, expand: true });
      } catch {
        // The tree may still be rendering a comparison that just arrived: try once more.
        await new Promise((r) => setTimeout(r, 300));
        await ctx.deltaView.reveal(node, { select: true, focus: false, expand: true });
      }
      return true;
    },
  },
};

function setMode(ctx: Ctx, mode: 'relative' | 'absolute'): void {
  ctx.deltas.setValueMode(mode);
  const c = ctx.deltas.comparison;
  if (c && ctx.chart.isOpen) ctx.chart.show(c.chartData(), mode);
}

export function groupKeyOf(n: DeltaNode): string | null {
  return n.kind === 'group' ? n.key : n.kind === 'tensor' ? n.parent.key : null;
}

/** Registers the table. `onError` is given each reported error (for tests and the status line). */
export function registerCommands(ctx: Ctx, onError: (id: string, message: string) => void): vscode.Disposable[] {
  return Object.entries(COMMANDS).map(([id, spec]) =>
    vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      if (spec.writes && !vscode.workspace.isTrusted) {
        const msg = 'Chat Vector: this command writes files, which is disabled in Restricted Mode. Trust the workspace to run it; inspection and layer deltas work without trust.';
        ctx.log.warn(`${id}: refused in Restricted Mode`);
        void vscode.window.showWarningMessage(msg, 'Manage Workspace Trust').then((p) => p && vscode.commands.executeCommand('workbench.trust.manage'));
        return undefined;
      }
      const t0 = Date.now();
      ctx.log.debug(`${id} started`);
      try {
        const r = await spec.run(ctx, ...args);
        ctx.log.debug(`${id} finished in ${Date.now() - t0} ms`);
        return r;
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        const details = e instanceof Error ? ((e as { details?: string }).details ?? e.stack) : undefined;
        ctx.log.error(`${id} failed: ${message}${details ? `\n${details}` : ''}`);
        onError(id, message);
        // A flow that offered its own recovery has shown the error already.
        if (e instanceof ShownError) return undefined;
        void vscode.window.showErrorMessage(`Chat Vector: ${uiErrorText(message)}`, 'Show Log').then((p) => p && ctx.log.show(true));
        return undefined;
      }
    }),
  );
}
