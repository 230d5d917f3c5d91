/**
 * Which YAML documents are merge recipes. Users keep recipes under any name (mergekit's docs use
 * `config.yml`), so the content decides: a top-level `merge_method:` key. Files named like a
 * recipe (`*.merge.yaml`, `mergekit*.yaml`) count even before that key is typed, so a new file
 * gets diagnostics ("merge_method is missing") from its first line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as vscode from 'vscode';
import { LineCounter, isMap, isScalar, parseAllDocuments } from 'yaml';

/** The CodeLens and diagnostics document filter: YAML in files and unsaved editors. */
export const RECIPE_SELECTOR: vscode.DocumentSelector = [
  { language: 'yaml', scheme: 'file' },
  { language: 'yaml', scheme: 'untitled' },
];

/** A top-level `merge_method:` key (not indented, not in a comment). */
const MERGE_METHOD_KEY = /^merge_method[ \t]*:/m;

/** Recipe file names: `*.merge.yaml` (this extension's convention) and `mergekit*.yaml`. */
const RECIPE_NAME = /(\.merge\.ya?ml|^mergekit[^/\\]*\.ya?ml)$/i;

export function isRecipeName(fileName: string): boolean {
  return RECIPE_NAME.test(path.basename(fileName));
}

export function isRecipeText(text: string): boolean {
  return MERGE_METHOD_KEY.test(text);
}

/**
 * `mergekit_config.yml` in a checkpoint folder (beside `config.json`) is the record of how that
 * model was merged (mergekit and `chatvec merge` write it): its relative paths meant something
 * where the recipe was, not here, so it is neither checked nor offered as a task.
 */
export function isMergeRecord(fsPath: string): boolean {
  return path.basename(fsPath).toLowerCase() === 'mergekit_config.yml' && fs.existsSync(path.join(path.dirname(fsPath), 'config.json'));
}

/** True for a YAML document (file or untitled) that is or looks like a merge recipe. */
export function isRecipeDocument(doc: vscode.TextDocument): boolean {
  if (doc.uri.scheme !== 'file' && doc.uri.scheme !== 'untitled') return false;
  if (doc.uri.scheme === 'file' && isMergeRecord(doc.uri.fsPath)) return false;
  const yaml = doc.languageId === 'yaml' || /\.ya?ml$/i.test(doc.fileName);
  return yaml && (isRecipeName(doc.fileName) || isRecipeText(doc.getText()));
}

/** The 0-based line of the top-level `merge_method:` key, else 0 (where CodeLens goes). */
export function mergeMethodLine(text: string): number {
  const m = MERGE_METHOD_KEY.exec(text);
  if (!m) return 0;
  let line = 0;
  for (let i = 0; i < m.index; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * The 0-based `merge_method:` line of each non-empty YAML document (its first line when it has
 * none): one entry for a plain recipe, several for a mergekit-multi file. Unparsable text: the
 * one line {@link mergeMethodLine} finds.
 */
export function mergeMethodLines(text: string): number[] {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, uniqueKeys: false });
  if (!Array.isArray(docs) || docs.length < 2 || docs.some((d) => d.errors.length)) return [mergeMethodLine(text)];
  const lines: number[] = [];
  for (const d of docs) {
    const c = d.contents;
    if (c === null || (isScalar(c) && (c.value === null || c.value === undefined))) continue;
    const key = isMap(c) ? c.items.find((p) => isScalar(p.key) && p.key.value === 'merge_method')?.key : undefined;
    const at = (isScalar(key) ? key.range?.[0] : undefined) ?? c.range?.[0] ?? 0;
    lines.push(lc.linePos(at).line - 1);
  }
  return lines.length ? lines : [mergeMethodLine(text)];
}

/**
 * The path the task host resolves relative model paths against: the file itself, or for an
 * untitled document a file in the first workspace folder (else the home folder).
 */
export function recipePathOf(doc: vscode.TextDocument, workspaceFolder: string | undefined, home: string): string {
  if (doc.uri.scheme === 'file') return doc.uri.fsPath;
  return path.join(workspaceFolder ?? home, `${path.basename(doc.uri.path) || 'untitled'}.yaml`);
}
