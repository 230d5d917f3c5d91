/**
 * Where each input of a job came from, for its log and its output (`__metadata__` and model card):
 * an input read from a hub cache snapshot is named by repository and commit, so the output can be
 * made again from the same files.
 */
import { snapshotOrigin } from './cacheLayout';

/**
 * `{ path: "org/name@commit" }` for every input path that lies in a hub cache snapshot; undefined
 * when none does (the metadata then has no such key).
 */
export function hubSources(paths: readonly string[]): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const p of paths) {
    const o = snapshotOrigin(p);
    if (o) out[p] = `${o.repoId}@${o.commit}`;
  }
  return Object.keys(out).length ? out : undefined;
}

/** "`path`", or "`org/name` at commit C (`path`)" for a cache snapshot: a model card's name for an input. */
export function cardLabel(path: string): string {
  const o = snapshotOrigin(path);
  return o ? `\`${o.repoId}\` at commit \`${o.commit}\` (\`${path}\`)` : `\`${path}\``;
}

/** One log line per input read from the hub cache: "target: org/name commit C (Hugging Face cache, PATH)". */
export function hubInputLines(inputs: readonly (readonly [role: string, path: string])[]): string[] {
  const seen = new Set<string>();
  return inputs.flatMap(([role, p]) => {
    const o = snapshotOrigin(p);
    if (!o || seen.has(`${role} ${p}`)) return [];
    seen.add(`${role} ${p}`);
    return [`${role}: ${o.repoId} commit ${o.commit} (Hugging Face cache, ${o.snapshot})`];
  });
}
