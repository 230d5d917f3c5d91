/** The `chatVector.*` settings, read fresh each time (they may change while a flow is open). */
import * as vscode from 'vscode';
import type { BackendChoice } from '../protocol/taskHost';

export type OutputDtype = 'auto' | 'F32' | 'BF16' | 'F16';
export type SkipEmbeddings = 'auto' | 'always' | 'never';

export interface Settings {
  readonly defaultRatio: number;
  readonly skipEmbeddings: SkipEmbeddings;
  /** Bytes; undefined for the engine's default. */
  readonly maxShardBytes: number | undefined;
  /** Worker threads; undefined for all cores. */
  readonly threads: number | undefined;
  readonly computeBackend: BackendChoice;
  readonly outputDtype: OutputDtype;
  /** Folder for cached diff results; empty for the extension's workspace storage. */
  readonly cacheLocation: string;
}

const UNITS: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };

/** "5GB", "500 MiB", "1e9" → bytes; undefined when empty or unreadable. */
export function parseByteSize(s: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([kmgt]i?b|b)?\s*$/i.exec(s);
  if (!m) return undefined;
  const n = Number(m[1]) * (UNITS[(m[2] ?? 'b').toLowerCase()] ?? 1);
  return Number.isFinite(n) && n > 0 ? Math.round(n) : undefined;
}

export function readSettings(scope?: vscode.ConfigurationScope): Settings {
  const c = vscode.workspace.getConfiguration('chatVector', scope);
  const threads = c.get<number>('threads', 0);
  const ratio = c.get<number>('defaultRatio', 1);
  return {
    defaultRatio: Number.isFinite(ratio) ? ratio : 1,
    skipEmbeddings: c.get<SkipEmbeddings>('skipEmbeddings', 'auto'),
    maxShardBytes: parseByteSize(c.get<string>('maxShardSize', '5GB')),
    threads: threads > 0 ? Math.floor(threads) : undefined,
    computeBackend: c.get<BackendChoice>('computeBackend', 'auto'),
    outputDtype: c.get<OutputDtype>('outputDtype', 'auto'),
    cacheLocation: c.get<string>('cacheLocation', '').trim(),
  };
}
