/**
 * An independent float64 reference for the diff statistics: reads tensors back with plain
 * DataView decoding (not the engine's converters) and sums with Neumaier compensation.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readSafetensorsHeader } from '../../../src/core/safetensors/reader';
import { encodeFromF32 } from '../../../src/core/numeric/convert';
import { type TensorSpec, createPlannedFile, planCheckpoint } from '../../../src/core/safetensors/writer';
import type { DeltaStats } from '../../../src/core/jobs/types';

process.env.CHATVEC_WORKER_SCRIPT ??= path.join(__dirname, 'tsxWorker.cjs');

/** binary16 → number by the IEEE formula, independent of the engine's lookup table. */
function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Every tensor of a checkpoint folder (all shards) as float64 values, by name. */
export function readAllTensors(folder: string): Map<string, { dtype: string; shape: number[]; values: Float64Array | null }> {
  const files = fs.statSync(folder).isFile() ? [folder] : fs.readdirSync(folder).filter((n) => n.endsWith('.safetensors')).map((n) => path.join(folder, n));
  const out = new Map<string, { dtype: string; shape: number[]; values: Float64Array | null }>();
  for (const file of files) {
    const info = readSafetensorsHeader(file);
    const buf = fs.readFileSync(file);
    for (const t of info.tensors) {
      const dv = new DataView(buf.buffer, buf.byteOffset + info.dataStart + t.begin, t.end - t.begin);
      const n = t.elementCount;
      let values: Float64Array | null = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        if (t.dtype === 'F32') values[i] = dv.getFloat32(i * 4, true);
        else if (t.dtype === 'F64') values[i] = dv.getFloat64(i * 8, true);
        else if (t.dtype === 'F16') values[i] = f16ToNumber(dv.getUint16(i * 2, true));
        else if (t.dtype === 'BF16') {
          const w = new DataView(new ArrayBuffer(4));
          w.setUint32(0, dv.getUint16(i * 2, true) << 16);
          values[i] = w.getFloat32(0);
        } else {
          values = null;
          break;
        }
      }
      out.set(t.name, { dtype: t.dtype, shape: [...t.shape], values });
    }
  }
  return out;
}

/** Neumaier-compensated running sum. */
class Sum {
  private s = 0;
  private c = 0;
  add(x: number): void {
    const t = this.s + x;
    this.c += Math.abs(this.s) >= Math.abs(x) ? this.s - t + x : x - t + this.s;
    this.s = t;
  }
  get value(): number {
    return this.s + this.c;
  }
}

/** Reference sums over element pairs; a null `a` means A is unknown (chat vector without base). */
export class RefSums {
  elements = 0;
  nonFinite = 0;
  changed = 0;
  maxAbs = 0;
  unknownA = false;
  readonly d2 = new Sum();
  readonly a2 = new Sum();
  readonly b2 = new Sum();
  readonly ab = new Sum();
  readonly abs = new Sum();

  /** Adds pairs (a[i], b[i]) for i < count; `bIsDelta`: b holds Δ and B = A + Δ. */
  addPairs(a: Float64Array | null, b: Float64Array, count: number, bIsDelta = false): this {
    if (!a) this.unknownA = true;
    for (let i = 0; i < count; i++) {
      const x = a ? a[i]! : 0;
      const y = bIsDelta ? x + b[i]! : b[i]!;
      const d = bIsDelta ? b[i]! : y - x;
      this.elements++;
      if (!Number.isFinite(x) || !Number.isFinite(y) || !Number.isFinite(d)) {
        this.nonFinite++;
        continue;
      }
      this.d2.add(d * d);
      this.a2.add(x * x);
      this.b2.add(y * y);
      this.ab.add(x * y);
      this.abs.add(Math.abs(d));
      this.maxAbs = Math.max(this.maxAbs, Math.abs(d));
      if (d !== 0) this.changed++;
    }
    return this;
  }

