/**
 * Downloads into the hub cache as the CLI shows them (`chatvec download`, `chatvec merge
 * --download`): the cache folder first, a progress line per model (bytes, speed, ETA), Ctrl-C as
 * cancellation (the partial file is kept and resumes), and one result line per model.
 */
import { describeCacheLocation, hubCacheLocation } from '../core/hub/cacheLayout';
import type { DownloadResult } from '../core/download/download';
import { formatBytes, printable } from '../protocol/displayFormat';
import { type ProgressMode, withJobContext } from './progress';
import { downloadJob } from './jobs';

export interface FetchOptions {
  readonly include?: readonly string[];
  /** --token; else HF_TOKEN or the token file (core/download/download.ts findToken). Never printed. */
  readonly token?: string;
  /**
   * `chatvec download`: each model's line is the command's result (stdout; JSON `result`). Else it
   * is a step before the real work (stderr; JSON `download`), so stdout stays the merge's.
   */
  readonly asResult?: boolean;
}

/**
 * Downloads each id in turn (stopping at the first failure).
 * @throws ChatVecError as core/download/download.ts downloadModel; Cancelled on Ctrl-C
 */
export async function fetchModels(ids: readonly string[], o: FetchOptions, mode: ProgressMode): Promise<DownloadResult[]> {
  const out: DownloadResult[] = [];
  if (mode === 'auto' && ids.length) process.stderr.write(`cache: ${describeCacheLocation(hubCacheLocation())}\n`);
  for (const id of ids) {
    const r = await withJobContext(
      mode,
      () => (l, m) => mode === 'auto' && l !== 'info' && process.stderr.write(`${l}: ${printable(m)}\n`),
      (ctx) => downloadJob({ id, include: o.include, token: o.token }, ctx),
    );
    if (mode === 'json') process.stdout.write(JSON.stringify({ type: o.asResult ? 'result' : 'download', ...(o.asResult ? {} : { id }), ...r }) + '\n');
    else if (mode === 'auto') (o.asResult ? process.stdout : process.stderr).write(`${printable(id)}: ${r.files.length} files at commit ${r.commit} (${formatBytes(r.bytesReceived)} received) in ${printable(r.snapshot)}\n`);
    out.push(r);
  }
  return out;
}
