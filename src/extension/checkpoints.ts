/**
 * Checkpoints in the workspace and the Checkpoints view. Discovery looks at file names only
 * (workspace.findFiles); each checkpoint's details come from the task host's `inspect`, which
 * reads headers only. Renames, new shards and finished jobs refresh the list through a watcher.
 * Models of the Hugging Face hub cache (the task host's `hubCacheList`) are entries too — roles,
 * compare, apply and pickers treat them as folders — shown under a collapsed "Hugging Face Cache"
 * section.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { formatBytes, formatCount, printable } from '../protocol/displayFormat';
import type { CachedModel, InspectReport } from '../protocol/taskHost';

type AdapterSummary = NonNullable<InspectReport['adapter']>;
import { Disposable } from './dispose';
import { ROLE_ICON, ROLE_LABEL, type Role, type RoleStore } from './roles';

export interface CheckpointEntry {
  readonly uri: vscode.Uri;
  /** Absolute file-system path of the folder or the single .safetensors file. */
  readonly path: string;
  /** Path relative to its workspace folder (or the base name outside any). */
  readonly label: string;
  readonly kind: 'folder' | 'file';
  /** A chat-vector folder written by extract (chatvector.json), not a model. */
  readonly vector: boolean;
  /** A PEFT LoRA adapter folder (adapter_config.json): usable as a chat vector. */
  readonly adapter?: boolean;
  /** Set for a model of the Hugging Face hub cache (the path is its snapshot folder). */
  readonly hub?: CachedModel;
  report?: InspectReport;
  error?: string;
}

export interface Inspector {
  inspect(path: string): Promise<InspectReport>;
  hubCacheList(): Promise<CachedModel[]>;
}

/** Files that make a checkpoint; anything under a dot-folder is skipped (atomic outputs are
 * written into `.name.partial-…` siblings and must not show up half-written). */
const INCLUDE = '**/{config.json,chatvector.json,adapter_config.json,*.safetensors,*.safetensors.index.json}';
const EXCLUDE = '{**/node_modules/**,**/.*/**}';

/** The dominant dtype of a checkpoint (by parameter count), e.g. "BF16" or "BF16+F32". */
export function dtypeSummary(r: InspectReport): string {
  const entries = Object.entries(r.dtypes).filter(([, n]) => (n ?? 0) > 0) as [string, number][];
  entries.sort((a, b) => b[1] - a[1]);
  return entries.map(([d]) => d).join('+') || '—';
}

export class CheckpointStore extends Disposable {
  private entries: CheckpointEntry[] = [];
  private readonly changed = this.register(new vscode.EventEmitter<void>());
  readonly onDidChange = this.changed.event;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  /** Inspect results by path, with the identity of the files they came from. */
  private readonly cache = new Map<string, { stamp: string; report?: InspectReport; error?: string }>();
  private discoveredOnce = false;

  constructor(
    private readonly inspector: Inspector,
    private readonly log: vscode.LogOutputChannel,
  ) {
    super();
    const watcher = this.register(vscode.workspace.createFileSystemWatcher(INCLUDE));
    const onFs = (uri: vscode.Uri) => {
      if (!isHidden(uri)) this.scheduleRefresh();
    };
    this.register(watcher.onDidCreate(onFs));
    this.register(watcher.onDidDelete(onFs));
    this.register(watcher.onDidChange(onFs));
    // Deleting or renaming a whole folder reports only the folder, which the pattern above does
    // not match: any create or delete re-runs discovery (debounced; file names only).
    const folders = this.register(vscode.workspace.createFileSystemWatcher('**/*', false, true, false));
    this.register(folders.onDidCreate(onFs));
    this.register(folders.onDidDelete(onFs));
    this.register(vscode.workspace.onDidChangeWorkspaceFolders(() => this.scheduleRefresh()));
    this.register({ dispose: () => clearTimeout(this.refreshTimer) });
  }

  get all(): readonly CheckpointEntry[] {
    return this.entries;
  }

  find(p: string): CheckpointEntry | undefined {
    return this.entries.find((e) => e.path === p);
  }

