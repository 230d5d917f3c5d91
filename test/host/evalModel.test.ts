// The `evalModel` job in the task host: the same NLLs as in-process, progress per window, cancel.
// First: the bundled host and this process then key the GGUF cache by the same tool version.
import './toolVersion';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { runEval } from '../../src/core/tryit/evaluate';
import { TINY_LLAMA, tinyLlamaTensors, writeTinyLlama } from '../unit/support/tinyLlama';
import { ensureBundles, newClient, tempDir } from './support';

describe('task host evalModel', () => {
  before(() => ensureBundles());

  it('gives the in-process NLLs, reports progress, and cancels', async () => {
    const dir = tempDir('chatvec-host-eval-');
    const model = writeTinyLlama(path.join(dir, 'tiny'), tinyLlamaTensors(3));
    const ids = path.join(dir, 'ids.json');
    // Long enough that a one-token stride gives thousands of windows: seconds of work to cancel.
    fs.writeFileSync(ids, JSON.stringify(Array.from({ length: 3000 }, (_, i) => (i * 7) % TINY_LLAMA.vocab)));
    const options = { model, ids, cacheDir: path.join(dir, 'cache'), type: 'F32' as const, backend: 'cpu' as const, threads: 1 };
    const client = newClient();
    const r = await client.runJob('evalModel', { ...options, context: 3000 });
    assert.ok(r.status === 'ok', JSON.stringify(r).slice(0, 200));
    const local = await runEval({ ...options, context: 3000 });
    assert.equal(r.result.ggufFrom, 'converted', 'the host converted into the cache');
    assert.equal(local.ggufFrom, 'cache', 'and the in-process run reused it');
    assert.deepEqual(r.result.nlls, local.nlls);

    const abort = new AbortController();
    const phases: string[] = [];
    const c = await client.runJob('evalModel', { ...options, context: 4, stride: 1 }, {
      cancellation: abort.signal,
      onProgress: (p) => {
        phases.push(p.phase);
        if (p.phase === 'eval' && p.done > 0) abort.abort();
      },
    });
    assert.deepEqual(c, { status: 'cancelled' });
    assert.ok(phases.includes('eval'));
    assert.equal((await client.status()).jobs.length, 0, 'no job left running');
  });
});
