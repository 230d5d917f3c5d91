/**
 * The types of the compute kernels: element arrays, the one task model of each kernel (combine,
 * diff statistics), the kernel interface every implementation follows, and the GPU backend's.
 *
 * Each kernel has exactly three implementations: the JavaScript reference (compute/kernels/*Js.ts,
 * the definition the others are tested against), WebAssembly SIMD (compute/kernels/*Simd.ts over
 * compute/wasm/*.wat) and WGSL (compute/gpu/wgsl.ts, run by the GPU backend). The executors pick
 * one per chunk: a task says whether it can use the accelerator (usesAccelerator), the executor
 * decides (engine/gpuExecutor.ts on the main thread, the worker threads' CPU kernels otherwise).
 */
import type { CancelSignal } from '../errors';
import type { FloatDtype } from '../safetensors/dtype';
import type { LowRankArgs } from './kernels/lowRankJs';

/** Element dtypes the SIMD and WGSL kernels read and write; the JS reference also takes F64. */
export type KernelDtype = 'BF16' | 'F16' | 'F32';

/**
 * A run of elements of one dtype. BF16 and F16 hold raw 16-bit patterns (little-endian words as
 * read from a safetensors file), F32 and F64 hold values. The length of `data` is the element count.
 */
export type ElementArray =
  | { readonly dtype: 'BF16' | 'F16'; readonly data: Uint16Array }
  | { readonly dtype: 'F32'; readonly data: Float32Array }
  | { readonly dtype: 'F64'; readonly data: Float64Array };

/** An ElementArray of a kernel dtype (what the GPU takes). */
export type KernelArray = Extract<ElementArray, { readonly dtype: KernelDtype }>;

/** One term of a combine: ratio·(a − b), or ratio·a when b is null. */
export interface CombineTermOf<R> {
  readonly ratio: number;
  readonly a: R;
  readonly b: R | null;
}

/**
 * The combine task model over inputs of any kind R (a ChunkRef into a file for the engine's
 * tasks, an ElementArray for the kernels):
 *
 *   acc = f32(target)                 (no target: the first term's product alone)
 *   for each term i:  acc = acc + f32(rᵢ) · (f32(aᵢ) − f32(bᵢ))     (bᵢ null: acc + rᵢ·aᵢ)
 *   out = round_to_dtype(acc)         (nearest, ties to even; NaN stays NaN)
 *
 * every operation rounded to float32 in exactly that order (d = a − b; m = r·d; acc = acc + m).
 * Fused apply is target = CP with (chatᵢ, base) terms; apply from stored vectors has (τᵢ, null)
 * terms; extract has no target and one term with r = 1; a dtype conversion has a target only.
 */
export interface CombineOf<R> {
  readonly target: R | null;
  readonly terms: readonly CombineTermOf<R>[];
}

/** A combine over arrays of equal length, written into `out` (of its own dtype). */
export interface CombineArgs extends CombineOf<ElementArray> {
  readonly out: ElementArray;
}

/**
 * What the diff kernel compares: mode 'ab': Δ = b − a; mode 'delta': b holds Δ itself and
 * B = A + Δ (a null: A is taken as 0 and only the Δ sums mean anything).
 */
export interface DiffOf<R> {
  readonly mode: 'ab' | 'delta';
  readonly a: R | null;
  readonly b: R;
}

export type DiffArgs = DiffOf<ElementArray>;

/**
 * The sums every diff statistic follows from (DeltaStats in jobs/types.ts derives the figures
 * users read; aggregates add sums, never norms). Elements where A or B is NaN/±Inf are counted in
 * `nonFinite` and left out of every sum.
 *
 * The JavaScript reference (the definition) widens every input to float64 first: products are
 * exact, d = b − a is exact or rounded once, sums are float64 over blocks of 4,096. The WebAssembly
 * SIMD kernel and the GPU form terms and bounded partial sums in float32 and add those in float64:
 * within DIFF_RELATIVE_BOUND (compute/diffBound.ts) of the reference, the counts exactly.
 */
export interface DiffSums {
  /** Elements compared (including non-finite ones). */
  elements: number;
  /** Σ(b−a)². */
  sumD2: number;
  /** Σa². */
  sumA2: number;
  /** Σb². */
  sumB2: number;
  /** Σa·b. */
  sumAB: number;
  /** Σ|b−a|. */
  sumAbs: number;
  /** max |b−a| (0 when nothing finite was compared). */
  maxAbs: number;
  /** Count of finite pairs with b ≠ a (−0 equals +0). */
  changed: number;
  /** Count of positions where A or B is NaN or ±Inf. */
  nonFinite: number;
}

