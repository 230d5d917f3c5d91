// The GGUF export on the worker pool (task kind ggufChunk) writes the same bytes as in the calling
// thread, for every --type, from bf16 weights; tensors large enough to span several chunks land at
// their place (values read back against the stored values for f32). Cancel stops the workers and
// leaves nothing behind.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runGgufExport } from '../../src/core/gguf/export';
import type { GgufFileType } from '../../src/core/gguf/llama';
import { assertNothingLeft, rejectsWith, tempDir } from './support/engineFixtures';
import { readGgufFile, tensorValues } from './support/ggufReference';
import type { LlamaShape } from './support/llamaReference';
import { tinyLlamaTensors, writeTinyLlama } from './support/tinyLlama';

// 16 400 × 64 values: a little over 2^20, so the embeddings and the FFN matrices take two chunks each.
const S: LlamaShape = { hidden: 64, heads: 4, kvHeads: 2, layers: 1, ffn: 16400, vocab: 16400, ropeTheta: 10000, eps: 1e-5 };

let dir: string;
let model: string;
let stored: Map<string, Float64Array>;
before(() => {
  dir = tempDir('gguf-threads');
  const tensors = tinyLlamaTensors(3, S).map((t) => ({ ...t, dtype: 'BF16' as const }));
  model = writeTinyLlama(path.join(dir, 'big'), tensors, S);
  // The stored values: bf16 of the fixture's values, decoded here by truncating float32 bits (exact for bf16).
  const bits = new Uint32Array(1);
  const f = new Float32Array(bits.buffer);
  const bf16 = (x: number) => {
    f[0] = x;
    const u = bits[0]!;
    bits[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
    return f[0]!;
  };
  stored = new Map(tensors.map((t) => [t.name, Float64Array.from(t.values, bf16)]));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('chatvec gguf on worker threads', () => {
  it('f32 on 2 threads: multi-chunk tensors hold the stored values at their place', async () => {
    const out = path.join(dir, 'f32-2.gguf');
    const r = await runGgufExport({ model, out, type: 'F32', threads: 2 });
    assert.equal(r.backend, 'cpu (2 threads)');
    const g = readGgufFile(out);
    assert.deepEqual(tensorValues(g, 'token_embd.weight'), stored.get('model.embed_tokens.weight'));
    assert.deepEqual(tensorValues(g, 'blk.0.ffn_up.weight'), stored.get('model.layers.0.mlp.up_proj.weight'));
    assert.deepEqual(tensorValues(g, 'blk.0.ffn_down.weight'), stored.get('model.layers.0.mlp.down_proj.weight'));
  });

  for (const type of ['F16', 'BF16', 'Q8_0'] as GgufFileType[]) {
    it(`${type}: 2 worker threads write the same bytes as the calling thread`, async () => {
      const one = path.join(dir, `${type}-1.gguf`);
      const two = path.join(dir, `${type}-2.gguf`);
      await runGgufExport({ model, out: one, type, threads: 1 });
      await runGgufExport({ model, out: two, type, threads: 2 });
      const a = fs.readFileSync(one);
      const b = fs.readFileSync(two);
      assert.equal(a.length, b.length);
      assert.ok(a.equals(b), `${type}: the files differ`);
    });
  }

  it('cancel while workers run: Cancelled, and nothing is left', async () => {
    const out = path.join(dir, 'cancel.gguf');
    const signal = { cancelled: false };
    let events = 0;
    await rejectsWith(
      runGgufExport({ model, out, type: 'Q8_0', threads: 2 }, { signal, onProgress: () => { if (++events === 2) signal.cancelled = true; } }),
      'Cancelled',
    );
    assertNothingLeft(out);
  });

  it('cancel between chunks in the calling thread (1 thread): Cancelled, and nothing is left', async () => {
    const out = path.join(dir, 'cancel-1.gguf');
    // Progress is throttled (one event on this small model), so the signal turns after a few looks:
    // the start's check, then one before each chunk.
    let looks = 0;
    const signal = {
      get cancelled() {
        return ++looks > 3;
      },
    };
    await rejectsWith(runGgufExport({ model, out, type: 'Q8_0', threads: 1 }, { signal }), 'Cancelled');
    assert.ok(looks > 3, 'the signal was looked at between chunks');
    assertNothingLeft(out);
  });
});
