/** The `chatVector.*` settings, read fresh each time (they may change while a flow is open). */
import * as vscode from 'vscode';
import { parseByteSize } from '../protocol/displayFormat';
import type { BackendChoice } from '../protocol/taskHost';
import { clampThreads, describeThreadLimit } from '../taskhost/client';

export type OutputDtype = 'auto' | 'F32' | 'BF16' | 'F16';
export type SkipEmbeddings = 'auto' | 'always' | 'never';

export interface Settings {
  readonly defaultRatio: number;
  readonly skipEmbeddings: SkipEmbeddings;
  /** Bytes; undefined for the engine's default. */
  readonly maxShardBytes: number | undefined;
  /** Worker threads; undefined for all cores. At most the machine's limit (core/jobs/threadLimit.ts). */
  readonly threads: number | undefined;
  /** A line for the log when `chatVector.threads` was above the machine's limit and was lowered to it. */
  readonly threadsNote: string | undefined;
  readonly computeBackend: BackendChoice;
  readonly outputDtype: OutputDtype;
  /** Folder for cached diff results; empty for the extension's workspace storage. */
  readonly cacheLocation: string;
}

export function readSettings(scope?: vscode.ConfigurationScope): Settings {
  const c = vscode.workspace.getConfiguration('chatVector', scope);
  const threadsSetting = c.get<number>('threads', 0);
  // A setting synced from a bigger machine is lowered to this one's limit, not refused.
  const threads = threadsSetting > 0 ? clampThreads(Math.floor(threadsSetting)) : undefined;
  const ratio = c.get<number>('defaultRatio', 1);
  return {
    defaultRatio: Number.isFinite(ratio) ? ratio : 1,
    skipEmbeddings: c.get<SkipEmbeddings>('skipEmbeddings', 'auto'),
    maxShardBytes: parseByteSize(c.get<string>('maxShardSize', '5GB')),
    threads: threads?.threads,
    threadsNote: threads?.clamped ? `chatVector.threads is ${threadsSetting}, above this machine's limit of ${describeThreadLimit()}; using ${threads.threads}` : undefined,
    computeBackend: c.get<BackendChoice>('computeBackend', 'auto'),
    outputDtype: c.get<OutputDtype>('outputDtype', 'auto'),
    cacheLocation: c.get<string>('cacheLocation', '').trim(),
  };
}