  /** Discovers at most once unless asked again; callers that need the list await this. */
  async ready(): Promise<readonly CheckpointEntry[]> {
    if (!this.discoveredOnce) await this.refresh();
    else if (this.running) await this.running;
    return this.entries;
  }

  /** Coalesces bursts of file events (a job writes many files) into one discovery. */
  scheduleRefresh(delayMs = 400): void {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => void this.refresh(), delayMs);
  }

  async refresh(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.discover();
      } while (this.again && !this.isDisposed);
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  private async discover(): Promise<void> {
    const files = await vscode.workspace.findFiles(INCLUDE, EXCLUDE, 20000);
    const byDir = new Map<string, vscode.Uri[]>();
    for (const f of files) {
      if (isHidden(f)) continue;
      const dir = path.dirname(f.fsPath);
      const list = byDir.get(dir) ?? [];
      list.push(f);
      byDir.set(dir, list);
    }
    const found: CheckpointEntry[] = [];
    for (const [dir, list] of byDir) {
      const names = list.map((u) => path.basename(u.fsPath));
      const shards = names.filter((n) => n.endsWith('.safetensors'));
      const hasIndex = names.some((n) => n.endsWith('.safetensors.index.json'));
      const vector = names.includes('chatvector.json');
      const adapter = names.includes('adapter_config.json');
      if (hasIndex || ((names.includes('config.json') || vector || adapter) && shards.length > 0)) {
        found.push({ ...entry(vscode.Uri.file(dir), 'folder', vector), ...(adapter ? { adapter } : {}) });
      } else {
        // Loose .safetensors files without a model folder around them (e.g. a LoRA-free delta).
        for (const u of list) if (u.fsPath.endsWith('.safetensors')) found.push(entry(u, 'file', false));
      }
    }
    found.sort((a, b) => a.label.localeCompare(b.label));
    await Promise.all(found.map((e) => this.inspectInto(e, list(byDir, e))));
    const hub = await this.hubEntries();
    this.entries = [...found, ...hub];
    this.discoveredOnce = true;
    this.log.info(`checkpoints: found ${found.length} in the workspace and ${hub.length} in the Hugging Face cache`);
    await vscode.commands.executeCommand('setContext', 'chatVector.hasCheckpoints', found.length > 0);
    // The Explorer's "Chat Vector" submenu appears only on these (`resourcePath in …`).
    await vscode.commands.executeCommand('setContext', 'chatVector.checkpointPaths', Object.fromEntries(found.map((e) => [e.uri.fsPath, true])));
    this.changed.fire();
  }

  /** The hub cache's models; a snapshot never changes under its commit, so each is inspected once. */
  private async hubEntries(): Promise<CheckpointEntry[]> {
    let models: CachedModel[];
    try {
      models = await this.inspector.hubCacheList();
    } catch (err) {
      this.log.warn(`Hugging Face cache: ${err instanceof Error ? err.message : String(err)}`);
      return [];
    }
    const entries = models.map((m): CheckpointEntry => ({ uri: vscode.Uri.file(m.path), path: m.path, label: `${m.repoId}@${m.revisions[0] ?? m.commit.slice(0, 12)}`, kind: 'folder', vector: false, hub: m }));
    await Promise.all(entries.map((e) => this.inspectInto(e, [])));
    return entries;
  }

  private async inspectInto(e: CheckpointEntry, files: vscode.Uri[]): Promise<void> {
    // Re-inspect only when a file of the checkpoint changed (size or mtime).
    const stats = await Promise.all(files.map(async (u) => vscode.workspace.fs.stat(u).then((s) => `${u.fsPath}:${s.size}:${s.mtime}`, () => `${u.fsPath}:?`)));
    const stamp = stats.sort().join('|');
    const hit = this.cache.get(e.path);
    if (hit && hit.stamp === stamp) {
      e.report = hit.report;
      e.error = hit.error;
      return;
    }
    try {
      e.report = await this.inspector.inspect(e.path);
      this.cache.set(e.path, { stamp, report: e.report });
    } catch (err) {
      e.error = err instanceof Error ? err.message : String(err);
      this.log.warn(`inspect ${e.path}: ${e.error}`);
      this.cache.set(e.path, { stamp, error: e.error });
    }
  }
}

