/**
 * The Layer Deltas view: one comparison (A → B, or a chat-vector folder alone) as a tree
 * Model → groups → tensors. The numbers come from the task host's `diff`; this file only arranges
 * and colours them. One heat scale spans every row of the tree, so colours compare across levels.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { deltaDescription, formatCount, formatNorm, formatPercent, printable } from '../protocol/displayFormat';
import { formatVerdict } from '../protocol/verdictText';
import type { DiffReport } from '../protocol/taskHost';
import { CHART_MODULE_COLUMNS, type ChartData, groupKey, type ChartGroup, type ChartModuleColumn, type ChartValue, type ValueMode } from '../protocol/webview';
import { heatScaleMax, heatStep } from '../protocol/heatScale';
import { escapeMd } from './checkpoints';
import type { EnergyOverlay } from './energyOverlay';
import { Disposable } from './dispose';

/** The icon of a row without an energy figure while energy at rank colours the tree. */
const NO_ENERGY_ICON = new vscode.ThemeIcon('circle-outline');

type GroupDiff = DiffReport['groups'][number];
type TensorDiff = DiffReport['tensors'][number];
type Stats = DiffReport['total'];
export type SortMode = 'order' | 'magnitude';

export interface ModelNode {
  readonly kind: 'model';
  readonly comparison: Comparison;
}
export interface GroupNode {
  readonly kind: 'group';
  readonly key: string;
  readonly group: GroupDiff;
  readonly order: number;
  readonly tensors: TensorNode[];
  readonly parent: ModelNode;
}
export interface TensorNode {
  readonly kind: 'tensor';
  readonly tensor: TensorDiff;
  readonly order: number;
  readonly parent: GroupNode;
}
export type DeltaNode = ModelNode | GroupNode | TensorNode;

/** A finished comparison and the tree nodes built from it once (reveal() needs stable objects). */
export class Comparison {
  readonly model: ModelNode;
  readonly groups: GroupNode[];
  private readonly byKey = new Map<string, GroupNode>();

  constructor(readonly report: DiffReport) {
    this.model = { kind: 'model', comparison: this };
    this.groups = report.groups.map((g, i) => ({ kind: 'group', key: groupKey(g.role, g.layer), group: g, order: i, tensors: [], parent: this.model }));
    for (const g of this.groups) this.byKey.set(g.key, g);
    report.tensors.forEach((t, i) => {
      const key = groupKey(t.role, t.layer);
      let g = this.byKey.get(key);
      if (!g) {
        // A tensor whose group the host did not summarise still belongs in the tree.
        g = this.byKey.get('other');
        if (!g) return;
      }
      g.tensors.push({ kind: 'tensor', tensor: t, order: i, parent: g });
    });
    // Within a layer, the order a block runs its modules (q, k, v, o, gate, up, down …; the
    // heatmap's columns), then by name: "order" sorting lists them as the chart does.
    for (const g of this.groups) g.tensors.sort((x, y) => moduleRank(x.tensor.module) - moduleRank(y.tensor.module) || x.tensor.name.localeCompare(y.tensor.name));
  }

  get title(): string {
    const a = path.basename(this.report.a);
    return this.report.b === null ? `${a} (chat vector)` : `${a} → ${path.basename(this.report.b)}`;
  }

  group(key: string): GroupNode | undefined {
    return this.byKey.get(key);
  }

  /**
   * The heat scale's maximum: the highest value of the measure over every row of the tree (groups
   * and tensors) and every heatmap cell (a layer's module kinds). The tree, the bars and the
   * heatmap all colour with it, so a layer has one colour everywhere.
   */
  scaleMax(mode: ValueMode): number {
    const values: number[] = [];
    for (const g of this.groups) {
      values.push(measure(g.group, mode));
      for (const m of g.group.modules) values.push(measure(m, mode));
      for (const t of g.tensors) values.push(measure(t.tensor, mode));
    }
    return heatScaleMax(values);
  }

