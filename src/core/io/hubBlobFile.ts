/**
 * The file side of downloading into the Hugging Face hub cache (core/download/download.ts does the
 * HTTP): a blob grows in `blobs/<etag>.incomplete`, which survives an interrupted run so that the
 * next one resumes from its length; it is hashed as it grows and renamed to `blobs/<etag>` only when
 * complete and verified, so no half-written blob ever has its final name. Snapshot entries are
 * relative links into blobs/ and refs are replaced atomically, as huggingface_hub writes them.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ChatVecError } from '../errors';
import { writeFileAtomicSync } from './atomicFile';
import { ioError } from './outputFile';

/** A partial blob being written: appends bytes and keeps their hash. */
export interface PartialBlob {
  /** Bytes in the file so far (where a resumed download starts). */
  readonly size: number;
  append(chunk: Uint8Array): void;
  /** Empties the file (the server ignored the range and sends the whole file again). */
  restart(): void;
  /**
   * Checks length and hash, then renames the file to `finalPath`.
   * @throws ChatVecError BadCheckpoint (the partial file deleted) when the size or hash is wrong
   */
  complete(expectedSize: number, expected: { sha256?: string; gitSha1?: string }, finalPath: string, what: string): void;
  close(): void;
}

function hashers(): { sha256: crypto.Hash; sha1: crypto.Hash } {
  return { sha256: crypto.createHash('sha256'), sha1: crypto.createHash('sha1') };
}

/**
 * Opens (or creates) `partPath` for appending; the bytes already there are hashed first.
 * git's blob id is sha1("blob <size>\0" + bytes): its prefix needs the final size, known up front.
 * @throws ChatVecError Io
 */
export function openPartialBlob(partPath: string, finalSize: number): PartialBlob {
  let fd: number;
  try {
    fs.mkdirSync(path.dirname(partPath), { recursive: true });
    fd = fs.openSync(partPath, 'a+');
  } catch (e) {
    throw ioError(partPath, 'cannot open', e);
  }
  let h = hashers();
  h.sha1.update(`blob ${finalSize}\0`);
  let size = 0;
  const buf = Buffer.allocUnsafe(1 << 20);
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, size);
    if (n === 0) break;
    h.sha256.update(buf.subarray(0, n));
    h.sha1.update(buf.subarray(0, n));
    size += n;
  }
  return {
    get size() {
      return size;
    },
    append(chunk) {
      try {
        fs.writeSync(fd, chunk);
      } catch (e) {
        throw ioError(partPath, 'cannot write', e);
      }
      h.sha256.update(chunk);
      h.sha1.update(chunk);
      size += chunk.length;
    },
    restart() {
      fs.ftruncateSync(fd, 0);
      h = hashers();
      h.sha1.update(`blob ${finalSize}\0`);
      size = 0;
    },
    complete(expectedSize, expected, finalPath, what) {
      const bad = (why: string) => {
        fs.closeSync(fd);
        fd = -1;
        fs.rmSync(partPath, { force: true });
        return new ChatVecError('BadCheckpoint', `${what}: ${why}; the partial download was deleted, run the download again`);
      };
      if (size !== expectedSize) throw bad(`received ${size} bytes, expected ${expectedSize}`);
      if (expected.sha256 !== undefined) {
        const got = h.sha256.digest('hex');
        if (got !== expected.sha256) throw bad(`corrupted download: sha256 ${got} does not match ${expected.sha256}`);
      } else if (expected.gitSha1 !== undefined) {
        const got = h.sha1.digest('hex');
        if (got !== expected.gitSha1) throw bad(`corrupted download: git blob id ${got} does not match ${expected.gitSha1}`);
      }
      try {
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        fd = -1;
        fs.renameSync(partPath, finalPath);
      } catch (e) {
        throw ioError(finalPath, 'cannot place the downloaded file', e);
      }
    },
    close() {
      if (fd >= 0) fs.closeSync(fd);
      fd = -1;
    },
  };
}

/** Whether a file exists at `p` (following links). */
export function fileExists(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The size of file `p`, 0 when it does not exist (a partial blob not started yet). */
export function fileSizeOrZero(p: string): number {
  try {
    return fs.statSync(p).size;
  } catch {
    return 0;
  }
}

/** Links `pointer` (a snapshot entry) to `blob` by a relative path, replacing what was there. @throws ChatVecError Io */
export function linkSnapshotFile(blob: string, pointer: string): void {
  try {
    fs.mkdirSync(path.dirname(pointer), { recursive: true });
    fs.rmSync(pointer, { force: true });
    fs.symlinkSync(path.relative(path.dirname(pointer), blob), pointer);
  } catch (e) {
    throw ioError(pointer, 'cannot link into the cache', e);
  }
}

/** Writes `refs/<revision>` = commit (no newline, as huggingface_hub writes it), atomically. */
export function writeRefFile(refPath: string, commit: string): void {
  writeFileAtomicSync(refPath, commit);
}

/**
 * Takes the lock file `lockPath` (created exclusively, holding our pid) so two downloads never
 * append to the same partial blob; a lock whose process is gone is taken over.
 * @returns a release function
 * @throws ChatVecError Io when another live process holds it
 */
export function takeLock(lockPath: string): () => void {
  fs.mkdirSync(path.dirname(lockPath), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(lockPath, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(lockPath, 'cannot create lock', e);
      const pid = Number(fs.readFileSync(lockPath, 'utf8'));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new ChatVecError('Io', `${lockPath}: another download (process ${pid}) is writing this file; wait for it to finish`);
      }
      fs.rmSync(lockPath, { force: true });
    }
  }
  throw new ChatVecError('Io', `${lockPath}: cannot take the download lock`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
