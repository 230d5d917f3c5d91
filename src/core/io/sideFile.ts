/**
 * Side files: the small files around the weights (config.json, the safetensors index, tokenizer
 * files, chat templates, generation_config.json, chatvector.json), recipes and cache entries. Any
 * of them may come from an untrusted clone, so every read here opens the file without blocking,
 * checks the opened descriptor is a regular file, and reads at most a cap per kind: a link to
 * /dev/zero, a FIFO or a /proc-style file (which reports size 0) fails at once with a one-line
 * error instead of filling memory or hanging the CLI or the task host's event loop.
 */
import fs from 'node:fs';
import { ChatVecError, type ErrorCode } from '../errors';
import { ioError } from './outputFile';
import { basename, dirname, join, sep } from './paths';

const MiB = 1024 * 1024;

/**
 * The most bytes read of each kind of side file. Real files are far smaller: the largest
 * tokenizer.json in the wild is ~35 MB (Gemma 3), tokenizer.model ~5 MB, chat templates tens of
 * KB, recipes a few KB; anything past the cap is not what its name says.
 */
export const SIDE_FILE_CAPS = {
  /** config.json, the index, tokenizer*.json, generation_config.json, chatvector.json, … */
  json: 64 * MiB,
  /** tokenizer.model, vocab.txt, merges.txt (copied into outputs unchanged). */
  tokenizer: 64 * MiB,
  /** chat_template.jinja. */
  template: 4 * MiB,
  /** Merge recipes (YAML). */
  recipe: 16 * MiB,
  /** Marker files this tool writes itself (a few bytes). */
  marker: 64 * 1024,
  /** Cached reports (the diff cache). */
  cache: 64 * MiB,
  /** Texts and token-id lists given on the command line (`chatvec eval --text/--ids`). */
  input: 64 * MiB,
} as const;

export type SideFileKind = keyof typeof SIDE_FILE_CAPS;

const KIND_WORDS: Readonly<Record<SideFileKind, string>> = {
  json: 'JSON side files',
  tokenizer: 'tokenizer files',
  template: 'chat templates',
  recipe: 'recipes',
  marker: 'marker files',
  cache: 'cache files',
  input: 'input files',
};

/** A recipe or input given on the command line is an argument; every other side file belongs to a checkpoint. */
function errorCode(kind: SideFileKind): ErrorCode {
  return kind === 'recipe' || kind === 'input' ? 'InvalidArgument' : 'BadCheckpoint';
}

function capWords(kind: SideFileKind): string {
  const cap = SIDE_FILE_CAPS[kind];
  return `the ${cap >= MiB ? `${cap / MiB} MiB` : `${cap / 1024} KiB`} limit for ${KIND_WORDS[kind]}`;
}

function whatItIs(st: fs.Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a named pipe (FIFO)';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'a special file';
}

// A FIFO opened for reading without O_NONBLOCK waits for a writer forever; on a regular file the
// flag changes nothing. Windows has no such flag (and no FIFOs in the file system).
const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0);
const CHUNK = 64 * 1024;

/**
 * Reads a whole side file of `kind`, at most its cap in {@link SIDE_FILE_CAPS}.
 * The size is taken from what is actually read, never from stat alone (/proc files report 0).
 * @throws ChatVecError BadCheckpoint (InvalidArgument for recipes) naming the file when it is not a
 *   regular file (a folder, FIFO, device, socket) or larger than the cap (the message names the
 *   cap); Io when it cannot be opened or read
 */
export function readSideFile(p: string, kind: SideFileKind): Buffer {
  const cap = SIDE_FILE_CAPS[kind];
  let fd: number;
  try {
    fd = fs.openSync(p, OPEN_FLAGS);
  } catch (e) {
    throw ioError(p, 'cannot read', e);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new ChatVecError(errorCode(kind), `${p}: is ${whatItIs(st)}, not a regular file`);
    if (st.size > cap) throw new ChatVecError(errorCode(kind), `${p}: ${st.size} bytes is over ${capWords(kind)}`);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      // The first read asks for one byte more than stat's size, so an honest file ends in one read;
      // no read goes past cap + 1 bytes in all.
      const want = Math.min(total === 0 ? st.size + 1 : CHUNK, cap + 1 - total);
      const buf = Buffer.allocUnsafe(want);
      let n: number;
      try {
        n = fs.readSync(fd, buf, 0, want, null);
      } catch (e) {
        throw ioError(p, 'cannot read', e);
      }
      if (n === 0) break;
      chunks.push(n === want ? buf : buf.subarray(0, n));
      total += n;
      if (total > cap) throw new ChatVecError(errorCode(kind), `${p}: over ${capWords(kind)}`);
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads a side file as UTF-8 text (configs, indexes, tokenizer files, templates, recipes).
 * @throws as {@link readSideFile}
 */
export function readSmallText(p: string, kind: SideFileKind = 'json'): string {
  return readSideFile(p, kind).toString('utf8');
}

/** As {@link readSmallText}, but null when the file is missing or cannot be read for any reason (caches recompute). */
export function readSmallTextOrNull(p: string, kind: SideFileKind): string | null {
  try {
    return readSmallText(p, kind);
  } catch {
    return null;
  }
}

/**
 * Reads and parses a JSON side file whose top level must be an object (at most 64 MiB).
 * @throws ChatVecError BadCheckpoint naming the file when it is not a regular file, too large, not
 *   valid JSON or not an object; Io when unreadable
 */
export function readJsonObject(p: string): Record<string, unknown> {
  return parseJsonObject(p, readSmallText(p, 'json'));
}

/**
 * Parses the text of JSON side file `p`, whose top level must be an object.
 * @throws ChatVecError BadCheckpoint naming the file when it is not valid JSON or not an object
 */
export function parseJsonObject(p: string, text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ChatVecError('BadCheckpoint', `${p}: not valid JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new ChatVecError('BadCheckpoint', `${p}: expected a JSON object`);
  }
  return v as Record<string, unknown>;
}

/**
 * Whether `real` (a resolved path) belongs to the checkpoint folder `realFolder` (resolved): it lies
 * inside it, or — the Hugging Face hub cache, whose snapshot files are links into the repository's
 * own blob store (`models--org--name/snapshots/REV/x -> ../../blobs/HASH`) — in that same
 * repository's `blobs/`. Anything else a link leads to (a private key, another model) is outside.
 */
export function belongsToCheckpoint(realFolder: string, real: string): boolean {
  if (real.startsWith(realFolder + sep)) return true;
  const snapshots = dirname(realFolder);
  return basename(snapshots) === 'snapshots' && real.startsWith(join(dirname(snapshots), 'blobs') + sep);
}

export type SideFileLocation =
  | { readonly status: 'missing' }
  /** `real`: where the file's links lead (the path to open). */
  | { readonly status: 'inside'; readonly real: string }
  | { readonly status: 'outside' };

/**
 * Where the side file `name` of checkpoint folder `folder` really is, following links (the same
 * confinement rule as shards: {@link belongsToCheckpoint}). A dangling link counts as missing.
 * @throws ChatVecError Io when the path cannot be resolved for another reason (a link loop, no permission)
 */
export function locateSideFile(folder: string, name: string): SideFileLocation {
  const p = join(folder, name);
  let real: string;
  let realFolder: string;
  try {
    realFolder = fs.realpathSync(folder);
    real = fs.realpathSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { status: 'missing' };
    throw ioError(p, 'cannot resolve', e);
  }
  return belongsToCheckpoint(realFolder, real) ? { status: 'inside', real } : { status: 'outside' };
}
