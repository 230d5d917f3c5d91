/**
 * The demo generator and row statistics through the built task host: `createDemo` writes the bytes
 * the in-process generateDemoTrio writes (on a worker thread, with per-tensor progress), reuses a
 * matching trio at once, stops within 2 s when cancelled and leaves nothing behind, and refuses
 * malformed parameters; `rowStats` gives what an independent float64 reading of the file gives.
 */
// First: outputs (the demo models' .chatvec-output.json) record the tool version; see toolVersion.ts.
import './toolVersion';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { generateDemoTrio } from '../../src/core/demo/generator';
import { ChatVecError } from '../../src/core/errors';
import type { CreateDemoOptions, ProgressParams } from '../../src/protocol/taskHost';
import { assertSameTree, demo, ensureBundles, newClient, partials, tempDir } from './support';

before(() => ensureBundles());

function isCode(code: string, re?: RegExp) {
  return (e: unknown) => e instanceof ChatVecError && e.code === code && (!re || re.test(e.message));
}

/** Tensors of a single .safetensors file, parsed here from the bytes (not with the project's reader). */
function tensorBytes(file: string, name: string): { dtype: string; shape: number[]; data: Buffer } {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const t = header[name];
  assert.ok(t, `${name} in ${file}`);
  return { dtype: t.dtype, shape: t.shape, data: buf.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]) };
}

/** Row statistics in float64 from raw BF16 bits. */
function referenceRow(data: Buffer, cols: number, row: number): { norm: number; maxAbs: number } {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  let sum = 0;
  let maxAbs = 0;
  for (let j = 0; j < cols; j++) {
    u[0] = data.readUInt16LE((row * cols + j) * 2) << 16;
    const v = f[0]!;
    sum += v * v;
    maxAbs = Math.max(maxAbs, Math.abs(v));
  }
  return { norm: Math.sqrt(sum), maxAbs };
}

describe('task host createDemo', () => {
  it('writes the same bytes as the in-process generateDemoTrio, with per-tensor progress, then reuses them at once', async () => {
    const dir = tempDir('chatvec-host-demo-');
    const client = newClient();
    const seen: ProgressParams[] = [];
    const r = await client.createDemo({ dir: path.join(dir, 'host'), preset: 'tiny', seed: 7 }, { onProgress: (p) => seen.push(p) });
    assert.equal(r.status, 'ok');
    if (r.status !== 'ok') return;
    const expected = generateDemoTrio(path.join(dir, 'ref'), 'tiny', 7);
    assert.equal(r.result.reused, false);
    for (const role of ['base', 'chat', 'cp'] as const) {
      assert.equal(r.result[role], path.join(dir, 'host', `tiny-${role}`));
      assertSameTree(r.result[role], expected[role]);
    }
    assert.deepEqual(fs.readFileSync(path.join(dir, 'host', '.chatvec-demo-tiny.json')), fs.readFileSync(path.join(dir, 'ref', '.chatvec-demo-tiny.json')));
    assert.deepEqual(partials(path.join(dir, 'host')), []);
    // Progress: the job's own events, in bytes, ending at the total, naming each model.
    const job = seen.filter((p) => p.source === 'job');
    assert.ok(job.length >= 4, `${job.length} job progress events`);
    assert.ok(job.every((p) => p.kind === 'createDemo' && p.unit === 'bytes'));
    const last = job.at(-1)!;
    const modelBytes = ['base', 'chat', 'cp'].reduce((n, role) => n + fs.readdirSync(expected[role as 'base']).filter((f) => f.endsWith('.safetensors')).reduce((m, f) => m + fs.statSync(path.join(expected[role as 'base'], f)).size, 0), 0);
    assert.equal(last.done, last.total);
    assert.ok(last.total > 0.95 * modelBytes && last.total < modelBytes, `total ${last.total} of ${modelBytes} file bytes (tensor data without headers)`);
    for (const role of ['base', 'chat', 'cp']) assert.ok(job.some((p) => p.message?.includes(`${role} model`)), `a progress message names the ${role} model`);

    // Reuse: a matching trio is returned at once and not rewritten.
    const config = path.join(dir, 'host', 'tiny-chat', 'config.json');
    const mtime = fs.statSync(config).mtimeMs;
    const t0 = Date.now();
    const again = await client.createDemo({ dir: path.join(dir, 'host'), preset: 'tiny', seed: 7 });
    assert.ok(Date.now() - t0 < 1000, `reuse took ${Date.now() - t0} ms`);
    assert.deepEqual(again, { status: 'ok', result: { ...r.result, reused: true } });
    assert.equal(fs.statSync(config).mtimeMs, mtime, 'not rewritten');
    // Another seed is another trio: regenerated.
    const other = await client.createDemo({ dir: path.join(dir, 'host'), preset: 'tiny', seed: 8 });
    assert.ok(other.status === 'ok' && !other.result.reused);
  });

  it('stops within 2 s when cancelled mid-way and leaves neither models nor partial folders', async () => {
    const client = newClient();
    await client.start();
    let cancelledRuns = 0;
    // The small trio takes about half a second; the cancel is sent when the chat model starts, so
    // base is complete (and must be removed) and chat is being written. Should the machine be so
    // fast that the job ends first, try again — but it must be cancelled at least once.
    for (let attempt = 0; attempt < 4 && cancelledRuns === 0; attempt++) {
      const dir = tempDir('chatvec-host-demo-cancel-');
      const abort = new AbortController();
      let cancelAt = 0;
      const r = await client.createDemo(
        { dir, preset: 'small' },
        {
          cancellation: abort.signal,
          onProgress: (p) => {
            if (!cancelAt && p.source === 'job' && p.message?.includes('chat model')) {
              cancelAt = Date.now();
              abort.abort();
            }
          },
        },
      );
      assert.ok(cancelAt > 0, 'the chat model started');
      if (r.status === 'ok') continue;
      cancelledRuns++;
      assert.deepEqual(r, { status: 'cancelled' });
      const took = Date.now() - cancelAt;
      assert.ok(took < 2000, `stopped ${took} ms after the cancel`);
      assert.deepEqual(fs.readdirSync(dir), [], 'no model folder, partial folder or marker is left');
    }
    assert.equal(cancelledRuns, 1, 'a run was cancelled');
    // The host lives on, and its next demo runs on a fresh worker.
    const dir = tempDir('chatvec-host-demo-after-');
    const r = await client.createDemo({ dir, preset: 'tiny' });
    assert.equal(r.status, 'ok');
    assertSameTree(path.join(dir, 'tiny-cp'), demo('tiny').cp);
  });

  it('refuses malformed parameters with InvalidArgument and keeps running', async () => {
    const dir = tempDir('chatvec-host-demo-bad-');
    const client = newClient();
    const bad = (o: unknown) => client.createDemo(o as CreateDemoOptions);
    await assert.rejects(bad({ dir, preset: 'huge' }), isCode('InvalidArgument', /preset must be one of tiny, small, 1b/));
    await assert.rejects(bad({ preset: 'tiny' }), isCode('InvalidArgument', /dir is missing/));
    await assert.rejects(bad({ dir, preset: 'tiny', seed: 1.5 }), isCode('InvalidArgument', /seed must be a whole number/));
    await assert.rejects(bad({ dir, preset: 'tiny', threads: 2 }), isCode('InvalidArgument', /unknown field "threads"/));
    assert.deepEqual(fs.readdirSync(dir), []);
    assert.ok((await client.status()).pid);
  });
});

