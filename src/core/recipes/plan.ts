/**
 * Planning a recipe from checkpoint headers only: which output tensors exist (pre-layer tensors,
 * the layers of every slice renumbered in order, post-layer tensors), which input tensor of each
 * source feeds them, their shapes and dtypes, and every parameter's value per tensor and model.
 * Everything that can be wrong with the inputs is found here, before any data is read, and
 * reported at the recipe path of the model concerned.
 */
import { type CatalogueEntry, type Checkpoint, openCheckpoint, rowsCounterpart } from '../checkpoint/checkpoint';
import { type TensorRole, isTowerRole, isVocabTensor } from '../checkpoint/layers';
import { requireUnquantized } from '../checkpoint/quantization';
import { openAdaptedModel } from '../lora/adaptedModel';
import { adapterLine } from '../lora/inspectAdapter';
import { modelKey } from './normalize';
import { toChatVecError } from '../errors';
import { requireSameNames, requireSameShapes, sameShape } from '../engine/inputChecks';
import { type Dtype, dtypeBits, isFloatDtype } from '../safetensors/dtype';
import { type MergeMethodName, methodDef, takesTaskVectors } from './methods/registry';
import { filterMatches } from './parameters';
import type { ConditionalParameter, ModelRef, ParameterMap, ParameterSetting, RecipeIssue, RecipePath, ResolvedRecipe, ResolvedSlice } from './types';
import { type OutputSpec, type TensorParams, resolveTensorParameters } from './tensorParameters';
import { type RebuiltRows, type VocabPlan, planRebuiltRows, planVocabulary } from './vocabPlan';

/** One input of an output tensor: the input tensor (only its first elementCount elements are read). */
export interface PlanInput {
  readonly entry: CatalogueEntry;
  readonly model: ModelRef;
}

/** How one output tensor is made. */
export interface PlannedTensor extends TensorParams {
  readonly name: string;
  readonly shape: readonly number[];
  readonly elementCount: number;
  /** Output dtype. */
  readonly dtype: Dtype;
  /**
   * 'copy': a non-float tensor copied from the base (or first) input, which all inputs must equal;
   * or any tensor of a task method whose only input is the base.
   */
  readonly kind: 'merge' | 'copy';
  readonly role: TensorRole;
  /** Output layer index, for layer tensors. */
  readonly layer: number | null;
  /** Depth in [0, 1] at which gradients are evaluated. */
  readonly t: number;
  /** One per source of the slice, in recipe order (chat_vector: target, base, chats…). */
  readonly inputs: readonly PlanInput[];
  readonly baseIndex: number | null;
  /** An embedding or LM head whose inputs are rebuilt for the output vocabulary before merging. */
  readonly rebuilt?: RebuiltRows;
}

/** Which output tensors a `{filter, value}` entry applies to. */
export interface FilterReport {
  readonly path: RecipePath;
  readonly parameter: string;
  readonly filter: string | null;
  /** Tensors for which this entry is the first match (so its value is used). */
  readonly matched: number;
  /** Tensors it also matches but an earlier entry of the same list wins. */
  readonly shadowed: number;
  readonly examples: readonly string[];
}

export interface MergePlan {
  readonly recipe: ResolvedRecipe;
  readonly method: MergeMethodName;
  readonly tensors: readonly PlannedTensor[];
  /** The model whose config.json the output gets (base model, else the first model; chat_vector: the target). */
  readonly reference: Checkpoint;
  /** Layers of the output; null when unchanged from the reference. */
  readonly outputLayers: number | null;
  /**
   * `slices:` recipes: which output layers each slice makes, from which layers of its base (or
   * first) model — the frankenmerge's layer map. Null for the \`models:\` form.
   */
  readonly layerMap: readonly LayerMapEntry[] | null;
  /** Rows of the output's input embeddings when they differ from the reference's vocabulary. */
  readonly outputVocab: number | null;
  /** The output vocabulary when the recipe names a tokenizer source. */
  readonly vocabulary?: VocabPlan | null;
  readonly filters: readonly FilterReport[];
  readonly warnings: readonly string[];
  /** `model+adapter` inputs, one line each: the reference as written and what the adapter is. */
  readonly adapters: readonly string[];
}

/** Output layers [out[0], out[1]) come from `layers` [0, 1) of `model` (as the recipe names it). */
export interface LayerMapEntry {
  readonly out: readonly [number, number];
  readonly model: string;
  readonly layers: readonly [number, number];
}

