/** Element arrays and the checks every kernel implementation applies to its arguments. */
import { ChatVecError } from '../errors';
import type { FloatDtype } from '../safetensors/dtype';
import type { CombineArgs, DiffArgs, DiffSums, ElementArray, KernelDtype } from './types';

/** Whether the SIMD and WGSL kernels take this dtype as it is stored. */
export function isKernelDtype(d: string): d is KernelDtype {
  return d === 'BF16' || d === 'F16' || d === 'F32';
}

/** Bytes per element of a float dtype. */
export function elementBytes(d: FloatDtype): 2 | 4 | 8 {
  return d === 'F64' ? 8 : d === 'F32' ? 4 : 2;
}

/** A zero-filled array of `count` elements of `dtype`. */
export function allocElements(dtype: FloatDtype, count: number): ElementArray {
  return viewElements(dtype, new Uint8Array(count * elementBytes(dtype)));
}

/**
 * A view of little-endian bytes (as read from a safetensors file) as an ElementArray, without a
 * copy when `bytes` is aligned to the element size, with one otherwise.
 * @throws ChatVecError('InvalidArgument') when the byte length is not a multiple of the element size.
 */
export function viewElements(dtype: FloatDtype, bytes: Uint8Array): ElementArray {
  const size = elementBytes(dtype);
  if (bytes.byteLength % size !== 0) {
    throw new ChatVecError('InvalidArgument', `${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  }
  const src = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  const n = src.byteLength / size;
  switch (dtype) {
    case 'F64':
      return { dtype, data: new Float64Array(src.buffer, src.byteOffset, n) };
    case 'F32':
      return { dtype, data: new Float32Array(src.buffer, src.byteOffset, n) };
    default:
      return { dtype, data: new Uint16Array(src.buffer, src.byteOffset, n) };
  }
}

/** The bytes of elements [start, start+count) of `a` (a view, no copy). */
export function bytesOf(a: ElementArray, start = 0, count = a.data.length - start): Uint8Array {
  const size = a.data.BYTES_PER_ELEMENT;
  return new Uint8Array(a.data.buffer, a.data.byteOffset + start * size, count * size);
}

/** A thrower of InvalidArgument errors prefixed with the kernel's name. */
function refuse(kernel: string): (msg: string) => never {
  return (msg) => {
    throw new ChatVecError('InvalidArgument', `${kernel}: ${msg}`);
  };
}

function checkArray(what: string, a: ElementArray, n: number, bad: (msg: string) => never): void {
  if (a.dtype !== 'BF16' && a.dtype !== 'F16' && a.dtype !== 'F32' && a.dtype !== 'F64') bad(`${what} has unsupported dtype ${String(a.dtype)}`);
  if (a.data.length !== n) bad(`${what} has ${a.data.length} elements, out has ${n}`);
}

/**
 * Checks a combine and returns its element count (out's length).
 * @throws ChatVecError('InvalidArgument') for unknown dtypes, inputs whose length differs from
 *   out's, or a ratio of ±Infinity
 */
export function checkCombine(args: CombineArgs): number {
  const n = args.out.data.length;
  const bad = refuse('combine');
  checkArray('out', args.out, n, bad);
  if (args.target) checkArray('target', args.target, n, bad);
  args.terms.forEach((t, i) => {
    if (!Number.isFinite(t.ratio) && !Number.isNaN(t.ratio)) bad(`term ${i} has ratio ${t.ratio}`);
    checkArray(`term ${i} a`, t.a, n, bad);
    if (t.b) checkArray(`term ${i} b`, t.b, n, bad);
  });
  return n;
}

/** @throws ChatVecError('InvalidArgument') unless a (when given) and b are float arrays of equal length. */
export function checkDiff(args: DiffArgs): number {
  const n = args.b.data.length;
  const bad = refuse('diff');
  checkArray('b', args.b, n, bad);
  if (args.a) checkArray('a', args.a, n, bad);
  if (args.mode !== 'ab' && args.mode !== 'delta') bad(`unknown mode ${String(args.mode)}`);
  if (args.mode === 'ab' && !args.a) bad('mode ab needs a');
  return n;
}

/** Sums of zero elements: the identity of addSums. */
export function emptySums(): DiffSums {
  return { elements: 0, sumD2: 0, sumA2: 0, sumB2: 0, sumAB: 0, sumAbs: 0, maxAbs: 0, changed: 0, nonFinite: 0 };
}

/** Adds `s` into `into` (in place) and returns `into`. */
export function addSums(into: DiffSums, s: DiffSums): DiffSums {
  into.elements += s.elements;
  into.sumD2 += s.sumD2;
  into.sumA2 += s.sumA2;
  into.sumB2 += s.sumB2;
  into.sumAB += s.sumAB;
  into.sumAbs += s.sumAbs;
  if (s.maxAbs > into.maxAbs) into.maxAbs = s.maxAbs;
  into.changed += s.changed;
  into.nonFinite += s.nonFinite;
  return into;
}
