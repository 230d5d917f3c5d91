/**
 * The input models a recipe names, read from its YAML without validating it (a recipe with a
 * schema error elsewhere can still have its inputs compared). Paths are resolved the way the
 * engine resolves them: relative to the recipe file's folder.
 */
import * as path from 'node:path';
import { parse } from 'yaml';

export interface RecipeInputs {
  readonly method: string | undefined;
  readonly base: string | undefined;
  /** chat_vector: the target (CP) model. */
  readonly target: string | undefined;
  /** `models[].model`, `slices[].sources[].model` or `chat_models[].model`, in order, resolved, without repeats. */
  readonly models: readonly string[];
}

const isObj = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object' && !Array.isArray(x);

/** The model path of a `models:` entry: `{model: PATH}` or mergekit's short form `PATH`. */
function modelOf(entry: unknown): string | undefined {
  if (typeof entry === 'string') return entry;
  if (isObj(entry) && typeof entry.model === 'string') return entry.model;
  return undefined;
}

/** @throws Error when the text is not YAML at all */
export function recipeInputs(text: string, recipeDir: string): RecipeInputs {
  const doc: unknown = parse(text, { uniqueKeys: false });
  if (!isObj(doc)) return { method: undefined, base: undefined, target: undefined, models: [] };
  const resolve = (p: string | undefined) => (p === undefined || p.trim() === '' ? undefined : path.resolve(recipeDir, p.trim()));
  const list: string[] = [];
  const add = (p: string | undefined) => {
    const r = resolve(p);
    if (r && !list.includes(r)) list.push(r);
  };
  for (const key of ['models', 'chat_models'] as const) {
    const v = doc[key];
    if (Array.isArray(v)) for (const m of v) add(modelOf(m));
  }
  if (Array.isArray(doc.slices)) {
    for (const s of doc.slices) if (isObj(s) && Array.isArray(s.sources)) for (const src of s.sources) add(modelOf(src));
  }
  return {
    method: typeof doc.merge_method === 'string' ? doc.merge_method : undefined,
    base: resolve(typeof doc.base_model === 'string' ? doc.base_model : undefined),
    target: resolve(typeof doc.target_model === 'string' ? doc.target_model : undefined),
    models: list,
  };
}

/**
 * The two checkpoints "Compare Inputs" shows: the base model against the first other model (for
 * chat_vector the chat model, so the tree shows the chat vector; without a base, the first two).
 */
export function comparedInputs(i: RecipeInputs): { a: string; b: string } | undefined {
  const a = i.base ?? i.models[0];
  const b = i.models.find((m) => m !== a) ?? (i.target !== a ? i.target : undefined);
  return a && b ? { a, b } : undefined;
}
