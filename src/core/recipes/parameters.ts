/**
 * Parameter values per tensor, as mergekit evaluates them (mergekit/config.py `evaluate_setting`
 * and `ConfigReader.parameter`):
 * - a filter list is tried in order and the first `{filter, value}` whose filter is absent, `*`,
 *   or a substring of the tensor name wins; no match means "not set here";
 * - a list of numbers is a gradient: at depth t ∈ [0, 1] the value is interpolated linearly
 *   between the two nearest of its evenly spaced points;
 * - lookup order: the model's own `parameters`, then the slice's, then the top-level ones, then
 *   the method's default.
 */
import { MERGE_METHODS, type MergeMethodName, OTHER_MERGEKIT_PARAMETERS, isSparsifying, methodParameters } from './methods/registry';
import type { ConditionalParameter, ParameterMap, ParameterSetting, RecipePath, ScalarOrGradient } from './types';

export type ParamValue = number | boolean | string;

function isConditional(x: unknown): x is ConditionalParameter {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && 'value' in x;
}

/** Whether a filter applies to a tensor name (substring match, as mergekit's code does). */
export function filterMatches(filter: string | null | undefined, tensorName: string): boolean {
  return filter === undefined || filter === null || filter === '*' || tensorName.includes(filter);
}

/**
 * The value of a setting for one tensor at depth `t` (0 = first layer, 1 = last); undefined when
 * a filter list has no match.
 */
export function evaluateSetting(setting: ParameterSetting, tensorName: string, t: number): ParamValue | undefined {
  if (typeof setting === 'number' || typeof setting === 'boolean' || typeof setting === 'string') return setting;
  if (isConditional(setting)) return filterMatches(setting.filter, tensorName) ? evaluateSetting(setting.value, tensorName, t) : undefined;
  const list = setting as readonly unknown[];
  if (list.length === 0) return undefined;
  if (list.every((e) => typeof e === 'number')) return gradientAt(list as readonly number[], t);
  if (list.every((e) => typeof e === 'number' || typeof e === 'string' || typeof e === 'boolean')) {
    // mergekit: a list of words or flags steps (no interpolation) over depth.
    return list[Math.trunc(t * (list.length - 1))] as ParamValue;
  }
  for (const cond of list) {
    if (isConditional(cond) && filterMatches(cond.filter, tensorName)) return evaluateSetting(cond.value as ScalarOrGradient, tensorName, t);
  }
  return undefined;
}

/** Linear interpolation over evenly spaced points at depth t ∈ [0, 1] (float64). */
export function gradientAt(points: readonly number[], t: number): number {
  const scaled = t * (points.length - 1);
  const i0 = Math.trunc(scaled);
  const i1 = Math.min(points.length - 1, i0 + 1);
  const frac = scaled - i0;
  return (1 - frac) * points[i0]! + frac * points[i1]!;
}

/** One level of the lookup chain: a parameter map and where it is written. */
export interface ParameterScope {
  readonly params: ParameterMap;
  readonly at: RecipePath;
}

/** Looks `name` up through the scopes (most specific first). */
export function lookupParameter(name: string, scopes: readonly ParameterScope[], tensorName: string, t: number): ParamValue | undefined {
  for (const s of scopes) {
    const setting = s.params[name];
    if (setting === undefined || setting === null) continue;
    const v = evaluateSetting(setting, tensorName, t);
    if (v !== undefined) return v;
  }
  return undefined;
}

/**
 * The merge methods (chatvec's, then mergekit's others) that read parameter `name`; empty when
 * none does.
 */
export function parameterOwners(name: string): string[] {
  // task_arithmetic accepts `density` (as every task method does) but never trims.
  const own = MERGE_METHODS.filter((m) => methodParameters(m).some((d) => d.name === name && !(name === 'density' && !isSparsifying(m))));
  return [...own, ...(OTHER_MERGEKIT_PARAMETERS[name] ?? []).filter((m) => !own.includes(m as MergeMethodName))];
}

/** "`epsilon` is a parameter of della or della_linear (not run by chatvec yet), not of ties"; null when no method reads it. */
export function otherMethodMessage(name: string, method: string): string | null {
  const owners = parameterOwners(name).filter((m) => m !== method);
  if (!owners.length) return null;
  const ours = owners.some((m) => (MERGE_METHODS as readonly string[]).includes(m));
  const names = owners.length > 1 ? `${owners.slice(0, -1).join(', ')} or ${owners[owners.length - 1]}` : owners[0];
  return `\`${name}\` is a parameter of ${names}${ours ? '' : ' (not run by chatvec yet)'}, not of ${method}`;
}

/** A value as a number (true/false count as 1/0, as in Python). */
export function asNumber(v: ParamValue): number {
  if (typeof v === 'boolean') return v ? 1 : 0;
  return typeof v === 'number' ? v : Number(v);
}

/** A value as a flag (Python truthiness of numbers and words). */
export function asBoolean(v: ParamValue): boolean {
  if (typeof v === 'string') return !['', 'false', 'False', '0', 'no'].includes(v);
  return typeof v === 'boolean' ? v : v !== 0;
}
