/**
 * The one rule for how many worker threads a job may ask for. Every worker is a V8 isolate with
 * its own heap (tens of MB) plus its chunk buffers, so a mistyped `--threads 100000` exhausts
 * memory and crashes long before it could help; past a few threads per core the work is bound by
 * the disk and the cores anyway. The CLI, the task host (its arguments and requests), the
 * extension's setting and the engine itself all check against this limit.
 */
import { ChatVecError } from '../errors';
import { availableParallelism } from '../io/files';

/** The limit on any machine, however many cores it has. */
export const THREAD_CEILING = 256;
/** Threads per core allowed: a little over-subscription lets reads overlap compute. */
export const THREADS_PER_CORE = 4;

/**
 * The most worker threads a job may use here: min(256, 4 × available cores), at least 1.
 * @param cores available cores (default: this machine's, os.availableParallelism)
 */
export function maxThreads(cores: number = availableParallelism()): number {
  return Math.max(1, Math.min(THREAD_CEILING, THREADS_PER_CORE * Math.max(1, Math.floor(cores))));
}

/** "8 worker threads (4 × 2 cores, capped at 256)": the limit as messages explain it. */
export function describeThreadLimit(cores: number = availableParallelism()): string {
  return `${maxThreads(cores)} worker threads (${THREADS_PER_CORE} × ${cores} core${cores === 1 ? '' : 's'}, capped at ${THREAD_CEILING})`;
}

/**
 * Checks a requested number of worker threads.
 * @param threads the request (a count of threads)
 * @param what how the message names the value, e.g. `--threads` or `apply: options.threads`
 * @returns `threads` unchanged
 * @throws ChatVecError InvalidArgument (one line naming `what` and the limit) when it is not a
 *   whole number ≥ 1 or is above {@link maxThreads}
 */
export function checkThreads(threads: number, what = '--threads'): number {
  if (!Number.isInteger(threads) || threads < 1) throw new ChatVecError('InvalidArgument', `${what} must be a whole number ≥ 1, got ${threads}`);
  const max = maxThreads();
  if (threads > max) throw new ChatVecError('InvalidArgument', `${what} ${threads} is above this machine's limit of ${describeThreadLimit()}`);
  return threads;
}

/**
 * A thread count from a setting, brought within 1…{@link maxThreads} rather than refused (a setting
 * synced from a bigger machine must not break every job). `clamped` says whether it changed, so the
 * caller can note it in its log.
 */
export function clampThreads(threads: number): { threads: number; clamped: boolean } {
  const whole = Number.isFinite(threads) ? Math.max(1, Math.floor(threads)) : maxThreads();
  const limited = Math.min(whole, maxThreads());
  return { threads: limited, clamped: limited !== threads };
}

/**
 * Worker threads a job uses: the option, else every core (never more than {@link maxThreads}).
 * @throws ChatVecError InvalidArgument when the option is not a whole number ≥ 1 or is above the limit
 */
export function threadCount(threads: number | undefined): number {
  if (threads === undefined) return Math.min(availableParallelism(), maxThreads());
  if (!Number.isInteger(threads) || threads < 1) throw new ChatVecError('InvalidArgument', `--threads must be a whole number ≥ 1, got ${threads}`);
  // The last line of defence: the CLI and the task host refuse first, but no caller may start 100 000 workers.
  return checkThreads(threads);
}
