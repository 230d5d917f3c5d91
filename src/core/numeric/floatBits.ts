/**
 * Scalar conversions between float32 and the 16-bit float formats, bit-exact: round to nearest,
 * ties to even; NaN stays NaN (quiet, sign kept); ±Inf, −0 and subnormals preserved.
 * Values are passed as raw bit patterns (u16 / u32 numbers) so no float64 rounding intervenes.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The bit pattern of a float32 value (the argument is first rounded to float32). */
export function f32ToBits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

/** The float32 value of a 32-bit pattern. */
export function bitsToF32(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0]!;
}

/** bfloat16 bits → float32 value (exact: bf16 is the top half of a float32). */
export function bf16BitsToF32(h: number): number {
  return bitsToF32((h & 0xffff) << 16);
}

/** float32 bits → bfloat16 bits, round to nearest even. */
export function f32BitsToBf16(x: number): number {
  x >>>= 0;
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) {
    return ((x >>> 16) | 0x40) & 0xffff; // quiet NaN, sign kept
  }
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** IEEE binary16 bits → float32 value (exact). */
export function f16BitsToF32(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return bitsToF32(sign | 0x7f800000 | (mant << 13));
  if (exp !== 0) return bitsToF32(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant === 0) return bitsToF32(sign);
  // Subnormal: value = mant × 2^-24, exactly representable as a normal float32.
  let e = 113;
  let m = mant;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return bitsToF32(sign | (e << 23) | ((m & 0x3ff) << 13));
}

/** float32 bits → IEEE binary16 bits, round to nearest even (overflow → ±Inf). */
export function f32BitsToF16(x: number): number {
  x >>>= 0;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // binary16 biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = mant & ((1 << shift) - 1);
    let r = mant >>> shift;
    if (rem > half || (rem === half && (r & 1) !== 0)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) !== 0)) r++;
  return sign | r;
}
