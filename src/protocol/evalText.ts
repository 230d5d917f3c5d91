/**
 * `chatvec eval` as text: one model's perplexity with the settings it was measured under, and
 * two models side by side (`--compare`) with their difference; the editor's table of several
 * models (Evaluate Perplexity…). One rule for the numbers: formatNll and formatPerplexity.
 */
import type { EvalReport } from '../core/tryit/evaluate';
import { printable, table } from './displayFormat';

/** A mean NLL (nats per token) or a difference of two: 4 decimals, the same in every table. */
export function formatNll(x: number): string {
  return x.toFixed(4);
}

/** A perplexity: 3 decimals. */
export function formatPerplexity(x: number): string {
  return x.toFixed(3);
}

/** B − A of mean NLLs with its sign: "+0.0123", "−0.0040". */
export function formatNllChange(x: number): string {
  return (x >= 0 ? '+' : '−') + formatNll(Math.abs(x));
}

/** B / A of perplexities: "×1.0124". */
export function formatPerplexityRatio(x: number): string {
  return `×${x.toFixed(4)}`;
}

function source(r: EvalReport): string {
  return r.ggufFrom === 'gguf' ? 'GGUF file' : r.ggufFrom === 'cache' ? `GGUF from the cache: ${printable(r.gguf)}` : `converted to ${printable(r.gguf)}`;
}

/** The lines of one report (no trailing newline). */
export function formatEvalReport(r: EvalReport): string {
  return [
    `${printable(r.model)} (${source(r)})`,
    `  ${r.ids.length} tokens, ${r.scored} scored; context ${r.context}, stride ${r.stride} (${r.windows} window${r.windows === 1 ? '' : 's'}); ${r.backend}, ${r.tokensPerSecond.toFixed(1)} tokens/s`,
    `  mean NLL ${formatNll(r.meanNll)} nats/token, perplexity ${formatPerplexity(r.perplexity)}`,
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
  const rows = [
    ['', 'model', 'tokens', 'mean NLL', 'perplexity'],
    ['A', printable(a.model), String(a.scored), formatNll(a.meanNll), formatPerplexity(a.perplexity)],
    ['B', printable(b.model), String(b.scored), formatNll(b.meanNll), formatPerplexity(b.perplexity)],
    ['B − A', '', '', formatNllChange(d.meanNll), formatPerplexityRatio(d.perplexityRatio)],
  ];
  const lines = [`context ${a.context}, stride ${a.stride}; ${a.backend}`, table(rows, new Set([2, 3, 4]))];
  if (!d.sameTokens) lines.push('note: the two tokenizers split the text differently, so the per-token numbers are not over the same tokens');
  return lines.join('\n');
}

/** The columns of the editor's perplexity table. */
export const EVAL_TABLE_HEADER = ['model', 'mean NLL', 'perplexity', 'tokens scored', 'context / stride', 'Δ NLL vs first', 'perplexity vs first'] as const;

/**
 * One row per report, in EVAL_TABLE_HEADER's columns: the model's file name, its numbers, and the
 * difference to the first report ("—" on the first row; a "*" marks a model whose tokenizer split
 * the text differently, so its tokens are not the first model's).
 */
export function evalTableRows(reports: readonly EvalReport[], name: (model: string) => string = (m) => m): string[][] {
  const first = reports[0];
  return reports.map((r, i) => {
    const d = first && i > 0 ? evalDifference(first, r) : null;
    return [
      printable(name(r.model)),
      formatNll(r.meanNll),
      formatPerplexity(r.perplexity),
      String(r.scored),
      `${r.context} / ${r.stride}`,
      d ? `${formatNllChange(d.meanNll)}${d.sameTokens ? '' : ' *'}` : '—',
      d ? formatPerplexityRatio(d.perplexityRatio) : '—',
    ];
  });
}

/** Markdown: the text scored, a table of evalTableRows, and what the numbers mean. */
export function formatEvalMarkdown(text: string, reports: readonly EvalReport[], name?: (model: string) => string): string {
  // Markdown's punctuation escaped: a file name never turns into emphasis, a link or a new column.
  const cell = (c: string) => c.replace(/[\\`*_[\]<>|]/g, '\\$&');
  const rows = evalTableRows(reports, name);
  const lines = [
    '# Perplexity',
    '',
    `Text: \`${printable(text)}\``,
    '',
    `| ${EVAL_TABLE_HEADER.join(' | ')} |`,
    `|${EVAL_TABLE_HEADER.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
    '',
    'Mean negative log-likelihood in nats per scored token; perplexity = exp(mean NLL). Lower is better. Sliding windows of *context* tokens that advance by *stride*; only the new tokens of each window are scored.',
  ];
  if (reports.some((r, i) => i > 0 && !evalDifference(reports[0]!, r).sameTokens)) lines.push('', '\\* The tokenizer split the text differently from the first model\'s: the per-token numbers are not over the same tokens.');
  const backends = [...new Set(reports.map((r) => r.backend))];
  lines.push('', `Evaluated by llama.cpp on ${backends.join(', ')}.`);
  return lines.join('\n') + '\n';
}
