/**
 * Atomic outputs: everything is written into a temporary sibling folder, flushed, and renamed onto
 * the final path only when complete. A crash, a cancel or an error leaves at most a folder named
 * `.NAME.partial-*`, never something that looks like a finished checkpoint. Where the output may go
 * and what it may replace are the rules of outputGuard.ts, checked again here.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChatVecError } from '../errors';
import { stableHash } from './hash';
import { ioError } from './outputFile';
import { checkOutputTarget, isReplaceable, writeOutputMarker } from './outputGuard';

const PARTIAL_MARK = '.partial-';
/** Inside each temporary folder: who owns it (see {@link ownerIdentity}). */
const OWNER_FILE = '.chatvec-owner.json';
/** Temporary folders without an owner file (older versions) are swept only after this long. */
const UNOWNED_GRACE_MS = 7 * 24 * 3600 * 1000;
/** Output names longer than this (bytes) are shortened in temporary folder names. */
const MAX_TEMP_STEM_BYTES = 96;

export interface AtomicOutputOptions {
  /** Replace an existing output (only an empty folder or an earlier output of this tool). */
  readonly overwrite: boolean;
  /** What the job reads: the output may not be, contain, or lie inside any of these. */
  readonly inputs?: readonly string[];
  /**
   * Names the temporary folder (`.NAME.partial-<pid>-<tag>`, see {@link partialDirFor}), so that
   * whoever stops the writer from outside (a terminated worker thread shares this process's pid,
   * so the stale-folder sweep never removes its folder) can remove it; default: the time in base 36.
   */
  readonly tag?: string;
  /** Recorded in the output marker, e.g. "chatvec 0.2.0 apply". */
  readonly writtenBy?: string;
}

export class AtomicOutputDir {
  private done = false;
  private constructor(
    /** Where the finished output will be. */
    readonly finalPath: string,
    /** Where files are written meanwhile. */
    readonly tempPath: string,
    private readonly opts: AtomicOutputOptions,
  ) {}

  /**
   * Checks the destination (outputGuard.ts) and creates the temporary sibling folder.
   * @param finalPath the output folder to create
   * @throws ChatVecError InvalidArgument or OutputExists (the output-path rules); Io when the
   *   parent folder cannot be created or is not writable
   */
  static begin(finalPath: string, opts: AtomicOutputOptions): AtomicOutputDir {
    const abs = checkOutputTarget({ out: finalPath, overwrite: opts.overwrite, inputs: opts.inputs ?? [] });
    const parent = path.dirname(abs);
    makeParents(parent);
    removeStalePartials(parent, path.basename(abs));
    const temp = partialDirFor(abs, opts.tag ?? Date.now().toString(36));
    try {
      fs.mkdirSync(temp);
      fs.writeFileSync(path.join(temp, OWNER_FILE), JSON.stringify(ownerIdentity()) + '\n');
    } catch (e) {
      try {
        fs.rmSync(temp, { recursive: true, force: true });
      } catch {
        // Nothing was created (e.g. the parent is a file): nothing to remove.
      }
      throw ioError(parent, 'cannot create a folder in the output location', e);
    }
    return new AtomicOutputDir(abs, temp, opts);
  }

  /** A path inside the temporary folder. */
  file(name: string): string {
    return path.join(this.tempPath, name);
  }

