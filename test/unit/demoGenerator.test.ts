// The demo generator: deterministic by seed, and shaped like the chat-vector story it illustrates
// (chat deltas that grow with depth, a cp model with a larger vocabulary, HF folder layout).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateDemoTrio, writeDemoModel } from '../../src/core/demo/generator';
import { ChatVecError } from '../../src/core/errors';

let root: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-demo-'));
  for (const role of ['base', 'chat', 'cp'] as const) {
    writeDemoModel(path.join(root, 'a', role), role, 'tiny', 42);
    writeDemoModel(path.join(root, 'b', role), role, 'tiny', 42);
    writeDemoModel(path.join(root, 'c', role), role, 'tiny', 43);
  }
});
after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const model = (set: string, role: string) => path.join(root, set, role);

/** Every tensor of a single-file model, decoded here from BF16 (the top half of a float32). */
function readBf16Model(dir: string): Map<string, { shape: number[]; values: Float32Array }> {
  const b = fs.readFileSync(path.join(dir, 'model.safetensors'));
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    assert.equal(t.dtype, 'BF16');
    const [s, e] = t.data_offsets;
    const count = (e - s) / 2;
    const bits = new Uint32Array(count);
    for (let i = 0; i < count; i++) bits[i] = b.readUInt16LE(8 + n + s + 2 * i) << 16;
    out.set(name, { shape: t.shape, values: new Float32Array(bits.buffer) });
  }
  return out;
}

