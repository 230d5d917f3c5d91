import type { Command } from 'commander';
import { applyJob } from '../jobs';
import { BACKEND_HELP, collect, parseBackend, parseDtypeOption, parseRatio, parseShardSize, parseSpecialTokens, parseThreads } from '../options';
import { progressMode, runOutputCommand } from '../jobCommand';
import { action } from '../run';
import { ChatVecError } from '../../core/errors';

interface ApplyCli {
  target: string;
  vector?: string[];
  base?: string;
  chat?: string[];
  ratio?: string[];
  out: string;
  skipEmbed?: boolean;
  specialTokens?: string;
  tokenizerSource?: string;
  maxShardSize?: string;
  dtype?: string;
  threads?: string;
  backend?: string;
  overwrite?: boolean;
  allowNonFinite?: boolean;
  json?: boolean;
  quiet?: boolean;
}

function parseTokenizerSource(v: string | undefined): 'cp' | 'base' | 'union' | undefined {
  if (v === undefined) return undefined;
  if (v === 'cp' || v === 'base' || v === 'union') return v;
  throw new ChatVecError('InvalidArgument', `--tokenizer-source must be cp, base or union, got ${JSON.stringify(v)}`);
}

export function registerApply(program: Command): void {
  program
    .command('apply')
    .description('add chat vectors to a continually-pretrained model: θ_out = θ_cp + Σ rᵢ·τᵢ (fused with --base/--chat)')
    .requiredOption('--target <dir>', 'the continually-pretrained (CP) model: a folder, a .safetensors file or a Hugging Face id (org/name[@rev], from the hub cache)')
    .option('--vector <dir>', 'a chat vector from `chatvec extract`, or a PEFT LoRA adapter folder (repeatable)', collect)
    .option('--base <dir>', 'fused: the base model (with --chat; τ is never written)')
    .option('--chat <dir>', 'fused: a chat model, or a PEFT LoRA adapter trained on the base (repeatable)', collect)
    .option('--ratio <r>', 'ratio per vector/chat in order, or one for all (default 1.0; negative allowed)', collect)
    .requiredOption('--out <dir>', 'output folder')
    .option('--skip-embed', 'copy input embeddings and LM head from the target unchanged (different vocabularies)')
    .option('--special-tokens <K:V,...>', 'target rows K of embeddings and LM head become the chat model\'s rows V')
    .option('--tokenizer-source <which>', 'fused: rebuild every model\'s embeddings and LM head by token for one vocabulary first: cp (the target\'s; for a CP that extended the vocabulary), base or union (as a recipe\'s tokenizer_source)')
    .option('--max-shard-size <size>', 'shard budget, e.g. 5GB (default), 500MB')
    .option('--dtype <dtype>', 'output dtype: bf16 | f16 | f32 (default: the target\'s, per tensor)')
    .option('--threads <n>', 'worker threads (default: all cores)')
    .option('--backend <kind>', BACKEND_HELP, 'auto')
    .option('--overwrite', 'replace an existing output folder')
    .option('--allow-non-finite', 'write the output even when finite weights give NaN/±Inf (e.g. an overflowing ratio), with a warning; default: fail and write nothing')
    .option('--json', 'print progress and the result as JSON lines')
    .option('--quiet', 'print nothing but errors')
    .action(
      action(async (o: ApplyCli) => {
        await runOutputCommand(progressMode(o), (ctx) =>
          applyJob(
            {
              target: o.target,
              vectors: o.vector,
              base: o.base,
              chats: o.chat,
              ratios: o.ratio?.map(parseRatio),
              out: o.out,
              skipEmbed: o.skipEmbed,
              specialTokens: parseSpecialTokens(o.specialTokens),
              tokenizerSource: parseTokenizerSource(o.tokenizerSource),
              maxShardBytes: parseShardSize(o.maxShardSize),
              dtype: parseDtypeOption(o.dtype),
              threads: parseThreads(o.threads),
              backend: parseBackend(o.backend),
              overwrite: o.overwrite,
              allowNonFinite: o.allowNonFinite,
            },
            ctx,
          ),
        );
      }),
    );
}
