/** Parsers for CLI option values: each failure is a one-line InvalidArgument error. */
import { ChatVecError } from '../core/errors';
import type { BackendChoice } from '../core/jobs/types';
import { type FloatDtype, parseFloatDtype } from '../core/safetensors/dtype';
import { parseByteSize } from '../core/safetensors/writer';

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function parseRatio(s: string): number {
  const v = Number(s);
  if (s.trim() === '' || !Number.isFinite(v)) throw new ChatVecError('InvalidArgument', `--ratio "${s}" is not a number`);
  return v;
}

export function parseDtypeOption(s: string | undefined, allowed: readonly FloatDtype[] = ['F32', 'BF16', 'F16']): FloatDtype | undefined {
  if (s === undefined) return undefined;
  const d = parseFloatDtype(s);
  if (!d || !allowed.includes(d)) throw new ChatVecError('InvalidArgument', `--dtype "${s}" is not one of ${allowed.map((a) => a.toLowerCase()).join(', ')}`);
  return d;
}

export function parseThreads(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const v = Number(s);
  if (!Number.isInteger(v) || v < 1) throw new ChatVecError('InvalidArgument', `--threads "${s}" must be a whole number ≥ 1`);
  return v;
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

export function parseShardSize(s: string | undefined): number | undefined {
  return s === undefined ? undefined : parseByteSize(s);
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
