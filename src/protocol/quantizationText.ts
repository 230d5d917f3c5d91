/**
 * How a quantized checkpoint is described to users, for `chatvec inspect` and the editor's Inspect
 * document alike: what quantization, what shows it, and what chatvec does with it.
 */
import type { InspectReport } from '../core/checkpoint/inspect';

/** e.g. "FP8 (F8_E4M3 weights with weight_scale_inv); 4 tensors of codes and scales: …". */
export function formatQuantization(q: NonNullable<InspectReport['quantization']>): string {
  const n = q.tensors.length;
  return `${q.label} (${q.evidence}); ${n} tensor${n === 1 ? '' : 's'} of codes and scales: diff does not compare them, apply/extract/merge refuse the model (use a BF16/F16 release or dequantize it first)`;
}
