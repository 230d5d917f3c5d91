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
import { referenceNlls } from './support/llamaReference';
import { TINY_LLAMA, referenceWeights, tinyLlamaTensors, writeTinyLlama } from './support/tinyLlama';

const S = TINY_LLAMA;
const IDS = [27, 30, 14, 26, 29, 3, 17, 31, 0, 12, 28, 4];

let dir: string;
before(() => {
  dir = tempDir('gguf-llama');
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('GGUF export loaded by llama.cpp (node-llama-cpp, CPU)', () => {
  it('loads, tokenizes with the exported BPE, and its per-token NLLs equal a float64 reference within 1e-4', async () => {
    const tensors = tinyLlamaTensors(11);
    const model = writeTinyLlama(path.join(dir, 'tiny'), tensors);
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
      const want = referenceNlls(referenceWeights(tensors), S, IDS);
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
