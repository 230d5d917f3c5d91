/**
 * Chat Vector for VS Code: checkpoints in the workspace, layer deltas as a tree and a chart, and
 * chat-vector jobs with progress. Everything whose cost grows with model size runs in the task
 * host (src/taskhost), a separate process this extension talks to through TaskHostClient.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ChartPanel } from './chart';
import { CheckpointsProvider, CheckpointStore } from './checkpoints';
import { groupKeyOf, registerCommands } from './commands';
import { evalCommon } from './perplexity';
import { sweepPanel } from './sweepFlow';
import { readSettings } from './config';
import type { Ctx } from './ctx';
import { Comparison, type DeltaNode, DeltasProvider } from './deltas';
import { Wizard } from './wizard';
import { deltaViewDescription } from '../protocol/displayFormat';
import { Disposable } from './dispose';
import { TaskHostService } from './host';
import { InspectDocuments, INSPECT_SCHEME } from './inspectDoc';
import { JobRunner } from './jobs';
import { RecipeFeatures } from './recipes';
import { RoleStore } from './roles';
import { formatVerdict } from '../protocol/verdictText';
import { TryModelPanels } from './tryPanel';

const LAST_COMPARISON = 'chatVector.lastComparison';

/**
 * What activate() returns. It is not a stable API for other extensions: the e2e tests use it to
 * look at the extension's state inside the real extension host.
 */
export interface ChatVectorApi {
  readonly ctx: Ctx;
  /** Errors the command wrapper reported, newest last. */
  readonly errors: readonly { id: string; message: string }[];
  /** The title of the multi-step input on screen, e.g. "Apply Chat Vector (3/5)" (for the tests). */
  readonly stepTitle: () => string | undefined;
}

class ChatVectorExtension extends Disposable implements Ctx {
  readonly log: vscode.LogOutputChannel;
  readonly host: TaskHostService;
  readonly jobs: JobRunner;
  readonly store: CheckpointStore;
  readonly roles: RoleStore;
  readonly checkpointsView: CheckpointsProvider;
  readonly deltas: DeltasProvider;
  readonly deltaView: vscode.TreeView<DeltaNode>;
  readonly chart: ChartPanel;
  readonly recipes: RecipeFeatures;
  readonly tryModel: TryModelPanels;
  readonly errors: { id: string; message: string }[] = [];

  constructor(readonly context: vscode.ExtensionContext) {
    super();
    this.log = this.register(vscode.window.createOutputChannel('Chat Vector', { log: true }));
    this.host = this.register(new TaskHostService(context.asAbsolutePath(path.join('dist', 'taskhost.js')), this.log));
    this.jobs = this.register(new JobRunner(this.host));
    this.roles = this.register(new RoleStore(context.workspaceState));
    this.store = this.register(new CheckpointStore(this.host, this.log));
    this.checkpointsView = this.register(new CheckpointsProvider(this.store, this.roles));
    this.register(vscode.window.createTreeView('chatVector.checkpoints', { treeDataProvider: this.checkpointsView, showCollapseAll: false }));

    this.deltas = this.register(new DeltasProvider(context.extensionUri));
    this.deltaView = this.register(vscode.window.createTreeView('chatVector.deltas', { treeDataProvider: this.deltas, showCollapseAll: true }));
    // The view says how its rows are ordered and measured (the title-bar icons only offer the other choice).
    const describeView = () => (this.deltaView.description = this.deltas.comparison ? deltaViewDescription(this.deltas.sort, this.deltas.mode, this.deltas.energy?.report.rank) : undefined);
    this.register(this.deltas.onDidChangeTreeData(describeView));
    describeView();
    this.chart = this.register(
      new ChartPanel(context.extensionUri, {
        log: this.log,
        restore: (a, b) => {
          // The restored panel names what it showed; that wins over the workspace's last pair.
          this.chartRestoring = true;
          return this.compare(a, b, { quiet: true, reveal: false });
        },
        select: (key) => void vscode.commands.executeCommand('chatVector.revealLayer', key),
        mode: (m) => this.deltas.setValueMode(m),
      }),
    );
    // Tree selection → chart highlight.
    this.register(
      this.deltaView.onDidChangeSelection((e) => {
        const n = e.selection[0];
        if (n) this.chart.reveal(groupKeyOf(n));
      }),
    );
    // Reopening the view shows the last comparison again (from the host's cache: instant).
    this.register(
      this.deltaView.onDidChangeVisibility((e) => {
        if (e.visible) void this.restoreLast();
      }),
    );
    if (this.deltaView.visible) void this.restoreLast();

    this.recipes = this.register(new RecipeFeatures(context, this.host, this.log));
    // Model folders a recipe names may have appeared (a demo, a finished merge) or gone.
    this.register(this.store.onDidChange(() => this.recipes.diagnostics.recheckAll()));

    // The ratio-sweep panel, now: its serializer restores it after a reload.
    sweepPanel(this);
    // Chat panels: their models run in the task host's chat sessions.
    this.tryModel = this.register(
      new TryModelPanels({
        log: this.log,
        extensionUri: context.extensionUri,
        client: () => this.host.api,
        openOptions: () => evalCommon(this),
      }),
    );

    this.register(vscode.workspace.registerTextDocumentContentProvider(INSPECT_SCHEME, new InspectDocuments((p) => this.host.inspect(p))));
    for (const d of registerCommands(this, (id, message) => this.errors.push({ id, message }))) this.register(d);
    this.register(vscode.workspace.onDidGrantWorkspaceTrust(() => this.log.info('workspace trusted: writing jobs enabled')));
    this.log.info(`Chat Vector activated (${vscode.workspace.isTrusted ? 'trusted' : 'Restricted Mode: writing jobs disabled'})`);
  }

