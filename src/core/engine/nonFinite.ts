/**
 * NaN and ±Inf in the outputs of the jobs that write float tensors (extract, apply, merge).
 *
 * A value the arithmetic PRODUCED from finite inputs (an overflowing ratio or weight, a sum past
 * float32's range, a rounding past the output dtype's: float32 70000 → f16 +Inf) is almost always a
 * mistake, so the job fails unless the user opts in; NaN/±Inf that were already in an input and
 * passed through are only counted. Every chunk task (the CPU's JavaScript and SIMD kernels, the
 * merge kernels, the GPU executor's output) checks its own output here, in two steps:
 *
 * 1. anyNonFinite: a SIMD (or branch-free JavaScript) scan of the output's exponent bits — the
 *    common case has none, and the scan costs about 1 % of a bf16 apply chunk;
 * 2. only then countNonFinite: per non-finite output element, whether every input element it came
 *    from was finite (the inputs are read again on the slow path only).
 *
 * The task reports the counts with its result (ChunkResult); the output job adds them up in a
 * NonFiniteTally, which fails the job before anything is committed, or turns them into warnings.
 */
import { ChatVecError } from '../errors';
import { readerFor } from '../io/handleCache';
import type { CheckpointPlan, PlannedTensor } from '../safetensors/writer';
import { type FloatDtype, dtypeBytes } from '../safetensors/dtype';
import { simdKernels } from '../compute/wasm/combineModule';

/** A run of stored elements: raw little-endian bytes of `dtype` (at least count × width bytes). */
export interface RawElements {
  readonly dtype: FloatDtype;
  readonly bytes: Uint8Array;
}

/** Non-finite output elements of a chunk, by origin. */
export interface NonFiniteCounts {
  /** Non-finite although every input element it came from was finite. */
  readonly produced: number;
  /** Non-finite because an input element was (NaN/±Inf passed through). */
  readonly passed: number;
}

/** What a chunk task of an output job returns: bytes read and written, and non-finite outputs when there are any. */
export interface ChunkResult {
  readonly bytes: number;
  readonly nonFinite?: NonFiniteCounts;
}

/** The exponent bits of the 16-bit float dtypes: all set in NaN and ±Inf, and only there. */
export const EXPONENT_16 = { BF16: 0x7f80, F16: 0x7c00 } as const;

/**
 * Whether any of the first `count` elements of `e` is NaN or ±Inf (exponent bits all ones).
 *
 * With WebAssembly SIMD (compute/wasm/combine.wat any_nonfinite16/32) where available: in place for an
 * output already in the kernels' memory (the SIMD combine path), else after copying it there —
 * that memory is scratch between tasks, and the copy plus the SIMD scan cost a fraction of the
 * JavaScript scan (which costs ~15 % of a bf16 apply chunk). F64, and CHATVEC_KERNEL=js, use the
 * JavaScript scan (anyNonFiniteJs).
 */
export function anyNonFinite(e: RawElements, count: number): boolean {
  if (count <= 0) return false;
  const k = e.dtype === 'F64' ? null : simdKernels();
  if (!k) return anyNonFiniteJs(e, count);
  const bytes = count * dtypeBytes(e.dtype);
  let at = e.bytes.byteOffset;
  if (e.bytes.buffer !== k.memory.buffer) {
    k.reserve(bytes);
    new Uint8Array(k.memory.buffer, 0, bytes).set(e.bytes.subarray(0, bytes));
    at = 0;
  }
  return (e.dtype === 'F32' ? k.any_nonfinite32(at, count) : k.any_nonfinite16(at, count, EXPONENT_16[e.dtype as 'BF16' | 'F16'])) !== 0;
}

/**
 * anyNonFinite in plain JavaScript. Scans 32-bit words with OR-accumulated integer arithmetic (no
 * branch per element): for a 16-bit dtype each half of x = (word & EXP) ^ EXP is 0 exactly for a
 * non-finite element, and x − 0x00010001 then sets that half's top bit (halves of x never have it
 * set, so no other case does).
 */
export function anyNonFiniteJs(e: RawElements, count: number): boolean {
  if (count <= 0) return false;
  const width = dtypeBytes(e.dtype);
  // Views need aligned offsets; every kernel's output is aligned, so the copy is a safety net.
  const b = e.bytes.byteOffset % Math.min(width, 4) === 0 ? e.bytes : e.bytes.slice(0, count * width);
  switch (e.dtype) {
    case 'BF16':
    case 'F16':
      return any16(b, count, EXPONENT_16[e.dtype]);
    case 'F32':
      return any32(new Int32Array(b.buffer, b.byteOffset, count), 1, 0);
    case 'F64':
      // The upper word of each little-endian float64 holds sign and exponent.
      return any32(new Int32Array(b.buffer, b.byteOffset, 2 * count), 2, 1, 0x7ff00000);
  }
}

