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

/** Plain words for the errno codes users meet; the code itself follows in parentheses. */
const ERRNO_WORDS: Readonly<Record<string, string>> = {
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'disk full, no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENAMETOOLONG: 'the name is too long for the file system',
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'is a folder, not a file',
  EEXIST: 'already exists',
  ELOOP: 'too many levels of symbolic links',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EBUSY: 'resource busy or locked',
  EXDEV: 'cannot move across file systems',
  EIO: 'input/output error (failing disk or network file system?)',
  ENXIO: 'no such device (a socket or an unconnected device file?)',
};

/**
 * A one-line Io error naming `path`, what was being done, and the OS's reason in words with its
 * errno code (e.g. "…: cannot write: read-only file system (EROFS)").
 */
export function ioError(path: string, what: string, e: unknown): ChatVecError {
  const code = (e as NodeJS.ErrnoException)?.code;
  const words = code ? ERRNO_WORDS[code] : undefined;
  const reason = words ? `${words} (${code})` : code ?? firstLine((e as Error)?.message ?? String(e));
  return new ChatVecError('Io', `${path}: ${what}: ${reason}`);
}

function firstLine(s: string): string {
  return s.split('\n', 1)[0]!;
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

/** Removes a file a job wrote for itself (a scratch file inside its temporary output folder). */
export function removeFileSync(path: string): void {
  try {
    fs.rmSync(path, { force: true });
  } catch (e) {
    throw ioError(path, 'cannot remove', e);
  }
}
