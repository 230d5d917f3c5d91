/** Parsers for CLI option values: each failure is a one-line InvalidArgument error. */
import { ChatVecError } from '../core/errors';
import { checkThreads } from '../core/jobs/threadLimit';
import type { BackendChoice } from '../core/jobs/types';
import { type FloatDtype, parseFloatDtype } from '../core/safetensors/dtype';
import { parseByteSize, parseDecimal } from '../protocol/displayFormat';

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

// Decimal notation only: `Number()` also takes "0x10", "0b1", "0o7", "Infinity", "" and " ".
// Linear: no two adjacent parts can match the same characters.
/** `--ratio R`: a finite decimal number (negative allowed). */
export function parseRatio(s: string): number {
  const v = parseDecimal(s);
  if (v === null) throw new ChatVecError('InvalidArgument', `--ratio "${s}" is not a decimal number (e.g. 1, -0.5, 1e-3)`);
  return v;
}

export function parseDtypeOption(s: string | undefined, allowed: readonly FloatDtype[] = ['F32', 'BF16', 'F16']): FloatDtype | undefined {
  if (s === undefined) return undefined;
  const d = parseFloatDtype(s);
  if (!d || !allowed.includes(d)) throw new ChatVecError('InvalidArgument', `--dtype "${s}" is not one of ${allowed.map((a) => a.toLowerCase()).join(', ')}`);
  return d;
}

/** `--threads N`: decimal digits only, 1 … the machine's limit (core/jobs/threadLimit.ts), refused before any work. */
export function parseThreads(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const v = /^\s*\d+\s*$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(v) || v < 1) throw new ChatVecError('InvalidArgument', `--threads "${s}" must be a whole number ≥ 1`);
  return checkThreads(v, '--threads');
}

/** `--threads N` or `--threads=N` among `args` (the last one wins, as in the parser; for work started before the parser runs); undefined when absent. */
export function threadsArgument(args: readonly string[]): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--') break;
    if (args[i] === '--threads') value = args[i + 1];
    else if (args[i]!.startsWith('--threads=')) value = args[i]!.slice('--threads='.length);
  }
  return value;
}

/** `--backend auto|cpu|gpu` (undefined stays undefined: the job's default, auto). */
export function parseBackend(s: string | undefined): BackendChoice | undefined {
  if (s === undefined) return undefined;
  const v = s.trim().toLowerCase();
  if (v !== 'auto' && v !== 'cpu' && v !== 'gpu') throw new ChatVecError('InvalidArgument', `--backend "${s}" is not one of auto, cpu, gpu`);
  return v;
}

/** Help text of `--backend`, shared by the commands that take it. */
export const BACKEND_HELP = 'compute backend: auto (the GPU for large jobs on a hardware adapter), cpu, or gpu (falls back to the CPU with a warning when no GPU is usable)';

/** `--max-shard-size`: see parseByteSize. @throws ChatVecError InvalidArgument naming the value */
export function parseShardSize(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const bytes = parseByteSize(s);
  if (bytes === undefined) throw new ChatVecError('InvalidArgument', `--max-shard-size "${s}" is not a positive size (e.g. 5GB, 500MB, 2GiB)`);
  return bytes;
}

/** "K:V,K:V" → [[K, V], …] (target row K gets chat row V). */
export function parseSpecialTokens(s: string | undefined): [number, number][] | undefined {
  if (s === undefined) return undefined;
  return s.split(',').map((pair) => {
    const m = /^\s*(\d+)\s*:\s*(\d+)\s*$/.exec(pair);
    if (!m) throw new ChatVecError('InvalidArgument', `--special-tokens "${pair}" is not CP_ID:CHAT_ID (e.g. 32003:128009)`);
    return [Number(m[1]), Number(m[2])];
  });
}

/** `--rank R`: a whole number ≥ 1. */
export function parseRank(s: string | undefined, what = '--rank'): number | undefined {
  if (s === undefined) return undefined;
  const v = /^\s*\d+\s*$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(v) || v < 1) throw new ChatVecError('InvalidArgument', `${what} "${s}" must be a whole number ≥ 1`);
  return v;
}

/** `--rank-for PATTERN=R` (repeatable) → [[PATTERN, R], …]. */
export function parseRankFor(xs: readonly string[] | undefined): [string, number][] | undefined {
  if (!xs?.length) return undefined;
  return xs.map((x) => {
    const eq = x.lastIndexOf('=');
    if (eq <= 0) throw new ChatVecError('InvalidArgument', `--rank-for "${x}" is not PATTERN=RANK (e.g. q_proj=32)`);
    return [x.slice(0, eq).trim(), parseRank(x.slice(eq + 1), `--rank-for ${x.slice(0, eq)}: rank`)!];
  });
}

/** `--energy E`: a decimal number in (0, 1]. */
export function parseEnergy(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const v = parseDecimal(s);
  if (v === null || !(v > 0 && v <= 1)) throw new ChatVecError('InvalidArgument', `--energy "${s}" must be a fraction in (0, 1], e.g. 0.9`);
  return v;
}

/** `v` when it is one of `allowed`, else the one-line error naming `flag` and the choices. */
export function oneOf<T extends string>(v: string, allowed: readonly T[], flag: string): T {
  if (!(allowed as readonly string[]).includes(v)) throw new ChatVecError('InvalidArgument', `${flag} must be one of ${allowed.join(', ')} (got "${v}")`);
  return v as T;
}

/** A decimal whole number ≥ 1, else the one-line error naming `flag`. */
export function positiveInt(v: string, flag: string): number {
  const n = parseDecimal(v) ?? NaN;
  if (!Number.isInteger(n) || n < 1) throw new ChatVecError('InvalidArgument', `${flag} must be a positive integer (got "${v}")`);
  return n;
}