  /** What the chart shows: O(layers × module kinds) numbers. */
  chartData(): ChartData {
    const present = new Set<ChartModuleColumn>();
    const groups: ChartGroup[] = this.groups.map((g) => {
      const modules: Partial<Record<ChartModuleColumn, ChartValue>> = {};
      if (g.group.role === 'layer') {
        for (const m of g.group.modules) {
          if ((CHART_MODULE_COLUMNS as readonly string[]).includes(m.module)) {
            const col = m.module as ChartModuleColumn;
            modules[col] = { deltaNorm: m.deltaNorm, relative: m.relative };
            present.add(col);
          }
        }
      }
      return { key: g.key, label: g.group.label, layer: g.group.layer, deltaNorm: g.group.deltaNorm, relative: g.group.relative, modules };
    });
    return {
      title: this.title,
      a: this.report.a,
      b: this.report.b,
      verdict: formatVerdict(this.report.lineage, { a: path.basename(this.report.a), b: this.report.b === null ? 'B' : path.basename(this.report.b) }),
      total: { deltaNorm: this.report.total.deltaNorm, relative: this.report.total.relative },
      groups,
      columns: CHART_MODULE_COLUMNS.filter((c) => present.has(c)),
      scale: { relative: this.scaleMax('relative'), absolute: this.scaleMax('absolute') },
    };
  }
}

/** A module kind's place in a block (the heatmap's column order); unknown kinds last. */
function moduleRank(m: string): number {
  const i = (CHART_MODULE_COLUMNS as readonly string[]).indexOf(m);
  return i < 0 ? CHART_MODULE_COLUMNS.length : i;
}

export function measure(s: Pick<Stats, 'relative' | 'deltaNorm'>, mode: ValueMode): number {
  return mode === 'relative' ? s.relative : s.deltaNorm;
}

export class DeltasProvider extends Disposable implements vscode.TreeDataProvider<DeltaNode> {
  private readonly changed = this.register(new vscode.EventEmitter<DeltaNode | undefined>());
  readonly onDidChangeTreeData = this.changed.event;
  private current: Comparison | undefined;
  private sortMode: SortMode = 'order';
  private valueMode: ValueMode = 'relative';
  private max = 0;
  private energyOverlay: EnergyOverlay | undefined;

  /** @param extensionUri where media/heat/ holds the tree's heat icons. */
  constructor(private readonly extensionUri: vscode.Uri) {
    super();
    void this.setContext();
  }

  get comparison(): Comparison | undefined {
    return this.current;
  }
  get mode(): ValueMode {
    return this.valueMode;
  }
  get sort(): SortMode {
    return this.sortMode;
  }

  /** The energy at rank shown over the current comparison (deltaEnergy.ts), if any. */
  get energy(): EnergyOverlay | undefined {
    return this.energyOverlay;
  }

  /** Shows (or, with undefined, hides) each row's energy at rank R over the current comparison. */
  showEnergy(overlay: EnergyOverlay | undefined): void {
    this.energyOverlay = overlay;
    void this.setContext();
    this.changed.fire(undefined);
  }

  show(report: DiffReport | undefined): Comparison | undefined {
    this.current = report ? new Comparison(report) : undefined;
    // Energy figures belong to the pair they were measured on.
    this.energyOverlay = undefined;
    this.max = this.current?.scaleMax(this.valueMode) ?? 0;
    void this.setContext();
    this.changed.fire(undefined);
    return this.current;
  }

  setSort(mode: SortMode): void {
    this.sortMode = mode;
    void this.setContext();
    this.changed.fire(undefined);
  }

  setValueMode(mode: ValueMode): void {
    this.valueMode = mode;
    this.max = this.current?.scaleMax(mode) ?? 0;
    void this.setContext();
    this.changed.fire(undefined);
  }

  private async setContext(): Promise<void> {
    await vscode.commands.executeCommand('setContext', 'chatVector.hasDiff', !!this.current);
    await vscode.commands.executeCommand('setContext', 'chatVector.deltaSort', this.sortMode);
    await vscode.commands.executeCommand('setContext', 'chatVector.deltaValue', this.valueMode);
    await vscode.commands.executeCommand('setContext', 'chatVector.hasEnergy', !!this.energyOverlay);
  }

