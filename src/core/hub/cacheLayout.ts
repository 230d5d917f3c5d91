/**
 * The Hugging Face hub cache as huggingface_hub lays it out (followed: huggingface_hub 1.29.0.dev0,
 * commit ee0a451, `constants.py` and `file_download.py`), so that models downloaded by `hf download`,
 * transformers or vLLM are found here and models downloaded here are found by them:
 *
 *     <cache>/models--{org}--{name}/
 *         refs/{revision}               the commit a branch or tag points to (text, no newline)
 *         snapshots/{commit}/{file}     links into ../../blobs/
 *         blobs/{etag}                  sha256 for LFS files, the git blob id for the rest
 *         blobs/{etag}.incomplete       a download in progress (or interrupted)
 *
 * The cache folder is HF_HUB_CACHE, else the legacy HUGGINGFACE_HUB_CACHE, else HF_HOME/hub, else
 * $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub. `~` is expanded as Python's
 * `expanduser` does; `$VAR` inside a value is not (huggingface_hub's `expandvars`): rare, and a
 * shell has expanded it already.
 */
import { getEnv, homeDir } from '../io/env';
import { basename, dirname, join, resolve, sep } from '../io/paths';

/** A full commit hash: selects a snapshot directly (huggingface_hub's REGEX_COMMIT_HASH). */
export const COMMIT_HASH = /^[0-9a-f]{40}$/;

/** Where the hub cache is and which variable chose it (for messages: "searched X (from HF_HOME)"). */
export interface HubCacheLocation {
  readonly dir: string;
  /** The environment variable that chose it, or 'default'. */
  readonly from: 'HF_HUB_CACHE' | 'HUGGINGFACE_HUB_CACHE' | 'HF_HOME' | 'XDG_CACHE_HOME' | 'default';
}

function expandUser(p: string): string {
  return p === '~' || p.startsWith('~/') || p.startsWith(`~${sep}`) ? join(homeDir(), p.slice(1)) : p;
}

/** An environment variable's value, unset when empty (as `os.getenv(X) or default` would not be: see below). */
function envValue(name: string): string | undefined {
  // huggingface_hub uses os.getenv(name, default): an empty value counts as set. Python then joins
  // "" with "hub" into a relative "hub"; nobody means that, so an empty value is treated as unset.
  const v = getEnv(name);
  return v === undefined || v === '' ? undefined : v;
}

/** The hub cache folder, as huggingface_hub's constants.HF_HUB_CACHE computes it (absolute). */
export function hubCacheLocation(): HubCacheLocation {
  const hub = envValue('HF_HUB_CACHE');
  if (hub) return { dir: resolve(expandUser(hub)), from: 'HF_HUB_CACHE' };
  const legacy = envValue('HUGGINGFACE_HUB_CACHE');
  if (legacy) return { dir: resolve(expandUser(legacy)), from: 'HUGGINGFACE_HUB_CACHE' };
  const home = envValue('HF_HOME');
  if (home) return { dir: resolve(expandUser(home), 'hub'), from: 'HF_HOME' };
  const xdg = envValue('XDG_CACHE_HOME');
  if (xdg) return { dir: resolve(expandUser(xdg), 'huggingface', 'hub'), from: 'XDG_CACHE_HOME' };
  return { dir: join(homeDir(), '.cache', 'huggingface', 'hub'), from: 'default' };
}

/** huggingface_hub's HF_HOME (the token file lives there): HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
export function hfHome(): string {
  const home = envValue('HF_HOME');
  if (home) return resolve(expandUser(home));
  const xdg = envValue('XDG_CACHE_HOME');
  return xdg ? resolve(expandUser(xdg), 'huggingface') : join(homeDir(), '.cache', 'huggingface');
}

/** "X (from HF_HUB_CACHE)" or "X (the default)", for messages. */
export function describeCacheLocation(loc: HubCacheLocation): string {
  return `${loc.dir} (${loc.from === 'default' ? 'the default; set HF_HUB_CACHE or HF_HOME to use another' : `from ${loc.from}`})`;
}

/** The folder of a model repository in the cache: `models--{org}--{name}` (huggingface_hub's repo_folder_name). */
export function repoFolderName(repoId: string): string {
  return ['models', ...repoId.split('/')].join('--');
}

/** The repository id of a cache folder name (`models--org--name` → `org/name`), or null for other names. */
export function repoIdOfFolder(name: string): string | null {
  if (!name.startsWith('models--')) return null;
  const parts = name.slice('models--'.length).split('--');
  // Repository ids never contain "--" (huggingface_hub's validate_repo_id), so this is unambiguous.
  if (parts.length > 2 || parts.some((p) => p === '')) return null;
  return parts.join('/');
}

/** A snapshot folder of the cache: which repository and commit it holds. */
export interface HubOrigin {
  readonly repoId: string;
  readonly commit: string;
  /** The snapshot folder. */
  readonly snapshot: string;
}

/**
 * The repository and commit of `path` when it lies in a hub cache snapshot
 * (`…/models--org--name/snapshots/<commit>[/file]`), whatever cache folder it is in; null otherwise.
 * Decided from the path alone, so a snapshot given as a plain folder is recognised too.
 */
export function snapshotOrigin(path: string): HubOrigin | null {
  let p = resolve(path);
  for (let i = 0; i < 3; i++, p = dirname(p)) {
    const commit = basename(p);
    const snapshots = dirname(p);
    if (!COMMIT_HASH.test(commit) || basename(snapshots) !== 'snapshots') continue;
    const repoId = repoIdOfFolder(basename(dirname(snapshots)));
    return repoId === null ? null : { repoId, commit, snapshot: p };
  }
  return null;
}

/** `org/name@commit` when `path` is in a cache snapshot, else the path (for metadata and model cards). */
export function sourceLabel(path: string): string {
  const o = snapshotOrigin(path);
  return o ? `${o.repoId}@${o.commit}` : path;
}