export interface PlanResult {
  readonly plan: MergePlan | null;
  readonly issues: RecipeIssue[];
}

const MAX_LISTED = 6;

function list(names: readonly string[]): string {
  return names.slice(0, MAX_LISTED).join(', ') + (names.length > MAX_LISTED ? ` … (${names.length} in all)` : '');
}

function shapeStr(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

// Only language-model layer tensors are renamed (towers and MTP layers have their own roles), so
// the first `<segment>.<index>.` in the name is the decoder layer's index.
const LAYER_INDEX = /(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+)\./;

/** Renames a layer (or MTP layer) tensor from layer `from` to layer `to`. */
function renameLayer(name: string, from: number, to: number): string {
  if (from === to) return name;
  const m = LAYER_INDEX.exec(name);
  if (!m || Number(m[1]) !== from) return name;
  const end = m.index + m[0].length - 1; // position of the '.' after the index
  const start = end - m[1]!.length;
  return name.slice(0, start) + String(to) + name.slice(end);
}

/** Opens every model once; failures become issues at the model's path. */
class Opener {
  private readonly cache = new Map<string, Checkpoint | null>();
  /** One line per model opened with an adapter merged in. */
  readonly adapters: string[] = [];
  constructor(private readonly issues: RecipeIssue[]) {}
  open(ref: ModelRef): Checkpoint | null {
    const key = modelKey(ref);
    if (this.cache.has(key)) return this.cache.get(key)!;
    let c: Checkpoint | null = null;
    try {
      if (ref.adapter) {
        const a = openAdaptedModel(ref.path, ref.adapter);
        const line = `${ref.given}: ${adapterLine(a.adapter)}; merged into the model as it is read (PEFT's merge_and_unload: float32, rounded to the model's dtype)`;
        this.adapters.push(line);
        this.issues.push({ severity: 'info', message: line, path: ref.at });
        c = a;
      } else c = requireUnquantized(openCheckpoint(ref.path));
    } catch (e) {
      this.issues.push({ severity: 'error', message: toChatVecError(e).message, path: ref.at });
    }
    this.cache.set(key, c);
    return c;
  }
}

/**
 * Plans a resolved recipe from headers.
 * @returns the plan, or null with error issues (never throws for problems of the inputs)
 */
export function planRecipe(recipe: ResolvedRecipe): PlanResult {
  const issues: RecipeIssue[] = [];
  try {
    const plan = recipe.chatVector ? planChatVector(recipe, issues) : planSlices(recipe, issues);
    return { plan: issues.some((i) => i.severity === 'error') ? null : plan, issues };
  } catch (e) {
    issues.push({ severity: 'error', message: toChatVecError(e).message, path: [] });
    return { plan: null, issues };
  }
}

function planChatVector(recipe: ResolvedRecipe, issues: RecipeIssue[]): MergePlan | null {
  const cv = recipe.chatVector!;
  const opener = new Opener(issues);
  const base = opener.open(cv.base);
  const target = opener.open(cv.target);
  const chats = cv.chats.map((c) => opener.open(c.model));
  if (!base || !target || chats.some((c) => c === null)) return null;
  const check = (fn: () => void, at: RecipePath) => {
    try {
      fn();
    } catch (e) {
      issues.push({ severity: 'error', message: toChatVecError(e).message.replace(/--skip-embed/g, '`skip_embed: true`'), path: at });
    }
  };
  const skip = (t: CatalogueEntry) => cv.skipEmbed && isVocabTensor(t);
  chats.forEach((c, i) => {
    check(() => requireSameNames(base, c!, skip), cv.chats[i]!.model.at);
    check(() => requireSameShapes(base, c!, cv.skipEmbed), cv.chats[i]!.model.at);
  });
  check(() => requireSameNames(target, base, skip), cv.target.at);
  check(() => requireSameShapes(target, base, cv.skipEmbed), cv.target.at);
  const lastChat = chats[chats.length - 1]!;
  for (const [k, v] of cv.specialTokens) {
    for (const t of target.tensors) {
      if (!isVocabTensor(t)) continue;
      const u = rowsCounterpart(lastChat, t);
      if (k >= t.shape[0]!) issues.push({ severity: 'error', message: `row ${k} is outside "${t.name}" of the target (${t.shape[0]} rows)`, path: ['special_tokens', String(k)], at: 'key' });
      if (u && v >= u.shape[0]!) issues.push({ severity: 'error', message: `row ${v} is outside "${t.name}" of the chat model (${u.shape[0]} rows)`, path: ['special_tokens', String(k)] });
    }
  }
  const tensors: PlannedTensor[] = target.tensors.map((t) => {
    const inputs: PlanInput[] = [{ entry: t, model: cv.target }];
    if (!skip(t)) {
      const b = base.byName.get(t.name);
      if (b) inputs.push({ entry: b, model: cv.base });
      chats.forEach((c, i) => {
        const e = c!.byName.get(t.name);
        if (e) inputs.push({ entry: e, model: cv.chats[i]!.model });
      });
    }
    return {
      name: t.name,
      shape: t.shape,
      elementCount: t.elementCount,
      dtype: isFloatDtype(t.dtype) ? (recipe.outDtype ?? t.dtype) : t.dtype,
      kind: isFloatDtype(t.dtype) ? 'merge' : 'copy',
      role: t.group.role,
      layer: t.group.layer ?? null,
      t: 0,
      inputs,
      baseIndex: inputs.length > 1 ? 1 : null,
      weights: inputs.map((_, i) => (i === 0 ? 1 : i === 1 ? NaN : cv.chats[i - 2]!.ratio)),
      densities: inputs.map(() => 1),
      normalize: false,
      rescale: false,
      lambda: 1,
      slerpT: 0,
    };
  });
  return { recipe, method: 'chat_vector', tensors, reference: target, outputLayers: null, layerMap: null, outputVocab: null, filters: [], warnings: [], adapters: opener.adapters };
}

function planSlices(recipe: ResolvedRecipe, issues: RecipeIssue[]): MergePlan | null {
  const opener = new Opener(issues);
  const ckpts = recipe.slices.map((sl) => sl.sources.map((s) => opener.open(s.model)));
  if (ckpts.some((row) => row.some((c) => c === null))) return null;
  const cp = (si: number, i: number) => ckpts[si]![i]!;
  const lead = (si: number) => recipe.slices[si]!.baseIndex ?? 0;
  const warnings: string[] = [];

  // Layer ranges: the models form spans every layer, which must agree between models.
  const ranges = recipe.slices.map((sl, si) =>
    sl.sources.map((s, i) => {
      if (s.layerRange) return s.layerRange;
      return [0, cp(si, i).layerCount] as const;
    }),
  );
  if (recipe.form === 'models') {
    const counts = ranges[0]!.map((r) => r[1]);
    const leadCount = counts[lead(0)]!;
    recipe.slices[0]!.sources.forEach((s, i) => {
      if (counts[i] !== leadCount) {
        issues.push({ severity: 'error', message: `${s.model.given} has ${counts[i]} layers but ${recipe.slices[0]!.sources[lead(0)]!.model.given} has ${leadCount}; use \`slices:\` with layer_range to pick matching layers`, path: s.model.at });
      }
    });
  } else {
    recipe.slices.forEach((sl, si) =>
      sl.sources.forEach((s, i) => {
        const n = cp(si, i).layerCount;
        const [a, b] = s.layerRange!;
        if (b > n) issues.push({ severity: 'error', message: `layer_range [${a}, ${b}] goes past the last layer of ${s.model.given} (${n} layers)`, path: [...s.at.slice(0, -1), 'layer_range'] });
      }),
    );
  }
  if (issues.some((i) => i.severity === 'error')) return null;
  const vp = recipe.vocabulary ? planVocabulary(recipe, (r) => opener.open(r), (r) => new Opener([]).open(r), issues) : null;
  if (recipe.vocabulary && !vp) return null;

  // Output tensors: pre-layer (from the first slice), layers slice by slice, post-layer (last slice).
  const specs: OutputSpec[] = [];
  const firstLead = cp(0, lead(0));
  const nonLayer = (si: number, keep: (role: TensorRole) => boolean, t: number, copy = false) => {
    const sl = recipe.slices[si]!;
    for (const e of cp(si, lead(si)).tensors) if (keep(e.group.role)) specs.push({ name: e.name, role: e.group.role, layer: null, t, slice: sl, inputNames: sl.sources.map(() => e.name), copy });
  };
  // Towers beside the language model (vision, audio, projector) are merged per tensor with the
  // same parameters throughout (depth 0) in the \`models:\` form; a \`slices:\` recipe stacks
  // decoder layers only, so it copies them from the first slice's base (or first) model.
  nonLayer(0, isTowerRole, 0, recipe.form !== 'models');
  nonLayer(0, (r) => r === 'embedding', 0);
  let outLayer = 0;
  const layerMap: LayerMapEntry[] = [];
  recipe.slices.forEach((sl, si) => {
    const leadCk = cp(si, lead(si));
    const byLayer = new Map<number, CatalogueEntry[]>();
    for (const e of leadCk.tensors) if (e.group.role === 'layer') byLayer.set(e.group.layer!, [...(byLayer.get(e.group.layer!) ?? []), e]);
    const r = ranges[si]!;
    const n = r[lead(si)]![1] - r[lead(si)]![0];
    layerMap.push({ out: [outLayer, outLayer + n], model: sl.sources[lead(si)]!.model.given, layers: r[lead(si)]! });
    for (let off = 0; off < n; off++) {
      const leadLayer = r[lead(si)]![0] + off;
      const t = n > 1 ? off / (n - 1) : 1;
      for (const e of byLayer.get(leadLayer) ?? []) {
        specs.push({
          name: renameLayer(e.name, leadLayer, outLayer),
          role: 'layer',
          layer: outLayer,
          t,
          slice: sl,
          inputNames: sl.sources.map((_, i) => renameLayer(e.name, leadLayer, r[i]![0] + off)),
        });
      }
      outLayer++;
    }
  });
  // mergekit ≥ 0.1.2 (plan_module) evaluates the post-layer tensors at t = 0; ≤ 0.1.1 used t = 1.
  const postT = recipe.postLayerT ?? 0;
  nonLayer(recipe.slices.length - 1, (r) => r === 'final_norm' || r === 'lm_head' || r === 'other', postT);
  // A multi-token-prediction layer (DeepSeek-V3) follows the last decoder layer: numbered after
  // the output's last layer, merged like the tensors after the layers.
  const lastSi = recipe.slices.length - 1;
  const lastLead = cp(lastSi, lead(lastSi));
  for (const e of lastLead.tensors) {
    if (e.group.role !== 'mtp') continue;
    const at = outLayer + e.group.layer! - lastLead.layerCount;
    const sl = recipe.slices[lastSi]!;
    specs.push({ name: renameLayer(e.name, e.group.layer!, at), role: 'mtp', layer: at, t: postT, slice: sl, inputNames: sl.sources.map((_, i) => renameLayer(e.name, e.group.layer!, e.group.layer! - lastLead.layerCount + cp(lastSi, i).layerCount)), copy: false });
  }

  const reference = recipe.slices[0]!.baseIndex !== null ? cp(0, lead(0)) : cp(0, 0);
  const referenceLayers = reference.layerCount;
  const gta = takesTaskVectors(recipe.method);
  const tensors: PlannedTensor[] = [];
  const missing = new Map<string, { at: RecipePath; names: string[] }>();
  const shapeIssues = new Map<string, { at: RecipePath; lines: string[] }>();
  const paramIssues = new Map<string, { at: RecipePath; message: string; names: string[] }>();
  let outputVocab: number | null = null;

  for (const spec of specs) {
    const si = recipe.slices.indexOf(spec.slice);
    const sl = spec.slice;
    if (spec.copy) {
      const b = sl.baseIndex ?? 0;
      const e = cp(si, b).byName.get(spec.inputNames[b]!)!;
      tensors.push({ ...copySpec(spec, e, [e], sl, 0), inputs: [{ entry: e, model: sl.sources[b]!.model }] });
      continue;
    }
    const entries: (CatalogueEntry | undefined)[] = sl.sources.map((_, i) => cp(si, i).byName.get(spec.inputNames[i]!));
    let ok = true;
    entries.forEach((e, i) => {
      if (e) return;
      ok = false;
      const s = sl.sources[i]!;
      const m = missing.get(modelKey(s.model)) ?? { at: s.model.at, names: [] };
      m.names.push(spec.inputNames[i]!);
      missing.set(modelKey(s.model), m);
    });
    if (!ok) continue;
    const es = entries as CatalogueEntry[];
    const b = sl.baseIndex ?? 0;
    const leadEntry = es[b]!;
    const floats = es.map((e) => isFloatDtype(e.dtype));
    const shapeProblem = (i: number, why: string) => {
      const s = sl.sources[i]!;
      const m = shapeIssues.get(modelKey(s.model)) ?? { at: s.model.at, lines: [] };
      m.lines.push(why);
      shapeIssues.set(modelKey(s.model), m);
    };
    if (floats.some((f) => !f)) {
      es.forEach((e, i) => {
        if (e.dtype !== leadEntry.dtype || !sameShape(e.shape, leadEntry.shape)) shapeProblem(i, `${spec.name}: ${e.dtype} ${shapeStr(e.shape)} vs ${leadEntry.dtype} ${shapeStr(leadEntry.shape)} (not a float tensor, so it must be identical)`);
      });
      tensors.push(copySpec(spec, leadEntry, es, sl, b));
      continue;
    }
    let rebuilt: RebuiltRows | null = null;
    if (vp && isVocabTensor(leadEntry)) {
      const r = planRebuiltRows(vp, recipe, es.map((e, i) => ({ entry: e, model: sl.sources[i]!.model })));
      if (typeof r === 'string') {
        issues.push({ severity: 'error', message: `${spec.name}: ${r}`, path: recipe.vocabulary!.at });
        continue;
      }
      rebuilt = r;
    }
    if (!rebuilt && gta && es.length === 1 && (recipe.outDtype === null || recipe.outDtype === leadEntry.dtype)) {
      // Only the base is listed: mergekit returns the base tensor unchanged, so copy its bytes.
      tensors.push(copySpec(spec, leadEntry, es, sl, b));
      continue;
    }
    // Shapes: equal, or embeddings / LM heads of different vocabularies (mergekit's submatrix rule).
    // Rebuilt rows: every input gets the output vocabulary's rows.
    let shape = rebuilt ? [rebuilt.rules.outRows, ...leadEntry.shape.slice(1)] : leadEntry.shape;
    if (!rebuilt && es.some((e) => !sameShape(e.shape, leadEntry.shape))) {
      // Rows are token ids (embeddings, heads and their biases): only the row count may differ.
      const embed = isVocabTensor(leadEntry) && es.every((e) => e.shape.length === leadEntry.shape.length && e.shape.length <= 2 && e.shape[1] === leadEntry.shape[1]);
      if (!embed) {
        es.forEach((e, i) => {
          if (!sameShape(e.shape, leadEntry.shape)) shapeProblem(i, `${spec.name}: ${shapeStr(e.shape)} here vs ${shapeStr(leadEntry.shape)} in ${sl.sources[b]!.model.given}`);
        });
        continue;
      }
      if (gta) {
        let bad = false;
        es.forEach((e, i) => {
          if (e.shape[0]! < leadEntry.shape[0]!) {
            bad = true;
            shapeProblem(i, `${spec.name}: ${e.shape[0]} rows here but the base model has ${leadEntry.shape[0]}; task vectors need at least the base's vocabulary`);
          }
        });
        if (bad) continue;
        warnings.push(`${spec.name}: vocabularies differ; using the first ${leadEntry.shape[0]} rows of every model (the base model's size), as mergekit does`);
      } else {
        const rows = Math.min(...es.map((e) => e.shape[0]!));
        shape = [rows, ...leadEntry.shape.slice(1)];
        warnings.push(`${spec.name}: vocabularies differ; using the first ${rows} rows of every model (the smallest), as mergekit does`);
        if (spec.role === 'embedding') outputVocab = rows;
      }
    }
    const elementCount = shape.reduce((x, y) => x * y, 1);
    const r = resolveTensorParameters(recipe, spec, es, elementCount);
    for (const p of r.problems) {
      const key = `${p.at.join('/')}|${p.message}`;
      const m = paramIssues.get(key) ?? { at: p.at, message: p.message, names: [] };
      m.names.push(spec.name);
      paramIssues.set(key, m);
    }
    if (!rebuilt && methodDef(recipe.method).kind === 'passthrough' && r.values.weights[0] === 1 && (recipe.outDtype === null || recipe.outDtype === leadEntry.dtype)) {
      tensors.push(copySpec(spec, leadEntry, es, sl, b)); // scale 1: the model's bytes
      continue;
    }
    tensors.push({
      name: spec.name,
      shape,
      elementCount,
      dtype: recipe.outDtype ?? leadEntry.dtype,
      kind: 'merge',
      role: spec.role,
      layer: spec.layer,
      t: spec.t,
      inputs: es.map((e, i) => ({ entry: e, model: sl.sources[i]!.model })),
      baseIndex: sl.baseIndex,
      ...r.values,
      ...(rebuilt ? { rebuilt } : {}),
    });
  }
  for (const m of missing.values()) issues.push({ severity: 'error', message: `${m.names.length} tensor(s) the merge needs are missing from this model: ${list(m.names)}`, path: m.at });
  for (const m of shapeIssues.values()) issues.push({ severity: 'error', message: `shapes that cannot merge: ${list(m.lines)}`, path: m.at });
  for (const m of paramIssues.values()) issues.push({ severity: 'error', message: `${m.message} (tensors: ${list(m.names)})`, path: m.at, at: 'key' });

  // Tensors of the lead model that no output uses (e.g. layers outside every slice) are dropped.
  const used = new Set(specs.map((s) => s.name));
  const extra = firstLead.tensors.filter((t) => t.group.role !== 'layer' && !used.has(t.name)).map((t) => t.name);
  if (extra.length) warnings.push(`left out of the output: ${list(extra)}`);

  return {
    recipe,
    method: recipe.method,
    tensors,
    reference,
    outputLayers: outLayer !== referenceLayers ? outLayer : null,
    layerMap: recipe.form === 'models' ? null : layerMap,
    outputVocab: vp ? vp.outRows : outputVocab,
    vocabulary: vp,
    filters: filterReports(recipe, specs),
    warnings,
    adapters: opener.adapters,
  };
}

function copySpec(spec: OutputSpec, leadEntry: CatalogueEntry, es: readonly CatalogueEntry[], sl: ResolvedSlice, b: number): PlannedTensor {
  return {
    name: spec.name,
    shape: leadEntry.shape,
    elementCount: leadEntry.elementCount,
    dtype: leadEntry.dtype,
    kind: 'copy',
    role: spec.role,
    layer: spec.layer,
    t: spec.t,
    inputs: es.map((e, i) => ({ entry: e, model: sl.sources[i]!.model })),
    baseIndex: b,
    weights: es.map(() => NaN),
    densities: es.map(() => 1),
    normalize: false,
    rescale: false,
    lambda: 1,
    slerpT: 0,
  };
}

function filterReports(recipe: ResolvedRecipe, specs: readonly OutputSpec[]): FilterReport[] {
  const lists: { path: RecipePath; parameter: string; conds: readonly ConditionalParameter[]; isList: boolean }[] = [];
  const collect = (params: ParameterMap, at: RecipePath) => {
    for (const [name, setting] of Object.entries(params)) {
      const conds = conditionsOf(setting);
      if (conds) lists.push({ path: [...at, name], parameter: name, conds, isList: Array.isArray(setting) });
    }
  };
  collect(recipe.parameters, ['parameters']);
  const seenScopes = new Set<string>();
  for (const sl of recipe.slices) {
    if (!seenScopes.has(sl.at.join('/'))) collect(sl.parameters, [...sl.at, 'parameters']);
    seenScopes.add(sl.at.join('/'));
    for (const s of sl.sources) if (s.at[0] !== 'base_model') collect(s.parameters, s.at);
  }
  return lists.flatMap(({ path, parameter, conds, isList }) => {
    const matched = conds.map(() => 0);
    const shadowed = conds.map(() => 0);
    const examples: string[][] = conds.map(() => []);
    for (const spec of specs) {
      let won = false;
      conds.forEach((c, i) => {
        if (!filterMatches(c.filter, spec.name)) return;
        if (won) shadowed[i]!++;
        else {
          won = true;
          matched[i]!++;
          if (examples[i]!.length < 3) examples[i]!.push(spec.name);
        }
      });
    }
    return conds.map((c, i) => ({
      path: isList ? [...path, i] : path,
      parameter,
      filter: c.filter ?? null,
      matched: matched[i]!,
      shadowed: shadowed[i]!,
      examples: examples[i]!,
    }));
  });
}

function conditionsOf(setting: ParameterSetting): readonly ConditionalParameter[] | null {
  if (setting === null || typeof setting !== 'object') return null;
  if (!Array.isArray(setting)) return [setting as ConditionalParameter];
  const l = setting as readonly unknown[];
  return l.length && l.every((e) => typeof e === 'object' && e !== null && !Array.isArray(e)) ? (l as ConditionalParameter[]) : null;
}

/** Filter entries that match no output tensor, or are always shadowed: worth a warning. */
export function filterIssues(plan: MergePlan): RecipeIssue[] {
  return plan.filters.flatMap((f): RecipeIssue[] => {
    if (f.matched > 0) return [];
    const what = f.filter === null ? 'this entry' : `filter "${f.filter}"`;
    return [{ severity: 'warning', message: f.shadowed > 0 ? `${what} never applies: an earlier entry matches every tensor it matches (first match wins)` : `${what} matches no tensor of the output`, path: f.path }];
  });
}

/** Bytes of one tensor's used elements in an input. */
export function inputBytes(entry: CatalogueEntry, elementCount: number): number {
  return (elementCount * dtypeBits(entry.dtype)) / 8;
}
