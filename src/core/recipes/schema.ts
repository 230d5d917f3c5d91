/**
 * The recipe JSON Schema (schemas/merge-recipe.schema.json, also contributed to VS Code for the
 * YAML extension) checked with ajv. ajv's raw errors are turned into one plain message per mistake,
 * so `chatvec merge` and the editor's Problems panel say the same thing.
 */
import Ajv, { type ErrorObject } from 'ajv';
import schemaJson from '../../../schemas/merge-recipe.schema.json';
import { otherMethodMessage } from './parameters';
import { MERGE_METHODS, METHODS, parameterNames } from './methods/registry';
import type { RecipeIssue, RecipePath } from './types';
import { type ParsedRecipeText, isEmptyValue, pathLabel } from './yamlSource';

/** The JSON Schema of recipes, as a plain object. */
export const RECIPE_SCHEMA: Readonly<Record<string, unknown>> = schemaJson as Record<string, unknown>;

/**
 * Parameter names a method may read (chatvec's, and two common ones of mergekit methods chatvec
 * does not run): written outside `parameters:` they are a common mistake.
 */
export const PARAMETER_NAMES: readonly string[] = [...new Set([...parameterNames(), 'epsilon', 'gamma'])];

/** The parameters the schema describes; others are warned about by schemaIssues (and ignored). */
export const SCHEMA_PARAMETERS: ReadonlySet<string> = new Set(
  Object.keys((RECIPE_SCHEMA as { definitions: { parameters: { properties: Record<string, unknown> } } }).definitions.parameters.properties),
);

let validator: ReturnType<Ajv['compile']> | null = null;

/**
 * The schema with every `additionalProperties: true` made false. The schema file allows the keys
 * mergekit ignores (so the editor's YAML extension accepts what `chatvec merge` runs); chatvec
 * checks against this strict copy to warn about them, with a did-you-mean.
 */
function strict(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(strict);
  if (typeof s !== 'object' || s === null) return s;
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, k === 'additionalProperties' && v === true ? false : strict(v)]));
}

function validate(): ReturnType<Ajv['compile']> {
  if (!validator) {
    const ajv = new Ajv({ allErrors: true, verbose: true, allowUnionTypes: true });
    validator = ajv.compile(strict(RECIPE_SCHEMA) as Record<string, unknown>);
  }
  return validator;
}

function toPath(instancePath: string): (string | number)[] {
  if (!instancePath) return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

function code(s: string): string {
  return `\`${s}\``;
}

/** Edit distance, for "did you mean" hints on misspelt keys. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * " (did you mean `x`?)" for the closest option, or '' when none is close. Never suggests the word
 * itself; a word that differs only by case or surrounding spaces is told how to write it.
 */
export function suggest(word: string, options: readonly string[]): string {
  let best: string | null = null;
  let bestD = Infinity;
  for (const o of options) {
    if (o === word) continue;
    const dd = distance(word.toLowerCase(), o.toLowerCase());
    if (dd < bestD) [best, bestD] = [o, dd];
  }
  if (best === null || bestD > Math.max(2, Math.floor(word.length / 3))) return '';
  if (word.trim().toLowerCase() === best.toLowerCase()) return ` (write it exactly ${code(best)}: names are case- and space-sensitive)`;
  return ` (did you mean ${code(best)}?)`;
}

function typeName(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'number' && !Number.isFinite(v)) return yamlNumber(v);
  return `${typeof v === 'string' ? 'text' : typeof v} ${JSON.stringify(v)}`;
}

/**
 * A number as YAML writes it: NaN and ±Infinity as `.nan`, `.inf`, `-.inf` (JSON.stringify would
 * say `null`), others as JSON does.
 */
export function yamlNumber(v: number): string {
  if (Number.isNaN(v)) return '.nan';
  if (!Number.isFinite(v)) return v > 0 ? '.inf' : '-.inf';
  return JSON.stringify(v);
}

/** The path (relative to `v`) of the first NaN or ±Infinity inside `v`, depth first; null when none. */
function nonFiniteIn(v: unknown): { at: RecipePath; value: number } | null {
  if (typeof v === 'number') return Number.isFinite(v) ? null : { at: [], value: v };
  if (typeof v !== 'object' || v === null) return null;
  for (const [k, x] of Array.isArray(v) ? v.entries() : Object.entries(v)) {
    const found = nonFiniteIn(x);
    if (found) return { at: [k, ...found.at], value: found.value };
  }
  return null;
}

