/**
 * From schema-valid recipe data to a ResolvedRecipe: model paths resolved to local folders (never
 * downloaded), the `models:` form turned into one output slice (with the base model added, as
 * mergekit does), and the checks the schema cannot express — each reported at its path.
 */
import { toChatVecError } from '../errors';
import { describeResolution, isModelIdRef, resolveModelRef } from '../hub/resolveModelRef';
import { entryKind } from '../io/files';
import { ADAPTER_CONFIG } from '../lora/adapterConfig';
import { isAdapterFolder } from '../lora/adapter';
import { isAbsolute, resolve } from '../io/paths';
import { type FloatDtype } from '../safetensors/dtype';
import { METHODS, type MergeMethodName, isSparsifying, methodDef, methodParameters, takesTaskVectors } from './methods/registry';
import { type ParameterScope, evaluateSetting, otherMethodMessage } from './parameters';
import { SCHEMA_PARAMETERS, yamlNumber } from './schema';
import { readTokenizerSection } from './tokenizerSection';
import { pathLabel } from './yamlSource';
import type {
  ChatVectorSpec,
  ModelRef,
  ParameterMap,
  ParameterSetting,
  RawRecipe,
  RecipeIssue,
  RecipePath,
  ResolvedRecipe,
  ResolvedSlice,
  ResolvedSource,
} from './types';

export interface ResolveOptions {
  /** Folder that relative model paths are resolved against (the recipe file's folder). */
  readonly baseDir: string;
  /** The working directory, only to hint when a path exists relative to it instead. */
  readonly cwd?: string;
  /** Check that model folders exist (false: syntax and schema-level checks only). */
  readonly checkFiles?: boolean;
}

const DTYPES: Readonly<Record<string, FloatDtype>> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };

function code(s: string): string {
  return `\`${s}\``;
}

/**
 * Resolves a model reference to a local checkpoint; `model+adapter` (mergekit's ModelReference) to
 * the model with a LoRA adapter folder merged in, each part a local path or a Hugging Face id in
 * the hub cache. A local path that holds a `+` is read as that path, not split (mergekit splits it).
 * @returns the reference, or an issue explaining why it cannot be used
 */
export function resolveModel(given: string, at: RecipePath, opts: ResolveOptions): { ref: ModelRef; issue: RecipeIssue | null } {
  const path = isAbsolute(given) ? resolve(given) : resolve(opts.baseDir, given);
  const ref = { path, given, at };
  const kind = opts.checkFiles === false ? 'missing' : entryKind(path);
  if (kind === 'dir' || (kind === 'file' && path.endsWith('.safetensors'))) return { ref, issue: null };
  if (given.includes('+')) return modelWithAdapter(given, at, opts);
  if (opts.checkFiles === false) return { ref, issue: null };
  if (isModelIdRef(given, opts.baseDir)) return modelFromHubCache(given, at, opts.baseDir, ref);
  let why: string;
  if (kind === 'file') why = `${path} is a file, not a checkpoint folder or .safetensors file`;
  else why = `model folder not found: ${path}`;
  if (kind === 'missing' && opts.cwd && !isAbsolute(given) && ['dir', 'file'].includes(entryKind(resolve(opts.cwd, given)))) {
    why += ` (it exists relative to the working directory; chatvec resolves paths relative to the recipe's folder, ${opts.baseDir})`;
  }
  return { ref, issue: { severity: 'error', message: why, path: at } };
}

/** `model+adapter`: both parts resolved; the issue is the first error, else one info naming both resolutions. */
function modelWithAdapter(given: string, at: RecipePath, opts: ResolveOptions): { ref: ModelRef; issue: RecipeIssue | null } {
  const parts = given.split('+');
  const bad = parts.length !== 2 ? 'more than one `+` (mergekit reads `model+adapter`: one LoRA adapter per model)' : parts.some((p) => p.trim() === '') ? 'an empty side of `+`' : null;
  if (bad) return { ref: { path: resolve(opts.baseDir, given), given, at }, issue: { severity: 'error', message: `${code(given)} has ${bad}`, path: at } };
  const model = resolveModel(parts[0]!, at, opts);
  const adapter = resolveModel(parts[1]!, at, opts);
  const ref: ModelRef = { path: model.ref.path, given, at, adapter: adapter.ref.path };
  const errors = [model.issue, adapter.issue].filter((i) => i?.severity === 'error');
  if (errors.length) return { ref, issue: errors[0]! };
  if (opts.checkFiles !== false && !isAdapterFolder(adapter.ref.path)) {
    return { ref, issue: { severity: 'error', message: `${code(parts[1]!)} (${adapter.ref.path}) is not a LoRA adapter folder: it has no ${ADAPTER_CONFIG}`, path: at } };
  }
  const infos = [model.issue, adapter.issue].flatMap((i) => (i ? [i.message] : []));
  return { ref, issue: infos.length ? { severity: 'info', message: infos.join('; '), path: at } : null };
}

