// The dtype kernels against an independent reference: 16-bit formats decoded from their
// sign/exponent/mantissa definition in float64, a nearest-even encoder built by searching the
// sorted table of that reference, and every midpoint between neighbouring values.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChatVecError } from '../../src/core/errors';
import { decodeToF32, encodeFromF32 } from '../../src/core/numeric/convert';
import { bf16BitsToF32, bitsToF32, f16BitsToF32, f32BitsToBf16, f32BitsToF16, f32ToBits } from '../../src/core/numeric/floatBits';

interface Format16 {
  readonly name: 'BF16' | 'F16';
  readonly expBits: number;
  readonly mantBits: number;
  readonly decode: (h: number) => number;
  readonly encode: (bits: number) => number;
}

const FORMATS: readonly Format16[] = [
  { name: 'BF16', expBits: 8, mantBits: 7, decode: bf16BitsToF32, encode: f32BitsToBf16 },
  { name: 'F16', expBits: 5, mantBits: 10, decode: f16BitsToF32, encode: f32BitsToF16 },
];

/** The value of a 16-bit pattern from the IEEE definition, in float64. */
function reference(f: Format16, h: number): number {
  const sign = h >> 15 ? -1 : 1;
  const expMax = (1 << f.expBits) - 1;
  const bias = (1 << (f.expBits - 1)) - 1;
  const e = (h >> f.mantBits) & expMax;
  const m = h & ((1 << f.mantBits) - 1);
  if (e === expMax) return m === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * m * Math.pow(2, 1 - bias - f.mantBits);
  return sign * (1 + m / Math.pow(2, f.mantBits)) * Math.pow(2, e - bias);
}

const infPattern = (f: Format16) => ((1 << f.expBits) - 1) << f.mantBits;
const isNaNPattern = (f: Format16, h: number) => (h & 0x7fff) > infPattern(f);
/** 2^(emax+1): where the value after the largest finite one would be. */
const beyondMax = (f: Format16) => Math.pow(2, (1 << (f.expBits - 1)) - 1 + 1);

/** Positive finite values in pattern order (monotonic), from the reference. */
function positiveTable(f: Format16): Float64Array {
  const n = infPattern(f);
  const t = new Float64Array(n);
  for (let h = 0; h < n; h++) t[h] = reference(f, h);
  return t;
}

/** Nearest-even encoder built on the reference table: a binary search, no bit tricks. */
function referenceEncode(f: Format16, table: Float64Array, x: number): number {
  if (Number.isNaN(x)) return NaN;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  const n = table.length;
  const max = table[n - 1]!;
  if (a > max) {
    const threshold = (max + beyondMax(f)) / 2; // a tie rounds to the even one: Inf
    return sign | (a >= threshold ? infPattern(f) : n - 1);
  }
  let lo = 0;
  let hi = n - 1; // table[lo] <= a <= table[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (table[mid]! <= a) lo = mid;
    else hi = mid;
  }
  if (table[hi] === a) return sign | hi;
  const dl = a - table[lo]!;
  const dh = table[hi]! - a;
  if (dl < dh) return sign | lo;
  if (dh < dl) return sign | hi;
  return sign | (lo % 2 === 0 ? lo : hi);
}

/** A small deterministic generator for random bit patterns. */
function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

const sameValue = (a: number, b: number) => (Number.isNaN(a) && Number.isNaN(b)) || Object.is(a, b);