  merge(o: RefSums): this {
    this.elements += o.elements;
    this.nonFinite += o.nonFinite;
    this.changed += o.changed;
    this.maxAbs = Math.max(this.maxAbs, o.maxAbs);
    this.unknownA ||= o.unknownA;
    this.d2.add(o.d2.value);
    this.a2.add(o.a2.value);
    this.b2.add(o.b2.value);
    this.ab.add(o.ab.value);
    this.abs.add(o.abs.value);
    return this;
  }

  stats(): DeltaStats {
    const finite = this.elements - this.nonFinite;
    const normA = this.unknownA ? NaN : Math.sqrt(this.a2.value);
    const normB = this.unknownA ? NaN : Math.sqrt(this.b2.value);
    const deltaNorm = Math.sqrt(this.d2.value);
    return {
      elements: this.elements,
      deltaNorm,
      normA,
      normB,
      relative: normA > 0 ? deltaNorm / normA : NaN,
      cosine: normA > 0 && normB > 0 ? this.ab.value / (normA * normB) : NaN,
      maxAbsDelta: this.maxAbs,
      meanAbsDelta: finite > 0 ? this.abs.value / finite : NaN,
      changedFraction: finite > 0 ? this.changed / finite : NaN,
      nonFinite: this.nonFinite,
    };
  }
}

const FIELDS = ['elements', 'deltaNorm', 'normA', 'normB', 'relative', 'cosine', 'maxAbsDelta', 'meanAbsDelta', 'changedFraction', 'nonFinite'] as const;

/**
 * Asserts every statistic within `rel` relative error (NaN must match NaN). Cosine gets an absolute
 * floor too: near 0 it is a difference of large sums, where relative error means nothing.
 */
export function assertStatsClose(actual: DeltaStats, expected: DeltaStats, what: string, rel = 1e-6): void {
  for (const f of FIELDS) {
    const x = actual[f];
    const y = expected[f];
    if (Number.isNaN(y)) {
      assert.ok(Number.isNaN(x), `${what}: ${f} should be NaN, got ${x}`);
      continue;
    }
    const tol = rel * Math.abs(y) + (f === 'cosine' ? 1e-9 : 0);
    assert.ok(Math.abs(x - y) <= tol, `${what}: ${f} = ${x}, reference ${y} (|err| ${Math.abs(x - y)} > ${tol})`);
  }
}

export interface HandTensor extends TensorSpec {
  /** Values (float dtypes: rounded to the dtype when written; others: written as int64/bytes). */
  readonly values: ArrayLike<number>;
}

/** Writes a small checkpoint folder with the engine's planner; `maxShardBytes` splits it into shards. */
export function writeHandCheckpoint(dir: string, tensors: readonly HandTensor[], maxShardBytes = 1e9): void {
  fs.mkdirSync(dir, { recursive: true });
  const plan = planCheckpoint(tensors, maxShardBytes);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  for (const file of plan.files) {
    const f = createPlannedFile(path.join(dir, file.fileName), file);
    for (const t of file.tensors) {
      const spec = byName.get(t.name)!;
      const bytes = new Uint8Array(t.byteLength);
      if (spec.dtype === 'I64') {
        const dv = new DataView(bytes.buffer);
        for (let i = 0; i < t.elementCount; i++) dv.setBigInt64(i * 8, BigInt(spec.values[i]!), true);
      } else {
        encodeFromF32(spec.dtype as 'F32' | 'F16' | 'BF16' | 'F64', Float32Array.from(spec.values), bytes, t.elementCount);
      }
      f.writeAtSync(bytes, t.position);
    }
    f.syncAndClose();
  }
  if (plan.index) fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(plan.index));
}

/** A deterministic pseudo-random sequence in [-1, 1) (the tests' own, not the demo generator's). */
export function randomValues(n: number, seed: number, scale = 1): number[] {
  let s = seed >>> 0 || 1;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out.push(scale * ((s / 2 ** 32) * 2 - 1));
  }
  return out;
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), prefix));
}