/** What identifies a model input: its path, and the adapter merged into it. */
export function modelKey(ref: ModelRef): string {
  return ref.adapter ? `${ref.path}+${ref.adapter}` : ref.path;
}

/** A Hugging Face id found in the hub cache (an info at the model: which snapshot), or the resolver's one-line error. */
function modelFromHubCache(given: string, at: RecipePath, baseDir: string, ref: ModelRef): { ref: ModelRef; issue: RecipeIssue } {
  try {
    const r = resolveModelRef(given, baseDir);
    return { ref: { ...ref, path: r.path }, issue: { severity: 'info', message: describeResolution(r), path: at } };
  } catch (e) {
    return { ref, issue: { severity: 'error', message: toChatVecError(e).message, path: at } };
  }
}

function settingIssues(params: ParameterMap | null | undefined, at: RecipePath, method: MergeMethodName, issues: RecipeIssue[]): void {
  if (!params) return;
  const defs = methodParameters(method);
  for (const [name, setting] of Object.entries(params)) {
    const def = defs.find((d) => d.name === name);
    const keyPath = [...at, name];
    if (!def) {
      if (!SCHEMA_PARAMETERS.has(name)) continue; // schemaIssues has warned about it already
      issues.push({ severity: 'warning', message: otherMethodMessage(name, method) ?? `${code(name)} is not used by ${method}`, path: keyPath, at: 'key' });
      continue;
    }
    if (def.name === 'density' && !isSparsifying(method)) {
      issues.push({ severity: 'warning', message: `\`density\` is not used by ${method} (it trims task vectors in ties and dare_*)`, path: keyPath, at: 'key' });
    }
    for (const [v, where] of settingValues(setting, keyPath)) {
      if (def.type === 'number' && typeof v !== 'number') {
        issues.push({ severity: 'error', message: `${code(name)} must be a number (got ${JSON.stringify(v)})`, path: where });
      } else if (def.name === 'density' && typeof v === 'number' && !(v > 0 && v <= 1) && isSparsifying(method)) {
        issues.push({ severity: 'error', message: `density must be in (0, 1] (the fraction of each task vector kept), got ${v}`, path: where });
      } else if (typeof v === 'number' && !Number.isFinite(v)) {
        issues.push({ severity: 'error', message: `${code(name)} must be a finite number, got ${yamlNumber(v)}`, path: where });
      }
    }
  }
}

/** Every plain value inside a setting, with where it is written. */
function settingValues(setting: ParameterSetting, at: RecipePath): [unknown, RecipePath][] {
  if (setting === null || typeof setting !== 'object') return [[setting, at]];
  if (!Array.isArray(setting)) return settingValues((setting as { value: ParameterSetting }).value, [...at, 'value']);
  const list = setting as readonly unknown[];
  if (list.every((e) => typeof e !== 'object' || e === null)) return list.map((e, i) => [e, [...at, i]] as [unknown, RecipePath]);
  return list.flatMap((e, i) => (typeof e === 'object' && e !== null && !Array.isArray(e) ? settingValues((e as { value: ParameterSetting }).value, [...at, i, 'value']) : []));
}

/**
 * The sources with every repeat of a model dropped, as mergekit does (it gathers a slice's tensors
 * in a dict keyed by model, so a model counts once and its first entry's parameters apply). Each
 * repeat is a warning at its `model:` and a line of the dry-run plan (`notes`).
 */
