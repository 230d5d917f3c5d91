/** mergekit `linear` (merge_methods/linear.py): the weighted average of the models. */
import type { MergeMethodDef } from './method';

export const LINEAR: MergeMethodDef<'linear'> = {
  name: 'linear',
  prettyName: 'Linear',
  referenceUrl: 'https://arxiv.org/abs/2203.05482',
  kind: 'linear',
  parameters: [
    { name: 'weight', scope: 'tensor', type: 'number' },
    { name: 'normalize', scope: 'global', type: 'boolean', default: true },
  ],
  needsBase: false,
  usesSeed: false,
  output: 'Σ wᵢ·mᵢ / Σ wᵢ',
};
