/** Small filesystem helpers for core modules (which import no Node built-in outside core/io). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// Side files (configs, indexes, tokenizer files) are read only through sideFile.ts's capped,
// regular-file-only reader.

export interface FileIdentity {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
}

export type EntryKind = 'file' | 'dir' | 'other' | 'missing';

export function entryKind(p: string): EntryKind {
  try {
    const st = fs.statSync(p);
    return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
  } catch {
    return 'missing';
  }
}

export function fileIdentity(p: string): FileIdentity {
  const st = fs.statSync(p);
  return { path: p, size: st.size, mtimeMs: st.mtimeMs };
}

/** Names in a folder, sorted. */
export function listDir(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

export function realPath(p: string): string {
  return fs.realpathSync(p);
}

/** The user's cache folder for this tool (XDG_CACHE_HOME, ~/Library/Caches, %LOCALAPPDATA%). */
export function userCacheDir(): string {
  if (process.env.XDG_CACHE_HOME) return path.join(process.env.XDG_CACHE_HOME, 'chatvec');
  if (process.platform === 'darwin') return path.join(os.homedir(), 'Library', 'Caches', 'chatvec');
  if (process.platform === 'win32' && process.env.LOCALAPPDATA) return path.join(process.env.LOCALAPPDATA, 'chatvec', 'cache');
  return path.join(os.homedir(), '.cache', 'chatvec');
}

export function availableParallelism(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}