function withoutDuplicates(sources: readonly ResolvedSource[], issues: RecipeIssue[], notes: string[]): ResolvedSource[] {
  const kept: ResolvedSource[] = [];
  for (const s of sources) {
    const first = kept.find((k) => modelKey(k.model) === modelKey(s.model));
    if (!first) {
      kept.push(s);
      continue;
    }
    const firstAt = pathLabel(first.model.at.slice(0, -1));
    if (s.layerRange && first.layerRange && (s.layerRange[0] !== first.layerRange[0] || s.layerRange[1] !== first.layerRange[1])) {
      // mergekit would read this entry's layers with the first entry's parameters: never meant.
      issues.push({ severity: 'error', message: `${s.model.given} is listed again with another layer_range (first at ${firstAt}); a model can be a source of a slice only once`, path: s.model.at });
      continue;
    }
    const why = `${s.model.given} is listed again: mergekit counts a model once per slice, so this entry is ignored and the first one (${firstAt}) applies`;
    issues.push({ severity: 'warning', message: why, path: s.model.at });
    notes.push(`${pathLabel(s.model.at.slice(0, -1))}: ${why}`);
  }
  return kept;
}

/** Whether any scope can supply `name` for some tensor (filters may still miss some tensors). */
function everSet(name: string, scopes: readonly ParameterScope[]): boolean {
  return scopes.some((s) => s.params[name] !== undefined && s.params[name] !== null);
}

/**
 * Resolves schema-valid recipe data.
 * @returns the resolved recipe (null when an error makes it unusable) and the issues found
 */
