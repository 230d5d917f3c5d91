/**
 * The tokenizer settings of a recipe as mergekit's TokenizerConfig reads them: `tokenizer_source:
 * X`, or `tokenizer: {source, tokens, pad_to_multiple_of}` (source defaults to `union` there);
 * `model:X` (mergekit <= 0.0.5) is `X`. Each problem is an issue at its path.
 */
import type { ModelRef, RawRecipe, RecipeIssue, RecipePath, TokenSourceSpec, TokenSpec, VocabularySpec } from './types';

type Resolve = (given: string, at: RecipePath) => ModelRef;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function modelName(v: string): string {
  return v.startsWith('model:') ? v.slice('model:'.length) : v;
}

function tokenSource(v: unknown, at: RecipePath, model: Resolve, issues: RecipeIssue[]): TokenSourceSpec | null {
  if (typeof v === 'string' && v !== '') return { kind: 'model', model: model(modelName(v), at) };
  if (isObject(v) && v.kind === 'zero') return { kind: 'zero' };
  if (isObject(v) && v.kind === 'model_token') {
    if (typeof v.model !== 'string' || v.model === '') {
      issues.push({ severity: 'error', message: '`kind: model_token` needs `model:` (a model of the merge)', path: at });
      return null;
    }
    const hasToken = v.token !== undefined && v.token !== null;
    const hasId = v.token_id !== undefined && v.token_id !== null;
    if (hasToken === hasId) {
      issues.push({ severity: 'error', message: '`kind: model_token` needs exactly one of `token:` and `token_id:`', path: at });
      return null;
    }
    if (hasId && !(typeof v.token_id === 'number' && Number.isInteger(v.token_id) && v.token_id >= 0)) {
      issues.push({ severity: 'error', message: '`token_id` must be a whole number ≥ 0', path: [...at, 'token_id'] });
      return null;
    }
    if (hasToken && typeof v.token !== 'string') {
      issues.push({ severity: 'error', message: '`token` must be a string', path: [...at, 'token'] });
      return null;
    }
    const m = model(modelName(v.model), [...at, 'model']);
    return hasId ? { kind: 'model_token', model: m, tokenId: v.token_id as number } : { kind: 'model_token', model: m, token: v.token as string };
  }
  issues.push({ severity: 'error', message: '`source:` of a token must be a model, `{kind: zero}` or `{kind: model_token, model, token | token_id}`', path: at });
  return null;
}

function tokenSpecs(v: unknown, model: Resolve, issues: RecipeIssue[]): TokenSpec[] {
  if (v === undefined || v === null) return [];
  if (!isObject(v)) {
    issues.push({ severity: 'error', message: '`tokens:` must map tokens to `{source, force}`', path: ['tokenizer', 'tokens'] });
    return [];
  }
  const out: TokenSpec[] = [];
  for (const [token, cfg] of Object.entries(v)) {
    const at: RecipePath = ['tokenizer', 'tokens', token];
    if (!isObject(cfg)) {
      issues.push({ severity: 'error', message: `\`tokens.${token}\` must be \`{source: …, force: …}\``, path: at });
      continue;
    }
    for (const k of Object.keys(cfg)) if (k !== 'source' && k !== 'force') issues.push({ severity: 'warning', message: `\`${k}\` is not a setting of a token (source, force)`, path: [...at, k], at: 'key' });
    if (cfg.force !== undefined && typeof cfg.force !== 'boolean') issues.push({ severity: 'error', message: '`force` must be true or false', path: [...at, 'force'] });
    if (cfg.source === undefined || cfg.source === null) {
      // mergekit fails on such an entry (compute_default_embedding has no source to use).
      issues.push({ severity: 'error', message: `\`tokens.${token}\` needs \`source:\` (a model, {kind: zero} or {kind: model_token, …})`, path: at, at: 'key' });
      continue;
    }
    const source = tokenSource(cfg.source, [...at, 'source'], model, issues);
    if (source) out.push({ token, source, force: cfg.force === true, at });
  }
  return out;
}

/**
 * Reads the recipe's tokenizer settings.
 * @returns the vocabulary to build, or null when the recipe names no tokenizer source
 */
export function readTokenizerSection(raw: RawRecipe, model: Resolve, issues: RecipeIssue[]): VocabularySpec | null {
  const section = raw.tokenizer;
  let source: string | null = raw.tokenizer_source ?? null;
  let at: RecipePath = ['tokenizer_source'];
  let tokens: TokenSpec[] = [];
  let pad: number | null = null;
  if (section !== undefined && section !== null) {
    if (!isObject(section)) {
      issues.push({ severity: 'error', message: '`tokenizer:` must be a mapping (source, tokens, pad_to_multiple_of)', path: ['tokenizer'] });
      return null;
    }
    if (source !== null) {
      issues.push({ severity: 'error', message: 'give `tokenizer_source:` or `tokenizer:`, not both', path: ['tokenizer'], at: 'key' });
      return null;
    }
    for (const k of Object.keys(section)) if (!['source', 'tokens', 'pad_to_multiple_of'].includes(k)) issues.push({ severity: 'warning', message: `\`${k}\` is not a setting of \`tokenizer:\` (source, tokens, pad_to_multiple_of)`, path: ['tokenizer', k], at: 'key' });
    if (section.source !== undefined && (typeof section.source !== 'string' || section.source === '')) {
      issues.push({ severity: 'error', message: '`tokenizer.source` must be base, union or a model path', path: ['tokenizer', 'source'] });
      return null;
    }
    // mergekit's TokenizerConfig defaults the source to union.
    source = (section.source as string | undefined) ?? 'union';
    at = section.source !== undefined ? ['tokenizer', 'source'] : ['tokenizer'];
    const p = section.pad_to_multiple_of;
    if (p !== undefined && p !== null) {
      if (typeof p === 'number' && Number.isInteger(p) && p >= 1) pad = p;
      else issues.push({ severity: 'error', message: '`pad_to_multiple_of` must be a whole number ≥ 1', path: ['tokenizer', 'pad_to_multiple_of'] });
    }
    tokens = tokenSpecs(section.tokens, model, issues);
  }
  if (source === null) return null;
  source = modelName(source);
  const resolved = source === 'base' || source === 'union' ? source : model(source, at);
  return { source: resolved, tokens, padToMultipleOf: pad, base: null, at };
}
