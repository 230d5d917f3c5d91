/**
 * `adapter_config.json` of a PEFT LoRA adapter, read as PEFT (0.20, commit 5d602fd) reads it:
 * `r`, `lora_alpha`, `use_rslora`, `rank_pattern`, `alpha_pattern`, `fan_in_fan_out`,
 * `modules_to_save`, `bias`, `base_model_name_or_path`. What is not an additive low-rank update —
 * DoRA, other PEFT types, LoRA on raw parameters, trainable tokens — is refused by name.
 */
import { ChatVecError } from '../errors';
import { readJsonObject } from '../io/sideFile';

export const ADAPTER_CONFIG = 'adapter_config.json';

export interface AdapterConfig {
  readonly file: string;
  readonly r: number;
  readonly alpha: number;
  /** Scale alpha/√r instead of alpha/r (rank-stabilised LoRA). */
  readonly rslora: boolean;
  /** Module-name keys → rank / alpha for the modules that differ from r / lora_alpha. */
  readonly rankPattern: ReadonlyMap<string, number>;
  readonly alphaPattern: ReadonlyMap<string, number>;
  /** Weights stored transposed (GPT-2's Conv1D): τ = (B·A)ᵀ. */
  readonly fanInFanOut: boolean;
  readonly baseModel: string | null;
  readonly targetModules: readonly string[] | string | null;
}

/** Types PEFT writes in `peft_type` that are not LoRA (refused: not a low-rank additive update chatvec computes). */
const OTHER_TYPES = new Set(['IA3', 'LOHA', 'LOKR', 'ADALORA', 'OFT', 'BOFT', 'VERA', 'FOURIERFT', 'HRA', 'BONE', 'VBLORA', 'LN_TUNING', 'PROMPT_TUNING', 'P_TUNING', 'PREFIX_TUNING', 'MULTITASK_PROMPT_TUNING', 'POLY', 'XLORA']);

function positive(file: string, key: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ChatVecError('BadCheckpoint', `${file}: "${key}" must be a positive number (got ${JSON.stringify(v)})`);
  return v;
}

// PEFT matches pattern keys as regular expressions (`(.*\.)?(key)$`). Keys written in the wild are
// module names; a key with other regular-expression syntax is refused rather than run, since
// patterns from a downloaded file could take exponential time.
const MODULE_KEY = /^[A-Za-z0-9_.]+$/;

function patternMap(file: string, key: string, v: unknown): Map<string, number> {
  const m = new Map<string, number>();
  if (v === undefined || v === null) return m;
  if (typeof v !== 'object' || Array.isArray(v)) throw new ChatVecError('BadCheckpoint', `${file}: "${key}" must be an object of module name → number`);
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (!MODULE_KEY.test(k) || k.length > 512) {
      throw new ChatVecError('Unsupported', `${file}: ${key} key "${k.slice(0, 80)}" is a regular expression; chatvec reads module-name keys only (letters, digits, _ and .)`);
    }
    m.set(k, positive(file, `${key}.${k}`, x));
  }
  return m;
}

/**
 * Reads and checks an adapter's config.
 * @throws ChatVecError BadCheckpoint (malformed), Unsupported (DoRA, another PEFT type, …) naming the file
 */
export function readAdapterConfig(file: string): AdapterConfig {
  const c = readJsonObject(file);
  const type = typeof c.peft_type === 'string' ? c.peft_type.toUpperCase() : 'LORA';
  if (type !== 'LORA') {
    const what = OTHER_TYPES.has(type) ? `peft_type ${type}` : `peft_type "${type}" (unknown)`;
    throw new ChatVecError('Unsupported', `${file}: ${what} is not LoRA; chatvec applies LoRA adapters only`);
  }
  if (c.use_dora === true) throw new ChatVecError('Unsupported', `${file}: a DoRA adapter (use_dora) rescales each weight column by its norm, so it is not an additive chat vector; merge it with PEFT first`);
  const refuse = (key: string, why: string) => {
    const v = c[key];
    if (v !== undefined && v !== null && v !== false && !(Array.isArray(v) && v.length === 0) && !(typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0)) {
      throw new ChatVecError('Unsupported', `${file}: "${key}" (${why}) is not supported`);
    }
  };
  refuse('target_parameters', 'LoRA on raw parameters');
  refuse('trainable_token_indices', 'trainable tokens');
  refuse('layer_replication', 'replicated layers');
  refuse('lora_bias', 'a bias on lora_B');
  refuse('use_qalora', 'QA-LoRA');
  const r = positive(file, 'r', c.r ?? 8);
  const alpha = positive(file, 'lora_alpha', c.lora_alpha ?? 8);
  const tm = c.target_modules;
  return {
    file,
    r,
    alpha,
    rslora: c.use_rslora === true,
    rankPattern: patternMap(file, 'rank_pattern', c.rank_pattern),
    alphaPattern: patternMap(file, 'alpha_pattern', c.alpha_pattern),
    fanInFanOut: c.fan_in_fan_out === true,
    baseModel: typeof c.base_model_name_or_path === 'string' ? c.base_model_name_or_path : null,
    targetModules: typeof tm === 'string' ? tm : Array.isArray(tm) ? tm.filter((x): x is string => typeof x === 'string') : null,
  };
}

/** PEFT's `get_pattern_key` for module-name keys: the key equals the module name or ends it after a dot. */
function patternFor(pattern: ReadonlyMap<string, number>, module: string): number | undefined {
  for (const [k, v] of pattern) if (module === k || module.endsWith(`.${k}`)) return v;
  return undefined;
}

/** The rank and the scale (alpha/r, or alpha/√r with rsLoRA) PEFT gives a module. */
export function moduleScale(c: AdapterConfig, module: string): { rank: number; alpha: number; scale: number } {
  const rank = patternFor(c.rankPattern, module) ?? c.r;
  const alpha = patternFor(c.alphaPattern, module) ?? c.alpha;
  return { rank, alpha, scale: alpha / (c.rslora ? Math.sqrt(rank) : rank) };
}
