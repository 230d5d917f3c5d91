// Benchmark of `extract --rank` (not a test; run by `npm run bench` after the apply benchmark, or
// alone). On the demo presets (generated once into bench-results/demo, shared with bench.mjs) it
// times, as a child process with a warm page cache,
//
//   node dist/cli.js extract --base P-base --chat P-chat --rank R --out … --overwrite --json
//
// for each rank (default 16 and 64) on the CPU, and prints wall time, peak RSS, the captured
// energy and the relative error over all matrices. Where a hardware GPU adapter exists (WebGPU:
// Vulkan, Metal, D3D12) the same extraction runs again with `--backend gpu` (the GEMMs on the GPU)
// in the same run, and the GPU column and the CPU/GPU time ratio are printed beside the CPU's
// (`--gpu-software` also times a software adapter such as llvmpipe; `--no-gpu` skips the GPU).
// Writes the figures as JSON into bench-results/.
//
//   node scripts/bench-lora.mjs [--dir bench-results/demo] [--presets small,1b] [--ranks 16,64] [--threads N] [--build] [--no-gpu] [--gpu-software]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { arg, measure } from './benchMeasure.mjs';

const root = path.resolve(import.meta.dirname, '..');
const demoDir = path.resolve(root, arg('dir', 'bench-results/demo'));
const resultsDir = path.join(root, 'bench-results');
const presets = arg('presets', 'small,1b').split(',');
const ranks = arg('ranks', '16,64').split(',').map(Number);
const threads = arg('threads', undefined);
const cli = path.join(root, 'dist/cli.js');
const MiB = 1024 * 1024;

if (!fs.existsSync(cli) || process.argv.includes('--build')) spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: root, stdio: 'inherit' });
fs.mkdirSync(demoDir, { recursive: true });

/** The demo trio of `preset` (generated once, reused; the same generator as bench.mjs). */
function trioFor(preset) {
  const gen = `const g = require(${JSON.stringify(path.join(root, 'src/core/demo/generator.ts'))});
const t = g.generateDemoTrio(${JSON.stringify(demoDir)}, ${JSON.stringify(preset)}, 42, (r) => process.stderr.write('  generating ' + r + ' …\\n'));
process.stdout.write(JSON.stringify(t));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', gen], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`generating the ${preset} demo failed`);
  return JSON.parse(r.stdout);
}

/** The GPU adapter the bench may time (hardware unless --gpu-software), or null. */
function gpuAdapter() {
  if (process.argv.includes('--no-gpu')) return null;
  const probe = `process.env.EGL_PLATFORM ??= 'surfaceless';
const { createGpuBackend } = require(${JSON.stringify(path.join(root, 'src/core/compute/gpu/gpuBackend.ts'))});
createGpuBackend().then(async (g) => { const d = g.describe(); await g.dispose(); process.stdout.write(JSON.stringify(d.adapter)); }, () => process.stdout.write('null'));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', probe], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  let adapter = null;
  try {
    adapter = JSON.parse(r.stdout || 'null');
  } catch {
    adapter = null;
  }
  if (adapter && adapter.software && !process.argv.includes('--gpu-software')) {
    console.log(`GPU column skipped: only a software adapter (${adapter.name}); --gpu-software times it anyway`);
    return null;
  }
  return adapter;
}
const gpu = gpuAdapter();
if (gpu) console.log(`GPU column: ${gpu.name} (${gpu.backend})`);


const results = {};
for (const preset of presets) {
  const trio = trioFor(preset);
  results[preset] = {};
  for (const rank of ranks) {
    const extract = async (backend) => {
      const out = path.join(resultsDir, `lora-out-${preset}-r${rank}-${backend}`);
      const args = [cli, 'extract', '--base', trio.base, '--chat', trio.chat, '--rank', String(rank), '--out', out, '--overwrite', '--json', '--backend', backend, ...(threads ? ['--threads', threads] : [])];
      const m = await measure(process.execPath, args, root);
      const result = m.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((j) => j.type === 'result');
      fs.rmSync(out, { recursive: true, force: true });
      return { seconds: m.seconds, peakRssMiB: m.peakRss === null ? null : m.peakRss / MiB, backend: result.backend, ...result.lowRank };
    };
    const line = (r) =>
      `${r.seconds.toFixed(1)} s (${r.backend}), peak RSS ${r.peakRssMiB === null ? '?' : r.peakRssMiB.toFixed(0)} MiB; ` +
      `${r.matrices} matrices, captured energy ${(100 * r.energy).toFixed(2)} %, relative error ${(100 * r.relativeError).toFixed(2)} %`;
    const r = (results[preset][rank] = await extract('cpu'));
    console.log(`${preset} rank ${rank} CPU: ${line(r)}`);
    if (gpu) {
      const g = (r.gpu = await extract('gpu'));
      console.log(`${preset} rank ${rank} GPU: ${line(g)}; CPU/GPU time ${(r.seconds / g.seconds).toFixed(2)}×`);
    }
  }
}

const record = { benchmark: gpu ? 'extract --rank (CPU and GPU)' : 'extract --rank (CPU)', gpu: gpu ? `${gpu.name} (${gpu.backend})` : null, date: new Date().toISOString(), machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version }, threads: threads ?? 'all', results };
fs.mkdirSync(resultsDir, { recursive: true });
fs.writeFileSync(path.join(resultsDir, 'bench-lora-latest.json'), JSON.stringify(record, null, 2) + '\n');
console.log('figures written to bench-results/bench-lora-latest.json');