/**
 * One CPU implementation of a kernel (the JS reference or WASM SIMD), run synchronously in a
 * worker thread. `arrays` hands out the buffers a task's inputs and output live in — for SIMD
 * inside the module's memory, so file bytes are read straight to where the kernel computes.
 */
export interface CpuKernel<Args, Result> {
  readonly impl: 'js' | 'simd';
  /**
   * Arrays of `n` elements, one per dtype, in this implementation's memory; valid until the next
   * call of `arrays` (a later call may move or reuse them). `run` takes them in the order they
   * were handed out, or arrays of other memory (copied in).
   */
  arrays(dtypes: readonly FloatDtype[], n: number): ElementArray[];
  /** @throws ChatVecError('InvalidArgument') for arrays of unequal length or a malformed task */
  run(args: Args): Result;
}

/** What a backend is, for progress messages and the output's metadata. */
export interface BackendInfo {
  readonly kind: 'cpu' | 'gpu';
  /** e.g. "cpu" or "gpu: llvmpipe (opengles, software)". */
  readonly name: string;
  /** For GPUs: the adapter's device name, backend (vulkan, metal, d3d12, opengles…) and kind. */
  readonly adapter?: { readonly name: string; readonly backend: string; readonly software: boolean; readonly description: string };
}

/** Options common to the kernels of a backend. */
export interface KernelOptions {
  /** Checked between chunks; a cancelled signal makes the call reject with CancelledError. */
  readonly signal?: CancelSignal;
}

/**
 * The accelerator's kernels (the WGSL implementations). Inputs may be of any length (the GPU
 * streams them through its own chunks); several calls may run at once. Methods reject with
 * ChatVecError: 'InvalidArgument' for mismatched lengths, dtypes or term counts, 'Cancelled', and
 * 'Internal' when a device fails (the caller may retry on the CPU).
 */
export interface ComputeBackend {
  readonly kind: 'gpu';
  /** Short name for logs: "gpu: <adapter>". */
  readonly name: string;
  describe(): BackendInfo;
  /** The combine kernel (see CombineOf) into args.out, equal bit for bit to the JS reference. */
  combine(args: CombineArgs, opts?: KernelOptions): Promise<void>;
  /** The diff kernel: float32 partial sums combined in float64 (see DiffSums for the bound). */
  diff(args: DiffArgs, opts?: KernelOptions): Promise<DiffSums>;
  /**
   * A GEMM kernel for one factorisation at a time (the products of GemmKernel, on the GPU; see
   * GpuGemmKernel). The caller release()s it.
   */
  gemm(): GpuGemmKernel;
  /**
   * One chunk of a low-rank product (LowRankArgs: τ = B·A or (B·A)ᵀ) into `out`, float32, within
   * compute/lowRankBound.ts of the JS reference's bits (double-float sums: equal but near a
   * rounding boundary).
   */
  lowRank(args: LowRankArgs, out: Float32Array, opts?: KernelOptions): Promise<void>;
  /** Releases the device and its buffers; the backend is unusable afterwards. Idempotent. */
  dispose(): Promise<void>;
}

/**
 * The GEMMs of the randomized SVD on the accelerator: GemmKernel's products (compute/kernels/
 * gemmSimd.ts) for a float32 M (m × n, row-major) and float64 panels X, asynchronous. The panel is
 * rounded to float32 and the sums are float32 (compute/gpu/gemmGpu.ts states the bound against
 * the float64 reference). Rejects with ChatVecError 'Internal' when the device fails or the shapes
 * exceed its limits (the caller runs the matrix on the CPU). The GPU may keep its copy of M from
 * one call to the next: pass the same array only while its values are unchanged.
 */
export interface GpuGemmKernel {
  readonly impl: 'wgsl';
  /** out (m × l) = M · X, X n × l. */
  mulPanel(M: Float32Array, m: number, n: number, X: Float64Array, l: number, out: Float64Array): Promise<void>;
  /** out (n × l) = Mᵀ · X, X m × l. */
  mulPanelT(M: Float32Array, m: number, n: number, X: Float64Array, l: number, out: Float64Array): Promise<void>;
  /** Frees its GPU buffers. Idempotent. */
  release(): void;
}
