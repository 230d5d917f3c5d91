// Byte-level tests of the safetensors header rules (huggingface/safetensors `tensor.rs`): every
// malformed case is built here from bytes, written to a temporary file and read back.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ChatVecError } from '../../src/core/errors';
import { DTYPE_BITS } from '../../src/core/safetensors/dtype';
import { readSafetensorsHeader } from '../../src/core/safetensors/reader';

let dir: string;
let counter = 0;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-header-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const utf8 = (s: string) => new TextEncoder().encode(s);

/** [u64 LE length][header][data]; `length` overrides the declared header length. */
function stBytes(header: string | Uint8Array, data: number | Uint8Array = 0, length?: bigint): Uint8Array {
  const h = typeof header === 'string' ? utf8(header) : header;
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

function writeFile(bytes: Uint8Array, name = `t${counter++}.safetensors`): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, bytes);
  return p;
}

/** A tensor entry as JSON text. */
const entry = (dtype: string, shape: unknown, offsets: unknown) => JSON.stringify({ dtype, shape, data_offsets: offsets });

/** Writes the bytes, reads the header and asserts a BadCheckpoint naming the file and the rule. */
function rejects(bytes: Uint8Array, rule: RegExp): ChatVecError {
  const p = writeFile(bytes);
  let caught: unknown;
  try {
    readSafetensorsHeader(p);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ChatVecError, `expected a ChatVecError, got ${String(caught)}`);
  assert.equal(caught.code, 'BadCheckpoint', caught.message);
  assert.ok(caught.message.includes(p), `message does not name the file: ${caught.message}`);
  assert.match(caught.message, rule);
  assert.ok(!caught.message.includes('\n'), 'message is one line');
  return caught;
}

function accepts(bytes: Uint8Array) {
  return readSafetensorsHeader(writeFile(bytes));
}

describe('header length', () => {
  it('rejects files smaller than the 8-byte length field', () => {
    for (const n of [0, 1, 7]) rejects(new Uint8Array(n), /smaller than the 8-byte header length/);
  });

  it('rejects a header length above 100,000,000 quickly, without allocating it', () => {
    const lies = [2n ** 63n, 2n ** 64n - 1n, 100_000_001n, 2n ** 32n];
    const before = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    for (const n of lies) {
      const bytes = new Uint8Array(16);
      new DataView(bytes.buffer).setBigUint64(0, n, true);
      rejects(bytes, /header length \d+ bytes exceeds the 100000000-byte limit/);
    }
    const ms = performance.now() - t0;
    assert.ok(ms < 2000, `took ${ms} ms`);
    assert.ok(process.memoryUsage().arrayBuffers - before < 20e6, 'allocated the claimed size');
  });

  it('rejects a header length within the limit but past the end of the file, without allocating it', () => {
    const before = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    for (const n of [99_999_999n, 100_000_000n, 9n]) {
      const bytes = new Uint8Array(16).fill(0x7b);
      new DataView(bytes.buffer).setBigUint64(0, n, true);
      rejects(bytes, /header length \d+ bytes runs past the end of the 16-byte file/);
    }
    assert.ok(performance.now() - t0 < 2000);
    assert.ok(process.memoryUsage().arrayBuffers - before < 20e6, 'allocated the claimed size');
  });

  it('rejects a header length one byte longer than the header and data', () => {
    const h = `{"a":${entry('U8', [2], [0, 2])}}`;
    rejects(stBytes(h, 2, BigInt(h.length + 3)), /runs past the end/);
  });
});

