/**
 * Recipe files with one or several documents (mergekit-multi), checked, summarised and run as a
 * whole. A one-document file goes through recipe.ts unchanged. In a multi-document file each
 * document is checked on its own text (multiDocument.ts keeps the file's lines), with references
 * to other merges replaced by the folders those merges are written to; a document whose inputs
 * are not made yet is checked as far as possible without them and planned when they exist.
 *
 * Running: the merges the final one needs, in dependency order. Named merges go to a temporary
 * folder next to the output (`.OUT.partial-…`, created and removed by this tool only, swept like any
 * partial output if the process dies) or, with `intermediateDir`, to `DIR/<name>`, kept and reused
 * on the next run when their recorded recipe is unchanged (mergekit-multi's "lazy" mode).
 */
import { LineCounter } from 'yaml';
import { ChatVecError, throwIfCancelled } from '../errors';
import { AtomicOutputDir } from '../io/atomicOutput';
import { entryKind } from '../io/files';
import { OUTPUT_MARKER, checkOutputTarget } from '../io/outputGuard';
import { dirname, join, resolve } from '../io/paths';
import { readSmallText, readSmallTextOrNull } from '../io/sideFile';
import type { JobContext, JobOutcome } from '../jobs/types';
import { type DocumentGraph, type RecipeDocument, documentGraph, isMultiDocument, modelReferences, neededBy, substituteMerges } from './multiDocument';
import { type CheckedRecipe, type RecipeCheckOptions, checkRecipeText, formatIssue } from './recipe';
import { type MergeRunOptions, runMergePlan } from './run';
import { suggest } from './schema';
import { type PlanSummary, summarizePlan } from './summary';
import type { RecipeIssue, ResolvedRecipe } from './types';
import { type ParsedRecipeText, offsetsOf, parseRecipeText } from './yamlSource';

export interface RecipeFileOptions extends Omit<RecipeCheckOptions, 'substitute'> {
  /**
   * Multi-document files: the folder that keeps the named merges (`DIR/<name>`; relative to the
   * working directory). Without it they go to a temporary folder and are removed after the run.
   */
  readonly intermediateDir?: string;
}

/** What a document's merge is for. */
export type DocumentRole = 'final' | 'intermediate' | 'unused';

export interface CheckedDocument {
  readonly doc: RecipeDocument;
  readonly checked: CheckedRecipe;
  readonly role: DocumentRole;
  /** Merges it uses whose output does not exist yet (it is planned once they are made). */
  readonly waitingFor: readonly string[];
  /** Its kept output in the intermediate folder is up to date and will be used as it is. */
  readonly reused: boolean;
  /** Where its output goes: null for the final merge (the output) and for a temporary folder. */
  readonly keptAt: string | null;
}

export interface CheckedRecipeFile {
  readonly text: string;
  /** The whole file, for the ranges of `issues`. */
  readonly parsed: ParsedRecipeText;
  /** Null for a one-document recipe. */
  readonly graph: DocumentGraph | null;
  /** Every document, in run order (documents on a cycle: file order). */
  readonly documents: readonly CheckedDocument[];
  /** Every issue, in file order. */
  readonly issues: readonly RecipeIssue[];
  /** Where each named merge is (or will be) written, as the check resolved references to it. */
  readonly mergeFolders: ReadonlyMap<string, string>;
}

/** The text recorded as mergekit_config.yml in a merge's output (the check for reuse compares it). */
function recordText(s: string): string {
  return s.endsWith('\n') ? s : s + '\n';
}

function docRecord(file: string, doc: RecipeDocument): string {
  return recordText(file.slice(doc.span[0], doc.span[1]).replace(/^\s*---[^\n]*\n/, ''));
}

/**
 * Checks recipe text with one or several documents as far as `depth` allows; never throws for
 * problems of the recipe or its models. Issues carry offsets into `text`.
 */