/** "`weight` must be a finite number, got .nan", at the number itself. */
function nonFiniteMessage(path: RecipePath, found: { at: RecipePath; value: number }, what = 'a finite number'): { message: string; path: RecipePath; at: 'value' } {
  const full = [...path, ...found.at];
  // Name the setting, not the `value` of one of its filter entries.
  const key = [...full].reverse().find((k): k is string => typeof k === 'string' && k !== 'value');
  return { message: `${key !== undefined ? code(key) : pathLabel(full)} must be ${what}, got ${yamlNumber(found.value)}`, path: full, at: 'value' };
}

function expectedType(t: unknown): string {
  const names: Record<string, string> = { object: 'a mapping (key: value lines)', array: 'a list', string: 'text', number: 'a number', integer: 'a whole number', boolean: 'true or false', null: 'empty' };
  const list = Array.isArray(t) ? t : [t];
  return list.map((x) => names[String(x)] ?? String(x)).join(' or ');
}

/** Where a parameter-shaped key was found, and where it belongs. */
function misplacedParameter(parsed: ParsedRecipeText | null, container: RecipePath, key: string): string {
  const where = container.length === 0 ? 'the top-level `parameters:`' : `${code('parameters:')} of ${pathLabel(container)}`;
  const paramsPath = [...container, 'parameters'];
  if (parsed && isEmptyValue(parsed, paramsPath)) {
    return `${code(key)} is not inside ${where}: ${code('parameters:')} is empty here, so the lines below it are not under it. Indent ${code(`${key}:`)} further than ${code('parameters:')}`;
  }
  return `${code(key)} is a parameter and must be under ${where}, e.g.\n  parameters:\n    ${key}: …`;
}

type SchemaMessage = { message: string; path: RecipePath; at: 'key' | 'value'; severity?: 'warning' };

