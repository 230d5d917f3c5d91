/** `chatvec`: the command line over the same core jobs as the VS Code extension. */
import { Command } from 'commander';
import { registerInspect } from './commands/inspect';
import { registerDemo } from './commands/demo';
import { registerDiff } from './commands/diff';
import { registerExtract } from './commands/extract';
import { registerApply } from './commands/apply';
import { registerMerge } from './commands/merge';
import { TOOL_VERSION } from '../core/version';
import { EXIT_USAGE } from './run';
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
    .option('--via-host', 'run inspect, diff, extract, apply and merge in a separate task host process (as the VS Code extension does)')
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
  return program;
}

void buildProgram().parseAsync(process.argv);
