/**
 * Bulk conversions between the float dtypes of safetensors and Float32Array, the engine's working
 * format. Byte buffers are little-endian and must be aligned to their element size.
 */
import { ChatVecError } from '../errors';
import type { FloatDtype } from '../safetensors/dtype';
import { f16BitsToF32, f32BitsToF16 } from './floatBits';

let f16Table: Float32Array | undefined;
/** All 65,536 binary16 values as float32 (256 KiB), built once: a lookup is the fastest decode. */
function f16ToF32Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  return f16Table;
}

function view16(b: Uint8Array, count: number): Uint16Array {
  if (b.byteOffset % 2 !== 0) throw new ChatVecError('Internal', 'unaligned 16-bit buffer');
  return new Uint16Array(b.buffer, b.byteOffset, count);
}

/**
 * Decodes `count` elements of `dtype` from `src` into `dst[0..count)` as float32.
 * F64 values are rounded to float32 (nearest even).
 */
export function decodeToF32(dtype: FloatDtype, src: Uint8Array, dst: Float32Array, count: number): void {
  switch (dtype) {
    case 'BF16': {
      const s = view16(src, count);
      const d = new Uint32Array(dst.buffer, dst.byteOffset, count);
      for (let i = 0; i < count; i++) d[i] = s[i]! << 16;
      return;
    }
    case 'F16': {
      const s = view16(src, count);
      const t = f16ToF32Table();
      for (let i = 0; i < count; i++) dst[i] = t[s[i]!]!;
      return;
    }
    case 'F32':
      if (src.byteOffset % 4 !== 0) throw new ChatVecError('Internal', 'unaligned 32-bit buffer');
      dst.set(new Float32Array(src.buffer, src.byteOffset, count));
      return;
    case 'F64': {
      if (src.byteOffset % 8 !== 0) throw new ChatVecError('Internal', 'unaligned 64-bit buffer');
      const s = new Float64Array(src.buffer, src.byteOffset, count);
      for (let i = 0; i < count; i++) dst[i] = s[i]!;
      return;
    }
  }
}

/** Encodes `src[0..count)` (float32) as `dtype` into `dst`, rounding to nearest even once. */
export function encodeFromF32(dtype: FloatDtype, src: Float32Array, dst: Uint8Array, count: number): void {
  switch (dtype) {
    case 'BF16': {
      const s = new Uint32Array(src.buffer, src.byteOffset, count);
      const d = view16(dst, count);
      for (let i = 0; i < count; i++) {
        const x = s[i]!;
        // NaN must stay NaN: rounding could carry a NaN's payload into the Inf pattern.
        d[i] = (x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
      }
      return;
    }
    case 'F16': {
      const s = new Uint32Array(src.buffer, src.byteOffset, count);
      const d = view16(dst, count);
      for (let i = 0; i < count; i++) {
        const x = s[i]!;
        const a = x & 0x7fffffff;
        // Values that stay normal binary16 (2^-14 ≤ |x| < 65520), nearly all weights: rebias the
        // exponent and round the 13 dropped mantissa bits to nearest even in integer arithmetic
        // (adding 0xfff plus the kept mantissa's lowest bit carries exactly when the rest is above
        // half, or at half with an odd kept bit). Everything else takes the general conversion.
        d[i] = a >= 0x38800000 && a < 0x477ff000 ? ((x >>> 16) & 0x8000) | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13) : f32BitsToF16(x);
      }
      return;
    }
    case 'F32':
      if (dst.byteOffset % 4 !== 0) throw new ChatVecError('Internal', 'unaligned 32-bit buffer');
      new Float32Array(dst.buffer, dst.byteOffset, count).set(src.subarray(0, count));
      return;
    case 'F64': {
      if (dst.byteOffset % 8 !== 0) throw new ChatVecError('Internal', 'unaligned 64-bit buffer');
      const d = new Float64Array(dst.buffer, dst.byteOffset, count);
      for (let i = 0; i < count; i++) d[i] = src[i]!;
      return;
    }
  }
}
