/**
 * The host's JSON-RPC surface seen through a raw connection (no client): malformed requests,
 * unknown methods and non-JSON-RPC messages get errors or are ignored, never a crash; `shutdown`
 * answers and exits; the parent-pid watch notices a dead process on its own.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { type ChildProcess, fork, spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCodes, ResponseError } from 'vscode-jsonrpc';
import { createMessageConnection, IPCMessageReader, IPCMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { JOB_FAILED_ERROR, ProgressNotification, ShutdownRequest, StatusRequest, type TaskHostErrorData } from '../../src/protocol/taskHost';
import { watchParent } from '../../src/taskhost/parentWatch';
import { HOST_SCRIPT, demo, ensureBundles, pidAlive, slowApplyOptions, tempDir, waitFor } from './support';

before(() => ensureBundles());

interface Raw {
  child: ChildProcess;
  conn: MessageConnection;
  stderr: () => string;
}

function rawHost(): Raw {
  const child = fork(HOST_SCRIPT, [], { execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { ...process.env, CHATVEC_WORKER_SCRIPT: '' } });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const conn = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
  conn.listen();
  after(() => {
    conn.dispose();
    child.kill('SIGKILL');
  });
  return { child, conn, stderr: () => err };
}

/** Sends a request and returns the error response it must get. */
async function errorOf(p: Promise<unknown>): Promise<ResponseError<TaskHostErrorData>> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ResponseError, `a JSON-RPC error response, got ${String(e)}`);
    return e as ResponseError<TaskHostErrorData>;
  }
  return assert.fail('expected an error response');
}

describe('raw protocol', () => {
  it('answers malformed requests with errors and keeps running', async () => {
    const { child, conn, stderr } = rawHost();
    const status = await conn.sendRequest(StatusRequest);
    assert.equal(status.pid, child.pid);
    const dir = tempDir('chatvec-host-raw-');
    const t = demo('tiny');

    let e = await errorOf(conn.sendRequest('apply', { jobId: 'x', options: { target: 5, out: path.join(dir, 'o') } }));
    assert.equal(e.code, ErrorCodes.InvalidParams);
    assert.equal(e.data?.code, 'InvalidArgument');
    assert.match(e.message, /apply: options\.target must be a non-empty string, got 5/);

    e = await errorOf(conn.sendRequest('apply', { jobId: 'x', options: { target: t.cp, out: path.join(dir, 'o'), ratio: [1] } }));
    assert.match(e.message, /unknown field "ratio"/);

    e = await errorOf(conn.sendRequest('extract', { jobId: 'x', options: { base: t.base, chat: t.chat } }));
    assert.match(e.message, /extract: options\.out is missing/);

    e = await errorOf(conn.sendRequest('diff', { jobId: '', options: { a: t.base } }));
    assert.match(e.message, /jobId must be/);

    e = await errorOf(conn.sendRequest('diff', { options: { a: t.base }, extra: true }));
    assert.match(e.message, /unknown parameter "extra"/);

    e = await errorOf(conn.sendRequest('extract', { jobId: 'x', options: { base: t.base, chat: t.chat, out: path.join(dir, 'o'), specialTokens: 'no' } }));
    assert.match(e.message, /unknown field "specialTokens"/);

    e = await errorOf(conn.sendRequest('apply', { jobId: 'x', options: { target: t.cp, out: path.join(dir, 'o'), specialTokens: [[1, -2]] } }));
    assert.match(e.message, /specialTokens must be a list of \[cpRow, chatRow\] pairs/);

    e = await errorOf(conn.sendRequest('configure', { concurrency: 0 }));
    assert.match(e.message, /concurrency must be a whole number ≥ 1/);

    e = await errorOf(conn.sendRequest('inspect', 'by', 'position'));
    assert.equal(e.code, ErrorCodes.InvalidParams, 'parameters by position are refused');

    e = await errorOf(conn.sendRequest('inspect'));
    assert.equal(e.code, ErrorCodes.InvalidParams, 'missing parameters are refused');

    e = await errorOf(conn.sendRequest('no/such/method', {}));
    assert.equal(e.code, ErrorCodes.MethodNotFound);

    // An engine failure (not a malformed request) has the job-failed code and the ChatVecError code.
    e = await errorOf(conn.sendRequest('inspect', { path: path.join(dir, 'nothing') }));
    assert.equal(e.code, JOB_FAILED_ERROR);
    assert.equal(e.data?.code, 'BadCheckpoint');

    // Not JSON-RPC at all, and an unknown notification.
    child.send({ hello: 'world' });
    child.send('garbage');
    await conn.sendNotification('no/such/notification', { x: 1 });

    const again = await conn.sendRequest(StatusRequest);
    assert.equal(again.pid, child.pid, 'the same process still answers');
    assert.equal(child.exitCode, null);
    assert.equal(child.signalCode, null);
    assert.doesNotMatch(stderr(), /uncaught|unhandled/i);
  });

  it('a valid job request works over the raw connection and cancel of an unknown id says so', async () => {
    const { conn } = rawHost();
    const t = demo('tiny');
    const r = await conn.sendRequest('diff', { jobId: 'raw-1', options: { a: t.base, b: t.chat } });
    assert.equal((r as { status: string }).status, 'ok');
    assert.deepEqual(await conn.sendRequest('cancel', { jobId: 'nope' }), { state: 'unknown' });
  });

  it('shutdown answers, then the process exits with code 0', async () => {
    const { child, conn } = rawHost();
    await conn.sendRequest(StatusRequest);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await conn.sendRequest(ShutdownRequest);
    assert.equal(await exited, 0);
  });

  it('exits when the client closes the IPC channel, cancelling its running job', async () => {
    const { child, conn } = rawHost();
    const dir = tempDir('chatvec-host-raw-disc-');
    const options = slowApplyOptions(path.join(dir, 'out'), 1024);
    const writing = new Promise<void>((resolve) =>
      conn.onNotification(ProgressNotification, (p) => {
        if (p.source === 'job') resolve();
      }),
    );
    void conn.sendRequest('apply', { jobId: 'disc', options }).catch(() => {});
    await writing;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.disconnect();
    assert.equal(await exited, 0);
    assert.deepEqual(fs.readdirSync(dir), [], 'cancelled and cleaned up, not finished');
  });
});

describe('parent watch', () => {
  it('polls the pid and reports a dead process within a couple of seconds', async () => {
    const victim = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await new Promise((r) => victim.once('spawn', r));
    let reason: string | null = null;
    const watch = watchParent((r) => (reason = r), victim.pid!, 200);
    after(() => watch.dispose());
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(reason, null, 'alive: no report');
    victim.kill('SIGKILL');
    await waitFor(() => !pidAlive(victim.pid!), 5000, 'the victim to die');
    await waitFor(() => reason !== null, 2000, 'the watch to notice');
    assert.match(reason!, new RegExp(`parent process ${victim.pid} exited`));
  });
});
