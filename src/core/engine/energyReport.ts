/**
 * The energy-at-rank report from measured matrices: per matrix, per group (layer, embeddings …, in
 * catalogue order) and in total, Σ captured / Σ ‖τ‖². Both the energy-at-rank job (an estimate of
 * the optimal rank-R energy) and `extract --rank` (the energy its factors keep) report this shape,
 * so the Layer Deltas view shows either.
 */
import type { CatalogueEntry } from '../checkpoint/checkpoint';
import { groupLabel } from '../checkpoint/layers';
import type { EnergyAtRankReport, EnergyFigures, GroupEnergy, MatrixEnergy } from '../jobs/types';

/**
 * The report's promise for each matrix: the figure is at most this fraction of ‖τ‖² below the
 * exact energy at its rank, and never above it (tested against a Jacobi SVD; see
 * compute/randomizedSvd.ts rankEnergy). extract --rank runs the same range finder and stopping rule.
 */
export const ENERGY_TOLERANCE = 0.01;

/** Σ captured / Σ norm² of some matrices; 1 for a zero τ (nothing to lose). */
export function energyFigures(items: readonly { readonly norm2: number; readonly captured2: number }[]): EnergyFigures {
  let norm2 = 0;
  let captured2 = 0;
  for (const x of items) {
    norm2 += x.norm2;
    captured2 += x.captured2;
  }
  return { norm2, captured2, energy: norm2 > 0 ? captured2 / norm2 : 1 };
}

/** One measured 2-D matrix: its catalogue entry (group, shape) and its figures (float64 sums). */
export interface MeasuredMatrix {
  readonly entry: CatalogueEntry;
  /** The rank measured at (extract: the rank of its factors). */
  readonly rank: number;
  readonly powerIterations: number;
  readonly norm2: number;
  readonly captured2: number;
}

/** Builds the report; `rank` is the rank asked for (the largest, for extract --rank). */
export function energyReport(o: {
  readonly base: string;
  readonly chat: string;
  readonly rank: number;
  readonly measured: readonly MeasuredMatrix[];
  readonly notMatrices: number;
  readonly backend: string;
  readonly seconds: number;
}): EnergyAtRankReport {
  const matrices: MatrixEnergy[] = o.measured.map(({ entry: t, rank, powerIterations, norm2, captured2 }) => {
    const g = t.group;
    return { name: t.name, role: g.role, layer: g.layer ?? null, module: g.module, shape: [t.shape[0]!, t.shape[1]!], rank, powerIterations, ...energyFigures([{ norm2, captured2 }]) };
  });
  const byLabel = new Map<string, { label: string; role: GroupEnergy['role']; layer: number | null; items: MatrixEnergy[] }>();
  o.measured.forEach(({ entry: t }, i) => {
    const label = groupLabel(t.group);
    let g = byLabel.get(label);
    if (!g) byLabel.set(label, (g = { label, role: t.group.role, layer: t.group.layer ?? null, items: [] }));
    g.items.push(matrices[i]!);
  });
  return {
    base: o.base,
    chat: o.chat,
    rank: o.rank,
    tolerance: ENERGY_TOLERANCE,
    total: energyFigures(matrices),
    groups: [...byLabel.values()].map((g) => ({ label: g.label, role: g.role, layer: g.layer, ...energyFigures(g.items) })),
    matrices,
    notMatrices: o.notMatrices,
    backend: o.backend,
    fromCache: false,
    seconds: o.seconds,
  };
}
