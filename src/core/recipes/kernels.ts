/**
 * Worker-side chunk kernels of the merge methods that need more than the engine's `combine`:
 *
 * - `recipeStats`: one read of a chunk that returns what a method must know about a whole tensor
 *   before it can write any of it — magnitude histograms of task vectors (TIES: the exact top-k
 *   threshold), L1 sums of kept and all elements (DARE's rescale), and dot/norm sums (SLERP).
 * - `recipeGta`: mergekit's generalized task arithmetic for one chunk: τᵢ = mᵢ − base, sparsify
 *   (magnitude with a known threshold, or a seeded random drop), weight, elect signs, mix,
 *   normalize, λ, add to base — every step rounded to float32 in mergekit's order.
 *
 * Both are pure functions of their inputs: the random drop mask of element j of a tensor depends
 * only on (seed, model, tensor name, j), and sums are returned per chunk for the main thread to add
 * in chunk order, so the bytes never depend on the thread count.
 */
import { writerFor } from '../io/handleCache';
import { encodeFromF32 } from '../numeric/convert';
import { type FloatDtype, dtypeBytes } from '../safetensors/dtype';
import { readInputRun } from '../engine/adaptedRun';
import type { TopCut } from './topCut';
import { BLOCK, uniformRange } from '../numeric/random';
import type { ChunkRef } from '../engine/chunking';
import { type ChunkResult, type StoredRun, checkChunk, readRuns } from '../engine/nonFinite';
import { type DellaDrop, dellaKeepMask } from './methods/dellaMagprune';
import { type SceChunk, eraseAndMix, selectByVariance, varianceAcross } from './methods/sce';
import { type GramRule, chunkColumnGram, chunkGram, columnCombine, rowCombine } from './methods/gram';

/** Random drop: element j of the stream `seed` is kept when its uniform value in [-1, 1) is below `keepBelow` (= 2·density − 1). */
export interface RandomDrop {
  readonly seed: number;
  readonly keepBelow: number;
}

/** What `recipeStats` computes for one task vector τ = model − base. */
export type ModelStat =
  /** Counts of |τ|'s float32 bit patterns by their upper 16 bits, and Σ|τ| over the chunk. */
  | { readonly kind: 'magnitudeHigh' }
  /** For each of `highs`: counts of the elements whose upper 16 bits equal it, by their lower 16 bits; and Σ|τ| of elements above it. */
  | { readonly kind: 'magnitudeLow'; readonly highs: readonly number[] }
  /** Σ|τ| and Σ|τ| over the elements the drop keeps. */
  | { readonly kind: 'dropL1'; readonly drop: RandomDrop }
  /** Σ|τ| and Σ|τ| over the elements DELLA's drop keeps (result kind 'dropL1'). */
  | { readonly kind: 'dellaL1'; readonly drop: DellaDrop }
  | { readonly kind: 'none' };

export type ModelStatResult =
  | { readonly kind: 'hist'; readonly buckets: Uint32Array; readonly counts: Uint32Array; readonly l1: number }
  /** One per `highs` entry of a magnitudeLow stat. */
  | { readonly kind: 'lows'; readonly lows: readonly { readonly buckets: Uint32Array; readonly counts: Uint32Array; readonly l1: number }[] }
  | { readonly kind: 'dropL1'; readonly all: number; readonly kept: number }
  | { readonly kind: 'none' };

export interface RecipeStatsTask {
  readonly kind: 'recipeStats';
  readonly count: number;
  /** Index of the chunk's first element in its tensor (for the random stream). */
  readonly first: number;
  /** sceVariance: histograms of the variance across the task vectors; sceSquares: Σ τ̂ᵢ² per model. */
  readonly mode: 'taskVectors' | 'slerp' | 'sceVariance' | 'sceSquares' | 'gram' | 'columnGram';
  /** columnGram: elements per dim-0 index (column j of element e is e mod stride). */
  readonly stride?: number;
  /** gram, columnGram: whether the vectors are models − base (else the models themselves; `base` is not read). */
  readonly gramBase?: boolean;
  /** sceVariance: absent for pass 1 (upper 16 bits); the bucket whose lower 16 bits pass 2 counts. */
  readonly sceHigh?: number;
  /** sceSquares: the variance cut (null: every element). */
  readonly sceCut?: TopCut | null;
  /** taskVectors: the base; slerp: v0 (the base model). */
  readonly base: ChunkRef;
  /** taskVectors: the models; slerp: [v1]. */
  readonly models: readonly ChunkRef[];
  /** taskVectors: one per model. */
  readonly stats: readonly ModelStat[];
}