export function checkRecipeFileText(text: string, opts: RecipeFileOptions = {}): CheckedRecipeFile {
  if (!isMultiDocument(text)) {
    const checked = checkRecipeText(text, opts);
    const doc: RecipeDocument = { index: 0, text, parsed: checked.parsed, span: [0, text.length], name: null, uses: [] };
    return { text, parsed: checked.parsed, graph: null, documents: [{ doc, checked, role: 'final', waitingFor: [], reused: false, keptAt: null }], issues: checked.issues, mergeFolders: new Map() };
  }
  const graph = documentGraph(text);
  const issues: RecipeIssue[] = [...graph.issues];
  const documents: CheckedDocument[] = [];
  const baseDir = opts.recipePath ? dirname(resolve(opts.recipePath)) : resolve(opts.baseDir ?? '.');
  const kept = opts.intermediateDir !== undefined ? resolve(opts.intermediateDir) : null;
  // Where each named merge will be (without a kept folder: a stand-in until the run picks its temporary folder).
  const folder = new Map(graph.documents.filter((d) => d.name !== null).map((d) => [d.name!, join(kept ?? join(baseDir, '.chatvec-intermediates'), d.name!)]));
  if (graph.documents.length) {
    const need = graph.final !== null ? neededBy(graph, graph.final) : new Set<number>();
    const ready = new Set<string>();
    const order = graph.order.length ? graph.order : graph.documents.map((d) => d.index);
    for (const i of order) {
      const doc = graph.documents[i]!;
      const role: DocumentRole = i === graph.final ? 'final' : kept !== null || need.has(i) ? 'intermediate' : 'unused';
      const waitingFor = [...new Set(doc.uses.map((u) => u.name).filter((n) => !ready.has(n)))];
      const depth = waitingFor.length && (opts.depth ?? 'headers') === 'headers' ? 'folders' : opts.depth;
      const checked = checkRecipeText(doc.text, { ...opts, depth, substitute: (raw) => substituteMerges(raw, folder) });
      const waitingAt = new Set(doc.uses.filter((u) => waitingFor.includes(u.name)).map((u) => JSON.stringify(u.path)));
      const refs = new Map(modelReferences(doc.parsed.data).map((r) => [JSON.stringify(r.path), r.value]));
      for (const issue of checked.issues) {
        const where = JSON.stringify(issue.path ?? null);
        // A merge that is not made yet is not missing.
        if (issue.severity === 'error' && waitingAt.has(where)) continue;
        // A model that is not there may be a misspelt merge name.
        const ref = issue.severity === 'error' ? refs.get(where) : undefined;
        const hint = ref !== undefined && !folder.has(ref) ? suggest(ref, [...folder.keys()]).replace('did you mean', 'did you mean the merge') : '';
        issues.push({ ...issue, message: byName(issue.message, folder) + hint, offsets: issue.offsets ?? offsetsOf(doc.parsed, issue.path ?? [], issue.at ?? 'value') });
      }
      if (role === 'unused') {
        issues.push({
          severity: 'warning',
          message: `the merge \`${doc.name}\` is not used by the final merge and is not run; with --intermediate-dir DIR every named merge is made and kept in DIR, as mergekit-multi does`,
          offsets: offsetsOf(doc.parsed, ['name']),
        });
      }
      const keptAt = role === 'intermediate' && kept !== null ? folder.get(doc.name!)! : null;
      // Reused only when every merge it uses is reused too: a merge made again may differ.
      const reused = keptAt !== null && waitingFor.length === 0 && upToDate(keptAt, docRecord(text, doc));
      if (reused && doc.name !== null) ready.add(doc.name);
      documents.push({ doc, checked, role, waitingFor, reused, keptAt });
    }
  }
  issues.sort((a, b) => a.offsets![0] - b.offsets![0]);
  return { text, parsed: wholeFile(text), graph, documents, issues, mergeFolders: folder };
}

/**
 * The whole file for locating issues by offset. (parseDocument stops counting lines at the second
 * document, so the line starts are counted here.)
 */
