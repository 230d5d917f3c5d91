/**
 * WorkerPool's inline lane (src/core/io/workerPool.ts WorkerPoolOptions.inline): the calling
 * thread runs tasks beside the workers, each task exactly once, with the pool's error and stop
 * rules; and a diff computed that way is the same, bit for bit.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ChatVecError } from '../../src/core/errors';
import { WorkerPool, type WorkerTask } from '../../src/core/io/workerPool';
import { generateDemoTrio } from '../../src/core/demo/generator';
import { runDiff } from '../../src/core/stats/diff';
import { tempDir } from './support/diffReference';

const root = tempDir('chatvec-inline-');
after(() => fs.rmSync(root, { recursive: true, force: true }));

// A worker that answers each task with its number and the lane that ran it, a little later.
const echo = path.join(root, 'echo-worker.js');
fs.writeFileSync(
  echo,
  `const { parentPort } = require('node:worker_threads');
parentPort.on('message', (m) => { const t = Date.now() + 2; while (Date.now() < t); parentPort.postMessage({ id: m.id, ok: true, result: { n: m.task.n, lane: 'worker' } }); });
`,
);

type Echo = WorkerTask & { readonly n: number };
const tasks = (count: number): Echo[] => Array.from({ length: count }, (_, n) => ({ kind: 'echo', n }));
const spin = (ms: number) => {
  const t = Date.now() + ms;
  while (Date.now() < t);
};

describe('WorkerPool inline lane', () => {
  it('shares the tasks with the workers: each runs once, on both lanes', async () => {
    const pool = new WorkerPool(1, echo, {
      inline: (t) => {
        spin(2);
        return { n: (t as Echo).n, lane: 'inline' };
      },
    });
    const seen = new Map<number, string>();
    try {
      await pool.runAll<Echo, { n: number; lane: string }>(tasks(120), (t, r) => {
        assert.equal(r.n, t.n);
        assert.ok(!seen.has(t.n), `task ${t.n} ran twice`);
        seen.set(t.n, r.lane);
      });
    } finally {
      await pool.close();
    }
    assert.equal(seen.size, 120);
    const lanes = [...seen.values()];
    assert.ok(lanes.includes('inline') && lanes.includes('worker'), `lanes used: ${[...new Set(lanes)].join(', ')}`);
  });

  it('with no workers runs every task inline, run() included', async () => {
    const pool = new WorkerPool(0, echo, { inline: (t) => (t as Echo).n * 2 });
    try {
      assert.equal(pool['slots'].length, 0);
      const got: number[] = [];
      await pool.runAll<Echo, number>(tasks(10), (_t, r) => got.push(r));
      assert.deepEqual(got, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
      assert.equal(await pool.run<number>({ kind: 'echo', n: 21 } as Echo), 42);
    } finally {
      await pool.close();
    }
  });

  it('an error thrown inline fails the run and stops handing out tasks', async () => {
    let ran = 0;
    const pool = new WorkerPool(0, echo, {
      inline: (t) => {
        ran++;
        if ((t as Echo).n === 3) throw new ChatVecError('Io', 'x.safetensors: read failed');
        return null;
      },
    });
    try {
      await assert.rejects(pool.runAll(tasks(50), () => {}), (e: unknown) => e instanceof ChatVecError && e.code === 'Io');
      assert.equal(ran, 4);
    } finally {
      await pool.close();
    }
  });

  it('stops handing out tasks when asked to', async () => {
    let done = 0;
    const pool = new WorkerPool(1, echo, { inline: (t) => ({ n: (t as Echo).n, lane: 'inline' }) });
    try {
      await pool.runAll(tasks(500), () => done++, () => done >= 10);
    } finally {
      await pool.close();
    }
    assert.ok(done >= 10 && done < 20, `${done} tasks finished`);
  });

  it('a diff with the calling thread computing is the same, bit for bit', async () => {
    const trio = generateDemoTrio(path.join(root, 'demo'), 'tiny', 5);
    const scrub = (r: object) => JSON.stringify({ ...r, seconds: 0 });
    const workers = await runDiff({ a: trio.base, b: trio.chat, threads: 2 }, {}, { chunkElements: 4096, pieceElements: 1024 });
    const inline = await runDiff({ a: trio.base, b: trio.chat, threads: 2 }, {}, { chunkElements: 4096, pieceElements: 1024, callingThreadComputes: true });
    const alone = await runDiff({ a: trio.base, b: trio.chat, threads: 1 }, {}, { chunkElements: 4096, pieceElements: 1024, callingThreadComputes: true });
    assert.equal(scrub(inline), scrub(workers));
    assert.equal(scrub(alone), scrub(workers));
  });
});