function list(byDir: Map<string, vscode.Uri[]>, e: CheckpointEntry): vscode.Uri[] {
  return e.kind === 'file' ? [e.uri] : (byDir.get(e.path) ?? []);
}

function entry(uri: vscode.Uri, kind: 'folder' | 'file', vector: boolean): CheckpointEntry {
  return { uri, path: uri.fsPath, label: labelOf(uri), kind, vector };
}

/** The name shown for a checkpoint: its folder, "folder/file.safetensors" for a loose file, `org/name@rev` for the hub cache. */
export function displayName(e: CheckpointEntry): string {
  if (e.hub) return e.label;
  const base = path.basename(e.path);
  return e.kind === 'file' ? `${path.basename(path.dirname(e.path))}/${base}` : base;
}

export function labelOf(uri: vscode.Uri): string {
  const rel = vscode.workspace.asRelativePath(uri, (vscode.workspace.workspaceFolders?.length ?? 0) > 1);
  return rel === uri.fsPath ? path.basename(uri.fsPath) : rel;
}

/** True for paths inside a dot-folder of the workspace (temporary outputs, .git, caches). */
function isHidden(uri: vscode.Uri): boolean {
  const rel = vscode.workspace.asRelativePath(uri, false);
  return rel.split(/[\\/]/).some((seg) => seg.startsWith('.') && seg !== '.' && seg !== '..');
}

// ---------------------------------------------------------------------------------------------

export class CheckpointItem extends vscode.TreeItem {
  constructor(
    readonly entry: CheckpointEntry,
    role: Role | undefined,
  ) {
    super(printable(displayName(entry)), vscode.TreeItemCollapsibleState.None);
    this.id = entry.path;
    const r = entry.report;
    const parts: string[] = [];
    // Size facts first (they survive a narrow side bar); the role is the icon, the architecture is in the tooltip.
    if (r) parts.push(formatCount(r.parameterCount), dtypeSummary(r), formatBytes(r.fileBytes), ...(r.adapter ? [adapterLabel(r.adapter)] : entry.vector ? ['chat vector'] : []));
    else if (entry.error) parts.push(`⚠ ${printable(entry.error)}`);
    else parts.push('…');
    this.description = parts.join(' · ');
    const dir = entry.hub ? `commit ${entry.hub.commit.slice(0, 12)}` : path.dirname(entry.kind === 'file' ? path.dirname(entry.label) : entry.label);
    if (dir !== '.') this.description = `${this.description} — ${printable(dir)}`;
    this.iconPath = role
      ? new vscode.ThemeIcon(ROLE_ICON[role][0], new vscode.ThemeColor(ROLE_ICON[role][1]))
      : entry.error
        ? new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'))
        : new vscode.ThemeIcon(entry.vector || entry.adapter ? 'symbol-operator' : entry.kind === 'folder' ? 'package' : 'file-binary');
    this.contextValue = `checkpoint${role ? `.${role}` : ''}`;
    this.resourceUri = entry.uri;
    this.tooltip = tooltipOf(entry, role);
    this.accessibilityInformation = { label: `${printable(displayName(entry))}${role ? `, ${ROLE_LABEL[role]}` : ''}, ${this.description}` };
  }
}

