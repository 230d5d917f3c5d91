import type { Command } from 'commander';
import { runExtract } from '../jobs';
import { BACKEND_HELP, parseBackend, parseDtypeOption, parseShardSize, parseThreads } from '../options';
import { progressMode, runOutputCommand } from '../jobCommand';
import { action } from '../run';

export function registerExtract(program: Command): void {
  program
    .command('extract')
    .description('compute a chat vector τ = chat − base (every tensor, matched by name)')
    .requiredOption('--base <dir>', 'the base (pretrained) model')
    .requiredOption('--chat <dir>', 'the chat model fine-tuned from the base')
    .requiredOption('--out <dir>', 'output folder for the chat vector')
    .option('--dtype <dtype>', 'f32 (exact, default) | bf16 | f16')
    .option('--skip-embed', 'leave input embeddings and LM head out of the vector')
    .option('--max-shard-size <size>', 'shard budget, e.g. 5GB (default), 500MB')
    .option('--threads <n>', 'worker threads (default: all cores)')
    .option('--backend <kind>', BACKEND_HELP, 'auto')
    .option('--overwrite', 'replace an existing output folder')
    .option('--json', 'print progress and the result as JSON lines')
    .option('--quiet', 'print nothing but errors')
    .action(
      action(async (o: { base: string; chat: string; out: string; dtype?: string; skipEmbed?: boolean; maxShardSize?: string; threads?: string; backend?: string; overwrite?: boolean; json?: boolean; quiet?: boolean }) => {
        await runOutputCommand(
          progressMode(o),
          (ctx) =>
            runExtract(
              {
                base: o.base,
                chat: o.chat,
                out: o.out,
                dtype: parseDtypeOption(o.dtype),
                skipEmbed: o.skipEmbed,
                maxShardBytes: parseShardSize(o.maxShardSize),
                threads: parseThreads(o.threads),
                backend: parseBackend(o.backend),
                overwrite: o.overwrite,
              },
              ctx,
            ),
          { what: 'chat vector ' },
        );
      }),
    );
}
