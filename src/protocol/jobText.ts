/**
 * What the extension says when a writing job (apply, extract, merge) ends, and where a job's
 * warnings belong in a merge recipe. Display text only: no `vscode`, so it is unit-tested.
 */
import type { JobOutcome } from '../core/jobs/types';
import { formatBytes, printable } from './displayFormat';

/** "1 tensor", "2 tensors", "0 tensors"; `plural` for irregular words. */
export function countOf(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}

/** The parts of a job's outcome the completion message uses. */
export type JobDoneFacts = Pick<JobOutcome, 'tensorCount' | 'bytesWritten' | 'seconds' | 'backend' | 'warnings'> & {
  readonly lowRank?: Pick<NonNullable<JobOutcome['lowRank']>, 'matrices' | 'energy' | 'relativeError'>;
};

/** "12 matrices factored: 93.41 % of the energy captured, relative error 25.67 %". */
export function lowRankText(l: NonNullable<JobDoneFacts['lowRank']>): string {
  return `${countOf(l.matrices, 'matrix', 'matrices')} factored: ${(100 * l.energy).toFixed(2)} % of the energy captured, relative error ${(100 * l.relativeError).toFixed(2)} %`;
}

/** Longest warning quoted in a notification; the rest is behind "Show Warnings". */
const QUOTED_WARNING_CHARS = 160;

/**
 * "Chat vector applied: tiny-cp-chat — 39 tensors, 501 kB in 0.1 s on cpu (2 threads). 1 warning:
 * the chat model has no chat template …". The first warning is quoted (shortened) because the
 * user may never open the list.
 */
export function jobDoneMessage(what: string, outName: string, x: JobDoneFacts): string {
  const head = `${what}: ${printable(outName)} — ${countOf(x.tensorCount, 'tensor')}, ${formatBytes(x.bytesWritten)} in ${x.seconds.toFixed(1)} s on ${x.backend}${x.lowRank ? `; ${lowRankText(x.lowRank)}` : ''}`;
  if (!x.warnings.length) return `${head}.`;
  const first = printable(x.warnings[0]!);
  const quoted = first.length > QUOTED_WARNING_CHARS ? `${first.slice(0, QUOTED_WARNING_CHARS - 1)}…` : first;
  return `${head}. ${x.warnings.length === 1 ? '1 warning' : `${x.warnings.length} warnings, the first`}: ${quoted}`;
}

/** A job warning placed in a recipe: 0-based line, columns in UTF-16 units (end exclusive). */
export interface RecipeWarningRange {
  readonly line: number;
  readonly column: number;
  readonly endColumn: number;
  readonly message: string;
}

/**
 * Where each warning of a merge (or its dry run) belongs in the recipe's text: a warning about
 * "the base model" on the `base_model:` line; one that names a model path of the recipe on that
 * model's line; anything else on the `merge_method:` line (the whole recipe). Falls back to
 * line 0 when the text has none of these keys.
 */
export function recipeWarningRanges(text: string, warnings: readonly string[]): RecipeWarningRange[] {
  const lines = text.split(/\r?\n/);
  const keyLine = (key: string): number => lines.findIndex((l) => new RegExp(`^\\s*(?:-\\s+)?${key}\\s*:`).test(l));
  // Model paths as written in the recipe (`model: x`, `base_model: x`, `- x` under chat_models …).
  const models: { line: number; value: string }[] = [];
  lines.forEach((l, line) => {
    const m = /^\s*(?:-\s+)?(?:model|base_model|target|chat_model)\s*:\s*["']?([^"'#\s][^"'#]*?)["']?\s*(?:#.*)?$/.exec(l);
    if (m) models.push({ line, value: m[1]! });
  });
  const span = (line: number) => {
    const l = lines[line] ?? '';
    const column = l.length - l.trimStart().length;
    return { line, column, endColumn: Math.max(column + 1, l.trimEnd().length) };
  };
  const method = keyLine('merge_method');
  const base = keyLine('base_model');
  return warnings.map((message) => {
    const byPath = models.filter((m) => message.includes(m.value)).sort((a, b) => b.value.length - a.value.length)[0];
    const line = byPath ? byPath.line : /\bbase model\b/i.test(message) && base >= 0 ? base : method >= 0 ? method : 0;
    return { ...span(line), message };
  });
}

/**
 * A message of the task-host client in the words the editor uses: "the task host" is the
 * background process to a user. The log keeps the original.
 */
export function userFacingHostText(message: string): string {
  return message.replace(/\b([Tt])he task host\b/g, (_m, t: string) => `${t}he background process`).replace(/\btask host\b/g, 'background process');
}

/** Command-line flags as the editor's dialogs name them. */
const FLAG_WORDS: readonly [RegExp, string][] = [
  [/\bpass --skip-embed\b/g, 'choose "Skip embeddings"'],
  [/--skip-embed\b/g, '"Skip embeddings"'],
  [/\bpass --special-tokens\b/g, 'choose "Map special tokens"'],
  [/--special-tokens\b/g, '"Map special tokens"'],
  [/--overwrite\b/g, '"Replace"'],
];

/**
 * An error of a job in the editor's words: the background process instead of the task host, the
 * dialogs' option names instead of CLI flags, and folder names instead of absolute paths (the log
 * keeps the original message).
 */
export function uiErrorText(message: string): string {
  let s = userFacingHostText(message);
  for (const [re, words] of FLAG_WORDS) s = s.replace(re, words);
  // "/tmp/ws/chatvec-demo/tiny-cp" → "tiny-cp": at least two segments, after a space, quote or bracket.
  return s.replace(/(^|[\s"'`([])(?:\/[^\s/:,;()[\]"'`]+)+\/([^\s/:,;()[\]"'`]+)/g, '$1$2');
}

/** True when a job failed because the vocabularies differ, which "Skip embeddings" avoids. */
export function isVocabularyMismatch(message: string): boolean {
  return /vocabularies differ/.test(message) && /--skip-embed/.test(message);
}
