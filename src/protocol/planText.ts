/**
 * The dry-run plan of a merge recipe as text, for a terminal (`chatvec merge --dry-run`) and the
 * editor's Dry Run document (the task host's `recipePlan`): one format for both. Names and paths
 * come from the recipe and the checkpoints' headers, so each is shown through `printable`.
 */
import type { PlanSummary } from '../core/recipes/summary';
import { formatBytes, formatDuration, printable, table } from './displayFormat';

/** The summary as text; `verbose` lists every tensor. */
export function formatPlanSummary(s: PlanSummary, verbose = false): string {
  const reads = [
    s.readBytes.analyse ? `analyse ${formatBytes(s.readBytes.analyse)}` : '',
    s.readBytes.refine ? `refine ${formatBytes(s.readBytes.refine)}` : '',
    `write pass ${formatBytes(s.readBytes.write)}`,
  ].filter(Boolean);
  const lines = [
    `merge_method: ${printable(s.method)}`,
    `tensors:      ${s.tensorCount} (${s.mergedTensors} merged${s.copiedTensors ? `, ${s.copiedTensors} copied` : ''})${s.outputLayers !== null ? `, ${s.outputLayers} layers` : ''}`,
    `output size:  ${formatBytes(s.outputBytes)}`,
    `reads:        ${reads.join(', ')}`,
    `estimate:     ~${formatDuration(s.estimatedSeconds)} on ${s.threads} thread${s.threads === 1 ? '' : 's'}, ~${formatBytes(s.estimatedMemoryBytes)} memory (rough)`,
  ];
  if (s.adapters?.length) lines.push('', 'adapters (merged in as read):', ...s.adapters.map((a) => `  - ${printable(a)}`));
  if (s.layerMap?.length) {
    lines.push('', 'layers (output ← model):');
    const span = ([a, b]: readonly [number, number]) => (b - a === 1 ? `${a}` : `${a}–${b - 1}`);
    lines.push(table(s.layerMap.map((e) => [span(e.out), '←', printable(e.model), span(e.layers)])).replace(/^/gm, '  '));
  }
  if (s.vocabulary.length) lines.push('', 'vocabulary:', ...s.vocabulary.map((v) => `  ${printable(v)}`));
  if (s.filters.length) {
    lines.push('', 'filters (first match wins):');
    const rows = s.filters.map((f) => [
      printable(f.where),
      f.filter === null ? '(all)' : `"${printable(f.filter)}"`,
      `${f.matched} tensor${f.matched === 1 ? '' : 's'}${f.shadowed ? ` (+${f.shadowed} taken by earlier entries)` : ''}`,
      f.examples.map(printable).join(', ') + (f.matched > f.examples.length ? ', …' : ''),
    ]);
    lines.push(table(rows).replace(/^/gm, '  '));
  }
  if (s.warnings.length) lines.push('', 'warnings:', ...s.warnings.map((w) => `  - ${printable(w)}`));
  if (verbose) {
    lines.push('', 'tensors:');
    lines.push(table(s.tensors.map((t) => [printable(t.name), `[${t.shape.join(', ')}]`, printable(t.dtype), t.kind === 'copy' ? 'copied' : `${t.inputs.length} inputs`])).replace(/^/gm, '  '));
  }
  return lines.join('\n');
}
