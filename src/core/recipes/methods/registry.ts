/**
 * Every merge method chatvec runs, in one list, and the mergekit methods it does not run yet (so a
 * recipe using one of their parameters is told whose it is). Everything that depends on the set of
 * methods reads this module; test/unit/recipeRegistry.test.ts checks that the JSON schema's enum,
 * the docs table (docs/recipes.md) and the `chatvec merge` help agree with it.
 */
import { CHAT_VECTOR } from './chatVector';
import { BREADCRUMBS, BREADCRUMBS_TIES, DARE_LINEAR, DARE_TIES, DELLA, DELLA_LINEAR, TASK_ARITHMETIC, TIES } from './generalizedTaskArithmetic';
import { LINEAR } from './linear';
import type { MergeMethodDef, ParameterDef } from './method';
import { KARCHER } from './karcher';
import { MODEL_STOCK } from './modelStock';
import { NUSLERP } from './nuslerp';
import { PASSTHROUGH } from './passthrough';
import { SCE } from './sce';
import { SLERP } from './slerp';

const ALL = [LINEAR, PASSTHROUGH, TASK_ARITHMETIC, TIES, DARE_LINEAR, DARE_TIES, BREADCRUMBS, BREADCRUMBS_TIES, DELLA, DELLA_LINEAR, SCE, MODEL_STOCK, SLERP, NUSLERP, KARCHER, CHAT_VECTOR] as const;

/** The merge methods chatvec runs. */
export type MergeMethodName = (typeof ALL)[number]['name'];

/** Every method chatvec runs, in the order the schema, docs and help list them. */
export const METHODS: readonly MergeMethodDef<MergeMethodName>[] = ALL;

/** Their names, in that order. */
export const MERGE_METHODS: readonly MergeMethodName[] = ALL.map((m) => m.name);

/**
 * The definition of a method.
 * @throws Error for a name not in METHODS (callers pass names the schema has accepted)
 */
export function methodDef(name: MergeMethodName): MergeMethodDef<MergeMethodName> {
  const d = ALL.find((m) => m.name === name);
  if (!d) throw new Error(`unknown merge method ${name}`);
  return d;
}

/** What a method reads and its defaults (mergekit's). */
export function methodParameters(method: MergeMethodName): readonly ParameterDef[] {
  return methodDef(method).parameters;
}

/** Whether the method merges task vectors τᵢ = mᵢ − base (so a recipe listing only the base gives the base). */
export function takesTaskVectors(method: MergeMethodName): boolean {
  const kind = methodDef(method).kind;
  return kind === 'gta' || kind === 'sce';
}

/** Whether the method sparsifies task vectors (so `density` and its range matter). */
export function isSparsifying(method: MergeMethodName): boolean {
  return (methodDef(method).gta?.sparsification ?? null) !== null;
}

/**
 * Parameters of mergekit 0.1.4 methods chatvec does not run yet (merge_methods/), so a recipe
 * written for one of them is told which method the parameter belongs to.
 */
export const OTHER_MERGEKIT_PARAMETERS: Readonly<Record<string, readonly string[]>> = {
};

/** Every parameter name a method of chatvec reads, in first-seen order. */
export function parameterNames(): string[] {
  return [...new Set(METHODS.flatMap((m) => m.parameters.map((p) => p.name)))];
}

/** The docs table's parameter cell of a method: "`weight` (required), `density` (1), …". */
export function parameterCell(def: MergeMethodDef): string {
  if (!def.parameters.length) return def.parametersNote ?? '—';
  return def.parameters.map((p) => `\`${p.name}\` (${p.default === undefined ? 'required' : String(p.default)})`).join(', ');
}

/** "linear, task_arithmetic, …; or chat_vector": the methods as the CLI help lists them. */
export function methodList(): string {
  const mergekit = METHODS.filter((m) => m.kind !== 'chat_vector').map((m) => m.name);
  return `${mergekit.join(', ')}; or ${METHODS.filter((m) => m.kind === 'chat_vector').map((m) => m.name).join(', ')}`;
}
