/**
 * The engine's chunk tasks and how a worker thread runs them: a CombineTask is the combine kernel
 * (CombineOf in compute/types.ts) over runs of elements in files; runCombine reads every input
 * straight into the arrays of this thread's CPU kernel (WebAssembly SIMD memory or JavaScript
 * buffers), runs it, writes the output at its position and checks it for NaN/±Inf. The GPU runs
 * the same tasks through engine/gpuExecutor.ts when combineUsesAccelerator says it can.
 */
import { cpuCombine } from '../compute/kernels/cpu';
import { bytesOf, isKernelDtype } from '../compute/elements';
import { GPU_MAX_TERMS } from '../compute/gpu/wgsl';
import type { CombineOf, CombineTermOf, ElementArray } from '../compute/types';
import { ChatVecError } from '../errors';
import { readerFor, writerFor } from '../io/handleCache';
import type { WorkerTask } from '../io/workerPool';
import { type Dtype, type FloatDtype, isFloatDtype } from '../safetensors/dtype';
import { type LowRankTerm, formLowRank } from './lowRankTerm';
import { readInputRun } from './adaptedRun';
import type { ChunkRef } from './chunking';
import { type ChunkResult, type RawElements, checkChunk } from './nonFinite';

export type CombineTerm = CombineTermOf<ChunkRef>;

/** The combine kernel over `count` elements of each input, written at `out`. */
export interface CombineTask extends CombineOf<ChunkRef> {
  readonly kind: 'combine';
  readonly count: number;
  readonly out: ChunkRef & { readonly dtype: FloatDtype };
  /** Terms formed from low-rank factors (LoRA adapters); absent when there are none. */
  readonly lowRank?: readonly LowRankTerm[];
}

/** Copies raw bytes (non-float tensors), optionally requiring pairs of inputs to agree. */
export interface CopyBytesTask {
  readonly kind: 'copyBytes';
  readonly byteLength: number;
  readonly source: ChunkRef;
  /** Each pair (e.g. base and chat) must hold the same bytes, else the task fails naming `tensor`. */
  readonly mustAgree: readonly (readonly [ChunkRef, ChunkRef])[];
  readonly tensor: string;
  readonly out: ChunkRef;
}

/** The inputs of a combine task in order: target, then each term's a and b. */
export function combineInputs(t: CombineOf<ChunkRef>): ChunkRef[] {
  const refs = t.target ? [t.target] : [];
  for (const x of t.terms) refs.push(x.a, ...(x.b ? [x.b] : []));
  return refs;
}

/**
 * Whether the GPU's combine kernel can take this task (mergekit's Task.uses_accelerator): at least
 * one and at most GPU_MAX_TERMS terms (a low-rank term counts as one: the GPU forms its τ first),
 * every input and the output BF16, F16 or F32, no input with an adapter merged in (a recipe's
 * `model+adapter` input is formed on the CPU).
 */
export function combineUsesAccelerator(task: WorkerTask): task is CombineTask {
  if (task.kind !== 'combine') return false;
  const t = task as CombineTask;
  const terms = t.terms.length + (t.lowRank?.length ?? 0);
  return t.count > 0 && !combineInputs(t).some((r) => r.adapter) && terms >= 1 && terms <= GPU_MAX_TERMS && isKernelDtype(t.out.dtype) && combineInputs(t).every((r) => isKernelDtype(r.dtype));
}

function floatDtype(ref: ChunkRef): FloatDtype {
  if (!isFloatDtype(ref.dtype as Dtype)) throw new ChatVecError('Internal', `${ref.file}: ${ref.dtype} is not a float dtype`);
  return ref.dtype as FloatDtype;
}

/**
 * Runs a CombineTask in the calling (worker) thread: the bytes read and written, and the NaN/±Inf
 * the output holds (nonFinite.ts) when it holds any — judged against the inputs still in the
 * kernel's arrays.
 * @throws ChatVecError Io on a short read or failed write, Internal for a non-float input
 */
export function runCombine(t: CombineTask): ChunkResult {
  const n = t.count;
  const kernel = cpuCombine();
  const refs = combineInputs(t);
  const lowRank = t.lowRank ?? [];
  // An input with an adapter merged in (a recipe's `model+adapter`) is formed in float32 first.
  const arrays = kernel.arrays([...refs.map((r) => (r.adapter ? 'F32' : floatDtype(r))), ...lowRank.map((): FloatDtype => 'F32'), t.out.dtype], n);
  let bytes = 0;
  refs.forEach((ref, i) => {
    if (ref.adapter) {
      bytes += readInputRun(ref, n, arrays[i]!.data as Float32Array);
      return;
    }
    const b = bytesOf(arrays[i]!);
    readerFor(ref.file).readIntoSync(b, ref.position);
    bytes += b.length;
  });
  let i = 0;
  const next = (): ElementArray => arrays[i++]!;
  const target = t.target ? next() : null;
  const terms = t.terms.map((x) => ({ ratio: x.ratio, a: next(), b: x.b ? next() : null }));
  for (const lr of lowRank) {
    const tau = next();
    formLowRank(lr, tau.data as Float32Array);
    terms.push({ ratio: lr.ratio, a: tau, b: null });
    bytes += 4 * n; // counted as the τ it stands for (what the job's byte total expects)
  }
  const out = next();
  kernel.run({ target, terms, out });
  const outBytes = bytesOf(out);
  writerFor(t.out.file).writeAtSync(outBytes, t.out.position);
  const inputs = (): RawElements[] => arrays.slice(0, -1).map((a) => ({ dtype: a.dtype, bytes: bytesOf(a) }));
  const nonFinite = checkChunk({ dtype: out.dtype, bytes: outBytes }, n, inputs);
  return nonFinite ? { bytes: bytes + outBytes.length, nonFinite } : { bytes: bytes + outBytes.length };
}

// Buffers reused across copy tasks of one worker: memory stays flat whatever the model size.
let bytesA = new Uint8Array(0);
let bytesB = new Uint8Array(0);

/** Runs a CopyBytesTask; returns the number of bytes read and written (raw bytes: no NaN check). */
export function runCopyBytes(t: CopyBytesTask): ChunkResult {
  const n = t.byteLength;
  if (bytesA.length < n) bytesA = new Uint8Array(n);
  const src = bytesA.subarray(0, n);
  readerFor(t.source.file).readIntoSync(src, t.source.position);
  let bytes = n;
  for (const [x, y] of t.mustAgree) {
    if (bytesB.length < 2 * n) bytesB = new Uint8Array(2 * n);
    const bx = bytesB.subarray(0, n);
    const by = bytesB.subarray(n, 2 * n);
    readerFor(x.file).readIntoSync(bx, x.position);
    readerFor(y.file).readIntoSync(by, y.position);
    bytes += 2 * n;
    if (!sameBytes(bx, by)) {
      throw new ChatVecError('ShapeMismatch', `tensor "${t.tensor}" is not a float tensor and differs between ${x.file} and ${y.file}; cannot combine it`);
    }
  }
  writerFor(t.out.file).writeAtSync(src, t.out.position);
  return { bytes: bytes + n };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
