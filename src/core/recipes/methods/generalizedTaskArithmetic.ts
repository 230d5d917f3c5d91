/**
 * mergekit's generalized task arithmetic (merge_methods/generalized_task_arithmetic.py): τᵢ =
 * mᵢ − base, sparsify each τᵢ, weight, optionally elect signs, mix, normalize, λ, add to base. The
 * variants differ only in data (consensus, sparsification, default normalize/rescale), so they are
 * rows here, as in mergekit's registry.py. The per-chunk kernel is kernels.ts `runRecipeGta`; the
 * statistics a sparsification needs (magnitude thresholds, L1 sums) are analysis.ts's passes.
 */
import type { GtaVariant, MergeMethodDef, ParameterDef, Sparsification } from './method';

/** What each variant reads (mergekit's tensor_parameters, then parameters). */
function gtaParameters(v: GtaVariant): ParameterDef[] {
  return [
    { name: 'weight', scope: 'tensor', type: 'number' },
    { name: 'density', scope: 'tensor', type: 'number', default: 1 },
    ...(v.sparsification === 'magnitude_outliers' ? [{ name: 'gamma', scope: 'tensor', type: 'number', default: 0.01 } as const] : []),
    ...(v.sparsification === 'della_magprune' ? [{ name: 'epsilon', scope: 'tensor', type: 'number', default: 0.15 } as const] : []),
    { name: 'int8_mask', scope: 'global', type: 'boolean', default: false },
    { name: 'normalize', scope: 'global', type: 'boolean', default: v.defaultNormalize },
    { name: 'rescale', scope: 'global', type: 'boolean', default: v.defaultRescale },
    { name: 'lambda', scope: 'global', type: 'number', default: 1 },
  ];
}

function row<N extends string>(
  name: N,
  prettyName: string,
  referenceUrl: string,
  consensus: 'sum' | null,
  sparsification: Sparsification | null,
  defaultNormalize: boolean,
  defaultRescale: boolean,
  output: string,
): MergeMethodDef<N> {
  const gta: GtaVariant = { consensus, sparsification, defaultNormalize, defaultRescale };
  const usesSeed = sparsification === 'random' || sparsification === 'della_magprune';
  return { name, prettyName, referenceUrl, kind: 'gta', parameters: gtaParameters(gta), gta, needsBase: true, usesSeed, output };
}

export const TASK_ARITHMETIC = row('task_arithmetic', 'Task Arithmetic', 'https://arxiv.org/abs/2212.04089', null, null, false, false, 'base + λ·Σ wᵢ·τᵢ (/ Σ wᵢ with normalize)');
export const TIES = row('ties', 'TIES', 'https://arxiv.org/abs/2306.01708', 'sum', 'magnitude', true, false, 'base + λ·disjoint-mean of trimmed, sign-elected wᵢ·τ̂ᵢ');
export const DARE_TIES = row('dare_ties', 'DARE TIES', 'https://arxiv.org/abs/2311.03099', 'sum', 'random', false, true, "as ties, with DARE's drop instead of the trim");
export const DARE_LINEAR = row('dare_linear', 'Linear DARE', 'https://arxiv.org/abs/2311.03099', null, 'random', false, true, 'base + λ·Σ wᵢ·τ̂ᵢ with τ̂ a random drop');
export const BREADCRUMBS = row('breadcrumbs', 'Model Breadcrumbs', 'https://arxiv.org/abs/2312.06795', null, 'magnitude_outliers', false, false, 'base + λ·Σ wᵢ·τ̂ᵢ with τ̂ without its largest `gamma` and smallest magnitudes');
export const DELLA = row('della', 'DELLA', 'https://arxiv.org/abs/2406.11617', 'sum', 'della_magprune', true, true, "as ties, with DELLA's magnitude-ranked random drop");
export const DELLA_LINEAR = row('della_linear', 'Linear DELLA', 'https://arxiv.org/abs/2406.11617', null, 'della_magprune', false, true, 'base + λ·Σ wᵢ·τ̂ᵢ with τ̂ a magnitude-ranked random drop');
export const BREADCRUMBS_TIES = row('breadcrumbs_ties', 'Model Breadcrumbs with TIES', 'https://arxiv.org/abs/2312.06795', 'sum', 'magnitude_outliers', false, false, "as ties, with breadcrumbs' trim");
