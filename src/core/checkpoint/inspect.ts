/** What `chatvec inspect` shows: a checkpoint's summary and its per-layer table (plain data). */
import { type Dtype } from '../safetensors/dtype';
import { type Checkpoint, type CheckpointSummary, summarize } from './checkpoint';
import { type TensorGroup, groupLabel, groupOrder } from './layers';
import { quantizationLabel, quantizationOf } from './quantization';

export interface GroupSummary {
  readonly label: string;
  readonly group: TensorGroup;
  readonly tensorCount: number;
  readonly parameterCount: number;
  readonly bytes: number;
}

/** What a PEFT LoRA adapter folder holds (filled in by lora/inspectAdapter.ts). */
export interface AdapterSummary {
  readonly rank: number;
  readonly alpha: number;
  readonly rslora: boolean;
  /** Ranks other than `rank` that rank_pattern gives some modules. */
  readonly otherRanks: readonly number[];
  readonly modules: number;
  /** Distinct module names (`q_proj`, `v_proj`, `embed_tokens`, …). */
  readonly targets: readonly string[];
  /** Tensors saved whole (modules_to_save, biases). */
  readonly fullTensors: readonly string[];
  readonly baseModel: string | null;
}

export interface InspectReport extends CheckpointSummary {
  /** Present for a PEFT LoRA adapter folder. */
  readonly adapter?: AdapterSummary;
  readonly path: string;
  readonly kind: 'folder' | 'file';
  readonly architecture: string | null;
  readonly family: string;
  readonly familyChosenBy: Checkpoint['familyChosenBy'];
  readonly tensorCount: number;
  readonly shards: readonly { fileName: string; size: number; tensorCount: number; metadata: Readonly<Record<string, string>> | null }[];
  readonly groups: readonly GroupSummary[];
  /**
   * Set for a quantized checkpoint (checkpoint/quantization.ts): e.g. label "FP8", evidence
   * "F8_E4M3 weights with weight_scale_inv", and the codes and scale tensors, which apply, extract
   * and merge refuse and diff does not compare.
   */
  readonly quantization: { readonly label: string; readonly evidence: string; readonly tensors: readonly string[] } | null;
  readonly tensors: readonly { name: string; dtype: Dtype; shape: readonly number[]; file: string; begin: number; end: number; group: string }[];
}

/** The summary, groups and catalogue of an opened checkpoint (headers only; reads no tensor data). */
export function inspectReport(c: Checkpoint): InspectReport {
  const q = quantizationOf(c);
  const groups = new Map<string, GroupSummary & { tensorCount: number; parameterCount: number; bytes: number }>();
  for (const t of c.tensors) {
    const label = groupLabel(t.group);
    const g = groups.get(label) ?? { label, group: t.group.role === 'layer' ? { role: 'layer', layer: t.group.layer!, module: 'other' } : t.group, tensorCount: 0, parameterCount: 0, bytes: 0 };
    g.tensorCount++;
    g.parameterCount += t.elementCount;
    g.bytes += t.byteLength;
    groups.set(label, g);
  }
  return {
    path: c.path,
    kind: c.kind,
    architecture: c.architecture,
    family: c.family,
    familyChosenBy: c.familyChosenBy,
    tensorCount: c.tensors.length,
    ...summarize(c),
    shards: c.shards.map((s) => ({ fileName: s.fileName, size: s.size, tensorCount: s.tensorCount, metadata: s.metadata })),
    groups: [...groups.values()].sort((a, b) => groupOrder(a.group) - groupOrder(b.group)),
    quantization: q ? { label: quantizationLabel(q), evidence: q.evidence, tensors: [...q.tensors.keys()] } : null,
    tensors: c.tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      file: c.shards[t.shard]!.fileName,
      begin: t.position,
      end: t.position + t.byteLength,
      group: groupLabel(t.group),
    })),
  };
}
