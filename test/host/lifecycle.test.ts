/**
 * Cancellation and the life of the host process, with real processes: cancel mid-job (by id, by
 * AbortSignal → $/cancelRequest, by dispose) leaves nothing behind; SIGKILL during a job is
 * reported and the next request gets a new host; a crash loop stops the restarts; the host exits
 * when its parent dies.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import type { ProgressParams } from '../../src/protocol/taskHost';
import type { TaskHostClient } from '../../src/taskhost/client';
import { type TaskHostCrash, TaskHostCrashedError } from '../../src/taskhost/clientErrors';
import { HOST_SCRIPT, ROOT, ensureBundles, newClient, partials, pidAlive, slowApplyOptions, tempDir, waitFor } from './support';

before(() => ensureBundles());

/**
 * Resolves at the engine's first progress event of `jobId`: the job is then past its checks, its
 * temporary output folder exists and chunks are being written.
 */
function engineStarted(client: TaskHostClient, jobId: string, pred: (p: ProgressParams) => boolean = () => true): Promise<ProgressParams> {
  return new Promise((resolve) => {
    const sub = client.onProgress(jobId, (p) => {
      if (p.source === 'job' && pred(p)) {
        sub.dispose();
        resolve(p);
      }
    });
  });
}

/** `started`, or a clear failure if the job ends first (the test job is then too fast for this machine). */
async function ahead<T>(started: Promise<ProgressParams>, job: Promise<T>): Promise<ProgressParams> {
  const r = await Promise.race([started, job.then((j) => ({ ended: j }))]);
  if ('ended' in r) assert.fail(`the job ended (${JSON.stringify(r.ended)}) before the expected progress event`);
  return r;
}

