// Writing safetensors files and checkpoints by plan, reading them back bit for bit, and what the
// reader does with random damage to a valid file.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { openCheckpoint } from '../../src/core/checkpoint/checkpoint';
import { ChatVecError } from '../../src/core/errors';
import { parseShardSize } from '../../src/cli/options';
import { parseByteSize } from '../../src/protocol/displayFormat';
import { AtomicOutputDir, isPartialOutputName, ownerIdentity } from '../../src/core/io/atomicOutput';
import { OutputFile } from '../../src/core/io/outputFile';
import { PositionalFile } from '../../src/core/io/positionalFile';
import { decodeToF32, encodeFromF32 } from '../../src/core/numeric/convert';
import { DTYPE_BITS, type Dtype } from '../../src/core/safetensors/dtype';
import { type SafetensorsFileInfo, type TensorLocation, readSafetensorsHeader, readTensorElements, tensorChunks } from '../../src/core/safetensors/reader';
import { type FilePlan, type TensorSpec, createPlannedFile, planCheckpoint, planSafetensorsFile } from '../../src/core/safetensors/writer';

let dir: string;
let counter = 0;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-roundtrip-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});
const fresh = (prefix = 'd') => {
  const p = path.join(dir, `${prefix}${counter++}`);
  fs.mkdirSync(p);
  return p;
};

const ALL_DTYPES = Object.keys(DTYPE_BITS) as Dtype[];
const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const byteLen = (dtype: Dtype, shape: readonly number[]) => (product(shape) * DTYPE_BITS[dtype]) / 8;

