/**
 * How roles (Base, Chat, Target) move when one is given to a checkpoint: one role per checkpoint
 * and one checkpoint per role, and nothing silently lost. The checkpoint that held the role takes
 * the role the chosen one gave up (a swap); only when the chosen one had none does it lose it.
 */

/** Which checkpoint (path) holds each role. */
export type RoleMap<R extends string> = Partial<Record<R, string>>;

/** One checkpoint's role before and after (undefined: none). */
export interface RoleMove<R extends string> {
  readonly path: string;
  readonly from: R | undefined;
  readonly to: R | undefined;
}

/**
 * Gives `role` to `path` (undefined: takes `role` from whoever holds it). Returns the new map and
 * every checkpoint whose role changed; the input map is not modified.
 */
export function assignRole<R extends string>(roles: readonly R[], map: RoleMap<R>, role: R, path: string | undefined): { map: RoleMap<R>; moves: RoleMove<R>[] } {
  const next: RoleMap<R> = { ...map };
  const holder = map[role];
  if (path === undefined) {
    delete next[role];
    return { map: next, moves: holder === undefined ? [] : [{ path: holder, from: role, to: undefined }] };
  }
  if (holder === path) return { map: next, moves: [] };
  const previous = roles.find((r) => map[r] === path);
  if (previous !== undefined) delete next[previous];
  next[role] = path;
  const moves: RoleMove<R>[] = [{ path, from: previous, to: role }];
  if (holder !== undefined) {
    if (previous !== undefined) next[previous] = holder;
    moves.push({ path: holder, from: role, to: previous });
  }
  return { map: next, moves };
}

/** "tiny-cp is now Base (was Target); tiny-base is now Target (was Base)." */
export function describeRoleMoves<R extends string>(moves: readonly RoleMove<R>[], label: (r: R) => string, name: (path: string) => string): string {
  const one = (m: RoleMove<R>) =>
    m.to === undefined ? `${name(m.path)} is no longer ${label(m.from!)}` : `${name(m.path)} is now ${label(m.to)}${m.from !== undefined ? ` (was ${label(m.from)})` : ''}`;
  return moves.length ? `${moves.map(one).join('; ')}.` : '';
}
