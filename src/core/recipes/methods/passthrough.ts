/**
 * mergekit `passthrough` (merge_methods/passthrough.py): each output tensor is the one model's
 * tensor, times `scale` when given. With `slices:` of different models and layer ranges this is
 * the "frankenmerge": layers stacked into a deeper or shallower model (layers renumbered, the
 * config's layer count rewritten, pre-layer weights from the first slice, post-layer from the last).
 */
import type { MergeMethodDef } from './method';

export const PASSTHROUGH: MergeMethodDef<'passthrough'> = {
  name: 'passthrough',
  prettyName: 'Passthrough',
  referenceUrl: null,
  kind: 'passthrough',
  parameters: [{ name: 'scale', scope: 'tensor', type: 'number', default: 1 }],
  needsBase: false,
  usesSeed: false,
  output: 'the one model of each slice, × scale (layers stacked)',
};
