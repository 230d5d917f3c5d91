/**
 * Snapshots of input files (size, modification time, inode), taken when a job starts and compared
 * when it ends: a file rewritten in place meanwhile would otherwise give a silently corrupt output.
 */
import fs from 'node:fs';

export interface FileSnapshot {
  readonly path: string;
  /** Bytes. */
  readonly size: number;
  readonly mtimeMs: number;
  /** Inode number (0 where the file system has none): a file replaced by another changes it. */
  readonly ino: number;
}

/**
 * Stats every path (following links: the data that will be read).
 * @throws Node's error when a file is gone (callers opened the files just before)
 */
export function snapshotFiles(paths: readonly string[]): FileSnapshot[] {
  return paths.map((p) => {
    const st = fs.statSync(p);
    return { path: p, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
  });
}

/** The files whose size, modification time or inode differ from the snapshot (or that are gone), each with what changed. */
export function changedFiles(snapshot: readonly FileSnapshot[]): { path: string; what: string }[] {
  const changed: { path: string; what: string }[] = [];
  for (const s of snapshot) {
    let st: fs.Stats;
    try {
      st = fs.statSync(s.path);
    } catch {
      changed.push({ path: s.path, what: 'it was removed' });
      continue;
    }
    if (st.ino !== s.ino) changed.push({ path: s.path, what: 'it was replaced by another file' });
    else if (st.size !== s.size) changed.push({ path: s.path, what: `its size changed from ${s.size} to ${st.size} bytes` });
    else if (st.mtimeMs !== s.mtimeMs) changed.push({ path: s.path, what: 'it was modified' });
  }
  return changed;
}
