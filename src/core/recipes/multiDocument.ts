/**
 * mergekit-multi files: several YAML documents (separated by `---`), each a recipe, each with an
 * optional `name:`; a model reference that equals another document's name means that merge's
 * output. This module is the pure part: split the file into documents that keep the file's lines
 * and offsets, find the references, order the documents so every merge runs after the merges it
 * uses, pick the final one, and report duplicate names, cycles and misplaced names at their line.
 *
 * Follows mergekit 0.1.4 (mergekit/scripts/multimerge.py): names are matched exactly against the
 * model path as written; references may point forwards or backwards in the file (the graph, not
 * the file order, decides); at most one document has no name. Differences: see docs/recipes.md.
 */
import { type Document, isMap, isScalar, parseAllDocuments } from 'yaml';
import type { RecipeIssue, RecipePath } from './types';
import { type ParsedRecipeText, offsetsOf, parseRecipeText } from './yamlSource';

/** A model reference to another document's merge. */
export interface MergeReference {
  /** The merge's name as written. */
  readonly name: string;
  /** Where it is written (the value node). */
  readonly path: RecipePath;
}

/** One non-empty YAML document of a recipe file. */
export interface RecipeDocument {
  /** 0-based position among the file's non-empty documents. */
  readonly index: number;
  /**
   * The file's text with every character outside this document blanked (newlines kept), so the
   * document parses on its own while lines, columns and offsets stay those of the file.
   */
  readonly text: string;
  readonly parsed: ParsedRecipeText;
  /** [start, end) character offsets of the document in the file. */
  readonly span: readonly [number, number];
  /** `name:` when it is text, else null. */
  readonly name: string | null;
  /** References to other documents' merges, in document order. */
  readonly uses: readonly MergeReference[];
}

export interface DocumentGraph {
  readonly documents: readonly RecipeDocument[];
  /** Document indexes in run order (dependencies first, else file order); empty after a cycle. */
  readonly order: readonly number[];
  /**
   * The merge written to the output: the document without `name:`, else the last document no
   * other document uses. Null when the file has errors that leave no single answer.
   */
  readonly final: number | null;
  /** Problems of the file as a whole (YAML syntax, names, cycles), located by `offsets`. */
  readonly issues: readonly RecipeIssue[];
}

/** True when `text` holds more than one non-empty YAML document (a mergekit-multi file). */
export function isMultiDocument(text: string): boolean {
  if (!/^(---|\.\.\.)/m.test(text)) return false;
  return parseAllDocuments(text).filter((d) => !isEmptyDocument(d)).length > 1;
}

function isEmptyDocument(d: Document.Parsed): boolean {
  const c = d.contents;
  return d.errors.length === 0 && (c === null || (isScalar(c) && (c.value === null || c.value === undefined)));
}

/** Blanks every character outside [start, end) except line breaks. */
function maskOutside(text: string, start: number, end: number): string {
  const blank = (s: string) => s.replace(/[^\r\n]/g, ' ');
  return blank(text.slice(0, start)) + text.slice(start, end) + blank(text.slice(end));
}

/** A name usable as a folder name on every platform mergekit and chatvec run on. */
function nameProblem(name: string): string | null {
  if (name.trim() === '') return 'is empty';
  if (/[/\\]/.test(name)) return 'contains a slash (it names a folder for the merge\'s output)';
  if (name === '.' || name === '..') return 'is not a folder name';
  if (Buffer.byteLength(name) > 200) return 'is longer than 200 bytes';
  return null;
}

const isObj = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object' && !Array.isArray(x);

/**
 * Every place a recipe names a model: base_model, models[] (entries or their `model`),
 * slices[].base_model and sources[], tokenizer_source (also `model:X`), tokenizer.source,
 * target_model and chat_models[] (chat_vector). `prefix` is what precedes the model in the value,
 * `suffix` what follows it (`+adapter`).
 */
