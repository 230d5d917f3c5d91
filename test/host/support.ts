/**
 * Shared plumbing of the task host tests: a fresh bundle (built when missing or older than the
 * sources), demo checkpoints in a temporary folder, clients that are always disposed, and small
 * helpers to watch processes and folders.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { generateDemoTrio, type DemoTrio } from '../../src/core/demo/generator';
import type { PresetName } from '../../src/core/demo/presets';
import { isPartialOutputName } from '../../src/core/io/atomicOutput';
import { TaskHostClient, type TaskHostClientOptions } from '../../src/taskhost/client';

export const ROOT = path.resolve(__dirname, '../..');

// The engine runs in this process too (for reference outputs): its workers run the sources.
process.env.CHATVEC_WORKER_SCRIPT = path.join(__dirname, 'tsxWorker.cjs');

export const HOST_SCRIPT = path.join(ROOT, 'dist/taskhost.js');
export const CLI_SCRIPT = path.join(ROOT, 'dist/cli.js');

/** Newest modification time of the sources a bundle is made from, in ms. */
function newestSource(): number {
  let newest = 0;
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  for (const d of ['src/core', 'src/taskhost', 'src/protocol', 'src/cli']) walk(path.join(ROOT, d));
  return Math.max(newest, fs.statSync(path.join(ROOT, 'scripts/build.mjs')).mtimeMs);
}

const BUNDLES = ['dist/taskhost.js', 'dist/worker.js', 'dist/cli.js'];

function bundlesFresh(): boolean {
  const newest = newestSource();
  return BUNDLES.every((b) => {
    const p = path.join(ROOT, b);
    return fs.existsSync(p) && fs.statSync(p).mtimeMs >= newest;
  });
}

/**
 * Makes sure dist/ holds bundles built from the current sources (`npm test` builds first; running
 * this file alone after an edit must not test a stale host).
 */
export function ensureBundles(): void {
  if (bundlesFresh()) return;
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs')], { cwd: ROOT, stdio: 'pipe' });
  } catch (e) {
    // Another entry point (extension, webview) may fail to build while ours are fine.
    if (!bundlesFresh()) throw new Error(`building the bundles failed:\n${(e as { stderr?: Buffer }).stderr?.toString() ?? String(e)}`);
  }
}

/** A temporary folder removed after the current test (or the file, when called at top level). */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const trios = new Map<PresetName, DemoTrio>();
// Created while the module loads, so that it lives as long as the test file, not one test.
const demoRoot = tempDir('chatvec-host-demo-');

/** The deterministic demo checkpoints (generated once per test file). */
export function demo(preset: PresetName): DemoTrio {
  let t = trios.get(preset);
  if (!t) {
    t = generateDemoTrio(demoRoot, preset, 42);
    trios.set(preset, t);
  }
  return t;
}

/** A client on the built host, disposed after the current test. */
export function newClient(options: TaskHostClientOptions = {}): TaskHostClient {
  // The host must run the bundled worker beside it, not this process's source override.
  const c = new TaskHostClient({ hostScript: HOST_SCRIPT, ...options, env: { CHATVEC_WORKER_SCRIPT: '', ...options.env } });
  after(() => c.dispose());
  return c;
}

/** True while a process with this pid exists (zombies aside). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Polls `pred` every 50 ms; fails with `what` after `timeoutMs`. */
export async function waitFor(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Names of temporary `.NAME.partial-*` output folders in `dir`. */
export function partials(dir: string): string[] {
  return fs.readdirSync(dir).filter(isPartialOutputName);
}

/** Every file under `dir`: relative path → bytes. */
export function readTree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(path.relative(dir, p), fs.readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

/** Asserts two output folders hold the same files with the same bytes. */
export function assertSameTree(actual: string, expected: string): void {
  const a = readTree(actual);
  const e = readTree(expected);
  assert.deepEqual([...a.keys()].sort(), [...e.keys()].sort(), 'the same files');
  for (const [name, bytes] of e) assert.ok(a.get(name)!.equals(bytes), `${name}: bytes differ`);
}

/**
 * A job that runs long enough to be interrupted: fused apply on the small preset with `terms`
 * chat terms (each reads the 16 MB chat model again), on one thread. 64 terms take about 0.4 s on
 * an idle two-core machine, of which the first 0.1 s is planning; the time grows with `terms`.
 */
export function slowApplyOptions(out: string, terms = 64) {
  const t = demo('small');
  return { target: t.cp, base: t.base, chats: Array<string>(terms).fill(t.chat), ratios: [1 / terms], skipEmbed: true, threads: 1, out };
}