export type RecipeStatsResult =
  | { readonly mode: 'taskVectors'; readonly models: readonly ModelStatResult[]; readonly bytes: number }
  | { readonly mode: 'slerp'; readonly aa: number; readonly bb: number; readonly ab: number; readonly bytes: number }
  /** Sparse counts by upper (pass 1) or lower (pass 2) 16 bits; pass 1 also counts non-zero variances. */
  | { readonly mode: 'sceVariance'; readonly buckets: Uint32Array; readonly counts: Uint32Array; readonly nonzero: number; readonly bytes: number }
  | { readonly mode: 'sceSquares'; readonly sums: readonly number[]; readonly bytes: number }
  /** Σ vᵢ·vⱼ over the chunk, row-major k×k. */
  | { readonly mode: 'gram'; readonly gram: Float64Array; readonly bytes: number }
  /** Per column: v₀·v₀, v₀·v₁, v₁·v₁. */
  | { readonly mode: 'columnGram'; readonly gram: Float64Array; readonly bytes: number };

/** How one model's task vector is sparsified in a chunk. */
export type Sparsify =
  | { readonly kind: 'none' }
  /**
   * Keep |τ| bit patterns above `threshold`; of those equal to it, keep the first `keepTies` in
   * this chunk (ties go to the lowest element index) — the k largest of the tensor. `exclude`, the
   * same for a smaller k, removes the largest of those again (breadcrumbs' outliers). Kept values
   * are multiplied by `scale`.
   */
  | { readonly kind: 'magnitude'; readonly threshold: number; readonly keepTies: number; readonly scale: number; readonly exclude?: TopCut }
  | { readonly kind: 'random'; readonly drop: RandomDrop; readonly scale: number }
  | { readonly kind: 'della'; readonly drop: DellaDrop; readonly scale: number };

export interface RecipeGtaTask {
  readonly kind: 'recipeGta';
  readonly count: number;
  readonly first: number;
  readonly base: ChunkRef;
  readonly models: readonly ChunkRef[];
  /** Per model. */
  readonly weights: readonly number[];
  readonly sparsify: readonly Sparsify[];
  /** TIES sign election ("sum" consensus). */
  readonly consensus: boolean;
  /** sce: its variance cut and weights (then sparsify, consensus, normalize and lambda are unused). */
  readonly sce?: SceChunk;
  /** model_stock / nuslerp per row: the rule, the row length, and whether `base` is one (else it is not read). */
  readonly rows?: { readonly rule: GramRule; readonly rowLength: number; readonly withBase: boolean };
  /** nuslerp per column (dim-0 vectors): two coefficients per column, the stride, whether `base` is one. */
  readonly columns?: { readonly coefficients: Float64Array; readonly stride: number; readonly withBase: boolean };
  readonly normalize: boolean;
  readonly lambda: number;
  readonly out: ChunkRef & { readonly dtype: FloatDtype };
}

// Buffers reused across tasks of one worker (memory stays flat whatever the model size).
let raw = new Uint8Array(0);
let baseBuf = new Float32Array(0);
let accBuf = new Float32Array(0);
let divBuf = new Float32Array(0);
let tvBufs: Float32Array[] = [];
const hist = new Uint32Array(65536);
let keepBuf = new Uint8Array(0);
const rnd = new Float64Array(BLOCK);
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

let tvBits: Uint32Array[] = [];

function ensure(count: number, models: number): void {
  if (baseBuf.length < count) {
    baseBuf = new Float32Array(count);
    accBuf = new Float32Array(count);
    divBuf = new Float32Array(count);
    raw = new Uint8Array(count * 8);
    keepBuf = new Uint8Array(count);
    tvBufs = [];
    tvBits = [];
  }
  while (tvBufs.length < models) {
    const b = new Float32Array(baseBuf.length);
    tvBufs.push(b);
    tvBits.push(new Uint32Array(b.buffer));
  }
}

