/**
 * Recipe text → YAML document with positions. Every later check reports a path into the document
 * (["models", 0, "parameters", "weight"]); this module turns such paths and YAML syntax errors into
 * line/column ranges, so the CLI and the editor point at the same place.
 */
import { type Document, LineCounter, type Node, isMap, isPair, isScalar, isSeq, parseDocument } from 'yaml';
import type { RecipeIssue, RecipePath } from './types';

export interface ParsedRecipeText {
  readonly text: string;
  readonly doc: Document.Parsed;
  readonly lineCounter: LineCounter;
  /** The plain data (null for an empty document). */
  readonly data: unknown;
  /** YAML syntax errors and warnings. */
  readonly issues: RecipeIssue[];
}

/** A range in the text: 0-based lines and columns (UTF-16 code units), end exclusive. */
export interface TextRange {
  readonly line: number;
  readonly column: number;
  readonly endLine: number;
  readonly endColumn: number;
}

/** Parses recipe text; never throws (syntax errors become issues). */
export function parseRecipeText(text: string): ParsedRecipeText {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const issues: RecipeIssue[] = [];
  for (const e of doc.errors) issues.push({ severity: 'error', message: `YAML: ${firstLine(e.message)}`, offsets: [e.pos[0], Math.max(e.pos[1], e.pos[0] + 1)] });
  for (const w of doc.warnings) issues.push({ severity: 'warning', message: `YAML: ${firstLine(w.message)}`, offsets: [w.pos[0], Math.max(w.pos[1], w.pos[0] + 1)] });
  let data: unknown = null;
  if (doc.errors.length === 0) {
    try {
      data = doc.toJS({ maxAliasCount: 1000 }) ?? null;
    } catch (e) {
      issues.push({ severity: 'error', message: `YAML: ${(e as Error).message}`, offsets: [0, 1] });
    }
  }
  return { text, doc, lineCounter, data, issues };
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return typeof key === 'string' || typeof key === 'number' ? String(key) : undefined;
}

interface Located {
  /** The deepest node reached. */
  readonly node: Node | null;
  /** The key node of the last map step, when the last step was through a map. */
  readonly key: Node | null;
  /** True when the whole path was found. */
  readonly complete: boolean;
}

/** Walks `path` through the document's maps and sequences. */
export function locate(doc: Document.Parsed, path: RecipePath): Located {
  let node: Node | null = (doc.contents as Node | null) ?? null;
  let key: Node | null = null;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && keyText(p.key) === String(seg));
      if (!pair) return { node, key, complete: false };
      key = (pair.key as Node | null) ?? null;
      node = (pair.value as Node | null) ?? null;
      if (node === null) return { node: key, key, complete: true };
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)] as Node | undefined;
      if (item === undefined) return { node, key, complete: false };
      node = item;
      key = null;
    } else {
      return { node, key, complete: false };
    }
  }
  return { node, key, complete: true };
}

/**
 * Character offsets of a path's value (or key). A value spanning several lines is cut to its
 * first line so a squiggle stays readable; an empty value falls back to its key.
 */
export function offsetsOf(parsed: ParsedRecipeText, path: RecipePath, at: 'key' | 'value' = 'value'): [number, number] {
  const loc = locate(parsed.doc, path);
  const pick = at === 'key' && loc.key && loc.complete ? loc.key : loc.node;
  let range = pick?.range;
  if (range && range[1] <= range[0] && loc.key?.range) range = loc.key.range;
  if (!range) {
    // An empty document or an unreachable path: the first line.
    const end = parsed.text.indexOf('\n');
    return [0, end < 0 ? parsed.text.length : end];
  }
  const start = range[0];
  let end = Math.max(range[1], range[0] + 1);
  const nl = parsed.text.indexOf('\n', start);
  if (nl >= 0 && nl < end) end = Math.max(start + 1, trimRight(parsed.text, start, nl));
  return [start, end];
}

function trimRight(text: string, start: number, end: number): number {
  let e = end;
  while (e > start && /\s/.test(text[e - 1]!)) e--;
  return e;
}

/** Offsets → 0-based line/column range. */
export function rangeOf(parsed: ParsedRecipeText, offsets: readonly [number, number]): TextRange {
  const a = parsed.lineCounter.linePos(Math.min(offsets[0], parsed.text.length));
  const b = parsed.lineCounter.linePos(Math.min(offsets[1], parsed.text.length));
  return { line: a.line - 1, column: a.col - 1, endLine: b.line - 1, endColumn: b.col - 1 };
}

/** Where an issue is in the text. */
export function issueRange(parsed: ParsedRecipeText, issue: RecipeIssue): TextRange {
  const offsets = issue.offsets ?? offsetsOf(parsed, issue.path ?? [], issue.at ?? 'value');
  return rangeOf(parsed, offsets);
}

/** Whether the value at `path` is written but empty (`parameters:` with nothing under it). */
export function isEmptyValue(parsed: ParsedRecipeText, path: RecipePath): boolean {
  const loc = locate(parsed.doc, path);
  if (!loc.complete) return false;
  return loc.node === loc.key || (isScalar(loc.node) && (loc.node.value === null || loc.node.value === undefined));
}

/** "models[0].parameters.weight" for messages. */
export function pathLabel(path: RecipePath): string {
  let s = '';
  for (const seg of path) s += typeof seg === 'number' ? `[${seg}]` : s ? `.${seg}` : seg;
  return s || 'the recipe';
}