describe('task host rowStats', () => {
  it('gives each row the L2 norm and max |value| of an independent float64 reading', async () => {
    const t = demo('tiny');
    const client = newClient();
    const file = path.join(t.cp, 'model.safetensors');
    const emb = tensorBytes(file, 'model.embed_tokens.weight');
    const [count, cols] = emb.shape as [number, number];
    const rows = [509, 510, 511, 0, 3, 100, count - 1, 509];
    const r = await client.rowStats({ path: t.cp, rows });
    assert.equal(r.tensor, 'model.embed_tokens.weight', 'the input embedding by default');
    assert.equal(r.dtype, emb.dtype);
    assert.deepEqual(r.shape, emb.shape);
    assert.deepEqual(r.rows.map((x) => x.row), rows);
    for (const x of r.rows) {
      const ref = referenceRow(emb.data, cols, x.row);
      assert.ok(Math.abs(x.norm - ref.norm) <= 1e-12 * ref.norm, `row ${x.row}: norm ${x.norm} vs ${ref.norm}`);
      assert.equal(x.maxAbs, ref.maxAbs, `row ${x.row}: maxAbs`);
      assert.equal(x.nonFinite, 0);
    }
    // The demo's cp never trained its special tokens: their rows are near zero.
    const ordinary = r.rows.find((x) => x.row === 3)!.norm;
    for (const x of r.rows.filter((y) => y.row >= 509 && y.row <= 511)) assert.ok(x.norm < 0.02 * ordinary, `row ${x.row} is near zero`);

    // A named tensor in a sharded checkpoint.
    const small = demo('small');
    const head = await client.rowStats({ path: small.chat, tensor: 'lm_head.weight', rows: [7] });
    const index = JSON.parse(fs.readFileSync(path.join(small.chat, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    const lm = tensorBytes(path.join(small.chat, index.weight_map['lm_head.weight']!), 'lm_head.weight');
    const ref = referenceRow(lm.data, lm.shape[1]!, 7);
    assert.equal(head.tensor, 'lm_head.weight');
    assert.ok(Math.abs(head.rows[0]!.norm - ref.norm) <= 1e-12 * ref.norm);
    assert.equal(head.rows[0]!.maxAbs, ref.maxAbs);
  });

  it('refuses rows out of range, unknown tensors and malformed parameters', async () => {
    const t = demo('tiny');
    const client = newClient();
    await assert.rejects(client.rowStats({ path: t.base, rows: [512] }), isCode('InvalidArgument', /row 512 is outside/));
    await assert.rejects(client.rowStats({ path: t.base, tensor: 'no.such.weight', rows: [0] }), isCode('InvalidArgument', /no tensor named/));
    await assert.rejects(client.rowStats({ path: t.base, rows: [] }), isCode('InvalidArgument', /rows must be a list of 1 to 4096/));
    await assert.rejects(client.rowStats({ path: t.base, rows: [-1] }), isCode('InvalidArgument', /rows must be/));
    await assert.rejects(client.rowStats({ path: t.base, rows: [0], extra: 1 } as never), isCode('InvalidArgument', /unknown field "extra"/));
    await assert.rejects(client.rowStats({ path: path.join(t.root, 'missing'), rows: [0] }), (e: unknown) => e instanceof ChatVecError && e.code !== 'Internal');
    assert.ok((await client.status()).pid);
  });
});
