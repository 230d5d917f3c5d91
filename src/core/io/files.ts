/** Small filesystem helpers for core modules (which import no Node built-in outside core/io). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChatVecError } from '../errors';

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

/**
 * Reads a small text file (configs, indexes, tokenizer files) whole.
 * @throws ChatVecError Io when unreadable, BadCheckpoint when larger than `maxBytes`
 */
export function readSmallText(p: string, maxBytes = 256 * 1024 * 1024): string {
  let size: number;
  try {
    size = fs.statSync(p).size;
  } catch (e) {
    throw new ChatVecError('Io', `${p}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (size > maxBytes) throw new ChatVecError('BadCheckpoint', `${p}: ${size} bytes is too large for a metadata file`);
  return fs.readFileSync(p, 'utf8');
}

/**
 * Reads and parses a JSON file whose top level must be an object.
 * @throws ChatVecError BadCheckpoint naming the file when it is not valid JSON or not an object
 */
export function readJsonObject(p: string): Record<string, unknown> {
  const text = readSmallText(p);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ChatVecError('BadCheckpoint', `${p}: not valid JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new ChatVecError('BadCheckpoint', `${p}: expected a JSON object`);
  }
  return v as Record<string, unknown>;
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