describe('header text', () => {
  it('rejects invalid UTF-8', () => {
    const cases = [
      [0xff],
      [0xc0, 0xaf], // overlong '/'
      [0xed, 0xa0, 0x80], // a UTF-16 surrogate
      [0xe2, 0x82], // truncated sequence
    ];
    for (const bad of cases) {
      const h = new Uint8Array([...utf8('{"__metadata__":{"k":"'), ...bad, ...utf8('"}}')]);
      rejects(stBytes(h), /header is not valid UTF-8/);
    }
  });

  it('rejects text that is not JSON', () => {
    for (const h of ['{"a":', '', 'not json', "{'a':1}", '{"a":1,}', '{}}']) rejects(stBytes(h), /header is not valid JSON/);
  });

  it('rejects JSON whose top level is not an object', () => {
    for (const h of ['[]', '[{"dtype":"U8","shape":[1],"data_offsets":[0,1]}]', 'null', '0', '12', '"x"', 'true']) {
      rejects(stBytes(h), /header is not a JSON object/);
    }
  });

  it('accepts whitespace around the object (padding with spaces, tabs, newlines)', () => {
    const h = ` \n\t{"a":${entry('U8', [3], [0, 3])}} \r\n  `;
    const info = accepts(stBytes(h, new Uint8Array([1, 2, 3])));
    assert.deepEqual(info.tensors.map((t) => [t.name, t.begin, t.end]), [['a', 0, 3]]);
    assert.equal(info.dataStart, 8 + utf8(h).length);
  });

  it('accepts a header whose length is not a multiple of 8', () => {
    const h = `{"a":${entry('U8', [5], [0, 5])}}`;
    assert.notEqual(h.length % 8, 0);
    const info = accepts(stBytes(h, 5));
    assert.equal(info.headerLength, h.length);
    assert.equal(info.dataStart, 8 + h.length);
    assert.equal(info.size, 8 + h.length + 5);
  });

  it('accepts an empty object with no data, and rejects it with data after it', () => {
    assert.deepEqual(accepts(stBytes('{}')).tensors, []);
    rejects(stBytes('{}', 1), /1 trailing bytes after the last tensor/);
  });
});

describe('__metadata__', () => {
  const t = `"a":${entry('U8', [1], [0, 1])}`;
  it('accepts null and string → string maps', () => {
    assert.equal(accepts(stBytes(`{"__metadata__":null,${t}}`, 1)).metadata, null);
    const info = accepts(stBytes(`{${t},"__metadata__":{"format":"pt","x":""}}`, 1));
    assert.deepEqual({ ...info.metadata }, { format: 'pt', x: '' });
    assert.equal(info.tensors.length, 1, '__metadata__ is not a tensor');
  });

  it('rejects non-string values', () => {
    for (const v of ['1', 'null', 'true', '{"y":"z"}', '["a"]']) {
      rejects(stBytes(`{"__metadata__":{"format":"pt","k":${v}},${t}}`, 1), /__metadata__ value for "k" is not a string/);
    }
  });

  it('rejects a __metadata__ that is not an object', () => {
    for (const v of ['"pt"', '["format","pt"]', '3']) rejects(stBytes(`{"__metadata__":${v},${t}}`, 1), /__metadata__ must be an object of strings/);
  });
});