function any16(b: Uint8Array, count: number, exp: number): boolean {
  let first = 0;
  const off = b.byteOffset;
  // A chunk may start at an odd 16-bit position (e.g. bf16 output after 3 bf16 regions of n): do
  // one element alone, then whole words.
  if (off % 4 !== 0) {
    if ((new Uint16Array(b.buffer, off, 1)[0]! & exp) === exp) return true;
    first = 1;
  }
  const words = (count - first) >>> 1;
  const u = new Int32Array(b.buffer, off + 2 * first, words);
  const mask = exp * 0x10001;
  let acc = 0;
  for (let i = 0; i < words; i++) acc |= ((u[i]! & mask) ^ mask) - 0x10001;
  if ((acc & 0x80008000) !== 0) return true;
  const last = first + 2 * words;
  return last < count && (new Uint16Array(b.buffer, off + 2 * last, 1)[0]! & exp) === exp;
}

function any32(u: Int32Array, stride: number, at: number, exp = 0x7f800000): boolean {
  let acc = 0;
  for (let i = at; i < u.length; i += stride) acc |= ((u[i]! & exp) ^ exp) - 1;
  return acc < 0;
}

/** Calls `fn(i)` for each of the first `count` elements of `e` that is NaN or ±Inf (any alignment). */
function forEachNonFinite(e: RawElements, count: number, fn: (i: number) => void): void {
  const width = dtypeBytes(e.dtype);
  const b = e.bytes.byteOffset % 8 === 0 ? e.bytes : e.bytes.slice(0, count * width);
  if (width === 2) {
    const exp = EXPONENT_16[e.dtype as 'BF16' | 'F16'];
    const u = new Uint16Array(b.buffer, b.byteOffset, count);
    for (let i = 0; i < count; i++) if ((u[i]! & exp) === exp) fn(i);
    return;
  }
  const [exp, stride] = width === 4 ? [0x7f800000, 1] : [0x7ff00000, 2];
  const u = new Uint32Array(b.buffer, b.byteOffset, count * stride);
  for (let i = 0; i < count; i++) if ((u[i * stride + stride - 1]! & exp) === exp) fn(i);
}

/**
 * Counts the non-finite elements among the first `count` of `out`, split by whether an element of
 * an input at the same index was non-finite too. `inputs` is consumed one at a time (each may reuse
 * the previous one's buffer) and only as far as needed.
 */
export function countNonFinite(out: RawElements, count: number, inputs: Iterable<RawElements>): NonFiniteCounts {
  // 1: non-finite output; 2: … with a non-finite input at the same index.
  const state = new Uint8Array(count);
  let total = 0;
  forEachNonFinite(out, count, (i) => {
    state[i] = 1;
    total++;
  });
  let passed = 0;
  for (const input of inputs) {
    if (passed === total) break;
    forEachNonFinite(input, count, (i) => {
      if (state[i] === 1) {
        state[i] = 2;
        passed++;
      }
    });
  }
  return { produced: total - passed, passed };
}

/**
 * The check of one chunk: the fast scan of `out`, and only when it finds something, the count
 * against `inputs()` (called then, so inputs are read again on that path only).
 * @returns undefined when the output is all finite
 */
export function checkChunk(out: RawElements, count: number, inputs: () => Iterable<RawElements>): NonFiniteCounts | undefined {
  return anyNonFinite(out, count) ? countNonFinite(out, count, inputs()) : undefined;
}

/** Where a chunk's input elements are stored (a ChunkRef of a float tensor). */
export interface StoredRun {
  readonly file: string;
  readonly position: number;
  readonly dtype: FloatDtype;
}

let scratch = new Uint8Array(0);

/**
 * The inputs of a worker task read again from their files, one at a time into one reused buffer
 * (only on the slow path of checkChunk). Worker threads only: reads through handleCache.
 */
export function* readRuns(runs: readonly StoredRun[], count: number): Generator<RawElements> {
  for (const r of runs) {
    const n = count * dtypeBytes(r.dtype);
    if (scratch.length < n) scratch = new Uint8Array(n);
    const bytes = scratch.subarray(0, n);
    readerFor(r.file).readIntoSync(bytes, r.position);
    yield { dtype: r.dtype, bytes };
  }
}

/** What a job does with non-finite values it produced. */
export interface NonFinitePolicy {
  /** Write the output anyway, with a warning (--allow-non-finite); default: fail the job. */
  readonly allow?: boolean;
  /** The likely cause, for the message, e.g. "the ratio 1e308 overflows float32". */
  readonly hint?: string;
  /** The job's warnings: the tally's are appended before the job writes its extras (model cards list them). */
  readonly warnings?: string[];
}

/** The first non-finite value's place: shard index and byte position, and its tensor. */
interface Place {
  readonly file: number;
  readonly position: number;
  readonly tensor: string;
}

/**
 * Adds up the non-finite counts of an output job's chunks. `mustStop` turns true at the first value
 * produced from finite inputs unless the policy allows them: the job stops handing out tasks, and
 * throwIfFailed then fails it before commit. "First" means first in the output (shard order, then
 * position), whatever order the chunks finished in.
 */
