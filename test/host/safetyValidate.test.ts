/**
 * The task host's unknown-field check over a raw JSON-RPC connection (issue 11, item 14d): field
 * names that exist on every object's prototype (`constructor`, `toString`, `__proto__`,
 * `hasOwnProperty`, `valueOf`) are unknown fields like any other, refused before any work starts.
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCodes, ResponseError } from 'vscode-jsonrpc';
import { createMessageConnection, IPCMessageReader, IPCMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { StatusRequest, type TaskHostErrorData } from '../../src/protocol/taskHost';
import { HOST_SCRIPT, demo, ensureBundles, tempDir } from './support';

before(() => ensureBundles());

function rawHost(): MessageConnection {
  const child = fork(HOST_SCRIPT, [], { execArgv: [], stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env: { ...process.env, CHATVEC_WORKER_SCRIPT: '' } });
  const conn = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
  conn.listen();
  after(() => {
    conn.dispose();
    child.kill('SIGKILL');
  });
  return conn;
}

/** `fields` plus an own data property `key` (a literal `__proto__:` would set the prototype instead). */
function withField(fields: Record<string, unknown>, key: string): Record<string, unknown> {
  const o: Record<string, unknown> = { ...fields };
  Object.defineProperty(o, key, { value: 1, enumerable: true, configurable: true, writable: true });
  return o;
}

async function refused(p: Promise<unknown>, key: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ResponseError, `a JSON-RPC error response, got ${String(e)}`);
    const err = e as ResponseError<TaskHostErrorData>;
    assert.equal(err.code, ErrorCodes.InvalidParams, err.message);
    assert.equal(err.data?.code, 'InvalidArgument');
    assert.ok(err.message.includes(`unknown field "${key}"`), err.message);
    return;
  }
  assert.fail(`a field named "${key}" was accepted`);
}

const PROTOTYPE_NAMES = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'];

describe('unknown-field check (item 14d)', () => {
  it('refuses prototype names as fields of every request kind, and nothing is written', async () => {
    const conn = rawHost();
    const t = demo('tiny');
    const dir = tempDir('chatvec-host-proto-');
    const out = path.join(dir, 'out');
    for (const key of PROTOTYPE_NAMES) {
      await refused(conn.sendRequest('inspect', withField({ path: t.base }, key)), key);
      await refused(conn.sendRequest('configure', withField({ concurrency: 1 }, key)), key);
      await refused(conn.sendRequest('recipeCheck', withField({ text: '', recipePath: path.join(dir, 'r.yaml') }, key)), key);
      await refused(conn.sendRequest('diff', { jobId: `d-${key}`, options: withField({ a: t.base, b: t.chat }, key) }), key);
      await refused(conn.sendRequest('apply', { jobId: `a-${key}`, options: withField({ target: t.cp, base: t.base, chats: [t.chat], out }, key) }), key);
    }
    assert.equal(fs.existsSync(out), false, 'no job ran');
    assert.ok((await conn.sendRequest(StatusRequest)).pid > 0, 'the host still answers');
  });
});
