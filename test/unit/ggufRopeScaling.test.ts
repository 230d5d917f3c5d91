// rope_scaling in the GGUF export, as llama.cpp's converter writes it: linear and yarn as
// `{arch}.rope.scaling.*` metadata (read back with @huggingface/gguf), Llama 3.1's llama3 type as a
// `rope_freqs.weight` tensor whose values are checked against the published formula computed here
// in float64, and loaded by llama.cpp, whose NLLs must match the float64 reference forward pass with
// the same scaling (support/llamaReference.ts, transformers' inverse-frequency form). Unknown types
// are refused in one line naming config.json.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gguf } from '@huggingface/gguf';
import { runGgufExport } from '../../src/core/gguf/export';
import { assertNothingLeft, rejectsWith, tempDir } from './support/engineFixtures';
import { readGgufFile, tensorValues } from './support/ggufReference';
import { type LlamaShape, referenceNlls } from './support/llamaReference';
import { TINY_LLAMA, referenceWeights, tinyLlamaTensors, writeTinyLlama } from './support/tinyLlama';

let dir: string;
before(() => {
  dir = tempDir('gguf-rope');
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A tiny LLaMA whose config.json carries `scaling` (as rope_scaling) and whatever else is given. */
function scaledModel(name: string, scaling: unknown, extra: Record<string, unknown> = {}, s: LlamaShape = TINY_LLAMA): string {
  const model = writeTinyLlama(path.join(dir, name), tinyLlamaTensors(5, s), s);
  const cfgFile = path.join(model, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, rope_scaling: scaling, ...extra }));
  return model;
}

async function metadataOf(file: string): Promise<Record<string, unknown>> {
  return (await gguf(file, { allowLocalFile: true })).metadata as Record<string, unknown>;
}

/** Llama 3.1's factors from the published formula (Meta's apply_scaling), in float64: the divisor of each frequency. */
function llama3Divisors(headDim: number, base: number, factor: number, low: number, high: number, original: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < headDim / 2; i++) {
    const freq = 1 / base ** ((2 * i) / headDim);
    const wavelen = (2 * Math.PI) / freq;
    let scaled: number;
    if (wavelen < original / high) scaled = freq;
    else if (wavelen > original / low) scaled = freq / factor;
    else {
      const smooth = (original / wavelen - low) / (high - low);
      scaled = (1 - smooth) * (freq / factor) + smooth * freq;
    }
    out.push(freq / scaled);
  }
  return out;
}