for (const f of FORMATS) {
  describe(`${f.name}`, () => {
    const table = positiveTable(f);

    it('decodes all 65,536 patterns like the reference', () => {
      let nans = 0;
      for (let h = 0; h < 65536; h++) {
        const got = f.decode(h);
        const want = reference(f, h);
        if (Number.isNaN(want)) {
          nans++;
          assert.ok(Number.isNaN(got), `${h.toString(16)} should decode to NaN, got ${got}`);
        } else {
          assert.ok(Object.is(got, want), `${f.name} ${h.toString(16)}: got ${got}, want ${want}`);
        }
      }
      assert.equal(nans, 2 * ((1 << f.mantBits) - 1));
    });

    it('encodes every decoded value back to its pattern (NaN stays NaN, sign kept)', () => {
      for (let h = 0; h < 65536; h++) {
        const bits = f32ToBits(f.decode(h));
        const back = f.encode(bits);
        if (isNaNPattern(f, h)) {
          assert.ok(isNaNPattern(f, back), `${h.toString(16)} → ${back.toString(16)} is not NaN`);
          assert.equal(back & 0x8000, h & 0x8000, 'NaN sign');
        } else {
          assert.equal(back, h, `${h.toString(16)} → ${back.toString(16)}`);
        }
      }
    });

    it('rounds every midpoint between neighbours to the even one, and nearby values to the nearest', () => {
      let checked = 0;
      for (let p = 0; p < table.length; p++) {
        const a = table[p]!;
        const b = p + 1 < table.length ? table[p + 1]! : beyondMax(f);
        const m = (a + b) / 2;
        assert.equal(Math.fround(m), m, 'midpoint is exact in float32');
        const even = p % 2 === 0 ? p : p + 1; // p + 1 may be the Inf pattern
        for (const sign of [0, 0x80000000]) {
          const mb = (f32ToBits(m) | sign) >>> 0;
          const s16 = sign ? 0x8000 : 0;
          assert.equal(f.encode(mb), s16 | even, `tie ${m} (between ${p.toString(16)} and next)`);
          assert.equal(f.encode(mb + 1), s16 | (p + 1), `just above ${m}`);
          assert.equal(f.encode(mb - 1), s16 | p, `just below ${m}`);
        }
        checked++;
      }
      assert.equal(checked, infPattern(f));
    });

    it('encodes random float32 values like the reference encoder', () => {
      const rnd = xorshift(f.name === 'BF16' ? 7 : 11);
      const n = 200_000;
      const src = new Uint32Array(n);
      for (let i = 0; i < n; i++) src[i] = rnd();
      const bulk = new Uint16Array(n);
      encodeFromF32(f.name, new Float32Array(src.buffer), new Uint8Array(bulk.buffer), n);
      for (let i = 0; i < n; i++) {
        const bits = src[i]!;
        const x = bitsToF32(bits);
        const got = f.encode(bits);
        assert.equal(bulk[i], got, `bulk and scalar differ for ${bits.toString(16)}`);
        if (Number.isNaN(x)) {
          assert.ok(isNaNPattern(f, got), `NaN ${bits.toString(16)} → ${got.toString(16)}`);
          assert.equal(got & 0x8000, (bits >>> 16) & 0x8000, 'NaN sign');
        } else {
          assert.equal(got, referenceEncode(f, table, x), `${x} (${bits.toString(16)})`);
        }
      }
    });

    it('encodes random float32 values of its own range (normal, subnormal, near overflow) like the reference encoder, in bulk', () => {
      // Uniform bit patterns seldom land where the format's values are; here the float32 exponent
      // is drawn around the format's range (F16: 2^-26 … 2^17), the mantissa at random, and a
      // quarter of the values sit exactly on or next to a midpoint of dropped bits.
      const rnd = xorshift(f.name === 'BF16' ? 13 : 17);
      const n = 200_000;
      const src = new Uint32Array(n);
      const dropped = 23 - f.mantBits;
      for (let i = 0; i < n; i++) {
        const exp = f.name === 'F16' ? 101 + (rnd() % 43) : 1 + (rnd() % 254);
        let mant = rnd() & 0x7fffff;
        if (i % 4 === 0) mant = (mant & ~((1 << dropped) - 1)) | ((1 << (dropped - 1)) + (rnd() % 3) - 1);
        src[i] = ((rnd() & 1) << 31) | (exp << 23) | (mant & 0x7fffff);
      }
      const bulk = new Uint16Array(n);
      encodeFromF32(f.name, new Float32Array(src.buffer), new Uint8Array(bulk.buffer), n);
      for (let i = 0; i < n; i++) {
        const x = bitsToF32(src[i]!);
        assert.equal(bulk[i], referenceEncode(f, table, x), `${x} (${src[i]!.toString(16)})`);
      }
    });

    it('overflows to ±Inf, keeps ±Inf, −0 and every NaN', () => {
      const inf = infPattern(f);
      const max = table[table.length - 1]!;
      const threshold = (max + beyondMax(f)) / 2;
      assert.equal(f.encode(f32ToBits(threshold)), inf);
      assert.equal(f.encode(f32ToBits(-threshold)), 0x8000 | inf);
      assert.equal(f.encode(0x7f7fffff), inf, 'float32 max');
      assert.equal(f.encode(0xff7fffff), 0x8000 | inf);
      assert.equal(f.encode(f32ToBits(Infinity)), inf);
      assert.equal(f.encode(f32ToBits(-Infinity)), 0x8000 | inf);
      assert.equal(f.encode(f32ToBits(max)), inf - 1);
      assert.equal(f.encode(f32ToBits(0)), 0);
      assert.equal(f.encode(f32ToBits(-0)), 0x8000);
      assert.ok(Object.is(f.decode(0x8000), -0));
      // NaNs whose payload sits only in the low bits: truncation alone would make them Inf
      for (const nan of [0x7f800001, 0xff800001, 0x7f801fff, 0x7fc00000, 0xffffffff, 0x7fffffff, 0x7f808000, 0x7fbfffff]) {
        const h = f.encode(nan);
        assert.ok(isNaNPattern(f, h), `${nan.toString(16)} → ${h.toString(16)}`);
        assert.equal(h & 0x8000, (nan >>> 16) & 0x8000);
        const bulk = new Uint16Array(1);
        encodeFromF32(f.name, new Float32Array(new Uint32Array([nan]).buffer), new Uint8Array(bulk.buffer), 1);
        assert.ok(isNaNPattern(f, bulk[0]!), `bulk ${nan.toString(16)} → ${bulk[0]!.toString(16)}`);
      }
    });

    it('bulk decodeToF32 agrees with the scalar decoder on all patterns', () => {
      const all = new Uint16Array(65536).map((_, i) => i);
      const out = new Float32Array(65536);
      decodeToF32(f.name, new Uint8Array(all.buffer), out, 65536);
      for (let h = 0; h < 65536; h++) assert.ok(sameValue(out[h]!, f.decode(h)), `${h.toString(16)}`);
      // an offset view of a larger buffer, and a count shorter than the buffers
      const src = new Uint8Array(2 + 2 * 10);
      new Uint16Array(src.buffer, 2, 10).set(all.subarray(1000, 1010));
      const dst = new Float32Array(12).fill(7);
      decodeToF32(f.name, src.subarray(2), dst.subarray(1), 10);
      for (let i = 0; i < 10; i++) assert.ok(sameValue(dst[1 + i]!, f.decode(1000 + i)));
      assert.equal(dst[0], 7);
      assert.equal(dst[11], 7, 'wrote past count');
    });
  });
}

