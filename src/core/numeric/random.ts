/**
 * Deterministic pseudo-random numbers: the demo checkpoints' values and DARE's drop masks (merge
 * recipes). Values come in fixed blocks, each seeded from (stream seed, block index), so any
 * element range can be produced on its own and the bytes never depend on chunk sizes or thread
 * counts.
 */

/** 32-bit FNV-1a of a string: stable seeds from tensor names. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** splitmix32-style mixer: turns (seed, counter) into a well-spread 32-bit state. */
export function mix32(a: number, b: number): number {
  let z = (a ^ Math.imul(b + 0x9e3779b9, 0x85ebca6b)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0 || 0x6d2b79f5;
}

export const BLOCK = 65536;

/**
 * Fills `out[0..count)` with uniform values in [-1, 1) for elements [first, first+count) of the
 * stream `seed`. Element j always gets the same value, whatever `first` and `count` are.
 */
export function uniformRange(seed: number, first: number, count: number, out: Float64Array | Float32Array): void {
  let i = 0;
  while (i < count) {
    const j = first + i;
    const block = Math.floor(j / BLOCK);
    let s = mix32(seed, block);
    // advance to the element's position inside its block (xorshift32 steps)
    const skip = j - block * BLOCK;
    for (let k = 0; k < skip; k++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
    }
    const n = Math.min(count - i, BLOCK - skip);
    for (let k = 0; k < n; k++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      out[i + k] = (s >>> 0) / 2147483648 - 1;
    }
    i += n;
  }
}