export function modelReferences(data: unknown): { value: string; path: RecipePath; prefix: string; suffix: string }[] {
  const out: { value: string; path: RecipePath; prefix: string; suffix: string }[] = [];
  if (!isObj(data)) return out;
  // `name+adapter`: the model part may be an earlier merge, the adapter merged into it (mergekit-multi).
  const add = (v: unknown, path: RecipePath, prefix = '') => {
    if (typeof v !== 'string') return;
    const value = v.slice(prefix.length);
    const plus = value.indexOf('+');
    out.push(plus > 0 ? { value: value.slice(0, plus), path, prefix, suffix: value.slice(plus) } : { value, path, prefix, suffix: '' });
  };
  const entries = (list: unknown, path: RecipePath) => {
    if (!Array.isArray(list)) return;
    list.forEach((e, i) => (typeof e === 'string' ? add(e, [...path, i]) : isObj(e) && add(e.model, [...path, i, 'model'])));
  };
  add(data.base_model, ['base_model']);
  entries(data.models, ['models']);
  if (Array.isArray(data.slices)) {
    data.slices.forEach((s, i) => {
      if (!isObj(s)) return;
      add(s.base_model, ['slices', i, 'base_model']);
      entries(s.sources, ['slices', i, 'sources']);
    });
  }
  const tok = data.tokenizer_source;
  if (typeof tok === 'string') add(tok, ['tokenizer_source'], tok.startsWith('model:') ? 'model:' : '');
  if (isObj(data.tokenizer)) add(data.tokenizer.source, ['tokenizer', 'source']);
  add(data.target_model, ['target_model']);
  entries(data.chat_models, ['chat_models']);
  return out;
}

/**
 * A copy of recipe data with every model reference to a merge in `outputs` (name → folder)
 * replaced by that folder. Other values are kept as they are.
 */
export function substituteMerges<T>(data: T, outputs: ReadonlyMap<string, string>): T {
  const copy = structuredClone(data) as unknown;
  for (const r of modelReferences(copy)) {
    const folder = outputs.get(r.value);
    if (folder === undefined) continue;
    let node = copy as Record<string | number, unknown>;
    for (const seg of r.path.slice(0, -1)) node = node[seg] as Record<string | number, unknown>;
    node[r.path[r.path.length - 1]!] = r.prefix + folder + r.suffix;
  }
  return copy as T;
}

/**
 * Splits a recipe file into documents, finds the references between them and orders them.
 * Never throws; problems become issues with offsets into `text`.
 */
