/**
 * The dry run of a multi-document (mergekit-multi) recipe as text: the run order, then each
 * document's plan in that order (formatPlanSummary), or why it cannot be planned yet. One format
 * for `chatvec merge --dry-run` and the editor's Dry Run document.
 */
import type { DocumentPlanSummary } from '../core/recipes/multiRecipe';
import { printable } from './displayFormat';
import { formatPlanSummary } from './planText';

function label(d: DocumentPlanSummary): string {
  return d.name === null ? 'the final merge' : `\`${printable(d.name)}\``;
}

function destination(d: DocumentPlanSummary): string {
  if (d.role === 'final') return 'the output (--out)';
  if (d.role === 'unused') return 'not run: the final merge does not use it';
  if (d.reused) return `reused: ${printable(d.keptAt ?? '')} (its recipe is unchanged)`;
  return d.keptAt !== null ? `kept in ${printable(d.keptAt)}` : 'a temporary folder next to the output, removed after the run';
}

/** The whole dry run; `verbose` lists every tensor of each plan. */
export function formatRecipeFilePlan(docs: readonly DocumentPlanSummary[], verbose = false): string {
  const run = docs.filter((d) => d.role !== 'unused');
  const lines = [`${docs.length} merges (mergekit-multi); run in this order:`];
  docs.forEach((d, i) => {
    const uses = d.uses.length ? `, uses ${d.uses.map((u) => `\`${printable(u)}\``).join(', ')}` : '';
    lines.push(`  ${d.role === 'unused' ? '-' : `${i + 1}.`} ${label(d)} (line ${d.line}${uses}) → ${destination(d)}`);
  });
  run.forEach((d, i) => {
    lines.push('', `== ${i + 1}. ${label(d)} (line ${d.line}) ==`);
    if (d.reused) lines.push('reused as it is');
    else if (d.plan) lines.push(formatPlanSummary(d.plan, verbose));
    else {
      const names = d.waitingFor.map((n) => `\`${printable(n)}\``).join(', ');
      lines.push(`planned when ${names} ${d.waitingFor.length === 1 ? 'is' : 'are'} made: its tensors are read from ${d.waitingFor.length === 1 ? 'that merge' : 'those merges'}. (With --intermediate-dir DIR the merges are kept; a dry run with the same DIR after a run plans every document.)`);
    }
  });
  return lines.join('\n');
}