function wholeFile(text: string): ParsedRecipeText {
  const lineCounter = new LineCounter();
  lineCounter.addNewLine(0);
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lineCounter.addNewLine(i + 1);
  return { ...parseRecipeText(''), text, lineCounter, issues: [] };
}

/** A message with the folders of merges named by the merges' names (the folder may not exist yet). */
function byName(message: string, folders: ReadonlyMap<string, string>): string {
  let m = message;
  for (const [name, f] of folders) m = m.split(f).join(`\`${name}\``);
  return m;
}

/** An earlier output of chatvec at `dir` made from exactly `record`. */
function upToDate(dir: string, record: string): boolean {
  if (entryKind(join(dir, OUTPUT_MARKER)) !== 'file') return false;
  return readSmallTextOrNull(join(dir, 'mergekit_config.yml'), 'recipe') === record;
}

/**
 * Throws the recipe's errors as one ChatVecError (file:line:col lines, as loadRecipeFile).
 * @throws ChatVecError InvalidArgument when `file` has errors
 */
export function throwRecipeFileErrors(label: string, file: CheckedRecipeFile): void {
  const errors = file.issues.filter((i) => i.severity === 'error');
  const single = file.graph === null ? file.documents[0]!.checked.plan : true;
  if (!errors.length && single) return;
  const lines = (errors.length ? errors : file.issues).map((i) => formatIssue(label, file.parsed, i));
  throw new ChatVecError('InvalidArgument', `${label}: the recipe has ${errors.length || 'unresolved'} error${errors.length === 1 ? '' : 's'}:\n${lines.join('\n')}`);
}

/**
 * Reads and checks a recipe file (one or several documents) down to plans where inputs exist.
 * @throws ChatVecError InvalidArgument listing every error (file:line:col: …); Io when unreadable
 */
export function loadRecipeFileAll(path: string, opts: Omit<RecipeFileOptions, 'recipePath' | 'depth'> = {}): CheckedRecipeFile {
  const abs = resolve(path);
  const file = checkRecipeFileText(readSmallText(abs, 'recipe'), { ...opts, recipePath: abs, depth: 'headers' });
  throwRecipeFileErrors(path, file);
  return file;
}

/** One document in the dry run. */
export interface DocumentPlanSummary {
  /** 1-based line of the document's first content line. */
  readonly line: number;
  readonly name: string | null;
  readonly role: DocumentRole;
  /** The merges it uses. */
  readonly uses: readonly string[];
  readonly reused: boolean;
  /** The kept intermediate folder, when there is one. */
  readonly keptAt: string | null;
  /** Null while it waits for merges that are not made yet. */
  readonly plan: PlanSummary | null;
  readonly waitingFor: readonly string[];
}

/** The dry run of every document, in run order (documents that are not run last). */
export function summarizeRecipeFile(file: CheckedRecipeFile, threads: number): DocumentPlanSummary[] {
  const docs = [...file.documents].sort((a, b) => Number(a.role === 'unused') - Number(b.role === 'unused'));
  return docs.map((d) => ({
    line: file.parsed.lineCounter.linePos(offsetsOf(d.doc.parsed, [])[0]).line,
    name: d.doc.name,
    role: d.role,
    uses: [...new Set(d.doc.uses.map((u) => u.name))],
    reused: d.reused,
    keptAt: d.keptAt,
    plan: d.checked.plan ? summarizePlan(d.checked.plan, threads) : null,
    waitingFor: d.waitingFor,
  }));
}

/** Every path a resolved recipe reads. */
function inputPaths(r: ResolvedRecipe): string[] {
  const cv = r.chatVector;
  const models = [...r.slices.flatMap((s) => s.sources.map((x) => x.model)), ...(r.tokenizerFrom ? [r.tokenizerFrom] : []), ...(cv ? [cv.base, cv.target, ...cv.chats.map((c) => c.model)] : [])];
  return models.flatMap((m) => [m.path, ...(m.adapter ? [m.adapter] : [])]);
}

