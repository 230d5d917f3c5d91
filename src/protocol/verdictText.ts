/**
 * The lineage verdict of a diff as one sentence with the figures it rests on, for the CLI
 * (`chatvec diff`, also `verdict` in its JSON), the Layer Deltas view and the chart.
 */
import type { Lineage } from '../core/jobs/types';
import { formatNorm, formatPercent } from './displayFormat';

const count = (n: number) => `${n} NaN/Inf value${n === 1 ? '' : 's'}`;

/**
 * e.g. "B looks fine-tuned from A: relative change 0.80 % (weight matrices)"; with `names`, the
 * models' names instead of A and B ("tiny-chat looks fine-tuned from tiny-base: …").
 */
export function formatVerdict(l: Lineage, names: { readonly a: string; readonly b: string } = { a: 'A', b: 'B' }): string {
  const { a: A, b: B } = names;
  const nf = 'nonFinite' in l && l.nonFinite > 0 && l.kind !== 'notIdentical' ? `; ${count(l.nonFinite)} left out` : '';
  const of = 'ofMatrices' in l && l.ofMatrices ? ' (weight matrices)' : '';
  switch (l.kind) {
    case 'nothing':
      return l.mode === 'ab' ? 'nothing to compare: no float tensors in common' : 'empty chat vector: no float tensors';
    case 'vector':
      // NaN crosses JSON as null: both mean "no base to compare with".
      return l.relative === null || Number.isNaN(l.relative)
        ? `chat vector: ‖Δ‖ ${formatNorm(l.deltaNorm)} (base not found: relative size unknown)${nf}`
        : `chat vector: ‖Δ‖ ${formatNorm(l.deltaNorm)}, relative to its base ${formatPercent(l.relative)}${nf}`;
    case 'identical':
      return 'identical weights: no element differs';
    case 'equalWhereCompared':
      return `no compared element differs, but ${l.notCompared} tensor${l.notCompared === 1 ? ' was' : 's were'} not compared (quantized, non-float or on one side only): equal only where compared`;
    case 'notIdentical':
      return l.finite === 0
        ? `not identical: every compared element is NaN/Inf (${count(l.nonFinite)}; NaN never equals NaN)`
        : `not identical: ${count(l.nonFinite)} (NaN never equals NaN), left out; the other ${l.finite} elements are equal`;
    case 'zeros':
      return `${B} differs from ${A} (‖Δ‖ ${formatNorm(l.deltaNorm)}) but ${A} or ${B} is all zeros${nf}`;
    case 'unrelated':
      return `unrelated weights: cosine ${l.cosine.toFixed(2)}${of}${nf}`;
    case 'fineTuned':
      return `${B} looks fine-tuned from ${A}: relative change ${formatPercent(l.relative)}${of}${nf}`;
    case 'changedALot':
      return `${B} is related to ${A} but changed a lot: relative change ${formatPercent(l.relative)}, cosine ${l.cosine.toFixed(3)}${of}${nf}`;
  }
}