export function documentGraph(text: string): DocumentGraph {
  const issues: RecipeIssue[] = [];
  const all = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: false });
  const yamlDocs = Array.isArray(all) ? all : [];
  for (const d of yamlDocs) {
    for (const e of d.errors) issues.push({ severity: 'error', message: `YAML: ${e.message.split('\n')[0]!.trim()}`, offsets: [e.pos[0], Math.max(e.pos[1], e.pos[0] + 1)] });
  }
  if (issues.length) return { documents: [], order: [], final: null, issues };
  const pre: Omit<RecipeDocument, 'uses'>[] = [];
  const kept = yamlDocs.map((d, i) => ({ d, i })).filter(({ d }) => !isEmptyDocument(d));
  for (const { d, i } of kept) {
    // From the end of the previous YAML document (its `---` line included) to the end of this one.
    const start = i === 0 ? 0 : yamlDocs[i - 1]!.range[2];
    const end = i === yamlDocs.length - 1 ? text.length : d.range[2];
    const masked = maskOutside(text, start, end);
    const parsed = parseRecipeText(masked);
    const nameNode = isMap(parsed.doc.contents) ? parsed.doc.contents.get('name', true) : undefined;
    const name = isScalar(nameNode) && typeof nameNode.value === 'string' ? nameNode.value : null;
    pre.push({ index: pre.length, text: masked, parsed, span: [start, end], name });
  }
  const at = (doc: Omit<RecipeDocument, 'uses'>, path: RecipePath, where: 'key' | 'value' = 'value') => offsetsOf(doc.parsed, path, where);

  // Names: unique, usable as folder names; at most one document without one.
  const byName = new Map<string, number>();
  let unnamed: number | null = null;
  for (const doc of pre) {
    if (doc.name === null) {
      if (unnamed !== null) {
        issues.push({ severity: 'error', message: `two documents have no \`name:\` (the other starts at line ${lineOf(text, pre[unnamed]!.span[0])}): only the final merge may go without one; name this one so later documents can use it`, offsets: at(doc, ['merge_method'], 'key') });
      } else unnamed = doc.index;
      continue;
    }
    const bad = nameProblem(doc.name);
    if (bad) issues.push({ severity: 'error', message: `the merge name \`${doc.name}\` ${bad}`, offsets: at(doc, ['name']) });
    const first = byName.get(doc.name);
    if (first !== undefined) {
      issues.push({ severity: 'error', message: `the merge name \`${doc.name}\` is already used by the document at line ${lineOf(text, pre[first]!.span[0])}; names must be unique`, offsets: at(doc, ['name']) });
    } else byName.set(doc.name, doc.index);
  }
  const documents: RecipeDocument[] = pre.map((doc) => ({
    ...doc,
    uses: modelReferences(doc.parsed.data)
      .filter((r) => byName.has(r.value))
      .map((r) => ({ name: r.value, path: r.path })),
  }));

  // Cycles: each reference on a cycle is an error at its place.
  const deps = (d: number) => documents[d]!.uses.map((u) => byName.get(u.name)!);
  const onCycle = cycles(documents.length, deps);
  for (const cycle of onCycle) {
    const names = cycle.map((d) => `\`${documents[d]!.name ?? 'the final merge'}\``);
    const loop = [...names, names[0]!].join(' → ');
    for (let k = 0; k < cycle.length; k++) {
      const doc = documents[cycle[k]!]!;
      const next = documents[cycle[(k + 1) % cycle.length]!]!;
      for (const u of doc.uses.filter((x) => x.name === next.name)) {
        const message = cycle.length === 1 ? `the merge \`${doc.name}\` uses its own output (a cycle); name another model here` : `the merges use each other in a cycle (${loop}); a merge may only use merges that do not use it`;
        issues.push({ severity: 'error', message, offsets: at(doc, u.path) });
      }
    }
  }
  const order = onCycle.length ? [] : topologicalOrder(documents.length, deps);
  const used = new Set(documents.flatMap((d) => d.uses.map((u) => u.name)));
  let final: number | null = unnamed;
  if (final === null) {
    const sinks = documents.filter((d) => d.name !== null && !used.has(d.name));
    final = sinks.length ? sinks[sinks.length - 1]!.index : null;
  }
  issues.sort((a, b) => a.offsets![0] - b.offsets![0]);
  return { documents, order, final, issues };
}

/** 1-based line of an offset. */
function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  // The document's first content line, not the `---` above it.
  const rest = text.slice(offset);
  const m = /^(?:\s*(?:#[^\n]*|---[^\n]*)?\n)*/.exec(rest);
  if (m) for (const ch of m[0]) if (ch === '\n') line++;
  return line;
}

/** The cycles of a graph (each as its nodes in order), found by depth-first search in node order. */
function cycles(n: number, deps: (i: number) => number[]): number[][] {
  const state = new Array<0 | 1 | 2>(n).fill(0);
  const stack: number[] = [];
  const found: number[][] = [];
  const visit = (i: number) => {
    state[i] = 1;
    stack.push(i);
    for (const j of new Set(deps(i))) {
      if (state[j] === 1) found.push(stack.slice(stack.indexOf(j)));
      else if (state[j] === 0) visit(j);
    }
    stack.pop();
    state[i] = 2;
  };
  for (let i = 0; i < n; i++) if (state[i] === 0) visit(i);
  return found;
}

/** Kahn's algorithm, always taking the earliest ready document: file order where the graph allows. */
function topologicalOrder(n: number, deps: (i: number) => number[]): number[] {
  const waiting = Array.from({ length: n }, (_, i) => new Set(deps(i)));
  const order: number[] = [];
  const done = new Set<number>();
  while (order.length < n) {
    const next = waiting.findIndex((w, i) => !done.has(i) && [...w].every((d) => done.has(d)));
    if (next < 0) break;
    done.add(next);
    order.push(next);
  }
  return order;
}

/** The documents `final` needs, itself included (transitively, by the references). */
export function neededBy(graph: DocumentGraph, final: number): Set<number> {
  const byName = new Map(graph.documents.filter((d) => d.name !== null).map((d) => [d.name!, d.index]));
  const need = new Set<number>();
  const walk = (i: number) => {
    if (need.has(i)) return;
    need.add(i);
    for (const u of graph.documents[i]!.uses) walk(byName.get(u.name)!);
  };
  walk(final);
  return need;
}
