/**
 * The cache of energy-at-rank results: one JSON file per (pair, R, skipEmbed), named by a hash of
 * those and of every input shard's identity (path, size, mtime), like the diff cache
 * (stats/diffCache.ts), so a changed shard is never served a stale entry. The figures contain no
 * NaN/±Inf (energy is 1 where ‖τ‖ = 0), so plain JSON holds them. An unreadable or foreign file
 * counts as absent. The backend is not part of the key: CPU and GPU figures both meet the
 * report's tolerance.
 */
import { writeFileAtomicSync } from '../io/atomicFile';
import type { FileIdentity } from '../io/files';
import { stableHash } from '../io/hash';
import { join } from '../io/paths';
import { readSmallTextOrNull } from '../io/sideFile';
import type { EnergyAtRankReport } from '../jobs/types';

/** Bumped when the estimate, its options or the report's shape change. */
export const ENERGY_CACHE_VERSION = 1;

/** What a result depends on. */
export interface EnergyCacheInputs {
  readonly rank: number;
  readonly skipEmbed: boolean;
  readonly base: readonly FileIdentity[];
  readonly chat: readonly FileIdentity[];
}

/** The cache key: SHA-256 hex of the inputs and ENERGY_CACHE_VERSION. */
export function energyCacheKey(inputs: EnergyCacheInputs): string {
  return stableHash({ format: 'chatvec-energy', version: ENERGY_CACHE_VERSION, inputs });
}

function entryFile(cacheDir: string, key: string): string {
  return join(cacheDir, `energy-${key}.json`);
}

/** The cached report for `key` (fromCache true), or null when there is none or it is unreadable. */
export function readCachedEnergy(cacheDir: string, key: string): EnergyAtRankReport | null {
  const text = readSmallTextOrNull(entryFile(cacheDir, key), 'cache');
  if (text === null) return null;
  try {
    const entry = JSON.parse(text) as { format?: unknown; version?: unknown; key?: unknown; report?: EnergyAtRankReport };
    if (entry.format !== 'chatvec-energy' || entry.version !== ENERGY_CACHE_VERSION || entry.key !== key) return null;
    const r = entry.report;
    if (!r || typeof r !== 'object' || !Array.isArray(r.matrices) || !Array.isArray(r.groups) || typeof r.total?.energy !== 'number') return null;
    return { ...r, fromCache: true };
  } catch {
    return null;
  }
}

/**
 * Stores `report` under `key` atomically.
 * @throws ChatVecError Io when the cache folder cannot be written (callers may ignore it)
 */
export function writeCachedEnergy(cacheDir: string, key: string, inputs: EnergyCacheInputs, report: EnergyAtRankReport): void {
  writeFileAtomicSync(entryFile(cacheDir, key), JSON.stringify({ format: 'chatvec-energy', version: ENERGY_CACHE_VERSION, key, inputs, report: { ...report, fromCache: false } }));
}
