/**
 * The combine kernel's JavaScript reference (see CombineOf in ../types.ts for the definition): the
 * implementation tests, the WASM SIMD kernel and the GPU's self-test are held to, and the CPU path
 * where WebAssembly SIMD is unavailable (or CHATVEC_KERNEL=js). JavaScript computes in float64;
 * rounding each result to float32 (Math.fround, or a store into a Float32Array) gives the
 * correctly rounded float32 operation, since float64 has more than 2·24+2 bits.
 */
import { decodeToF32, encodeFromF32 } from '../../numeric/convert';
import { bytesOf, checkCombine } from '../elements';
import type { CombineArgs, CpuKernel, ElementArray } from '../types';
import { ScratchArrays, f32Scratch } from './scratch';

const acc = { buf: new Float32Array(0) };
const va = { buf: new Float32Array(0) };
const vb = { buf: new Float32Array(0) };
const scratch = new ScratchArrays();

/** `x` as float32 values: a view of F32 data, else decoded into `into` (exact but for F64, rounded). */
function asF32(x: ElementArray, n: number, into: { buf: Float32Array }): Float32Array {
  if (x.dtype === 'F32') return x.data;
  const f = f32Scratch(into, n);
  decodeToF32(x.dtype, bytesOf(x), f, n);
  return f;
}

/**
 * Runs a combine into args.out.
 * @throws ChatVecError('InvalidArgument') for a malformed task (see checkCombine)
 */
export function combineJs(args: CombineArgs): void {
  const n = checkCombine(args);
  const sum = f32Scratch(acc, n);
  let started = false;
  if (args.target) {
    if (args.target.dtype === 'F32') sum.set(args.target.data);
    else decodeToF32(args.target.dtype, bytesOf(args.target), sum, n);
    started = true;
  }
  for (const term of args.terms) {
    const r = Math.fround(term.ratio);
    const a = asF32(term.a, n, va);
    if (term.b) {
      const b = asF32(term.b, n, vb);
      // The store into the Float32Array rounds the sum; m and d are rounded explicitly.
      if (!started) for (let i = 0; i < n; i++) sum[i] = r * Math.fround(a[i]! - b[i]!);
      else for (let i = 0; i < n; i++) sum[i] = sum[i]! + Math.fround(r * Math.fround(a[i]! - b[i]!));
    } else if (!started) {
      for (let i = 0; i < n; i++) sum[i] = r * a[i]!;
    } else {
      for (let i = 0; i < n; i++) sum[i] = sum[i]! + Math.fround(r * a[i]!);
    }
    started = true;
  }
  if (!started) sum.fill(0);
  encodeFromF32(args.out.dtype, sum, bytesOf(args.out), n);
}

/** combineJs behind the kernel interface. */
export const combineJsKernel: CpuKernel<CombineArgs, void> = {
  impl: 'js',
  arrays: (dtypes, n) => scratch.arrays(dtypes, n),
  run: combineJs,
};
