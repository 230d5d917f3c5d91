/**
 * A finished energy-at-rank report as the Layer Deltas tree shows it (deltaEnergy.ts runs the
 * job): each row's figures, looked up by the tree's group key or tensor name, and the label its
 * description adds.
 */
import type { EnergyAtRankReport } from '../protocol/taskHost';
import { formatPercent } from '../protocol/displayFormat';
import { groupKey } from '../protocol/webview';

export type EnergyFigures = EnergyAtRankReport['total'];

/** A finished energy report, indexed the way the tree looks rows up. */
export class EnergyOverlay {
  private readonly groups = new Map<string, EnergyFigures>();
  private readonly tensors = new Map<string, EnergyFigures>();

  constructor(readonly report: EnergyAtRankReport) {
    for (const g of report.groups) this.groups.set(groupKey(g.role, g.layer), g);
    for (const m of report.matrices) this.tensors.set(m.name, m);
  }

  /** The figures of a group row (by its key), a tensor row (by name), or the model row (total). */
  figures(row: { readonly group: string } | { readonly tensor: string } | 'total'): EnergyFigures | undefined {
    if (row === 'total') return this.report.total;
    return 'group' in row ? this.groups.get(row.group) : this.tensors.get(row.tensor);
  }

  /** "energy@16 17.0 %": what a row's description adds. */
  label(f: EnergyFigures): string {
    return `energy@${this.report.rank} ${formatPercent(f.energy)}`;
  }
}
