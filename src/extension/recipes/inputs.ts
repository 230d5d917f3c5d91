/**
 * The input models a recipe names, read from its YAML without validating it (a recipe with a
 * schema error elsewhere can still have its inputs compared). Paths are resolved the way the
 * engine resolves them: relative to the recipe file's folder.
 */
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';

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

/**
 * The recipe documents of a file: one, or several in a mergekit-multi file (`---` between them),
 * empty documents left out.
 * @throws Error when the text is not YAML at all
 */
export function recipeDocuments(text: string): unknown[] {
  const docs = parseAllDocuments(text, { uniqueKeys: false });
  if (!Array.isArray(docs)) return [];
  const bad = docs.find((d) => d.errors.length);
  if (bad) throw new Error(bad.errors[0]!.message.split('\n')[0]);
  return docs.map((d) => d.toJS() as unknown).filter((d) => d !== null && d !== undefined);
}

/**
 * The inputs of one document: `document` counts the file's non-empty documents from 0; by default
 * the final merge (the document without `name:`, else the last). A model named like another
 * document's merge is that merge's output, which is not a checkpoint yet: it is left out.
 * @throws Error when the text is not YAML at all
 */
export function recipeInputs(text: string, recipeDir: string, document?: number): RecipeInputs {
  const docs = recipeDocuments(text);
  const names = new Set(docs.flatMap((d) => (isObj(d) && typeof d.name === 'string' ? [d.name] : [])));
  const unnamed = docs.findIndex((d) => !isObj(d) || typeof d.name !== 'string');
  const doc = docs[document ?? (unnamed >= 0 ? unnamed : docs.length - 1)];
  if (!isObj(doc)) return { method: undefined, base: undefined, target: undefined, models: [] };
  const resolve = (p: string | undefined) => (p === undefined || p.trim() === '' || (docs.length > 1 && names.has(p)) ? undefined : path.resolve(recipeDir, p.trim()));
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
