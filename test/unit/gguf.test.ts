// GGUF export (chatvec gguf): tiny LLaMA (GQA) and Qwen2 checkpoints with a byte-level BPE
// tokenizer, exported with each --type and read back twice: with @huggingface/gguf (metadata,
// shapes, types) and with the independent reader of support/ggufReference.ts (tensor bytes).
// Values are compared with float64 references computed here; the rope permutation is checked
// against a permutation written here and by the attention scores it must preserve.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gguf } from '@huggingface/gguf';
import { runGgufExport } from '../../src/core/gguf/export';
import type { ProgressEvent } from '../../src/core/jobs/types';
import { CLI, ensureCli } from './support/builtCli';
import { assertNothingLeft, rejectsWith, roundToBits, tempDir, valueOf } from './support/engineFixtures';
import { type FixtureTensor, rng, writeModel } from './support/recipeFixtures';
import { CHAT_TEMPLATE, LLAMA3_REGEX, QWEN2_REGEX, q8Scale, readGgufFile, tensorValues, writeByteLevelTokenizer, writeSentencePieceTokenizer } from './support/ggufReference';

const HIDDEN = 64;
const HEADS = 4;
const KV_HEADS = 2;
const HEAD_DIM = HIDDEN / HEADS;
const FFN = 72; // not a multiple of 32: ffn_down falls back to F16 under q8_0, as the converter does
const VOCAB = 41; // the tokenizer assigns 34 ids: 34–40 become [PADi]; 41 rows of Q8_0 are 2788 bytes, not whole 32s
const LAYERS = 2;

let dir: string;

function llamaTensors(seed: number, opts: { biases?: boolean; head?: boolean } = {}): FixtureTensor[] {
  const r = rng(seed);
  const t = (name: string, shape: number[]): FixtureTensor => ({ name, shape, values: Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 2 * r() - 1) });
  const out = [t('model.embed_tokens.weight', [VOCAB, HIDDEN])];
  for (let l = 0; l < LAYERS; l++) {
    const p = `model.layers.${l}.`;
    out.push(t(`${p}input_layernorm.weight`, [HIDDEN]));
    out.push(t(`${p}self_attn.q_proj.weight`, [HEADS * HEAD_DIM, HIDDEN]));
    out.push(t(`${p}self_attn.k_proj.weight`, [KV_HEADS * HEAD_DIM, HIDDEN]));
    out.push(t(`${p}self_attn.v_proj.weight`, [KV_HEADS * HEAD_DIM, HIDDEN]));
    if (opts.biases) {
      out.push(t(`${p}self_attn.q_proj.bias`, [HEADS * HEAD_DIM]));
      out.push(t(`${p}self_attn.k_proj.bias`, [KV_HEADS * HEAD_DIM]));
      out.push(t(`${p}self_attn.v_proj.bias`, [KV_HEADS * HEAD_DIM]));
    }
    out.push(t(`${p}self_attn.o_proj.weight`, [HIDDEN, HEADS * HEAD_DIM]));
    out.push(t(`${p}post_attention_layernorm.weight`, [HIDDEN]));
    out.push(t(`${p}mlp.gate_proj.weight`, [FFN, HIDDEN]));
    out.push(t(`${p}mlp.up_proj.weight`, [FFN, HIDDEN]));
    out.push(t(`${p}mlp.down_proj.weight`, [HIDDEN, FFN]));
  }
  out.push(t('model.norm.weight', [HIDDEN]));
  if (opts.head !== false) out.push(t('lm_head.weight', [VOCAB, HIDDEN]));
  return out;
}

const LLAMA_CONFIG = {
  hidden_size: HIDDEN,
  num_attention_heads: HEADS,
  num_key_value_heads: KV_HEADS,
  num_hidden_layers: LAYERS,
  intermediate_size: FFN,
  max_position_embeddings: 256,
  rope_theta: 500000,
  rms_norm_eps: 1e-5,
  vocab_size: VOCAB,
  tie_word_embeddings: false,
};

