/**
 * The worker task of `extract --rank`: one matrix per task. The worker reads τ = chat − base
 * (float32, rounded once like the full extract), factors it (compute/randomizedSvd.ts) and writes
 * the two PEFT factors, float32, where the job reserved room for them in its scratch file:
 * lora_A then lora_B, in PEFT's shapes. Memory: τ and the sketch panels of this one matrix.
 * With a GPU the same task runs on the main thread instead, its GEMMs on the GPU (lowRankGpu.ts);
 * both paths share the difference, the options and the writing of the factors here.
 */
import { ChatVecError } from '../errors';
import { bytesOf } from '../compute/elements';
import type { ElementArray } from '../compute/types';
import type { PeftLayout } from '../lora/adapterWriter';
import { readerFor, writerFor } from '../io/handleCache';
import { decodeToF32 } from '../numeric/convert';
import { hashString } from '../numeric/random';
import { type LowRankOptions, type LowRankResult, type LowRankWorkspace, randomizedLowRank, sketchColumns } from '../compute/randomizedSvd';
import { cpuGemm } from '../compute/kernels/cpu';
import { type FloatDtype, dtypeBytes } from '../safetensors/dtype';
import { type ChunkRef, chunkRanges } from './chunking';

/** One 2-D matrix of a (base, chat) pair: what every per-matrix task of τ = chat − base reads. */
export interface MatrixPairTask {
  readonly tensor: string;
  readonly rows: number;
  readonly cols: number;
  /** rows · cols: the elements of each input (what the GPU executor reads). */
  readonly count: number;
  readonly chat: ChunkRef;
  readonly base: ChunkRef;
}

export interface LowRankFactorTask extends MatrixPairTask {
  readonly kind: 'lowRankFactor';
  readonly maxRank: number;
  readonly energy: number | null;
  readonly oversample: number;
  readonly powerIterations: number;
  readonly layout: PeftLayout;
  /** Scratch file and position of room for maxRank·(rows + cols) float32 values. */
  readonly out: { readonly file: string; readonly position: number };
}

export interface LowRankFactorResult {
  /** Bytes read and written (progress). */
  readonly bytes: number;
  readonly rank: number;
  readonly norm2: number;
  readonly captured2: number;
  readonly error2: number;
  readonly powerIterations: number;
}

/** The factorisation's options for a task (seeded by the tensor name: the same factors on any thread or device). */
export function factorOptions(t: LowRankFactorTask): LowRankOptions {
  return { maxRank: t.maxRank, energy: t.energy, oversample: t.oversample, powerIterations: t.powerIterations, seed: hashString(t.tensor) };
}

/**
 * Runs a LowRankFactorTask in the calling (worker) thread.
 * @throws ChatVecError InvalidArgument when τ holds NaN/±Inf (no factorisation exists), Io
 */
export function runLowRankFactor(t: LowRankFactorTask): LowRankFactorResult {
  const opts = factorOptions(t);
  const { tau, ws } = tauAndWorkspace(t, opts);
  const r = randomizedLowRank(tau, t.rows, t.cols, opts, ws);
  const w = writerFor(t.out.file);
  return writeFactors(t, r, (bytes, position) => w.writeAtSync(bytes, position));
}

/**
 * Writes the factors of `r` where the task reserved room (lora_A, then lora_B, float32) and
 * returns the task's result.
 */
export function writeFactors(t: LowRankFactorTask, r: LowRankResult, write: (bytes: Uint8Array, position: number) => void): LowRankFactorResult {
  const { rows: m, cols: n } = t;
  const k = r.rank;
  // linear: A = R (k × n), B = L (m × k). embedding, conv1d: τ = (B·A)ᵀ, so A = Lᵀ (k × m), B = Rᵀ (n × k).
  const [a, b] = t.layout === 'linear' ? [r.right, r.left] : [transpose(r.left, m, k), transpose(r.right, k, n)];
  write(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), t.out.position);
  write(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), t.out.position + a.byteLength);
  return {
    bytes: 2 * m * n * dtypeBytes(t.chat.dtype as FloatDtype) + a.byteLength + b.byteLength,
    rank: k,
    norm2: r.norm2,
    captured2: r.captured2,
    error2: r.error2,
    powerIterations: r.powerIterations,
  };
}

