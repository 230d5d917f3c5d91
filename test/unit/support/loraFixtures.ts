// PEFT LoRA adapter folders for tests, written with known factors: adapter_config.json and
// adapter_model.safetensors (the engine's writer), as PEFT's save_pretrained lays them out.
import fs from 'node:fs';
import path from 'node:path';
import { type FixtureTensor, readAll, rng, writeModel } from './recipeFixtures';

/** Values uniform in [−1, 1). */
export const uniformValues = (count: number, r: () => number): number[] => Array.from({ length: count }, () => 2 * r() - 1);

/** Writes a PEFT adapter folder at `dir` (r 4, lora_alpha 8 unless `config` says otherwise). */
export function writeAdapter(dir: string, config: Record<string, unknown>, tensors: readonly FixtureTensor[]): string {
  writeModel(dir, tensors);
  fs.rmSync(path.join(dir, 'config.json'));
  fs.renameSync(path.join(dir, 'model.safetensors'), path.join(dir, 'adapter_model.safetensors'));
  fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8, ...config }));
  return dir;
}

/**
 * Random factors of `prefix` (a PEFT module key) with rank r for a [rows, cols] weight: A [r, cols]
 * and B [rows, r], or A [r, rows] and B [cols, r] when `transposed` (fan_in_fan_out, embeddings).
 */
export function loraFactors(prefix: string, r: number, rows: number, cols: number, seed: number, opts: { transposed?: boolean; dtype?: 'BF16' | 'F32'; suffix?: string; embedding?: boolean } = {}): FixtureTensor[] {
  const g = rng(seed);
  const [aShape, bShape] = opts.transposed ? [[r, rows], [cols, r]] : [[r, cols], [rows, r]];
  const names = opts.embedding ? ['lora_embedding_A', 'lora_embedding_B'] : [`lora_A${opts.suffix ?? ''}.weight`, `lora_B${opts.suffix ?? ''}.weight`];
  return [
    { name: `${prefix}.${names[0]}`, shape: aShape, values: uniformValues(aShape[0]! * aShape[1]!, g), ...(opts.dtype ? { dtype: opts.dtype } : {}) },
    { name: `${prefix}.${names[1]}`, shape: bShape, values: uniformValues(bShape[0]! * bShape[1]!, g), ...(opts.dtype ? { dtype: opts.dtype } : {}) },
  ];
}

/** τ = scale·B·A (or its transpose) in float64 from the values the adapter folder stores. */
export function loraTauReference(adapterDir: string, prefix: string, rows: number, cols: number, scale: number, transposed: boolean, names = ['lora_A.weight', 'lora_B.weight']): Float64Array {
  const w = readAll(adapterDir);
  const a = w.get(`${prefix}.${names[0]}`)!;
  const b = w.get(`${prefix}.${names[1]}`)!;
  const r = a.shape[0]!;
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += transposed ? a.values[k * rows + i]! * b.values[j * r + k]! : b.values[i * r + k]! * a.values[k * cols + j]!;
      out[i * cols + j] = scale * s;
    }
  }
  return out;
}