function filesOf(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

describe('demo generator', () => {
  it('gives identical bytes for the same seed', () => {
    for (const role of ['base', 'chat', 'cp']) {
      assert.deepEqual(filesOf(model('a', role)), filesOf(model('b', role)));
      for (const f of filesOf(model('a', role))) {
        assert.ok(fs.readFileSync(path.join(model('a', role), f)).equals(fs.readFileSync(path.join(model('b', role), f))), `${role}/${f} differs`);
      }
    }
  });

  it('gives different weights for a different seed', () => {
    for (const role of ['base', 'chat', 'cp']) {
      const a = readBf16Model(model('a', role));
      const c = readBf16Model(model('c', role));
      assert.deepEqual([...a.keys()], [...c.keys()]);
      for (const [name, t] of a) {
        const other = c.get(name)!;
        assert.deepEqual(t.shape, other.shape);
        let same = 0;
        for (let i = 0; i < t.values.length; i++) if (t.values[i] === other.values[i]) same++;
        // norms sit near 1.0 where bf16 is coarse, so many of their values coincide
        assert.ok(same < t.values.length * (t.shape.length === 1 ? 0.9 : 0.1), `${role} ${name}: ${same} of ${t.values.length} equal`);
      }
    }
  });

  it('makes chat − base deltas grow with depth, and cp − base deltas flat', () => {
    const base = readBf16Model(model('a', 'base'));
    const config = JSON.parse(fs.readFileSync(path.join(model('a', 'base'), 'config.json'), 'utf8'));
    const layers: number = config.num_hidden_layers;
    const rmsPerLayer = (other: Map<string, { values: Float32Array }>) => {
      const out: number[] = [];
      for (let i = 0; i < layers; i++) {
        let sum = 0;
        let n = 0;
        for (const [name, t] of base) {
          // weight matrices only: a norm's small delta near 1.0 mostly rounds away in bf16
          if (!name.startsWith(`model.layers.${i}.`) || t.shape.length !== 2) continue;
          const o = other.get(name)!.values;
          for (let j = 0; j < t.values.length; j++) {
            const d = o[j]! - t.values[j]!;
            sum += d * d;
            n++;
          }
        }
        assert.ok(n > 0);
        out.push(Math.sqrt(sum / n));
      }
      return out;
    };
    const chat = rmsPerLayer(readBf16Model(model('a', 'chat')));
    const cp = rmsPerLayer(readBf16Model(model('a', 'cp')));
    for (let i = 1; i < layers; i++) assert.ok(chat[i]! > chat[i - 1]! * 1.1, `chat deltas do not grow at layer ${i}: ${chat.join(', ')}`);
    const growth = chat[layers - 1]! / chat[0]!;
    assert.ok(growth > 2.5 && growth < 5, `last/first layer = ${growth}`);
    assert.ok(Math.max(...cp) / Math.min(...cp) < 1.25, `cp deltas vary with depth: ${cp.join(', ')}`);
    assert.ok(cp.every((x) => x > 0));
  });

  it('gives the cp model a larger vocabulary, and chat its trained special-token rows', () => {
    const vocabOf = (role: string) => {
      const t = readBf16Model(model('a', role));
      const config = JSON.parse(fs.readFileSync(path.join(model('a', role), 'config.json'), 'utf8'));
      const tokenizer = JSON.parse(fs.readFileSync(path.join(model('a', role), 'tokenizer.json'), 'utf8'));
      const rows = t.get('model.embed_tokens.weight')!.shape[0]!;
      assert.equal(t.get('lm_head.weight')!.shape[0], rows);
      assert.equal(config.vocab_size, rows);
      assert.equal(Object.keys(tokenizer.model.vocab).length, rows);
      return rows;
    };
    const [base, chat, cp] = [vocabOf('base'), vocabOf('chat'), vocabOf('cp')];
    assert.equal(base, chat);
    assert.ok(cp > base, `cp ${cp} vs base ${base}`);

    // the chat template's tokens: the chat model's rows are trained, the cp model's are not
    const eot = JSON.parse(fs.readFileSync(path.join(model('a', 'chat'), 'tokenizer.json'), 'utf8')).model.vocab['<|eot|>'] as number;
    assert.equal(typeof eot, 'number');
    const row = (role: string) => {
      const t = readBf16Model(model('a', role)).get('model.embed_tokens.weight')!;
      const h = t.shape[1]!;
      return t.values.subarray(eot * h, (eot + 1) * h);
    };
    const norm = (v: Float32Array) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
    assert.ok(norm(row('chat')) > 100 * norm(row('base')), 'chat trained <|eot|>');
    assert.deepEqual(row('cp'), row('base'), 'cp never saw <|eot|>');
  });

  it('writes Hugging Face folders with config, tokenizer and generation files', () => {
    for (const role of ['base', 'chat', 'cp']) {
      const files = filesOf(model('a', role));
      for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) {
        assert.ok(files.includes(f), `${role} lacks ${f}`);
      }
      assert.ok(!files.some((f) => f.includes('partial')), 'no temporary leftovers');
      for (const f of files.filter((x) => x.endsWith('.json'))) JSON.parse(fs.readFileSync(path.join(model('a', role), f), 'utf8'));
    }
    const tc = (role: string) => JSON.parse(fs.readFileSync(path.join(model('a', role), 'tokenizer_config.json'), 'utf8'));
    const gen = (role: string) => JSON.parse(fs.readFileSync(path.join(model('a', role), 'generation_config.json'), 'utf8'));
    assert.equal(typeof tc('chat').chat_template, 'string');
    assert.equal(tc('base').chat_template, undefined);
    assert.equal(tc('chat').eos_token, '<|eot|>');
    const eot = JSON.parse(fs.readFileSync(path.join(model('a', 'chat'), 'tokenizer.json'), 'utf8')).model.vocab['<|eot|>'];
    assert.ok([gen('chat').eos_token_id].flat().includes(eot));
    assert.ok(![gen('base').eos_token_id].flat().includes(eot));
    const config = JSON.parse(fs.readFileSync(path.join(model('a', 'base'), 'config.json'), 'utf8'));
    assert.deepEqual(config.architectures, ['LlamaForCausalLM']);
    assert.equal(config.torch_dtype, 'bfloat16');
  });

  it('shards the small preset with an index, and reuses a complete trio', () => {
    const trioRoot = path.join(root, 'trio');
    const roles: string[] = [];
    const first = generateDemoTrio(trioRoot, 'tiny', 5, (r) => roles.push(r));
    assert.equal(first.reused, false);
    assert.deepEqual(roles, ['base', 'chat', 'cp']);
    const again = generateDemoTrio(trioRoot, 'tiny', 5, (r) => roles.push(r));
    assert.equal(again.reused, true);
    assert.equal(roles.length, 3, 'nothing regenerated');
    assert.equal(generateDemoTrio(trioRoot, 'tiny', 6).reused, false, 'another seed regenerates');
    assert.throws(() => generateDemoTrio(trioRoot, 'huge' as 'tiny'), (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument');

    const small = path.join(root, 'small');
    writeDemoModel(small, 'chat', 'small', 1);
    const index = JSON.parse(fs.readFileSync(path.join(small, 'model.safetensors.index.json'), 'utf8'));
    const shards = [...new Set(Object.values(index.weight_map as Record<string, string>))].sort();
    assert.ok(shards.length >= 2);
    shards.forEach((s, i) => assert.equal(s, `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`));
    assert.throws(() => writeDemoModel(small, 'chat', 'small', 1), (e: unknown) => e instanceof ChatVecError && e.code === 'OutputExists');
  });
});
