// Issue 11, item 4: a thread count above the machine's limit (min(256, 4 × cores)) is refused up
// front — by the built CLI with a one-line InvalidArgument error and exit code 2 before any output
// or temporary folder exists, and by the engine itself as the last line of defence. Before the
// limit, `--threads 100000` started 100 000 worker threads, grew to 12.9 GB and crashed V8,
// leaving a `.partial-*` folder behind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateDemoTrio, type DemoTrio } from '../../src/core/demo/generator';
import { runApply } from '../../src/core/engine/apply';
import { threadCount } from '../../src/core/jobs/threadLimit';
import { ChatVecError } from '../../src/core/errors';
import { CLI as cli, ensureCli } from './support/builtCli';

/** The rule, written out independently of core/jobs/threadLimit.ts. */
const LIMIT = Math.min(256, 4 * os.availableParallelism());

let root: string;
let trio: DemoTrio;

before(() => {
  ensureCli();
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-threads-'));
  trio = generateDemoTrio(path.join(root, 'demo'), 'tiny', 5);
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

function chatvec(cwd: string, ...args: string[]) {
  const env = { ...process.env };
  delete env.CHATVEC_DEBUG;
  // Bounded: without the limit this run would start 100 000 threads.
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', env, timeout: 30_000 });
  assert.equal(r.error, undefined, `chatvec ${args.join(' ')} did not finish in time`);
  return r;
}

/** Every entry under `dir` (a fresh folder per command), to show nothing was created. */
function entries(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true }) as string[];
}

/** The module is loaded by the tests that need it, so the CLI tests below run (and fail) on a tree without it. */
const limits = () => import('../../src/core/jobs/threadLimit.js');

describe('the thread limit', () => {
  it('is min(256, 4 × cores), at least 1', async () => {
    const { maxThreads } = await limits();
    assert.equal(maxThreads(1), 4);
    assert.equal(maxThreads(2), 8);
    assert.equal(maxThreads(64), 256);
    assert.equal(maxThreads(1000), 256);
    assert.equal(maxThreads(0), 4);
    assert.equal(maxThreads(), LIMIT);
  });

  it('checkThreads refuses above it with a one-line message naming the value and the limit', async () => {
    const { checkThreads } = await limits();
    assert.equal(checkThreads(LIMIT), LIMIT);
    assert.throws(
      () => checkThreads(LIMIT + 1, 'apply: options.threads'),
      (e: unknown) =>
        e instanceof ChatVecError &&
        e.code === 'InvalidArgument' &&
        !e.message.includes('\n') &&
        e.message.startsWith(`apply: options.threads ${LIMIT + 1} is above this machine's limit of ${LIMIT} worker threads`),
    );
    assert.throws(() => checkThreads(0), /whole number ≥ 1/);
    assert.throws(() => checkThreads(1.5), /whole number ≥ 1/);
  });

  it('clampThreads lowers a setting to the limit and says so', async () => {
    const { clampThreads } = await limits();
    assert.deepEqual(clampThreads(1_000_000), { threads: LIMIT, clamped: true });
    assert.deepEqual(clampThreads(1), { threads: 1, clamped: false });
  });

  it('the engine refuses too (last line of defence), before the output folder exists', async () => {
    // First, so that an engine without the limit fails here instead of starting 100 000 threads below.
    assert.throws(() => threadCount(100_000), (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument');
    assert.ok(threadCount(undefined) <= LIMIT);
    const dir = fs.mkdtempSync(path.join(root, 'engine-'));
    await assert.rejects(
      runApply({ target: trio.cp, base: trio.base, chats: [trio.chat], skipEmbed: true, threads: 100_000, out: path.join(dir, 'out') }, {}),
      (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument' && /above this machine's limit/.test(e.message),
    );
    assert.deepEqual(entries(dir), [], 'no output, no temporary folder');
  });
});

describe('chatvec --threads above the limit', () => {
  // Just above the limit first: a CLI without the limit fails there instead of running away with 100 000.
  const over = () => [String(LIMIT + 1), '100000'];
  const commands = (out: string): Record<string, string[]> => ({
    apply: ['apply', '--target', trio.cp, '--base', trio.base, '--chat', trio.chat, '--skip-embed', '--out', out],
    extract: ['extract', '--base', trio.base, '--chat', trio.chat, '--out', out],
    diff: ['diff', trio.base, trio.chat, '--no-cache'],
    demo: ['demo', '--dir', out, '--preset', 'tiny'],
  });

  for (const name of ['apply', 'extract', 'diff', 'demo']) {
    it(`${name}: exit 2, one line on stderr, nothing created`, () => {
      for (const n of over()) {
        const cwd = fs.mkdtempSync(path.join(root, `${name}-`));
        const r = chatvec(cwd, ...commands(path.join(cwd, 'out'))[name]!, '--threads', n);
        assert.equal(r.status, 2, `--threads ${n}: exit code (stderr: ${r.stderr.slice(0, 300)})`);
        const lines = r.stderr.trimEnd().split('\n');
        assert.equal(lines.length, 1, `one line: ${r.stderr.slice(0, 300)}`);
        assert.match(lines[0]!, new RegExp(`--threads ${n} is above this machine's limit of ${LIMIT} worker threads`));
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
        assert.deepEqual(entries(cwd), [], `--threads ${n}: no output or temporary folder`);
      }
    });
  }

  it('the limit itself is accepted', () => {
    const cwd = fs.mkdtempSync(path.join(root, 'ok-'));
    const r = chatvec(cwd, 'diff', trio.base, trio.chat, '--no-cache', '--json', '--threads', String(LIMIT));
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.length > 0, 'a report');
  });

  it('hexadecimal and exponent forms are refused like any non-number', () => {
    const cwd = fs.mkdtempSync(path.join(root, 'hex-'));
    for (const n of ['0x4', '1e2']) {
      const r = chatvec(cwd, 'extract', '--base', trio.base, '--chat', trio.chat, '--out', path.join(cwd, 'out'), '--threads', n);
      assert.equal(r.status, 2, n);
      assert.match(r.stderr, new RegExp(`--threads "${n}" must be a whole number ≥ 1`));
      assert.deepEqual(entries(cwd), []);
    }
  });
});
