/**
 * mergekit `slerp` (merge_methods/slerp.py): spherical interpolation between the base model (t = 0)
 * and one other model. Its analysis pass sums a·a, b·b and a·b per tensor (analysis.ts); the write
 * pass is the engine's `combine` with the two coefficients (run.ts).
 */
import type { MergeMethodDef } from './method';

export const SLERP: MergeMethodDef<'slerp'> = {
  name: 'slerp',
  prettyName: 'SLERP',
  referenceUrl: 'https://en.wikipedia.org/wiki/Slerp',
  kind: 'slerp',
  parameters: [{ name: 't', scope: 'global', type: 'number' }],
  needsBase: true,
  usesSeed: false,
  output: 's₀·base + s₁·other on the great circle',
};
