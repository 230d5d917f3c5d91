/**
 * A PEFT LoRA adapter folder as a chat vector: for each adapted module, τ_W = scale · B·A (or its
 * transpose for `fan_in_fan_out` and embedding LoRA), never formed whole — the engine multiplies
 * the factors chunk by chunk. Full tensors the adapter also saves (`modules_to_save`, trained
 * biases) are the chat model's weights: their τ is saved − base, so they need the base model.
 *
 * Keys are read as PEFT writes them (`get_peft_model_state_dict`): `base_model.model.<module>.
 * lora_A.weight` / `lora_B.weight` (also with the `.default` adapter name, also without the
 * `base_model.model.` prefix), `lora_embedding_A` / `lora_embedding_B`, and full tensors under
 * their module's name (`modules_to_save.default.` removed where a tool left it in).
 *
 * An adapter written by `chatvec extract --rank` also holds chatvec_deltas.safetensors: τ itself for
 * the tensors LoRA cannot express (norms, biases), under the model's tensor names. PEFT and vLLM
 * read adapter_model.safetensors only; chatvec adds these as plain τ terms.
 */
import { type CatalogueEntry, type Checkpoint, openCheckpoint } from '../checkpoint/checkpoint';
import type { FactorLayout, LowRankFactors } from '../checkpoint/tensorAddend';
import { ChatVecError } from '../errors';
import { entryKind } from '../io/files';
import { join } from '../io/paths';
import { isFloatDtype } from '../safetensors/dtype';
import { ADAPTER_CONFIG, type AdapterConfig, moduleScale, readAdapterConfig } from './adapterConfig';

export interface Adapter {
  readonly path: string;
  readonly config: AdapterConfig;
  /** The adapter's weights file(s), opened as a checkpoint. */
  readonly weights: Checkpoint;
  /** Target tensor name → its factors. */
  readonly lowRank: ReadonlyMap<string, LowRankFactors<CatalogueEntry>>;
  /** Target tensor name → the chat model's full tensor (τ = it − base). */
  readonly full: ReadonlyMap<string, CatalogueEntry>;
  /** Target tensor name → τ itself (chatvec_deltas.safetensors). */
  readonly direct: ReadonlyMap<string, CatalogueEntry>;
}

/** chatvec's side file of exact deltas in an adapter folder. */
export const DELTAS_FILE = 'chatvec_deltas.safetensors';

/** Whether `path` is a folder holding adapter_config.json (a PEFT adapter). */
export function isAdapterFolder(path: string): boolean {
  return entryKind(path) === 'dir' && entryKind(join(path, ADAPTER_CONFIG)) === 'file';
}

const PREFIX = 'base_model.model.';
type Part = 'A' | 'B' | 'embA' | 'embB';
const SUFFIXES: readonly (readonly [string, Part])[] = [
  ['.lora_A.weight', 'A'],
  ['.lora_A.default.weight', 'A'],
  ['.lora_B.weight', 'B'],
  ['.lora_B.default.weight', 'B'],
  ['.lora_embedding_A', 'embA'],
  ['.lora_embedding_A.default', 'embA'],
  ['.lora_embedding_B', 'embB'],
  ['.lora_embedding_B.default', 'embB'],
];

function splitKey(key: string): { module: string; part: Part } | { name: string } {
  const k = key.startsWith(PREFIX) ? key.slice(PREFIX.length) : key;
  for (const [suffix, part] of SUFFIXES) if (k.endsWith(suffix)) return { module: k.slice(0, -suffix.length), part };
  return { name: k.replace('.modules_to_save.default.', '.') };
}

/**
 * Opens a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors): pairs every
 * lora_A with its lora_B, checks ranks against the config's r/rank_pattern, and computes each
 * module's scale.
 * @throws ChatVecError BadCheckpoint (unpaired factors, a rank that disagrees with the config,
 *   non-float factors), Unsupported (DoRA, other PEFT types), naming the file and the rule
 */
