/**
 * A file written at precomputed positions (pwrite). The planner knows every byte's final offset
 * before any data exists, so several workers can each open the file and write their own ranges.
 */
import fs from 'node:fs';
import { ChatVecError } from '../errors';

export class OutputFile {
  private constructor(
    readonly path: string,
    private fd: number | null,
  ) {}

  /** Creates (or truncates) `path` and sets its length to `size` bytes. */
  static create(path: string, size: number): OutputFile {
    try {
      const fd = fs.openSync(path, 'w');
      fs.ftruncateSync(fd, size);
      return new OutputFile(path, fd);
    } catch (e) {
      throw ioError(path, 'cannot create', e);
    }
  }

  /** Opens an existing output file for positional writes (workers). */
  static openForWrite(path: string): OutputFile {
    try {
      return new OutputFile(path, fs.openSync(path, 'r+'));
    } catch (e) {
      throw ioError(path, 'cannot open for writing', e);
    }
  }

  /** Writes all of `bytes` at absolute byte `position`. */
  writeAtSync(bytes: Uint8Array, position: number): void {
    if (this.fd === null) throw new ChatVecError('Internal', `${this.path}: write after close`);
    let done = 0;
    try {
      while (done < bytes.length) {
        done += fs.writeSync(this.fd, bytes, done, bytes.length - done, position + done);
      }
    } catch (e) {
      throw ioError(this.path, 'cannot write', e);
    }
  }

  /** Flushes to stable storage (before the output is renamed into place) and closes. */
  syncAndClose(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      fs.fsyncSync(fd);
    } catch (e) {
      throw ioError(this.path, 'cannot flush', e);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Closes without flushing (for abandoned outputs). */
  close(): void {
    if (this.fd === null) return;
    fs.closeSync(this.fd);
    this.fd = null;
  }
}

export function ioError(path: string, what: string, e: unknown): ChatVecError {
  const code = (e as NodeJS.ErrnoException)?.code;
  const hint = code === 'ENOSPC' ? ' (disk full)' : code === 'EACCES' || code === 'EPERM' ? ' (permission denied)' : '';
  return new ChatVecError('Io', `${path}: ${what}${hint}: ${code ?? (e as Error)?.message ?? String(e)}`);
}

/** Writes a whole file and flushes it; OS errors are thrown as they are (callers name the file). */
export function writeAndFlushSync(path: string, data: string | Uint8Array): void {
  const fd = fs.openSync(path, 'w');
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes a whole small file (configs, indexes, model cards) and flushes it. */
export function writeSmallFileSync(path: string, data: string | Uint8Array): void {
  try {
    writeAndFlushSync(path, data);
  } catch (e) {
    throw ioError(path, 'cannot write', e);
  }
}

/** Copies a small file unchanged (tokenizer files) and flushes it. */
export function copySmallFileSync(from: string, to: string): void {
  try {
    fs.copyFileSync(from, to);
    const fd = fs.openSync(to, 'r+');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw ioError(to, `cannot copy from ${from}`, e);
  }
}
