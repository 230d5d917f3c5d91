/**
 * Low-rank factorisation of one matrix by randomized SVD (Halko, Martinsson & Tropp 2011,
 * algorithms 4.4 and 5.1): a Gaussian sketch with oversampling, power iterations re-orthonormalised
 * in float64 between each product, then the small projected problem solved exactly (Jacobi eigen
 * of its l × l Gram matrix). The factors are L = Q·W·√S and R = √S⁻¹·Wᵀ·Qᵀ·M, so L·R is the
 * orthogonal projection Q·W_k·W_kᵀ·Qᵀ·M: its error is exactly ‖M‖² − Σ_{i≤k} s_i² before float32
 * rounding, and the singular values are split evenly (√S each side) so neither factor's values
 * dwarf the other's in a 16-bit dtype.
 *
 * The Gaussian test matrix comes from the counter-based generator (random.ts) seeded by the
 * caller (per tensor name), so a matrix's factors never depend on which thread runs it.
 *
 * The algorithm is written once, as a generator that yields each GEMM it needs (lowRankSteps);
 * randomizedLowRank runs it with a CPU GemmKernel (synchronous, in a worker thread) and
 * randomizedLowRankAsync with the GPU's (asynchronous, on the main thread).
 */
import { residualNorm2 } from './kernels/gemmJs';
import { type GemmKernel, gemmJsKernel } from './kernels/gemmSimd';
import type { GpuGemmKernel } from './types';
import { type CancelSignal, throwIfCancelled } from '../errors';
import { uniformRange } from '../numeric/random';
import { symmetricEigen } from '../numeric/symmetricEigen';

/** Upper bound on power iterations. */
export const MAX_POWER_ITERATIONS = 12;
/** Stop once an iteration's energy gain is at most this fraction of the remaining error². */
export const CONVERGED_GAIN = 0.002;

export interface LowRankOptions {
  /** Largest rank to keep (≥ 1); capped at min(m, n). */
  readonly maxRank: number;
  /** Keep the fewest components whose energy Σ s_i² reaches this fraction of ‖M‖² (≤ maxRank); null: maxRank. */
  readonly energy: number | null;
  /** Extra sketch columns beyond maxRank (≥ 10 recommended). */
  readonly oversample: number;
  /** Power iterations (each one product with Mᵀ and one with M). */
  readonly powerIterations: number;
  /** Seed of the Gaussian test matrix. */
  readonly seed: number;
}

export interface LowRankResult {
  readonly rank: number;
  /** L = U·√S, m × rank, row-major float32. */
  readonly left: Float32Array;
  /** R = √S·Vᵀ, rank × n, row-major float32. */
  readonly right: Float32Array;
  /** ‖M‖²_F (float64). */
  readonly norm2: number;
  /** Σ_{i≤rank} s_i²: the energy the factors capture. */
  readonly captured2: number;
  /** ‖M − L·R‖²_F of the float32 factors as stored (float64). */
  readonly error2: number;
  /** The sketch's singular values, descending (l of them). */
  readonly singularValues: readonly number[];
  /** Power iterations run. */
  readonly powerIterations: number;
}

/**
 * Where a factorisation computes: the GEMM kernel and its panels (from the kernel's `arrays()`, so
 * a SIMD kernel reads them in place): q m × l, z and omega n × l, l = {@link sketchColumns}.
 */
export interface LowRankWorkspace {
  readonly gemm: GemmKernel;
  readonly q: Float64Array;
  readonly z: Float64Array;
  readonly omega: Float64Array;
}

/** The sketch's width l for an m × n matrix: the rank (capped at min(m, n), at least 1) plus the oversampling, at most min(m, n). */
export function sketchColumns(opts: Pick<LowRankOptions, 'maxRank' | 'oversample'>, m: number, n: number): number {
  return Math.min(Math.max(1, Math.min(opts.maxRank, m, n)) + opts.oversample, m, n);
}