function tooltipOf(e: CheckpointEntry, role: Role | undefined): vscode.MarkdownString {
  const md = new vscode.MarkdownString(undefined, true);
  md.appendMarkdown(`**${escapeMd(printable(e.label))}**${role ? ` — ${ROLE_LABEL[role]}` : ''}\n\n`);
  const r = e.report;
  if (!r) {
    md.appendMarkdown(e.error ? `$(warning) ${escapeMd(printable(e.error))}` : 'Reading headers…');
    return md;
  }
  const rows: [string, string][] = [
    ['Kind', r.adapter ? 'LoRA adapter (PEFT): τ = scale·B·A' : e.vector ? 'chat vector (τ = chat − base)' : e.hub ? 'Hugging Face cache snapshot' : e.kind === 'folder' ? 'model folder' : 'single file'],
    ...(r.adapter ? adapterRows(r.adapter) : []),
    ...(e.hub ? ([['Commit', e.hub.commit], ['Snapshot', e.path]] as [string, string][]) : []),
    ['Architecture', r.architecture ?? '—'],
    ['Model family', r.family],
    ['Parameters', `${formatCount(r.parameterCount)} (${r.parameterCount.toLocaleString('en-US')})`],
    ['Layers', String(r.layerCount)],
    ['Vocabulary', r.vocabSize === null ? '—' : String(r.vocabSize)],
    ['Dtype', dtypeSummary(r)],
    ['Tensors', String(r.tensorCount)],
    ['Files', `${r.shards.length} (${formatBytes(r.fileBytes)})`],
  ];
  md.appendMarkdown('| | |\n|:--|--:|\n');
  for (const [k, v] of rows) md.appendMarkdown(`| ${k} | ${escapeMd(printable(v))} |\n`);
  return md;
}

/** "LoRA r=16 α=32": how an adapter shows in lists. */
export function adapterLabel(a: AdapterSummary): string {
  return `LoRA r=${a.rank}${a.otherRanks.length ? '…' : ''} α=${a.alpha}`;
}

/** The tooltip rows of an adapter: rank, alpha, targets, whole tensors, base model. */
function adapterRows(a: AdapterSummary): [string, string][] {
  return [
    ['Rank', `${a.rank}${a.otherRanks.length ? ` (also ${a.otherRanks.join(', ')})` : ''}`],
    ['Alpha', `${a.alpha}${a.rslora ? ' (rsLoRA: scale α/√r)' : ' (scale α/r)'}`],
    ['Targets', `${a.targets.join(', ') || '—'} (${a.modules} matrices)`],
    ...(a.fullTensors.length ? ([['Saved whole', String(a.fullTensors.length)]] as [string, string][]) : []),
    ['Trained on', a.baseModel ?? '—'],
  ];
}

export function escapeMd(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, (c) => `\\${c}`);
}

/** The collapsed "Hugging Face Cache" section of the Checkpoints view. */
export const HUB_SECTION = { hubSection: true } as const;
type Node = CheckpointEntry | typeof HUB_SECTION;

export class CheckpointsProvider extends Disposable implements vscode.TreeDataProvider<Node> {
  private readonly changed = this.register(new vscode.EventEmitter<void>());
  readonly onDidChangeTreeData = this.changed.event;

  constructor(
    private readonly store: CheckpointStore,
    private readonly roles: RoleStore,
  ) {
    super();
    this.register(store.onDidChange(() => this.changed.fire()));
    this.register(roles.onDidChange(() => this.changed.fire()));
  }

  getTreeItem(e: Node): vscode.TreeItem {
    if (!('hubSection' in e)) return new CheckpointItem(e, this.roles.roleOf(e.path));
    const models = this.store.all.filter((x) => x.hub);
    const item = new vscode.TreeItem('Hugging Face Cache', vscode.TreeItemCollapsibleState.Collapsed);
    item.id = 'chatVector.hubCache';
    item.description = `${models.length} model${models.length === 1 ? '' : 's'}`;
    item.iconPath = new vscode.ThemeIcon('cloud');
    item.contextValue = 'hubCacheSection';
    item.tooltip = 'Models in the Hugging Face hub cache (HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub) with safetensors weights';
    return item;
  }

  async getChildren(e?: Node): Promise<Node[]> {
    if (e && 'hubSection' in e) return this.sorted((await this.store.ready()).filter((x) => x.hub));
    if (e) return [];
    const all = await this.store.ready();
    const local = this.sorted(all.filter((x) => !x.hub));
    return all.some((x) => x.hub) ? [...local, HUB_SECTION] : local;
  }

  private sorted(all: readonly CheckpointEntry[]): CheckpointEntry[] {
    // By path only: rows keep their places when roles move (the icon shows the role).
    return [...all].sort((a, b) => a.label.localeCompare(b.label));
  }

  getParent(e: Node): Node | undefined {
    return 'hub' in e && e.hub ? HUB_SECTION : undefined;
  }
}
