/**
 * Open file handles kept for the life of a worker thread, so thousands of small chunk tasks do not
 * reopen the same shards. Read handles are read-only; write handles are only for job outputs.
 */
import { OutputFile } from './outputFile';
import { PositionalFile } from './positionalFile';

const readers = new Map<string, PositionalFile>();
const writers = new Map<string, OutputFile>();

export function readerFor(path: string): PositionalFile {
  let f = readers.get(path);
  if (!f) {
    f = PositionalFile.openReadOnly(path);
    readers.set(path, f);
  }
  return f;
}

export function writerFor(path: string): OutputFile {
  let f = writers.get(path);
  if (!f) {
    f = OutputFile.openForWrite(path);
    writers.set(path, f);
  }
  return f;
}

/** Closes every cached handle (end of a job: outputs may be renamed or deleted next). */
export function closeAllHandles(): void {
  for (const f of readers.values()) f.close();
  for (const f of writers.values()) f.close();
  readers.clear();
  writers.clear();
}