/**
 * τ = chat − base of a matrix task, read from its files in the calling (worker) thread.
 * @throws ChatVecError InvalidArgument at the first NaN/±Inf of τ, Io
 */
export function tauFromFiles(t: MatrixPairTask, tau: Float32Array): void {
  differenceInto(t, tau, (which, first, _count, bytes) => {
    const ref = which === 'chat' ? t.chat : t.base;
    readerFor(ref.file).readIntoSync(bytes, ref.position + first * dtypeBytes(ref.dtype as FloatDtype));
  });
}

/**
 * τ read from a matrix task's files and the sketch panels for width `opts`, both where this
 * thread's GEMM kernel reads them (WebAssembly memory for SIMD): what the CPU runs of
 * randomizedLowRank and rankEnergy start from.
 * @throws ChatVecError as tauFromFiles
 */
export function tauAndWorkspace(t: MatrixPairTask, opts: Pick<LowRankOptions, 'maxRank' | 'oversample'>): { tau: Float32Array; ws: LowRankWorkspace } {
  const { rows: m, cols: n } = t;
  const gemm = cpuGemm();
  const l = sketchColumns(opts, m, n);
  const { tau, panels } = gemm.arrays(m * n, [m * l, n * l, n * l]);
  tauFromFiles(t, tau);
  return { tau, ws: { gemm, q: panels[0]!, z: panels[1]!, omega: panels[2]! } };
}

/** τ of a matrix, or the task's own error (τ with NaN/±Inf), which is not a GPU failure. */
export type TauOrError = { readonly ok: true; readonly tau: Float32Array } | { readonly ok: false; readonly error: ChatVecError };

/**
 * τ = chat − base of a matrix task on the GPU path, from the two inputs the GPU executor read
 * whole (chat, then base), as differenceInto forms it in a worker.
 * @throws what differenceInto throws, except InvalidArgument (returned)
 */
export function tauFromInputs(t: MatrixPairTask, inputs: readonly ElementArray[]): TauOrError {
  const tau = new Float32Array(t.count);
  const all = [bytesOf(inputs[0]!), bytesOf(inputs[1]!)] as const;
  try {
    differenceInto(t, tau, (which, first, count, bytes) => {
      const src = all[which === 'chat' ? 0 : 1];
      const size = src.length / t.count;
      bytes.set(src.subarray(first * size, (first + count) * size));
    });
  } catch (e) {
    if (e instanceof ChatVecError && e.code === 'InvalidArgument') return { ok: false, error: e };
    throw e;
  }
  return { ok: true, tau };
}

/**
 * Writes τ = chat − base as float32 into `tau` (one float32 rounding per element), chunk by
 * chunk: `read` fills `bytes` with `count` elements of the chat or base tensor from element `first`.
 * @throws ChatVecError InvalidArgument at the first NaN/±Inf of τ
 */
export function differenceInto(t: Pick<MatrixPairTask, 'tensor' | 'chat' | 'base'>, tau: Float32Array, read: (which: 'chat' | 'base', first: number, count: number, bytes: Uint8Array) => void): void {
  const count = tau.length;
  const decode = (which: 'chat' | 'base', first: number, n: number, into: Float32Array) => {
    const dtype = (which === 'chat' ? t.chat : t.base).dtype as FloatDtype;
    const bytes = new Uint8Array(n * dtypeBytes(dtype));
    read(which, first, n, bytes);
    decodeToF32(dtype, bytes, into, n);
  };
  const c = new Float32Array(Math.min(count, 1 << 20));
  const b = new Float32Array(c.length);
  for (const [first, n] of chunkRanges(count)) {
    decode('chat', first, n, c);
    decode('base', first, n, b);
    for (let i = 0; i < n; i++) {
      const d = c[i]! - b[i]!;
      if (!Number.isFinite(d)) {
        throw new ChatVecError('InvalidArgument', `tensor "${t.tensor}": chat − base is ${d} at element ${first + i}; a matrix with NaN/±Inf has no low-rank factorisation (use the full extract)`);
      }
      tau[first + i] = d;
    }
  }
}

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = x[i * cols + j]!;
  return out;
}
