// Helpers of the recipe tests: tiny checkpoints written with the engine's writer, tensor reads
// into float64, and recipe files in temporary folders.
import fs from 'node:fs';
import path from 'node:path';
import { decodeToF32, encodeFromF32 } from '../../../src/core/numeric/convert';
import { readSafetensorsHeader } from '../../../src/core/safetensors/reader';
import type { FloatDtype } from '../../../src/core/safetensors/dtype';
import { createPlannedFile, planCheckpoint } from '../../../src/core/safetensors/writer';
import { openCheckpoint } from '../../../src/core/checkpoint/checkpoint';
import { loadRecipeFile } from '../../../src/core/recipes/recipe';
import { runMergePlan } from '../../../src/core/recipes/run';
import { rng } from './rng';

// Worker threads run the TypeScript sources (see tsxWorker.cjs).
process.env.CHATVEC_WORKER_SCRIPT = path.resolve(__dirname, 'tsxWorker.cjs');

export interface FixtureTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype?: FloatDtype;
  readonly values: ArrayLike<number>;
}

const BYTES: Record<FloatDtype, number> = { F16: 2, BF16: 2, F32: 4, F64: 8 };

/** Writes a checkpoint folder with the given tensors (in order) and a small llama config. */
export function writeModel(dir: string, tensors: readonly FixtureTensor[], config: Record<string, unknown> = {}): string {
  fs.mkdirSync(dir, { recursive: true });
  const plan = planCheckpoint(tensors.map((t) => ({ name: t.name, dtype: t.dtype ?? 'F32', shape: t.shape })), 5e9);
  for (const file of plan.files) {
    const f = createPlannedFile(path.join(dir, file.fileName), file);
    for (const pt of file.tensors) {
      const src = tensors.find((t) => t.name === pt.name)!;
      const dtype = (src.dtype ?? 'F32') as FloatDtype;
      const vals = Float32Array.from(src.values);
      const bytes = new Uint8Array(vals.length * BYTES[dtype]);
      encodeFromF32(dtype, vals, bytes, vals.length);
      f.writeAtSync(bytes, pt.position);
    }
    f.syncAndClose();
  }
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'], model_type: 'llama', ...config }, null, 2));
  return dir;
}

/**
 * A "continually pretrained" stand-in for `base`: every value moved by up to ±0.01 (deterministic
 * from `seed`), the base's config; `dtype` F32 unless given.
 */
export function perturbedCopy(base: string, dir: string, seed: number, dtype?: FloatDtype): string {
  const r = rng(seed);
  return writeModel(
    dir,
    [...readAll(base)].map(([name, t]) => ({ name, shape: t.shape, ...(dtype ? { dtype } : {}), values: t.values.map((v) => v + 0.02 * (r() - 0.5)) })),
    JSON.parse(fs.readFileSync(path.join(base, 'config.json'), 'utf8')) as Record<string, unknown>,
  );
}

/**
 * A copy of `base` moved by a direction shared by every such copy (a sine over the element index)
 * plus its own noise from `seed`: task vectors at a real angle to each other; float32.
 */
export function shiftedCopy(base: string, dir: string, seed: number): string {
  const r = rng(seed);
  return writeModel(
    dir,
    [...readAll(base)].map(([name, t]) => ({ name, shape: t.shape, values: t.values.map((v, i) => v + 0.02 * Math.sin(i * 0.37 + name.length) + 0.015 * (r() - 0.5)) })),
  );
}

/** Reads every tensor of a checkpoint as float64 values (through float32, as stored). */
export function readAll(dir: string): Map<string, { shape: readonly number[]; dtype: string; values: Float64Array; bytes: Uint8Array }> {
  const c = openCheckpoint(dir);
  const out = new Map<string, { shape: readonly number[]; dtype: string; values: Float64Array; bytes: Uint8Array }>();
  const files = new Map<string, Buffer>();
  for (const t of c.tensors) {
    let buf = files.get(t.file);
    if (!buf) {
      buf = fs.readFileSync(t.file);
      files.set(t.file, buf);
    }
    const bytes = new Uint8Array(t.byteLength);
    bytes.set(buf.subarray(t.position, t.position + t.byteLength));
    const f32 = new Float32Array(t.elementCount);
    decodeToF32(t.dtype as FloatDtype, bytes, f32, t.elementCount);
    out.set(t.name, { shape: t.shape, dtype: t.dtype, values: Float64Array.from(f32), bytes });
  }
  return out;
}

/** The raw tensor bytes of every tensor by name (header metadata excluded). */
export function tensorBytes(dir: string): Map<string, Uint8Array> {
  return new Map([...readAll(dir)].map(([k, v]) => [k, v.bytes]));
}

// Tests import rng from here too.
export { rng };

/** Header check of an output: the file parses and every tensor is where the index says. */
export function assertValidCheckpoint(dir: string): void {
  const c = openCheckpoint(dir);
  for (const s of c.shards) readSafetensorsHeader(s.path);
}

let recipeCounter = 0;

/**
 * Writes `yaml` as a recipe file in `dir`, merges it (2 threads unless given) into a fresh folder
 * there, and returns that folder.
 */
export async function mergeRecipeText(dir: string, yaml: string, o: { threads?: number; chunkElements?: number } = {}): Promise<string> {
  const file = path.join(dir, `recipe-${recipeCounter++}.yaml`);
  fs.writeFileSync(file, yaml);
  const loaded = loadRecipeFile(file);
  const out = path.join(dir, `out-${recipeCounter++}`);
  await runMergePlan(loaded.plan, { out, threads: o.threads ?? 2, chunkElements: o.chunkElements, recipeText: loaded.text });
  return out;
}
