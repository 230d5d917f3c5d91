/** `chatvec download ID[@rev] [--include GLOB] [--token T]`: a model into the Hugging Face hub cache. */
import type { Command } from 'commander';
import { describeCacheLocation, hubCacheLocation } from '../../core/hub/cacheLayout';
import { formatBytes, printable } from '../../protocol/displayFormat';
import { collect } from '../options';
import { progressMode } from '../jobCommand';
import { progressPrinter } from '../progress';
import { downloadJob } from '../jobs';
import { action, interruptSignal } from '../run';

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
        const mode = progressMode(o);
        const progress = progressPrinter(mode);
        const signal = interruptSignal();
        try {
          if (mode === 'auto') process.stderr.write(`cache: ${describeCacheLocation(hubCacheLocation())}\n`);
          // Ctrl-C cancels; the partial file is kept and the next run resumes it.
          const r = await downloadJob({ id: given, include: o.include, token: o.token }, { signal, onProgress: progress, onLog: (l, m) => mode === 'auto' && l !== 'info' && process.stderr.write(`${l}: ${printable(m)}\n`) });
          progress.end();
          if (mode === 'json') process.stdout.write(JSON.stringify({ type: 'result', ...r }) + '\n');
          else if (mode === 'auto') process.stdout.write(`${printable(given)}: ${r.files.length} files at commit ${r.commit} (${formatBytes(r.bytesReceived)} received) in ${printable(r.snapshot)}\n`);
        } finally {
          progress.end();
          signal.dispose();
        }
      }),
    );
}
