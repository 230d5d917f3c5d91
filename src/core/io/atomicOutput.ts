/**
 * Atomic outputs: everything is written into a temporary sibling folder, flushed, and renamed onto
 * the final path only when complete. A crash, a cancel or an error leaves at most a folder named
 * `.NAME.partial-*`, never something that looks like a finished checkpoint.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ChatVecError } from '../errors';
import { ioError } from './outputFile';

const PARTIAL_MARK = '.partial-';

export class AtomicOutputDir {
  private done = false;
  private constructor(
    /** Where the finished output will be. */
    readonly finalPath: string,
    /** Where files are written meanwhile. */
    readonly tempPath: string,
    private readonly overwrite: boolean,
  ) {}

  /**
   * Checks the destination and creates the temporary sibling folder.
   * @param finalPath the output folder to create
   * @param overwrite replace an existing output (only at commit time, never before)
   * @param tag names the temporary folder (`.NAME.partial-<pid>-<tag>`, see {@link partialDirFor}),
   *   so that whoever stops the writer from outside (a terminated worker thread shares this
   *   process's pid, so the stale-folder sweep never removes its folder) can remove it; default:
   *   the time in base 36
   * @throws ChatVecError OutputExists when finalPath exists and overwrite is false; Io when the
   *   parent folder is missing or not writable
   */
  static begin(finalPath: string, overwrite: boolean, tag?: string): AtomicOutputDir {
    const abs = path.resolve(finalPath);
    if (fs.existsSync(abs) && !overwrite) {
      throw new ChatVecError('OutputExists', `${abs} already exists (pass --overwrite to replace it)`);
    }
    const parent = path.dirname(abs);
    if (!fs.existsSync(parent)) {
      try {
        fs.mkdirSync(parent, { recursive: true });
      } catch (e) {
        throw ioError(parent, 'cannot create the output\'s parent folder', e);
      }
    }
    removeStalePartials(parent, path.basename(abs));
    const temp = partialDirFor(abs, tag ?? Date.now().toString(36));
    try {
      fs.mkdirSync(temp);
    } catch (e) {
      throw ioError(parent, 'cannot create a folder in the output location', e);
    }
    return new AtomicOutputDir(abs, temp, overwrite);
  }

  /** A path inside the temporary folder. */
  file(name: string): string {
    return path.join(this.tempPath, name);
  }

  /** Flushes the folder entry and renames it into place (replacing an old output if allowed). */
  commit(): void {
    if (this.done) throw new ChatVecError('Internal', 'output committed twice');
    syncDir(this.tempPath);
    let trash: string | undefined;
    if (fs.existsSync(this.finalPath)) {
      if (!this.overwrite) throw new ChatVecError('OutputExists', `${this.finalPath} appeared while the job ran; not replacing it`);
      trash = `${this.tempPath}.old`;
      fs.renameSync(this.finalPath, trash);
    }
    try {
      fs.renameSync(this.tempPath, this.finalPath);
    } catch (e) {
      if (trash) fs.renameSync(trash, this.finalPath);
      throw ioError(this.finalPath, 'cannot move the finished output into place', e);
    }
    this.done = true;
    syncDir(path.dirname(this.finalPath));
    if (trash) fs.rmSync(trash, { recursive: true, force: true });
  }

  /** Removes the temporary folder; safe to call after commit or twice. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    fs.rmSync(this.tempPath, { recursive: true, force: true });
  }
}

/**
 * The temporary folder that {@link AtomicOutputDir.begin} creates for `finalPath` with `tag` in
 * this process: `<parent>/.NAME.partial-<pid>-<tag>`.
 */
export function partialDirFor(finalPath: string, tag: string): string {
  const abs = path.resolve(finalPath);
  return path.join(path.dirname(abs), `.${path.basename(abs)}${PARTIAL_MARK}${process.pid}-${tag}`);
}

/**
 * Removes what an AtomicOutputDir with `tag` left for `finalPath` when its writer was stopped from
 * outside (a terminated worker thread): the temporary folder, and the `.old` folder a commit in
 * progress may have moved an earlier output to. No error when neither exists.
 */
export function removePartialDir(finalPath: string, tag: string): void {
  const temp = partialDirFor(finalPath, tag);
  fs.rmSync(temp, { recursive: true, force: true });
  fs.rmSync(`${temp}.old`, { recursive: true, force: true });
}

/** Removes a folder tree; no error when it is missing. @throws Node's error when removal fails */
export function removeTree(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}

function syncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Some filesystems (and Windows) refuse fsync on a directory; the files themselves are flushed.
  }
}

/**
 * Removes temporary folders of earlier runs for the same output whose process is gone (a killed
 * task host or CLI cannot clean up after itself). Folders of live processes are left alone.
 */
function removeStalePartials(parent: string, name: string): void {
  const prefix = `.${name}${PARTIAL_MARK}`;
  let entries: string[];
  try {
    entries = fs.readdirSync(parent);
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.startsWith(prefix)) continue;
    const pid = Number(/^(\d+)-/.exec(e.slice(prefix.length))?.[1]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || isAlive(pid)) continue;
    fs.rmSync(path.join(parent, e), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True for names of our temporary folders (so discovery and listings can skip them). */
export function isPartialOutputName(name: string): boolean {
  return name.startsWith('.') && name.includes(PARTIAL_MARK);
}