function load(ref: ChunkRef, count: number, into: Float32Array): number {
  return readInputRun(ref, count, into);
}

/** τ = fround(m − base) into `into` (a Float32Array store rounds once). */
function taskVector(ref: ChunkRef, count: number, into: Float32Array): number {
  const n = load(ref, count, into);
  for (let i = 0; i < count; i++) into[i] = into[i]! - baseBuf[i]!;
  return n;
}

/** The float32 value of a magnitude bit pattern. */
export function bitsToFloat(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0]!;
}

/**
 * Pieces [off, off + n) of a chunk starting at element `first`, each within one BLOCK of the drop
 * stream, with the stream's values for the piece in `rnd[0..n)` (memory stays small).
 */
function* dropPieces(drop: RandomDrop, first: number, count: number): Generator<readonly [number, number]> {
  for (let off = 0; off < count; ) {
    const n = Math.min(BLOCK - ((first + off) % BLOCK), count - off);
    uniformRange(drop.seed, first + off, n, rnd);
    yield [off, n];
    off += n;
  }
}

function sparseHistogram(): { buckets: Uint32Array; counts: Uint32Array } {
  let nz = 0;
  for (let b = 0; b < 65536; b++) if (hist[b] !== 0) nz++;
  const buckets = new Uint32Array(nz);
  const counts = new Uint32Array(nz);
  let j = 0;
  for (let b = 0; b < 65536; b++) {
    const c = hist[b]!;
    if (c === 0) continue;
    buckets[j] = b;
    counts[j++] = c;
    hist[b] = 0;
  }
  return { buckets, counts };
}

/** Loads every model's τ into tvBufs (the base is in baseBuf); the variance's float32 patterns into accBuf when asked. */
function loadTaskVectors(models: readonly ChunkRef[], n: number, variance: boolean): number {
  let bytes = 0;
  models.forEach((ref, k) => (bytes += taskVector(ref, n, tvBufs[k]!)));
  if (variance) varianceAcross(tvBufs, models.length, n, accBuf);
  return bytes;
}

function sceStats(t: RecipeStatsTask, bytes: number): RecipeStatsResult {
  const n = t.count;
  const m = t.models.length;
  bytes += loadTaskVectors(t.models, n, t.mode === 'sceVariance' || !!t.sceCut);
  const bits = new Uint32Array(accBuf.buffer, 0, n);
  if (t.mode === 'sceVariance') {
    let nonzero = 0;
    if (t.sceHigh === undefined) {
      for (let i = 0; i < n; i++) {
        const u = bits[i]! & 0x7fffffff;
        hist[u >>> 16]!++;
        if (accBuf[i] !== 0) nonzero++;
      }
    } else {
      for (let i = 0; i < n; i++) {
        const u = bits[i]! & 0x7fffffff;
        if (u >>> 16 === t.sceHigh) hist[u & 0xffff]!++;
      }
    }
    return { mode: 'sceVariance', ...sparseHistogram(), nonzero, bytes };
  }
  const keep = keepBuf;
  selectByVariance(bits, n, t.sceCut ?? null, keep);
  const sums: number[] = [];
  for (let k = 0; k < m; k++) {
    const tv = tvBufs[k]!;
    let s = 0;
    for (let i = 0; i < n; i++) if (keep[i]) s += tv[i]! * tv[i]!;
    sums.push(s);
  }
  return { mode: 'sceSquares', sums, bytes };
}

