/**
 * The dry-run view of a plan: what will be written, how much will be read, a rough time and memory
 * estimate, and which tensors each parameter filter applies to. As text: src/protocol/planText.ts.
 */
import { CHUNK_ELEMENTS } from '../engine/chunking';
import { dtypeBits } from '../safetensors/dtype';
import { perRow } from './methods/gramAnalysis';
import { methodDef } from './methods/registry';
import { type FilterReport, type MergePlan, inputBytes } from './plan';
import { pathLabel } from './yamlSource';

export interface PlanSummary {
  readonly method: string;
  readonly tensorCount: number;
  readonly mergedTensors: number;
  /** Non-float tensors copied unchanged. */
  readonly copiedTensors: number;
  readonly outputBytes: number;
  /** Bytes read by each pass (0 when the method does not need it). */
  readonly readBytes: { readonly analyse: number; readonly refine: number; readonly write: number };
  readonly threads: number;
  /** Rough: bytes moved over an assumed rate, in seconds. */
  readonly estimatedSeconds: number;
  /** Rough peak resident memory of the job, in bytes (it does not grow with model size). */
  readonly estimatedMemoryBytes: number;
  readonly outputLayers: number | null;
  /** `slices:` recipes: output layers ← layers of a model (see MergePlan.layerMap). */
  readonly layerMap: MergePlan['layerMap'];
  /** With a tokenizer source: what happens to the vocabulary (one line each). */
  readonly vocabulary: readonly string[];
  /** Each filter report with `where`, its place in the recipe as text (e.g. `slices[0].parameters`). */
  readonly filters: readonly (FilterReport & { readonly where: string })[];
  readonly warnings: readonly string[];
  /** `model+adapter` inputs: the reference and what the adapter is, one line each. */
  readonly adapters: readonly string[];
  readonly tensors: readonly { readonly name: string; readonly shape: readonly number[]; readonly dtype: string; readonly inputs: readonly string[]; readonly kind: string }[];
}

/** Assumed throughput per worker (decode, compute, encode) and of the disk, in bytes per second. */
const PER_THREAD_RATE = 400e6;
const DISK_RATE = 2e9;

/** Summarises a plan for `threads` workers. */
export function summarizePlan(plan: MergePlan, threads: number): PlanSummary {
  let write = 0;
  let analyse = 0;
  let refine = 0;
  let outputBytes = 0;
  let maxInputs = 1;
  for (const t of plan.tensors) {
    const read = t.inputs.reduce((a, i) => a + inputBytes(i.entry, t.elementCount), 0);
    const out = (t.elementCount * dtypeBits(t.dtype)) / 8;
    outputBytes += out;
    write += read;
    maxInputs = Math.max(maxInputs, t.inputs.length);
    if (t.kind !== 'merge') continue;
    const trims = t.densities.some((d) => d < 1);
    const def = methodDef(plan.method);
    const sparsification = def.gta?.sparsification ?? null;
    if (def.kind === 'slerp') analyse += read;
    if ((sparsification === 'magnitude' || sparsification === 'magnitude_outliers') && trims) {
      analyse += read;
      refine += read;
    }
    if ((sparsification === 'random' || sparsification === 'della_magprune') && trims && t.rescale) analyse += read;
    // Whole tensors and nuslerp's columns need a pass of dot products; rows are read whole in the write pass.
    if (def.kind === 'gram' && !perRow(plan, t)) analyse += read;
    if (def.kind === 'sce') {
      // Σ τ̂² always; the variance's two passes when select_topk selects.
      const selects = (t.selectTopk ?? 1) > 0 && (t.selectTopk ?? 1) < 1;
      analyse += selects ? 2 * read : read;
      if (selects) refine += read;
    }
  }
  const moved = write + outputBytes + analyse + refine;
  const rate = Math.min(threads * PER_THREAD_RATE, DISK_RATE);
  const perWorker = 30e6 + CHUNK_ELEMENTS * (20 + 4 * maxInputs);
  return {
    method: plan.method,
    tensorCount: plan.tensors.length,
    mergedTensors: plan.tensors.filter((t) => t.kind === 'merge').length,
    copiedTensors: plan.tensors.filter((t) => t.kind === 'copy').length,
    outputBytes,
    readBytes: { analyse, refine, write },
    threads,
    estimatedSeconds: moved / rate,
    estimatedMemoryBytes: 100e6 + threads * perWorker,
    outputLayers: plan.outputLayers,
    layerMap: plan.layerMap,
    vocabulary: [
      ...(plan.vocabulary?.lines ?? []),
      ...plan.tensors.filter((t) => t.rebuilt).map((t) => `${t.name}: every input's rows rebuilt by token for the output vocabulary before merging`),
    ],
    filters: plan.filters.map((f) => ({ ...f, where: pathLabel(f.path) })),
    warnings: [...(plan.recipe.notes ?? []), ...plan.warnings],
    adapters: plan.adapters,
    tensors: plan.tensors.map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype, inputs: t.inputs.map((i) => i.model.given), kind: t.kind })),
  };
}
