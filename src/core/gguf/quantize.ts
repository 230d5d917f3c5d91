/**
 * Encoding float32 values as the ggml tensor types of a GGUF export. F32/F16/BF16 go through the
 * project's conversions (numeric/convert.ts: one rounding, nearest even). Q8_0 follows ggml's
 * quantize_row_q8_0_ref: blocks of 32 values, scale d = max|x| / 127 (float32, stored as f16),
 * codes round(x · (1/d)) with C's roundf (halves away from zero), all in float32 arithmetic.
 */
import { ChatVecError } from '../errors';
import { encodeFromF32 } from '../numeric/convert';
import { f32BitsToF16 } from '../numeric/floatBits';
import type { GgmlType } from './writer';

/** Values per Q8_0 block, and bytes per block (f16 scale + 32 int8 codes). */
export const Q8_0_BLOCK = 32;
export const Q8_0_BLOCK_BYTES = 34;

/**
 * Encodes `src[0..count)` as `type` into `dst` (which must hold exactly the encoded bytes).
 * @throws ChatVecError Internal when `dst` has the wrong size or a Q8_0 count is not whole blocks
 */
export function encodeGgml(type: GgmlType, src: Float32Array, count: number, dst: Uint8Array): void {
  switch (type) {
    case 'F32':
      expectBytes(dst, 4 * count);
      encodeFromF32('F32', src, dst, count);
      return;
    case 'F16':
    case 'BF16':
      expectBytes(dst, 2 * count);
      encodeFromF32(type, src, dst, count);
      return;
    case 'Q8_0':
      if (count % Q8_0_BLOCK !== 0) throw new ChatVecError('Internal', `Q8_0 needs whole blocks of ${Q8_0_BLOCK}, not ${count} values`);
      expectBytes(dst, (count / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES);
      quantizeQ8_0(src, count, dst);
      return;
  }
}

function expectBytes(dst: Uint8Array, n: number): void {
  if (dst.length !== n) throw new ChatVecError('Internal', `GGUF encode: buffer of ${dst.length} bytes for ${n}`);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

function quantizeQ8_0(src: Float32Array, count: number, dst: Uint8Array): void {
  const view = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  const codes = new Int8Array(dst.buffer, dst.byteOffset, dst.byteLength);
  const fr = Math.fround;
  for (let b = 0, o = 0; b < count; b += Q8_0_BLOCK, o += Q8_0_BLOCK_BYTES) {
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const a = Math.abs(src[b + j]!);
      if (a > amax) amax = a;
    }
    const d = fr(amax / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    f32Scratch[0] = d;
    view.setUint16(o, f32BitsToF16(u32Scratch[0]!), true);
    for (let j = 0, c = o + 2; j < Q8_0_BLOCK; j++, c++) {
      const x = fr(src[b + j]! * id);
      // roundf (halves away from zero): x ± 0.5 is exact in float64 for a float32 |x| ≤ 127, and
      // the Int8Array store truncates toward zero (Math.round alone would round −2.5 to −2).
      codes[c] = x < 0 ? x - 0.5 : x + 0.5;
    }
  }
}
