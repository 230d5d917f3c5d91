import type { Command } from 'commander';
import { runExtract } from '../jobs';
import { formatBytes, formatDuration } from '../../core/format';
import { BACKEND_HELP, parseBackend, parseDtypeOption, parseShardSize, parseThreads } from '../options';
import { type ProgressMode, progressPrinter } from '../progress';
import { action, interruptSignal } from '../run';

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
        const mode: ProgressMode = o.json ? 'json' : o.quiet ? 'quiet' : 'auto';
        const progress = progressPrinter(mode);
        const signal = interruptSignal();
        try {
          const r = await runExtract(
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
            { signal, onProgress: progress, onLog: (l, m) => mode !== 'json' && process.stderr.write(`${l}: ${m}\n`) },
          );
          progress.end();
          if (mode === 'json') process.stdout.write(JSON.stringify({ type: 'result', ...r }) + '\n');
          else if (mode === 'auto') process.stdout.write(`wrote chat vector ${r.out}: ${r.tensorCount} tensors, ${formatBytes(r.bytesWritten)} in ${formatDuration(r.seconds)} (${r.backend})\n`);
        } finally {
          progress.end();
          signal.dispose();
        }
      }),
    );
}
