// The output folder of a fused apply on the demo's `small` trio is a valid Hugging Face checkpoint
// folder: HF shard names and index, tensors in CP's order, config with the output's torch_dtype,
// CP's tokenizer with the chat model's template and eos token, generation_config eos ids from the
// chat model when CP's vocabulary agrees (else CP's, with a warning), a model card and
// __metadata__ recording the operation. Non-float tensors are copied from CP when base and chat
// agree and are an error otherwise.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openCheckpoint } from '../../src/core/checkpoint/checkpoint';
import { generateDemoTrio } from '../../src/core/demo/generator';
import { PRESETS } from '../../src/core/demo/presets';
import { specialTokenIds } from '../../src/core/demo/tokenizer';
import { runApply } from '../../src/core/engine/apply';
import { runExtract } from '../../src/core/engine/extract';
import {
  type StCheckpoint,
  type TensorData,
  REPO_ROOT,
  assertNothingLeft,
  assertSameFloats,
  copyFolder,
  expectedBytes,
  readCheckpoint,
  readSafetensorsFile,
  rejectsWith,
  rng,
  roundTo,
  tempDir,
  writeModel,
} from './support/engineFixtures';

let dir: string;
let trio: { base: string; chat: string; cp: string };
let cp: StCheckpoint;
const json = (p: string) => JSON.parse(fs.readFileSync(p, 'utf8')) as Record<string, unknown>;
const version = (json(path.join(REPO_ROOT, 'package.json')).version as string) ?? '';

