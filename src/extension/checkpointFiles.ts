/**
 * Which files make checkpoints, decided from file names alone (no `vscode` here, so the unit tests
 * run it): the workspace's discovery and the `chatVector.modelFolders` folders share it.
 */
import * as path from 'node:path';

export interface FoundCheckpoint {
  /** The folder, or the loose .safetensors file. */
  readonly path: string;
  readonly kind: 'folder' | 'file';
  /** A chat-vector folder written by extract (chatvector.json), not a model. */
  readonly vector: boolean;
  /** A PEFT LoRA adapter folder (adapter_config.json): usable as a chat vector. */
  readonly adapter: boolean;
  /** The files that made it one (their sizes and times decide when it is inspected again). */
  readonly files: readonly string[];
}

/**
 * Groups the files of a search for `config.json`, `chatvector.json`, `adapter_config.json`,
 * `*.safetensors` and `*.safetensors.index.json` into checkpoints: a folder with an index, or with
 * config.json (or chatvector.json, or a PEFT adapter's adapter_config.json) and weights, is one checkpoint; other .safetensors files are each one. Files
 * under a dot-folder below `root` are skipped (atomic outputs are written into `.name.partial-…`
 * siblings and must not show up half-written). Sorted by path.
 */
export function groupCheckpointFiles(files: readonly string[], root?: string): FoundCheckpoint[] {
  const byDir = new Map<string, string[]>();
  for (const f of files) {
    if (root !== undefined && isUnderDotFolder(path.relative(root, f))) continue;
    const dir = path.dirname(f);
    byDir.set(dir, [...(byDir.get(dir) ?? []), f]);
  }
  const found: FoundCheckpoint[] = [];
  for (const [dir, list] of byDir) {
    const names = list.map((f) => path.basename(f));
    const weights = names.some((n) => n.endsWith('.safetensors'));
    const hasIndex = names.some((n) => n.endsWith('.safetensors.index.json'));
    const vector = names.includes('chatvector.json');
    const adapter = names.includes('adapter_config.json');
    if (hasIndex || ((names.includes('config.json') || vector || adapter) && weights)) found.push({ path: dir, kind: 'folder', vector, adapter, files: list });
    // Loose .safetensors files without a model folder around them (e.g. a LoRA-free delta).
    else for (const f of list) if (f.endsWith('.safetensors')) found.push({ path: f, kind: 'file', vector: false, adapter: false, files: [f] });
  }
  return found.sort((a, b) => a.path.localeCompare(b.path));
}

function isUnderDotFolder(rel: string): boolean {
  return rel.split(/[\\/]/).some((seg) => seg.startsWith('.') && seg !== '.' && seg !== '..');
}

/**
 * The folders of the `chatVector.modelFolders` setting: absolute paths (`~` expands to `home`),
 * normalised, each once. Anything else is left out with a reason for the log.
 */
export function modelFolderRoots(setting: unknown, home: string): { roots: string[]; ignored: string[] } {
  const roots: string[] = [];
  const ignored: string[] = [];
  if (setting === undefined || setting === null) return { roots, ignored };
  if (!Array.isArray(setting)) return { roots, ignored: [`chatVector.modelFolders must be a list of folders, got ${JSON.stringify(setting)}`] };
  for (const v of setting) {
    const s = typeof v === 'string' ? v.trim() : '';
    if (!s) {
      ignored.push(`chatVector.modelFolders: ${JSON.stringify(v)} is not a folder path`);
      continue;
    }
    const expanded = s === '~' || s.startsWith('~/') || s.startsWith('~\\') ? path.join(home, s.slice(1)) : s;
    if (!path.isAbsolute(expanded)) {
      ignored.push(`chatVector.modelFolders: ${JSON.stringify(s)} is not an absolute path (a machine's folders, not the workspace's)`);
      continue;
    }
    const abs = path.resolve(expanded);
    if (!roots.includes(abs)) roots.push(abs);
  }
  return { roots, ignored };
}
