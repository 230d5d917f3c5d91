/** Where each planned output tensor goes: its file name in the output folder and its position. */
import type { CheckpointPlan, PlannedTensor } from '../safetensors/writer';

export interface PlacedTensor extends PlannedTensor {
  readonly fileName: string;
}

export function placeTensors(plan: CheckpointPlan): Map<string, PlacedTensor> {
  return new Map(plan.files.flatMap((f) => f.tensors.map((t) => [t.name, { ...t, fileName: f.fileName }] as const)));
}
