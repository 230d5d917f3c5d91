/**
 * Files read by byte range into caller-provided buffers (pread), never whole and never mapped into
 * the JS heap. Sync methods serve worker threads, whose only job is to read, compute and write;
 * async methods serve the main thread.
 */
import fs from 'node:fs';
import { ChatVecError } from '../errors';

export class PositionalFile {
  private closed = false;
  private constructor(
    readonly path: string,
    readonly fd: number,
    readonly size: number,
    readonly mtimeMs: number,
  ) {}

  /**
   * Opens a file read-only (inputs are never modified).
   * @throws ChatVecError Io when the file cannot be opened
   */
  static openReadOnly(path: string): PositionalFile {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (e) {
      throw new ChatVecError('Io', `${path}: cannot open for reading (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const st = fs.fstatSync(fd);
    if (!st.isFile()) {
      fs.closeSync(fd);
      throw new ChatVecError('BadCheckpoint', `${path}: not a regular file`);
    }
    return new PositionalFile(path, fd, st.size, st.mtimeMs);
  }

  /**
   * Fills `into` completely with the bytes starting at `position`.
   * @param into destination; its whole length is read
   * @param position absolute byte offset in the file
   * @throws ChatVecError Io on a short read (the file shrank) or an OS error
   */
  readIntoSync(into: Uint8Array, position: number): void {
    let done = 0;
    while (done < into.length) {
      const n = fs.readSync(this.fd, into, done, into.length - done, position + done);
      if (n === 0) {
        throw new ChatVecError('Io', `${this.path}: unexpected end of file at byte ${position + done} (was it changed while being read?)`);
      }
      done += n;
    }
  }

  /** Async twin of readIntoSync for the main thread. */
  async readInto(into: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < into.length) {
      const n = await new Promise<number>((res, rej) =>
        fs.read(this.fd, into, done, into.length - done, position + done, (err, bytes) => (err ? rej(err) : res(bytes))),
      );
      if (n === 0) {
        throw new ChatVecError('Io', `${this.path}: unexpected end of file at byte ${position + done} (was it changed while being read?)`);
      }
      done += n;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}
