/**
 * The parameters of one planned output tensor, looked up as mergekit does: per model (`weight`,
 * `density`, `gamma`, `epsilon`, passthrough's `scale`) and per tensor (`normalize`, `lambda`,
 * `t`, …), through the model's, the slice's and the top-level `parameters:` with filters and
 * gradients over depth; problems are reported at the recipe path that needs a value.
 */
import type { CatalogueEntry } from '../checkpoint/checkpoint';
import type { TensorRole } from '../checkpoint/layers';
import { isSparsifying, methodDef, methodParameters } from './methods/registry';
import { type ParamValue, type ParameterScope, asBoolean, asNumber, lookupParameter } from './parameters';
import type { RecipePath, ResolvedRecipe, ResolvedSlice } from './types';

/** One output tensor as planning sees it: where it sits, its depth t, its inputs' names. */
export interface OutputSpec {
  readonly name: string;
  readonly role: TensorRole;
  readonly layer: number | null;
  readonly t: number;
  readonly slice: ResolvedSlice;
  /** Input name per source. */
  readonly inputNames: readonly string[];
  /** Copied from the slice's base (or first) model, not merged (towers in a \`slices:\` recipe). */
  readonly copy?: boolean;
}

/** The parameter values of one output tensor (part of the planned tensor). */
export interface TensorParams {
  /** Per input; NaN for the base (passthrough: its `scale`). */
  readonly weights: readonly number[];
  /** Per input; 1 = keep everything. */
  readonly densities: readonly number[];
  readonly normalize: boolean;
  readonly rescale: boolean;
  readonly lambda: number;
  /** slerp's t. */
  readonly slerpT: number;
  /** Per input (NaN for the base): breadcrumbs' `gamma`; absent when the method has none. */
  readonly gammas?: readonly number[];
  /** Per input (NaN for the base): della's `epsilon`; absent when the method has none. */
  readonly epsilons?: readonly number[];
  /** sce's `select_topk`; absent for other methods. */
  readonly selectTopk?: number;
  /** Global parameters of model_stock, nuslerp and karcher (`filter_wise`, `nuslerp_flatten`, `max_iter` …), by name. */
  readonly options?: Readonly<Record<string, boolean | number>>;
}

/** Every parameter of one output tensor, looked up as mergekit does. */
export function resolveTensorParameters(
  recipe: ResolvedRecipe,
  spec: OutputSpec,
  es: readonly CatalogueEntry[],
  elementCount: number,
): { values: TensorParams; problems: { at: RecipePath; message: string }[] } {
  const sl = spec.slice;
  const problems: { at: RecipePath; message: string }[] = [];
  const defs = methodParameters(recipe.method);
  const sliceScopes: ParameterScope[] = [
    { params: sl.parameters, at: [...sl.at, 'parameters'] },
    { params: recipe.parameters, at: ['parameters'] },
  ];
  const global = (name: string): ParamValue | undefined => {
    const def = defs.find((d) => d.name === name);
    const v = lookupParameter(name, sliceScopes, spec.name, spec.t);
    if (v === undefined && def && def.default === undefined) problems.push({ at: ['parameters'], message: `no value of \`${name}\` applies (every filter misses)` });
    return v ?? def?.default;
  };
  const perModel = (name: string, i: number): ParamValue | undefined => {
    const s = sl.sources[i]!;
    const def = defs.find((d) => d.name === name);
    const v = lookupParameter(name, [{ params: s.parameters, at: s.at }, ...sliceScopes], spec.inputNames[i]!, spec.t);
    if (v === undefined && def && def.default === undefined) problems.push({ at: s.model.at.slice(0, -1).length ? s.model.at.slice(0, -1) : s.model.at, message: `no \`${name}\` applies to ${s.model.given} (every filter misses)` });
    return v ?? def?.default;
  };
  const has = (name: string) => defs.some((d) => d.name === name);
  // passthrough's `scale` is its one model's weight.
  const weightName = has('scale') ? 'scale' : 'weight';
  const weights = es.map((_, i) => (i === sl.baseIndex || !has(weightName) ? NaN : asNumber(perModel(weightName, i) ?? NaN)));
  const densities = es.map((_, i) => (i === sl.baseIndex || !isSparsifying(recipe.method) ? 1 : asNumber(perModel('density', i) ?? 1)));
  const epsilons = has('epsilon') ? es.map((_, i) => (i === sl.baseIndex ? NaN : asNumber(perModel('epsilon', i)!))) : null;
  densities.forEach((d, i) => {
    if (d >= 1) return;
    // mergekit's della_magprune raises ValueError unless both ends of the keep probabilities are in (0, 1).
    if (epsilons && !(d - epsilons[i]! > 0 && d + epsilons[i]! < 1)) problems.push({ at: sl.sources[i]!.model.at.slice(0, -1), message: `density ± epsilon must lie in (0, 1) (keep probabilities), got density ${d} and epsilon ${epsilons[i]}` });
    const at = sl.sources[i]!.model.at.slice(0, -1);
    if (!(d > 0)) problems.push({ at, message: `density must be in (0, 1], got ${d}` });
    // A zero-element tensor keeps nothing whatever the density: it is passed through empty.
    else if (methodDef(recipe.method).gta?.sparsification === 'magnitude' && elementCount > 0 && Math.floor(d * elementCount) === 0) problems.push({ at, message: `density ${d} keeps no element of a tensor this small (mergekit refuses too); raise it or give small tensors their own density with a filter` });
  });
  return {
    values: {
      weights,
      densities,
      normalize: has('normalize') ? asBoolean(global('normalize')!) : false,
      rescale: has('rescale') ? asBoolean(global('rescale')!) : false,
      lambda: has('lambda') ? asNumber(global('lambda')!) : 1,
      slerpT: has('t') ? asNumber(global('t') ?? NaN) : 0,
      ...(has('gamma') ? { gammas: es.map((_, i) => (i === sl.baseIndex ? NaN : asNumber(perModel('gamma', i)!))) } : {}),
      ...(epsilons ? { epsilons } : {}),
      ...(has('select_topk') ? { selectTopk: asNumber(global('select_topk')!) } : {}),
      ...(methodDef(recipe.method).kind === 'gram' ? { options: Object.fromEntries(defs.filter((d) => d.scope === 'global').map((d) => [d.name, d.type === 'boolean' ? asBoolean(global(d.name)!) : asNumber(global(d.name)!)])) } : {}),
    },
    problems,
  };
}

/** Every `{filter, value}` list in the recipe with the output tensors it applies to. */
