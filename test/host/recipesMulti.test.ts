/**
 * mergekit-multi recipes through the built task host: a `merge` job of a two-document file writes
 * the bytes the in-process run writes (the temporary intermediate folder gone afterwards), keeps
 * the named merge with `intermediateDir`, and a cancel during the first merge leaves nothing.
 */
import './toolVersion';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { runRecipeFileAll } from '../../src/core/recipes/multiRecipe';
import type { ProgressParams } from '../../src/protocol/taskHost';
import { assertSameTree, demo, ensureBundles, newClient, partials, tempDir, waitFor } from './support';

before(() => ensureBundles());

/** A linear merge of chat and cp (named), then task arithmetic of the base and that merge. */
function writeMulti(dir: string, preset: 'tiny' | 'small' = 'tiny'): string {
  const t = demo(preset);
  const rel = (p: string) => path.relative(dir, p);
  const file = path.join(dir, 'multi.yaml');
  fs.writeFileSync(
    file,
    `name: mix
merge_method: linear
models:
  - model: ${rel(t.chat)}
    parameters: {weight: 0.5}
  - model: ${rel(t.base)}
    parameters: {weight: 0.5}
dtype: float32
---
merge_method: task_arithmetic
base_model: ${rel(t.base)}
models:
  - model: mix
    parameters: {weight: 0.8}
  - model: ${rel(t.cp)}
    parameters: {weight: 0.2}
`,
  );
  return file;
}

describe('task host: multi-document recipes', () => {
  it('a merge job runs every document and writes the bytes of the in-process run; intermediateDir keeps the named merge', async () => {
    const dir = tempDir('chatvec-host-multi-');
    const recipe = writeMulti(dir);
    const client = newClient();
    const r = await client.merge({ recipe, out: path.join(dir, 'via-host'), threads: 2 });
    assert.ok(r.status === 'ok', JSON.stringify(r));
    await runRecipeFileAll(recipe, { out: path.join(dir, 'in-process'), threads: 2 });
    assertSameTree(path.join(dir, 'via-host'), path.join(dir, 'in-process'));
    assert.deepEqual(partials(dir), []);

    const kept = await client.merge({ recipe, out: path.join(dir, 'kept'), intermediateDir: path.join(dir, 'steps'), threads: 2 });
    assert.ok(kept.status === 'ok', JSON.stringify(kept));
    assertSameTree(path.join(dir, 'kept'), path.join(dir, 'in-process'));
    assert.ok(fs.existsSync(path.join(dir, 'steps', 'mix', 'model.safetensors')));
  });

  it('cancelling during the first merge leaves no output and no intermediate folder', async () => {
    const dir = tempDir('chatvec-host-multi-cancel-');
    const recipe = writeMulti(dir, 'small');
    const client = newClient();
    const seen: ProgressParams[] = [];
    const abort = new AbortController();
    const job = client.merge({ recipe, out: path.join(dir, 'out'), threads: 1 }, { jobId: 'multi', cancellation: abort.signal, onProgress: (p) => seen.push(p) });
    await waitFor(() => seen.some((p) => p.source === 'job' && p.phase === 'merge' && p.done > 0), 30_000, 'the first merge to start writing');
    abort.abort();
    assert.deepEqual(await job, { status: 'cancelled' });
    assert.deepEqual(
      fs.readdirSync(dir).filter((n) => n !== 'multi.yaml'),
      [],
      'nothing but the recipe',
    );
  });
});