/**
 * Runs a recipe file: one document into `opts.out`, or every merge the final one needs in
 * dependency order (the final into `opts.out`). Nothing is computed before every output path
 * has passed the output rules; temporary merges are removed whether the run succeeds or not.
 * @throws as loadRecipeFileAll and runMergePlan; CancelledError between merges
 */
export async function runRecipeFileAll(path: string, opts: Omit<MergeRunOptions, 'recipeText' | 'recipePath'> & { readonly intermediateDir?: string }, ctx: JobContext = {}, check: Omit<RecipeFileOptions, 'recipePath' | 'depth' | 'intermediateDir'> = {}): Promise<JobOutcome> {
  const abs = resolve(path);
  const file = loadRecipeFileAll(path, { ...check, intermediateDir: opts.intermediateDir });
  for (const w of file.issues.filter((i) => i.severity === 'warning')) ctx.onLog?.('warn', formatIssue(path, file.parsed, w));
  if (file.graph === null) return runMergePlan(file.documents[0]!.checked.plan!, { ...opts, recipePath: abs, recipeText: file.text }, ctx);

  const runs = file.documents.filter((d) => d.role !== 'unused' && !d.reused);
  const made = new Set(file.mergeFolders.values());
  const inputs = [abs, ...new Set(file.documents.flatMap((d) => (d.checked.recipe ? inputPaths(d.checked.recipe) : [])))].filter((p) => !made.has(p));
  // Every output path is checked before the first merge starts (hours may pass before the last).
  for (const d of runs) checkOutputTarget({ out: d.keptAt ?? opts.out, overwrite: opts.overwrite === true, inputs });
  const temp = opts.intermediateDir === undefined ? AtomicOutputDir.begin(opts.out, { overwrite: opts.overwrite === true, inputs, tag: `merges-${Date.now().toString(36)}` }) : null;
  const folders = new Map<string, string>();
  for (const d of file.documents) if (d.doc.name !== null) folders.set(d.doc.name, d.keptAt ?? (temp ? temp.file(d.doc.name) : ''));
  const started = performance.now();
  const warnings: string[] = [];
  let bytes = 0;
  let last: JobOutcome | null = null;
  try {
    for (const [k, d] of runs.entries()) {
      throwIfCancelled(ctx.signal);
      const label = d.doc.name ?? 'the final merge';
      const out = d.role === 'final' ? opts.out : folders.get(d.doc.name!)!;
      ctx.onLog?.('info', `merge ${k + 1} of ${runs.length}: ${label} → ${out}`);
      // Checked again now that the merges it uses exist: planned from their headers.
      const checked = checkRecipeText(d.doc.text, { ...check, recipePath: abs, depth: 'headers', substitute: (raw) => substituteMerges(raw, folders) });
      const errors = checked.issues.filter((i) => i.severity === 'error');
      if (errors.length || !checked.plan) {
        const lines = errors.map((i) => formatIssue(path, { ...checked.parsed, text: file.text }, { ...i, message: byName(i.message, folders) }));
        throw new ChatVecError('InvalidArgument', `${path}: the merge ${label} cannot run:\n${lines.join('\n')}`);
      }
      const record = d.role === 'final' ? file.text : docRecord(file.text, d.doc);
      // Earlier merges by name: a temporary folder's path means nothing after the run.
      const inputLabels = new Map([...folders].map(([name, f]) => [f, name]));
      const res = await runMergePlan(checked.plan, { ...opts, out, overwrite: d.keptAt !== null || d.role === 'final' ? opts.overwrite : false, recipePath: abs, recipeText: record, inputLabels }, ctx);
      bytes += res.bytesWritten;
      warnings.push(...res.warnings.map((w) => (d.role === 'final' ? w : `${label}: ${w}`)));
      last = res;
    }
  } finally {
    temp?.abort();
  }
  for (const d of file.documents.filter((x) => x.reused)) ctx.onLog?.('info', `${d.doc.name}: reused ${d.keptAt} (its recipe is unchanged)`);
  return { ...last!, out: opts.out, bytesWritten: bytes, seconds: (performance.now() - started) / 1000, warnings };
}