describe('F16 subnormals', () => {
  const enc = (x: number) => f32BitsToF16(f32ToBits(x));
  it('rounds around the smallest and largest subnormals', () => {
    const tiny = Math.pow(2, -24);
    assert.equal(enc(tiny), 1);
    assert.equal(enc(tiny / 2), 0, 'tie with zero goes to zero');
    assert.equal(enc(-tiny / 2), 0x8000);
    assert.equal(enc(bitsToF32(f32ToBits(tiny / 2) + 1)), 1);
    assert.equal(enc(tiny * 1.5), 2, 'tie between 1 and 2 goes to 2');
    assert.equal(enc(tiny * 2.5), 2, 'tie between 2 and 3 goes to 2');
    assert.equal(enc(Math.pow(2, -40)), 0);
    assert.equal(enc(1023 * tiny), 0x3ff);
    assert.equal(enc(1023.5 * tiny), 0x400, 'rounds up into the smallest normal');
    assert.equal(f16BitsToF32(0x3ff), 1023 * tiny);
    assert.equal(f16BitsToF32(0x8001), -tiny);
  });

  it('flushes float32 subnormals to ±0 in F16 but keeps them in BF16', () => {
    assert.equal(f32BitsToF16(0x00000001), 0);
    assert.equal(f32BitsToF16(0x80400000), 0x8000);
    assert.equal(f32BitsToBf16(0x00010000), 0x0001, 'smallest BF16 subnormal');
    assert.equal(f32BitsToBf16(0x00008000), 0x0000, 'tie to even (zero)');
    assert.equal(f32BitsToBf16(0x00018000), 0x0002, 'tie to even (two)');
    assert.equal(f32BitsToBf16(0x807fffff), 0x8080, 'largest float32 subnormal rounds up to the smallest normal');
  });
});

