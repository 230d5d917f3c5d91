/**
 * Checkpoints in the workspace and the Checkpoints view. Discovery looks at file names only
 * (workspace.findFiles); each checkpoint's details come from the task host's `inspect`, which
 * reads headers only. Renames, new shards and finished jobs refresh the list through a watcher.
 * Models of the Hugging Face hub cache (the task host's `hubCacheList`) are entries too — roles,
 * compare, apply and pickers treat them as folders — shown under a collapsed "Hugging Face Cache"
 * section. The folders of `chatVector.modelFolders` are searched like the workspace (the same
 * file patterns and grouping, checkpointFiles.ts), each shown as its own section.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { formatBytes, formatCount, printable } from '../protocol/displayFormat';
import type { CachedModel, InspectReport } from '../protocol/taskHost';
import { type FoundCheckpoint, groupCheckpointFiles, modelFolderRoots } from './checkpointFiles';
import { Disposable } from './dispose';
import { ROLE_ICON, ROLE_LABEL, type Role, type RoleStore } from './roles';

type AdapterSummary = NonNullable<InspectReport['adapter']>;

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
  /** Set for a checkpoint found in a folder of `chatVector.modelFolders` (that folder). */
  readonly modelFolder?: string;
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
    this.register(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('chatVector.modelFolders')) this.scheduleRefresh(0);
      }),
    );
    // Granting trust makes the workspace's value of the (restricted) setting count.
    this.register(vscode.workspace.onDidGrantWorkspaceTrust(() => this.scheduleRefresh(0)));
    this.register({ dispose: () => this.folderWatchers.forEach((w) => w.dispose()) });
  }

  /** The folders of `chatVector.modelFolders` at the last discovery, and whether each exists. */
  modelFolders: readonly { readonly root: string; readonly exists: boolean }[] = [];
  private folderWatchers = new Map<string, vscode.Disposable>();

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
    const groups = groupCheckpointFiles(files.filter((f) => !isHidden(f)).map((f) => f.fsPath));
    const pairs = groups.map((g): [CheckpointEntry, FoundCheckpoint] => [{ ...entry(vscode.Uri.file(g.path), g.kind, g.vector), ...(g.adapter ? { adapter: true } : {}) }, g]);
    pairs.sort(([a], [b]) => a.label.localeCompare(b.label));
    await Promise.all(pairs.map(([e, g]) => this.inspectInto(e, g.files)));
    const found = pairs.map(([e]) => e);
    const extra = await this.modelFolderEntries(new Set(found.map((e) => e.path)));
    const hub = await this.hubEntries();
    this.entries = [...found, ...extra, ...hub];
    this.discoveredOnce = true;
    this.log.info(`checkpoints: found ${found.length} in the workspace, ${extra.length} in chatVector.modelFolders and ${hub.length} in the Hugging Face cache`);
    await vscode.commands.executeCommand('setContext', 'chatVector.hasCheckpoints', found.length > 0);
    // The Explorer's "Chat Vector" submenu appears only on these (`resourcePath in …`).
    await vscode.commands.executeCommand('setContext', 'chatVector.checkpointPaths', Object.fromEntries(found.map((e) => [e.uri.fsPath, true])));
    this.changed.fire();
  }

  /**
   * Checkpoints in the `chatVector.modelFolders` folders, searched as the workspace is (same
   * patterns, same grouping); one already listed (a folder inside the workspace) is not repeated.
   * Each folder gets a watcher, so new checkpoints show up as they do in the workspace.
   */
  private async modelFolderEntries(seen: Set<string>): Promise<CheckpointEntry[]> {
    const { roots, ignored } = modelFolderRoots(vscode.workspace.getConfiguration('chatVector').get('modelFolders'), os.homedir());
    for (const why of ignored) this.log.warn(why);
    this.modelFolders = roots.map((root) => ({ root, exists: fs.existsSync(root) }));
    this.watchFolders(roots);
    const out: CheckpointEntry[] = [];
    for (const { root, exists } of this.modelFolders) {
      if (!exists) {
        this.log.warn(`chatVector.modelFolders: ${root} does not exist`);
        continue;
      }
      let groups: FoundCheckpoint[];
      try {
        const files = await vscode.workspace.findFiles(new vscode.RelativePattern(vscode.Uri.file(root), INCLUDE), EXCLUDE, 20000);
        groups = groupCheckpointFiles(files.map((f) => f.fsPath), root);
      } catch (err) {
        this.log.warn(`chatVector.modelFolders: cannot search ${root}: ${err instanceof Error ? err.message : String(err)}`);
        continue;
      }
      const entries = groups.filter((g) => !seen.has(g.path)).map((g): [CheckpointEntry, FoundCheckpoint] => {
        seen.add(g.path);
        const label = path.relative(root, g.path) || path.basename(g.path);
        return [{ uri: vscode.Uri.file(g.path), path: g.path, label, kind: g.kind, vector: g.vector, ...(g.adapter ? { adapter: true } : {}), modelFolder: root }, g];
      });
      await Promise.all(entries.map(([e, g]) => this.inspectInto(e, g.files)));
      out.push(...entries.map(([e]) => e));
    }
    return out;
  }

  private watchFolders(roots: readonly string[]): void {
    for (const [root, w] of this.folderWatchers) {
      if (roots.includes(root)) continue;
      w.dispose();
      this.folderWatchers.delete(root);
    }
    for (const root of roots) {
      if (this.folderWatchers.has(root)) continue;
      const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(root), '**/*'), false, true, false);
      w.onDidCreate(() => this.scheduleRefresh());
      w.onDidDelete(() => this.scheduleRefresh());
      this.folderWatchers.set(root, w);
    }
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

  private async inspectInto(e: CheckpointEntry, files: readonly string[]): Promise<void> {
    // Re-inspect only when a file of the checkpoint changed (size or mtime).
    const stats = await Promise.all(files.map(async (f) => vscode.workspace.fs.stat(vscode.Uri.file(f)).then((s) => `${f}:${s.size}:${s.mtime}`, () => `${f}:?`)));
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
/** A section for one folder of `chatVector.modelFolders` (expanded: the user asked for it). */
interface FolderSection {
  readonly modelFolder: string;
}
type Node = CheckpointEntry | typeof HUB_SECTION | FolderSection;

const isFolderSection = (e: Node): e is FolderSection => 'modelFolder' in e && !('path' in e);

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

  /** One object per folder, so the tree (getParent, reveal) sees the same node each time. */
  private readonly sections = new Map<string, FolderSection>();
  private section(root: string): FolderSection {
    let s = this.sections.get(root);
    if (!s) this.sections.set(root, (s = { modelFolder: root }));
    return s;
  }

  getTreeItem(e: Node): vscode.TreeItem {
    if (isFolderSection(e)) return this.folderItem(e.modelFolder);
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

  private folderItem(root: string): vscode.TreeItem {
    const n = this.store.all.filter((x) => x.modelFolder === root).length;
    const exists = this.store.modelFolders.find((f) => f.root === root)?.exists !== false;
    const item = new vscode.TreeItem(printable(root), n ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None);
    item.id = `chatVector.modelFolder:${root}`;
    item.description = exists ? `${n} checkpoint${n === 1 ? '' : 's'}` : 'folder not found';
    item.iconPath = new vscode.ThemeIcon(exists ? 'folder-library' : 'warning');
    item.contextValue = 'modelFolderSection';
    item.resourceUri = vscode.Uri.file(root);
    item.tooltip = `A folder of the chatVector.modelFolders setting${exists ? '' : ' (it does not exist)'}`;
    return item;
  }

  async getChildren(e?: Node): Promise<Node[]> {
    if (e && 'hubSection' in e) return this.sorted((await this.store.ready()).filter((x) => x.hub));
    if (e && isFolderSection(e)) return this.sorted((await this.store.ready()).filter((x) => x.modelFolder === e.modelFolder));
    if (e) return [];
    const all = await this.store.ready();
    const local = this.sorted(all.filter((x) => !x.hub && !x.modelFolder));
    const folders = this.store.modelFolders.map((f) => this.section(f.root));
    return [...local, ...folders, ...(all.some((x) => x.hub) ? [HUB_SECTION] : [])];
  }

  private sorted(all: readonly CheckpointEntry[]): CheckpointEntry[] {
    // By path only: rows keep their places when roles move (the icon shows the role).
    return [...all].sort((a, b) => a.label.localeCompare(b.label));
  }

  getParent(e: Node): Node | undefined {
    if (isFolderSection(e) || 'hubSection' in e) return undefined;
    return e.hub ? HUB_SECTION : e.modelFolder ? this.section(e.modelFolder) : undefined;
  }
}
