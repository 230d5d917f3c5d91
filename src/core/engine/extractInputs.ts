/**
 * What extract (full or low-rank) shares: base and chat opened and checked against each other,
 * which of their tensors make the vector, and the chunk tasks that write τ = chat − base exactly.
 */
import { type CatalogueEntry, type Checkpoint, openCheckpoint } from '../checkpoint/checkpoint';
import { isVocabTensor } from '../checkpoint/layers';
import { requireUnquantized } from '../checkpoint/quantization';
import { ChatVecError } from '../errors';
import { type FloatDtype, dtypeBytes, isFloatDtype } from '../safetensors/dtype';
import { chunkRanges, refAt } from './chunking';
import type { CombineTask } from './combineKernel';
import { requireSameNames, requireSameNonFloat, requireSameShapes } from './inputChecks';

export interface ExtractInputs {
  readonly base: Checkpoint;
  readonly chat: Checkpoint;
  /** The base's float tensors that make the vector (vocabulary tensors left out with skipEmbed). */
  readonly kept: readonly CatalogueEntry[];
  /** Non-float tensors left out of the vector (copied from the target on apply). */
  readonly skipped: readonly string[];
}

/**
 * Opens base and chat and checks that they pair up: the same names and shapes (vocabulary tensors
 * exempt with skipEmbed), float where the base is float, equal bytes where it is not.
 * @throws ChatVecError BadCheckpoint, Unsupported (quantized), NameMismatch, ShapeMismatch, InvalidArgument (no float tensors)
 */
export function openExtractInputs(basePath: string, chatPath: string, skipEmbed: boolean): ExtractInputs {
  // Quantized inputs are refused as they are opened, before any other check or output.
  const base = requireUnquantized(openCheckpoint(basePath));
  const chat = requireUnquantized(openCheckpoint(chatPath));
  requireSameNames(base, chat, (t) => skipEmbed && isVocabTensor(t));
  requireSameShapes(base, chat, skipEmbed);
  const kept = base.tensors.filter((t) => isFloatDtype(t.dtype) && !(skipEmbed && isVocabTensor(t)));
  const skipped = base.tensors.filter((t) => !isFloatDtype(t.dtype)).map((t) => t.name);
  for (const t of kept) {
    const c = chat.byName.get(t.name)!;
    if (!isFloatDtype(c.dtype)) throw new ChatVecError('ShapeMismatch', `tensor "${t.name}" is ${t.dtype} in ${base.path} but ${c.dtype} in ${chat.path}`);
  }
  if (kept.length === 0) throw new ChatVecError('InvalidArgument', `no float tensors to subtract in ${base.path}`);
  // Non-float tensors are left out of the vector and copied from the target on apply: only right
  // when base and chat agree on them (the fused path checks the same).
  for (const name of skipped) requireSameNonFloat(name, base.byName.get(name)!, chat.byName.get(name)!);
  return { base, chat, kept, skipped };
}

/**
 * The combine tasks writing τ = chat − base of base tensor `t` (rounded once to `out.dtype`) at
 * `out.position` of `out.file`, chunk by chunk.
 */
export function* differenceTasks(t: CatalogueEntry, chat: Checkpoint, out: { readonly file: string; readonly position: number; readonly dtype: FloatDtype }): Generator<CombineTask> {
  const c = chat.byName.get(t.name)!;
  for (const [first, count] of chunkRanges(t.elementCount)) {
    yield {
      kind: 'combine',
      count,
      target: null,
      terms: [{ ratio: 1, a: refAt(c, first), b: refAt(t, first) }],
      out: { file: out.file, position: out.position + first * dtypeBytes(out.dtype), dtype: out.dtype },
    };
  }
}
