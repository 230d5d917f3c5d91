/**
 * The one resolver of model references, used wherever a checkpoint is accepted (CLI arguments,
 * recipes, the task host): a local path, or a Hugging Face id `org/name[@revision]` found offline in
 * the hub cache (cacheLayout.ts). A local file or folder wins when both exist, as in mergekit.
 * Nothing here touches the network: a missing id is an error that says how to download it.
 */
import { ChatVecError } from '../errors';
import { entryKind, listDir } from '../io/files';
import { isAbsolute, join, resolve } from '../io/paths';
import { readJsonObject, readSmallText } from '../io/sideFile';
import { COMMIT_HASH, type HubCacheLocation, describeCacheLocation, hubCacheLocation, repoFolderName } from './cacheLayout';
import { type ModelId, formatModelId, parseModelId } from './modelId';

export type ResolvedModelRef =
  | { readonly kind: 'local'; readonly given: string; readonly path: string }
  | {
      readonly kind: 'cache';
      readonly given: string;
      /** The snapshot folder, `<cache>/models--org--name/snapshots/<commit>`. */
      readonly path: string;
      readonly repoId: string;
      /** The revision asked for (`main` when none was given). */
      readonly revision: string;
      readonly commit: string;
      readonly cacheDir: string;
    };

/** The command that downloads `id` into the cache (named in every "not in the cache" message). */
export function downloadCommand(id: string): string {
  return `chatvec download ${id}`;
}

/**
 * Resolves a model reference: `given` relative to `baseDir` (default: the working directory) when
 * that exists, else — when `given` has the form of a model id — its snapshot in the hub cache.
 * Anything else comes back as a local path, for the caller's own "no such file" message.
 * @throws ChatVecError BadCheckpoint (one line) when an id is not in the cache (naming the id, the
 *   cache folder searched and the command that downloads it), when its revision or commit is not
 *   there, or when its snapshot is incomplete (naming the missing files)
 */
export function resolveModelRef(given: string, baseDir?: string): ResolvedModelRef {
  const path = isAbsolute(given) ? resolve(given) : baseDir !== undefined ? resolve(baseDir, given) : resolve(given);
  const id = isAbsolute(given) || entryKind(path) !== 'missing' ? null : parseModelId(given);
  if (id === null) return { kind: 'local', given, path };
  const cache = hubCacheLocation();
  // A bare `name` (no org) that the cache does not hold is far more often a mistyped folder than one
  // of the few old org-less Hub ids: the caller's "no such folder" message fits it better.
  if (!id.repoId.includes('/') && entryKind(join(cache.dir, repoFolderName(id.repoId))) !== 'dir') return { kind: 'local', given, path };
  return resolveFromCache(given, path, id, cache);
}

/** Whether `given` is looked up in the hub cache by {@link resolveModelRef} (no local path has that name, and it reads as an id). */
export function isModelIdRef(given: string, baseDir?: string): boolean {
  if (isAbsolute(given)) return false;
  const id = parseModelId(given);
  if (id === null || entryKind(baseDir !== undefined ? resolve(baseDir, given) : resolve(given)) !== 'missing') return false;
  return id.repoId.includes('/') || entryKind(join(hubCacheLocation().dir, repoFolderName(id.repoId))) === 'dir';
}

