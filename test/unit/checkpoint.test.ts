// Checkpoint folders and files built in temporary folders: layouts that open, layouts that are
// refused (with the index file named), and layer grouping by name templates.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openCheckpoint, summarize } from '../../src/core/checkpoint/checkpoint';
import { classifyTensors, groupTensors, type TensorGroup } from '../../src/core/checkpoint/layers';
import { ChatVecError } from '../../src/core/errors';
import { DTYPE_BITS, type Dtype } from '../../src/core/safetensors/dtype';
import { createPlannedFile, planSafetensorsFile } from '../../src/core/safetensors/writer';

let root: string;
let counter = 0;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-ckpt-'));
});
after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

function folder(): string {
  const d = path.join(root, `c${counter++}`);
  fs.mkdirSync(d);
  return d;
}

type T = [name: string, dtype: Dtype, shape: number[]];

/** Writes a safetensors file whose every byte is its tensor's index + 1 (so data is checkable). */
function writeST(p: string, tensors: T[]): void {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  const plan = planSafetensorsFile(path.basename(p), tensors.map(([name, dtype, shape]) => ({ name, dtype, shape })));
  const f = createPlannedFile(p, plan);
  plan.tensors.forEach((t, i) => f.writeAtSync(new Uint8Array(t.byteLength).fill(i + 1), t.position));
  f.syncAndClose();
}

function writeIndex(d: string, weightMap: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  const p = path.join(d, 'model.safetensors.index.json');
  fs.writeFileSync(p, JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap, ...extra }));
  return p;
}

/** Two shards of a small llama, with its index. */
function sharded(d: string): { index: string; shard1: string; shard2: string } {
  const shard1 = 'model-00001-of-00002.safetensors';
  const shard2 = 'model-00002-of-00002.safetensors';
  writeST(path.join(d, shard1), [['model.embed_tokens.weight', 'BF16', [8, 4]], ['model.layers.0.self_attn.q_proj.weight', 'BF16', [4, 4]]]);
  writeST(path.join(d, shard2), [['model.layers.1.self_attn.q_proj.weight', 'BF16', [4, 4]], ['model.norm.weight', 'F32', [4]], ['lm_head.weight', 'BF16', [8, 4]]]);
  const index = writeIndex(d, {
    'model.embed_tokens.weight': shard1,
    'model.layers.0.self_attn.q_proj.weight': shard1,
    'model.layers.1.self_attn.q_proj.weight': shard2,
    'model.norm.weight': shard2,
    'lm_head.weight': shard2,
  });
  return { index, shard1, shard2 };
}

function rejects(p: string, code: 'BadCheckpoint' | 'Unsupported', names: string, rule: RegExp): void {
  assert.throws(
    () => openCheckpoint(p),
    (e: unknown) => {
      assert.ok(e instanceof ChatVecError, `not a ChatVecError: ${String(e)}`);
      assert.equal(e.code, code, e.message);
      assert.ok(e.message.includes(names), `message does not name ${names}: ${e.message}`);
      assert.match(e.message, rule);
      return true;
    },
  );
}

/** Data offsets and header length read by hand from a file. */
function rawPositions(p: string): Map<string, [number, number]> {
  const b = fs.readFileSync(p);
  const n = Number(b.readBigUInt64LE(0));
  const json = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, { data_offsets: [number, number] }>;
  const out = new Map<string, [number, number]>();
  for (const [k, v] of Object.entries(json)) if (k !== '__metadata__') out.set(k, [8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]]);
  return out;
}