export class NonFiniteTally {
  produced = 0;
  passed = 0;
  private firstProduced: Place | null = null;
  private firstPassed: Place | null = null;
  private byPath: Map<string, { index: number; tensors: readonly PlannedTensor[] }> | null = null;

  /**
   * @param phase the job's name for messages ("apply", "extract", "merge")
   * @param fileOf a planned file name → the path tasks write to
   */
  constructor(
    private readonly phase: string,
    private readonly plan: CheckpointPlan,
    private readonly fileOf: (fileName: string) => string,
    private readonly policy: NonFinitePolicy = {},
  ) {}

  get mustStop(): boolean {
    return this.produced > 0 && this.policy.allow !== true;
  }

  /** Adds a finished task's result; `out` is where the task wrote (its `out` ChunkRef). */
  add(r: ChunkResult, out: { readonly file: string; readonly position: number } | undefined): void {
    if (!r.nonFinite) return;
    const { produced, passed } = r.nonFinite;
    if (produced === 0 && passed === 0) return;
    const at = out ? this.place(out.file, out.position) : null;
    const earlier = (p: Place | null) => at !== null && (p === null || at.file < p.file || (at.file === p.file && at.position < p.position));
    if (produced > 0) {
      this.produced += produced;
      if (earlier(this.firstProduced)) this.firstProduced = at;
    }
    if (passed > 0) {
      this.passed += passed;
      if (earlier(this.firstPassed)) this.firstPassed = at;
    }
  }

  /**
   * @param complete whether every task ran (else the count is a lower bound)
   * @throws ChatVecError InvalidArgument when values were produced from finite inputs and the policy does not allow them
   */
  throwIfFailed(complete: boolean): void {
    if (!this.mustStop) return;
    const n = `${complete ? '' : 'at least '}${values(this.produced)}`;
    throw new ChatVecError(
      'InvalidArgument',
      `${this.phase} produced ${n} (NaN/±Inf) from finite inputs${this.where(this.firstProduced)}${this.hint()} — no output was written (--allow-non-finite writes it anyway)`,
    );
  }

  /** The warnings for the job's result, also appended to the policy's warnings. */
  warnings(): string[] {
    const out: string[] = [];
    if (this.produced > 0) {
      out.push(`${this.phase} wrote ${values(this.produced)} (NaN/±Inf) produced from finite inputs${this.where(this.firstProduced)}${this.hint()} (allowed by --allow-non-finite)`);
    }
    if (this.passed > 0) out.push(`${values(this.passed)} (NaN/±Inf) of the inputs passed through into the output${this.where(this.firstPassed)}`);
    this.policy.warnings?.push(...out);
    return out;
  }

  private hint(): string {
    return this.policy.hint ? `; ${this.policy.hint}` : '';
  }

  private where(p: Place | null): string {
    return p ? ` (first: ${p.tensor})` : '';
  }

  private place(path: string, position: number): Place | null {
    this.byPath ??= new Map(this.plan.files.map((f, index) => [this.fileOf(f.fileName), { index, tensors: f.tensors }]));
    const f = this.byPath.get(path);
    if (!f) return null;
    // Tensors of a file are planned in position order: the last one starting at or before `position`.
    let lo = 0;
    let hi = f.tensors.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (f.tensors[mid]!.position <= position) lo = mid;
      else hi = mid - 1;
    }
    const t = f.tensors[lo];
    return t ? { file: f.index, position, tensor: t.name } : null;
  }
}

function values(n: number): string {
  return `${n} non-finite value${n === 1 ? '' : 's'}`;
}

/** The largest finite value of each dtype (bf16's is float32's but for rounding), and how to write it. */
const DTYPE_MAX: Record<FloatDtype, readonly [number, string]> = { F16: [65504, '65504'], BF16: [3.39e38, '3.4e38'], F32: [3.4e38, '3.4e38'], F64: [Number.MAX_VALUE, '1.8e308'] };

/**
 * The likely cause of values produced from finite inputs, for NonFinitePolicy.hint: the first
 * factor that float32 cannot hold, else the narrowest output dtype's range.
 * @param factors e.g. [{ what: 'ratio', value: 1e308 }]
 */
export function nonFiniteHint(factors: readonly { readonly what: string; readonly value: number }[], outDtypes: Iterable<FloatDtype>): string {
  const huge = factors.find((f) => Number.isFinite(f.value) && !Number.isFinite(Math.fround(f.value)));
  if (huge) return `the ${huge.what} ${String(huge.value).replace('e+', 'e')} overflows float32`;
  // The arithmetic is float32, so nothing fits beyond float32's range whatever the output dtype.
  let narrow: FloatDtype = 'F32';
  for (const d of outDtypes) if (DTYPE_MAX[d][0] < DTYPE_MAX[narrow][0]) narrow = d;
  return `results beyond ±${DTYPE_MAX[narrow][1]} do not fit ${narrow === 'F32' ? 'float32' : narrow.toLowerCase()}`;
}
