// Bundles every entry point with esbuild. Type-checking is `npm run typecheck` (tsc --noEmit).
// Each bundle is self-contained so that `node dist/cli.js` works right after `npm ci` and the
// .vsix ships without node_modules.
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

const root = path.resolve(import.meta.dirname, '..');
// The SIMD kernels are assembled first: the bundles (and tsc) import the generated module.
execFileSync(process.execPath, [path.join(root, 'scripts/build-wasm.mjs')], { stdio: 'inherit' });
const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

/** Entry points: [source, output name, platform]. Missing optional entries are skipped. */
const entries = [
  // dist/cli.js only picks one of the two CLI bundles beside it (src/cli/entry.ts).
  ['src/cli/entry.ts', 'cli', 'node'],
  ['src/cli/main.ts', 'cliMain', 'node'],
  ['src/cli/diffMain.ts', 'cliDiff', 'node'],
  ['src/core/worker/workerMain.ts', 'worker', 'node'],
  ['src/taskhost/main.ts', 'taskhost', 'node'],
  ['src/extension/extension.ts', 'extension', 'node'],
  ['webview/main.ts', 'webview', 'browser'],
  ['webview/tryModel.ts', 'tryModel', 'browser'],
].filter(([src]) => fs.existsSync(path.join(root, src)));

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const common = {
  define: { __CHATVEC_VERSION__: JSON.stringify(pkg.version) },
  bundle: true,
  sourcemap: 'linked',
  minify: production,
  logLevel: 'warning',
  absWorkingDir: root,
  target: 'node20',
};

const configs = entries.map(([src, name, platform]) => ({
  ...common,
  entryPoints: { [name]: src },
  outdir: 'dist',
  platform,
  format: platform === 'browser' ? 'iife' : 'cjs',
  target: platform === 'browser' ? 'es2022' : 'node20',
  external: platform === 'node' ? ['vscode', 'webgpu', 'node-llama-cpp'] : [],
  banner: name === 'cli' ? { js: '#!/usr/bin/env node' } : undefined,
}));

if (watch) {
  for (const c of configs) await (await esbuild.context(c)).watch();
  console.log('esbuild: watching');
} else {
  await Promise.all(configs.map((c) => esbuild.build(c)));
  if (fs.existsSync(path.join(root, 'dist/cli.js'))) fs.chmodSync(path.join(root, 'dist/cli.js'), 0o755);
}
