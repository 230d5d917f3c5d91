/**
 * Stable content hashes for cache keys. Lives in core/io because it needs node:crypto; callers
 * elsewhere in core get a plain function.
 */
import { createHash } from 'node:crypto';

/**
 * JSON with object keys sorted at every level, so that two equal values always give the same text
 * whatever order their keys were built in. Arrays keep their order (it carries meaning).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v as Record<string, unknown>).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/** SHA-256 (hex, 64 characters) of canonicalJson(value). */
export function stableHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}
