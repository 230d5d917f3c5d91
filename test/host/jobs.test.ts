/**
 * The task host from the built bundle, driven through TaskHostClient: inspect, diff, extract and
 * apply give what the in-process engine gives (apply and extract byte for byte), errors keep their
 * codes, progress and logs are tagged, and heavy jobs queue one at a time.
 */
import { PACKAGE_VERSION } from './toolVersion';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { openCheckpoint } from '../../src/core/checkpoint/checkpoint';
import { inspectReport } from '../../src/core/checkpoint/inspect';
import { runApply } from '../../src/core/engine/apply';
import { runExtract } from '../../src/core/engine/extract';
import { ChatVecError } from '../../src/core/errors';
import { runDiff } from '../../src/core/stats/diff';
import { TOOL_VERSION } from '../../src/core/version';
import type { LogParams, ProgressParams } from '../../src/protocol/taskHost';
import { assertSameTree, demo, ensureBundles, newClient, partials, slowApplyOptions, tempDir } from './support';
import { formatVerdict } from '../../src/protocol/verdictText';

before(() => ensureBundles());

describe('task host jobs', () => {
  it('inspects a checkpoint like the in-process code', async () => {
    const t = demo('tiny');
    const client = newClient();
    const report = await client.inspect(t.base);
    assert.deepEqual(report, JSON.parse(JSON.stringify(inspectReport(openCheckpoint(t.base)))));
    assert.equal(report.tensorCount, 39);
    assert.ok(client.pid && client.pid !== process.pid, 'runs in another process');
  });

  it('diffs two checkpoints like the in-process engine, with progress', async () => {
    const t = demo('tiny');
    const client = newClient();
    const events: ProgressParams[] = [];
    const r = await client.diff({ a: t.base, b: t.chat }, { jobId: 'diff-1', onProgress: (p) => events.push(p) });
    assert.equal(r.status, 'ok');
    assert.ok(r.status === 'ok');
    const local = await runDiff({ a: t.base, b: t.chat });
    const strip = (x: object) => JSON.parse(JSON.stringify({ ...x, seconds: 0 })) as unknown;
    assert.deepEqual(strip(r.result), strip(local));
    assert.match(formatVerdict(r.result.lineage), /fine-tuned/);
    assert.ok(events.length >= 2, 'progress events arrive');
    assert.ok(events.every((e) => e.jobId === 'diff-1' && e.kind === 'diff' && e.state === 'running'));
    const job = events.filter((e) => e.source === 'job');
    assert.ok(job.length > 0 && job.at(-1)!.done === job.at(-1)!.total, 'the engine reports completion');
  });

  it('applies (fused) with the same bytes as the in-process engine', async () => {
    assert.equal(TOOL_VERSION, PACKAGE_VERSION, 'test setup: core sees the bundle version');
    const t = demo('tiny');
    const dir = tempDir('chatvec-host-apply-');
    const client = newClient();
    const options = { target: t.cp, base: t.base, chats: [t.chat], ratios: [0.5], skipEmbed: true, specialTokens: [[509, 509]] as [number, number][] };
    const r = await client.apply({ ...options, out: path.join(dir, 'via-host') });
    assert.ok(r.status === 'ok', JSON.stringify(r));
    assert.match(r.result.backend, /cpu/, 'the host reports the backend');
    const local = await runApply({ ...options, out: path.join(dir, 'in-process') });
    assert.equal(r.result.bytesWritten, local.bytesWritten);
    assertSameTree(path.join(dir, 'via-host'), path.join(dir, 'in-process'));
  });

  it('extracts a chat vector with the same bytes, then applies it two-step', async () => {
    const t = demo('tiny');
    const dir = tempDir('chatvec-host-extract-');
    const client = newClient();
    const r = await client.extract({ base: t.base, chat: t.chat, out: path.join(dir, 'vec-host') });
    assert.ok(r.status === 'ok');
    await runExtract({ base: t.base, chat: t.chat, out: path.join(dir, 'vec-local') });
    assertSameTree(path.join(dir, 'vec-host'), path.join(dir, 'vec-local'));
    const a = await client.apply({ target: t.cp, vectors: [path.join(dir, 'vec-host')], skipEmbed: true, out: path.join(dir, 'two-step') });
    assert.ok(a.status === 'ok');
    assert.equal(a.result.tensorCount, 39);
  });

  it('reports engine failures with their codes and keeps serving', async () => {
    const t = demo('tiny');
    const dir = tempDir('chatvec-host-errors-');
    const client = newClient();
    await assert.rejects(client.inspect(path.join(dir, 'missing')), (e: unknown) => e instanceof ChatVecError && e.code === 'BadCheckpoint' && /no such file/.test(e.message));
    await assert.rejects(client.apply({ target: t.cp, base: t.base, chats: [t.chat], out: path.join(dir, 'o') }), (e: unknown) => e instanceof ChatVecError && e.code === 'ShapeMismatch');
    fs.mkdirSync(path.join(dir, 'exists'));
    await assert.rejects(client.extract({ base: t.base, chat: t.chat, out: path.join(dir, 'exists') }), (e: unknown) => e instanceof ChatVecError && e.code === 'OutputExists');
    // The output-path rules hold behind the task host too (the extension's "Replace it?" dialog
    // sends overwrite: true): an input is never replaced, nor a folder the tool did not write.
    const before = fs.readdirSync(t.chat).sort();
    await assert.rejects(client.extract({ base: t.base, chat: t.chat, out: t.chat, overwrite: true }), (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument' && /it is an input/.test(e.message));
    await assert.rejects(client.apply({ target: t.cp, base: t.base, chats: [t.chat], skipEmbed: true, out: path.dirname(t.cp), overwrite: true }), (e: unknown) => e instanceof ChatVecError && /contains an input/.test(e.message));
    fs.writeFileSync(path.join(dir, 'exists', 'mine.txt'), 'keep');
    await assert.rejects(client.extract({ base: t.base, chat: t.chat, out: path.join(dir, 'exists'), overwrite: true }), (e: unknown) => e instanceof ChatVecError && e.code === 'OutputExists' && /not written by chatvec/.test(e.message));
    assert.deepEqual(fs.readdirSync(t.chat).sort(), before);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'exists')), ['mine.txt']);
    const pid = client.pid;
    assert.equal((await client.status()).pid, pid, 'the same host answers after the failures');
    assert.deepEqual(partials(dir), []);
  });

  it('forwards job logs and host logs, tagged', async () => {
    const t = demo('tiny');
    const dir = tempDir('chatvec-host-logs-');
    const client = newClient();
    const logs: LogParams[] = [];
    client.onLog((l) => logs.push(l));
    const r = await client.extract({ base: t.base, chat: t.chat, out: path.join(dir, 'v') }, { jobId: 'logged' });
    assert.equal(r.status, 'ok');
    const mine = logs.filter((l) => l.jobId === 'logged');
    assert.ok(mine.some((l) => l.source === 'host' && /started/.test(l.message)), 'start line');
    assert.ok(mine.some((l) => l.source === 'host' && /finished .* on cpu/.test(l.message)), 'finish line names the backend');
  });

  it('queues heavy jobs one at a time and cancels a queued one', async () => {
    const dir = tempDir('chatvec-host-queue-');
    const client = newClient();
    await client.start();
    const seen: ProgressParams[] = [];
    client.onProgress((p) => seen.push(p));
    const first = client.apply(slowApplyOptions(path.join(dir, 'first')), { jobId: 'first' });
    const second = client.apply(slowApplyOptions(path.join(dir, 'second')), { jobId: 'second' });
    const third = client.apply(slowApplyOptions(path.join(dir, 'third')), { jobId: 'third' });
    // A live id cannot be reused.
    await assert.rejects(client.apply(slowApplyOptions(path.join(dir, 'dup')), { jobId: 'second' }), (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument' && /already in use/.test(e.message));
    const st = await client.status();
    assert.deepEqual(
      st.jobs.map((j) => [j.jobId, j.state]),
      [
        ['first', 'running'],
        ['second', 'queued'],
        ['third', 'queued'],
      ],
    );
    assert.deepEqual(await client.cancel('third'), { state: 'queued' });
    assert.deepEqual(await third, { status: 'cancelled' });
    const [a, b] = await Promise.all([first, second]);
    assert.equal(a.status, 'ok');
    assert.equal(b.status, 'ok');

    const of = (id: string) => seen.filter((p) => p.jobId === id);
    assert.deepEqual(
      of('second').filter((p) => p.state === 'queued').map((p) => p.queuePosition),
      [1],
      'second waited at position 1',
    );
    assert.deepEqual(
      of('third').filter((p) => p.state === 'queued').map((p) => p.queuePosition),
      [2],
      'third waited at position 2 and was cancelled before moving up',
    );
    assert.equal(of('third').filter((p) => p.state === 'running').length, 0, 'the cancelled queued job never ran');
    const firstDone = seen.lastIndexOf(of('first').at(-1)!);
    const secondStart = seen.findIndex((p) => p.jobId === 'second' && p.state === 'running');
    assert.ok(secondStart > firstDone, 'second started only after first finished');
    assert.ok(!fs.existsSync(path.join(dir, 'third')));
  });

  it('runs jobs side by side after configure({ concurrency: 2 })', async () => {
    const dir = tempDir('chatvec-host-conc-');
    const client = newClient();
    const st = await client.configure({ concurrency: 2 });
    assert.equal(st.concurrency, 2);
    const running = new Set<string>();
    let maxTogether = 0;
    client.onProgress((p) => {
      if (p.state === 'running') running.add(p.jobId);
      if (p.source === 'job' && p.done === p.total && p.total > 0) running.delete(p.jobId);
      maxTogether = Math.max(maxTogether, running.size);
    });
    const rs = await Promise.all([client.apply(slowApplyOptions(path.join(dir, 'a'))), client.apply(slowApplyOptions(path.join(dir, 'b')))]);
    assert.deepEqual(
      rs.map((r) => r.status),
      ['ok', 'ok'],
    );
    assert.equal(maxTogether, 2, 'both ran at once');
  });
});
