// Bad inputs and outputs: each must fail with a clear ChatVecError that names the file, leave no
// output (neither OUT nor a `.OUT.partial-*` sibling), and never modify an input.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateDemoTrio } from '../../src/core/demo/generator';
import { runApply } from '../../src/core/engine/apply';
import { runExtract } from '../../src/core/engine/extract';
import {
  type StCheckpoint,
  type TensorData,
  assertNothingLeft,
  copyFolder,
  hashTree,
  readCheckpoint,
  rejectsWith,
  tempDir,
  writeModel,
} from './support/engineFixtures';

let dir: string;
let inputs: string;
let tiny: { base: string; chat: string; cp: string };
let small: { base: string; chat: string; cp: string };
let before0: Map<string, string>;
let n = 0;
const out = () => path.join(dir, 'outs', `out${n++}`);

/** Rewrites a checkpoint's tensors (through `edit`) into a new single-file folder. */
function rewrite(src: StCheckpoint, dst: string, edit: (ts: TensorData[]) => TensorData[]): string {
  const ts: TensorData[] = src.order.map((name) => {
    const t = src.tensors.get(name)!;
    return { name, dtype: t.dtype as TensorData['dtype'], shape: t.shape, bytes: new Uint8Array(t.bytes) };
  });
  return writeModel(dst, edit(ts));
}

