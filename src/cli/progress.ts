/**
 * Progress on the terminal: a redrawn bar on a TTY (bytes, GB/s, ETA), a plain line every few
 * seconds otherwise (logs, CI), JSON lines with --json, nothing with --quiet.
 */
import type { JobContext, LogLevel, LogSink, ProgressEvent, ProgressSink } from '../core/jobs/types';
import { bar, formatBytes, formatDuration, printableLines } from '../protocol/displayFormat';
import { interruptSignal } from './run';

export type ProgressMode = 'auto' | 'json' | 'quiet';

export function progressPrinter(mode: ProgressMode, stream: NodeJS.WriteStream = process.stderr): ProgressSink & { end(): void } {
  if (mode === 'quiet') return Object.assign(() => {}, { end() {} });
  if (mode === 'json') {
    return Object.assign((e: ProgressEvent) => process.stdout.write(JSON.stringify({ type: 'progress', ...e }) + '\n'), { end() {} });
  }
  const tty = stream.isTTY === true;
  let lastLine = 0;
  let drawn = false;
  const sink = (e: ProgressEvent) => {
    const frac = e.total > 0 ? e.done / e.total : 0;
    const amount = e.unit === 'bytes' ? `${formatBytes(e.done)} / ${formatBytes(e.total)}` : `${e.done} / ${e.total}`;
    const rate = e.unit === 'bytes' && e.bytesPerSecond > 0 ? `  ${formatBytes(e.bytesPerSecond)}/s` : '';
    const eta = e.etaSeconds !== null && e.done < e.total ? `  ETA ${formatDuration(e.etaSeconds)}` : '';
    const pct = `${(frac * 100).toFixed(0).padStart(3)}%`;
    if (tty) {
      const width = Math.max(10, Math.min(30, (stream.columns ?? 80) - 60));
      stream.write(`\r${e.phase} ${pct} |${bar(frac, width)}| ${amount}${rate}${eta}\x1b[K`);
      drawn = true;
      return;
    }
    const now = Date.now();
    if (now - lastLine >= 3000 || e.done >= e.total) {
      lastLine = now;
      stream.write(`${e.phase} ${pct} ${amount}${rate}${eta}\n`);
    }
  };
  return Object.assign(sink, {
    end() {
      if (drawn) stream.write('\n');
      drawn = false;
    },
  });
}

/**
 * A job's log for the commands that print a report (diff, energy): warnings and errors on stderr
 * as `chatvec: warning: …`, after ending the progress line; nothing with --quiet.
 */
export function reportLogPrinter(progress: { end(): void }, quiet: boolean): (level: LogLevel, message: string) => void {
  return (level, message) => {
    if ((level === 'warn' || level === 'error') && !quiet) {
      progress.end();
      process.stderr.write(`chatvec: ${level === 'warn' ? 'warning' : 'error'}: ${printableLines(message)}\n`);
    }
  };
}

/** A progress printer: a ProgressSink whose line can be ended (before other output). */
export type ProgressLine = ProgressSink & { end(): void };

/**
 * Runs a command's job with a progress printer in `mode`, Ctrl-C (and SIGTERM) as its cancel
 * signal and the log sink `log` makes from the printer (to end its line before a message). The
 * printer is ended and the signal released when the job settles; the caller prints the result.
 */
export async function withJobContext<R>(mode: ProgressMode, log: (progress: ProgressLine) => LogSink, job: (ctx: JobContext) => Promise<R>): Promise<R> {
  const progress = progressPrinter(mode);
  const signal = interruptSignal();
  try {
    return await job({ signal, onProgress: progress, onLog: log(progress) });
  } finally {
    progress.end();
    signal.dispose();
  }
}
