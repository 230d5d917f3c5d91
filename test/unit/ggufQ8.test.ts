// Q8_0 codes exactly as ggml's quantize_row_q8_0_ref computes them, from its definition written
// here: per block of 32, d = max|x| / 127 and id = 1/d in float32 (Math.fround after each
// operation), code = roundf(x · id) with halves away from zero; the scale stored as the nearest
// binary16 of d. Blocks built to land on exact halves (±0.5, ±2.5, 126.5) catch a round-half-even
// or round-half-up shortcut.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeGgml } from '../../src/core/gguf/quantize';
import { halfToNumber } from './support/ggufReference';

const fr = Math.fround;

/** C's roundf: the nearest integer, halves away from zero. */
function roundf(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

function referenceBlock(x: Float32Array): { d: number; codes: number[] } {
  let amax = 0;
  for (const v of x) amax = Math.max(amax, Math.abs(v));
  const d = fr(amax / 127);
  const id = d ? fr(1 / d) : 0;
  return { d, codes: Array.from(x, (v) => roundf(fr(v * id)) + 0) }; // + 0: an int8 has no −0
}

describe('Q8_0 encoding', () => {
  it('codes equal quantize_row_q8_0_ref (exact halves included); the scale is the nearest binary16 of d', () => {
    const blocks: number[][] = [];
    // amax 127 → d = 1, id = 1: the codes are roundf of the values themselves.
    blocks.push([127, 2.5, -2.5, 0.5, -0.5, 1.5, -1.5, 126.5, -126.5, 3.4999998, -3.5, 0, -0, 64.5, -64.5, 1e-30, ...Array.from({ length: 16 }, (_, i) => i - 7.5)]);
    // amax 254 → d = 2: halves of x/2.
    blocks.push([254, 5, -5, 1, -1, 3, -3, 253, ...Array.from({ length: 24 }, (_, i) => 2 * i - 23)]);
    let s = 7;
    const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
    for (let b = 0; b < 64; b++) blocks.push(Array.from({ length: 32 }, () => rnd() * 10 ** ((b % 7) - 3)));
    blocks.push(new Array<number>(32).fill(0));
    const src = Float32Array.from(blocks.flat());
    const dst = new Uint8Array((src.length / 32) * 34);
    encodeGgml('Q8_0', src, src.length, dst);
    const view = new DataView(dst.buffer);
    for (let b = 0; b < blocks.length; b++) {
      const ref = referenceBlock(src.subarray(32 * b, 32 * b + 32));
      const scale = halfToNumber(view.getUint16(34 * b, true));
      // Nearest binary16: within half a binary16 step of d (relative 2^-11 for normal values, 2^-25 below 2^-14).
      assert.ok(Math.abs(scale - ref.d) <= Math.max(ref.d * 2 ** -11, 2 ** -25), `block ${b}: scale ${scale} vs d ${ref.d}`);
      for (let j = 0; j < 32; j++) assert.equal(view.getInt8(34 * b + 2 + j), ref.codes[j], `block ${b} value ${src[32 * b + j]} d ${ref.d}`);
    }
  });
});