describe('opening checkpoints', () => {
  it('opens a folder with model.safetensors and config.json', () => {
    const d = folder();
    writeST(path.join(d, 'model.safetensors'), [['model.embed_tokens.weight', 'BF16', [8, 4]], ['model.layers.0.mlp.up_proj.weight', 'F16', [6, 4]], ['lm_head.weight', 'F32', [8, 4]]]);
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'], model_type: 'llama' }));
    writeST(path.join(d, 'other.safetensors'), [['stray', 'U8', [1]]]); // ignored next to model.safetensors
    const c = openCheckpoint(d);
    assert.equal(c.kind, 'folder');
    assert.equal(c.path, d);
    assert.equal(c.folder, d);
    assert.equal(c.indexFile, null);
    assert.equal(c.architecture, 'LlamaForCausalLM');
    assert.equal(c.family, 'llama');
    assert.deepEqual(c.shards.map((s) => s.fileName), ['model.safetensors']);
    assert.deepEqual(c.tensors.map((t) => t.name), ['model.embed_tokens.weight', 'model.layers.0.mlp.up_proj.weight', 'lm_head.weight']);
    const raw = rawPositions(path.join(d, 'model.safetensors'));
    for (const t of c.tensors) {
      assert.equal(t.file, path.join(d, 'model.safetensors'));
      assert.deepEqual([t.position, t.position + t.byteLength], raw.get(t.name));
      assert.equal(c.byName.get(t.name), t);
    }
    assert.deepEqual(c.byName.get('model.layers.0.mlp.up_proj.weight')!.shape, [6, 4]);
    assert.equal(c.byName.get('model.layers.0.mlp.up_proj.weight')!.dtype, 'F16');
  });

  it('falls back to model_type for the architecture, and null without config.json', () => {
    const d = folder();
    writeST(path.join(d, 'model.safetensors'), [['a', 'U8', [1]]]);
    assert.equal(openCheckpoint(d).architecture, null);
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ model_type: 'mistral' }));
    assert.equal(openCheckpoint(d).architecture, 'mistral');
    fs.writeFileSync(path.join(d, 'config.json'), '{not json');
    rejects(d, 'BadCheckpoint', path.join(d, 'config.json'), /not valid JSON/);
  });

  it('opens a sharded folder through its index, in shard and offset order', () => {
    const d = folder();
    const { index, shard1, shard2 } = sharded(d);
    const c = openCheckpoint(d);
    assert.equal(c.indexFile, index);
    assert.deepEqual(c.shards.map((s) => s.fileName), [shard1, shard2]);
    assert.deepEqual(c.shards.map((s) => s.tensorCount), [2, 3]);
    assert.deepEqual(c.tensors.map((t) => [t.name, t.shard]), [
      ['model.embed_tokens.weight', 0],
      ['model.layers.0.self_attn.q_proj.weight', 0],
      ['model.layers.1.self_attn.q_proj.weight', 1],
      ['model.norm.weight', 1],
      ['lm_head.weight', 1],
    ]);
    for (const [i, s] of [shard1, shard2].entries()) {
      const raw = rawPositions(path.join(d, s));
      for (const t of c.tensors.filter((x) => x.shard === i)) {
        assert.equal(t.file, path.join(d, s));
        assert.deepEqual([t.position, t.position + t.byteLength], raw.get(t.name));
      }
      assert.equal(c.shards[i]!.size, fs.statSync(path.join(d, s)).size);
    }
  });

  it('ignores a wrong or missing total_size in the index', () => {
    const d = folder();
    const { shard1, shard2 } = sharded(d);
    const wm = JSON.parse(fs.readFileSync(path.join(d, 'model.safetensors.index.json'), 'utf8')).weight_map;
    writeIndex(d, wm, { metadata: { total_size: 123456789 } });
    assert.equal(openCheckpoint(d).tensors.length, 5);
    writeIndex(d, wm, { metadata: { total_size: 'many' } });
    assert.equal(openCheckpoint(d).tensors.length, 5);
    fs.writeFileSync(path.join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: wm }));
    assert.deepEqual(openCheckpoint(d).shards.map((s) => s.fileName), [shard1, shard2]);
  });

  it('rejects an index that lists a missing shard', () => {
    const d = folder();
    const { index, shard2 } = sharded(d);
    fs.rmSync(path.join(d, shard2));
    rejects(d, 'BadCheckpoint', index, /shard "model-00002-of-00002.safetensors" is listed but .* does not exist/);
  });

  it('rejects an index that maps a tensor to a shard that lacks it', () => {
    const d = folder();
    const { index, shard1, shard2 } = sharded(d);
    const wm = JSON.parse(fs.readFileSync(index, 'utf8')).weight_map;
    writeIndex(d, { ...wm, 'model.norm.weight': shard1 });
    rejects(d, 'BadCheckpoint', index, /tensor "model.norm.weight" is mapped to model-00001-of-00002.safetensors but stored in model-00002-of-00002.safetensors/);
    writeIndex(d, { ...wm, 'model.layers.7.ghost.weight': shard2 });
    rejects(d, 'BadCheckpoint', index, /tensor "model.layers.7.ghost.weight" is mapped to model-00002-of-00002.safetensors, but that shard has no such tensor/);
  });

  it('rejects a shard tensor that is missing from weight_map', () => {
    const d = folder();
    const { index } = sharded(d);
    const wm = JSON.parse(fs.readFileSync(index, 'utf8')).weight_map;
    delete wm['model.norm.weight'];
    writeIndex(d, wm);
    rejects(d, 'BadCheckpoint', index, /tensor "model.norm.weight" in model-00002-of-00002.safetensors is missing from weight_map/);
  });

  it('rejects a tensor stored in two shards', () => {
    const d = folder();
    writeST(path.join(d, 'a.safetensors'), [['w', 'U8', [2]], ['x', 'U8', [1]]]);
    writeST(path.join(d, 'b.safetensors'), [['y', 'U8', [1]], ['w', 'U8', [2]]]);
    rejects(d, 'BadCheckpoint', d, /tensor "w" is stored twice \(a.safetensors and b.safetensors\)/);
    // with an index that names both shards, the index cannot agree with both copies
    const index = writeIndex(d, { w: 'a.safetensors', x: 'a.safetensors', y: 'b.safetensors' });
    rejects(d, 'BadCheckpoint', index, /"w"/);
  });

  it('opens several shards without an index', () => {
    const d = folder();
    writeST(path.join(d, 'model-00002-of-00002.safetensors'), [['b', 'U8', [1]]]);
    writeST(path.join(d, 'model-00001-of-00002.safetensors'), [['a', 'U8', [1]]]);
    const c = openCheckpoint(d);
    assert.deepEqual(c.tensors.map((t) => t.name), ['a', 'b']);
    assert.equal(c.indexFile, null);
  });

  it('rejects shard names that leave the folder, naming the index', () => {
    const outside = folder();
    writeST(path.join(outside, 'evil.safetensors'), [['a', 'U8', [1]]]);
    const d = folder();
    writeST(path.join(d, 'model.safetensors'), [['a', 'U8', [1]]]);
    const rel = path.relative(d, path.join(outside, 'evil.safetensors'));
    for (const shard of [rel, `sub/../${rel}`, `..${path.sep}x.safetensors`, '../x.safetensors', '..\\x.safetensors', 'sub\\..\\..\\x.safetensors', path.join(outside, 'evil.safetensors'), 'C:\\evil.safetensors', '/etc/passwd']) {
      const index = writeIndex(d, { a: shard });
      rejects(d, 'BadCheckpoint', index, /points outside the checkpoint folder/);
    }
  });

  it('rejects a shard that is a link leading outside the folder, and accepts links that stay inside', () => {
    const outside = folder();
    writeST(path.join(outside, 'evil.safetensors'), [['a', 'U8', [1]]]);
    const d = folder();
    fs.symlinkSync(path.join(outside, 'evil.safetensors'), path.join(d, 'model-00001-of-00001.safetensors'));
    const index = writeIndex(d, { a: 'model-00001-of-00001.safetensors' });
    rejects(d, 'BadCheckpoint', index, /shard "model-00001-of-00001.safetensors" is a link that leads outside the checkpoint folder/);
    // a linked sub-folder
    fs.symlinkSync(outside, path.join(d, 'sub'));
    writeIndex(d, { a: 'sub/evil.safetensors' });
    rejects(d, 'BadCheckpoint', index, /is a link that leads outside/);
    // a link whose target stays inside is fine, as is a real sub-folder
    const ok = folder();
    writeST(path.join(ok, 'store', 'real.safetensors'), [['a', 'U8', [1]]]);
    fs.symlinkSync(path.join(ok, 'store', 'real.safetensors'), path.join(ok, 'model-00001-of-00001.safetensors'));
    writeIndex(ok, { a: 'model-00001-of-00001.safetensors' });
    assert.equal(openCheckpoint(ok).tensors[0]!.name, 'a');
    writeIndex(ok, { a: 'store/real.safetensors' });
    assert.equal(openCheckpoint(ok).shards[0]!.fileName, 'store/real.safetensors');
  });

  it('accepts Hugging Face hub-cache links into the repository\'s blobs, and nothing else outside', () => {
    const repo = folder();
    const snap = path.join(repo, 'snapshots', 'abc123');
    fs.mkdirSync(snap, { recursive: true });
    writeST(path.join(repo, 'blobs', 'h1'), [['a', 'U8', [1]]]);
    fs.symlinkSync('../../blobs/h1', path.join(snap, 'model-00001-of-00001.safetensors'));
    writeIndex(snap, { a: 'model-00001-of-00001.safetensors' });
    assert.equal(openCheckpoint(snap).tensors[0]!.name, 'a');
    // the same layout without the `snapshots` parent is an ordinary link leaving the folder
    const plain = path.join(repo, 'other', 'abc123');
    fs.mkdirSync(plain, { recursive: true });
    fs.symlinkSync('../../blobs/h1', path.join(plain, 'model-00001-of-00001.safetensors'));
    const index = writeIndex(plain, { a: 'model-00001-of-00001.safetensors' });
    rejects(plain, 'BadCheckpoint', index, /is a link that leads outside/);
  });

  it('rejects malformed indexes, naming them', () => {
    const d = folder();
    writeST(path.join(d, 'model.safetensors'), [['a', 'U8', [1]]]);
    const p = path.join(d, 'model.safetensors.index.json');
    const cases: [string, RegExp][] = [
      ['{', /not valid JSON/],
      ['[]', /expected a JSON object/],
      ['{}', /"weight_map" must be an object/],
      ['{"weight_map":["model.safetensors"]}', /"weight_map" must be an object/],
      ['{"weight_map":{}}', /weight_map is empty/],
      ['{"weight_map":{"a":7}}', /weight_map\["a"\] is not a file name/],
      ['{"weight_map":{"a":""}}', /is not a file name/],
      ['{"weight_map":{"a":"."}}', /is not a regular file/],
    ];
    for (const [text, rule] of cases) {
      fs.writeFileSync(p, text);
      rejects(d, 'BadCheckpoint', p, rule);
    }
  });

  it('names the shard whose header is broken', () => {
    const d = folder();
    const { shard2 } = sharded(d);
    const p = path.join(d, shard2);
    fs.appendFileSync(p, Buffer.from([0]));
    rejects(d, 'BadCheckpoint', p, /trailing bytes/);
  });

  it('refuses pickled checkpoints with a message to convert them', () => {
    const d = folder();
    fs.writeFileSync(path.join(d, 'pytorch_model.bin'), 'PK\x03\x04 not really');
    fs.writeFileSync(path.join(d, 'config.json'), '{}');
    rejects(d, 'Unsupported', path.join(d, 'pytorch_model.bin'), /convert the checkpoint to safetensors/);
    rejects(path.join(d, 'pytorch_model.bin'), 'Unsupported', path.join(d, 'pytorch_model.bin'), /never loaded.*convert.*safetensors/);
    fs.writeFileSync(path.join(d, 'consolidated.00.pth'), 'x');
    rejects(path.join(d, 'consolidated.00.pth'), 'Unsupported', 'consolidated.00.pth', /safetensors/);
    const pt = path.join(folder(), 'model.pt');
    fs.writeFileSync(pt, 'x');
    rejects(pt, 'Unsupported', pt, /convert/);
  });

  it('opens a single .safetensors file', () => {
    const d = folder();
    const p = path.join(d, 'weights.safetensors');
    writeST(p, [['transformer.h.0.attn.c_attn.weight', 'F32', [4, 12]], ['transformer.wte.weight', 'F32', [16, 4]]]);
    const c = openCheckpoint(p);
    assert.equal(c.kind, 'file');
    assert.equal(c.path, p);
    assert.equal(c.folder, d);
    assert.equal(c.config, null);
    assert.equal(c.family, 'gpt2');
    assert.deepEqual(c.shards.map((s) => s.fileName), ['weights.safetensors']);
    const raw = rawPositions(p);
    for (const t of c.tensors) assert.deepEqual([t.position, t.position + t.byteLength], raw.get(t.name));
  });

  it('refuses what is not a checkpoint', () => {
    const d = folder();
    rejects(d, 'BadCheckpoint', d, /no .safetensors files/);
    rejects(path.join(d, 'missing'), 'BadCheckpoint', path.join(d, 'missing'), /no such file or folder/);
    fs.writeFileSync(path.join(d, 'notes.txt'), 'x');
    rejects(path.join(d, 'notes.txt'), 'BadCheckpoint', 'notes.txt', /not a .safetensors file or a checkpoint folder/);
  });
});

