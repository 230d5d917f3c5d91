// apply's options on the demo's tiny trio (cp has an extended vocabulary): how ratios pair with
// chat models and vectors, --skip-embed, the vocabulary check that runs before any work, and
// --special-tokens rows taken from the chat model (not the base model). Expected bytes come from
// the exact-order reference of support/engineFixtures.ts, read through its own safetensors parser.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateDemoTrio } from '../../src/core/demo/generator';
import { PRESETS } from '../../src/core/demo/presets';
import { specialTokenIds } from '../../src/core/demo/tokenizer';
import { runApply } from '../../src/core/engine/apply';
import { runExtract } from '../../src/core/engine/extract';
import type { ApplyOptions } from '../../src/core/jobs/types';
import {
  type OutFloat,
  type StCheckpoint,
  REPO_ROOT,
  assertNothingLeft,
  assertSameFloats,
  expectedBytes,
  overwriteTensor,
  readCheckpoint,
  rejectsWith,
  rowBytes,
  tempDir,
} from './support/engineFixtures';

const EMBED = 'model.embed_tokens.weight';
const HEAD = 'lm_head.weight';
const LAYER = 'model.layers.2.mlp.down_proj.weight';

let dir: string;
let trio: { base: string; chat: string; cp: string };
let base: StCheckpoint;
let chat: StCheckpoint;
let cp: StCheckpoint;
let n = 0;
const out = () => path.join(dir, `out${n++}`);