  /**
   * Writes the output marker, flushes the folder entry and renames it into place, replacing an
   * earlier output only when allowed and only when it is still empty or an output of this tool.
   * @throws ChatVecError OutputExists when the destination appeared or changed into something that
   *   may not be replaced meanwhile; Io
   */
  commit(): void {
    if (this.done) throw new ChatVecError('Internal', 'output committed twice');
    fs.rmSync(path.join(this.tempPath, OWNER_FILE), { force: true });
    writeOutputMarker(this.tempPath, this.opts.writtenBy ?? 'chatvec');
    syncDir(this.tempPath);
    let trash: string | undefined;
    if (fs.existsSync(this.finalPath) || isSymlink(this.finalPath)) {
      if (!this.opts.overwrite) throw new ChatVecError('OutputExists', `${this.finalPath} appeared while the job ran; not replacing it`);
      if (isSymlink(this.finalPath) || !isReplaceable(this.finalPath)) {
        throw new ChatVecError('OutputExists', `${this.finalPath} changed while the job ran and is no longer an output of chatvec; not replacing it`);
      }
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
 * this process: `<parent>/.NAME.partial-<pid>-<tag>`, where a NAME longer than 96 bytes is cut
 * and given a hash (so the temporary name stays within the file system's 255 bytes).
 */
export function partialDirFor(finalPath: string, tag: string): string {
  const abs = path.resolve(finalPath);
  return path.join(path.dirname(abs), `${partialPrefix(path.basename(abs))}${process.pid}-${tag}`);
}

function partialPrefix(name: string): string {
  const bytes = Buffer.from(name);
  if (bytes.length <= MAX_TEMP_STEM_BYTES) return `.${name}${PARTIAL_MARK}`;
  const stem = bytes.subarray(0, 64).toString('utf8').replace(/\uFFFD+$/, '');
  return `.${stem}~${stableHash(name).slice(0, 12)}${PARTIAL_MARK}`;
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

/**
 * Creates `dir` and its missing ancestors one level at a time. (Node's recursive mkdir loops
 * forever under /proc, and reports a read-only file system as ENOENT; one level at a time names
 * the folder that could not be made and the real reason.)
 * @throws ChatVecError Io naming the first folder that could not be created
 */
function makeParents(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; !fs.existsSync(d); d = path.dirname(d)) {
    missing.push(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw ioError(d, 'cannot create the output\'s parent folder', e);
    }
  }
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
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

/** Who owns a temporary folder: enough to tell whether its process can be checked from here. */
export interface OwnerIdentity {
  readonly pid: number;
  readonly host: string;
  /** Linux: the pid namespace (`pid:[…]`); null elsewhere. */
  readonly pidNamespace: string | null;
  /** Linux: the kernel's boot id; null elsewhere. */
  readonly bootId: string | null;
}

/** This process's identity (see {@link OwnerIdentity}). */
export function ownerIdentity(): OwnerIdentity {
  return { pid: process.pid, host: os.hostname(), pidNamespace: tryRead(() => fs.readlinkSync('/proc/self/ns/pid')), bootId: tryRead(() => fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()) };
}

function tryRead(f: () => string): string | null {
  try {
    return f();
  } catch {
    return null;
  }
}

/**
 * Removes temporary folders of earlier runs for the same output whose process is gone (a killed
 * task host or CLI cannot clean up after itself). A pid means something only inside its own pid
 * namespace on its own machine (containers sharing a volume see each other's folders), so a folder
 * is removed only when its owner file names this host, boot and pid namespace and that pid is not
 * running. Folders without an owner file (older versions) go after seven days untouched.
 */
function removeStalePartials(parent: string, name: string): void {
  const prefix = partialPrefix(name);
  let entries: string[];
  try {
    entries = fs.readdirSync(parent);
  } catch {
    return;
  }
  const me = ownerIdentity();
  for (const e of entries) {
    if (!e.startsWith(prefix)) continue;
    const dir = path.join(parent, e);
    const pid = Number(/^(\d+)-/.exec(e.slice(prefix.length))?.[1]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    if (isStale(dir, pid, me)) fs.rmSync(dir, { recursive: true, force: true });
  }
}

function isStale(dir: string, pid: number, me: OwnerIdentity): boolean {
  let owner: Partial<OwnerIdentity> | null = null;
  try {
    owner = JSON.parse(fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8')) as Partial<OwnerIdentity>;
  } catch {
    owner = null;
  }
  if (owner === null) {
    try {
      return Date.now() - fs.statSync(dir).mtimeMs > UNOWNED_GRACE_MS;
    } catch {
      return false;
    }
  }
  const local = owner.pid === pid && owner.host === me.host && owner.bootId === me.bootId && owner.pidNamespace === me.pidNamespace;
  return local && !isAlive(pid);
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