describe('layer grouping', () => {
  const L = (layer: number, module: TensorGroup['module']): TensorGroup => ({ role: 'layer', layer, module });
  const E: TensorGroup = { role: 'embedding', module: 'embedding', vocab: true };
  const P: TensorGroup = { role: 'embedding', module: 'embedding' }; // position embeddings: rows are not tokens
  const N: TensorGroup = { role: 'final_norm', module: 'norm' };
  const H: TensorGroup = { role: 'lm_head', module: 'lm_head', vocab: true };
  const O: TensorGroup = { role: 'other', module: 'other' };

  const families: Record<string, [string, TensorGroup][]> = {
    llama: [
      ['model.embed_tokens.weight', E],
      ['model.layers.0.self_attn.q_proj.weight', L(0, 'q')],
      ['model.layers.0.self_attn.k_proj.weight', L(0, 'k')],
      ['model.layers.0.self_attn.v_proj.weight', L(0, 'v')],
      ['model.layers.0.self_attn.o_proj.weight', L(0, 'o')],
      ['model.layers.0.mlp.gate_proj.weight', L(0, 'gate')],
      ['model.layers.0.mlp.up_proj.weight', L(0, 'up')],
      ['model.layers.0.mlp.down_proj.weight', L(0, 'down')],
      ['model.layers.0.input_layernorm.weight', L(0, 'norm')],
      ['model.layers.31.post_attention_layernorm.weight', L(31, 'norm')],
      ['model.layers.12.block_sparse_moe.gate.weight', L(12, 'router')],
      ['model.layers.12.block_sparse_moe.experts.3.w1.weight', L(12, 'gate')],
      ['model.norm.weight', N],
      ['lm_head.weight', H],
      ['model.rotary_emb.inv_freq', O],
    ],
    gpt2: [
      ['transformer.wte.weight', E],
      ['transformer.wpe.weight', P],
      ['transformer.h.0.attn.c_attn.weight', L(0, 'qkv')],
      ['transformer.h.0.attn.c_proj.weight', L(0, 'o')],
      ['transformer.h.0.mlp.c_fc.weight', L(0, 'up')],
      ['transformer.h.0.mlp.c_proj.bias', L(0, 'down')],
      ['transformer.h.0.ln_1.weight', L(0, 'norm')],
      ['transformer.h.11.ln_2.bias', L(11, 'norm')],
      ['transformer.ln_f.weight', N],
      ['lm_head.weight', H],
    ],
    gpt_neox: [
      ['gpt_neox.embed_in.weight', E],
      ['gpt_neox.layers.2.attention.query_key_value.weight', L(2, 'qkv')],
      ['gpt_neox.layers.2.attention.dense.weight', L(2, 'o')],
      ['gpt_neox.layers.2.mlp.dense_h_to_4h.weight', L(2, 'up')],
      ['gpt_neox.layers.2.mlp.dense_4h_to_h.weight', L(2, 'down')],
      ['gpt_neox.layers.2.input_layernorm.weight', L(2, 'norm')],
      ['gpt_neox.final_layer_norm.weight', N],
      ['embed_out.weight', H],
    ],
    opt: [
      ['model.decoder.embed_tokens.weight', E],
      ['model.decoder.embed_positions.weight', P],
      ['model.decoder.layers.5.self_attn.q_proj.weight', L(5, 'q')],
      ['model.decoder.layers.5.self_attn.out_proj.weight', L(5, 'o')],
      ['model.decoder.layers.5.fc1.weight', L(5, 'up')],
      ['model.decoder.layers.5.fc2.weight', L(5, 'down')],
      ['model.decoder.layers.5.self_attn_layer_norm.weight', L(5, 'norm')],
      ['model.decoder.layers.5.final_layer_norm.weight', L(5, 'norm')],
      ['model.decoder.final_layer_norm.weight', N],
      ['lm_head.weight', H],
    ],
    mpt: [
      ['transformer.wte.weight', E],
      ['transformer.blocks.0.attn.Wqkv.weight', L(0, 'qkv')],
      ['transformer.blocks.0.attn.out_proj.weight', L(0, 'o')],
      ['transformer.blocks.0.ffn.up_proj.weight', L(0, 'up')],
      ['transformer.blocks.0.ffn.down_proj.weight', L(0, 'down')],
      ['transformer.blocks.7.norm_1.weight', L(7, 'norm')],
      ['transformer.norm_f.weight', N],
    ],
    generic: [
      ['backbone.embeddings.weight', P],
      ['backbone.layers.0.mixer.in_proj.weight', L(0, 'other')],
      ['backbone.layers.3.norm.weight', L(3, 'norm')],
      ['backbone.norm_f.weight', N],
      ['lm_head.weight', H],
      ['encoder.block.1.layer.0.SelfAttention.q.weight', L(1, 'q')],
      ['some_buffer', O],
    ],
  };

  for (const [family, table] of Object.entries(families)) {
    it(`groups ${family} names`, () => {
      const names = table.map(([n]) => n);
      assert.equal(groupTensors(names, null).family, family);
      const groups = classifyTensors(names);
      for (const [name, want] of table) assert.deepEqual(groups.get(name), want, name);
    });
  }

  it('takes the family from the layer names, also on an opened checkpoint', () => {
    const d = folder();
    writeST(path.join(d, 'model.safetensors'), families.gpt_neox!.map(([n]) => [n, 'U8', [1]] as T));
    const c = openCheckpoint(d);
    assert.equal(c.family, 'gpt_neox');
    assert.deepEqual(c.byName.get('embed_out.weight')!.group, H);
    assert.equal(groupTensors([], null).family, 'generic');
    assert.equal(groupTensors(['h.0.attn.c_attn.weight', 'wte.weight'], null).family, 'gpt2');
    assert.deepEqual(classifyTensors(['h.0.attn.c_attn.weight', 'wte.weight', 'ln_f.weight']).get('ln_f.weight'), N);
  });

  it('recognises embedding and LM head names of every family', () => {
    const yes = ['model.embed_tokens.weight', 'lm_head.weight', 'transformer.wte.weight', 'wte.weight', 'gpt_neox.embed_in.weight', 'embed_out.weight', 'transformer.word_embeddings.weight', 'tok_embeddings.weight', 'language_model.lm_head.weight', 'model.decoder.embed_tokens.weight'];
    const no = ['model.layers.0.mlp.up_proj.weight', 'transformer.wpe.weight', 'model.embed_tokens.weight_scale', 'transformer.word_embeddings_layernorm.weight', 'my_lm_head.weight', 'model.norm.weight', 'lm_head.bias.extra', 'model.decoder.embed_positions.weight'];
    const vocab = (n: string) => classifyTensors([n]).get(n)!.vocab === true;
    for (const n of yes) assert.equal(vocab(n), true, n);
    for (const n of no) assert.equal(vocab(n), false, n);
  });
});