before(() => {
  dir = tempDir('apply');
  trio = generateDemoTrio(path.join(dir, 'demo'), 'tiny', 7);
  base = readCheckpoint(trio.base);
  chat = readCheckpoint(trio.chat);
  cp = readCheckpoint(trio.cp);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function apply(opts: Omit<ApplyOptions, 'out' | 'target'> & { target?: string }): Promise<{ out: string; ck: StCheckpoint; warnings: readonly string[] }> {
  const o = out();
  const r = await runApply({ target: trio.cp, ...opts, out: o });
  return { out: o, ck: readCheckpoint(o), warnings: r.warnings };
}

function chatvecMeta(ck: StCheckpoint): Record<string, unknown> {
  return JSON.parse(ck.metadata[0]!.chatvec!) as Record<string, unknown>;
}

/** Every non-embedding tensor equals the exact-order reference of cp + Σ rᵢ·(chatᵢ − base). */
function assertCombined(ck: StCheckpoint, ratios: readonly number[], chats: readonly StCheckpoint[] = ratios.map(() => chat)): void {
  for (const name of cp.order) {
    if (name === EMBED || name === HEAD) continue;
    const want = expectedBytes(cp.tensors.get(name)!, ratios.map((r, i) => ({ ratio: r, a: chats[i]!.tensors.get(name)!, b: base.tensors.get(name)! })), 'BF16');
    assertSameFloats(ck.tensors.get(name)!.bytes, want, 'BF16', name);
  }
}

describe('ratios', () => {
  it('default 1.0: no --ratio gives the bytes of --ratio 1 and not those of 0.5', async () => {
    const d = await apply({ base: trio.base, chats: [trio.chat], skipEmbed: true });
    const one = await apply({ base: trio.base, chats: [trio.chat], ratios: [1], skipEmbed: true });
    const half = await apply({ base: trio.base, chats: [trio.chat], ratios: [0.5], skipEmbed: true });
    assertCombined(d.ck, [1]);
    assert.ok(d.ck.tensors.get(LAYER)!.bytes.equals(one.ck.tensors.get(LAYER)!.bytes));
    assert.ok(!d.ck.tensors.get(LAYER)!.bytes.equals(half.ck.tensors.get(LAYER)!.bytes), 'ratio 0.5 must change the result');
    assert.deepEqual(chatvecMeta(d.ck).ratios, [1]);
    assert.deepEqual(chatvecMeta(half.ck).ratios, [0.5]);
  });

  it('one ratio applies to every chat model; one per chat pairs in order', async () => {
    const chat2Dir = path.join(dir, 'chat2');
    // A second chat model: the first one's folder with the base's weights for layer 2 (τ₂ = 0
    // there), so swapping the ratios changes the result.
    fs.cpSync(trio.chat, chat2Dir, { recursive: true });
    const chat2 = readCheckpoint(chat2Dir);
    overwriteTensor(chat2.tensors.get(LAYER)!, base.tensors.get(LAYER)!.bytes);
    const chat2b = readCheckpoint(chat2Dir);

    const single = await apply({ base: trio.base, chats: [trio.chat, chat2Dir], ratios: [0.5], skipEmbed: true });
    const both = await apply({ base: trio.base, chats: [trio.chat, chat2Dir], ratios: [0.5, 0.5], skipEmbed: true });
    assert.deepEqual(chatvecMeta(single.ck).ratios, [0.5, 0.5]);
    for (const name of cp.order) assert.ok(single.ck.tensors.get(name)!.bytes.equals(both.ck.tensors.get(name)!.bytes), name);
    assertCombined(single.ck, [0.5, 0.5], [chat, chat2b]);

    const perChat = await apply({ base: trio.base, chats: [trio.chat, chat2Dir], ratios: [1, -0.5], skipEmbed: true });
    assert.deepEqual(chatvecMeta(perChat.ck).ratios, [1, -0.5]);
    assertCombined(perChat.ck, [1, -0.5], [chat, chat2b]);
    const swapped = await apply({ base: trio.base, chats: [trio.chat, chat2Dir], ratios: [-0.5, 1], skipEmbed: true });
    assertCombined(swapped.ck, [-0.5, 1], [chat, chat2b]);
    assert.ok(!perChat.ck.tensors.get(LAYER)!.bytes.equals(swapped.ck.tensors.get(LAYER)!.bytes), 'ratios pair with chats in order');
  });

  it('a count mismatch is an InvalidArgument error (fused and vectors), never truncated', async () => {
    const o = path.join(dir, 'mismatch');
    await rejectsWith(runApply({ target: trio.cp, base: trio.base, chats: [trio.chat, trio.chat], ratios: [1, 0.5, 0.25], out: o, skipEmbed: true }), 'InvalidArgument', /3 ratios for 2/);
    assertNothingLeft(o);
    const v = path.join(dir, 'vec-mismatch');
    await runExtract({ base: trio.base, chat: trio.chat, out: v, skipEmbed: true });
    await rejectsWith(runApply({ target: trio.cp, vectors: [v], ratios: [1, 0.5], out: o, skipEmbed: true }), 'InvalidArgument', /2 ratios for 1/);
    assertNothingLeft(o);
    await rejectsWith(runApply({ target: trio.cp, base: trio.base, chats: [trio.chat], ratios: [NaN], out: o, skipEmbed: true }), 'InvalidArgument');
    assertNothingLeft(o);
  });

  it('the CLI exits 2 with a one-line message on a ratio count mismatch', () => {
    const cli = path.join(REPO_ROOT, 'dist/cli.js');
    if (!fs.existsSync(cli)) spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts/build.mjs')], { stdio: 'inherit' });
    const o = path.join(dir, 'cli-mismatch');
    const r = spawnSync(process.execPath, [cli, 'apply', '--target', trio.cp, '--base', trio.base, '--chat', trio.chat, '--ratio', '1', '--ratio', '2', '--out', o, '--skip-embed'], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^chatvec: error: 2 ratios for 1 chat models/m);
    assertNothingLeft(o);
  });
});

describe('--skip-embed and vocabularies', () => {
  it('with --skip-embed the embeddings and LM head are CP\'s bytes; the rest is combined', async () => {
    const r = await apply({ base: trio.base, chats: [trio.chat], skipEmbed: true });
    assert.deepEqual(r.ck.tensors.get(EMBED)!.shape, [PRESETS.tiny.vocab + PRESETS.tiny.cpExtraVocab, PRESETS.tiny.hidden]);
    assert.ok(r.ck.tensors.get(EMBED)!.bytes.equals(cp.tensors.get(EMBED)!.bytes));
    assert.ok(r.ck.tensors.get(HEAD)!.bytes.equals(cp.tensors.get(HEAD)!.bytes));
    assertCombined(r.ck, [1]);
    assert.equal(chatvecMeta(r.ck).skip_embed, true);
  });

  it('without --skip-embed differing vocabularies stop before any work, showing both shapes', async () => {
    const o = path.join(dir, 'vocab');
    let events = 0;
    const e = await rejectsWith(
      runApply({ target: trio.cp, base: trio.base, chats: [trio.chat], out: o }, { onProgress: () => events++ }),
      'ShapeMismatch',
      '[576, 64]',
      '[512, 64]',
      '--skip-embed',
      EMBED,
      HEAD,
    );
    assert.ok(e.message.includes(trio.cp) && e.message.includes(trio.base), e.message);
    assert.equal(events, 0, 'no progress: the job never started');
    assertNothingLeft(o);
    assert.ok(!fs.existsSync(o));

    // The two-step path checks the vector against the target the same way.
    const v = path.join(dir, 'vec-full');
    await runExtract({ base: trio.base, chat: trio.chat, out: v });
    await rejectsWith(runApply({ target: trio.cp, vectors: [v], out: o }), 'ShapeMismatch', '[576, 64]', '[512, 64]', '--skip-embed');
    assertNothingLeft(o);
    // … and with --skip-embed it goes through, giving the fused bytes.
    const two = await apply({ vectors: [v], skipEmbed: true });
    const fused = await apply({ base: trio.base, chats: [trio.chat], skipEmbed: true });
    for (const name of cp.order) assert.ok(two.ck.tensors.get(name)!.bytes.equals(fused.ck.tensors.get(name)!.bytes), name);
  });
});

describe('--special-tokens', () => {
  const ids = specialTokenIds(PRESETS.tiny.vocab); // 509, 510, 511: trained in chat, untrained in base and cp

  function assertRows(ck: StCheckpoint, pairs: readonly (readonly [number, number])[]): void {
    const map = new Map(pairs);
    for (const name of [EMBED, HEAD]) {
      const o = ck.tensors.get(name)!;
      for (let row = 0; row < o.shape[0]!; row++) {
        const src = map.get(row);
        if (src === undefined) {
          assert.ok(rowBytes(o, row).equals(rowBytes(cp.tensors.get(name)!, row)), `${name} row ${row} must stay CP's`);
        } else {
          assert.ok(rowBytes(o, row).equals(rowBytes(chat.tensors.get(name)!, src)), `${name} row ${row} must be the chat model's row ${src}`);
          assert.ok(!rowBytes(o, row).equals(rowBytes(base.tensors.get(name)!, src)), `${name} row ${row} must not be the base model's row ${src}`);
        }
      }
    }
  }

  const pairs: [number, number][] = [
    [ids[0]!, ids[0]!],
    [ids[2]!, ids[2]!],
    [520, ids[1]!], // a row only CP has gets a chat row with another id
  ];

  it('fused: CP rows K of embeddings and LM head become the chat model\'s rows V', async () => {
    const r = await apply({ base: trio.base, chats: [trio.chat], skipEmbed: true, specialTokens: pairs });
    assertRows(r.ck, pairs);
    assertCombined(r.ck, [1]);
    assert.deepEqual(chatvecMeta(r.ck).special_tokens, pairs.map(([k, v]) => `${k}:${v}`));
  });

  it('two-step: the rows come from the chat model named in chatvector.json', async () => {
    const v = path.join(dir, 'vec-special');
    await runExtract({ base: trio.base, chat: trio.chat, out: v, skipEmbed: true });
    const r = await apply({ vectors: [v], skipEmbed: true, specialTokens: pairs });
    assertRows(r.ck, pairs);
  });

  it('a row outside either vocabulary is an error, before any output', async () => {
    const o = path.join(dir, 'special-range');
    const rows = PRESETS.tiny.vocab + PRESETS.tiny.cpExtraVocab;
    await rejectsWith(runApply({ target: trio.cp, base: trio.base, chats: [trio.chat], out: o, skipEmbed: true, specialTokens: [[rows, 1]] }), 'InvalidArgument', String(rows), EMBED);
    assertNothingLeft(o);
    await rejectsWith(runApply({ target: trio.cp, base: trio.base, chats: [trio.chat], out: o, skipEmbed: true, specialTokens: [[1, PRESETS.tiny.vocab]] }), 'InvalidArgument', String(PRESETS.tiny.vocab), 'chat');
    assertNothingLeft(o);
  });

  it('the output keeps its dtype when rows are copied into another one (--dtype f32)', async () => {
    const r = await apply({ base: trio.base, chats: [trio.chat], skipEmbed: true, specialTokens: pairs, dtype: 'F32' });
    const o = r.ck.tensors.get(EMBED)!;
    assert.equal(o.dtype, 'F32');
    const cols = o.shape[1]!;
    const chatRow = rowBytes(chat.tensors.get(EMBED)!, ids[2]!);
    const outRow = new DataView(o.bytes.buffer, o.bytes.byteOffset + ids[2]! * cols * 4, cols * 4);
    for (let j = 0; j < cols; j++) {
      assert.equal(outRow.getUint32(j * 4, true), chatRow.readUInt16LE(j * 2) * 65536, `row ${ids[2]} col ${j}`);
    }
    const dtype: OutFloat = 'F32';
    assert.equal(r.ck.tensors.get(LAYER)!.dtype, dtype);
  });
});