describe('tensor entries', () => {
  it('rejects unknown dtypes', () => {
    for (const d of ['F128', 'f32', 'float32', 'BF8', '', 'Q4_0']) rejects(stBytes(`{"a":${entry(d, [1], [0, 4])}}`, 4), /tensor "a" has unknown dtype/);
    rejects(stBytes(`{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, 4), /unknown dtype 4/);
    rejects(stBytes(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, 4), /unknown dtype/);
    rejects(stBytes('{"a":{"dtype":"toString","shape":[1],"data_offsets":[0,4]}}', 4), /unknown dtype "toString"/);
  });

  it('rejects entries that are not objects', () => {
    for (const v of ['1', '"F32"', 'null', '[]']) rejects(stBytes(`{"a":${v}}`), /entry "a" is not an object/);
  });

  it('rejects bad shapes (negative, non-integer, not an array)', () => {
    for (const s of ['[-1]', '[2,-3]', '[1.5]', '[2,0.5]', '"2"', '2', 'null', '{"0":2}', '[[2]]', '["2"]', '[true]']) {
      rejects(stBytes(`{"a":{"dtype":"U8","shape":${s},"data_offsets":[0,2]}}`, 2), /tensor "a" shape .* is not a list of non-negative integers/);
    }
    rejects(stBytes('{"a":{"dtype":"U8","data_offsets":[0,2]}}', 2), /shape undefined is not a list/);
  });

  it('rejects bad data_offsets (not a pair, negative, non-integer)', () => {
    for (const o of ['[0]', '[]', '[0,2,2]', '[-1,1]', '[0,-2]', '[0.5,2]', '"0,2"', 'null', '{"0":0,"1":2}', '["0","2"]']) {
      rejects(stBytes(`{"a":{"dtype":"U8","shape":[2],"data_offsets":${o}}}`, 2), /tensor "a" data_offsets .* is not a pair of non-negative integers/);
    }
  });

  it('rejects data_offsets whose end is before their begin', () => {
    const h = `{"a":${entry('U8', [4], [0, 4])},"b":${entry('U8', [0], [4, 0])}}`;
    rejects(stBytes(h, 4), /tensor "b" data_offsets \[4, 0\] end before they begin/);
  });

  it('rejects a hole between tensors', () => {
    const h = `{"a":${entry('U8', [4], [0, 4])},"b":${entry('U8', [4], [8, 12])}}`;
    rejects(stBytes(h, 12), /tensor "b" data_offsets \[8, 12\] leave a hole at byte 4/);
  });

  it('rejects overlapping tensors', () => {
    const h = `{"a":${entry('F32', [2], [0, 8])},"b":${entry('F32', [2], [4, 12])}}`;
    rejects(stBytes(h, 12), /tensor "b" data_offsets \[4, 12\] overlap the previous tensor, which ends at 8/);
    // the same span twice
    const h2 = `{"a":${entry('F32', [2], [0, 8])},"b":${entry('F32', [2], [0, 8])}}`;
    rejects(stBytes(h2, 8), /overlap the previous tensor/);
  });

  it('rejects data that does not start at byte 0', () => {
    const h = `{"a":${entry('F32', [1], [4, 8])}}`;
    rejects(stBytes(h, 8), /tensor "a" data_offsets \[4, 8\] leave a hole at byte 0/);
  });

  it('rejects a span that differs from product(shape) × dtype size', () => {
    rejects(stBytes(`{"a":${entry('F32', [3], [0, 8])}}`, 8), /tensor "a" \(F32, shape \[3\]\) needs 12 bytes but data_offsets span 8/);
    rejects(stBytes(`{"a":${entry('BF16', [2, 2], [0, 16])}}`, 16), /needs 8 bytes but data_offsets span 16/);
    rejects(stBytes(`{"a":${entry('F64', [], [0, 4])}}`, 4), /needs 8 bytes but data_offsets span 4/);
    rejects(stBytes(`{"a":${entry('I64', [0, 5], [0, 8])}}`, 8), /needs 0 bytes but data_offsets span 8/);
  });

  it('accepts scalars (shape []) and empty tensors', () => {
    const h = `{"s":${entry('F64', [], [0, 8])},"e":${entry('F32', [0, 7], [8, 8])},"z":${entry('U8', [1], [8, 9])}}`;
    const info = accepts(stBytes(h, 9));
    assert.deepEqual(
      info.tensors.map((t) => [t.name, t.elementCount, t.begin, t.end]),
      [['s', 1, 0, 8], ['e', 0, 8, 8], ['z', 1, 8, 9]],
    );
  });

  it('rejects shapes and offsets whose size overflows, without hanging', () => {
    const big = 2 ** 31;
    rejects(stBytes(`{"a":${entry('F32', [big, big, big], [0, 4])}}`, 4), /tensor "a" shape or offsets overflow/);
    rejects(stBytes(`{"a":{"dtype":"U8","shape":[18446744073709551617],"data_offsets":[0,1]}}`, 1), /overflow/);
    rejects(stBytes(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,100000000000000000000]}}`, 1), /overflow/);
    // 2^53 elements of 8 bytes: the byte count does not fit a double exactly
    rejects(stBytes(`{"a":${entry('F64', [2 ** 26, 2 ** 27], [0, 8])}}`, 8), /overflow|needs/);
    // Millions of dimensions: the product must not be computed in quadratic time, nor the
    // message print them all.
    const dims = 2_000_000;
    const h = `{"a":{"dtype":"U8","shape":[${new Array(dims).fill('2').join(',')}],"data_offsets":[0,1]}}`;
    const t0 = performance.now();
    const err = rejects(stBytes(h, 1), /overflow/);
    const ms = performance.now() - t0;
    assert.ok(ms < 10_000, `took ${ms} ms`); // quadratic BigInt products took minutes here
    assert.ok(err.message.length < 1000, `message of ${err.message.length} characters`);
  });

  it('keeps the product of a shape with a zero dimension at zero', () => {
    const info = accepts(stBytes(`{"a":${entry('F32', [2 ** 40, 2 ** 20, 0], [0, 0])}}`));
    assert.equal(info.tensors[0]!.elementCount, 0);
  });

  it('rejects trailing bytes after the last tensor', () => {
    rejects(stBytes(`{"a":${entry('U8', [4], [0, 4])}}`, 5), /1 trailing bytes after the last tensor/);
  });

  it('rejects truncated data', () => {
    rejects(stBytes(`{"a":${entry('U8', [4], [0, 4])},"b":${entry('F32', [2], [4, 12])}}`, 11), /file is truncated: tensors need 12 data bytes, file has 11/);
  });

  it('rejects a tensor name that appears twice in the JSON text', () => {
    const e = entry('U8', [2], [0, 2]);
    rejects(stBytes(`{"a":${e},"a":${e}}`, 2), /tensor name "a" appears twice in the header/);
    // different spellings of the same name
    rejects(stBytes(`{"a":${e},"\\u0061":${e}}`, 2), /tensor name "a" appears twice/);
    rejects(stBytes(`{"__metadata__":{"x":"y"},"a":${e},"__metadata__":null}`, 2), /"__metadata__" appears twice/);
    // the same text nested inside a value is not a duplicate
    const info = accepts(stBytes(`{"__metadata__":{"a":"a"},"a":${e}}`, 2));
    assert.equal(info.tensors.length, 1);
  });

  it('is not fooled by braces, quotes and colons inside strings', () => {
    const names = ['{"x":', 'b"}:[', '}]', 'a\\'];
    const parts = names.map((n, i) => `${JSON.stringify(n)}:${entry('U8', [1], [i, i + 1])}`);
    const info = accepts(stBytes(`{"__metadata__":{"k}":"{[\\":"},${parts.join(',')}}`, 4));
    assert.deepEqual(info.tensors.map((t) => t.name), names);
    assert.deepEqual({ ...info.metadata }, { 'k}': '{[":' });
    rejects(stBytes(`{"}":${entry('U8', [1], [0, 1])},"}":${entry('U8', [1], [0, 1])}}`, 1), /tensor name "}" appears twice/);
  });

  it('returns tensors in data order whatever the JSON order', () => {
    const h = `{"c":${entry('U8', [1], [3, 4])},"a":${entry('U16', [1], [1, 3])},"b":${entry('U8', [1], [0, 1])}}`;
    assert.deepEqual(accepts(stBytes(h, 4)).tensors.map((t) => t.name), ['b', 'a', 'c']);
  });
});

