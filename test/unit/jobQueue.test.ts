/** The task host's job queue: FIFO admission under a concurrency limit, positions, withdrawal. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChatVecError } from '../../src/core/errors';
import { JobQueue } from '../../src/taskhost/jobQueue';

const tick = () => new Promise((r) => setImmediate(r));

describe('JobQueue', () => {
  it('admits one job at a time by default, in arrival order, and reports positions', async () => {
    const q = new JobQueue();
    const positions: Record<string, number[]> = { a: [], b: [], c: [] };
    const started: string[] = [];
    const releases = new Map<string, () => void>();
    for (const id of ['a', 'b', 'c']) {
      void q.acquire(id, (p) => positions[id]!.push(p)).then((release) => {
        started.push(id);
        releases.set(id, release);
      });
    }
    await tick();
    assert.deepEqual(started, ['a']);
    assert.deepEqual(q.runningIds, ['a']);
    assert.deepEqual(q.waitingIds, ['b', 'c']);
    releases.get('a')!();
    releases.get('a')!(); // twice is harmless: it must not free a second slot
    await tick();
    assert.deepEqual(started, ['a', 'b']);
    releases.get('b')!();
    await tick();
    assert.deepEqual(started, ['a', 'b', 'c']);
    assert.deepEqual(positions, { a: [], b: [1], c: [2, 1] });
  });

  it('withdraws a waiting job with CancelledError and moves the others up', async () => {
    const q = new JobQueue(1);
    await q.acquire('run');
    const pos: number[] = [];
    const b = q.acquire('b');
    const c = q.acquire('c', (p) => pos.push(p));
    assert.equal(q.withdraw('b'), true);
    await assert.rejects(b, (e: unknown) => e instanceof ChatVecError && e.code === 'Cancelled');
    assert.equal(q.withdraw('run'), false, 'a running job is not withdrawn');
    assert.deepEqual(pos, [2, 1]);
    assert.deepEqual(q.waitingIds, ['c']);
    void c;
  });

  it('raising the limit starts waiting jobs; duplicate ids and bad limits are refused', async () => {
    const q = new JobQueue(1);
    await q.acquire('a');
    let bStarted = false;
    void q.acquire('b').then(() => (bStarted = true));
    await tick();
    assert.equal(bStarted, false);
    q.setLimit(2);
    await tick();
    assert.equal(bStarted, true);
    await assert.rejects(q.acquire('a'), /already queued or running/);
    assert.throws(() => q.setLimit(0), /whole number ≥ 1/);
    assert.throws(() => new JobQueue(1.5), /whole number ≥ 1/);
  });
});