describe('cancellation', () => {
  it('cancel(jobId) stops a running apply within two seconds and removes its temporary output', async () => {
    const dir = tempDir('chatvec-host-cancel-');
    const client = newClient();
    const out = path.join(dir, 'out');
    // Halfway: an event with some but not all bytes done.
    const started = engineStarted(client, 'c1', (p) => p.done > 0);
    // 512 terms: ~2 s, so the first event with bytes done (after 250 ms) leaves ample time to cancel.
    const job = client.apply(slowApplyOptions(out, 512), { jobId: 'c1' });
    const mid = await ahead(started, job);
    assert.ok(mid.done > 0 && mid.done < mid.total, `mid-job: ${mid.done} of ${mid.total}`);
    assert.equal(partials(dir).length, 1, 'mid-job: the temporary folder exists');
    const t0 = performance.now();
    assert.deepEqual(await client.cancel('c1'), { state: 'running' });
    assert.deepEqual(await job, { status: 'cancelled' });
    assert.ok(performance.now() - t0 < 2000, `cancelled in ${Math.round(performance.now() - t0)} ms`);
    assert.ok(!fs.existsSync(out), 'no output');
    assert.deepEqual(partials(dir), [], 'no temporary folder');
    assert.deepEqual((await client.status()).jobs, [], 'the host forgot the job');
    assert.deepEqual(await client.cancel('c1'), { state: 'unknown' });
  });

  it('an AbortSignal cancels through $/cancelRequest', async () => {
    const dir = tempDir('chatvec-host-abort-');
    const client = newClient();
    const ac = new AbortController();
    const started = engineStarted(client, 'c2');
    const job = client.apply(slowApplyOptions(path.join(dir, 'out')), { jobId: 'c2', cancellation: ac.signal });
    await started;
    ac.abort();
    assert.deepEqual(await job, { status: 'cancelled' });
    assert.deepEqual(fs.readdirSync(dir), [], 'nothing left');
    // An already-aborted signal never starts the job.
    assert.deepEqual(await client.apply(slowApplyOptions(path.join(dir, 'never')), { cancellation: ac.signal }), { status: 'cancelled' });
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('a cancellation token (VS Code shape) cancels too', async () => {
    const dir = tempDir('chatvec-host-token-');
    const client = newClient();
    const listeners: (() => void)[] = [];
    const token = { isCancellationRequested: false, onCancellationRequested: (l: () => void) => (listeners.push(l), { dispose() {} }) };
    const started = engineStarted(client, 'c3');
    const job = client.apply(slowApplyOptions(path.join(dir, 'out')), { jobId: 'c3', cancellation: token });
    await started;
    token.isCancellationRequested = true;
    for (const l of listeners) l();
    assert.deepEqual(await job, { status: 'cancelled' });
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('dispose() during a job cancels it, cleans up and ends the host process', async () => {
    const dir = tempDir('chatvec-host-dispose-');
    const client = newClient();
    const started = engineStarted(client, 'c4');
    const job = client.apply(slowApplyOptions(path.join(dir, 'out')), { jobId: 'c4' });
    await started;
    const pid = client.pid!;
    await client.dispose();
    assert.deepEqual(await job, { status: 'cancelled' });
    assert.ok(!pidAlive(pid), 'the host process is gone');
    assert.deepEqual(fs.readdirSync(dir), []);
    await assert.rejects(client.inspect(dir), /disposed/);
  });
});

describe('stopping', () => {
  it('dispose() kills a host that does not answer shutdown', async () => {
    const client = newClient({ shutdownTimeoutMs: 300 });
    await client.start();
    const pid = client.pid!;
    process.kill(pid, 'SIGSTOP');
    const t0 = performance.now();
    await client.dispose();
    assert.ok(performance.now() - t0 < 4000, 'dispose gave up waiting in time');
    await waitFor(() => !pidAlive(pid), 3000, 'the stopped host to be killed');
  });
});

describe('crashes', () => {
  it('SIGKILL during a job: the job fails naming the crash, and the next request starts a new host', async () => {
    const dir = tempDir('chatvec-host-kill-');
    const client = newClient();
    const crashes: TaskHostCrash[] = [];
    client.onCrash((c) => crashes.push(c));
    const started = engineStarted(client, 'k1');
    const job = client.apply(slowApplyOptions(path.join(dir, 'out')), { jobId: 'k1' });
    await started;
    const pid = client.pid!;
    process.kill(pid, 'SIGKILL');
    await assert.rejects(job, (e: unknown) => {
      assert.ok(e instanceof TaskHostCrashedError, String(e));
      assert.match(e.message, /task host crashed \(killed by SIGKILL\) while running apply k1/);
      assert.equal(e.crashLoop, false);
      return true;
    });
    assert.equal(crashes.length, 1);
    assert.deepEqual(crashes[0]!.jobIds, ['k1']);
    assert.equal(crashes[0]!.signal, 'SIGKILL');
    assert.equal(crashes[0]!.willRestart, true);
    assert.equal(client.pid, undefined, 'no host until the next request');
    // Nothing that looks like a finished output; the killed job's temporary folder is all that is left.
    assert.ok(!fs.existsSync(path.join(dir, 'out')));

    const starts: number[] = [];
    client.onStart((s) => starts.push(s.pid));
    const st = await client.status();
    assert.notEqual(st.pid, pid, 'a new host');
    assert.deepEqual(starts, [st.pid], 'onStart reports the new host');
    const r = await client.apply(slowApplyOptions(path.join(dir, 'again'), 4), { jobId: 'k1' });
    assert.equal(r.status, 'ok', 'the job id is free again and the new host works');
  });

  it('crash-loop protection: after 3 crashes within a minute it stops restarting, until restart()', async () => {
    const client = newClient();
    const crashes: TaskHostCrash[] = [];
    client.onCrash((c) => crashes.push(c));
    for (let i = 1; i <= 3; i++) {
      await client.start();
      process.kill(client.pid!, 'SIGKILL');
      await waitFor(() => crashes.length === i, 5000, `crash ${i}`);
    }
    assert.deepEqual(
      crashes.map((c) => c.willRestart),
      [true, true, false],
    );
    await assert.rejects(client.status(), (e: unknown) => {
      assert.ok(e instanceof TaskHostCrashedError);
      assert.equal(e.crashLoop, true);
      assert.match(e.message, /crashed 3 times within 60 s \(last: killed by SIGKILL\); not restarting it/);
      return true;
    });
    assert.equal(client.pid, undefined, 'no host was started');
    await client.restart();
    assert.equal((await client.status()).pid, client.pid);
  });

  it('a host that dies at start is reported with its stderr', async () => {
    const dir = tempDir('chatvec-host-bad-');
    const script = path.join(dir, 'broken.js');
    fs.writeFileSync(script, "process.stderr.write('boom: cannot start\\n'); process.exit(3);\n");
    const client = newClient({ hostScript: script, crashLoop: { maxCrashes: 2, windowMs: 60_000 } });
    await assert.rejects(client.start(), (e: unknown) => e instanceof TaskHostCrashedError && /crashed \(exit code 3\) while starting/.test(e.message) && /boom: cannot start/.test(e.details ?? ''));
    await assert.rejects(client.start(), (e: unknown) => e instanceof TaskHostCrashedError && e.crashLoop);
    await assert.rejects(client.start(), /not restarting it/);
  });
});

describe('process life', () => {
  it('exits when its parent process dies mid-job, cancelling the job (no orphan, no leftovers)', async () => {
    const dir = tempDir('chatvec-host-orphan-');
    const options = slowApplyOptions(path.join(dir, 'out'), 1024);
    // A parent that forks the host, starts a long job, reports the host's pid once the engine is
    // writing, and is then SIGKILLed (no chance to clean up). Worker threads keep the host's event
    // loop busy, so only the host's own watch can end it before the job would finish.
    const parentCode = `
      const { fork } = require('node:child_process');
      const rpc = require('vscode-jsonrpc/node');
      const host = fork(process.argv[1], [], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], execArgv: [], env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } });
      const conn = rpc.createMessageConnection(new rpc.IPCMessageReader(host), new rpc.IPCMessageWriter(host));
      let said = false;
      conn.onNotification('progress', (p) => {
        if (p.source === 'job' && !said) { said = true; process.stdout.write(host.pid + '\\n'); }
      });
      conn.listen();
      conn.sendRequest('apply', { jobId: 'orphan', options: JSON.parse(process.argv[2]) }).then((r) => process.stdout.write('finished ' + JSON.stringify(r) + '\\n'));
      setInterval(() => {}, 1000);
    `;
    const parent = spawn(process.execPath, ['-e', parentCode, HOST_SCRIPT, JSON.stringify(options)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, CHATVEC_WORKER_SCRIPT: '' } });
    const hostPid = await new Promise<number>((resolve, reject) => {
      parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      parent.once('exit', () => reject(new Error('the parent exited early')));
    });
    assert.ok(hostPid > 0 && pidAlive(hostPid), 'the host runs the job');
    assert.equal(partials(dir).length, 1, 'the job is writing');
    parent.kill('SIGKILL');
    await waitFor(() => !pidAlive(hostPid), 5000, `host ${hostPid} to exit after its parent died`);
    assert.deepEqual(fs.readdirSync(dir), [], 'the job was cancelled and cleaned up, not finished');
  });

  it('refuses to run without an IPC channel', async () => {
    const child = spawn(process.execPath, [HOST_SCRIPT], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    assert.equal(code, 2);
    assert.match(err, /child_process\.fork/);
  });
});
