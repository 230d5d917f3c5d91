/** `chatvec`: the command line over the same core jobs as the VS Code extension. */
import type { Command } from 'commander';
import { registerInspect } from './commands/inspect';
import { registerDemo } from './commands/demo';
import { registerDiff } from './commands/diff';
import { registerEnergy } from './commands/energy';
import { registerExtract } from './commands/extract';
import { registerApply } from './commands/apply';
import { registerMerge } from './commands/merge';
import { registerDownload } from './commands/download';
import { registerGguf } from './commands/gguf';
import { registerEval } from './commands/eval';
import { registerChat } from './commands/chat';
import { registerSweep } from './commands/sweep';
import { closeTaskHost, diffJob, useTaskHost } from './jobs';
import { newProgram, runProgram } from './program';

export function buildProgram(): Command {
  const program = newProgram()
    .option('--via-host', 'run inspect, diff, extract, apply, merge, eval, sweep and chat in a separate task host process (as the VS Code extension does)')
    .hook('preAction', (cmd) => {
      if (cmd.opts<{ viaHost?: boolean }>().viaHost) useTaskHost();
    })
    .hook('postAction', () => closeTaskHost());
  registerInspect(program);
  registerExtract(program);
  registerApply(program);
  registerDemo(program);
  registerDiff(program, diffJob);
  registerEnergy(program);
  registerMerge(program);
  registerDownload(program);
  registerGguf(program);
  registerEval(program);
  registerChat(program);
  registerSweep(program);
  return program;
}

runProgram(buildProgram());