describe('F32 and F64', () => {
  const nextUp = (x: number) => bitsToF32(x >= 0 ? f32ToBits(x) + 1 : f32ToBits(x) - 1);
  const nextDown = (x: number) => bitsToF32(x > 0 ? f32ToBits(x) - 1 : x === 0 ? 0x80000001 : f32ToBits(x) + 1);
  const decodeF64 = (xs: number[]) => {
    const out = new Float32Array(xs.length);
    decodeToF32('F64', new Uint8Array(new Float64Array(xs).buffer), out, xs.length);
    return out;
  };

  it('F64 → F32 rounds to nearest, ties to even', () => {
    const rnd = xorshift(3);
    const xs: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      // random doubles over the float32 range: sign, exponent in [-150, 128), 52 random mantissa bits
      const e = (rnd() % 278) - 150;
      const m = 1 + (rnd() * 2 ** 20 + (rnd() >>> 12)) / 2 ** 52;
      xs.push((rnd() & 1 ? -1 : 1) * m * Math.pow(2, e));
    }
    const out = decodeF64(xs);
    xs.forEach((x, i) => {
      const r = out[i]!;
      const overflows = Math.abs(x) >= (bitsToF32(0x7f7fffff) + Math.pow(2, 128)) / 2;
      assert.equal(!Number.isFinite(r), overflows, `${x} → ${r}`);
      if (overflows) {
        assert.equal(r, x > 0 ? Infinity : -Infinity);
        return;
      }
      const d = Math.abs(x - r);
      const du = Math.abs(x - nextUp(r));
      const dd = Math.abs(x - nextDown(r));
      assert.ok(d <= du && d <= dd, `${x} → ${r} is not the nearest float32`);
      if (d === du || d === dd) assert.equal(f32ToBits(r) & 1, 0, `tie ${x} → ${r} not even`);
    });
  });

  it('F64 → F32 at every kind of midpoint and limit', () => {
    const one = 1;
    const ulp1 = Math.pow(2, -23);
    const maxF32 = bitsToF32(0x7f7fffff);
    const [a, b, c, d, e, g, h, k, l, m] = decodeF64([
      one + ulp1 / 2, // tie between 1 (even) and 1+ulp
      one + 1.5 * ulp1, // tie between 1+ulp (odd) and 1+2ulp (even)
      one + ulp1 / 2 + Math.pow(2, -40),
      (maxF32 + Math.pow(2, 128)) / 2, // overflow tie → Inf
      (maxF32 + Math.pow(2, 128)) / 2 - Math.pow(2, 90),
      Math.pow(2, -150), // tie between 0 and the smallest subnormal → 0
      -Math.pow(2, -151),
      1e300,
      -1e-300,
      NaN,
    ]);
    assert.equal(a, 1);
    assert.equal(b, one + 2 * ulp1);
    assert.equal(c, one + ulp1);
    assert.equal(d, Infinity);
    assert.equal(e, maxF32);
    assert.ok(Object.is(g, 0));
    assert.ok(Object.is(h, -0));
    assert.equal(k, Infinity);
    assert.ok(Object.is(l, -0));
    assert.ok(Number.isNaN(m));
  });

  it('F32 and F64 outputs keep float32 values exactly', () => {
    const rnd = xorshift(5);
    const n = 4096;
    const bits = new Uint32Array(n).map(() => rnd());
    const src = new Float32Array(bits.buffer);
    const f32out = new Uint8Array(4 * n);
    encodeFromF32('F32', src, f32out, n);
    assert.deepEqual(new Uint32Array(f32out.buffer), bits);
    const f64out = new Uint8Array(8 * n);
    encodeFromF32('F64', src, f64out, n);
    const back = new Float32Array(n);
    decodeToF32('F64', f64out, back, n);
    const back32 = new Float32Array(n);
    decodeToF32('F32', f32out, back32, n);
    for (let i = 0; i < n; i++) {
      assert.ok(sameValue(new Float64Array(f64out.buffer)[i]!, src[i]!));
      assert.ok(sameValue(back[i]!, src[i]!));
      if (!Number.isNaN(src[i]!)) assert.equal(new Uint32Array(back32.buffer)[i], bits[i]);
    }
  });

  it('refuses unaligned buffers with an internal error instead of misreading', () => {
    const buf = new Uint8Array(17);
    const out = new Float32Array(4);
    assert.throws(() => decodeToF32('BF16', buf.subarray(1), out, 4), (e: unknown) => e instanceof ChatVecError && e.code === 'Internal');
    assert.throws(() => decodeToF32('F64', buf.subarray(4), out, 1), ChatVecError);
    assert.throws(() => encodeFromF32('F16', out, buf.subarray(1), 4), ChatVecError);
    assert.throws(() => encodeFromF32('F32', out, buf.subarray(2), 2), ChatVecError);
  });
});