function resolveFromCache(given: string, localPath: string, id: ModelId, cache: HubCacheLocation): ResolvedModelRef {
  const storage = join(cache.dir, repoFolderName(id.repoId));
  const fetchIt = `download it with: ${downloadCommand(formatModelId(id))}`;
  if (entryKind(storage) !== 'dir') {
    throw new ChatVecError(
      'BadCheckpoint',
      `${given}: not a local file or folder (${localPath}) and not in the Hugging Face cache (searched ${describeCacheLocation(cache)}); ${fetchIt}`,
    );
  }
  const revision = id.revision ?? 'main';
  let commit = revision;
  if (!COMMIT_HASH.test(revision)) {
    const ref = join(storage, 'refs', revision);
    if (entryKind(ref) !== 'file') {
      const known = knownRefs(join(storage, 'refs'));
      throw new ChatVecError(
        'BadCheckpoint',
        `${given}: revision "${revision}" is not in the Hugging Face cache (${storage} has ${known.length ? `refs ${known.join(', ')}` : 'no refs'}); ${fetchIt}`,
      );
    }
    commit = readSmallText(ref, 'marker').trim();
    if (!COMMIT_HASH.test(commit)) throw new ChatVecError('BadCheckpoint', `${ref}: not a commit hash (expected 40 hex digits, as huggingface_hub writes)`);
  }
  const snapshot = join(storage, 'snapshots', commit);
  if (entryKind(snapshot) !== 'dir') {
    throw new ChatVecError('BadCheckpoint', `${given}: commit ${commit} has no snapshot in the Hugging Face cache (${join(storage, 'snapshots')}); ${fetchIt}`);
  }
  checkSnapshotComplete(given, snapshot, join(storage, 'blobs'), fetchIt);
  return { kind: 'cache', given, path: snapshot, repoId: id.repoId, revision, commit, cacheDir: cache.dir };
}

/** Names under refs/ (branches, tags, `pr/1`). */
function knownRefs(dir: string, prefix = ''): string[] {
  if (entryKind(dir) !== 'dir') return [];
  return listDir(dir).flatMap((n) => (entryKind(join(dir, n)) === 'dir' ? knownRefs(join(dir, n), `${prefix}${n}/`) : [`${prefix}${n}`]));
}

const MAX_NAMED = 5;

/**
 * A snapshot's files are links into blobs/ created only when a blob is complete, so a weight file
 * the index lists but the snapshot lacks (or a link whose blob is gone) is a download that did not
 * finish; `blobs/*.incomplete` are the partial files of such downloads.
 * @throws ChatVecError BadCheckpoint naming the missing files (at most five, then a count)
 */
function checkSnapshotComplete(given: string, snapshot: string, blobs: string, fetchIt: string): void {
  const names = listDir(snapshot);
  const present = (n: string) => entryKind(join(snapshot, n)) === 'file';
  const indexName = names.includes('model.safetensors.index.json') ? 'model.safetensors.index.json' : names.find((n) => n.endsWith('.safetensors.index.json'));
  let missing: string[];
  if (indexName !== undefined && present(indexName)) {
    const map = readJsonObject(join(snapshot, indexName)).weight_map;
    const shards = map !== null && typeof map === 'object' ? [...new Set(Object.values(map as Record<string, unknown>).filter((v): v is string => typeof v === 'string'))] : [];
    missing = shards.filter((s) => !present(s)).sort();
  } else {
    missing = [...(indexName !== undefined ? [indexName] : []), ...names.filter((n) => n.endsWith('.safetensors') && !present(n))];
  }
  const unfinished = entryKind(blobs) === 'dir' ? listDir(blobs).filter((n) => n.endsWith('.incomplete')).length : 0;
  const partial = unfinished ? `; ${unfinished} unfinished download${unfinished === 1 ? '' : 's'} (*.incomplete) in ${blobs}` : '';
  if (missing.length) {
    const named = missing.slice(0, MAX_NAMED).join(', ') + (missing.length > MAX_NAMED ? ` and ${missing.length - MAX_NAMED} more` : '');
    throw new ChatVecError('BadCheckpoint', `${given}: the cached snapshot ${snapshot} is incomplete: missing ${named}${partial}; ${fetchIt.replace('download it', 'finish it')}`);
  }
  if (!names.some((n) => n.endsWith('.safetensors') && present(n))) {
    throw new ChatVecError('BadCheckpoint', `${given}: the cached snapshot ${snapshot} has no .safetensors weights${partial}; ${fetchIt.replace('download it', 'download them')}`);
  }
}

/** One line for logs and dry runs: which checkpoint a reference resolved to. */
export function describeResolution(r: ResolvedModelRef): string {
  if (r.kind === 'local') return `${r.given}: local ${r.path}`;
  const rev = r.revision === r.commit ? '' : ` (${r.revision})`;
  return `${r.given}: Hugging Face cache, ${r.repoId} commit ${r.commit}${rev}, ${r.path}`;
}