describe('dtypes', () => {
  // Sizes in bits of the reference's Dtype enum (huggingface/safetensors), written out here.
  const REFERENCE_BITS: Record<string, number> = {
    BOOL: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8,
    I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, C64: 64, F64: 64, I64: 64, U64: 64,
  };

  it('knows exactly the reference dtypes with their sizes', () => {
    assert.deepEqual({ ...DTYPE_BITS }, REFERENCE_BITS);
  });

  it('recognises every dtype with its byte size', () => {
    for (const [d, bits] of Object.entries(REFERENCE_BITS)) {
      const n = 8; // whole bytes for every dtype
      const nbytes = (n * bits) / 8;
      const info = accepts(stBytes(`{"x":${entry(d, [2, 4], [0, nbytes])}}`, nbytes));
      assert.equal(info.tensors[0]!.dtype, d);
      assert.equal(info.tensors[0]!.elementCount, n);
      // one element too many for the span is rejected
      rejects(stBytes(`{"x":${entry(d, [3, 3], [0, nbytes])}}`, nbytes), /needs|does not fill whole bytes/);
    }
  });

  it('requires sub-byte tensors to fill whole bytes', () => {
    rejects(stBytes(`{"a":${entry('F4', [3], [0, 2])}}`, 2), /tensor "a" of 3 F4 elements does not fill whole bytes/);
    rejects(stBytes(`{"a":${entry('F4', [1], [0, 1])}}`, 1), /does not fill whole bytes/);
    rejects(stBytes(`{"a":${entry('F6_E3M2', [3], [0, 3])}}`, 3), /of 3 F6_E3M2 elements does not fill whole bytes/);
    assert.equal(accepts(stBytes(`{"a":${entry('F4', [2, 3], [0, 3])}}`, 3)).tensors[0]!.elementCount, 6);
    assert.equal(accepts(stBytes(`{"a":${entry('F6_E2M3', [4], [0, 3])}}`, 3)).tensors[0]!.end, 3);
    rejects(stBytes(`{"a":${entry('F4', [4], [0, 4])}}`, 4), /needs 2 bytes but data_offsets span 4/);
  });
});