function model(name: string, tensors: FixtureTensor[], config: Record<string, unknown>, regex = LLAMA3_REGEX): { dir: string; tensors: Map<string, FixtureTensor>; tok: ReturnType<typeof writeByteLevelTokenizer> } {
  const d = writeModel(path.join(dir, name), tensors, config);
  return { dir: d, tensors: new Map(tensors.map((t) => [t.name, t])), tok: writeByteLevelTokenizer(d, regex) };
}

/** The stored float32 values of a fixture tensor, as float64. */
function stored(t: FixtureTensor): Float64Array {
  return Float64Array.from(Float32Array.from(t.values));
}

/**
 * llama.cpp's rope layout written independently: Hugging Face rotates dimension i with i + d/2
 * (rotate_half); ggml rotates 2i with 2i + 1. So in each head, GGUF row 2i is HF row i and GGUF row
 * 2i + 1 is HF row i + d/2.
 */
function ropePermuted(values: Float64Array, heads: number, cols: number): Float64Array {
  const d = values.length / cols / heads;
  const out = new Float64Array(values.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < d / 2; i++) {
      out.set(values.subarray((h * d + i) * cols, (h * d + i + 1) * cols), (h * d + 2 * i) * cols);
      out.set(values.subarray((h * d + i + d / 2) * cols, (h * d + i + d / 2 + 1) * cols), (h * d + 2 * i + 1) * cols);
    }
  }
  return out;
}

function matVec(w: Float64Array, x: Float64Array, rows: number): Float64Array {
  const cols = x.length;
  return Float64Array.from({ length: rows }, (_, r) => x.reduce((a, v, c) => a + w[r * cols + c]! * v, 0));
}

/** Rotary embedding of one head vector at position `pos`: rotate-half pairs or interleaved pairs. */
function rope(v: Float64Array, pos: number, theta: number, interleaved: boolean): Float64Array {
  const d = v.length;
  const out = new Float64Array(d);
  for (let i = 0; i < d / 2; i++) {
    const a = pos / theta ** ((2 * i) / d);
    const [x, y] = interleaved ? [2 * i, 2 * i + 1] : [i, i + d / 2];
    out[x] = v[x]! * Math.cos(a) - v[y]! * Math.sin(a);
    out[y] = v[x]! * Math.sin(a) + v[y]! * Math.cos(a);
  }
  return out;
}

