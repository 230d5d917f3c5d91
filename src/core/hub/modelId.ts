/**
 * Hugging Face model ids as recipes and command lines write them: `org/name` or `name`, optionally
 * `@revision` (a branch, tag or commit; mergekit's syntax). The id rules are huggingface_hub's
 * validate_repo_id (1.29.0.dev0): letters, digits, `_`, `-`, `.`; at most one `/`; each part starts
 * and ends with a letter or digit; no `--` or `..`; not ending in `.git`; a name of at most 96.
 */

export interface ModelId {
  /** `org/name` or `name`. */
  readonly repoId: string;
  /** The revision after `@`; null for none (the default branch, `main`). */
  readonly revision: string | null;
}

const PART = /^\w(?:[\w.-]*\w)?$/;

/** Whether `repoId` (without `@revision`) is a valid Hugging Face model id. */
export function isRepoId(repoId: string): boolean {
  const parts = repoId.split('/');
  if (parts.length > 2 || !parts.every((p) => PART.test(p))) return false;
  if (parts[parts.length - 1]!.length > 96) return false;
  return !repoId.includes('--') && !repoId.includes('..') && !repoId.endsWith('.git');
}

/**
 * A revision is a branch, tag or commit; it names a file under `refs/`, so it may hold `/` (`refs/pr/1`)
 * but never a part that climbs out (`..`), an absolute path or a backslash.
 */
function isRevision(rev: string): boolean {
  if (rev === '' || rev.startsWith('/') || rev.endsWith('/') || rev.includes('\\')) return false;
  return rev.split('/').every((p) => p !== '' && p !== '.' && p !== '..') && ![...rev].some((ch) => ch.charCodeAt(0) < 0x20);
}

/**
 * Reads `given` as a model id, or null when it cannot be one (then it is only a path): absolute
 * or `./`-relative paths, paths with more than one `/`, names of weight files (`x.safetensors`).
 */
export function parseModelId(given: string): ModelId | null {
  if (given.startsWith('.') || given.includes('\\')) return null;
  const at = given.indexOf('@');
  const repoId = at < 0 ? given : given.slice(0, at);
  const revision = at < 0 ? null : given.slice(at + 1);
  if (!isRepoId(repoId) || /\.(safetensors|json|bin|pt|pth)$/i.test(repoId)) return null;
  if (revision !== null && !isRevision(revision)) return null;
  return { repoId, revision };
}

/** `org/name` or `org/name@rev`. */
export function formatModelId(id: ModelId): string {
  return id.revision === null ? id.repoId : `${id.repoId}@${id.revision}`;
}
