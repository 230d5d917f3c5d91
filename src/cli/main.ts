/** `chatvec`: the command line over the same core jobs as the VS Code extension. */
import { Command } from 'commander';
import { registerInspect } from './commands/inspect';
import { registerDemo } from './commands/demo';
import { registerDiff } from './commands/diff';
import { registerExtract } from './commands/extract';
import { registerApply } from './commands/apply';
import { registerMerge } from './commands/merge';
import { registerDownload } from './commands/download';
import { registerGguf } from './commands/gguf';
import { registerEval } from './commands/eval';
import { registerChat } from './commands/chat';
import { registerSweep } from './commands/sweep';
import { ioError } from '../core/io/outputFile';
import { TOOL_VERSION } from '../core/version';
import { EXIT_ERROR, EXIT_USAGE } from './run';
import { closeTaskHost, useTaskHost } from './jobs';

export function buildProgram(): Command {
  const program = new Command('chatvec')
    .description('Chat Vector: LLM weight arithmetic on safetensors checkpoints (θ_out = θ_cp + Σ rᵢ·(θ_chatᵢ − θ_base))')
    .version(TOOL_VERSION)
    .showHelpAfterError()
    .exitOverride((err) => {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0);
      process.exit(EXIT_USAGE);
    })
    .option('--via-host', 'run inspect, diff, extract, apply, merge, eval and chat in a separate task host process (as the VS Code extension does)')
    .hook('preAction', (cmd) => {
      if (cmd.opts<{ viaHost?: boolean }>().viaHost) useTaskHost();
    })
    .hook('postAction', () => closeTaskHost());
  registerInspect(program);
  registerExtract(program);
  registerApply(program);
  registerDemo(program);
  registerDiff(program);
  registerMerge(program);
  registerDownload(program);
  registerGguf(program);
  registerEval(program);
  registerChat(program);
  registerSweep(program);
  return program;
}

/**
 * A reader that stops early (`chatvec inspect --json X | head -c 10`, `chatvec demo | head -1`)
 * closes our stdout: not an error, and no stack trace. Output to a closed stream is dropped from then
 * on and the command finishes normally (a job still completes its output folder rather than leaving
 * a partial one). Any other failure to write stdout (a full disk behind `>`) is one line on stderr
 * and exit status 1.
 */
function dropOutputToClosedStreams(): void {
  for (const stream of [process.stdout, process.stderr]) {
    let broken = false;
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (broken) return;
      broken = true;
      stream.write = (() => true) as typeof stream.write;
      if (e.code === 'EPIPE' || stream === process.stderr) return;
      process.stderr.write(`chatvec: error: ${ioError('standard output', 'cannot write', e).message}\n`);
      process.exitCode = EXIT_ERROR;
    });
  }
}

/**
 * CHATVEC_LINGER_MS (set by the extension's `chatvec` task): stay this long after the command ends
 * before exiting. VS Code's task system stops feeding terminal lines to the problem matcher 100 ms
 * after the process exits, and a busy window renders the last lines later than that: the
 * `file:line:col: error:` lines printed just before exiting were lost.
 */
function lingerMs(): number {
  const ms = Number(process.env.CHATVEC_LINGER_MS);
  return Number.isFinite(ms) && ms > 0 ? Math.min(ms, 10_000) : 0;
}

dropOutputToClosedStreams();
void buildProgram()
  .parseAsync(process.argv)
  .then(() => lingerMs() && new Promise((r) => setTimeout(r, lingerMs())));
