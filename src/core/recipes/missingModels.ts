/**
 * The Hugging Face ids a recipe file names that the hub cache cannot serve yet, in every document
 * of a mergekit-multi file: what `chatvec merge --download` and the editor's Run Merge fetch before
 * running. A reference counts when the resolver would look it up in the cache (no local path has
 * that name, hub/resolveModelRef.ts) and the lookup fails: the id, its revision or its snapshot is
 * missing or incomplete — all mended by a download. References to another document's merge are
 * not models. Nothing here touches the network.
 */
import { isModelIdRef, resolveModelRef } from '../hub/resolveModelRef';
import { formatModelId, parseModelId } from '../hub/modelId';
import { documentGraph, modelReferences } from './multiDocument';

/** The parts of a reference that may be ids: itself, or each side of mergekit's `model+lora` form (when modelReferences left it whole). */
function candidates(value: string): string[] {
  if (parseModelId(value) !== null || !value.includes('+')) return [value];
  return value.split('+');
}

/**
 * Ids (`org/name` or `org/name@revision`, as written) named by the recipe text that are not usable
 * from the hub cache, each once, document by document (models before tokenizer sources).
 * @param baseDir the folder relative model paths resolve against (the recipe file's folder)
 * @returns an empty list when every id is cached (or the recipe names none); YAML errors are
 *   left to the recipe check (a document that does not parse names nothing here)
 */
export function missingRecipeModelIds(text: string, baseDir: string): string[] {
  const graph = documentGraph(text);
  const merges = new Set(graph.documents.map((d) => d.name).filter((n): n is string => n !== null));
  const out: string[] = [];
  for (const doc of graph.documents) {
    for (const ref of modelReferences(doc.parsed.data)) {
      // `name+adapter`: the name may be another document's merge, the adapter may still be an id.
      const parts = [...(merges.has(ref.value) ? [] : candidates(ref.value)), ...(ref.suffix ? candidates(ref.suffix.slice(1)) : [])];
      for (const c of parts) {
        if (!isModelIdRef(c, baseDir)) continue;
        try {
          resolveModelRef(c, baseDir);
        } catch {
          const id = formatModelId(parseModelId(c)!);
          if (!out.includes(id)) out.push(id);
        }
      }
    }
  }
  return out;
}