function messageFor(e: ErrorObject, data: unknown, parsed: ParsedRecipeText | null): SchemaMessage | null {
  const path = toPath(e.instancePath);
  const label = pathLabel(path);
  const inChatVectorBranch = e.schemaPath.includes('/then/');
  switch (e.keyword) {
    case 'if':
      return null; // the then/else branch reports the actual problem
    case 'required': {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      if (path.length === 0 && missing === 'merge_method') {
        return { message: `missing ${code('merge_method')}: one of ${MERGE_METHODS.join(', ')}`, path, at: 'key' };
      }
      if (inChatVectorBranch) return { message: `merge_method chat_vector needs ${code(missing)}`, path, at: 'key' };
      return { message: `${label} needs ${code(missing)}`, path, at: 'key' };
    }
    case 'additionalProperties': {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      const keyPath = [...path, extra];
      const parent = path[path.length - 2];
      const isModelLike = path.length === 0 || (path.length === 2 && (path[0] === 'models' || path[0] === 'chat_models' || path[0] === 'slices')) || (path.length === 4 && path[2] === 'sources');
      if (PARAMETER_NAMES.includes(extra) && isModelLike && path[0] !== 'chat_models') {
        return { message: misplacedParameter(parsed, path, extra), path: keyPath, at: 'key' };
      }
      if (path[path.length - 1] === 'parameters') {
        const method = (data as { merge_method?: unknown } | null)?.merge_method;
        const other = otherMethodMessage(extra, String(method));
        // mergekit ignores parameters no method reads: a warning, and the merge goes on.
        if (other) return { message: other, path: keyPath, at: 'key', severity: 'warning' };
        return { message: `unknown parameter ${code(extra)}${suggest(extra, PARAMETER_NAMES)}, ignored (as mergekit does); chatvec reads ${parameterNames().join(', ')}`, path: keyPath, at: 'key', severity: 'warning' };
      }
      const allowed = Object.keys(((e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties) ?? {});
      const where = path.length === 0 ? 'at the top level' : `in ${label}`;
      if (extra === 'ratio' && parent === 'models') return { message: `${code('ratio')} belongs to chat_models of merge_method chat_vector; in ${code('models')} use ${code('parameters: {weight: …}')}`, path: keyPath, at: 'key' };
      if (path[0] === 'chat_models') return { message: `unknown key ${code(extra)} ${where}${suggest(extra, allowed)}`, path: keyPath, at: 'key' };
      // mergekit's configuration models ignore keys they do not know (pydantic's default).
      return { message: `unknown key ${code(extra)} ${where}${suggest(extra, allowed)}, ignored (as mergekit does)`, path: keyPath, at: 'key', severity: 'warning' };
    }
    case 'false schema': {
      const key = String(path[path.length - 1]);
      if (inChatVectorBranch) {
        return { message: `${code(key)} is not used by merge_method chat_vector (it takes base_model, target_model, chat_models, skip_embed, special_tokens, dtype, out_dtype)`, path, at: 'key' };
      }
      const method = (data as { merge_method?: unknown } | null)?.merge_method;
      return { message: `${code(key)} belongs to merge_method chat_vector, not ${String(method)}`, path, at: 'key' };
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map(String);
      if (path.length === 1 && path[0] === 'merge_method') {
        if (typeof e.data !== 'string') return { message: `merge_method must be text, one of ${allowed.join(', ')} (got ${typeName(e.data)})`, path, at: 'value' };
        return { message: `merge_method ${code(String(e.data))} is not supported by chatvec; use one of ${allowed.join(', ')}${suggest(String(e.data), allowed)}`, path, at: 'value' };
      }
      return { message: `${label} must be one of ${allowed.join(', ')} (got ${typeName(e.data)})${suggest(String(e.data), allowed)}`, path, at: 'value' };
    }
    case 'type': {
      const expected = (e.params as { type: unknown }).type;
      if (path.length === 0 && (e.data === null || e.data === undefined)) {
        return { message: `the recipe is empty: start with \`merge_method:\` (one of ${MERGE_METHODS.join(', ')})`, path, at: 'value' };
      }
      if (e.data === null && expected === 'object' && parsed && isEmptyValue(parsed, path)) {
        return { message: `${label} is empty: put its entries on the lines below it, indented further`, path, at: 'key' };
      }
      if (path.length === 0) return { message: `a recipe is a mapping of keys (merge_method:, models: …), not ${typeName(e.data)}`, path, at: 'value' };
      const types = Array.isArray(expected) ? expected : [expected];
      if (typeof e.data === 'number' && (types.includes('number') || types.includes('integer'))) {
        const found = nonFiniteIn(e.data);
        if (found) return nonFiniteMessage(path, found, types.includes('number') ? 'a finite number' : 'a whole number');
      }
      return { message: `${label} must be ${expectedType(expected)} (got ${typeName(e.data)})`, path, at: 'value' };
    }
    case 'anyOf': {
      const last = path[path.length - 1];
      if (METHODS.some((m) => m.parameters.some((p) => p.name === last && p.type === 'boolean'))) {
        return { message: `${label} must be true or false, or a list of {filter, value} (got ${typeName(e.data)})`, path, at: 'value' };
      }
      // Every branch takes numbers: a NaN or ±Inf inside is the mistake, said at the number.
      const found = nonFiniteIn(e.data);
      if (found) return nonFiniteMessage(path, found);
      if (last === 'value') return { message: `${label} must be a number, a flag, or a list of numbers (got ${typeName(e.data)})`, path, at: 'value' };
      return { message: `${label} must be a number, a gradient (a list of numbers spread over the layers) or a list of {filter, value} (got ${typeName(e.data)})`, path, at: 'value' };
    }
    case 'minItems':
    case 'maxItems':
      if (path[path.length - 1] === 'layer_range') return { message: `${label} must be [first, end] (two layer numbers; end excluded)`, path, at: 'value' };
      return { message: `${label} must not be empty`, path, at: 'value' };
    case 'propertyNames':
      return { message: `${label}: keys must be token ids (whole numbers), e.g. 32003: 128009`, path, at: 'value' };
    case 'pattern':
      return e.schemaPath.includes('propertyNames') ? null : { message: `${label} ${e.message ?? 'is invalid'}`, path, at: 'value' };
    default:
      return { message: `${label} ${e.message ?? 'is invalid'}`, path, at: 'value' };
  }
}

/**
 * Validates recipe data against the schema.
 * @param parsed the document, used to explain indentation mistakes (optional)
 * @returns issues with paths, empty when the data is valid: errors, and warnings for the keys and
 *   parameters mergekit ignores (the schema file allows them; see `strict`)
 */
export function schemaIssues(data: unknown, parsed: ParsedRecipeText | null = null): RecipeIssue[] {
  const v = validate();
  if (v(data)) return [];
  const errors = v.errors ?? [];
  // An anyOf that failed reports each branch too, and a key that must not be there is reported
  // once: only their own message is useful, not the errors inside the value.
  const covering = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'false schema');
  const kept = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'false schema' || !covering.some((c) => e.instancePath === c.instancePath || e.instancePath.startsWith(c.instancePath + '/')));
  const issues: RecipeIssue[] = [];
  const seen = new Set<string>();
  for (const e of kept) {
    const m = messageFor(e, data, parsed);
    if (!m) continue;
    const id = `${m.path.join('/')}|${m.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    issues.push({ severity: m.severity ?? 'error', message: m.message, path: m.path, at: m.at });
  }
  return issues;
}
