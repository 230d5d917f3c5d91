/**
 * `chatvec --via-host …` (dist/cli.js): the same output, files, errors and exit codes as without
 * the option, and Ctrl-C cancels the job inside the host.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CLI_SCRIPT, assertSameTree, demo, ensureBundles, partials, slowApplyOptions, tempDir, waitFor } from './support';

before(() => ensureBundles());

const env = { ...process.env, CHATVEC_WORKER_SCRIPT: '', CHATVEC_DEBUG: '' };

/** Runs the CLI; resolves its exit code and output (a failing command is not an exception here). */
async function cli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI_SCRIPT, ...args], { env, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: x.code ?? -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

describe('chatvec --via-host', () => {
  it('inspect prints the same report', async () => {
    const t = demo('tiny');
    const local = await cli(['inspect', '--json', t.cp]);
    const hosted = await cli(['--via-host', 'inspect', '--json', t.cp]);
    assert.equal(local.code, 0);
    assert.equal(hosted.code, 0, hosted.stderr);
    assert.equal(hosted.stdout, local.stdout);
  });

  it('apply writes the same files and prints the same result line', async () => {
    const t = demo('tiny');
    const dir = tempDir('chatvec-host-cli-');
    const args = (out: string) => ['apply', '--target', t.cp, '--base', t.base, '--chat', t.chat, '--ratio', '0.5', '--skip-embed', '--out', out];
    const local = await cli(args(path.join(dir, 'local')));
    const hosted = await cli(['--via-host', ...args(path.join(dir, 'hosted'))]);
    assert.equal(hosted.code, 0, hosted.stderr);
    // The same line but for the folder name and the time taken.
    const norm = (s: string) => s.replace(/(local|hosted)/g, 'OUT').replace(/ in [\d.]+m?s /g, ' in T ');
    assert.match(hosted.stdout, /^wrote .*hosted: 39 tensors, .* \(cpu \(\d+ threads\)\)\n$/);
    assert.equal(norm(hosted.stdout), norm(local.stdout));
    assertSameTree(path.join(dir, 'hosted'), path.join(dir, 'local'));
  });

  it('diff --json reports the same statistics', async () => {
    const t = demo('tiny');
    const local = await cli(['diff', '--json', '--no-cache', t.base, t.chat]);
    const hosted = await cli(['--via-host', 'diff', '--json', '--no-cache', t.base, t.chat]);
    assert.equal(hosted.code, 0, hosted.stderr);
    const strip = (s: string) => ({ ...(JSON.parse(s) as object), seconds: 0 });
    assert.deepEqual(strip(hosted.stdout), strip(local.stdout));
  });

  it('an error has the same message and exit code', async () => {
    const t = demo('tiny');
    const dir = tempDir('chatvec-host-cli-err-');
    fs.mkdirSync(path.join(dir, 'exists'));
    const args = ['extract', '--base', t.base, '--chat', t.chat, '--quiet', '--out', path.join(dir, 'exists')];
    const local = await cli(args);
    const hosted = await cli(['--via-host', ...args]);
    assert.equal(local.code, 1);
    assert.equal(hosted.code, 1);
    assert.equal(hosted.stderr, local.stderr);
    assert.match(hosted.stderr, /already exists/);
  });

  it('Ctrl-C cancels the job in the host: exit code 130, nothing left', async () => {
    const dir = tempDir('chatvec-host-cli-int-');
    const o = slowApplyOptions(path.join(dir, 'out'), 1024);
    const args = ['--via-host', 'apply', '--target', o.target, '--base', o.base, ...o.chats.flatMap((c) => ['--chat', c]), '--ratio', '0.001', '--skip-embed', '--threads', '1', '--quiet', '--out', o.out];
    const child = spawn(process.execPath, [CLI_SCRIPT, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    // The temporary output folder appears once the host is writing.
    await waitFor(() => partials(dir).length > 0 || child.exitCode !== null, 20_000, 'the job to start writing');
    assert.equal(child.exitCode, null, `the job is still running (stderr: ${stderr})`);
    child.kill('SIGINT');
    assert.equal(await exited, 130, stderr);
    assert.match(stderr, /cancelled; no output was left behind/);
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});