describe('chatvec gguf: rope_scaling', () => {
  it('linear: rope.scaling.type "linear" and its factor', async () => {
    const out = path.join(dir, 'linear.gguf');
    await runGgufExport({ model: scaledModel('linear', { type: 'linear', factor: 4 }), out, type: 'F32' });
    const md = await metadataOf(out);
    assert.equal(md['llama.rope.scaling.type'], 'linear');
    assert.equal(md['llama.rope.scaling.factor'], 4);
    assert.equal(md['llama.rope.scaling.original_context_length'], undefined);
    assert.equal(readGgufFile(out).tensors.has('rope_freqs.weight'), false);
  });

  it('yarn: type, factor, original context and the optional yarn factors; absent ones stay absent', async () => {
    const out = path.join(dir, 'yarn.gguf');
    await runGgufExport({ model: scaledModel('yarn', { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32, beta_fast: 32, beta_slow: 1, attention_factor: 1.25 }), out, type: 'F32' });
    const md = await metadataOf(out);
    assert.equal(md['llama.rope.scaling.type'], 'yarn');
    assert.equal(md['llama.rope.scaling.factor'], 4);
    assert.equal(md['llama.rope.scaling.original_context_length'], 32);
    assert.equal(md['llama.rope.scaling.yarn_beta_fast'], 32);
    assert.equal(md['llama.rope.scaling.yarn_beta_slow'], 1);
    assert.equal(md['llama.rope.scaling.yarn_attn_factor'], 1.25);
    assert.equal(md['llama.rope.scaling.yarn_ext_factor'], undefined);
  });

  it('"default" and a null rope_scaling write no scaling', async () => {
    for (const [name, scaling] of [['default', { rope_type: 'default' }], ['null', null]] as const) {
      const out = path.join(dir, `${name}.gguf`);
      await runGgufExport({ model: scaledModel(name, scaling), out, type: 'F32' });
      const md = await metadataOf(out);
      assert.equal(md['llama.rope.scaling.type'], undefined, name);
      assert.equal(readGgufFile(out).tensors.has('rope_freqs.weight'), false, name);
    }
  });

  it('llama3: no scaling metadata; rope_freqs.weight (F32, head_dim/2) equals the published formula in float64, first of the tensors', async () => {
    // θ = 500000, head_dim 16: wavelengths 6.3 … 2.8e5 fall in all three bands for an original context of 64.
    const s: LlamaShape = { ...TINY_LLAMA, ropeTheta: 500000 };
    const scaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };
    const out = path.join(dir, 'llama3.gguf');
    await runGgufExport({ model: scaledModel('llama3', scaling, {}, s), out, type: 'F16' });
    const md = await metadataOf(out);
    assert.equal(md['llama.rope.scaling.type'], undefined);
    const g = readGgufFile(out);
    const t = g.tensors.get('rope_freqs.weight');
    assert.ok(t, 'rope_freqs.weight is written');
    assert.deepEqual(t.dims, [8]);
    assert.equal(t.type, 0, 'F32');
    assert.equal([...g.tensors.keys()][0], 'rope_freqs.weight');
    const want = llama3Divisors(16, 500000, 8, 1, 4, 64);
    assert.ok(want.some((v) => v === 1) && want.some((v) => v === 8) && want.some((v) => v > 1 && v < 8), `all three bands are exercised: ${want.join(', ')}`);
    const got = tensorValues(g, 'rope_freqs.weight');
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-6 * want[i]!, `factor ${i}: ${got[i]} vs ${want[i]}`);
  });

  it('llama3 loaded by llama.cpp: per-token NLLs equal the float64 reference with the same scaling within 1e-4 (and differ from the unscaled one)', async () => {
    // θ = 100, head_dim 16, original 32: frequencies 1 (unscaled), 2–3 (blended) and 4–8 (÷8).
    const s: LlamaShape = { ...TINY_LLAMA, ropeTheta: 100, llama3: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, original: 32 } };
    const tensors = tinyLlamaTensors(21, s);
    const model = writeTinyLlama(path.join(dir, 'llama3-run'), tensors, s);
    const out = path.join(dir, 'llama3-run.gguf');
    await runGgufExport({ model, out, type: 'F32' });
    const ids = [27, 30, 14, 26, 29, 3, 17, 31, 0, 12, 28, 4, 9, 22, 5, 33];
    const want = referenceNlls(referenceWeights(tensors), s, ids);
    const unscaled = referenceNlls(referenceWeights(tensors), { ...s, llama3: undefined }, ids);
    assert.ok(Math.max(...want.map((v, i) => Math.abs(v - unscaled[i]!))) > 1e-3, 'the scaling changes the reference NLLs, so a missing rope_freqs would show');

    const { getLlama } = await import('node-llama-cpp');
    const llama = await getLlama({ build: 'never', gpu: false, logLevel: 'error' as never });
    try {
      const m = await llama.loadModel({ modelPath: out });
      const ctx = await m.createContext({ contextSize: 32, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', flashAttention: false });
      const seq = ctx.getSequence();
      const res = await seq.controlledEvaluate(ids.map((id) => [id, { generateNext: { probabilities: true, options: { temperature: 1, topK: s.vocab, topP: 1, minP: 0 } } }] as never));
      for (let p = 0; p + 1 < ids.length; p++) {
        const got = -Math.log(res[p]!.next.probabilities!.get(ids[p + 1]! as never)!);
        assert.ok(Math.abs(got - want[p]!) < 1e-4, `position ${p}: llama.cpp ${got} vs reference ${want[p]} (unscaled ${unscaled[p]})`);
      }
      await ctx.dispose();
      await m.dispose();
    } finally {
      await llama.dispose();
    }
  });

  it('an unknown type, llama3 on Qwen2 and a linear scaling without factor are refused in one line naming config.json; nothing is written', async () => {
    const cases: [string, unknown, Record<string, unknown>, string, string[]][] = [
      ['dynamic', { type: 'dynamic', factor: 2 }, {}, 'Unsupported', ['config.json', 'rope_scaling', '"dynamic"', 'linear, yarn, llama3']],
      ['longrope', { rope_type: 'longrope', long_factor: [1], short_factor: [1] }, {}, 'Unsupported', ['config.json', '"longrope"']],
      ['qwen-llama3', { rope_type: 'llama3', factor: 8 }, { architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2' }, 'Unsupported', ['config.json', 'llama3', 'qwen2']],
      ['linear-nofactor', { type: 'linear' }, {}, 'BadCheckpoint', ['config.json', 'rope_scaling.factor']],
      ['yarn-noctx', { type: 'yarn', factor: 2 }, {}, 'BadCheckpoint', ['config.json', 'original_max_position_embeddings']],
    ];
    for (const [name, scaling, extra, code, patterns] of cases) {
      const out = path.join(dir, `${name}.gguf`);
      const e = await rejectsWith(runGgufExport({ model: scaledModel(name, scaling, extra), out }), code, ...patterns);
      assert.ok(!e.message.includes('\n'), e.message);
      assertNothingLeft(out);
    }
  });
});