/** Runs a RecipeStatsTask. */
export function runRecipeStats(t: RecipeStatsTask): RecipeStatsResult {
  const n = t.count;
  if (t.mode === 'gram') return { mode: 'gram', ...chunkGram(t.gramBase ? t.base : null, t.models, n) };
  if (t.mode === 'columnGram') return { mode: 'columnGram', ...chunkColumnGram(t.gramBase ? t.base : null, t.models, t.first, n, t.stride!) };
  ensure(n, Math.max(1, t.models.length));
  let bytes = load(t.base, n, baseBuf);
  if (t.mode === 'slerp') {
    const b = tvBufs[0]!;
    bytes += load(t.models[0]!, n, b);
    let aa = 0;
    let bb = 0;
    let ab = 0;
    for (let i = 0; i < n; i++) {
      const x = baseBuf[i]!;
      const y = b[i]!;
      aa += x * x;
      bb += y * y;
      ab += x * y;
    }
    return { mode: 'slerp', aa, bb, ab, bytes };
  }
  if (t.mode === 'sceVariance' || t.mode === 'sceSquares') return sceStats(t, bytes);
  const results: ModelStatResult[] = [];
  t.models.forEach((ref, m) => {
    const stat = t.stats[m]!;
    if (stat.kind === 'none') {
      results.push({ kind: 'none' });
      return;
    }
    const tv = tvBufs[0]!;
    const bits = tvBits[0]!;
    bytes += taskVector(ref, n, tv);
    if (stat.kind === 'dropL1') {
      let all = 0;
      let kept = 0;
      const below = stat.drop.keepBelow;
      for (const [off, len] of dropPieces(stat.drop, t.first, n)) {
        for (let k = 0; k < len; k++) {
          const a = Math.abs(tv[off + k]!);
          all += a;
          if (rnd[k]! < below) kept += a;
        }
      }
      results.push({ kind: 'dropL1', all, kept });
      return;
    }
    if (stat.kind === 'dellaL1') {
      bytes += dellaKeepMask(stat.drop, ref, t.base, t.first, n, keepBuf);
      let all = 0;
      let kept = 0;
      for (let i = 0; i < n; i++) {
        const a = Math.abs(tv[i]!);
        all += a;
        if (keepBuf[i]) kept += a;
      }
      results.push({ kind: 'dropL1', all, kept });
      return;
    }
    // |τ|'s float32 bit pattern orders like |τ| (NaN above +Inf) as an unsigned integer.
    let l1 = 0;
    if (stat.kind === 'magnitudeHigh') {
      for (let i = 0; i < n; i++) {
        hist[(bits[i]! & 0x7fffffff) >>> 16]!++;
        l1 += Math.abs(tv[i]!);
      }
    } else {
      const lows = stat.highs.map((high) => {
        let above = 0;
        for (let i = 0; i < n; i++) {
          const u = bits[i]! & 0x7fffffff;
          const hi = u >>> 16;
          if (hi === high) hist[u & 0xffff]!++;
          else if (hi > high) above += Math.abs(tv[i]!);
        }
        return { ...sparseHistogram(), l1: above };
      });
      results.push({ kind: 'lows', lows });
      return;
    }
    results.push({ kind: 'hist', ...sparseHistogram(), l1 });
  });
  return { mode: 'taskVectors', models: results, bytes };
}

/**
 * Runs a RecipeGtaTask: the bytes read and written, and the NaN/±Inf the output holds (see
 * engine/nonFinite.ts) when it holds any.
 */