before(() => {
  dir = tempDir('gguf');
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('chatvec gguf: LLaMA with grouped-query attention', () => {
  let m: ReturnType<typeof model>;
  before(() => {
    m = model('llama', llamaTensors(1), { ...LLAMA_CONFIG, bos_token_id: 99 });
  });

  it('f32: metadata, tokenizer, shapes and exact tensor values (q/k permuted) read back by @huggingface/gguf and by an independent reader', async () => {
    const out = path.join(dir, 'llama-f32.gguf');
    const events: ProgressEvent[] = [];
    const r = await runGgufExport({ model: m.dir, out, type: 'F32' }, { onProgress: (e) => events.push(e) });
    assert.equal(r.tensorCount, 1 + LAYERS * 9 + 2);
    assert.equal(fs.statSync(out).size, r.bytesWritten);
    assert.ok(events.length >= 2 && events.at(-1)!.done === events.at(-1)!.total, 'progress ends at its total');

    const hf = await gguf(out, { allowLocalFile: true });
    const md = hf.metadata as Record<string, unknown>;
    assert.equal(md.version, 3);
    assert.equal(md['general.architecture'], 'llama');
    assert.equal(md['general.name'], 'llama');
    assert.equal(md['general.file_type'], 0);
    assert.equal(md['general.alignment'], 32);
    assert.equal(md['llama.block_count'], LAYERS);
    assert.equal(md['llama.embedding_length'], HIDDEN);
    assert.equal(md['llama.feed_forward_length'], FFN);
    assert.equal(md['llama.context_length'], 256);
    assert.equal(md['llama.attention.head_count'], HEADS);
    assert.equal(md['llama.attention.head_count_kv'], KV_HEADS);
    assert.equal(md['llama.rope.dimension_count'], HEAD_DIM);
    assert.equal(md['llama.rope.freq_base'], 500000);
    assert.equal(md['llama.attention.layer_norm_rms_epsilon'], Math.fround(1e-5));
    assert.equal(md['llama.vocab_size'], VOCAB);
    assert.equal(md['tokenizer.ggml.model'], 'gpt2');
    assert.equal(md['tokenizer.ggml.pre'], 'llama-bpe');
    const wantTokens = [...m.tok.tokens, ...Array.from({ length: VOCAB - m.tok.tokens.length }, (_, i) => `[PAD${m.tok.tokens.length + i}]`)];
    assert.deepEqual(md['tokenizer.ggml.tokens'], wantTokens);
    const wantTypes = wantTokens.map((t, i) => (i === m.tok.bos || i === m.tok.eos ? 3 : t.startsWith('[PAD') ? 5 : 1));
    assert.deepEqual(md['tokenizer.ggml.token_type'], wantTypes);
    assert.deepEqual(md['tokenizer.ggml.merges'], m.tok.merges);
    // tokenizer_config names bos, so config.json's (wrong) bos_token_id 99 is not used.
    assert.equal(md['tokenizer.ggml.bos_token_id'], m.tok.bos);
    assert.equal(md['tokenizer.ggml.eos_token_id'], m.tok.eos);
    assert.equal(md['tokenizer.ggml.add_bos_token'], true);
    assert.equal(md['tokenizer.chat_template'], CHAT_TEMPLATE);

    const g = readGgufFile(out);
    assert.equal(g.version, 3);
    assert.equal(g.dataStart, Number(hf.tensorDataOffset));
    const names = hf.tensorInfos.map((t) => t.name);
    assert.deepEqual(new Set(names), new Set(g.tensors.keys()));
    assert.ok(names.includes('output.weight') && names.includes('blk.1.ffn_down.weight') && names.includes('output_norm.weight'), names.join(', '));
    for (const ti of hf.tensorInfos) {
      assert.equal(ti.dtype, 0, ti.name);
      assert.deepEqual(ti.shape.map(Number), g.tensors.get(ti.name)!.dims, ti.name);
      assert.equal(Number(ti.offset) + g.dataStart, g.tensors.get(ti.name)!.position, ti.name);
      assert.equal(g.tensors.get(ti.name)!.position % 32, 0, ti.name);
    }
    const map: [string, string, number?][] = [
      ['model.embed_tokens.weight', 'token_embd.weight'],
      ['lm_head.weight', 'output.weight'],
      ['model.norm.weight', 'output_norm.weight'],
      ['model.layers.1.self_attn.q_proj.weight', 'blk.1.attn_q.weight', HEADS],
      ['model.layers.1.self_attn.k_proj.weight', 'blk.1.attn_k.weight', KV_HEADS],
      ['model.layers.1.self_attn.v_proj.weight', 'blk.1.attn_v.weight'],
      ['model.layers.0.self_attn.o_proj.weight', 'blk.0.attn_output.weight'],
      ['model.layers.0.mlp.gate_proj.weight', 'blk.0.ffn_gate.weight'],
      ['model.layers.0.mlp.up_proj.weight', 'blk.0.ffn_up.weight'],
      ['model.layers.0.mlp.down_proj.weight', 'blk.0.ffn_down.weight'],
      ['model.layers.0.input_layernorm.weight', 'blk.0.attn_norm.weight'],
      ['model.layers.0.post_attention_layernorm.weight', 'blk.0.ffn_norm.weight'],
    ];
    for (const [hfName, ggufName, heads] of map) {
      const src = m.tensors.get(hfName)!;
      const want = heads ? ropePermuted(stored(src), heads, src.shape[1]!) : stored(src);
      assert.deepEqual(g.tensors.get(ggufName)!.dims, [...src.shape].reverse(), ggufName);
      assert.deepEqual(tensorValues(g, ggufName), want, ggufName);
    }
  });

  it('the permuted q/k give the attention scores of the original with Hugging Face rope (GQA: k by the key-value heads)', async () => {
    const out = path.join(dir, 'llama-scores.gguf');
    await runGgufExport({ model: m.dir, out, type: 'F32' });
    const g = readGgufFile(out);
    const r = rng(7);
    const x = Float64Array.from({ length: HIDDEN }, () => 2 * r() - 1);
    const y = Float64Array.from({ length: HIDDEN }, () => 2 * r() - 1);
    const qHf = matVec(stored(m.tensors.get('model.layers.0.self_attn.q_proj.weight')!), x, HIDDEN);
    const kHf = matVec(stored(m.tensors.get('model.layers.0.self_attn.k_proj.weight')!), y, KV_HEADS * HEAD_DIM);
    const qG = matVec(tensorValues(g, 'blk.0.attn_q.weight'), x, HIDDEN);
    const kG = matVec(tensorValues(g, 'blk.0.attn_k.weight'), y, KV_HEADS * HEAD_DIM);
    const head = (v: Float64Array, h: number) => v.subarray(h * HEAD_DIM, (h + 1) * HEAD_DIM);
    const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i]!, 0);
    for (let h = 0; h < HEADS; h++) {
      const kv = Math.floor(h / (HEADS / KV_HEADS));
      const hfScore = dot(rope(head(qHf, h), 5, 500000, false), rope(head(kHf, kv), 2, 500000, false));
      const gScore = dot(rope(head(qG, h), 5, 500000, true), rope(head(kG, kv), 2, 500000, true));
      assert.ok(Math.abs(hfScore - gScore) < 1e-9 * Math.max(1, Math.abs(hfScore)), `head ${h}: ${hfScore} vs ${gScore}`);
    }
  });

  for (const type of ['F16', 'BF16'] as const) {
    it(`${type.toLowerCase()}: matrices rounded once to nearest even, norms kept as f32`, async () => {
      const out = path.join(dir, `llama-${type}.gguf`);
      await runGgufExport({ model: m.dir, out, type });
      const hf = await gguf(out, { allowLocalFile: true });
      assert.equal((hf.metadata as Record<string, unknown>)['general.file_type'], type === 'F16' ? 1 : 32);
      const g = readGgufFile(out);
      assert.equal(g.tensors.get('blk.0.attn_norm.weight')!.type, 0);
      assert.deepEqual(tensorValues(g, 'blk.0.attn_norm.weight'), stored(m.tensors.get('model.layers.0.input_layernorm.weight')!));
      for (const [hfName, ggufName, heads] of [
        ['model.embed_tokens.weight', 'token_embd.weight', 0],
        ['model.layers.0.self_attn.k_proj.weight', 'blk.0.attn_k.weight', KV_HEADS],
        ['model.layers.1.mlp.down_proj.weight', 'blk.1.ffn_down.weight', 0],
      ] as const) {
        assert.equal(g.tensors.get(ggufName)!.type, type === 'F16' ? 1 : 30, ggufName);
        const src = m.tensors.get(hfName)!;
        const ref = heads ? ropePermuted(stored(src), heads, src.shape[1]!) : stored(src);
        const got = tensorValues(g, ggufName);
        ref.forEach((v, i) => assert.equal(got[i], valueOf(type, roundToBits(v, type)), `${ggufName}[${i}]`));
      }
    });
  }

  it('q8_0: blocks of 32 within half a step of the f32 values; rows not of whole blocks fall back to f16', async () => {
    const out = path.join(dir, 'llama-q8.gguf');
    const r = await runGgufExport({ model: m.dir, out, type: 'Q8_0' });
    assert.match(r.warnings.join('\n'), /written as F16/);
    const hf = await gguf(out, { allowLocalFile: true });
    assert.equal((hf.metadata as Record<string, unknown>)['general.file_type'], 7);
    assert.equal((hf.metadata as Record<string, unknown>)['general.quantization_version'], 2);
    const g = readGgufFile(out);
    for (const ti of hf.tensorInfos) {
      assert.equal(Number(ti.offset) + g.dataStart, g.tensors.get(ti.name)!.position, ti.name);
      assert.equal(g.tensors.get(ti.name)!.position % 32, 0, `${ti.name} is aligned to 32 bytes`);
    }
    assert.equal(g.tensors.get('blk.0.ffn_down.weight')!.type, 1);
    for (const [hfName, ggufName, heads] of [
      ['model.embed_tokens.weight', 'token_embd.weight', 0],
      ['model.layers.0.self_attn.q_proj.weight', 'blk.0.attn_q.weight', HEADS],
      ['model.layers.1.mlp.up_proj.weight', 'blk.1.ffn_up.weight', 0],
    ] as const) {
      assert.equal(g.tensors.get(ggufName)!.type, 8, ggufName);
      const src = m.tensors.get(hfName)!;
      const ref = heads ? ropePermuted(stored(src), heads, src.shape[1]!) : stored(src);
      const got = tensorValues(g, ggufName);
      for (let b = 0; b < ref.length; b += 32) {
        const amax = Math.max(...ref.subarray(b, b + 32).map(Math.abs));
        const d = q8Scale(g, ggufName, b);
        assert.ok(Math.abs(d - amax / 127) <= (amax / 127) * 2 ** -11, `${ggufName} block ${b / 32}: scale ${d}`);
        for (let i = b; i < b + 32; i++) {
          // round(x/d) is within half a step; the f16 scale moves a code of at most 127 by 127·|d − d16|.
          assert.ok(Math.abs(got[i]! - ref[i]!) <= d / 2 + 127 * Math.abs(d - amax / 127) + 1e-7, `${ggufName}[${i}]: ${got[i]} vs ${ref[i]}`);
        }
      }
    }
  });
});