describe('summarize', () => {
  it('counts parameters, bytes, dtypes, layers and vocabulary', () => {
    const d = folder();
    const tensors: T[] = [
      ['model.embed_tokens.weight', 'BF16', [10, 4]],
      ...[0, 1, 2].flatMap((i): T[] => [[`model.layers.${i}.self_attn.q_proj.weight`, 'BF16', [4, 4]], [`model.layers.${i}.input_layernorm.weight`, 'F32', [4]]]),
      ['model.norm.weight', 'F32', [4]],
      ['lm_head.weight', 'BF16', [10, 4]],
    ];
    writeST(path.join(d, 'model-00001-of-00002.safetensors'), tensors.slice(0, 4));
    writeST(path.join(d, 'model-00002-of-00002.safetensors'), tensors.slice(4));
    const s = summarize(openCheckpoint(d));
    const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
    const params = tensors.reduce((a, [, , shape]) => a + count(shape), 0);
    assert.equal(params, 40 + 3 * 20 + 4 + 40);
    assert.equal(s.parameterCount, params);
    assert.equal(s.tensorBytes, tensors.reduce((a, [, dt, shape]) => a + (count(shape) * DTYPE_BITS[dt]) / 8, 0));
    assert.deepEqual(s.dtypes, { BF16: 40 + 48 + 40, F32: 12 + 4 });
    assert.equal(s.layerCount, 3);
    assert.equal(s.vocabSize, 10);
    assert.equal(s.fileBytes, fs.statSync(path.join(d, 'model-00001-of-00002.safetensors')).size + fs.statSync(path.join(d, 'model-00002-of-00002.safetensors')).size);
  });

  it('has no layers and no vocabulary for a checkpoint without them', () => {
    const d = folder();
    writeST(path.join(d, 'model.safetensors'), [['a', 'U8', [3]]]);
    const s = summarize(openCheckpoint(d));
    assert.equal(s.layerCount, 0);
    assert.equal(s.vocabSize, null);
    assert.equal(s.parameterCount, 3);
  });
});