  getChildren(node?: DeltaNode): DeltaNode[] {
    if (!this.current) return [];
    if (!node) return [this.current.model];
    if (node.kind === 'model') return this.sorted(node.comparison.groups, (g) => measure(g.group, this.valueMode));
    if (node.kind === 'group') return this.sorted(node.tensors, (t) => measure(t.tensor, this.valueMode));
    return [];
  }

  private sorted<T extends { order: number }>(list: T[], value: (x: T) => number): T[] {
    if (this.sortMode === 'order') return list;
    const v = (x: T) => (Number.isFinite(value(x)) ? value(x) : -1);
    return [...list].sort((a, b) => v(b) - v(a) || a.order - b.order);
  }

  getParent(node: DeltaNode): DeltaNode | undefined {
    return node.kind === 'model' ? undefined : node.parent;
  }

  getTreeItem(node: DeltaNode): vscode.TreeItem {
    if (node.kind === 'model') return this.modelItem(node);
    if (node.kind === 'group') {
      const g = node.group;
      const item = new vscode.TreeItem(g.label, vscode.TreeItemCollapsibleState.Collapsed);
      item.id = `group:${node.key}`;
      item.description = deltaDescription(g.deltaNorm, g.relative, this.valueMode);
      item.iconPath = this.heatIcon(measure(g, this.valueMode));
      this.addEnergy(item, { group: node.key });
      item.contextValue = g.role === 'layer' ? 'deltaLayer' : 'deltaGroup';
      item.tooltip = statsTooltip(`${g.label} — ${node.tensors.length} tensor${node.tensors.length === 1 ? '' : 's'}`, g, []);
      if (g.modules.length) {
        // One narrow table per module kind (the heatmap's columns), not a "q ‖Δ‖ / rel." row each.
        item.tooltip.appendMarkdown('\n\n| module | ‖Δ‖ | ‖Δ‖ / ‖A‖ |\n|:--|--:|--:|\n');
        for (const m of [...g.modules].sort((x, y) => moduleRank(x.module) - moduleRank(y.module))) item.tooltip.appendMarkdown(`| ${escapeMd(printable(m.module))} | ${escapeMd(formatNorm(m.deltaNorm))} | ${escapeMd(formatPercent(m.relative))} |\n`);
      }
      return item;
    }
    const t = node.tensor;
    const item = new vscode.TreeItem(shortName(t.name), vscode.TreeItemCollapsibleState.None);
    item.id = `tensor:${t.name}`;
    item.description = deltaDescription(t.deltaNorm, t.relative, this.valueMode);
    item.iconPath = this.heatIcon(measure(t, this.valueMode));
    item.contextValue = 'deltaTensor';
    const shape = (s: readonly number[]) => `[${s.join(', ')}]`;
    item.tooltip = statsTooltip(t.name, t, [
      ['Module', t.module],
      ['Shape', t.shapeB.length && shape(t.shapeA) !== shape(t.shapeB) ? `${shape(t.shapeA)} → ${shape(t.shapeB)}` : shape(t.shapeA)],
      ...(t.note ? ([['Note', t.note]] as [string, string][]) : []),
    ]);
    this.addEnergy(item, { tensor: t.name });
    return item;
  }

  private modelItem(node: ModelNode): vscode.TreeItem {
    const c = node.comparison;
    const r = c.report;
    const item = new vscode.TreeItem(printable(c.title), vscode.TreeItemCollapsibleState.Expanded);
    item.id = 'model';
    item.description = deltaDescription(r.total.deltaNorm, r.total.relative, this.valueMode);
    item.iconPath = new vscode.ThemeIcon('symbol-structure');
    item.contextValue = 'deltaModel';
    const extra: [string, string][] = [
      ['A', r.a],
      ['B', r.b ?? '(chat vector alone)'],
      ['Verdict', formatVerdict(r.lineage)],
      ['Only in A', String(r.onlyInA.length)],
      ['Only in B', String(r.onlyInB.length)],
      ['Shape mismatches', String(r.shapeMismatches.length)],
      ['Computed', r.fromCache ? 'from cache' : `${r.seconds.toFixed(2)} s`],
    ];
    item.tooltip = statsTooltip(c.title, r.total, extra);
    this.addEnergy(item, 'total');
    return item;
  }

