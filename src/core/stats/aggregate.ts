/**
 * From float64 sums to the figures users read: per tensor, per group (embedding, layer i, final
 * norm, LM head, other), per module kind inside a group, and the whole model. Aggregates add the
 * sums of their tensors (Σ(b−a)², Σa², …) and derive norms from those, so a layer's ‖Δ‖ is exactly
 * √(Σ over its tensors of ‖Δ‖²), never an average of norms.
 */
import { type ModuleKind, type TensorGroup, MODULE_KIND_ORDER, groupLabel, groupOrder } from '../checkpoint/layers';
import type { DeltaStats, GroupDiff, Lineage, TensorDiff } from '../jobs/types';
import { addSums, emptySums } from '../compute/elements';
import type { DiffSums } from '../compute/types';

/**
 * Turns sums into statistics. Sums of A (Σa², Σb², Σab) are NaN where A is unknown (a chat vector
 * scanned without its base): norms, relative and cosine then come out NaN.
 */
export function statsFromSums(s: DiffSums): DeltaStats {
  const finite = s.elements - s.nonFinite;
  const normA = Math.sqrt(s.sumA2);
  const normB = Math.sqrt(s.sumB2);
  const deltaNorm = Math.sqrt(s.sumD2);
  const cos = normA > 0 && normB > 0 ? s.sumAB / (normA * normB) : NaN;
  return {
    elements: s.elements,
    deltaNorm,
    normA,
    normB,
    relative: normA > 0 ? deltaNorm / normA : NaN,
    // Rounding can push |cos| a hair past 1 for identical tensors.
    cosine: Number.isNaN(cos) ? NaN : Math.max(-1, Math.min(1, cos)),
    maxAbsDelta: s.maxAbs,
    meanAbsDelta: finite > 0 ? s.sumAbs / finite : NaN,
    changedFraction: finite > 0 ? s.changed / finite : NaN,
    nonFinite: s.nonFinite,
  };
}

/** A compared tensor's name, shapes on both sides, and a note on how it was compared. */
export type ComparedTensor = Pick<TensorDiff, 'name' | 'shapeA' | 'shapeB' | 'note'>;

/** One compared tensor: where it sits in the network and its sums. */
export interface TensorSums extends ComparedTensor {
  readonly group: TensorGroup;
  readonly sums: DiffSums;
}

export function tensorDiff(t: TensorSums): TensorDiff {
  return {
    name: t.name,
    role: t.group.role,
    layer: t.group.role === 'layer' ? (t.group.layer ?? null) : null,
    module: t.group.module,
    shapeA: t.shapeA,
    shapeB: t.shapeB,
    ...(t.note ? { note: t.note } : {}),
    ...statsFromSums(t.sums),
  };
}

/**
 * Groups tensors by network position (in network order) and, inside each group, by module kind
 * (in MODULE_KIND_ORDER). Returns the groups and the whole-model sums.
 */
export function aggregate(tensors: readonly TensorSums[]): { groups: GroupDiff[]; total: DiffSums } {
  interface Acc {
    group: TensorGroup;
    sums: DiffSums;
    modules: Map<ModuleKind, DiffSums>;
  }
  const byLabel = new Map<string, Acc>();
  const total = emptySums();
  for (const t of tensors) {
    const label = groupLabel(t.group);
    let acc = byLabel.get(label);
    if (!acc) {
      acc = { group: t.group, sums: emptySums(), modules: new Map() };
      byLabel.set(label, acc);
    }
    addSums(acc.sums, t.sums);
    let m = acc.modules.get(t.group.module);
    if (!m) {
      m = emptySums();
      acc.modules.set(t.group.module, m);
    }
    addSums(m, t.sums);
    addSums(total, t.sums);
  }
  const groups = [...byLabel.entries()]
    .sort(([, x], [, y]) => groupOrder(x.group) - groupOrder(y.group))
    .map(([label, acc]): GroupDiff => ({
      label,
      role: acc.group.role,
      layer: acc.group.role === 'layer' ? (acc.group.layer ?? null) : null,
      ...statsFromSums(acc.sums),
      modules: [...acc.modules.entries()]
        .sort(([x], [y]) => MODULE_KIND_ORDER.indexOf(x) - MODULE_KIND_ORDER.indexOf(y))
        .map(([module, s]) => ({ module, ...statsFromSums(s) })),
    }));
  return { groups, total };
}

/** Relative change below which B reads as a fine-tune of A (fine-tunes move weights by ~0.1–5 %). */
export const FINE_TUNE_MAX_RELATIVE = 0.15;
/** Cosine below which A and B read as unrelated (independent random-like weights give ≈ 0). */
export const UNRELATED_MAX_COSINE = 0.3;

/**
 * What the comparison says about lineage, with the figures it rests on (as data: the sentence is
 * written by formatVerdict in src/protocol/verdictText.ts, the one display format).
 *
 * Lineage is judged on the weight matrices (tensors of rank ≥ 2) when there are any: norm weights
 * sit near 1 in every model, so over the whole model even unrelated checkpoints show a cosine of
 * ~0.3; over the matrices unrelated weights give ≈ 0 and a fine-tune ≈ 1.
 * Never "identical" when A or B holds NaN/±Inf: NaN equals nothing, not even itself, so such
 * checkpoints are not the same weights even when compared with themselves. Never "identical"
 * either when some tensor was not compared (quantized codes and scales, other non-float tensors,
 * tensors on one side only): then equal compared elements say nothing about the rest.
 * @param total statistics over every compared tensor (decides "identical" and the vector figures)
 * @param matrices statistics over the compared tensors of rank ≥ 2 (null when there are none)
 * @param mode 'ab' for two checkpoints; 'vector' for a chat vector scanned alone
 * @param comparedTensors how many tensors were compared
 * @param notCompared how many tensors of A or B were not compared
 */
export function lineageOf(total: DeltaStats, matrices: DeltaStats | null, mode: 'ab' | 'vector', comparedTensors: number, notCompared = 0): Lineage {
  const nonFinite = total.nonFinite;
  if (comparedTensors === 0) return { kind: 'nothing', mode };
  if (mode === 'vector') return { kind: 'vector', deltaNorm: total.deltaNorm, relative: total.relative, nonFinite };
  const finite = total.elements - total.nonFinite;
  if (total.changedFraction === 0 || (finite === 0 && nonFinite > 0)) return nonFinite === 0 ? (notCompared === 0 ? { kind: 'identical' } : { kind: 'equalWhereCompared', notCompared }) : { kind: 'notIdentical', nonFinite, finite };
  const useMatrices = matrices !== null && matrices.elements > 0;
  const s = useMatrices ? matrices : total;
  // Say which figure it is when it is not the total shown beside the verdict.
  const ofMatrices = useMatrices && matrices.elements !== total.elements;
  if (Number.isNaN(s.cosine)) return { kind: 'zeros', deltaNorm: total.deltaNorm, nonFinite };
  if (s.cosine < UNRELATED_MAX_COSINE) return { kind: 'unrelated', cosine: s.cosine, relative: s.relative, ofMatrices, nonFinite };
  return { kind: s.relative <= FINE_TUNE_MAX_RELATIVE ? 'fineTuned' : 'changedALot', cosine: s.cosine, relative: s.relative, ofMatrices, nonFinite };
}