export function runRecipeGta(t: RecipeGtaTask): ChunkResult {
  const n = t.count;
  const m = t.models.length;
  ensure(n, m);
  if (t.columns) return writeOut(t, n, columnCombine(t.columns.coefficients, t.columns.stride, t.columns.withBase ? t.base : null, t.models, t.first, n, accBuf));
  if (t.rows) return writeOut(t, n, rowCombine(t.rows.rule, t.rows.rowLength, t.rows.withBase ? t.base : null, t.models, t.first, n, accBuf));
  let bytes = load(t.base, n, baseBuf);
  if (t.sce) {
    bytes += loadTaskVectors(t.models, n, t.sce.cut !== null);
    selectByVariance(new Uint32Array(accBuf.buffer, 0, n), n, t.sce.cut, keepBuf);
    eraseAndMix(tvBufs, m, n, keepBuf, t.sce.weights, baseBuf, accBuf);
    return writeOut(t, n, bytes);
  }
  const weights = t.weights.map((w) => Math.fround(w));
  for (let k = 0; k < m; k++) {
    const tv = tvBufs[k]!;
    const bits = tvBits[k]!;
    bytes += taskVector(t.models[k]!, n, tv);
    const sp = t.sparsify[k]!;
    const w = weights[k]!;
    // Then the weighted delta fround(τ̂ · w), with τ̂ = fround(τ · scale) where kept, else 0.
    if (sp.kind === 'magnitude') {
      const scale = Math.fround(sp.scale);
      const threshold = sp.threshold;
      let ties = 0;
      // No exclusion: a threshold no pattern reaches (|τ| patterns are below 2^31).
      const exThreshold = sp.exclude?.threshold ?? 0xffffffff;
      const exTies = sp.exclude?.keepTies ?? 0;
      let exSeen = 0;
      for (let i = 0; i < n; i++) {
        const u = (bits[i]! & 0x7fffffff) >>> 0;
        const excluded = u > exThreshold || (u === exThreshold && exSeen++ < exTies);
        const keep = (u > threshold || (u === threshold && ties++ < sp.keepTies)) && !excluded;
        tv[i] = keep ? Math.fround(tv[i]! * scale) * w : 0;
      }
    } else if (sp.kind === 'random') {
      const scale = Math.fround(sp.scale);
      const below = sp.drop.keepBelow;
      for (const [off, len] of dropPieces(sp.drop, t.first, n)) {
        for (let j = 0; j < len; j++) {
          const i = off + j;
          tv[i] = rnd[j]! < below ? Math.fround(tv[i]! * scale) * w : 0;
        }
      }
    } else if (sp.kind === 'della') {
      const scale = Math.fround(sp.scale);
      bytes += dellaKeepMask(sp.drop, t.models[k]!, t.base, t.first, n, keepBuf);
      for (let i = 0; i < n; i++) tv[i] = keepBuf[i] ? Math.fround(tv[i]! * scale) * w : 0;
    } else {
      for (let i = 0; i < n; i++) tv[i] = tv[i]! * w;
    }
  }
  const acc = accBuf;
  const div = divBuf;
  const bufs = tvBufs.slice(0, m);
  if (t.consensus) {
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < m; k++) s = Math.fround(s + bufs[k]![i]!);
      const majority = s >= 0 ? 1 : -1; // mergekit: (Σ ≥ 0) · 2 − 1, so NaN elects −1
      let mixed = 0;
      let d = 0;
      for (let k = 0; k < m; k++) {
        const v = bufs[k]![i]!;
        if (v > 0 ? majority === 1 : v < 0 && majority === -1) {
          mixed = Math.fround(mixed + v);
          d = Math.fround(d + weights[k]!);
        } else if (v !== 0) {
          // mergekit multiplies by the mask: a NaN or ±Inf outvoted still poisons the sum.
          mixed = Math.fround(mixed + v * 0);
        }
      }
      acc[i] = mixed;
      div[i] = d === 0 ? 1 : d;
    }
  } else {
    let d = 0;
    for (let k = 0; k < m; k++) d = Math.fround(d + weights[k]!);
    if (Math.abs(d) < 1e-8) d = 1;
    for (let i = 0; i < n; i++) {
      let mixed = 0;
      for (let k = 0; k < m; k++) mixed = Math.fround(mixed + bufs[k]![i]!);
      acc[i] = mixed;
    }
    div.fill(d, 0, n);
  }
  const lambda = Math.fround(t.lambda);
  for (let i = 0; i < n; i++) {
    let v = acc[i]!;
    if (t.normalize) v = Math.fround(v / div[i]!);
    if (lambda !== 1) v = Math.fround(v * lambda);
    acc[i] = baseBuf[i]! + v;
  }
  return writeOut(t, n, bytes);
}

/** Encodes accBuf[0..n) to the output dtype, writes it, and checks it for NaN/±Inf. */
function writeOut(t: RecipeGtaTask, n: number, bytes: number): ChunkResult {
  const acc = accBuf;
  const outBytes = raw.subarray(0, n * dtypeBytes(t.out.dtype));
  encodeFromF32(t.out.dtype, acc, outBytes, n);
  writerFor(t.out.file).writeAtSync(outBytes, t.out.position);
  // load() has checked that every input is a float tensor.
  const nonFinite = checkChunk({ dtype: t.out.dtype, bytes: outBytes }, n, () => readRuns([t.base, ...t.models] as StoredRun[], n));
  return nonFinite ? { bytes: bytes + outBytes.length, nonFinite } : { bytes: bytes + outBytes.length };
}