before(() => {
  dir = tempDir('errors');
  inputs = path.join(dir, 'inputs');
  tiny = generateDemoTrio(path.join(inputs, 'demo'), 'tiny', 11);
  small = generateDemoTrio(path.join(inputs, 'demo'), 'small', 11);
  const chat = readCheckpoint(tiny.chat);
  const cp = readCheckpoint(tiny.cp);
  rewrite(chat, path.join(inputs, 'chat-missing'), (ts) => ts.filter((t) => t.name !== 'model.layers.1.mlp.up_proj.weight'));
  rewrite(cp, path.join(inputs, 'cp-extra'), (ts) => [...ts, { name: 'model.layers.9.mlp.up_proj.weight', dtype: 'BF16', shape: [2, 2], bytes: new Uint8Array(8) }]);
  rewrite(chat, path.join(inputs, 'chat-shape'), (ts) =>
    ts.map((t) => (t.name === 'model.layers.2.self_attn.o_proj.weight' ? { ...t, shape: [t.shape[0]! / 2, t.shape[1]! * 2] } : t)),
  );
  // A truncated shard: a copy of the small cp with bytes cut off its last shard.
  const trunc = copyFolder(small.cp, path.join(inputs, 'cp-truncated'));
  const shards = fs.readdirSync(trunc).filter((f) => f.endsWith('.safetensors')).sort();
  assert.ok(shards.length >= 2, 'the small preset comes sharded');
  fs.truncateSync(path.join(trunc, shards.at(-1)!), fs.statSync(path.join(trunc, shards.at(-1)!)).size - 1000);
  // An index that points to a shard that is not there.
  const gone = copyFolder(small.cp, path.join(inputs, 'cp-missing-shard'));
  fs.rmSync(path.join(gone, shards[0]!));
  before0 = hashTree(inputs);
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('bad inputs stop with a clear message and no output', () => {
  it('a tensor missing from the chat model (fused and extract)', async () => {
    const chat = path.join(inputs, 'chat-missing');
    let o = out();
    const e = await rejectsWith(runApply({ target: tiny.cp, base: tiny.base, chats: [chat], out: o, skipEmbed: true }), 'NameMismatch', 'model.layers.1.mlp.up_proj.weight', chat);
    assert.match(e.message, /only in/);
    assertNothingLeft(o);
    o = out();
    await rejectsWith(runExtract({ base: tiny.base, chat, out: o }), 'NameMismatch', 'model.layers.1.mlp.up_proj.weight', chat);
    assertNothingLeft(o);
  });

  it('a tensor the base lacks in CP', async () => {
    const cp = path.join(inputs, 'cp-extra');
    const o = out();
    await rejectsWith(runApply({ target: cp, base: tiny.base, chats: [tiny.chat], out: o, skipEmbed: true }), 'NameMismatch', 'model.layers.9.mlp.up_proj.weight', cp);
    assertNothingLeft(o);
    // … and in the two-step path: the vector does not cover it.
    const v = out();
    await runExtract({ base: tiny.base, chat: tiny.chat, out: v, skipEmbed: true });
    const o2 = out();
    await rejectsWith(runApply({ target: cp, vectors: [v], out: o2, skipEmbed: true }), 'NameMismatch', 'model.layers.9.mlp.up_proj.weight', v);
    assertNothingLeft(o2);
  });

  it('a shape mismatch of a non-embedding tensor lists the tensor with both shapes (even with --skip-embed)', async () => {
    const chat = path.join(inputs, 'chat-shape');
    const o = out();
    const e = await rejectsWith(
      runApply({ target: tiny.cp, base: tiny.base, chats: [chat], out: o, skipEmbed: true }),
      'ShapeMismatch',
      'model.layers.2.self_attn.o_proj.weight',
      '[64, 64]',
      '[32, 128]',
      chat,
    );
    assert.doesNotMatch(e.message, /--skip-embed/, 'not a vocabulary problem');
    assertNothingLeft(o);
  });

  it('a truncated shard names the shard file', async () => {
    const cp = path.join(inputs, 'cp-truncated');
    const shard = fs.readdirSync(cp).filter((f) => f.endsWith('.safetensors')).sort().at(-1)!;
    const o = out();
    await rejectsWith(runApply({ target: cp, base: small.base, chats: [small.chat], out: o, skipEmbed: true }), 'BadCheckpoint', path.join(cp, shard));
    assertNothingLeft(o);
  });

  it('an index pointing to a missing shard names the index and the shard', async () => {
    const cp = path.join(inputs, 'cp-missing-shard');
    const o = out();
    await rejectsWith(
      runApply({ target: cp, base: small.base, chats: [small.chat], out: o, skipEmbed: true }),
      'BadCheckpoint',
      path.join(cp, 'model.safetensors.index.json'),
      'model-00001-of-',
      /does not exist/,
    );
    assertNothingLeft(o);
  });

  it('a missing input folder', async () => {
    const o = out();
    await rejectsWith(runApply({ target: path.join(dir, 'nope'), base: tiny.base, chats: [tiny.chat], out: o }), 'BadCheckpoint', path.join(dir, 'nope'));
    assertNothingLeft(o);
  });
});

describe('outputs', () => {
  it('an output whose parent is a file fails with an Io error naming the path', async () => {
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, 'not a folder');
    await rejectsWith(runApply({ target: tiny.cp, base: tiny.base, chats: [tiny.chat], out: path.join(file, 'out'), skipEmbed: true }), 'Io', file);
    await rejectsWith(runApply({ target: tiny.cp, base: tiny.base, chats: [tiny.chat], out: path.join(file, 'sub', 'out'), skipEmbed: true }), 'Io', file);
    assert.equal(fs.readFileSync(file, 'utf8'), 'not a folder');
  });

  it('an output in a folder that refuses new entries even to root (/sys) fails with an Io error', { skip: !fs.existsSync('/sys/kernel') && 'no /sys' }, async () => {
    const o = '/sys/chatvec-test-output';
    await rejectsWith(runExtract({ base: tiny.base, chat: tiny.chat, out: o }), 'Io', '/sys');
    assert.ok(!fs.existsSync(o));
  });

  it('an existing output is refused without --overwrite; with it, only an earlier output is replaced', async () => {
    const o = out();
    fs.mkdirSync(o, { recursive: true });
    fs.writeFileSync(path.join(o, 'precious.txt'), 'keep me');
    await rejectsWith(runApply({ target: tiny.cp, base: tiny.base, chats: [tiny.chat], out: o, skipEmbed: true }), 'OutputExists', o, '--overwrite');
    assert.deepEqual(fs.readdirSync(o), ['precious.txt']);
    assert.deepEqual(fs.readdirSync(path.dirname(o)).filter((f) => f.includes('.partial-')), []);
    await rejectsWith(runExtract({ base: tiny.base, chat: tiny.chat, out: o }), 'OutputExists', o);
    // A folder that is not an output of chatvec is never replaced, --overwrite or not.
    await rejectsWith(runApply({ target: tiny.cp, base: tiny.base, chats: [tiny.chat], out: o, skipEmbed: true, overwrite: true }), 'OutputExists', o, 'not written by chatvec');
    assert.deepEqual(fs.readdirSync(o), ['precious.txt']);

    const o2 = out();
    await runExtract({ base: tiny.base, chat: tiny.chat, out: o2 });
    await runApply({ target: tiny.cp, base: tiny.base, chats: [tiny.chat], out: o2, skipEmbed: true, overwrite: true });
    const files = fs.readdirSync(o2);
    assert.ok(!files.includes('chatvector.json'), 'the old output was replaced, not merged into');
    assert.ok(files.includes('model.safetensors') && files.includes('config.json') && files.includes('.chatvec-output.json'), files.join(', '));
    assert.deepEqual(fs.readdirSync(path.dirname(o2)).filter((f) => f.includes('.partial-')), [], 'no temporary or old folder left');
    assert.equal(readCheckpoint(o2).order.length, readCheckpoint(tiny.cp).order.length);
  });

  it('a failed --overwrite keeps the old output', async () => {
    const o = out();
    await runExtract({ base: tiny.base, chat: tiny.chat, out: o });
    const old = hashTree(o);
    await rejectsWith(runApply({ target: tiny.cp, base: tiny.base, chats: [path.join(inputs, 'chat-missing')], out: o, skipEmbed: true, overwrite: true }), 'NameMismatch');
    assert.deepEqual(hashTree(o), old);
  });
});

describe('inputs', () => {
  it('are never modified (every file hashed before and after all the jobs above)', () => {
    assert.deepEqual(hashTree(inputs), before0);
  });
});
