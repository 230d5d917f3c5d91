/**
 * Tensor names that differ only by a leading prefix (`model.` vs none, `transformer.` vs none,
 * `language_model.` vs none): a diff of such checkpoints compares nothing, and the user should be
 * told why rather than see two long lists of names.
 */

/**
 * The prefix that, added to every name only in one checkpoint, gives the names only in the other,
 * or null. Found from the first name of each list; then checked against all of them.
 */
export function prefixOnlyDifference(onlyInA: readonly string[], onlyInB: readonly string[]): { readonly prefix: string; readonly on: 'A' | 'B' } | null {
  if (onlyInA.length === 0 || onlyInA.length !== onlyInB.length) return null;
  const setA = new Set(onlyInA);
  const setB = new Set(onlyInB);
  for (const [from, to, on] of [[onlyInA, setB, 'B'], [onlyInB, setA, 'A']] as const) {
    const first = from[0]!;
    const match = [...to].find((n) => n.length > first.length && n.endsWith(first) && n[n.length - first.length - 1] === '.');
    if (match === undefined) continue;
    const prefix = match.slice(0, match.length - first.length);
    if (from.every((n) => to.has(prefix + n))) return { prefix, on };
  }
  return null;
}
