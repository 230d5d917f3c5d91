/**
 * The models in the hub cache, for pickers and the Checkpoints view: every snapshot with
 * .safetensors weights, its id, the revisions that point at it, its size and architecture. Reads
 * folder listings, refs and config.json only (no weight headers), so listing a large cache is cheap.
 */
import { entryKind, fileIdentity, listDir } from '../io/files';
import { join } from '../io/paths';
import { readJsonObject, readSmallText } from '../io/sideFile';
import { COMMIT_HASH, hubCacheLocation, repoIdOfFolder } from './cacheLayout';

export interface CachedModel {
  /** `org/name`. */
  readonly repoId: string;
  readonly commit: string;
  /** Branches and tags whose ref names this commit (`main`, `v1.0`); empty for a commit reached only by hash. */
  readonly revisions: readonly string[];
  /** The snapshot folder (what jobs open). */
  readonly path: string;
  /** Bytes of the .safetensors files. */
  readonly weightBytes: number;
  /** config.json's architectures[0] or model_type; null when absent or unreadable. */
  readonly architecture: string | null;
}

function refsOf(dir: string, prefix = ''): [string, string][] {
  if (entryKind(dir) !== 'dir') return [];
  return listDir(dir).flatMap((n): [string, string][] => {
    const p = join(dir, n);
    if (entryKind(p) === 'dir') return refsOf(p, `${prefix}${n}/`);
    try {
      return [[`${prefix}${n}`, readSmallText(p, 'marker').trim()]];
    } catch {
      return [];
    }
  });
}

function architectureIn(snapshot: string): string | null {
  if (entryKind(join(snapshot, 'config.json')) !== 'file') return null;
  try {
    const c = readJsonObject(join(snapshot, 'config.json'));
    const a = c.architectures;
    if (Array.isArray(a) && typeof a[0] === 'string') return a[0];
    return typeof c.model_type === 'string' ? c.model_type : null;
  } catch {
    return null;
  }
}

/**
 * Models in the hub cache (cacheLayout.ts's folder) whose snapshot holds .safetensors weights, by id
 * then newest ref first. Snapshots of models without safetensors weights (pickled only, a config
 * alone) are left out; an unreadable entry is skipped rather than failing the list.
 */
export function listCachedModels(cacheDir = hubCacheLocation().dir): CachedModel[] {
  if (entryKind(cacheDir) !== 'dir') return [];
  const out: CachedModel[] = [];
  for (const folder of listDir(cacheDir)) {
    const repoId = repoIdOfFolder(folder);
    const snapshots = join(cacheDir, folder, 'snapshots');
    if (repoId === null || entryKind(snapshots) !== 'dir') continue;
    const refs = refsOf(join(cacheDir, folder, 'refs'));
    for (const commit of listDir(snapshots)) {
      const path = join(snapshots, commit);
      if (!COMMIT_HASH.test(commit) || entryKind(path) !== 'dir') continue;
      const weights = listDir(path).filter((n) => n.endsWith('.safetensors') && entryKind(join(path, n)) === 'file');
      if (!weights.length) continue;
      const weightBytes = weights.reduce((a, n) => a + fileIdentity(join(path, n)).size, 0);
      out.push({ repoId, commit, revisions: refs.filter(([, c]) => c === commit).map(([r]) => r), path, weightBytes, architecture: architectureIn(path) });
    }
  }
  return out.sort((a, b) => a.repoId.localeCompare(b.repoId) || b.revisions.length - a.revisions.length || a.commit.localeCompare(b.commit));
}
