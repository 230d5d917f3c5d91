// The exported GGUF loads in llama.cpp (node-llama-cpp 3.21.1, its prebuilt CPU binary, no build)
// and gives, on a fixed id sequence, the per-token negative log-likelihoods of an independent
// float64 forward pass over the Hugging Face weights (support/llamaReference.ts) within 1e-4.
// Grouped-query attention and the rope permutation are exercised: a wrong permutation or head
// count changes the attention and so the NLLs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runGgufExport } from '../../src/core/gguf/export';
import { tempDir } from './support/engineFixtures';
import { LLAMA3_REGEX, writeByteLevelTokenizer } from './support/ggufReference';
import { type LlamaShape, referenceNlls } from './support/llamaReference';
import { type FixtureTensor, rng, writeModel } from './support/recipeFixtures';

const S: LlamaShape = { hidden: 64, heads: 4, kvHeads: 2, layers: 2, ffn: 128, vocab: 41, ropeTheta: 10000, eps: 1e-5 };
const IDS = [27, 30, 14, 26, 29, 3, 17, 31, 0, 12, 28, 4];

let dir: string;
before(() => {
  dir = tempDir('gguf-llama');
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function tinyLlama(seed: number): FixtureTensor[] {
  const r = rng(seed);
  const hd = S.hidden / S.heads;
  // Scale 0.3 (norms near 1) so that attention is far from uniform and logits spread.
  const t = (name: string, shape: number[], norm = false): FixtureTensor => ({ name, shape, values: Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (norm ? 1 + 0.2 * (r() - 0.5) : 0.6 * (r() - 0.5))) });
  const out = [t('model.embed_tokens.weight', [S.vocab, S.hidden])];
  for (let l = 0; l < S.layers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      t(`${p}input_layernorm.weight`, [S.hidden], true),
      t(`${p}self_attn.q_proj.weight`, [S.heads * hd, S.hidden]),
      t(`${p}self_attn.k_proj.weight`, [S.kvHeads * hd, S.hidden]),
      t(`${p}self_attn.v_proj.weight`, [S.kvHeads * hd, S.hidden]),
      t(`${p}self_attn.o_proj.weight`, [S.hidden, S.heads * hd]),
      t(`${p}post_attention_layernorm.weight`, [S.hidden], true),
      t(`${p}mlp.gate_proj.weight`, [S.ffn, S.hidden]),
      t(`${p}mlp.up_proj.weight`, [S.ffn, S.hidden]),
      t(`${p}mlp.down_proj.weight`, [S.hidden, S.ffn]),
    );
  }
  out.push(t('model.norm.weight', [S.hidden], true), t('lm_head.weight', [S.vocab, S.hidden]));
  return out;
}

describe('GGUF export loaded by llama.cpp (node-llama-cpp, CPU)', () => {
  it('loads, tokenizes with the exported BPE, and its per-token NLLs equal a float64 reference within 1e-4', async () => {
    const tensors = tinyLlama(11);
    const model = writeModel(path.join(dir, 'tiny'), tensors, {
      hidden_size: S.hidden, num_attention_heads: S.heads, num_key_value_heads: S.kvHeads, num_hidden_layers: S.layers,
      intermediate_size: S.ffn, max_position_embeddings: 128, rope_theta: S.ropeTheta, rms_norm_eps: S.eps, vocab_size: S.vocab,
    });
    writeByteLevelTokenizer(model, LLAMA3_REGEX);
    const out = path.join(dir, 'tiny.gguf');
    await runGgufExport({ model, out, type: 'F32' });

    const { getLlama } = await import('node-llama-cpp');
    const llama = await getLlama({ build: 'never', gpu: false, logLevel: 'error' as never });
    try {
      const m = await llama.loadModel({ modelPath: out });
      // "hello" → "hell" (merge he+ll) + "o": the exported merges and pre-tokenizer at work.
      assert.deepEqual([...m.tokenize('hello', false)], [30, 14]);
      // An f32 KV cache without flash attention: with llama.cpp's defaults (f16 cache, flash
      // attention on the CPU) the NLLs move by up to 2e-3; so they agree within 1e-6 (measured).
      const ctx = await m.createContext({ contextSize: 32, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', flashAttention: false });
      const seq = ctx.getSequence();
      const res = await seq.controlledEvaluate(IDS.map((id) => [id, { generateNext: { probabilities: true, options: { temperature: 1, topK: S.vocab, topP: 1, minP: 0 } } }] as never));
      const want = referenceNlls(new Map(tensors.map((t) => [t.name, Float64Array.from(Float32Array.from(t.values))])), S, IDS);
      const spread = Math.max(...want) - Math.min(...want);
      assert.ok(spread > 0.1, `the reference NLLs vary (${spread}), so a wrong model would show`);
      for (let p = 0; p + 1 < IDS.length; p++) {
        const prob = res[p]!.next.probabilities!.get(IDS[p + 1]! as never)!;
        const got = -Math.log(prob);
        assert.ok(Math.abs(got - want[p]!) < 1e-4, `position ${p}: llama.cpp ${got} vs reference ${want[p]}`);
      }
      await ctx.dispose();
      await m.dispose();
    } finally {
      await llama.dispose();
    }
  });
});
