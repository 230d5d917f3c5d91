/**
 * The exact k largest of a tensor's float32 values, streaming: non-negative float32 values order
 * like their bit patterns, so a histogram of the upper 16 bits (pass 1) finds the bucket holding
 * the k-th largest, and a histogram of the lower 16 bits inside that bucket (pass 2) its exact
 * pattern T and how many elements equal to T to keep, chunk by chunk, ties going to lower element
 * indexes. Used by ties and breadcrumbs (|τ|) and sce (the variance across models).
 */
import { bitsToFloat } from './kernels';
import type { TopCut } from './topCut';

/** Pass 2's per-chunk answer for one cut: sparse counts by the lower 16 bits, and Σ of the values above the bucket. */
export type LowHistogram = { readonly buckets: Uint32Array; readonly counts: Uint32Array; readonly l1: number };

/** Pass 1's answer for one cut: the upper-16-bit bucket holding the k-th largest, and how many lie above it. */
export interface CutState {
  readonly k: number;
  readonly high: number;
  readonly above: number;
}

/** The cut for the k largest from pass 1's histogram (32768 buckets by upper 16 bits); k = 0: nothing. */
export function highCut(hist: Float64Array, k: number): CutState {
  let cum = 0;
  let high = 0;
  for (let b = 32767; b >= 0 && k > 0; b--) {
    const c = hist[b]!;
    if (cum + c >= k) {
      high = b;
      break;
    }
    cum += c;
  }
  return { k, high, above: cum };
}

/** Sums per-chunk values in chunk order (the same order whatever the threads). */
export function inOrder(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}

/** A cut's exact threshold and per-chunk tie shares, and Σ|τ| of the k largest. */
export interface CutDecision {
  readonly perChunk: (c: number) => TopCut;
  readonly l1: number;
}

/** Keeps nothing: no bit pattern of |τ| reaches it. */
export const EMPTY_CUT: CutDecision = { perChunk: () => ({ threshold: 0xffffffff, keepTies: 0 }), l1: 0 };

/**
 * The exact threshold from the low histograms of the threshold bucket: T is the bit pattern of the
 * k-th largest |τ|; elements above T are kept, and of those equal to T the first `need` in element
 * order (so the kept count is exactly k, ties going to lower indexes).
 */
export function cutDecision(st: CutState, lowPerChunk: readonly (LowHistogram | null)[], nChunks: number): CutDecision {
  const low = new Float64Array(65536);
  for (const h of lowPerChunk) if (h) for (let j = 0; j < h.buckets.length; j++) low[h.buckets[j]!]! += h.counts[j]!;
  const want = st.k - st.above;
  let cum = 0;
  let lo = 0;
  for (let l = 65535; l >= 0; l--) {
    const c = low[l]!;
    if (cum + c >= want) {
      lo = l;
      break;
    }
    cum += c;
  }
  const threshold = ((st.high << 16) | lo) >>> 0;
  const need = want - cum;
  // Ties (elements equal to T) per chunk, then how many of them each chunk keeps.
  const keepTies: number[] = [];
  let before = 0;
  for (let c = 0; c < nChunks; c++) {
    const h = lowPerChunk[c];
    let ties = 0;
    if (h) for (let j = 0; j < h.buckets.length; j++) if (h.buckets[j] === lo) ties = h.counts[j]!;
    keepTies.push(Math.max(0, Math.min(ties, need - before)));
    before += ties;
  }
  let l1 = inOrder(lowPerChunk.map((h) => h?.l1 ?? 0));
  for (let l = 65535; l > lo; l--) if (low[l]) l1 += low[l]! * bitsToFloat(((st.high << 16) | l) >>> 0);
  l1 += need * bitsToFloat(threshold);
  return { perChunk: (c) => ({ threshold, keepTies: keepTies[c]! }), l1 };
}