export function openAdapter(path: string): Adapter {
  const config = readAdapterConfig(join(path, ADAPTER_CONFIG));
  const weights = openCheckpoint(path);
  const parts = new Map<string, Partial<Record<Part, CatalogueEntry>>>();
  const full = new Map<string, CatalogueEntry>();
  const direct = new Map<string, CatalogueEntry>();
  const deltasShard = weights.shards.findIndex((sh) => sh.fileName === DELTAS_FILE);
  for (const e of weights.tensors) {
    if (e.name.endsWith('.lora_magnitude_vector') || e.name.includes('.lora_magnitude_vector.')) {
      throw new ChatVecError('Unsupported', `${path}: "${e.name}" is a DoRA magnitude; a DoRA adapter is not an additive chat vector`);
    }
    if (!isFloatDtype(e.dtype)) throw new ChatVecError('BadCheckpoint', `${path}: "${e.name}" is ${e.dtype}, not a float tensor`);
    if (e.shard === deltasShard) {
      direct.set(e.name, e);
      continue;
    }
    const s = splitKey(e.name);
    if ('name' in s) {
      full.set(s.name, e);
      continue;
    }
    const p = parts.get(s.module) ?? {};
    p[s.part] = e;
    parts.set(s.module, p);
  }
  const lowRank = new Map<string, LowRankFactors<CatalogueEntry>>();
  for (const [module, p] of parts) {
    const embedding = p.embA !== undefined || p.embB !== undefined;
    const a = embedding ? p.embA : p.A;
    const b = embedding ? p.embB : p.B;
    if (!a || !b) throw new ChatVecError('BadCheckpoint', `${path}: module "${module}" has lora_${a ? 'A' : 'B'} but no lora_${a ? 'B' : 'A'}`);
    if (a.shape.length !== 2 || b.shape.length !== 2 || a.shape[0] !== b.shape[1]) {
      throw new ChatVecError('BadCheckpoint', `${path}: module "${module}": lora_A ${JSON.stringify(a.shape)} and lora_B ${JSON.stringify(b.shape)} do not multiply (A must be [r, n], B [m, r])`);
    }
    const { rank, alpha, scale } = moduleScale(config, module);
    if (a.shape[0] !== rank) {
      throw new ChatVecError('BadCheckpoint', `${path}: module "${module}" has rank ${a.shape[0]} but ${config.file} gives it r = ${rank} (r / rank_pattern)`);
    }
    const layout: FactorLayout = embedding || config.fanInFanOut ? 'transposed' : 'BA';
    const shape: [number, number] = layout === 'BA' ? [b.shape[0]!, a.shape[1]!] : [a.shape[1]!, b.shape[0]!];
    const target = `${module}.weight`;
    lowRank.set(target, { module, target, a, b, rank, alpha, scale, layout, shape });
  }
  for (const name of direct.keys()) {
    if (lowRank.has(name) || full.has(name)) throw new ChatVecError('BadCheckpoint', `${path}: "${name}" is both in ${DELTAS_FILE} and in the adapter's weights`);
  }
  if (lowRank.size === 0 && full.size === 0 && direct.size === 0) throw new ChatVecError('BadCheckpoint', `${path}: the adapter holds no tensors`);
  return { path, config, weights, lowRank, full, direct };
}

/**
 * Checks that an adapter fits a model (the target, or the base the adapter was trained on): every
 * adapted module and every full tensor exists there with the shape the factors give. Tensors for
 * which `skip` is true (e.g. vocabulary tensors under --skip-embed) are not checked.
 * @throws ChatVecError NameMismatch / ShapeMismatch naming the adapter, the model and the tensor
 */
export function requireAdapterFits(adapter: Adapter, model: Checkpoint, skip: (t: CatalogueEntry) => boolean): void {
  const problems: string[] = [];
  for (const f of adapter.lowRank.values()) {
    const t = model.byName.get(f.target);
    if (!t) problems.push(`${f.target}: not in the model`);
    else if (!skip(t) && (t.shape.length !== 2 || t.shape[0] !== f.shape[0] || t.shape[1] !== f.shape[1])) {
      problems.push(`${f.target}: ${JSON.stringify(t.shape)} in the model, [${f.shape.join(', ')}] from the adapter's factors`);
    }
  }
  for (const [name, e] of [...adapter.full, ...adapter.direct]) {
    const t = model.byName.get(name);
    if (!t) problems.push(`${name}: not in the model`);
    else if (!skip(t) && JSON.stringify(t.shape) !== JSON.stringify(e.shape)) problems.push(`${name}: ${JSON.stringify(t.shape)} in the model, ${JSON.stringify(e.shape)} in the adapter`);
  }
  if (problems.length) {
    const shown = problems.slice(0, 8).join('; ') + (problems.length > 8 ? ` … (${problems.length} in all)` : '');
    throw new ChatVecError('ShapeMismatch', `${adapter.path} does not fit ${model.path}${adapter.config.baseModel ? ` (it was trained on ${adapter.config.baseModel})` : ''}: ${shown}`);
  }
}

/**
 * The adapter with every tensor name spelled as `model` stores it: PEFT names modules as the model
 * class has them (GPT-2's `transformer.h.0.…`), while a file may use an alias (`h.0.…`). Names the
 * model does not have are kept as they are (requireAdapterFits reports them).
 */
export function adapterKeyedLike(adapter: Adapter, model: Checkpoint): Adapter {
  const key = (name: string) => model.byName.get(name)?.name ?? name;
  const rekey = <T>(m: ReadonlyMap<string, T>) => new Map([...m].map(([k, v]) => [key(k), v] as const));
  const lowRank = new Map([...adapter.lowRank].map(([k, f]) => [key(k), { ...f, target: key(k) }] as const));
  return { ...adapter, lowRank, full: rekey(adapter.full), direct: rekey(adapter.direct) };
}