export function resolveRecipe(raw: RawRecipe, opts: ResolveOptions): { recipe: ResolvedRecipe | null; issues: RecipeIssue[] } {
  const issues: RecipeIssue[] = [];
  const method = raw.merge_method as MergeMethodName;
  const model = (given: string, at: RecipePath): ModelRef => {
    const r = resolveModel(given, at, opts);
    if (r.issue) issues.push(r.issue);
    return r.ref;
  };
  if (raw.modules !== undefined) issues.push({ severity: 'error', message: '`modules:` (multi-module merges) is not supported by chatvec', path: ['modules'], at: 'key' });
  const vocabulary = readTokenizerSection(raw, model, issues);
  if (raw.chat_template !== undefined) issues.push({ severity: 'warning', message: '`chat_template` is not applied by chatvec; the output keeps the tokenizer source\'s template', path: ['chat_template'], at: 'key' });
  const outDtypeName = raw.out_dtype ?? raw.dtype;
  const outDtype = outDtypeName ? (DTYPES[outDtypeName] ?? null) : null;

  if (method === 'chat_vector') {
    const base = model(raw.base_model!, ['base_model']);
    const target = model(raw.target_model!, ['target_model']);
    const chats = raw.chat_models!.map((c, i) => ({ model: model(c.model, ['chat_models', i, 'model']), ratio: c.ratio ?? 1 }));
    // chat_vector runs the engine's apply, which takes an adapter as a chat vector against the base:
    // `base+adapter` as a chat model is exactly that; an adapter on any other model is not.
    for (const r of [base, target]) {
      if (r.adapter) issues.push({ severity: 'error', message: `${code(r.given)}: chat_vector takes \`model+adapter\` only as a chat model on the base model (\`${raw.base_model}+ADAPTER\`)`, path: r.at });
    }
    for (const c of chats) {
      if (c.model.adapter && !base.adapter && c.model.path !== base.path) {
        issues.push({ severity: 'error', message: `${code(c.model.given)}: in chat_vector the adapter must be on the base model (\`${raw.base_model}+ADAPTER\`), whose chat vector it is`, path: c.model.at });
      }
    }
    const specialTokens = Object.entries(raw.special_tokens ?? {}).map(([k, v]) => [Number(k), v] as const);
    const spec: ChatVectorSpec = { base, target, chats, skipEmbed: raw.skip_embed === true, specialTokens };
    const recipe: ResolvedRecipe = { method, baseDir: opts.baseDir, form: 'chat_vector', slices: [], parameters: {}, outDtype, tokenizerFrom: target, seed: 0, chatVector: spec };
    return { recipe: issues.some((i) => i.severity === 'error') ? null : recipe, issues };
  }

  const hasModels = raw.models !== undefined;
  const hasSlices = raw.slices !== undefined;
  if (hasModels === hasSlices) {
    issues.push({ severity: 'error', message: hasModels ? 'give either `models:` or `slices:`, not both' : `merge_method ${method} needs \`models:\` (or \`slices:\`)`, path: hasModels ? ['slices'] : [], at: 'key' });
    return { recipe: null, issues };
  }
  const top = raw.parameters ?? {};
  settingIssues(top, ['parameters'], method, issues);
  const baseGiven = raw.base_model;
  const topBase = baseGiven !== undefined ? model(baseGiven, ['base_model']) : null;
  const def = methodDef(method);
  const needsBase = def.needsBase;
  const slices: ResolvedSlice[] = [];
  const notes: string[] = [];

  if (hasModels) {
    const listed: ResolvedSource[] = raw.models!.map((m, i) => {
      settingIssues(m.parameters, ['models', i, 'parameters'], method, issues);
      return { model: model(m.model, ['models', i, 'model']), layerRange: null, parameters: m.parameters ?? {}, at: ['models', i, 'parameters'] };
    });
    const sources = withoutDuplicates(listed, issues, notes);
    let baseIndex: number | null = null;
    if (topBase) {
      baseIndex = sources.findIndex((s) => modelKey(s.model) === modelKey(topBase));
      if (baseIndex < 0) {
        if (method === 'linear') {
          issues.push({ severity: 'error', message: 'linear averages the listed models only: list base_model under `models:` with a weight, or remove it', path: ['base_model'], at: 'key' });
        }
        // mergekit adds the base model as one more input (with no parameters of its own).
        sources.push({ model: topBase, layerRange: null, parameters: {}, at: ['base_model'] });
        baseIndex = sources.length - 1;
      }
    }
    slices.push({ sources, baseIndex: method === 'linear' ? null : baseIndex, parameters: {}, at: [] });
  } else {
    raw.slices!.forEach((sl, si) => {
      settingIssues(sl.parameters, ['slices', si, 'parameters'], method, issues);
      if (sl.residual_weight !== undefined) issues.push({ severity: 'warning', message: '`residual_weight` is ignored (mergekit does not use it either)', path: ['slices', si, 'residual_weight'], at: 'key' });
      const listed: ResolvedSource[] = sl.sources.map((s, i) => {
        const at: RecipePath = ['slices', si, 'sources', i];
        settingIssues(s.parameters, [...at, 'parameters'], method, issues);
        const [a, b] = s.layer_range;
        if (!(a < b)) issues.push({ severity: 'error', message: `layer_range [${a}, ${b}] is empty: it is [first, end) with end excluded`, path: [...at, 'layer_range'] });
        return { model: model(s.model, [...at, 'model']), layerRange: [a, b] as const, parameters: s.parameters ?? {}, at: [...at, 'parameters'] };
      });
      const lengths = listed.map((s) => s.layerRange![1] - s.layerRange![0]);
      if (lengths.some((n) => n !== lengths[0])) {
        issues.push({ severity: 'error', message: `all sources of a slice must span the same number of layers (got ${lengths.join(', ')})`, path: ['slices', si, 'sources'], at: 'key' });
      }
      const sources = withoutDuplicates(listed, issues, notes);
      const sliceBase = sl.base_model !== undefined ? model(sl.base_model, ['slices', si, 'base_model']) : topBase;
      let baseIndex: number | null = null;
      // linear and passthrough read no base model (a passthrough frankenmerge may still name one).
      if (sliceBase && method !== 'linear' && method !== 'passthrough') {
        baseIndex = sources.findIndex((s) => modelKey(s.model) === modelKey(sliceBase));
        if (baseIndex < 0) {
          issues.push({ severity: 'error', message: 'the base model must be one of this slice\'s sources (with the same layer_range as the others)', path: ['slices', si, 'sources'], at: 'key' });
          baseIndex = null;
        }
      }
      slices.push({ sources, baseIndex, parameters: sl.parameters ?? {}, at: ['slices', si] });
    });
  }

  // Method-level checks on every slice.
  slices.forEach((sl, si) => {
    const where: RecipePath = hasModels ? ['models'] : ['slices', si, 'sources'];
    if (needsBase && sl.baseIndex === null) {
      if (!issues.some((i) => i.message.startsWith('the base model must be'))) {
        issues.push({ severity: 'error', message: `${method} needs \`base_model:\`${method === 'slerp' ? ' (the t = 0 end)' : ' (task vectors are taken against it)'}`, path: [], at: 'key' });
      }
      return;
    }
    if (method === 'passthrough' && sl.sources.length !== 1) {
      issues.push({ severity: 'error', message: `passthrough takes exactly one model ${hasModels ? 'in `models:`' : 'per slice'} (got ${sl.sources.length}), as mergekit does; use \`slices:\` to stack layers of several models`, path: where, at: 'key' });
    }
    if (method === 'slerp' && sl.sources.length !== 2) {
      issues.push({ severity: 'error', message: `slerp merges exactly two models, the base model and one other (got ${sl.sources.length})`, path: where, at: 'key' });
    }
    const others = sl.sources.length - (sl.baseIndex === null ? 0 : 1);
    if (method === 'model_stock' && others < 2) {
      issues.push({ severity: 'error', message: `model_stock needs the base model and at least two others (got ${others}), as in mergekit`, path: where, at: 'key' });
    }
    if (method === 'nuslerp' && others !== 2) {
      const why = sl.baseIndex !== null && sl.sources.length === 2 ? 'the base model cannot be one of the two models nuslerp interpolates' : `nuslerp interpolates exactly two models (plus an optional base_model), got ${others}`;
      issues.push({ severity: 'error', message: why, path: where, at: 'key' });
    }
    if (takesTaskVectors(method) && sl.sources.length < 2) {
      // mergekit's task arithmetic returns the base tensor when there is no task vector ("bake a
      // LoRA in" recipes list only the base model, with a LoRA on its path).
      const why = 'only the base model is listed: the output is the base model, as in mergekit';
      if (!notes.includes(why)) {
        issues.push({ severity: 'warning', message: why, path: where, at: 'key' });
        notes.push(why);
      }
    }
    const defs = methodParameters(method);
    for (const def of defs) {
      if (def.default !== undefined) continue;
      sl.sources.forEach((s, i) => {
        if (def.scope === 'tensor' && i === sl.baseIndex) return;
        if (def.scope === 'global' && i > 0) return;
        const scopes: ParameterScope[] = [
          ...(def.scope === 'tensor' ? [{ params: s.parameters, at: s.at }] : []),
          { params: sl.parameters, at: [...sl.at, 'parameters'] },
          { params: top, at: ['parameters'] },
        ];
        if (!everSet(def.name, scopes)) {
          const at: RecipePath = def.scope === 'tensor' ? s.model.at.slice(0, -1) : ['parameters'];
          const hint = def.scope === 'tensor' ? `add \`parameters: {${def.name}: …}\` to this model, or set it in the top-level \`parameters:\`` : `add it to the top-level \`parameters:\``;
          issues.push({ severity: 'error', message: `${method} needs \`${def.name}\`${def.scope === 'tensor' ? ` for ${s.model.given}` : ''}: ${hint}`, path: at.length ? at : [], at: 'key' });
        }
      });
    }
    if (method === 'linear') {
      // A zero sum of weights with normalize divides by zero (mergekit produces inf/NaN).
      const w = sl.sources.map((s) => evaluateSetting(s.parameters.weight ?? sl.parameters.weight ?? top.weight ?? 0, '', 0));
      const normalize = evaluateSetting(sl.parameters.normalize ?? top.normalize ?? true, '', 0);
      if (normalize !== false && w.every((x) => typeof x === 'number') && (w as number[]).reduce((a, b) => a + b, 0) === 0) {
        issues.push({ severity: 'error', message: 'the weights sum to 0, so normalize divides by zero: change a weight or set `normalize: false`', path: where, at: 'key' });
      }
    }
  });

  // mergekit's build_tokenizer: the base model, else the first model, unless a model is named.
  const firstModel = topBase ?? slices[0]?.sources[0]?.model ?? null;
  const tokenizerFrom: ModelRef | null = vocabulary && typeof vocabulary.source !== 'string' ? vocabulary.source : firstModel;
  const postLayerT = raw.chatvec_post_layer_t ?? 0;
  const seed = raw.random_seed ?? 0;
  if (raw.random_seed !== undefined && !def.usesSeed) {
    const users = METHODS.filter((m) => m.usesSeed).map((m) => m.name);
    issues.push({ severity: 'warning', message: `random_seed is only used by ${users.slice(0, -1).join(', ')} and ${users[users.length - 1]}`, path: ['random_seed'], at: 'key' });
  }
  const recipe: ResolvedRecipe = { method, baseDir: opts.baseDir, form: hasModels ? 'models' : 'slices', slices, parameters: top, outDtype, tokenizerFrom, seed, chatVector: null, notes, postLayerT, vocabulary: vocabulary && { ...vocabulary, base: topBase } };
  return { recipe: issues.some((i) => i.severity === 'error') ? null : recipe, issues };
}
