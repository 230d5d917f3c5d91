// Bundles the e2e tests (TypeScript) into out/test/e2e/ with esbuild: each *.test.ts, the runner
// (suite/index.ts) and the fixture generator. `vscode` and `mocha` stay external: the extension
// host provides the first, and the runner and the tests must share one mocha instance.
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');
const suite = path.join(root, 'test/e2e/suite');
const entryPoints = {
  'suite/index': 'test/e2e/suite/index.ts',
  fixtures: 'test/e2e/fixtures.ts',
};
for (const f of fs.readdirSync(suite)) if (f.endsWith('.test.ts')) entryPoints[`suite/${f.replace(/\.ts$/, '')}`] = `test/e2e/suite/${f}`;
fs.rmSync(path.join(root, 'out/test/e2e'), { recursive: true, force: true });
await esbuild.build({
  absWorkingDir: root,
  entryPoints,
  outdir: 'out/test/e2e',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: 'inline',
  external: ['vscode', 'mocha'],
  logLevel: 'warning',
});
