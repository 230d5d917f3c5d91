/**
 * DELLA's sparsification (mergekit sparsify.py `della_magprune`), per chunk: element j of a task
 * vector is kept with probability p = (density − ε) + 2ε·r/(C − 1), where r is j's rank (0 =
 * smallest |τ|) within its row of C elements — the tensor's last dimension; a 1-D tensor is one
 * row. So the rows a chunk touches are read whole (bounded: the chunk plus two rows), ranked, and
 * the keep decision is drawn from the counter-based stream of (seed, model, tensor, element), so
 * the mask never depends on chunk sizes or threads. Equal magnitudes rank by element index (lower
 * index, lower rank); mergekit's argsort leaves their order unspecified.
 */
import { hashString, uniformRange } from '../../numeric/random';
import type { ChunkRef } from '../../engine/chunking';
import { readInputRun } from '../../engine/adaptedRun';

/** One model's DELLA drop for one tensor. */
export interface DellaDrop {
  readonly seed: number;
  readonly density: number;
  readonly epsilon: number;
  /** Elements per ranked row. */
  readonly rowLength: number;
}

/** The drop of input `inputIndex` (its position in the slice's sources) for a tensor of `shape`. */
export function dellaDrop(seed: number, inputIndex: number, tensorName: string, density: number, epsilon: number, shape: readonly number[]): DellaDrop {
  const n = shape.reduce((a, b) => a * b, 1);
  return { seed: hashString(`della:${seed}:${inputIndex}:${tensorName}`), density, epsilon, rowLength: shape.length >= 2 ? shape[shape.length - 1]! : n };
}

let modelWin = new Float32Array(0);
let baseWin = new Float32Array(0);
let keys = new Float64Array(0);
let rankOf = new Uint32Array(0);
let rnd = new Float64Array(0);


/** Ranks (0 = smallest |τ|, ties by index) of the C elements of τ starting at `off` of the window, into rankOf[0..C). */
function rankRow(tau: Float32Array, off: number, c: number): void {
  const bits = new Uint32Array(tau.buffer, tau.byteOffset + off * 4, c);
  if (c <= 1 << 22) {
    // |τ|'s float32 pattern orders like |τ| (NaN last); pattern·2²² + index fits a float64 exactly.
    for (let i = 0; i < c; i++) keys[i] = (bits[i]! & 0x7fffffff) * 4194304 + i;
    const k = keys.subarray(0, c).sort();
    for (let r = 0; r < c; r++) rankOf[k[r]! % 4194304] = r;
  } else {
    const order = Array.from({ length: c }, (_, i) => i).sort((a, b) => (bits[a]! & 0x7fffffff) - (bits[b]! & 0x7fffffff) || a - b);
    order.forEach((i, r) => (rankOf[i] = r));
  }
}

/**
 * Whether each element [first, first + count) of the task vector `model − base` is kept (1) or
 * dropped (0), into keep[0..count). `model` and `base` point at element `first` of their tensors.
 * @returns the bytes read (the whole rows the chunk touches, of both inputs)
 */
export function dellaKeepMask(d: DellaDrop, model: ChunkRef, base: ChunkRef, first: number, count: number, keep: Uint8Array): number {
  const c = d.rowLength;
  const winFirst = Math.floor(first / c) * c;
  const winCount = Math.ceil((first + count) / c) * c - winFirst;
  if (modelWin.length < winCount) {
    modelWin = new Float32Array(winCount);
    baseWin = new Float32Array(winCount);
  }
  if (keys.length < c) {
    keys = new Float64Array(c);
    rankOf = new Uint32Array(c);
  }
  if (rnd.length < count) rnd = new Float64Array(count);
  let bytes = readInputRun(model, winCount, modelWin, first - winFirst);
  bytes += readInputRun(base, winCount, baseWin, first - winFirst);
  for (let i = 0; i < winCount; i++) modelWin[i] = modelWin[i]! - baseWin[i]!; // τ, rounded to float32 as the kernel's
  uniformRange(d.seed, first, count, rnd);
  const lowP = d.density - d.epsilon;
  const span = 2 * d.epsilon;
  for (let rowStart = winFirst; rowStart < first + count; rowStart += c) {
    rankRow(modelWin, rowStart - winFirst, c);
    const from = Math.max(first, rowStart);
    const to = Math.min(first + count, rowStart + c);
    for (let g = from; g < to; g++) {
      // mergekit: (rank − min)/(max − min), NaN for a one-element row (then bernoulli fails); 0 here.
      const p = lowP + (c > 1 ? rankOf[g - rowStart]! / (c - 1) : 0) * span;
      keep[g - first] = rnd[g - first]! < 2 * p - 1 ? 1 : 0;
    }
  }
  return bytes;
}
