/**
 * The diff-only start path (dist/cli.js → dist/cliDiff.js, src/cli/diffMain.ts) answers exactly
 * as the full program (dist/cliMain.js, src/cli/main.ts), and the worker threads it starts early
 * are the ones its job uses (src/core/io/workerPool.ts prestartWorkers).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateDemoTrio } from '../../src/core/demo/generator';
import { WorkerPool, defaultWorkerScript, prestartWorkers } from '../../src/core/io/workerPool';
import { threadsArgument } from '../../src/cli/options';
import { tempDir } from './support/diffReference';

const repo = path.resolve(__dirname, '../..');
const root = tempDir('chatvec-diffstart-');
after(() => fs.rmSync(root, { recursive: true, force: true }));

function run(bundle: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(repo, 'dist', bundle), ...args], {
    encoding: 'utf8',
    env: { ...process.env, XDG_CACHE_HOME: path.join(root, 'cache'), CHATVEC_WORKER_SCRIPT: '' },
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Timings taken out: the scan's time, progress rates, the JSON's seconds. */
function scrub(s: string): string {
  return s
    .replace(/scanned in .*/, 'scanned in …')
    .replace(/[0-9.]+ \S*B\/s/g, '… B/s')
    .replace(/"seconds": [0-9.e-]+/, '"seconds": 0');
}

/** The same answer from the start path and from the full program. */
function assertSameAnswer(args: string[]): void {
  const fast = run('cli.js', ...args);
  const full = run('cliMain.js', ...args);
  assert.equal(fast.status, full.status, `exit status of chatvec ${args.join(' ')}`);
  assert.equal(scrub(fast.stdout), scrub(full.stdout), `stdout of chatvec ${args.join(' ')}`);
  assert.equal(scrub(fast.stderr), scrub(full.stderr), `stderr of chatvec ${args.join(' ')}`);
}

describe('chatvec diff start path', () => {
  let trio: ReturnType<typeof generateDemoTrio>;
  before(() => {
    const b = spawnSync(process.execPath, [path.join(repo, 'scripts/build.mjs')], { cwd: repo, encoding: 'utf8' });
    assert.equal(b.status, 0, b.stderr);
    trio = generateDemoTrio(path.join(root, 'demo'), 'tiny', 42);
  });

  it('dist/cli.js diff prints what the full program prints: table, JSON, errors, help', () => {
    assertSameAnswer(['diff', trio.base, trio.chat, '--no-cache', '--by', 'module']);
    assertSameAnswer(['diff', trio.base, trio.chat, '--no-cache', '--json', '--threads', '1']);
    assertSameAnswer(['diff', trio.base, trio.chat, '--no-cache', '--csv', '--threads=3']);
    assertSameAnswer(['diff', '--help']);
    assertSameAnswer(['diff']);
    assertSameAnswer(['diff', trio.base, trio.chat, '--threads', '0']);
    assertSameAnswer(['diff', trio.base, trio.chat, '--by', 'row']);
    assertSameAnswer(['diff', path.join(root, 'missing'), trio.chat]);
    assertSameAnswer(['diff', '--version']);
    const usage = run('cli.js', 'diff');
    assert.equal(usage.status, 2, 'a usage error exits with 2');
    assert.match(usage.stderr, /missing required argument 'a'/);
  });

  it('reads --threads as the parser does', () => {
    assert.equal(threadsArgument(['diff', 'a', 'b']), undefined);
    assert.equal(threadsArgument(['diff', 'a', '--threads', '3', 'b']), '3');
    assert.equal(threadsArgument(['diff', '--threads=5', 'a', '--threads', '2']), '2');
    assert.equal(threadsArgument(['diff', '--', '--threads', '2']), undefined);
  });
});

describe('prestartWorkers', () => {
  it('the next pool of the same script takes the started workers, and they run its tasks', async () => {
    const script = defaultWorkerScript();
    prestartWorkers(2, script);
    // A pool of another entry file started after them gets a later thread id.
    const probe = path.join(root, 'probe-worker.js');
    fs.writeFileSync(probe, "require('node:worker_threads').parentPort.on('message', () => {});\n");
    const other = new WorkerPool(1, probe);
    const later = other['slots'][0]!.worker.threadId;
    await other.close();
    const pool = new WorkerPool(2, script);
    try {
      const ids = pool['slots'].map((s) => s.worker.threadId);
      assert.ok(ids.every((id) => id < later), `pool threads ${ids.join(', ')} were started before thread ${later}`);
      await pool.broadcast({ kind: 'closeHandles' });
    } finally {
      await pool.close();
    }
  });

  it('workers no pool took do not keep the process alive', () => {
    const code = `const { prestartWorkers } = require(${JSON.stringify(path.join(repo, 'src/core/io/workerPool.ts'))}); prestartWorkers(2); console.log('done');`;
    const t0 = performance.now();
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], { cwd: repo, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'done');
    assert.ok(performance.now() - t0 < 30_000);
  });

  it('a script that cannot start leaves no worker behind for the pool', { timeout: 30_000 }, async () => {
    const missing = path.join(root, 'no-such-worker.js');
    prestartWorkers(1, missing);
    await new Promise((r) => setTimeout(r, 2000));
    const pool = new WorkerPool(1, missing);
    try {
      await assert.rejects(pool.broadcast({ kind: 'closeHandles' }), /worker thread failed/);
    } finally {
      await pool.close();
    }
  });
});
