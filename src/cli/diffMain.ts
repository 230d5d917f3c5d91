/**
 * The start path of `chatvec diff` (bundled as dist/cliDiff.js; dist/cli.js, entry.ts, loads it
 * for `chatvec diff …`): the diff command alone, running the job in this process. It loads a
 * sixth of the full CLI's code, and starts the worker threads before anything else, so that their
 * start overlaps the loading of this bundle's code and the opening of the inputs; this thread
 * computes as one of the --threads. Its answers (output, errors, exit codes) are those of the full
 * program (main.ts), which serves `--via-host` and every other command.
 */
import { prestartWorkers } from '../core/io/workerPool';
import { threadCount } from '../core/jobs/threadLimit';
import { runDiff } from '../core/stats/diff';
import { registerDiff } from './commands/diff';
import { parseThreads, threadsArgument } from './options';
import { newProgram, runProgram } from './program';

/**
 * The worker threads the diff will start (as runDiff chooses them for a model of many chunks: one
 * thread fewer than --threads, as this thread computes too); 0 when --threads is invalid (the
 * parser then reports it).
 */
function expectedWorkers(args: readonly string[]): number {
  try {
    return threadCount(parseThreads(threadsArgument(args))) - 1;
  } catch {
    return 0;
  }
}

prestartWorkers(expectedWorkers(process.argv.slice(2)));
runProgram(registerDiffOnly());

function registerDiffOnly() {
  const program = newProgram();
  // This process runs the one diff and nothing else: its own thread computes too.
  registerDiff(program, (opts, ctx) => runDiff(opts, ctx, { callingThreadComputes: true }));
  return program;
}
