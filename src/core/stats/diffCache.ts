/**
 * The diff cache: one JSON file per compared pair, named by a hash of the identities (path, size,
 * mtime) of every input shard. Any change to any shard changes the key, so a stale entry is never
 * read; old entries are simply left behind (a few kB each). A file that cannot be parsed or does
 * not look like an entry is treated as absent and overwritten. Writes are atomic (temp + rename),
 * so concurrent runs and crashes never leave half an entry. The backend is not part of the key: a
 * GPU result and a CPU result both lie within the bound of compute/diffBound.ts of the float64
 * definition (counts exactly), so an entry computed on either serves both.
 */
import { writeFileAtomicSync } from '../io/atomicFile';
import { readSmallTextOrNull } from '../io/sideFile';
import type { FileIdentity } from '../io/files';
import { stableHash } from '../io/hash';
import { join } from '../io/paths';
import type { DiffReport } from '../jobs/types';

/**
 * Bumped whenever the statistics, the report's shape or the encoding change, so old entries are
 * not reused. 2: strings that begin with NUL are escaped (see `encodeValue`). 4: quantized
 * tensors are skipped and the verdict counts tensors not compared. 5: the CPU's SIMD kernel sums
 * in float32 blocks (compute/diffBound.ts), so figures change in about the 7th digit. 6: Σab is
 * taken from Σa², Σb² and Σd² (SIMD and GPU), so the cosine of close models is far more accurate.
 */
export const DIFF_CACHE_VERSION = 6;

/** What a result depends on. */
export interface DiffCacheInputs {
  readonly mode: 'ab' | 'vector';
  readonly a: readonly FileIdentity[];
  /** B's shards; null in vector mode. */
  readonly b: readonly FileIdentity[] | null;
  /** The base used for norms in vector mode (null when none was found). */
  readonly base: readonly FileIdentity[] | null;
}

/** The cache key: a SHA-256 hex string of the inputs and DIFF_CACHE_VERSION. */
export function diffCacheKey(inputs: DiffCacheInputs): string {
  return stableHash({ format: 'chatvec-diff', version: DIFF_CACHE_VERSION, inputs });
}

/** Where the entry for `key` lives inside `cacheDir`. */
export function diffCacheFile(cacheDir: string, key: string): string {
  return join(cacheDir, `diff-${key}.json`);
}

// JSON has no NaN, ±Inf or -0, and relative/cosine are NaN for zero norms. Such a number is
// written as NUL + "num:" + its text; so that no string (a tensor name is any string) can read
// back as a number, every string that itself begins with NUL is written with one more NUL in
// front. Decoding undoes exactly one of the two, so every string and every double round-trips.
const NUL = '\u0000';
const NUM_TAG = `${NUL}num:`;

function encodeValue(_k: string, v: unknown): unknown {
  if (typeof v === 'number') {
    if (Object.is(v, -0)) return `${NUM_TAG}-0`;
    return Number.isFinite(v) ? v : NUM_TAG + String(v);
  }
  return typeof v === 'string' && v.startsWith(NUL) ? NUL + v : v;
}

function decodeValue(_k: string, v: unknown): unknown {
  if (typeof v !== 'string' || !v.startsWith(NUL)) return v;
  if (v.startsWith(NUL, 1)) return v.slice(1);
  if (v.startsWith(NUM_TAG)) return Number(v.slice(NUM_TAG.length));
  throw new SyntaxError('unknown escape in a diff cache entry');
}

/**
 * The cached report for `key`, with fromCache true; null when there is none or it is unreadable.
 * `seconds` is left as stored (the caller sets the time of this request).
 */
export function readCachedDiff(cacheDir: string, key: string): DiffReport | null {
  const text = readSmallTextOrNull(diffCacheFile(cacheDir, key), 'cache');
  if (text === null) return null;
  try {
    const entry = JSON.parse(text, decodeValue) as { format?: unknown; version?: unknown; key?: unknown; report?: unknown };
    if (entry.format !== 'chatvec-diff' || entry.version !== DIFF_CACHE_VERSION || entry.key !== key) return null;
    const r = entry.report as DiffReport | undefined;
    if (!r || typeof r !== 'object' || !r.lineage || typeof r.lineage !== 'object' || !r.total || typeof r.total.deltaNorm !== 'number') return null;
    if (![r.groups, r.tensors, r.onlyInA, r.onlyInB, r.shapeMismatches].every(Array.isArray)) return null;
    return { ...r, fromCache: true };
  } catch {
    return null;
  }
}

/**
 * Stores `report` under `key` atomically.
 * @throws ChatVecError Io when the cache folder cannot be written (callers may ignore it)
 */
export function writeCachedDiff(cacheDir: string, key: string, inputs: DiffCacheInputs, report: DiffReport): void {
  const entry = { format: 'chatvec-diff', version: DIFF_CACHE_VERSION, key, inputs, report: { ...report, fromCache: false } };
  writeFileAtomicSync(diffCacheFile(cacheDir, key), JSON.stringify(entry, encodeValue));
}
