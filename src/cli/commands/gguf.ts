import type { Command } from 'commander';
import { ChatVecError } from '../../core/errors';
import { GGUF_FILE_TYPES, type GgufFileType } from '../../core/gguf/llama';
import { runGgufExport } from '../../core/gguf/export';
import { progressMode, runOutputCommand } from '../jobCommand';
import { parseThreads } from '../options';
import { action } from '../run';

/** The CLI spells the types in lower case: f32, f16, bf16, q8_0. */
const TYPES: ReadonlyMap<string, GgufFileType> = new Map(GGUF_FILE_TYPES.map((t) => [t.toLowerCase(), t]));

/** `--type f32|f16|bf16|q8_0` (case-insensitive). */
export function parseGgufType(s: string | undefined): GgufFileType | undefined {
  if (s === undefined) return undefined;
  const t = TYPES.get(s.trim().toLowerCase());
  if (!t) throw new ChatVecError('InvalidArgument', `--type "${s}" is not one of ${[...TYPES.keys()].join(', ')}`);
  return t;
}

export function registerGguf(program: Command): void {
  program
    .command('gguf')
    .description('export a LLaMA-family checkpoint (Llama 2/3, Mistral, Qwen2) with its byte-level BPE tokenizer as one GGUF file for llama.cpp')
    .argument('<model>', 'the checkpoint folder (config.json, safetensors, tokenizer.json)')
    .requiredOption('--out <file>', 'the .gguf file to write')
    .option('--type <type>', 'type of the weight matrices: f32 | f16 (default) | bf16 | q8_0; norms and biases stay f32')
    .option('--threads <n>', 'worker threads converting chunks (default: all cores; 1 for small models)')
    .option('--overwrite', 'replace an existing file (never a folder or an input)')
    .option('--json', 'print progress and the result as JSON lines')
    .option('--quiet', 'print nothing but errors')
    .action(
      action(async (model: string, o: { out: string; type?: string; threads?: string; overwrite?: boolean; json?: boolean; quiet?: boolean }) => {
        const type = parseGgufType(o.type);
        await runOutputCommand(progressMode(o), (ctx) => runGgufExport({ model, out: o.out, type, overwrite: o.overwrite, threads: parseThreads(o.threads) }, ctx), { what: 'GGUF ' });
      }),
    );
}
