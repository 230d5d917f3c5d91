/**
 * The shared body of the commands that write an output (extract, apply, merge): progress on the
 * terminal, Ctrl-C as cancellation, logs on stderr, and one result line (or a JSON result).
 */
import type { JobContext, JobOutcome, LogLevel } from '../core/jobs/types';
import { formatBytes, formatDuration, printable, printableLines } from '../protocol/displayFormat';
import { lowRankText } from '../protocol/jobText';
import { type ProgressMode, withJobContext } from './progress';

export function progressMode(o: { json?: boolean; quiet?: boolean }): ProgressMode {
  return o.json ? 'json' : o.quiet ? 'quiet' : 'auto';
}

/**
 * Runs `job` with a progress printer and an interrupt signal, then prints
 * "wrote <what><out>: N tensors, SIZE in TIME (backend)" (or the JSON result).
 * @param showLog which log lines reach stderr (default: all but in --json mode)
 */
export async function runOutputCommand<R extends JobOutcome>(
  mode: ProgressMode,
  job: (ctx: JobContext) => Promise<R>,
  opts: { what?: string; showLog?: (level: LogLevel, message: string) => boolean } = {},
): Promise<R> {
  const showLog = opts.showLog ?? (() => mode !== 'json');
  const r = await withJobContext(mode, () => (l, m) => showLog(l, m) && process.stderr.write(`${l}: ${printableLines(m)}\n`), job);
  if (mode === 'json') process.stdout.write(JSON.stringify({ type: 'result', ...r }) + '\n');
  else if (mode === 'auto') {
    const lr = r.lowRank ? `; ${lowRankText(r.lowRank)}` : '';
    process.stdout.write(`wrote ${opts.what ?? ''}${printable(r.out)}: ${r.tensorCount} tensors, ${formatBytes(r.bytesWritten)} in ${formatDuration(r.seconds)} (${r.backend})${lr}\n`);
  }
  return r;
}
