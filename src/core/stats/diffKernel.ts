/**
 * The chunk task of `diff` and how it runs: a DiffChunkTask is the diff kernel (DiffOf in
 * compute/types.ts) over runs of elements in files. On the CPU, runDiffChunk reads both runs
 * straight into the arrays of this thread's kernel (WebAssembly SIMD memory or JavaScript
 * buffers) and returns the sums (float64, within compute/diffBound.ts of the exact ones); on the
 * GPU, diffOnGpu runs the same task through the GPU executor (engine/gpuExecutor.ts).
 */
import { addSums, bytesOf, emptySums, isKernelDtype } from '../compute/elements';
import { cpuDiff } from '../compute/kernels/cpu';
import type { DiffOf, DiffSums, ElementArray } from '../compute/types';
import { ChatVecError } from '../errors';
import { readerFor } from '../io/handleCache';
import type { WorkerTask } from '../io/workerPool';
import { type FloatDtype, dtypeBytes, isFloatDtype } from '../safetensors/dtype';
import type { ChunkRef } from '../engine/chunking';
import type { AcceleratedKind } from '../engine/gpuExecutor';
import { type LowRankTerm, formLowRank } from '../engine/lowRankTerm';

/**
 * Compare `count` elements.
 * - mode 'ab': Δ = B − A.
 * - mode 'delta': `b` holds Δ itself (a chat vector); B = A + Δ when `a` (the base) is given, and
 *   without `a` only the Δ sums are meaningful (A is taken as 0).
 */
export interface DiffChunkTask extends DiffOf<ChunkRef> {
  readonly kind: 'diffChunk';
  readonly count: number;
  /**
   * A LoRA adapter's update of `a` (mode 'delta'): Δ is formed from the factors for these
   * elements, and `b` is not read.
   */
  readonly lowRank?: LowRankTerm;
  /**
   * Elements read and summed at a time (default: all `count`; ignored with `lowRank`): a task
   * large enough to amortise its messages is read in pieces small enough that the kernel finds
   * the bytes still in the core's cache.
   */
  readonly piece?: number;
}

/** What a diff chunk returns: its sums and the bytes read. */
export type DiffChunkResult = DiffSums & { readonly bytes: number };

function refsOf(t: DiffChunkTask): ChunkRef[] {
  if (t.lowRank) return t.a ? [t.a] : [];
  return t.a ? [t.a, t.b] : [t.b];
}

function floatDtype(ref: ChunkRef): FloatDtype {
  if (!isFloatDtype(ref.dtype)) throw new ChatVecError('Internal', `${ref.file}: ${ref.dtype} is not a float dtype`);
  return ref.dtype;
}

function argsOf(t: DiffChunkTask, arrays: readonly ElementArray[]) {
  return { mode: t.mode, a: t.a ? arrays[0]! : null, b: arrays[arrays.length - 1]! };
}

/**
 * Runs one diff task in the calling (worker) thread, `t.piece` elements at a time; the pieces'
 * sums are added in file order.
 * @returns the chunk's sums and the bytes read
 * @throws ChatVecError Io on a short read, Internal for a non-float dtype
 */
export function runDiffChunk(t: DiffChunkTask): DiffChunkResult {
  const piece = Math.max(16, t.piece ?? t.count);
  if (t.lowRank || piece >= t.count) return runPiece(t);
  const sums = emptySums();
  let bytes = 0;
  for (let first = 0; first < t.count; first += piece) {
    const r = runPiece(pieceOf(t, first, Math.min(piece, t.count - first)));
    addSums(sums, r);
    bytes += r.bytes;
  }
  return { ...sums, bytes };
}

/** Elements [first, first + count) of a task without a low-rank term. */
function pieceOf(t: DiffChunkTask, first: number, count: number): DiffChunkTask {
  const at = (r: ChunkRef): ChunkRef => ({ ...r, position: r.position + first * dtypeBytes(r.dtype) });
  return { kind: 'diffChunk', mode: t.mode, count, a: t.a ? at(t.a) : null, b: at(t.b) };
}

function runPiece(t: DiffChunkTask): DiffChunkResult {
  const kernel = cpuDiff();
  const refs = refsOf(t);
  const arrays = kernel.arrays([...refs.map(floatDtype), ...(t.lowRank ? ['F32' as const] : [])], t.count);
  let bytes = 0;
  refs.forEach((ref, i) => {
    const b = bytesOf(arrays[i]!);
    readerFor(ref.file).readIntoSync(b, ref.position);
    bytes += b.length;
  });
  if (t.lowRank) {
    const tau = arrays[arrays.length - 1]!.data as Float32Array;
    formLowRank(t.lowRank, tau);
    for (let i = 0; i < t.count; i++) tau[i] = t.lowRank.ratio * tau[i]!;
    bytes += 4 * t.count; // counted as the Δ it stands for
  }
  return { ...kernel.run(argsOf(t, arrays)), bytes };
}

/** Diff chunks on the GPU: every chunk of BF16, F16 or F32 inputs (F64 stays on the CPU). */
export const diffOnGpu: AcceleratedKind<DiffChunkTask, DiffSums, DiffChunkResult> = {
  usesAccelerator: (task: WorkerTask): task is DiffChunkTask =>
    task.kind === 'diffChunk' && (task as DiffChunkTask).count > 0 && !(task as DiffChunkTask).lowRank && refsOf(task as DiffChunkTask).every((r) => isKernelDtype(r.dtype)),
  inputs: refsOf,
  compute: (gpu, t, inputs, _output, signal) => gpu.diff(argsOf(t, inputs), { signal }),
  finish: (_t, sums, _inputs, _io, bytesRead) => ({ ...sums, bytes: bytesRead }),
};