describe('chatvec gguf: Qwen2, tied embeddings, refusals and atomic output', () => {
  it('Qwen2: arch qwen2, q/k/v biases, no permutation, pre-tokenizer qwen2', async () => {
    const m = model('qwen', llamaTensors(2, { biases: true }), { ...LLAMA_CONFIG, architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', rope_theta: 1000000, rms_norm_eps: 1e-6 }, QWEN2_REGEX);
    const out = path.join(dir, 'qwen.gguf');
    await runGgufExport({ model: m.dir, out, type: 'F32' });
    const hf = await gguf(out, { allowLocalFile: true });
    const md = hf.metadata as Record<string, unknown>;
    assert.equal(md['general.architecture'], 'qwen2');
    assert.equal(md['qwen2.attention.head_count_kv'], KV_HEADS);
    assert.equal(md['qwen2.rope.freq_base'], 1000000);
    assert.equal(md['tokenizer.ggml.pre'], 'qwen2');
    const g = readGgufFile(out);
    for (const [hfName, ggufName] of [
      ['model.layers.0.self_attn.q_proj.weight', 'blk.0.attn_q.weight'],
      ['model.layers.0.self_attn.q_proj.bias', 'blk.0.attn_q.bias'],
      ['model.layers.1.self_attn.k_proj.bias', 'blk.1.attn_k.bias'],
      ['model.layers.1.self_attn.v_proj.bias', 'blk.1.attn_v.bias'],
    ]) {
      assert.deepEqual(tensorValues(g, ggufName!), stored(m.tensors.get(hfName!)!), ggufName);
    }
  });

  it('SentencePiece-style BPE (Llama 2): model "llama", byte tokens of type BYTE, scores by merge order, no merges', async () => {
    const m = model('spm', llamaTensors(10), { ...LLAMA_CONFIG, architectures: ['MistralForCausalLM'], model_type: 'mistral' });
    const spm = writeSentencePieceTokenizer(m.dir);
    const out = path.join(dir, 'spm.gguf');
    await runGgufExport({ model: m.dir, out });
    const md = (await gguf(out, { allowLocalFile: true })).metadata as Record<string, unknown>;
    const pad = Array.from({ length: VOCAB - spm.tokens.length }, (_, i) => spm.tokens.length + i);
    assert.equal(md['general.architecture'], 'llama');
    assert.equal(md['tokenizer.ggml.model'], 'llama');
    assert.equal(md['tokenizer.ggml.pre'], 'default');
    assert.deepEqual(md['tokenizer.ggml.tokens'], [...spm.tokens, ...pad.map((i) => `[PAD${i}]`)]);
    assert.deepEqual(md['tokenizer.ggml.token_type'], [...spm.types, ...pad.map(() => 5)]);
    assert.deepEqual(md['tokenizer.ggml.scores'], [...spm.scores, ...pad.map(() => -1000)]);
    assert.equal(md['tokenizer.ggml.merges'], undefined);
    assert.equal(md['tokenizer.ggml.bos_token_id'], 1);
    assert.equal(md['tokenizer.ggml.eos_token_id'], 2);
    assert.equal(md['tokenizer.ggml.unknown_token_id'], 0);
    assert.equal(md['tokenizer.ggml.add_bos_token'], true);
    assert.equal(md['tokenizer.ggml.add_eos_token'], false);
  });

  it('LLaMA q/k biases are permuted like their rows', async () => {
    const m = model('llama-bias', llamaTensors(3, { biases: true }), LLAMA_CONFIG);
    const out = path.join(dir, 'llama-bias.gguf');
    await runGgufExport({ model: m.dir, out, type: 'F32' });
    const g = readGgufFile(out);
    assert.deepEqual(tensorValues(g, 'blk.0.attn_k.bias'), ropePermuted(stored(m.tensors.get('model.layers.0.self_attn.k_proj.bias')!), KV_HEADS, 1));
    assert.deepEqual(tensorValues(g, 'blk.0.attn_q.bias'), ropePermuted(stored(m.tensors.get('model.layers.0.self_attn.q_proj.bias')!), HEADS, 1));
  });

  it('tied embeddings: no output.weight (llama.cpp uses token_embd), with or without an lm_head in the checkpoint', async () => {
    for (const head of [false, true]) {
      const m = model(`tied-${head}`, llamaTensors(4, { head }), { ...LLAMA_CONFIG, tie_word_embeddings: true });
      const out = path.join(dir, `tied-${head}.gguf`);
      const r = await runGgufExport({ model: m.dir, out });
      const hf = await gguf(out, { allowLocalFile: true });
      const names = hf.tensorInfos.map((t) => t.name);
      assert.ok(!names.includes('output.weight') && names.includes('token_embd.weight'), `head in checkpoint: ${head}; tensors: ${names.join(', ')}`);
      assert.equal(r.tensorCount, names.length);
    }
  });

  it('another family is refused by name, in one line, and nothing is written', async () => {
    const m = model('gpt2ish', llamaTensors(5), { ...LLAMA_CONFIG, architectures: ['Gemma2ForCausalLM'], model_type: 'gemma2' });
    const out = path.join(dir, 'gemma.gguf');
    const e = await rejectsWith(runGgufExport({ model: m.dir, out }), 'Unsupported', 'Gemma2ForCausalLM', 'LlamaForCausalLM');
    assert.ok(!e.message.includes('\n'), e.message);
    assertNothingLeft(out);
  });

  it('a WordLevel tokenizer is refused in one line, and nothing is written', async () => {
    const m = model('wordlevel', llamaTensors(6), LLAMA_CONFIG);
    fs.writeFileSync(path.join(m.dir, 'tokenizer.json'), JSON.stringify({ version: '1.0', added_tokens: [], pre_tokenizer: { type: 'Whitespace' }, model: { type: 'WordLevel', vocab: { a: 0 }, unk_token: 'a' } }));
    const out = path.join(dir, 'wordlevel.gguf');
    const e = await rejectsWith(runGgufExport({ model: m.dir, out }), 'Unsupported', 'WordLevel', 'tokenizer.json');
    assert.ok(!e.message.includes('\n'), e.message);
    assertNothingLeft(out);
  });

  it('cancel as the export starts: Cancelled, and neither the file nor a temporary sibling is left', async () => {
    const m = model('cancel', llamaTensors(7), LLAMA_CONFIG);
    const out = path.join(dir, 'cancel.gguf');
    const signal = { cancelled: false };
    let sawPartial = false;
    await rejectsWith(
      runGgufExport(
        { model: m.dir, out },
        {
          signal,
          // The first event comes as the file is created, before any tensor is written.
          onProgress: () => {
            sawPartial ||= fs.readdirSync(dir).some((n) => n.startsWith('.cancel.gguf.partial-'));
            signal.cancelled = true;
          },
        },
      ),
      'Cancelled',
    );
    assert.ok(sawPartial, 'the file is written under a temporary name');
    assertNothingLeft(out);
  });

  it('an existing file is replaced only with overwrite; a folder or an input never', async () => {
    const m = model('over', llamaTensors(8), LLAMA_CONFIG);
    const out = path.join(dir, 'over.gguf');
    fs.writeFileSync(out, 'old');
    await rejectsWith(runGgufExport({ model: m.dir, out }), 'OutputExists', 'over.gguf');
    assert.equal(fs.readFileSync(out, 'utf8'), 'old');
    await runGgufExport({ model: m.dir, out, overwrite: true });
    assert.equal(readGgufFile(out).kv.get('general.architecture'), 'llama');
    const folder = path.join(dir, 'afolder.gguf');
    fs.mkdirSync(folder);
    await rejectsWith(runGgufExport({ model: m.dir, out: folder, overwrite: true }), 'OutputExists', 'not a regular file');
    const shard = path.join(m.dir, 'model.safetensors');
    const before = fs.readFileSync(shard);
    await rejectsWith(runGgufExport({ model: m.dir, out: shard, overwrite: true }), 'InvalidArgument', 'input');
    assert.deepEqual(fs.readFileSync(shard), before);
  });
});

describe('chatvec gguf on the command line', () => {
  before(() => ensureCli());
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, 'gguf', ...args], { encoding: 'utf8', timeout: 60_000 });

  it('writes the file and says so; a bad --type or an unsupported model is one line and a non-zero status', () => {
    const m = model('cli', llamaTensors(9), LLAMA_CONFIG);
    const out = path.join(dir, 'cli.gguf');
    const ok = run(m.dir, '--out', out, '--type', 'q8_0');
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^wrote GGUF .*cli\.gguf: 21 tensors/m);
    assert.equal(readGgufFile(out).kv.get('general.file_type'), 7);
    const bad = run(m.dir, '--out', path.join(dir, 'cli2.gguf'), '--type', 'q4_0');
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr.trim(), 'chatvec: error: --type "q4_0" is not one of f32, f16, bf16, q8_0');
    fs.writeFileSync(path.join(m.dir, 'config.json'), JSON.stringify({ ...LLAMA_CONFIG, architectures: ['PhiForCausalLM'] }));
    const phi = run(m.dir, '--out', path.join(dir, 'cli3.gguf'));
    assert.equal(phi.status, 1);
    assert.equal(phi.stderr.trim().split('\n').length, 1, phi.stderr);
    assert.match(phi.stderr, /PhiForCausalLM/);
    assertNothingLeft(path.join(dir, 'cli3.gguf'));
  });
});
