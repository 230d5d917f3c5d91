/**
 * The chunk kernels in plain TypeScript: the reference the GPU kernels are held to, and the CPU
 * backend's implementation. Arithmetic is float32, one operation at a time (Math.fround, or a
 * store into a Float32Array, after each), in exactly this order for a fused apply:
 *   acc = cp; for each term i: d = chatᵢ − baseᵢ; m = rᵢ·d; acc = acc + m   (τ terms: m = rᵢ·τᵢ)
 *   out = round_to_dtype(acc)   — nearest, ties to even; NaN stays NaN.
 * A float64 operation on float32 operands rounded once to float32 equals the float32 operation
 * (float64 has more than 2·24+2 bits), so Math.fround(a − b) is the float32 difference exactly.
 */
import { decodeToF32, encodeFromF32 } from '../numeric/convert';
import {
  allocElements,
  checkDiffInputs,
  checkFusedRequest,
  emptyDiffStats,
  type DiffStats,
  type ElementArray,
  type FusedApplyRequest,
} from './elements';

/** Elements per inner block: scratch buffers stay in L1/L2 cache. */
const BLOCK = 4096;

function bytesOf(a: ElementArray, start: number, count: number): Uint8Array {
  const size = a.data.BYTES_PER_ELEMENT;
  return new Uint8Array(a.data.buffer, a.data.byteOffset + start * size, count * size);
}

/**
 * Elements [start, start+count) of `a` as float32 (exact: every BF16/F16 value is a float32).
 * Returns a view of `a` itself for F32 input, else `scratch` filled.
 */
export function decodeRange(a: ElementArray, start: number, count: number, scratch: Float32Array): Float32Array {
  if (a.dtype === 'F32') return a.data.subarray(start, start + count);
  decodeToF32(a.dtype, bytesOf(a, start, count), scratch, count);
  return scratch;
}

/** Rounds `src[0..count)` once to `out`'s dtype into out[start..start+count). */
export function encodeRange(src: Float32Array, out: ElementArray, start: number, count: number): void {
  if (out.dtype === 'F32') out.data.set(src.subarray(0, count), start);
  else encodeFromF32(out.dtype, src, bytesOf(out, start, count), count);
}

/**
 * Fused apply on the CPU (see FusedApplyRequest for the contract); synchronous.
 * @returns req.out when given, else a new array of req.outDtype.
 * @throws ChatVecError('InvalidArgument') for a malformed request (see checkFusedRequest).
 */
export function fusedApplyChunk(req: FusedApplyRequest): ElementArray {
  const n = checkFusedRequest(req);
  const out = req.out ?? allocElements(req.outDtype, n);
  const acc = new Float32Array(Math.min(BLOCK, n));
  const sx = new Float32Array(acc.length);
  const sy = new Float32Array(acc.length);
  const ratios = req.terms.map((t) => Math.fround(t.ratio));
  for (let s = 0; s < n; s += BLOCK) {
    const k = Math.min(BLOCK, n - s);
    acc.set(decodeRange(req.cp, s, k, sx).subarray(0, k));
    req.terms.forEach((t, ti) => {
      const r = ratios[ti]!;
      if ('tau' in t) {
        const tau = decodeRange(t.tau, s, k, sx);
        // The store into acc rounds the float32 sum; m is rounded explicitly.
        for (let i = 0; i < k; i++) acc[i] = acc[i]! + Math.fround(r * tau[i]!);
      } else {
        const c = decodeRange(t.chat, s, k, sx);
        const b = decodeRange(t.base, s, k, sy);
        for (let i = 0; i < k; i++) acc[i] = acc[i]! + Math.fround(r * Math.fround(c[i]! - b[i]!));
      }
    });
    encodeRange(acc, out, s, k);
  }
  return out;
}

/**
 * Delta statistics of b against a on the CPU (see DiffStats): d = float32(b − a); the products
 * d², a², b², a·b of float32 values are exact in float64 and summed in float64.
 * @throws ChatVecError('InvalidArgument') for unequal lengths or unsupported dtypes.
 */
export function reduceDiffChunk(a: ElementArray, b: ElementArray): DiffStats {
  const n = checkDiffInputs(a, b);
  const st = emptyDiffStats();
  st.count = n;
  const sa = new Float32Array(Math.min(BLOCK, n));
  const sb = new Float32Array(sa.length);
  let sumSqDiff = 0;
  let sumSqA = 0;
  let sumSqB = 0;
  let sumAB = 0;
  let sumAbs = 0;
  let maxAbs = 0;
  let diff = 0;
  let nonFinite = 0;
  for (let s = 0; s < n; s += BLOCK) {
    const k = Math.min(BLOCK, n - s);
    const x = decodeRange(a, s, k, sa);
    const y = decodeRange(b, s, k, sb);
    for (let i = 0; i < k; i++) {
      const av = x[i]!;
      const bv = y[i]!;
      if (bv !== av) diff++; // IEEE: NaN differs from everything, −0 equals +0
      if (!Number.isFinite(av) || !Number.isFinite(bv)) {
        nonFinite++;
        continue;
      }
      const d = Math.fround(bv - av);
      const ad = Math.abs(d);
      sumSqDiff += d * d;
      sumSqA += av * av;
      sumSqB += bv * bv;
      sumAB += av * bv;
      sumAbs += ad;
      if (ad > maxAbs) maxAbs = ad;
    }
  }
  st.sumSqDiff = sumSqDiff;
  st.sumSqA = sumSqA;
  st.sumSqB = sumSqB;
  st.sumAB = sumAB;
  st.sumAbsDiff = sumAbs;
  st.maxAbsDiff = maxAbs;
  st.diffCount = diff;
  st.nonFinite = nonFinite;
  return st;
}
