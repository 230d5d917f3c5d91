/** `chatvec download ID[@rev] [--include GLOB] [--token T]`: a model into the Hugging Face hub cache. */
import type { Command } from 'commander';
import { collect } from '../options';
import { progressMode } from '../jobCommand';
import { fetchModels } from '../fetchModels';
import { action } from '../run';

interface DownloadCli {
  include?: string[];
  token?: string;
  json?: boolean;
  quiet?: boolean;
}

export function registerDownload(program: Command): void {
  program
    .command('download')
    .description('download a model from the Hugging Face Hub (or HF_ENDPOINT) into the hub cache that huggingface_hub uses; by default only what a merge needs')
    .argument('<id>', 'a model id, org/name or org/name@revision (branch, tag or commit)')
    .option('--include <glob>', 'download the files matching this glob instead of the default selection (repeatable; * within a name, ** across folders); .bin/.pt/.pth are never downloaded', collect)
    .option('--token <token>', TOKEN_HELP)
    .option('--json', 'print progress and the result as JSON lines')
    .option('--quiet', 'print nothing but errors')
    .action(
      action(async (given: string, o: DownloadCli) => {
        // Ctrl-C cancels; the partial file is kept and the next run resumes it.
        await fetchModels([given], { include: o.include, token: o.token, asResult: true }, progressMode(o));
      }),
    );
}

/** The --token option's help (download, merge --download). */
export const TOKEN_HELP = 'a Hugging Face access token for gated or private models (default: HF_TOKEN, then the token file of `hf auth login`); never printed';
