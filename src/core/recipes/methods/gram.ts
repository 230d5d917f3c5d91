/**
 * Kernels of the methods whose output is a linear combination of the inputs with coefficients
 * from dot products (model_stock, nuslerp, karcher): out = c_base·base + Σ cᵢ·mᵢ, where the coefficients
 * come from the Gram matrix Gᵢⱼ = Σ vᵢ·vⱼ of the vectors vᵢ = mᵢ − base (or mᵢ without a base).
 * Over a whole tensor the Gram matrix is summed chunk by chunk (an analysis pass) and the write
 * pass is the engine's `combine`; per row (the last dimension; a 1-D tensor is one row) this
 * kernel reads the rows a chunk touches whole — at most the chunk and two rows — and applies each
 * row's own coefficients.
 */
import type { ChunkRef } from '../../engine/chunking';
import { readInputRun } from '../../engine/adaptedRun';
import { karcherCoefficients } from './karcher';
import { modelStockCoefficients } from './modelStock';
import { nuslerpCoefficients } from './nuslerp';

/** The output is base + Σ cᵢ·vᵢ (without a base: Σ cᵢ·vᵢ): one coefficient per model, in order. */
export type Coefficients = readonly number[];

/** How a method turns a Gram matrix into coefficients (plain data: it travels to the workers). */
export type GramRule =
  | { readonly method: 'model_stock' }
  | { readonly method: 'nuslerp'; readonly t: number }
  | { readonly method: 'karcher'; readonly maxIter: number; readonly tol: number };

/** The coefficients of `rule` from the k×k Gram matrix `g` (row-major). */
export function coefficientsOf(rule: GramRule, g: Float64Array, k: number): Coefficients {
  if (rule.method === 'karcher') return karcherCoefficients(g, k, rule.maxIter, rule.tol);
  return rule.method === 'model_stock' ? modelStockCoefficients(g, k) : nuslerpCoefficients(g, rule.t);
}

let bufs: Float32Array[] = [];
let baseBuf = new Float32Array(0);

function ensure(count: number, k: number): void {
  if (baseBuf.length < count) {
    baseBuf = new Float32Array(count);
    bufs = [];
  }
  while (bufs.length < k) bufs.push(new Float32Array(baseBuf.length));
}


/** Loads the inputs and makes vᵢ (float32, as mergekit's subtraction) in bufs; the bytes read. */
function loadVectors(base: ChunkRef | null, models: readonly ChunkRef[], back: number, count: number): number {
  ensure(count, models.length);
  let bytes = base ? readInputRun(base, count, baseBuf, back) : 0;
  models.forEach((ref, k) => {
    const v = bufs[k]!;
    bytes += readInputRun(ref, count, v, back);
    if (base) for (let i = 0; i < count; i++) v[i] = v[i]! - baseBuf[i]!;
  });
  return bytes;
}

function gramOver(k: number, from: number, to: number): Float64Array {
  const g = new Float64Array(k * k);
  for (let a = 0; a < k; a++) {
    for (let b = a; b < k; b++) {
      const x = bufs[a]!;
      const y = bufs[b]!;
      let s = 0;
      for (let i = from; i < to; i++) s += x[i]! * y[i]!;
      g[a * k + b] = s;
      g[b * k + a] = s;
    }
  }
  return g;
}

/** The Gram matrix of one chunk (float64 sums, row-major k×k) and the bytes read. */
export function chunkGram(base: ChunkRef | null, models: readonly ChunkRef[], count: number): { gram: Float64Array; bytes: number } {
  const bytes = loadVectors(base, models, 0, count);
  return { gram: gramOver(models.length, 0, count), bytes };
}

/**
 * Per-row combination for elements [first, first + count): each row's coefficients from its own
 * Gram matrix, into out[0..count) (rounded once to float32). `base` and `models` point at `first`.
 * @returns the bytes read (whole rows)
 */
export function rowCombine(rule: GramRule, rowLength: number, base: ChunkRef | null, models: readonly ChunkRef[], first: number, count: number, out: Float32Array): number {
  const c = rowLength;
  const winFirst = Math.floor(first / c) * c;
  const winCount = Math.ceil((first + count) / c) * c - winFirst;
  const bytes = loadVectors(base, models, first - winFirst, winCount);
  const k = models.length;
  for (let rowStart = winFirst; rowStart < first + count; rowStart += c) {
    const r0 = rowStart - winFirst;
    const co = coefficientsOf(rule, gramOver(k, r0, r0 + c), k);
    for (let g = Math.max(first, rowStart); g < Math.min(first + count, rowStart + c); g++) {
      const i = g - winFirst;
      let s = base ? baseBuf[i]! : 0;
      for (let m = 0; m < k; m++) s += co[m]! * bufs[m]![i]!;
      out[g - first] = s;
    }
  }
  return bytes;
}

/**
 * Per-column Gram sums of two vectors over elements [first, first + count) of a tensor whose
 * columns are its dim-0 vectors (nuslerp's `nuslerp_row_wise: true` without flatten): element e
 * is in column e mod `stride`. Returns [v₀·v₀, v₀·v₁, v₁·v₁] per column (float64), and the bytes read.
 */
export function chunkColumnGram(base: ChunkRef | null, models: readonly ChunkRef[], first: number, count: number, stride: number): { gram: Float64Array; bytes: number } {
  const bytes = loadVectors(base, models, 0, count);
  const g = new Float64Array(3 * stride);
  const [x, y] = [bufs[0]!, bufs[1]!];
  for (let i = 0, j = first % stride; i < count; i++, j = j + 1 === stride ? 0 : j + 1) {
    const a = x[i]!;
    const b = y[i]!;
    g[3 * j]! += a * a;
    g[3 * j + 1]! += a * b;
    g[3 * j + 2]! += b * b;
  }
  return { gram: g, bytes };
}

/**
 * Per-column combination (see chunkColumnGram): out = base + c₀[j]·v₀ + c₁[j]·v₁ with column j's
 * coefficients at coefficients[2j], [2j + 1], into out[0..count) (rounded once to float32).
 * @returns the bytes read
 */
export function columnCombine(coefficients: Float64Array, stride: number, base: ChunkRef | null, models: readonly ChunkRef[], first: number, count: number, out: Float32Array): number {
  const bytes = loadVectors(base, models, 0, count);
  const [x, y] = [bufs[0]!, bufs[1]!];
  for (let i = 0, j = first % stride; i < count; i++, j = j + 1 === stride ? 0 : j + 1) {
    out[i] = (base ? baseBuf[i]! : 0) + coefficients[2 * j]! * x[i]! + coefficients[2 * j + 1]! * y[i]!;
  }
  return bytes;
}
