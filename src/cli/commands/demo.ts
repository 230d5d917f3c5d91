import type { Command } from 'commander';
import { openCheckpoint } from '../../core/checkpoint/checkpoint';
import { inspectReport } from '../../core/checkpoint/inspect';
import { generateDemoTrio } from '../../core/demo/generator';
import { PRESET_NAMES, type PresetName } from '../../core/demo/presets';
import { ChatVecError } from '../../core/errors';
import { action } from '../run';
import { renderInspect } from './inspect';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('generate deterministic LLaMA-shaped demo checkpoints (base, chat, cp) and show them')
    .option('--dir <dir>', 'where to put the demo checkpoints', '.chatvec-demo')
    .option('--preset <name>', `model size: ${PRESET_NAMES.join(' | ')}`, 'tiny')
    .option('--seed <n>', 'generator seed', '42')
    .action(
      action((opts: { dir: string; preset: string; seed: string }) => {
        if (!PRESET_NAMES.includes(opts.preset as PresetName)) throw new ChatVecError('InvalidArgument', `unknown preset "${opts.preset}" (${PRESET_NAMES.join(', ')})`);
        const trio = generateDemoTrio(opts.dir, opts.preset as PresetName, Number(opts.seed), (role) => process.stderr.write(`generating ${opts.preset} ${role}…\n`));
        process.stdout.write(renderInspect(inspectReport(openCheckpoint(trio.base))));
      }),
    );
}
