/**
 * Before a merge with a tokenizer source: every input of a rebuilt embedding / LM head is written
 * for the output vocabulary (vocab/rebuildRows.ts) into a temporary folder beside the output, and
 * the plan's inputs point there, so that every pass reads them as ordinary tensors. After the
 * merge: the output tokenizer gains the tokens the vocabulary added.
 */
import { AtomicOutputDir } from '../io/atomicOutput';
import { CancelledError } from '../errors';
import type { JobContext } from '../jobs/types';
import { rebuildRows } from '../vocab/rebuildRows';
import type { TensorLocation } from '../safetensors/reader';
import type { MergePlan, PlannedTensor } from './plan';

export interface RebuiltPlan {
  /** The plan with rebuilt inputs read from the temporary folder. */
  readonly plan: MergePlan;
  /** Removes the temporary folder (after the merge, whether it succeeded or not). */
  readonly dispose: () => void;
}

/**
 * Writes the rebuilt rows of every tensor that needs them.
 * @param inputs every input path (the temporary folder obeys the output rules against them)
 * @throws ChatVecError Io; CancelledError when ctx.signal is raised (the folder is removed)
 */
export function withRebuiltRows(plan: MergePlan, out: string, overwrite: boolean, inputs: readonly string[], ctx: JobContext): RebuiltPlan {
  const vp = plan.vocabulary;
  if (!vp || !plan.tensors.some((t) => t.rebuilt)) return { plan, dispose: () => {} };
  const temp = AtomicOutputDir.begin(out, { overwrite, inputs, tag: `vocab-${Date.now().toString(36)}` });
  try {
    let n = 0;
    const tensors = plan.tensors.map((t): PlannedTensor => {
      const rb = t.rebuilt;
      if (!rb) return t;
      if (ctx.signal?.cancelled) throw new CancelledError();
      const locations = new Map<number, TensorLocation>(t.inputs.map((inp, i) => [rb.models[i]!, inp.entry]));
      ctx.onLog?.('info', `vocabulary: rebuilding ${t.name} for ${vp.outRows} rows`);
      return { ...t, inputs: t.inputs.map((inp, i) => ({ ...inp, entry: { ...inp.entry, ...rebuildRows(temp.file(`rows-${n++}.bin`), rb.models[i]!, locations, rb.rules, vp.vocab) } })) };
    });
    return { plan: { ...plan, tensors }, dispose: () => temp.abort() };
  } catch (e) {
    temp.abort();
    throw e;
  }
}
