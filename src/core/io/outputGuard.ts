/**
 * The output-path rules: where a job may write, and what `--overwrite` may replace. Every job
 * (extract, apply, merge, demo — from the CLI, the task host and the extension alike) goes through
 * {@link checkOutputTarget} before it computes anything and again when it creates its temporary
 * folder, so no frontend can bypass them.
 *
 * Why so strict: replacing an output means deleting a folder tree. A mistyped `--out .`, an unset
 * shell variable (`--out "$OUT"`), the home folder or an input model must never be deleted, so
 * `--overwrite` replaces only an empty folder or one that carries this tool's output marker.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChatVecError } from '../errors';

/** The marker file every finished output holds (written by AtomicOutputDir.commit). */
export const OUTPUT_MARKER = '.chatvec-output.json';

/** Longest file name most filesystems accept (bytes of one path component). */
const MAX_NAME_BYTES = 255;

export interface OutputTarget {
  /** The output folder as the user gave it (relative to the current folder). */
  readonly out: string;
  /** Replace an existing output (only an empty folder or a previous output of this tool). */
  readonly overwrite: boolean;
  /**
   * Everything the job reads: checkpoint folders or files, recipe files, tokenizer sources. The
   * output may not be any of them, lie inside one, or contain one.
   */
  readonly inputs: readonly string[];
  /**
   * The output is one file (a .gguf), not a folder: `overwrite` may then replace only an existing
   * regular file (never a folder, a link or an input); default: a folder.
   */
  readonly file?: boolean;
}

/**
 * Checks an output path against the rules and returns it resolved (symbolic links in its parent
 * folders resolved, `..` and trailing slashes gone). Touches nothing.
 *
 * Refused (InvalidArgument): an empty path; `/` or a drive root; the home folder; the current
 * folder or a folder above it; an input, a folder inside an input or a folder that contains an
 * input; a path that is itself a symbolic link; a folder name longer than 255 bytes.
 * When the path exists: without `overwrite` OutputExists; with it, anything but an empty folder or a
 * folder holding {@link OUTPUT_MARKER} is refused (OutputExists, saying why and what to do); for
 * a file output (`t.file`), anything but a regular file is refused.
 * @throws ChatVecError InvalidArgument or OutputExists as above
 */
export function checkOutputTarget(t: OutputTarget, cwd: string = process.cwd()): string {
  if (t.out.trim() === '') throw new ChatVecError('InvalidArgument', 'the output folder (--out) is empty; name a new folder');
  const abs = physicalPath(path.resolve(cwd, t.out));
  const name = path.basename(abs);
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw new ChatVecError('InvalidArgument', `${abs}: the output folder's name is ${Buffer.byteLength(name)} bytes long; file systems allow at most ${MAX_NAME_BYTES}`);
  }
  const refuse = (why: string) => new ChatVecError('InvalidArgument', `${abs}: refusing to write the output here: ${why}; choose a new folder for --out`);
  if (path.dirname(abs) === abs) throw refuse('it is the root of the file system');
  const home = physicalPath(os.homedir());
  if (samePath(abs, home)) throw refuse('it is your home folder');
  const here = physicalPath(cwd);
  if (isInside(here, abs)) throw refuse(samePath(here, abs) ? 'it is the current folder' : 'it contains the current folder');
  for (const input of t.inputs) {
    const inp = physicalPath(path.resolve(cwd, input));
    if (samePath(abs, inp)) throw refuse(`it is an input (${input})`);
    if (isInside(inp, abs)) throw refuse(`it contains an input (${inp})`);
    if (isInside(abs, inp)) throw refuse(`it is inside an input (${inp})`);
  }
  let st: fs.Stats;
  try {
    st = fs.lstatSync(abs);
  } catch {
    return abs;
  }
  if (!t.overwrite) throw new ChatVecError('OutputExists', `${abs} already exists (pass --overwrite to replace a previous output of chatvec)`);
  if (st.isSymbolicLink()) throw refuse('it is a symbolic link (give the folder it points to, or a new folder)');
  if (t.file) {
    if (!st.isFile()) throw new ChatVecError('OutputExists', `${abs} is not a regular file; --overwrite replaces only an earlier output file: move or delete it yourself, or choose another --out`);
    return abs;
  }
  if (!st.isDirectory()) throw new ChatVecError('OutputExists', `${abs} is a file, not an output folder; --overwrite replaces only folders written by chatvec: move or delete it yourself, or choose another --out`);
  if (!isReplaceable(abs)) {
    throw new ChatVecError(
      'OutputExists',
      `${abs} is not empty and was not written by chatvec (it has no ${OUTPUT_MARKER}); --overwrite replaces only empty folders and chatvec's own outputs: move or delete it yourself, or choose another --out`,
    );
  }
  return abs;
}

/** True when `dir` is empty or holds this tool's output marker (a regular file). */
export function isReplaceable(dir: string): boolean {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return false;
  }
  if (names.length === 0) return true;
  try {
    return fs.lstatSync(path.join(dir, OUTPUT_MARKER)).isFile();
  } catch {
    return false;
  }
}

/**
 * Writes the output marker into a (temporary) output folder: which tool and job wrote it, as JSON.
 * @throws Node's error when the file cannot be written (the caller reports it as an I/O error)
 */
export function writeOutputMarker(dir: string, tool: string): void {
  // No time stamp: the same job gives the same bytes, marker included.
  const text = JSON.stringify({ writtenBy: tool, note: 'an output of chatvec: `--overwrite` may replace this folder' }, null, 2) + '\n';
  fs.writeFileSync(path.join(dir, OUTPUT_MARKER), text, { flag: 'wx' });
}

/**
 * `p` with every symbolic link resolved, as the operating system will see it: the longest
 * existing prefix through realpath (which also gives the stored case on case-insensitive file
 * systems), the rest appended. A dangling link counts as missing from that point on.
 */
export function physicalPath(p: string): string {
  const rest: string[] = [];
  let cur = path.resolve(p);
  for (;;) {
    try {
      return path.join(fs.realpathSync.native(cur), ...rest.reverse());
    } catch {
      const parent = path.dirname(cur);
      if (parent === cur) return path.join(cur, ...rest.reverse());
      rest.push(path.basename(cur));
      cur = parent;
    }
  }
}

const caseInsensitive = process.platform === 'darwin' || process.platform === 'win32';

function norm(p: string): string {
  const s = p.length > 1 && p.endsWith(path.sep) ? p.slice(0, -1) : p;
  return caseInsensitive ? s.toLowerCase() : s;
}

function samePath(a: string, b: string): boolean {
  return norm(a) === norm(b);
}

/** True when `child` is `parent` or lies below it. */
function isInside(child: string, parent: string): boolean {
  const c = norm(child);
  const p = norm(parent);
  return c === p || c.startsWith(p.endsWith(path.sep) ? p : p + path.sep);
}
