/**
 * Small files replaced atomically (caches, settings): written to a temporary sibling, flushed, then
 * renamed over the target, so a reader sees the old file or the new one, never half of one — even
 * when two processes write the same entry at once or the writer is killed mid-way.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ioError, writeAndFlushSync } from './outputFile';

const TEMP_MARK = '.tmp-';

/**
 * Writes `data` to `file` atomically, creating missing parent folders.
 * @throws ChatVecError Io when the folder cannot be created or the file cannot be written
 */
export function writeFileAtomicSync(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(file);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw ioError(dir, 'cannot create folder', e);
  }
  const temp = path.join(dir, `.${path.basename(file)}${TEMP_MARK}${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  try {
    writeAndFlushSync(temp, data);
    fs.renameSync(temp, file);
  } catch (e) {
    fs.rmSync(temp, { force: true });
    throw ioError(file, 'cannot write', e);
  }
}

/** Reads a whole text file; null when it does not exist or cannot be read (callers recompute). */
export function readTextOrNull(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}
