/**
 * The built CLI (dist/cli.js) for tests that run `chatvec` as users do, in its own process.
 * `npm test` builds first; a test file run alone builds it when it is missing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const repo = path.resolve(__dirname, '..', '..', '..');

export const CLI = path.join(repo, 'dist', 'cli.js');

/** Builds the bundles when dist/cli.js is missing; fails the calling hook when the build does. */
export function ensureCli(): void {
  if (fs.existsSync(CLI)) return;
  const b = spawnSync(process.execPath, [path.join(repo, 'scripts', 'build.mjs')], { cwd: repo, encoding: 'utf8' });
  assert.equal(b.status, 0, `build failed: ${b.stderr}`);
}