function randomBytes(n: number, seed: number): Uint8Array {
  let s = (seed >>> 0) || 0x9e3779b9;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

/** Writes a planned file with the given bytes per tensor, in small pieces at their positions. */
function writePlanned(folder: string, plan: FilePlan, data: ReadonlyMap<string, Uint8Array>): string {
  const p = path.join(folder, plan.fileName);
  const f = createPlannedFile(p, plan);
  try {
    assert.equal(fs.statSync(p).size, plan.size, 'created with its final size');
    // in reverse order and in pieces of 5 bytes: positions, not the order of writes, decide
    for (const t of [...plan.tensors].reverse()) {
      const bytes = data.get(t.name)!;
      for (let i = 0; i < bytes.length; i += 5) f.writeAtSync(bytes.subarray(i, i + 5), t.position + i);
    }
    f.syncAndClose();
  } finally {
    f.close();
  }
  return p;
}

function location(info: SafetensorsFileInfo, name: string): TensorLocation {
  const t = info.tensors.find((x) => x.name === name)!;
  return { file: info.path, dtype: t.dtype, shape: t.shape, elementCount: t.elementCount, position: info.dataStart + t.begin, byteLength: t.end - t.begin };
}

function readWhole(info: SafetensorsFileInfo, name: string): Uint8Array {
  const loc = location(info, name);
  const f = PositionalFile.openReadOnly(info.path);
  try {
    const out = new Uint8Array(loc.byteLength);
    readTensorElements(f, loc, 0, loc.elementCount, out);
    return out;
  } finally {
    f.close();
  }
}

function readChunked(info: SafetensorsFileInfo, name: string, chunkElements: number): Uint8Array {
  const loc = location(info, name);
  const f = PositionalFile.openReadOnly(info.path);
  const parts: Uint8Array[] = [];
  let next = 0;
  try {
    for (const c of tensorChunks(f, loc, chunkElements)) {
      assert.equal(c.first, next, 'chunks are consecutive');
      assert.equal(c.bytes.length, (c.count * DTYPE_BITS[loc.dtype]) / 8);
      next += c.count;
      parts.push(c.bytes.slice());
    }
  } finally {
    f.close();
  }
  assert.equal(next, loc.elementCount);
  return new Uint8Array(Buffer.concat(parts));
}

/** The file's header parsed here by hand, independently of the reader. */
function rawHeader(p: string): { n: number; text: string; json: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> & { __metadata__?: Record<string, string> } } {
  const bytes = fs.readFileSync(p);
  const n = Number(bytes.readBigUInt64LE(0));
  const text = bytes.subarray(8, 8 + n).toString('utf8');
  return { n, text, json: JSON.parse(text) };
}

describe('single-file round trip', () => {
  it('writes every dtype and reads it back bit-identical', () => {
    const specs: TensorSpec[] = ALL_DTYPES.map((dtype, i) => ({ name: `t.${dtype}.${i}`, dtype, shape: i % 3 === 0 ? [4, 6] : i % 3 === 1 ? [24] : [2, 3, 4] }));
    specs.push({ name: 'scalar', dtype: 'F64', shape: [] }, { name: 'empty', dtype: 'BF16', shape: [3, 0] });
    const data = new Map(specs.map((s, i) => [s.name, randomBytes(byteLen(s.dtype, s.shape), i + 1)]));
    const plan = planSafetensorsFile('all.safetensors', specs, { source: 'test', 'ключ': 'значение' });
    const p = writePlanned(fresh(), plan, data);
    const info = readSafetensorsHeader(p);
    assert.deepEqual({ ...info.metadata }, { format: 'pt', source: 'test', 'ключ': 'значение' });
    assert.deepEqual(info.tensors.map((t) => t.name), specs.map((s) => s.name), 'file order is plan order');
    for (const s of specs) {
      const t = info.tensors.find((x) => x.name === s.name)!;
      assert.equal(t.dtype, s.dtype);
      assert.deepEqual(t.shape, s.shape);
      const planned = plan.tensors.find((x) => x.name === s.name)!;
      assert.equal(info.dataStart + t.begin, planned.position);
      assert.equal(t.end - t.begin, data.get(s.name)!.length);
      assert.deepEqual(readWhole(info, s.name), data.get(s.name));
      for (const chunk of [1, 8, 9, 16, 1000]) assert.deepEqual(readChunked(info, s.name, chunk), data.get(s.name), `${s.name} in chunks of ${chunk}`);
    }
    // and by hand: the bytes sit at 8 + N + data_offsets[0]
    const raw = rawHeader(p);
    const file = fs.readFileSync(p);
    for (const s of specs) {
      const [b, e] = raw.json[s.name]!.data_offsets;
      assert.deepEqual(new Uint8Array(file.subarray(8 + raw.n + b, 8 + raw.n + e)), data.get(s.name));
    }
  });

  it('keeps float values of every float dtype exactly through encode, write, read and decode', () => {
    const values = new Float32Array([0, -0, 1, -1.5, 3.140625, 65504, -(2 ** -24), 1e-3, 1e30, -Infinity, Infinity, NaN]);
    const folder = fresh();
    for (const dtype of ['F16', 'BF16', 'F32', 'F64'] as const) {
      const n = values.length;
      const bytes = new Uint8Array((n * DTYPE_BITS[dtype]) / 8);
      encodeFromF32(dtype, values, bytes, n);
      const plan = planSafetensorsFile(`${dtype}.safetensors`, [{ name: 'w', dtype, shape: [n] }]);
      const info = readSafetensorsHeader(writePlanned(folder, plan, new Map([['w', bytes]])));
      const back = readWhole(info, 'w');
      assert.deepEqual(back, bytes, `${dtype} bytes`);
      const decoded = new Float32Array(n);
      decodeToF32(dtype, back, decoded, n);
      const expected = new Float32Array(n);
      decodeToF32(dtype, bytes, expected, n);
      assert.deepEqual(new Uint32Array(decoded.buffer), new Uint32Array(expected.buffer));
      if (dtype === 'F32' || dtype === 'F64') {
        for (let i = 0; i < n; i++) assert.ok(Object.is(decoded[i], values[i]) || (Number.isNaN(decoded[i]!) && Number.isNaN(values[i]!)));
      }
    }
  });

  it('pads the header with spaces to a multiple of 8, adds format: pt, and pads no further', () => {
    const folder = fresh();
    const seen = new Set<number>();
    for (let len = 1; len <= 16; len++) {
      const name = 'x'.repeat(len);
      const plan = planSafetensorsFile(`p${len}.safetensors`, [{ name, dtype: 'U8', shape: [3] }]);
      const p = writePlanned(folder, plan, new Map([[name, new Uint8Array([1, 2, 3])]]));
      const { n, text, json } = rawHeader(p);
      const jsonLen = Buffer.byteLength(text.trimEnd());
      seen.add(jsonLen % 8);
      assert.equal(n % 8, 0, `header length ${n}`);
      assert.ok(n - jsonLen < 8, 'at most 7 bytes of padding');
      assert.match(text.slice(jsonLen), /^ *$/, 'padding is spaces');
      assert.equal(text.trimStart(), text, 'no leading padding');
      assert.equal(json.__metadata__?.format, 'pt');
      assert.equal(fs.statSync(p).size, 8 + n + 3);
      assert.equal(plan.headerBytes.length, 8 + n);
    }
    assert.equal(seen.size, 8, 'every JSON length modulo 8 was tried');
  });

  it('writes tensors whose names are special to JavaScript objects', () => {
    const names = ['__proto__', 'constructor', 'toString', '10', '2', 'hasOwnProperty'];
    const specs = names.map((name) => ({ name, dtype: 'U8' as const, shape: [1] }));
    const plan = planSafetensorsFile('odd.safetensors', specs);
    const info = readSafetensorsHeader(writePlanned(fresh(), plan, new Map(names.map((n, i) => [n, new Uint8Array([i])]))));
    assert.deepEqual(info.tensors.map((t) => t.name), names);
    names.forEach((n, i) => assert.deepEqual(readWhole(info, n), new Uint8Array([i])));
  });

  it('refuses plans it cannot write', () => {
    assert.throws(() => planSafetensorsFile('x', [{ name: 'a', dtype: 'U8', shape: [1] }, { name: 'a', dtype: 'U8', shape: [1] }]), (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument' && /planned twice/.test(e.message));
    assert.throws(() => planSafetensorsFile('x', [{ name: 'a', dtype: 'F4', shape: [3] }]), (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument');
  });
});

describe('reading ranges', () => {
  const folder = () => fresh('r');
  it('rejects ranges outside the tensor, splitting sub-byte elements, or with the wrong buffer', () => {
    const data = new Map([['a', randomBytes(40, 3)], ['b', randomBytes(8, 4)]]);
    const plan = planSafetensorsFile('r.safetensors', [{ name: 'a', dtype: 'F32', shape: [10] }, { name: 'b', dtype: 'F4', shape: [16] }]);
    const info = readSafetensorsHeader(writePlanned(folder(), plan, data));
    const f = PositionalFile.openReadOnly(info.path);
    try {
      const a = location(info, 'a');
      const b = location(info, 'b');
      const isArg = (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument';
      assert.throws(() => readTensorElements(f, a, 8, 3, new Uint8Array(12)), isArg);
      assert.throws(() => readTensorElements(f, a, -1, 1, new Uint8Array(4)), isArg);
      assert.throws(() => readTensorElements(f, a, 0, 2, new Uint8Array(4)), isArg);
      assert.throws(() => readTensorElements(f, b, 1, 2, new Uint8Array(1)), isArg);
      assert.throws(() => readTensorElements(f, b, 0, 3, new Uint8Array(2)), isArg);
      const mid = new Uint8Array(12);
      readTensorElements(f, a, 3, 3, mid);
      assert.deepEqual(mid, data.get('a')!.subarray(12, 24));
      const half = new Uint8Array(2);
      readTensorElements(f, b, 4, 4, half);
      assert.deepEqual(half, data.get('b')!.subarray(2, 4));
    } finally {
      f.close();
    }
  });

  it('reports a file that shrank under the reader as an I/O error, and refuses folders', () => {
    const d = folder();
    const plan = planSafetensorsFile('s.safetensors', [{ name: 'a', dtype: 'U8', shape: [100] }]);
    const info = readSafetensorsHeader(writePlanned(d, plan, new Map([['a', randomBytes(100, 9)]])));
    fs.truncateSync(info.path, info.size - 10);
    const f = PositionalFile.openReadOnly(info.path);
    try {
      assert.throws(() => readTensorElements(f, location(info, 'a'), 0, 100, new Uint8Array(100)), (e: unknown) => e instanceof ChatVecError && e.code === 'Io' && e.message.includes(info.path));
    } finally {
      f.close();
    }
    assert.throws(() => PositionalFile.openReadOnly(d), (e: unknown) => e instanceof ChatVecError && e.code === 'BadCheckpoint' && /not a regular file/.test(e.message));
    assert.throws(() => PositionalFile.openReadOnly(path.join(d, 'missing')), (e: unknown) => e instanceof ChatVecError && e.code === 'Io' && /ENOENT/.test(e.message));
  });
});

/** Writes a whole planned checkpoint (shards + index) into a folder. */
function writeCheckpoint(folder: string, specs: TensorSpec[], budget: number, seed = 1) {
  const plan = planCheckpoint(specs, budget, { note: 'sharded' });
  const data = new Map(specs.map((s, i) => [s.name, randomBytes(byteLen(s.dtype, s.shape), seed + i)]));
  for (const file of plan.files) writePlanned(folder, file, data);
  if (plan.index) fs.writeFileSync(path.join(folder, 'model.safetensors.index.json'), JSON.stringify(plan.index));
  return { plan, data };
}

describe('planCheckpoint', () => {
  // byte sizes: 40, 40, 40, 200, 10, 10 (U8 tensors of those lengths)
  const specs: TensorSpec[] = [40, 40, 40, 200, 10, 10].map((n, i) => ({ name: `model.layers.${i}.w`, dtype: 'U8', shape: [n] }));

  it('splits by byte budget in order, gives an oversized tensor its own shard, names shards like transformers', () => {
    const plan = planCheckpoint(specs, 100);
    assert.deepEqual(plan.files.map((f) => f.fileName), [1, 2, 3, 4].map((i) => `model-0000${i}-of-00004.safetensors`));
    assert.deepEqual(plan.files.map((f) => f.tensors.map((t) => t.name)), [[specs[0]!.name, specs[1]!.name], [specs[2]!.name], [specs[3]!.name], [specs[4]!.name, specs[5]!.name]]);
    assert.equal(plan.totalTensorBytes, 340);
    assert.equal(plan.index!.metadata.total_size, 340);
    assert.deepEqual(plan.index!.weight_map, Object.fromEntries(plan.files.flatMap((f) => f.tensors.map((t) => [t.name, f.fileName]))));
    assert.equal(Object.keys(plan.index!.weight_map).length, specs.length);
    for (const f of plan.files) {
      const bytes = f.tensors.reduce((a, t) => a + t.byteLength, 0);
      assert.ok(bytes <= 100 || f.tensors.length === 1, `${f.fileName} holds ${bytes} bytes`);
    }
  });

  it('fills a shard up to exactly the budget', () => {
    const plan = planCheckpoint(specs, 120);
    assert.deepEqual(plan.files.map((f) => f.tensors.length), [3, 1, 2]);
  });

  it('uses model.safetensors and no index for a single shard, also for no tensors', () => {
    const plan = planCheckpoint(specs, 1e9);
    assert.deepEqual(plan.files.map((f) => f.fileName), ['model.safetensors']);
    assert.equal(plan.index, null);
    const empty = planCheckpoint([], 100);
    assert.deepEqual(empty.files.map((f) => [f.fileName, f.tensors.length]), [['model.safetensors', 0]]);
    const d = fresh();
    writePlanned(d, empty.files[0]!, new Map());
    assert.deepEqual(readSafetensorsHeader(path.join(d, 'model.safetensors')).tensors, []);
  });

  it('numbers ten or more shards with five digits', () => {
    const many = Array.from({ length: 12 }, (_, i) => ({ name: `t${i}`, dtype: 'U8' as const, shape: [10] }));
    const names = planCheckpoint(many, 10).files.map((f) => f.fileName);
    assert.equal(names.length, 12);
    assert.equal(names[0], 'model-00001-of-00012.safetensors');
    assert.equal(names[11], 'model-00012-of-00012.safetensors');
  });

  it('rejects a budget that is not positive', () => {
    for (const b of [0, -1, NaN]) assert.throws(() => planCheckpoint(specs, b), (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument');
  });

  it('writes a sharded checkpoint that opens with the same catalogue and bytes', () => {
    const d = fresh();
    const { plan, data } = writeCheckpoint(d, specs, 100);
    const ckpt = openCheckpoint(d);
    assert.equal(ckpt.indexFile, path.join(d, 'model.safetensors.index.json'));
    assert.deepEqual(ckpt.shards.map((s) => s.fileName), plan.files.map((f) => f.fileName));
    assert.deepEqual(ckpt.tensors.map((t) => t.name), specs.map((s) => s.name));
    for (const t of ckpt.tensors) {
      const f = PositionalFile.openReadOnly(t.file);
      try {
        const out = new Uint8Array(t.byteLength);
        readTensorElements(f, t, 0, t.elementCount, out);
        assert.deepEqual(out, data.get(t.name));
      } finally {
        f.close();
      }
      assert.equal(ckpt.shards[t.shard]!.fileName, plan.index!.weight_map[t.name]);
    }
    for (const s of ckpt.shards) assert.equal(s.metadata?.format, 'pt');
  });
});

describe('parseByteSize', () => {
  it('reads decimal and binary units like transformers', () => {
    const cases: [string, number][] = [
      ['5GB', 5e9], ['500MB', 5e8], ['2GiB', 2 * 2 ** 30], ['1e9', 1e9], ['100', 100], ['1.5KB', 1500], ['10KiB', 10240],
      [' 3 mb ', 3e6], ['1TB', 1e12], ['2k', 2000], ['7b', 7], ['4M', 4e6], ['1MiB', 2 ** 20], ['0.5GB', 5e8], ['2E3', 2000],
    ];
    for (const [s, n] of cases) assert.equal(parseByteSize(s), n, s);
  });

  it('rejects what is not a positive size', () => {
    for (const s of ['', 'abc', '0', '0.1', '-5GB', '5XB', 'GB', '5 G B', '1,000']) {
      assert.equal(parseByteSize(s), undefined, s);
      assert.throws(() => parseShardSize(s), (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument' && e.message.includes(`"${s}"`), s);
    }
  });
});

describe('atomic output folder', () => {
  it('appears complete at commit or not at all', () => {
    const parent = fresh('atomic');
    const target = path.join(parent, 'out');
    const out = AtomicOutputDir.begin(target, { overwrite: false });
    const specs: TensorSpec[] = [{ name: 'a', dtype: 'U8', shape: [4] }];
    writePlanned(out.tempPath, planSafetensorsFile('model.safetensors', specs), new Map([['a', new Uint8Array([1, 2, 3, 4])]]));
    assert.equal(fs.existsSync(target), false, 'nothing at the final path before commit');
    assert.ok(isPartialOutputName(path.basename(out.tempPath)));
    assert.equal(path.dirname(out.tempPath), parent, 'a sibling, so the rename stays on one filesystem');
    out.commit();
    assert.deepEqual(fs.readdirSync(parent), ['out']);
    assert.deepEqual(readWhole(readSafetensorsHeader(path.join(target, 'model.safetensors')), 'a'), new Uint8Array([1, 2, 3, 4]));

    assert.throws(() => AtomicOutputDir.begin(target, { overwrite: false }), (e: unknown) => e instanceof ChatVecError && e.code === 'OutputExists');
    const again = AtomicOutputDir.begin(target, { overwrite: true });
    fs.writeFileSync(again.file('new.txt'), 'x');
    assert.ok(fs.existsSync(path.join(target, 'model.safetensors')), 'the old output stays until commit');
    again.commit();
    assert.deepEqual(fs.readdirSync(target).sort(), ['.chatvec-output.json', 'new.txt'], 'the new output, with its marker');
    assert.deepEqual(fs.readdirSync(parent), ['out'], 'no leftovers');

    const aborted = AtomicOutputDir.begin(path.join(parent, 'other'), { overwrite: false });
    fs.writeFileSync(aborted.file('model.safetensors'), 'partial');
    aborted.abort();
    aborted.abort();
    assert.deepEqual(fs.readdirSync(parent), ['out']);
  });

  it('writes at positions in any order through separate handles', () => {
    const p = path.join(fresh(), 'f.bin');
    const a = OutputFile.create(p, 10);
    const b = OutputFile.openForWrite(p);
    b.writeAtSync(new Uint8Array([9, 9]), 8);
    a.writeAtSync(new Uint8Array([1, 2, 3]), 0);
    b.syncAndClose();
    a.syncAndClose();
    assert.deepEqual(new Uint8Array(fs.readFileSync(p)), new Uint8Array([1, 2, 3, 0, 0, 0, 0, 0, 9, 9]));
    assert.throws(() => a.writeAtSync(new Uint8Array(1), 0), ChatVecError);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const nameArb = fc.oneof(
  { weight: 5, arbitrary: fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' }) },
  { weight: 3, arbitrary: fc.stringMatching(/^[a-z_]{1,8}(\.[0-9]{1,2})?\.(weight|bias)$/) },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', '0', '17', 'a"b', 'x\\y', '}', '{', 'ü', '') },
).filter((n) => n !== '__metadata__');

const tensorArb = fc.record({
  name: nameArb,
  dtype: fc.constantFrom(...ALL_DTYPES),
  shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }),
}).map((t): TensorSpec => {
  // sub-byte dtypes must fill whole bytes: append a dimension of 4 (F6: 4 × 6 bits = 3 bytes)
  const bits = DTYPE_BITS[t.dtype];
  if ((product(t.shape) * bits) % 8 !== 0) return { ...t, shape: [...t.shape, 4] };
  return t;
});

const tensorSetArb = fc.record({
  tensors: fc.uniqueArray(tensorArb, { maxLength: 8, selector: (t) => t.name }),
  metadata: fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__proto__', 'constructor')).filter((k) => k !== 'format'), fc.string({ maxLength: 10 }), { maxKeys: 3 }),
  seed: fc.integer({ min: 1, max: 2 ** 31 }),
});

function writeSet(set: { tensors: TensorSpec[]; metadata: Record<string, string>; seed: number }, folder: string) {
  const data = new Map(set.tensors.map((t, i) => [t.name, randomBytes(byteLen(t.dtype, t.shape), set.seed + i)]));
  const plan = planSafetensorsFile('p.safetensors', set.tensors, set.metadata);
  return { path: writePlanned(folder, plan, data), data, plan };
}

/** What any header the reader accepts must satisfy. */
function assertConsistent(info: SafetensorsFileInfo): void {
  assert.equal(info.dataStart, 8 + info.headerLength);
  assert.ok(info.dataStart <= info.size);
  let expected = 0;
  const names = new Set<string>();
  for (const t of info.tensors) {
    assert.ok(!names.has(t.name), 'unique names');
    names.add(t.name);
    assert.ok(t.name !== '__metadata__');
    assert.ok(t.dtype in DTYPE_BITS);
    assert.ok(t.shape.every((d) => Number.isSafeInteger(d) && d >= 0));
    assert.equal(t.elementCount, product(t.shape));
    assert.equal(t.begin, expected, 'contiguous from 0');
    assert.equal((t.end - t.begin) * 8, t.elementCount * DTYPE_BITS[t.dtype]);
    expected = t.end;
  }
  assert.equal(info.dataStart + expected, info.size, 'ends at the end of the file');
  if (info.metadata) for (const v of Object.values(info.metadata)) assert.equal(typeof v, 'string');
}

describe('properties', () => {
  it('random valid tensor sets round-trip', { timeout: 30_000 }, () => {
    const folder = fresh('prop');
    fc.assert(
      fc.property(tensorSetArb, (set) => {
        const { path: p, data } = writeSet(set, folder);
        const info = readSafetensorsHeader(p);
        assertConsistent(info);
        assert.deepEqual({ ...info.metadata }, { format: 'pt', ...set.metadata });
        assert.deepEqual(info.tensors.map((t) => [t.name, t.dtype, [...t.shape]]), set.tensors.map((t) => [t.name, t.dtype, [...t.shape]]));
        for (const t of set.tensors) {
          assert.deepEqual(readWhole(info, t.name), data.get(t.name));
          assert.deepEqual(readChunked(info, t.name, 8), data.get(t.name));
        }
      }),
      { numRuns: 200, seed: 20240531 },
    );
  });

  type Mutation =
    | { kind: 'flip'; at: number; bit: number }
    | { kind: 'truncate'; at: number }
    | { kind: 'extend'; bytes: number[] }
    | { kind: 'overwrite'; at: number; bytes: number[] }
    | { kind: 'headerChar'; at: number; char: string }
    | { kind: 'length'; value: bigint };

  const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('extend' as const), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 16 }) }),
    fc.record({ kind: fc.constant('overwrite' as const), at: fc.nat(), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 }) }),
    // JSON-shaped damage inside the header: more likely to parse and break a rule quietly
    fc.record({ kind: fc.constant('headerChar' as const), at: fc.nat(), char: fc.constantFrom(...'0123456789[]{},:" -.eE\\') }),
    fc.record({ kind: fc.constant('length' as const), value: fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 400n })) }),
  );

  function mutate(file: Uint8Array, m: Mutation, headerLength: number): Uint8Array {
    const out = new Uint8Array(file);
    switch (m.kind) {
      case 'flip':
        out[m.at % out.length]! ^= 1 << m.bit;
        return out;
      case 'truncate':
        return out.subarray(0, m.at % out.length);
      case 'extend':
        return new Uint8Array([...out, ...m.bytes]);
      case 'overwrite': {
        const at = m.at % out.length;
        m.bytes.forEach((b, i) => at + i < out.length && (out[at + i] = b));
        return out;
      }
      case 'headerChar':
        out[8 + (m.at % Math.max(1, headerLength))] = m.char.charCodeAt(0);
        return out;
      case 'length':
        new DataView(out.buffer).setBigUint64(0, m.value, true);
        return out;
    }
  }

  it('random damage to a valid file is rejected as BadCheckpoint or parses to a consistent catalogue', { timeout: 30_000 }, (t) => {
    const folder = fresh('mut');
    let accepted = 0;
    let rejected = 0;
    const start = process.memoryUsage().arrayBuffers;
    fc.assert(
      fc.property(tensorSetArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 }), (set, mutations) => {
        const { path: p, plan } = writeSet(set, folder);
        let bytes: Uint8Array = new Uint8Array(fs.readFileSync(p));
        for (const m of mutations) bytes = mutate(bytes, m, plan.headerBytes.length - 8);
        fs.writeFileSync(p, bytes);
        let info: SafetensorsFileInfo;
        try {
          info = readSafetensorsHeader(p);
        } catch (e) {
          assert.ok(e instanceof ChatVecError, `not a ChatVecError: ${String(e)}`);
          assert.equal(e.code, 'BadCheckpoint', e.message);
          assert.ok(e.message.includes(p), e.message);
          assert.ok(e.message.length < 2000 && !e.message.includes('\n'));
          rejected++;
          return;
        }
        accepted++;
        assertConsistent(info);
        // every accepted tensor can be read, inside the file
        for (const t of info.tensors) {
          const loc = location(info, t.name);
          assert.ok(loc.position + loc.byteLength <= info.size);
          if (loc.byteLength > 0 && loc.byteLength < 1e6) readWhole(info, t.name);
        }
      }),
      { numRuns: 300, seed: 424242 },
    );
    assert.ok(process.memoryUsage().arrayBuffers - start < 64e6, 'no large allocations');
    t.diagnostic(`${rejected} rejected, ${accepted} accepted`);
    assert.ok(rejected > 50, `only ${rejected} mutations rejected`);
    assert.ok(accepted >= 5, `only ${accepted} mutations accepted`);
  });
});

describe('atomic output: stale temporary folders', () => {
  it('removes partial folders of dead processes of this pid namespace for the same output, keeps live ones, others, and foreign ones', () => {
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'cv-stale-'));
    try {
      // a pid that is surely dead: a child that has exited
      const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString());
      const me = ownerIdentity();
      const owned = (name: string, owner: object | null) => {
        const d = path.join(parent, name);
        fs.mkdirSync(d);
        if (owner) fs.writeFileSync(path.join(d, '.chatvec-owner.json'), JSON.stringify(owner));
        return d;
      };
      const stale = owned(`.out.partial-${dead}-abc`, { ...me, pid: dead });
      const live = owned(`.out.partial-${process.ppid}-abc`, { ...me, pid: process.ppid });
      const other = owned(`.other.partial-${dead}-abc`, { ...me, pid: dead });
      // a job in another container sharing this volume: its pid means nothing here (issue 11, case 9)
      const foreignNs = owned(`.out.partial-${dead}-def`, { ...me, pid: dead, pidNamespace: 'pid:[1]' });
      const foreignHost = owned(`.out.partial-${dead}-ghi`, { ...me, pid: dead, host: `${me.host}-elsewhere` });
      // no owner file (a folder just being created, or an older version's): left alone unless a week old
      const unowned = owned(`.out.partial-${dead}-jkl`, null);
      const oldUnowned = owned(`.out.partial-${dead}-mno`, null);
      const weekAgo = new Date(Date.now() - 8 * 24 * 3600 * 1000);
      fs.utimesSync(oldUnowned, weekAgo, weekAgo);
      const dir = AtomicOutputDir.begin(path.join(parent, 'out'), { overwrite: false });
      dir.abort();
      assert.equal(fs.existsSync(stale), false);
      assert.equal(fs.existsSync(oldUnowned), false);
      for (const d of [live, other, foreignNs, foreignHost, unowned]) assert.equal(fs.existsSync(d), true, path.basename(d));
    } finally {
      fs.rmSync(parent, { recursive: true, force: true });
    }
  });
});