  /**
   * With energy shown: the row's energy at rank R after its ‖Δ‖ and in its tooltip, and its heat
   * colour from the energy on a fixed 0…100 % scale (see deltaEnergy.ts). Rows without a figure
   * (1-D tensors, groups of norms) get a plain outline instead of their ‖Δ‖ colour, which is on
   * another scale: the view then says its colours are the energy's.
   */
  private addEnergy(item: vscode.TreeItem, row: Parameters<EnergyOverlay['figures']>[0]): void {
    const e = this.energyOverlay;
    if (!e) return;
    const f = e.figures(row);
    if (!f) {
      if (row !== 'total') item.iconPath = NO_ENERGY_ICON;
      return;
    }
    item.description = `${String(item.description ?? '')} · ${e.label(f)}`;
    if (row !== 'total') item.iconPath = this.heatIcon(f.energy, 1);
    if (item.tooltip instanceof vscode.MarkdownString) {
      const r = e.report;
      item.tooltip.appendMarkdown(`\n\n**Energy at rank ${r.rank}** ${escapeMd(formatPercent(f.energy))} of ‖τ‖² (an optimal rank-${r.rank} approximation per matrix; at most ${escapeMd(formatPercent(r.tolerance))} below the exact share)\n`);
    }
  }

  private heatIcon(value: number, max = this.max): { light: vscode.Uri; dark: vscode.Uri } {
    const step = heatStep(value, max);
    // Icon files, not a coloured ThemeIcon: VS Code repaints codicons of a selected row in the
    // selection's foreground, and a selected layer must keep its heat colour (media/heat/ holds
    // the HEAT_PALETTE colours; a unit test checks them).
    const file = (theme: string) => vscode.Uri.joinPath(this.extensionUri, 'media', 'heat', `${theme}-${step}.svg`);
    return { light: file('light'), dark: file('dark') };
  }
}

// Linear: `(?:^|\.)` then literals; the former `^(?:.*?\.)?…(.+)$` was quadratic on hostile names.
const LAYER_PREFIX = /(?:^|\.)(?:layers|h|blocks|layer|block)\.\d+\./;

/**
 * "model.layers.3.self_attn.q_proj.weight" → "self_attn.q_proj.weight" (the group says the layer),
 * with control characters escaped (`printable`).
 */
export function shortName(name: string): string {
  const m = LAYER_PREFIX.exec(name);
  const rest = m ? name.slice(m.index + m[0].length) : '';
  return printable(rest || name);
}

function statsTooltip(title: string, s: Stats, extra: readonly [string, string][]): vscode.MarkdownString {
  const md = new vscode.MarkdownString();
  md.appendMarkdown(`**${escapeMd(printable(title))}**\n\n| statistic | value |\n|:--|--:|\n`);
  // Paired rows (‖A‖ · ‖B‖, max · mean) keep a layer's tooltip, with its module table, inside the
  // hover's height: VS Code scrolls a taller hover and the last module kinds were out of sight.
  const rows: [string, string][] = [
    ['‖Δ‖', formatNorm(s.deltaNorm)],
    ['‖Δ‖ / ‖A‖', formatPercent(s.relative)],
    ['‖A‖ · ‖B‖', `${formatNorm(s.normA)} · ${formatNorm(s.normB)}`],
    ['cos(A, B)', Number.isFinite(s.cosine) ? s.cosine.toFixed(6) : 'n/a'],
    ['max · mean |Δ|', `${formatNorm(s.maxAbsDelta)} · ${formatNorm(s.meanAbsDelta)}`],
    ['elements changed', `${formatPercent(s.changedFraction)} of ${formatCount(s.elements)}`],
    ...(s.nonFinite ? ([['non-finite', String(s.nonFinite)]] as [string, string][]) : []),
    ...extra,
  ];
  for (const [k, v] of rows) md.appendMarkdown(`| ${escapeMd(k)} | ${escapeMd(printable(v))} |\n`);
  return md;
}
