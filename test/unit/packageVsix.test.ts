// What the linux-x64 platform .vsix carries for Try Model (scripts/package-vsix.mjs): node-llama-cpp,
// its runtime dependencies and the CPU build of llama.cpp only, laid out as in the package's dist/
// (`--stage`, the same copy the packaging does, without vsce's minute of zipping). A Node process
// in a folder with no node_modules above it loads that copy, gets the prebuilt CPU binary from the
// copy (its memory map says so), and runs a GGUF exported from the demo.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateDemoTrio } from '../../src/core/demo/generator';
import { runGgufExport } from '../../src/core/gguf/export';
import { REPO_ROOT, tempDir } from './support/engineFixtures';

const CPU_BUILD = path.join(REPO_ROOT, 'node_modules/@node-llama-cpp/linux-x64');
let dir: string;
before(() => {
  dir = tempDir('package-vsix');
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function filesUnder(root: string): string[] {
  return (fs.readdirSync(root, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
}

describe('platform package (linux-x64): llama.cpp', () => {
  it('carries node-llama-cpp and its CPU build only, and that copy runs a GGUF on its own', { skip: !fs.existsSync(CPU_BUILD) && 'node-llama-cpp has no linux-x64 CPU build installed here' }, async () => {
    const dist = path.join(dir, 'extension', 'dist');
    const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts/package-vsix.mjs'), '--target', 'linux-x64', '--stage', dist], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const files = filesUnder(dist);
    assert.ok(files.includes('node-llama-cpp/dist/index.js'), 'node-llama-cpp where the task host looks for it');
    assert.ok(files.includes('node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/llama-addon.node'), 'the CPU build');
    const gpuBuilds = files.filter((f) => /@node-llama-cpp\/(?!linux-x64\/)/.test(f));
    assert.deepEqual(gpuBuilds, [], 'no CUDA, Vulkan or other platforms\' builds');
    assert.ok(!files.some((f) => f.endsWith('gitRelease.bundle') || f.endsWith('.map')), 'no llama.cpp source bundle, no source maps');
    const bytes = files.reduce((n, f) => n + fs.statSync(path.join(dist, f)).size, 0);
    assert.ok(bytes < 60e6, `${(bytes / 1e6).toFixed(1)} MB is within the 60 MB budget`);

    const trio = generateDemoTrio(path.join(dir, 'demo'), 'tiny', 42);
    const gguf = path.join(dir, 'cp.gguf');
    await runGgufExport({ model: trio.cp, out: gguf, type: 'F16' });
    const script = path.join(dir, 'load.mjs');
    fs.writeFileSync(
      script,
      `const m = await import(${JSON.stringify(path.join(dist, 'node-llama-cpp/dist/index.js'))});
const llama = await m.getLlama({ build: 'never', gpu: false, logLevel: 'error' });
const model = await llama.loadModel({ modelPath: ${JSON.stringify(gguf)} });
const addon = (await import('node:fs')).readFileSync('/proc/self/maps', 'utf8').split('\\n').find((l) => l.endsWith('llama-addon.node'))?.split(' ').at(-1);
process.stdout.write(JSON.stringify({ build: llama.buildType, gpu: llama.gpu, addon, ids: [...model.tokenize('一 the', false)] }));
await model.dispose();
await llama.dispose();
`,
    );
    const env = { ...process.env };
    delete env.NODE_PATH;
    const run = spawnSync(process.execPath, [script], { cwd: dir, encoding: 'utf8', env });
    assert.equal(run.status, 0, run.stderr);
    const got = JSON.parse(run.stdout) as { build: string; gpu: unknown; addon?: string; ids: number[] };
    assert.equal(got.build, 'prebuilt');
    assert.equal(got.gpu, false);
    assert.ok(got.addon?.startsWith(fs.realpathSync(dist)), `the addon comes from the copy: ${got.addon}`);
    assert.ok(got.ids.length >= 2 && got.ids[0]! >= 512, `一 is one of the cp model's new tokens: ${got.ids.join(',')}`);
  });
});