  cacheDir(): string {
    const s = readSettings();
    // Per workspace by default (results belong to its checkpoints); global when no folder is open.
    return s.cacheLocation || path.join((this.context.storageUri ?? this.context.globalStorageUri).fsPath, 'diff-cache');
  }

  private restoring = false;
  private chartRestoring = false;
  /** Increases with every compare(); a result that is no longer the newest is not shown. */
  private compareSeq = 0;

  private async restoreLast(): Promise<void> {
    if (this.deltas.comparison || this.restoring || this.chartRestoring) return;
    const last = this.context.workspaceState.get<{ a: string; b: string | null }>(LAST_COMPARISON);
    if (!last) return;
    this.restoring = true;
    try {
      await this.compare(last.a, last.b, { quiet: true, reveal: false });
    } catch (e) {
      this.log.warn(`could not restore the last comparison: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      this.restoring = false;
    }
  }

  async compare(a: string, b: string | null, opts: { quiet?: boolean; reveal?: boolean } = {}): Promise<Comparison | undefined> {
    const s = readSettings();
    const seq = ++this.compareSeq;
    const title = b ? `Comparing ${path.basename(a)} with ${path.basename(b)}` : `Measuring chat vector ${path.basename(a)}`;
    const r = await this.jobs.run(
      'diff',
      title,
      { a, ...(b ? { b } : {}), cacheDir: this.cacheDir(), ...(s.threads ? { threads: s.threads } : {}), backend: s.computeBackend },
      { quiet: opts.quiet },
    );
    if (r.status === 'cancelled') return undefined;
    if (seq !== this.compareSeq) {
      // A newer comparison was asked for while this one ran (e.g. a restore racing a click).
      this.log.debug(`diff ${a} → ${b ?? '(vector)'} finished after a newer one; not shown`);
      return new Comparison(r.result);
    }
    const c = this.deltas.show(r.result);
    await this.context.workspaceState.update(LAST_COMPARISON, { a, b });
    this.log.info(`diff ${a} → ${b ?? '(vector)'}: ${formatVerdict(r.result.lineage)}${r.result.fromCache ? ' (cached)' : ''}`);
    if (c) {
      if (this.chart.isOpen) this.chart.show(c.chartData(), this.deltas.mode);
      // The model row is created expanded; focusing the view is enough (a reveal() right after
      // the data changed can race the tree's refresh and fail with "node not found").
      if (opts.reveal !== false) await vscode.commands.executeCommand('chatVector.deltas.focus');
    }
    return c;
  }

  get api(): ChatVectorApi {
    return { ctx: this, errors: this.errors, stepTitle: () => Wizard.shown };
  }

  /** Stops the task host gracefully (VS Code waits for this promise on deactivate). */
  async shutdown(): Promise<void> {
    // Await the client's own shutdown first: disposing the session store would start it without
    // waiting, and a second dispose() returns at once.
    const client = this.host.pid !== undefined ? this.host.api : undefined;
    await client?.dispose().catch(() => undefined);
    this.dispose();
  }
}

let instance: ChatVectorExtension | undefined;

export function activate(context: vscode.ExtensionContext): ChatVectorApi {
  instance = new ChatVectorExtension(context);
  return instance.api;
}

export async function deactivate(): Promise<void> {
  const i = instance;
  instance = undefined;
  await i?.shutdown();
}
