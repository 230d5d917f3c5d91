/**
 * A model with a LoRA adapter merged in, as a checkpoint whose tensors are read through the adapter
 * (mergekit's `model+adapter`): the same tensors, names, shapes and dtypes as the model, where each
 * tensor the adapter changes carries an AdapterAddend (engine/adaptedRun.ts says how its elements
 * are formed). Nothing is merged or written ahead: the factors are multiplied chunk by chunk when
 * the tensor is read.
 */
import { type CatalogueEntry, type Checkpoint, openCheckpoint } from '../checkpoint/checkpoint';
import { requireUnquantized } from '../checkpoint/quantization';
import type { AdapterAddend, StoredTensor } from '../checkpoint/tensorAddend';
import { ChatVecError } from '../errors';
import { isFloatDtype } from '../safetensors/dtype';
import { type Adapter, openAdapter, requireAdapterFits } from './adapter';

/** A checkpoint read with an adapter merged in. */
export interface AdaptedCheckpoint extends Checkpoint {
  readonly adapter: Adapter;
}

function stored(e: CatalogueEntry): StoredTensor {
  if (!isFloatDtype(e.dtype)) throw new ChatVecError('Internal', `${e.file}: "${e.name}" is ${e.dtype}, not a float tensor`);
  return { file: e.file, position: e.position, dtype: e.dtype };
}

/** What the adapter changes in model tensor `t` (named `name` in the adapter, which may be an alias spelling). */
function addendFor(adapter: Adapter, name: string, t: CatalogueEntry): AdapterAddend {
  const f = adapter.lowRank.get(name);
  const full = adapter.full.get(name);
  const delta = adapter.direct.get(name);
  if (!isFloatDtype(t.dtype)) throw new ChatVecError('ShapeMismatch', `${adapter.path} changes "${name}", which is ${t.dtype} (not a float tensor) in the model`);
  return {
    tensor: stored(t),
    replace: full ? stored(full) : null,
    lowRank: f ? { ratio: 1, factors: f } : null,
    delta: delta ? stored(delta) : null,
  };
}

/**
 * Opens `modelPath` (a checkpoint folder or .safetensors file) with the PEFT LoRA adapter folder
 * `adapterPath` merged in. Both must be local paths (resolve hub ids first).
 * @throws ChatVecError ShapeMismatch naming the adapter and the model when the adapter does not fit
 *   it (a module it adapts missing, or shapes that differ); the errors of openCheckpoint,
 *   requireUnquantized and openAdapter (DoRA, other PEFT types, unpaired factors…)
 */
export function openAdaptedModel(modelPath: string, adapterPath: string): AdaptedCheckpoint {
  const model = requireUnquantized(openCheckpoint(modelPath));
  const adapter = openAdapter(adapterPath);
  requireAdapterFits(adapter, model, () => false);
  const replaced = new Map<CatalogueEntry, CatalogueEntry>();
  for (const name of new Set([...adapter.lowRank.keys(), ...adapter.full.keys(), ...adapter.direct.keys()])) {
    const t = model.byName.get(name)!; // requireAdapterFits: every name is in the model
    replaced.set(t, { ...t, adapter: addendFor(adapter, name, t) });
  }
  const tensors = model.tensors.map((t) => replaced.get(t) ?? t);
  // byName also holds a family's alias spellings: map every name to the entry it stands for.
  const byName = new Map([...model.byName].map(([k, e]) => [k, replaced.get(e) ?? e] as const));
  return { ...model, tensors, byName, adapter };
}