/** Fills `g` with standard normal values (Box–Muller on the counter-based uniform stream `seed`). */
export function gaussianFill(seed: number, g: Float64Array): void {
  const count = g.length;
  const u = new Float64Array(2 * count);
  uniformRange(seed, 0, 2 * count, u);
  for (let i = 0; i < count; i++) {
    const u1 = 1 - (u[2 * i]! + 1) / 2; // (0, 1]
    const u2 = (u[2 * i + 1]! + 1) / 2;
    g[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
}

/**
 * Orthonormalises the l columns of Y (m × l, row-major) in place by classical Gram–Schmidt applied
 * twice ("twice is enough"), row-contiguous passes. A column left with less than 1e-10 of its
 * norm lies in the span of the earlier ones (M has lower rank than the sketch) and is zeroed.
 */
export function orthonormalizeColumns(Y: Float64Array, m: number, l: number): void {
  const d = new Float64Array(l);
  for (let j = 0; j < l; j++) {
    let before = 0;
    for (let i = 0; i < m; i++) before += Y[i * l + j]! * Y[i * l + j]!;
    for (let pass = 0; pass < 2 && j > 0; pass++) {
      d.fill(0, 0, j);
      for (let i = 0; i < m; i++) {
        const y = Y[i * l + j]!;
        const r = i * l;
        for (let c = 0; c < j; c++) d[c] = d[c]! + Y[r + c]! * y;
      }
      for (let i = 0; i < m; i++) {
        const r = i * l;
        let s = 0;
        for (let c = 0; c < j; c++) s += d[c]! * Y[r + c]!;
        Y[r + j] = Y[r + j]! - s;
      }
    }
    let after = 0;
    for (let i = 0; i < m; i++) after += Y[i * l + j]! * Y[i * l + j]!;
    const keep = after > 0 && after > 1e-20 * before;
    const scale = keep ? 1 / Math.sqrt(after) : 0;
    for (let i = 0; i < m; i++) Y[i * l + j] = Y[i * l + j]! * scale;
  }
}

/** One GEMM of the factorisation: out = M·X ('panel') or Mᵀ·X ('panelT'), X with l columns. */
export interface GemmStep {
  readonly op: 'panel' | 'panelT';
  readonly X: Float64Array;
  readonly l: number;
  readonly out: Float64Array;
}

/** The eigen-decomposition of the Gram matrix ZᵀZ = (QᵀM)(QᵀM)ᵀ (l × l) of Z = Mᵀ·Q (n × l). */
function projectedEigen(n: number, l: number, Z: Float64Array): { values: Float64Array; vectors: Float64Array } {
  return symmetricEigen(gram(Z, n, l), l);
}

function topSum(values: Float64Array, k: number): number {
  let s = 0;
  for (let i = 0; i < Math.min(k, values.length); i++) s += Math.max(0, values[i]!);
  return s;
}

/**
 * Factors M (m × n, row-major float32) as L·R of rank ≤ opts.maxRank (at least 1, also for a zero
 * matrix, whose factors are zero). Power iterations run at least opts.powerIterations times and
 * go on (up to {@link MAX_POWER_ITERATIONS}) while the last one still raised the captured energy
 * by more than {@link CONVERGED_GAIN} of the remaining error²: a flat spectrum (noise-like τ)
 * needs more than a decaying one to come within 1 % of the optimal error.
 */
export function randomizedLowRank(M: Float32Array, m: number, n: number, opts: LowRankOptions, ws?: LowRankWorkspace): LowRankResult {
  const gemm = ws?.gemm ?? gemmJsKernel;
  const steps = lowRankSteps(M, m, n, opts, (...a) => gemmResidualNorm2(gemm, ...a), ws);
  for (let s = steps.next(); ; ) {
    if (s.done) return s.value;
    const { op, X, l, out } = s.value;
    if (op === 'panel') gemm.mulPanel(M, m, n, X, l, out);
    else gemm.mulPanelT(M, m, n, X, l, out);
    s = steps.next();
  }
}

/**
 * randomizedLowRank with the GEMMs on the GPU (see GpuGemmKernel for their float32 rounding);
 * everything else as on the CPU, in float64. The caller releases `gemm`.
 * @throws ChatVecError('Internal') when the GPU fails (the caller may rerun on the CPU); CancelledError between GEMMs
 */
export async function randomizedLowRankAsync(gemm: GpuGemmKernel, M: Float32Array, m: number, n: number, opts: LowRankOptions, signal?: CancelSignal): Promise<LowRankResult> {
  // The GPU sums in float32, too coarse for the cancelling identity of gemmResidualNorm2.
  const steps = lowRankSteps(M, m, n, opts, (M, m, n, L, R, k) => residualNorm2(M, m, n, L, R, k));
  for (let s = steps.next(); ; ) {
    if (s.done) return s.value;
    throwIfCancelled(signal);
    const { op, X, l, out } = s.value;
    await (op === 'panel' ? gemm.mulPanel(M, m, n, X, l, out) : gemm.mulPanelT(M, m, n, X, l, out));
    s = steps.next();
  }
}

/** ‖M − L·R‖²_F of the stored factors; q (m × l) and z (n × l) are free panels the computation may use. */
type Residual = (M: Float32Array, m: number, n: number, L: Float32Array, R: Float32Array, k: number, norm2: number, q: Float64Array, z: Float64Array) => number;

/** Below this fraction of ‖M‖², gemmResidualNorm2's cancellation could matter: the direct sum decides. */
const CANCELLATION_FLOOR = 1e-6;

/**
 * ‖M − L·R‖²_F (float64) as ‖M‖² − 2⟨M, L·R⟩ + ‖L·R‖², where ⟨M, L·R⟩ = Σ L ∘ (M·Rᵀ) is one GEMM
 * of the kernel (SIMD: several times faster than the row-by-row residual, which on a 1b-sized
 * matrix at rank 64 cost as much as a third of the factorisation) and ‖L·R‖² = ⟨LᵀL, R·Rᵀ⟩ is
 * k × k. The terms are float64 sums with relative rounding ~1e-13 of ‖M‖², so where the result is
 * below {@link CANCELLATION_FLOOR}·‖M‖² (a nearly exact factorisation) the direct
 * {@link residualNorm2} is returned instead. q and z hold M·Rᵀ and Rᵀ (k ≤ l columns).
 */
export function gemmResidualNorm2(gemm: GemmKernel, M: Float32Array, m: number, n: number, L: Float32Array, R: Float32Array, k: number, norm2: number, q: Float64Array, z: Float64Array): number {
  const Rt = z.subarray(0, n * k);
  const MRt = q.subarray(0, m * k);
  for (let c = 0; c < k; c++) for (let j = 0; j < n; j++) Rt[j * k + c] = R[c * n + j]!;
  gemm.mulPanel(M, m, n, Rt, k, MRt);
  let cross = 0;
  for (let i = 0; i < m * k; i++) cross += L[i]! * MRt[i]!;
  const gl = gram(L, m, k);
  const gr = gram(Rt, n, k);
  let lr2 = 0;
  for (let i = 0; i < k * k; i++) lr2 += gl[i]! * gr[i]!;
  const e = norm2 - 2 * cross + lr2;
  return e > CANCELLATION_FLOOR * norm2 ? e : residualNorm2(M, m, n, L, R, k);
}

/** XᵀX (k × k, float64) of X (rows × k, row-major). */
function gram(X: Float32Array | Float64Array, rows: number, k: number): Float64Array {
  const G = new Float64Array(k * k);
  for (let i = 0; i < rows; i++) {
    const r = i * k;
    for (let a = 0; a < k; a++) {
      const xa = X[r + a]!;
      if (xa === 0) continue;
      for (let b = a; b < k; b++) G[a * k + b] = G[a * k + b]! + xa * X[r + b]!;
    }
  }
  for (let a = 0; a < k; a++) for (let b = 0; b < a; b++) G[a * k + b] = G[b * k + a]!;
  return G;
}

/** What the sketch phase leaves: the range basis Q (m × l), Z = Mᵀ·Q (n × l) and the eigen-decomposition of ZᵀZ. */
interface Sketch {
  readonly norm2: number;
  readonly maxRank: number;
  readonly l: number;
  readonly Q: Float64Array;
  readonly Z: Float64Array;
  readonly eig: { values: Float64Array; vectors: Float64Array };
  readonly iterations: number;
}

/**
 * The range finder with power iterations (see randomizedLowRank for the stopping rule), yielding
 * each GEMM; shared by the factorisation and the energy-only estimate (rankEnergy).
 */
function* sketchSteps(M: Float32Array, m: number, n: number, opts: Omit<LowRankOptions, 'energy'>, ws?: Omit<LowRankWorkspace, 'gemm'>): Generator<GemmStep, Sketch, void> {
  let norm2 = 0;
  for (let i = 0; i < m * n; i++) norm2 += M[i]! * M[i]!;
  const maxRank = Math.max(1, Math.min(opts.maxRank, m, n));
  const l = sketchColumns(opts, m, n);
  const Q = ws?.q ?? new Float64Array(m * l);
  const Z = ws?.z ?? new Float64Array(n * l);
  const omega = ws?.omega ?? new Float64Array(n * l);
  let previous: Float64Array = new Float64Array(l);
  gaussianFill(opts.seed, omega);
  yield { op: 'panel', X: omega, l, out: Q };
  orthonormalizeColumns(Q, m, l);
  yield { op: 'panelT', X: Q, l, out: Z };
  let eig = projectedEigen(n, l, Z);
  let iterations = 0;
  for (;;) {
    // Z = Mᵀ·Q is the projected matrix Qᵀ·M, transposed; eig is its Gram matrix's eigen-decomposition.
    const captured = topSum(eig.values, maxRank);
    if (iterations >= MAX_POWER_ITERATIONS) break;
    if (iterations >= opts.powerIterations) {
      // Converged: the last iteration gained too little energy to move the error by 0.2 %.
      const gain = captured - topSum(previous, maxRank);
      if (gain <= CONVERGED_GAIN * Math.max(0, norm2 - captured)) break;
    }
    previous = eig.values;
    orthonormalizeColumns(Z, n, l);
    yield { op: 'panel', X: Z, l, out: Q };
    orthonormalizeColumns(Q, m, l);
    yield { op: 'panelT', X: Q, l, out: Z };
    eig = projectedEigen(n, l, Z);
    iterations++;
  }
  return { norm2, maxRank, l, Q, Z, eig, iterations };
}

/** The factorisation of randomizedLowRank, yielding each GEMM for its driver to run. */
function* lowRankSteps(M: Float32Array, m: number, n: number, opts: LowRankOptions, residual: Residual, ws?: Omit<LowRankWorkspace, 'gemm'>): Generator<GemmStep, LowRankResult, void> {
  const { norm2, maxRank, l, Q, Z, eig, iterations } = yield* sketchSteps(M, m, n, opts, ws);
  const { values, vectors: W } = eig;
  const lambda = Array.from(values, (v) => Math.max(0, v));
  let rank = maxRank;
  if (opts.energy !== null && norm2 > 0) {
    let acc = 0;
    rank = 1;
    for (let k = 0; k < maxRank; k++) {
      acc += lambda[k]!;
      rank = k + 1;
      if (acc >= opts.energy * norm2) break;
    }
  }
  const left = new Float32Array(m * rank);
  const right = new Float32Array(rank * n);
  let captured2 = 0;
  for (let c = 0; c < rank; c++) {
    const s = Math.sqrt(lambda[c]!);
    if (s === 0) continue;
    captured2 += lambda[c]!;
    const root = Math.sqrt(s);
    for (let i = 0; i < m; i++) {
      let v = 0;
      for (let a = 0; a < l; a++) v += Q[i * l + a]! * W[a * l + c]!;
      left[i * rank + c] = v * root;
    }
    for (let j = 0; j < n; j++) {
      let v = 0;
      for (let a = 0; a < l; a++) v += Z[j * l + a]! * W[a * l + c]!;
      right[c * n + j] = v / root;
    }
  }
  const error2 = residual(M, m, n, left, right, rank, norm2, Q, Z);
  return { rank, left, right, norm2, captured2, error2, singularValues: lambda.map(Math.sqrt), powerIterations: iterations };
}

/** The energy-only estimate's options (see rankEnergy). */
export type RankEnergyOptions = Omit<LowRankOptions, 'energy'>;

export interface RankEnergyResult {
  /** ‖M‖²_F (float64). */
  readonly norm2: number;
  /** Σ_{i≤rank} of the sketch's s_i²: a lower bound of the optimal rank-`rank` energy (see rankEnergy). */
  readonly captured2: number;
  /** The rank it was measured at (opts.maxRank capped at min(m, n)). */
  readonly rank: number;
  /** Power iterations run. */
  readonly powerIterations: number;
}

function energyOf(s: Sketch): RankEnergyResult {
  const captured2 = Math.min(s.norm2, topSum(s.eig.values, s.maxRank));
  return { norm2: s.norm2, captured2, rank: s.maxRank, powerIterations: s.iterations };
}

/**
 * The energy of M (m × n, row-major float32) an optimal rank-R approximation would keep,
 * Σ_{i≤R} σ_i², estimated by the range finder of randomizedLowRank alone (no factors, no residual:
 * the sketch's Rayleigh–Ritz values). The estimate is the energy of M's projection onto an R-dim
 * subspace, so it never exceeds the optimum (Eckart–Young) beyond float64 rounding; with
 * opts.powerIterations ≥ 1 and the same convergence rule as the factorisation it is within
 * 1 % of ‖M‖² below it (tested against a Jacobi SVD on decaying, flat and noise-like spectra).
 * Zero matrix: captured2 = norm2 = 0.
 */
export function rankEnergy(M: Float32Array, m: number, n: number, opts: RankEnergyOptions, ws?: LowRankWorkspace): RankEnergyResult {
  const gemm = ws?.gemm ?? gemmJsKernel;
  const steps = sketchSteps(M, m, n, opts, ws);
  for (let s = steps.next(); ; ) {
    if (s.done) return energyOf(s.value);
    const { op, X, l, out } = s.value;
    if (op === 'panel') gemm.mulPanel(M, m, n, X, l, out);
    else gemm.mulPanelT(M, m, n, X, l, out);
    s = steps.next();
  }
}

/**
 * rankEnergy with the GEMMs on the GPU (float32 sums; see GpuGemmKernel). The caller releases `gemm`.
 * @throws ChatVecError('Internal') when the GPU fails; CancelledError between GEMMs
 */
export async function rankEnergyAsync(gemm: GpuGemmKernel, M: Float32Array, m: number, n: number, opts: RankEnergyOptions, signal?: CancelSignal): Promise<RankEnergyResult> {
  const steps = sketchSteps(M, m, n, opts);
  for (let s = steps.next(); ; ) {
    if (s.done) return energyOf(s.value);
    throwIfCancelled(signal);
    const { op, X, l, out } = s.value;
    await (op === 'panel' ? gemm.mulPanel(M, m, n, X, l, out) : gemm.mulPanelT(M, m, n, X, l, out));
    s = steps.next();
  }
}
