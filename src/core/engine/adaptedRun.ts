/**
 * Reading the elements of a model with a LoRA adapter merged in (mergekit's `model+adapter`),
 * without writing that model anywhere: a chunk ref of an adapted tensor carries an AdapterAddend,
 * and readInputRun forms each element as PEFT's merge_and_unload leaves it (which is what mergekit
 * 0.1.4 merges, ModelReference.merged in mergekit/common.py):
 *
 *   w' = round_dtype( fround( w + fround(scale · fround(B·A)) ) )
 *
 * — PEFT (0.20, LoraLayer.get_delta_weight and merge) forms B·A in float32 (the adapter is upcast
 * to float32 on load), multiplies by the scale in float32, adds it to the weight in float32 and
 * stores the sum in the model's dtype (one rounding to bf16/f16; none for float32). B·A here is
 * each dot product summed in float64 and rounded once (compute/kernels/lowRankJs.ts), which is
 * within float32 rounding of torch's matmul. A tensor the adapter saves whole (modules_to_save,
 * trained biases) replaces the model's, rounded to the model's dtype as PEFT's load does; τ from
 * chatvec_deltas.safetensors (chatvec's side file, which PEFT ignores) is added like B·A.
 */
import { ChatVecError } from '../errors';
import { decodeToF32, encodeFromF32 } from '../numeric/convert';
import { type FloatDtype, dtypeBytes } from '../safetensors/dtype';
import { lowRankTermAt } from './adapterTerms';
import { type ChunkRef, refAt } from './chunking';
import { readFloatRun } from './floatRun';
import { formLowRank } from './lowRankTerm';

// Scratch buffers reused across calls in one worker thread.
let term = new Float32Array(0);
let bytes = new Uint8Array(0);

function scratch(count: number): Float32Array {
  if (term.length < count) term = new Float32Array(count);
  return term.subarray(0, count);
}

/** Rounds float32 values to `dtype` in place (round to nearest even; float32 and float64 models keep float32). */
function roundTo(dtype: FloatDtype, values: Float32Array, count: number): void {
  if (dtype !== 'BF16' && dtype !== 'F16') return;
  if (bytes.length < count * 2) bytes = new Uint8Array(count * 2);
  encodeFromF32(dtype, values, bytes, count);
  decodeToF32(dtype, bytes, values, count);
}

/**
 * Reads `count` elements starting `back` elements before `ref` into `into` (float32), as
 * readFloatRun does; when the ref carries an adapter, the elements of the merged model.
 * @returns the bytes read (the model's run, the factors counted as the float32 τ they stand for)
 * @throws ChatVecError Io on a short read; Internal for a ref that is not at an element of its tensor
 */
export function readInputRun(ref: ChunkRef, count: number, into: Float32Array, back = 0): number {
  const a = ref.adapter;
  if (!a) return readFloatRun(ref, count, into, back);
  const size = dtypeBytes(a.tensor.dtype);
  const offset = ref.position - a.tensor.position;
  if (ref.file !== a.tensor.file || offset % size !== 0) throw new ChatVecError('Internal', `${ref.file}: a chunk of an adapted tensor that is not at one of its elements`);
  const first = offset / size - back;
  let n = a.replace ? readFloatRun(refAt(a.replace, first), count, into) : readFloatRun(ref, count, into, back);
  const add = scratch(count);
  if (a.lowRank) {
    const t = lowRankTermAt(a.lowRank, first, count);
    formLowRank(t, add);
    for (let i = 0; i < count; i++) into[i] = into[i]! + Math.fround(t.ratio * add[i]!);
    n += 4 * count;
  }
  if (a.delta) {
    n += readFloatRun(refAt(a.delta, first), count, add);
    for (let i = 0; i < count; i++) into[i] = into[i]! + add[i]!;
  }
  roundTo(a.tensor.dtype, into, count);
  return n;
}
