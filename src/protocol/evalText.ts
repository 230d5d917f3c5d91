/**
 * `chatvec eval` as text: one model's perplexity with the settings it was measured under, and
 * two models side by side (`--compare`) with their difference.
 */
import type { EvalReport } from '../core/tryit/evaluate';
import { printable, table } from './displayFormat';

function source(r: EvalReport): string {
  return r.ggufFrom === 'gguf' ? 'GGUF file' : r.ggufFrom === 'cache' ? `GGUF from the cache: ${printable(r.gguf)}` : `converted to ${printable(r.gguf)}`;
}

/** The lines of one report (no trailing newline). */
export function formatEvalReport(r: EvalReport): string {
  return [
    `${printable(r.model)} (${source(r)})`,
    `  ${r.ids.length} tokens, ${r.scored} scored; context ${r.context}, stride ${r.stride} (${r.windows} window${r.windows === 1 ? '' : 's'}); ${r.backend}, ${r.tokensPerSecond.toFixed(1)} tokens/s`,
    `  mean NLL ${r.meanNll.toFixed(4)} nats/token, perplexity ${r.perplexity.toFixed(3)}`,
  ].join('\n');
}

/** The difference B − A: of the mean NLLs, and the ratio of the perplexities. */
export function evalDifference(a: EvalReport, b: EvalReport): { meanNll: number; perplexityRatio: number; sameTokens: boolean } {
  const sameTokens = a.ids.length === b.ids.length && a.ids.every((id, i) => id === b.ids[i]);
  return { meanNll: b.meanNll - a.meanNll, perplexityRatio: b.perplexity / a.perplexity, sameTokens };
}

/** Both reports and their difference as a table (no trailing newline). */
export function formatEvalComparison(a: EvalReport, b: EvalReport): string {
  const d = evalDifference(a, b);
  const sign = (x: number) => (x >= 0 ? '+' : '−') + Math.abs(x).toFixed(4);
  const rows = [
    ['', 'model', 'tokens', 'mean NLL', 'perplexity'],
    ['A', printable(a.model), String(a.scored), a.meanNll.toFixed(4), a.perplexity.toFixed(3)],
    ['B', printable(b.model), String(b.scored), b.meanNll.toFixed(4), b.perplexity.toFixed(3)],
    ['B − A', '', '', sign(d.meanNll), `×${d.perplexityRatio.toFixed(4)}`],
  ];
  const lines = [`context ${a.context}, stride ${a.stride}; ${a.backend}`, table(rows, new Set([2, 3, 4]))];
  if (!d.sameTokens) lines.push('note: the two tokenizers split the text differently, so the per-token numbers are not over the same tokens');
  return lines.join('\n');
}