before(() => {
  dir = tempDir('output');
  trio = generateDemoTrio(path.join(dir, 'demo'), 'small', 3);
  cp = readCheckpoint(trio.cp);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('output folder of a fused apply (small preset)', () => {
  let sharded: string;
  let warnings: readonly string[];
  const ratios = [0.75];

  before(async () => {
    sharded = path.join(dir, 'merged-sharded');
    const r = await runApply({ target: trio.cp, base: trio.base, chats: [trio.chat], ratios, out: sharded, skipEmbed: true, maxShardBytes: 3e6 });
    warnings = r.warnings;
  });

  it('is sharded with HF names and an index when --max-shard-size forces several shards', () => {
    const names = fs.readdirSync(sharded).filter((n) => n.endsWith('.safetensors')).sort();
    assert.ok(names.length >= 3, `expected several shards, got ${names.join(', ')}`);
    names.forEach((n, i) => assert.equal(n, `model-${String(i + 1).padStart(5, '0')}-of-${String(names.length).padStart(5, '0')}.safetensors`));
    const out = readCheckpoint(sharded);
    assert.deepEqual(out.files, names);
    const total = [...out.tensors.values()].reduce((a, t) => a + t.bytes.length, 0);
    assert.equal(out.index!.metadata!.total_size, total);
    for (const n of names) {
      const tensorBytes = readSafetensorsFile(path.join(sharded, n)).tensors.reduce((a, t) => a + t.bytes.length, 0);
      assert.ok(tensorBytes <= 3e6 || readSafetensorsFile(path.join(sharded, n)).tensors.length === 1, `${n} holds ${tensorBytes} bytes`);
    }
    assert.ok(!fs.readdirSync(path.dirname(sharded)).some((n) => n.includes('.partial-')), 'no temporary folder left');
    openCheckpoint(sharded); // and the engine's own validation accepts it
  });

  it('holds CP\'s tensors in CP\'s order with the combined values', () => {
    const out = readCheckpoint(sharded);
    assert.deepEqual(out.order, cp.order);
    const base = readCheckpoint(trio.base);
    const chat = readCheckpoint(trio.chat);
    for (const name of cp.order) {
      const o = out.tensors.get(name)!;
      const c = cp.tensors.get(name)!;
      assert.equal(o.dtype, c.dtype);
      assert.deepEqual(o.shape, c.shape);
      if (name.includes('embed_tokens') || name.startsWith('lm_head')) assert.ok(o.bytes.equals(c.bytes), name);
      else assertSameFloats(o.bytes, expectedBytes(c, [{ ratio: 0.75, a: chat.tensors.get(name)!, b: base.tensors.get(name)! }], 'BF16'), 'BF16', name);
    }
  });

  it('has CP\'s config with torch_dtype of the output', () => {
    const cfg = json(path.join(sharded, 'config.json'));
    const cpCfg = json(path.join(trio.cp, 'config.json'));
    assert.equal(cfg.torch_dtype, 'bfloat16');
    assert.deepEqual({ ...cfg, torch_dtype: null }, { ...cpCfg, torch_dtype: null });
    assert.equal(cfg.vocab_size, PRESETS.small.vocab + PRESETS.small.cpExtraVocab);
  });

  it('has CP\'s tokenizer with the chat model\'s chat template and eos token', () => {
    assert.ok(fs.readFileSync(path.join(sharded, 'tokenizer.json')).equals(fs.readFileSync(path.join(trio.cp, 'tokenizer.json'))));
    const tc = json(path.join(sharded, 'tokenizer_config.json'));
    const cpTc = json(path.join(trio.cp, 'tokenizer_config.json'));
    const chatTc = json(path.join(trio.chat, 'tokenizer_config.json'));
    assert.ok(typeof chatTc.chat_template === 'string' && cpTc.chat_template === undefined, 'fixture: only the chat model has a template');
    assert.equal(tc.chat_template, chatTc.chat_template);
    assert.equal(tc.eos_token, chatTc.eos_token);
    assert.notEqual(cpTc.eos_token, chatTc.eos_token);
    assert.deepEqual({ ...tc, chat_template: null, eos_token: null }, { ...cpTc, chat_template: null, eos_token: null });
    assert.equal(json(path.join(sharded, 'special_tokens_map.json')).eos_token, chatTc.eos_token);
  });

  it('takes generation_config eos_token_id from the chat model when CP has the same ids', () => {
    const gen = json(path.join(sharded, 'generation_config.json'));
    const chatGen = json(path.join(trio.chat, 'generation_config.json'));
    assert.deepEqual(gen.eos_token_id, chatGen.eos_token_id);
    assert.deepEqual(gen.eos_token_id, [2, specialTokenIds(PRESETS.small.vocab)[2]]);
    assert.deepEqual(warnings, []);
  });

  it('has a model card and __metadata__ recording the operation', () => {
    const card = fs.readFileSync(path.join(sharded, 'README.md'), 'utf8');
    for (const s of [trio.cp, trio.base, trio.chat, 'ratio 0.75', '--skip-embed']) assert.ok(card.includes(s), `model card lacks ${s}:\n${card}`);
    const out = readCheckpoint(sharded);
    for (const meta of out.metadata) {
      assert.equal(meta.format, 'pt');
      const m = JSON.parse(meta.chatvec!) as Record<string, unknown>;
      assert.match(String(m.operation), /apply/);
      assert.match(String(m.operation), /fused/);
      assert.deepEqual(m.ratios, ratios);
      assert.equal(m.skip_embed, true);
      assert.equal(m.target, trio.cp);
      assert.equal(m.base, trio.base);
      assert.deepEqual(m.chats, [trio.chat]);
      assert.ok(String(m.tool).startsWith('chatvec '), String(m.tool));
      assert.ok(String(m.tool).endsWith(' dev') || String(m.tool).endsWith(version), String(m.tool));
    }
  });

  it('is one model.safetensors without an index when one shard suffices; --dtype f32 sets torch_dtype', async () => {
    const single = path.join(dir, 'merged-single');
    await runApply({ target: trio.cp, base: trio.base, chats: [trio.chat], out: single, skipEmbed: true, dtype: 'F32' });
    const files = fs.readdirSync(single).sort();
    assert.ok(files.includes('model.safetensors'));
    assert.ok(!files.some((f) => f.endsWith('.index.json') || /^model-\d+/.test(f)), files.join(', '));
    assert.equal(json(path.join(single, 'config.json')).torch_dtype, 'float32');
    const out = readCheckpoint(single);
    assert.deepEqual(out.order, cp.order);
    for (const t of out.tensors.values()) assert.equal(t.dtype, 'F32', t.name);
    assert.equal(JSON.parse(out.metadata[0]!.chatvec!).dtype, 'F32');
  });

  it('keeps CP\'s eos_token_id and warns when the chat model\'s eos token has another id in CP', async () => {
    // A copy of CP whose tokenizer gives <|eot|> another id (and that id's word the old one).
    const eot = specialTokenIds(PRESETS.small.vocab)[2]!;
    const other = PRESETS.small.vocab + 100;
    const cp2 = copyFolder(trio.cp, path.join(dir, 'cp-other-eot'));
    const tj = json(path.join(cp2, 'tokenizer.json')) as { added_tokens: { id: number; content: string }[]; model: { vocab: Record<string, number> } };
    const word = Object.keys(tj.model.vocab).find((t) => tj.model.vocab[t] === other)!;
    tj.model.vocab['<|eot|>'] = other;
    tj.model.vocab[word] = eot;
    for (const a of tj.added_tokens) if (a.content === '<|eot|>') a.id = other;
    fs.writeFileSync(path.join(cp2, 'tokenizer.json'), JSON.stringify(tj));
    const tc = json(path.join(cp2, 'tokenizer_config.json')) as { added_tokens_decoder: Record<string, { content: string }> };
    tc.added_tokens_decoder[String(other)] = tc.added_tokens_decoder[String(eot)]!;
    delete tc.added_tokens_decoder[String(eot)];
    fs.writeFileSync(path.join(cp2, 'tokenizer_config.json'), JSON.stringify(tc));

    const out = path.join(dir, 'merged-other-eot');
    const r = await runApply({ target: cp2, base: trio.base, chats: [trio.chat], out, skipEmbed: true });
    const gen = json(path.join(out, 'generation_config.json'));
    assert.deepEqual(gen.eos_token_id, json(path.join(cp2, 'generation_config.json')).eos_token_id);
    assert.equal(r.warnings.length, 1, r.warnings.join('\n'));
    assert.match(r.warnings[0]!, /eos_token_id/);
    assert.match(r.warnings[0]!, /<\|eot\|>/);
    assert.match(r.warnings[0]!, new RegExp(`id ${other}`));
    assert.ok(fs.readFileSync(path.join(out, 'README.md'), 'utf8').includes(r.warnings[0]!), 'the model card lists the warning');
  });
});

describe('chat templates in their other places', () => {
  // transformers reads chat_template.jinja in preference to tokenizer_config.json's chat_template:
  // whichever file holds it, the output's effective template must be the chat model's.
  const effectiveTemplate = (folder: string): unknown => {
    const jinja = path.join(folder, 'chat_template.jinja');
    if (fs.existsSync(jinja)) return fs.readFileSync(jinja, 'utf8');
    return json(path.join(folder, 'tokenizer_config.json')).chat_template;
  };
  let tiny: { base: string; chat: string; cp: string };
  before(() => {
    tiny = generateDemoTrio(path.join(dir, 'demo-tiny'), 'tiny', 3);
  });

  it('a CP with its own chat_template.jinja gets the chat model\'s template (from tokenizer_config.json)', async () => {
    const cp2 = copyFolder(tiny.cp, path.join(dir, 'cp-with-jinja'));
    fs.writeFileSync(path.join(cp2, 'chat_template.jinja'), '{{ cp template }}');
    const out = path.join(dir, 'tmpl-1');
    await runApply({ target: cp2, base: tiny.base, chats: [tiny.chat], out, skipEmbed: true });
    assert.equal(effectiveTemplate(out), json(path.join(tiny.chat, 'tokenizer_config.json')).chat_template);
  });

  it('a chat model with chat_template.jinja gives its template, also where CP\'s tokenizer_config had one', async () => {
    const chat2 = copyFolder(tiny.chat, path.join(dir, 'chat-with-jinja'));
    const tc = json(path.join(chat2, 'tokenizer_config.json'));
    delete tc.chat_template;
    fs.writeFileSync(path.join(chat2, 'tokenizer_config.json'), JSON.stringify(tc));
    fs.writeFileSync(path.join(chat2, 'chat_template.jinja'), '{{ chat template }}');
    const cp2 = copyFolder(tiny.cp, path.join(dir, 'cp-with-template'));
    const cpTc = json(path.join(cp2, 'tokenizer_config.json'));
    cpTc.chat_template = '{{ cp template }}';
    fs.writeFileSync(path.join(cp2, 'tokenizer_config.json'), JSON.stringify(cpTc));
    const out = path.join(dir, 'tmpl-2');
    const r = await runApply({ target: cp2, base: tiny.base, chats: [chat2], out, skipEmbed: true });
    assert.equal(effectiveTemplate(out), '{{ chat template }}');
    const outTc = json(path.join(out, 'tokenizer_config.json'));
    assert.ok(outTc.chat_template === undefined || outTc.chat_template === '{{ chat template }}', `tokenizer_config.json still holds ${String(outTc.chat_template)}`);
    assert.deepEqual(r.warnings, []);
  });
});

describe('non-float tensors', () => {
  const rand = rng(99);
  const floats = (n: number) => Array.from({ length: n }, () => roundTo(rand() - 0.5, 'BF16'));
  const i64 = (vals: number[]) => new Uint8Array(BigInt64Array.from(vals.map(BigInt)).buffer);
  const w = floats(64);
  const model = (name: string, ids: number[], delta: number) =>
    writeModel(path.join(dir, name), [
      { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'BF16', shape: [8, 8], values: w.map((x) => roundTo(x + delta, 'BF16')) },
      { name: 'model.position_ids', dtype: 'I64', shape: [1, 6], bytes: i64(ids) },
      { name: 'model.norm.weight', dtype: 'BF16', shape: [8], values: floats(8) },
    ] satisfies TensorData[]);

  it('are copied from CP when base and chat agree', async () => {
    const base = model('nf-base', [0, 1, 2, 3, 4, 5], 0);
    const chat = model('nf-chat', [0, 1, 2, 3, 4, 5], 0.25);
    const target = model('nf-cp', [5, 4, 3, 2, 1, 0], 0.5);
    const out = path.join(dir, 'nf-out');
    await runApply({ target, base, chats: [chat], out });
    const o = readCheckpoint(out);
    assert.equal(o.tensors.get('model.position_ids')!.dtype, 'I64');
    assert.ok(o.tensors.get('model.position_ids')!.bytes.equals(i64([5, 4, 3, 2, 1, 0])));
    assert.deepEqual(o.order, readCheckpoint(target).order);
    // The same through extract → apply.
    const v = path.join(dir, 'nf-vec');
    await runExtract({ base, chat, out: v });
    const out2 = path.join(dir, 'nf-out2');
    await runApply({ target, vectors: [v], out: out2 });
    const o2 = readCheckpoint(out2);
    for (const name of o.order) assert.ok(o.tensors.get(name)!.bytes.equals(o2.tensors.get(name)!.bytes), name);
  });

  it('that differ between base and chat are an error naming the tensor, with nothing left behind', async () => {
    const base = model('nd-base', [0, 1, 2, 3, 4, 5], 0);
    const chat = model('nd-chat', [0, 1, 2, 3, 4, 9], 0.25);
    const target = model('nd-cp', [0, 1, 2, 3, 4, 5], 0.5);
    const out = path.join(dir, 'nd-out');
    await rejectsWith(runApply({ target, base, chats: [chat], out }), 'ShapeMismatch', 'model.position_ids');
    assertNothingLeft(out);
    // extract sees base and chat together: it must refuse too (else extract → apply would copy
    // CP's tensor where the fused path stops).
    const v = path.join(dir, 'nd-vec');
    await rejectsWith(runExtract({ base, chat, out: v }), 'ShapeMismatch', 'model.position_ids');
    assertNothingLeft(v);
  });

  it('larger than a copy piece: copied whole, and a difference in the last byte is found', async () => {
    const big = new Uint8Array(5_000_003).map((_, i) => (i * 7) & 0xff);
    const other = new Uint8Array(big);
    other[other.length - 1]! ^= 1;
    const cpBytes = new Uint8Array(big).reverse();
    const m = (name: string, bytes: Uint8Array) =>
      writeModel(path.join(dir, name), [
        { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'BF16', shape: [8, 8], values: w },
        { name: 'model.layers.0.mlp.up_proj.qweight', dtype: 'U8', shape: [bytes.length], bytes },
      ]);
    const base = m('big-base', big);
    const target = m('big-cp', cpBytes);
    const out = path.join(dir, 'big-out');
    await runApply({ target, base, chats: [m('big-chat', big)], out });
    assert.ok(readCheckpoint(out).tensors.get('model.layers.0.mlp.up_proj.qweight')!.bytes.equals(cpBytes));
    const out2 = path.join(dir, 'big-out2');
    await rejectsWith(runApply({ target, base, chats: [m('big-chat2', other)], out: out2 }), 'ShapeMismatch', 'model.layers.0.mlp.up_proj.qweight');
    assertNothingLeft(out2);
  });

  it('stored with other dtypes in base and chat are an error before any work', async () => {
    const i32 = (vals: number[]) => new Uint8Array(Int32Array.from(vals).buffer);
    const base = writeModel(path.join(dir, 'dt-base'), [
      { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'BF16', shape: [8, 8], values: w },
      { name: 'model.position_ids', dtype: 'I32', shape: [1, 6], bytes: i32([0, 1, 2, 3, 4, 5]) },
      { name: 'model.norm.weight', dtype: 'BF16', shape: [8], values: floats(8) },
    ]);
    const chat = model('dt-chat', [0, 1, 2, 3, 4, 5], 0.25);
    const target = model('dt-cp', [0, 1, 2, 3, 4, 5], 0.5);
    const out = path.join(dir, 'dt-out');
    let events = 0;
    await rejectsWith(runApply({ target, base, chats: [chat], out }, { onProgress: () => events++ }), 'ShapeMismatch', 'model.position_ids', 'I32', base);
    assert.equal(events, 0);
    assertNothingLeft(out);
  });
});
