/**
 * The rank of `extract --rank` as a person types it in the editor: `16` (at most rank 16 per
 * matrix) or `64 @ 0.9` (per matrix the fewest components that capture 90 % of ‖τ‖², at most 64:
 * `--rank 64 --energy 0.9`).
 */

export interface RankChoice {
  readonly rank: number;
  readonly energy?: number;
}

/**
 * Reads `R` or `R @ E`.
 * @returns the choice, or a one-line message saying what is wrong (for an input box)
 */
export function parseRankChoice(text: string): RankChoice | string {
  const m = /^\s*(\d+)\s*(?:@\s*(\d*\.?\d+)\s*)?$/.exec(text);
  if (!m) return 'Enter a rank (e.g. 16), or a largest rank and an energy target (e.g. 64 @ 0.9).';
  const rank = Number(m[1]);
  if (!Number.isSafeInteger(rank) || rank < 1) return 'The rank must be a whole number ≥ 1.';
  if (m[2] === undefined) return { rank };
  const energy = Number(m[2]);
  if (!(energy > 0 && energy <= 1)) return 'The energy target must be in (0, 1], e.g. 0.9 for 90 % of ‖τ‖².';
  return { rank, energy };
}
