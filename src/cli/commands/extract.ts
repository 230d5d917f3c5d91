import type { Command } from 'commander';
import { extractJob } from '../jobs';
import { BACKEND_HELP, collect, parseBackend, parseDtypeOption, parseEnergy, parseRank, parseRankFor, parseShardSize, parseThreads } from '../options';
import { progressMode, runOutputCommand } from '../jobCommand';
import { action } from '../run';

export function registerExtract(program: Command): void {
  program
    .command('extract')
    .description('compute a chat vector τ = chat − base (every tensor, matched by name)')
    .requiredOption('--base <dir>', 'the base (pretrained) model (a folder or a Hugging Face id org/name[@rev] in the hub cache)')
    .requiredOption('--chat <dir>', 'the chat model fine-tuned from the base')
    .requiredOption('--out <dir>', 'output folder for the chat vector')
    .option('--dtype <dtype>', 'f32 (exact, default) | bf16 | f16')
    .option('--skip-embed', 'leave input embeddings and LM head out of the vector')
    .option('--rank <r>', 'write a PEFT LoRA adapter instead: each weight matrix τ ≈ B·A of rank ≤ r (randomized SVD); norms and biases go exactly into chatvec_deltas.safetensors')
    .option('--rank-for <pattern=r>', 'with --rank: rank for modules whose name is or ends with PATTERN (PEFT rank_pattern keys, e.g. q_proj=32; repeatable, first match wins)', collect)
    .option('--energy <e>', 'with --rank: per matrix the fewest components holding this fraction of ‖τ‖² (e.g. 0.9), up to its rank; writes rank_pattern')
    .option('--max-shard-size <size>', 'shard budget, e.g. 5GB (default), 500MB')
    .option('--threads <n>', 'worker threads (default: all cores)')
    .option('--backend <kind>', BACKEND_HELP, 'auto')
    .option('--overwrite', 'replace an existing output folder')
    .option('--allow-non-finite', 'write the vector even when a difference of finite weights is NaN/±Inf (e.g. beyond f16), with a warning; default: fail and write nothing')
    .option('--json', 'print progress and the result as JSON lines')
    .option('--quiet', 'print nothing but errors')
    .action(
      action(async (o: { base: string; chat: string; out: string; dtype?: string; skipEmbed?: boolean; rank?: string; rankFor?: string[]; energy?: string; maxShardSize?: string; threads?: string; backend?: string; overwrite?: boolean; allowNonFinite?: boolean; json?: boolean; quiet?: boolean }) => {
        await runOutputCommand(
          progressMode(o),
          (ctx) =>
            extractJob(
              {
                base: o.base,
                chat: o.chat,
                out: o.out,
                dtype: parseDtypeOption(o.dtype),
                skipEmbed: o.skipEmbed,
                ...(o.rank !== undefined || o.rankFor || o.energy !== undefined ? { rank: parseRank(o.rank), rankFor: parseRankFor(o.rankFor), energy: parseEnergy(o.energy) } : {}),
                maxShardBytes: parseShardSize(o.maxShardSize),
                threads: parseThreads(o.threads),
                backend: parseBackend(o.backend),
                overwrite: o.overwrite,
                allowNonFinite: o.allowNonFinite,
              },
              ctx,
            ),
          {
            what: o.rank !== undefined ? 'LoRA adapter ' : 'chat vector ',
            // extract --rank logs a line per matrix (info): shown on a terminal, not with --quiet.
            showLog: (level) => (o.json ? false : o.quiet ? level === 'warn' || level === 'error' : true),
          },
        );
      }),
    );
}
