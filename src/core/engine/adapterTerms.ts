/**
 * How apply uses a LoRA adapter as a chat vector: which terms each target tensor gets (a low-rank
 * term per adapted module, a full term saved − base per tensor the adapter saves whole), and the
 * factor runs each chunk task reads.
 */
import type { CatalogueEntry, Checkpoint } from '../checkpoint/checkpoint';
import { bRowsOf } from '../compute/kernels/lowRankJs';
import { ChatVecError } from '../errors';
import type { AdapterLowRank } from '../checkpoint/tensorAddend';
import type { Adapter } from '../lora/adapter';
import { refAt } from './chunking';
import type { LowRankTerm } from './lowRankTerm';

/**
 * Requires a base for the adapter's full tensors (`modules_to_save`, trained biases), whose chat
 * vector is saved − base.
 * @throws ChatVecError InvalidArgument naming the adapter and some of those tensors
 */
export function requireBaseForFullTensors(adapter: Adapter, base: Checkpoint | null): void {
  if (base || adapter.full.size === 0) return;
  const names = [...adapter.full.keys()];
  throw new ChatVecError(
    'InvalidArgument',
    `${adapter.path} saves whole tensors (modules_to_save or biases: ${names.slice(0, 4).join(', ')}${names.length > 4 ? ' …' : ''}); their chat vector is saved − base, so give the base model: --base BASE --chat ${adapter.path}`,
  );
}

/**
 * Adds the adapter's terms for target tensor `t` (ratio r) to `terms` and `lowRank`: its low-rank
 * product, saved − base for a whole saved tensor, τ itself from chatvec_deltas.safetensors.
 */
export function addAdapterTerms(
  adapter: Adapter,
  ratio: number,
  base: Checkpoint | null,
  t: CatalogueEntry,
  terms: { ratio: number; a: CatalogueEntry; b: CatalogueEntry | null }[],
  lowRank: AdapterLowRank[],
): void {
  const f = adapter.lowRank.get(t.name);
  if (f) lowRank.push({ ratio, factors: f });
  const full = adapter.full.get(t.name);
  if (full) {
    const b = base?.byName.get(t.name);
    if (!b) throw new ChatVecError('NameMismatch', `${adapter.path} saves "${t.name}" whole, but the base has no such tensor`);
    terms.push({ ratio, a: full, b });
  }
  const direct = adapter.direct.get(t.name);
  if (direct) terms.push({ ratio, a: direct, b: null });
}

/** The low-rank term of a chunk task covering elements [first, first + count) of the tensor. */
export function lowRankTermAt(l: AdapterLowRank, first: number, count: number): LowRankTerm {
  const f = l.factors;
  const [rows, cols] = f.shape;
  const common = { ratio: l.ratio * f.scale, layout: f.layout, rank: f.rank, rows, cols, first, count };
  if (f.layout === 'BA') {
    const [r0, n] = bRowsOf(first, count, cols);
    return { ...common, left: { ...refAt(f.b, r0 * f.rank), count: n * f.rank }, right: { ...refAt(f.a, 0), count: f.rank * cols } };
  }
  return { ...common, left: { ...refAt(f.a, 0), count: f.rank * rows }, right: { ...refAt(f.b, 0), count: cols * f.rank } };
}
