/** `chatvec download ID[@rev] [--include GLOB] [--token T]`: a model into the Hugging Face hub cache. */
import type { Command } from 'commander';
import { ChatVecError } from '../../core/errors';
import { describeCacheLocation, hubCacheLocation } from '../../core/hub/cacheLayout';
import { downloadModel } from '../../core/hub/download';
import { parseModelId } from '../../core/hub/modelId';
import { formatBytes, printable } from '../../protocol/displayFormat';
import { collect } from '../options';
import { progressMode } from '../jobCommand';
import { progressPrinter } from '../progress';
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
    .option('--token <token>', 'a Hugging Face access token for gated or private models (default: HF_TOKEN, then the token file of `hf auth login`); never printed')
    .option('--json', 'print progress and the result as JSON lines')
    .option('--quiet', 'print nothing but errors')
    .action(
      action(async (given: string, o: DownloadCli) => {
        const id = parseModelId(given);
        if (!id) throw new ChatVecError('InvalidArgument', `"${given}" is not a model id (org/name or org/name@revision)`);
        const mode = progressMode(o);
        const progress = progressPrinter(mode);
        // Ctrl-C aborts the transfer at once; the partial file is kept and the next run resumes it.
        const abort = new AbortController();
        const onSignal = () => abort.abort();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        try {
          if (mode === 'auto') process.stderr.write(`cache: ${describeCacheLocation(hubCacheLocation())}\n`);
          const r = await downloadModel({ id, include: o.include, token: o.token, signal: abort.signal, onProgress: progress });
          progress.end();
          if (mode === 'json') process.stdout.write(JSON.stringify({ type: 'result', ...r }) + '\n');
          else if (mode === 'auto') process.stdout.write(`${printable(given)}: ${r.files.length} files at commit ${r.commit} (${formatBytes(r.bytesReceived)} received) in ${printable(r.snapshot)}\n`);
        } finally {
          progress.end();
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
      }),
    );
}
