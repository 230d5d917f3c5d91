// Benchmark of `chatvec diff` (not a test): on the `1b` demo pair (TinyLlama shapes, bf16,
// ~2.2 GB per model), time `diff base chat --no-cache` against simply reading both models with
// large sequential reads, both with a warm page cache, in the same run. Target: ratio ≤ 2. Then
// the same with a cold cache (the two models' files evicted with `dd iflag=nocache`, Linux only):
// target ratio ≤ 1.2. CPU seconds are reported for each.
//
//   node scripts/bench-diff.mjs [--dir bench-results/demo] [--preset 1b] [--threads N] [--reps 2]
//
// The models are generated once (deterministic; a marker file lets later runs reuse them).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readThrough } from './benchMeasure.mjs';

const root = path.resolve(import.meta.dirname, '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
};
const dir = path.resolve(root, arg('dir', 'bench-results/demo'));
const preset = arg('preset', '1b');
const reps = Number(arg('reps', '2'));
const threads = arg('threads', undefined);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...opts });
  if (r.status !== 0) {
    process.stderr.write(r.stderr ?? '');
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}`);
  }
  return r.stdout;
}

if (!fs.existsSync(path.join(root, 'dist/cli.js')) || process.argv.includes('--build')) run(process.execPath, ['scripts/build.mjs']);

// Generate (or reuse) the demo pair with the same generator the tests use.
const marker = path.join(dir, `.chatvec-demo-${preset}.json`);
if (!fs.existsSync(marker)) console.log(`generating the ${preset} demo models in ${dir} (once)…`);
const gen = `const g = require(${JSON.stringify(path.join(root, 'src/core/demo/generator.ts'))});
const t = g.generateDemoTrio(${JSON.stringify(dir)}, ${JSON.stringify(preset)}, 42, (r) => process.stderr.write('generating ' + r + '…\\n'));
process.stdout.write(JSON.stringify(t));`;
const trio = JSON.parse(run(process.execPath, ['--import', 'tsx', '-e', gen], { stdio: ['ignore', 'pipe', 'inherit'] }));

const shards = (folder) => fs.readdirSync(folder).filter((n) => n.endsWith('.safetensors')).map((n) => path.join(folder, n));
const files = [...shards(trio.base), ...shards(trio.chat)];
const totalBytes = files.reduce((s, f) => s + fs.statSync(f).size, 0);

/** Reads every file front to back with 16 MiB reads; returns wall and CPU seconds. */
function readAll() {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  readThrough(files, 16 * 1024 * 1024);
  const cpu = process.cpuUsage(cpu0);
  return { wall: (performance.now() - t0) / 1000, cpu: (cpu.user + cpu.system) / 1e6 };
}

/**
 * CPU seconds used so far by waited-for children (Linux /proc; null elsewhere). On a shared
 * machine wall time depends on what else runs; CPU time says what the work itself costs.
 */
function childCpuSeconds() {
  try {
    const fields = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    // Fields 16 and 17 of stat(5) (cutime, cstime), counted from 3 after the command name.
    return (Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return null;
  }
}

/** Runs the CLI's diff; returns wall seconds (process start included), its CPU and the job's own seconds. */
function diffOnce() {
  const args = [path.join(root, 'dist/cli.js'), 'diff', trio.base, trio.chat, '--no-cache', '--json', ...(threads ? ['--threads', threads] : [])];
  const c0 = childCpuSeconds();
  const t0 = performance.now();
  const out = run(process.execPath, args);
  const wall = (performance.now() - t0) / 1000;
  const c1 = childCpuSeconds();
  const report = JSON.parse(out);
  return { wall, cpu: c0 === null || c1 === null ? null : c1 - c0, job: report.seconds, verdict: report.verdict };
}

const gb = (b) => `${(b / 1e9).toFixed(2)} GB`;
const cores = os.availableParallelism();
console.log(`${preset} pair: ${gb(totalBytes)} in ${files.length} shards; ${cores} cores; ${os.cpus()[0]?.model ?? ''}; load average ${os.loadavg()[0].toFixed(1)}`);
readAll(); // warm the page cache
let read = { wall: Infinity, cpu: Infinity };
let diff = { wall: Infinity, cpu: null, job: Infinity, verdict: '' };
for (let i = 0; i < reps; i++) {
  const r = readAll();
  if (r.wall < read.wall) read = r;
  const d = diffOnce();
  if (d.wall < diff.wall) diff = d;
}
const rate = (s) => `${(totalBytes / s / 1e9).toFixed(2)} GB/s`;
console.log(`read both models (16 MiB sequential reads, 1 thread): ${read.wall.toFixed(2)} s  (${rate(read.wall)}; CPU ${read.cpu.toFixed(2)} s)`);
console.log(`chatvec diff --no-cache (whole process):           ${diff.wall.toFixed(2)} s  (${rate(diff.wall)}; job ${diff.job.toFixed(2)} s${diff.cpu !== null ? `; CPU ${diff.cpu.toFixed(2)} s` : ''})`);
console.log(`ratio diff / read: ${(diff.wall / read.wall).toFixed(2)}×  (target ≤ 2×)`);
if (diff.cpu !== null) {
  const t = Math.min(cores, Number(threads ?? cores));
  console.log(`with ${t} idle cores the diff would need about ${(diff.cpu / t).toFixed(2)} s (CPU ÷ threads): ${((diff.cpu / t) / read.wall).toFixed(2)}× the read`);
}
console.log(`verdict: ${diff.verdict}`);

/** Drops the models' files from the page cache (GNU dd's nocache: posix_fadvise DONTNEED); false where that is unavailable. */
function evict() {
  for (const f of files) {
    const r = spawnSync('dd', [`if=${f}`, 'iflag=nocache', 'count=0', 'status=none']);
    if (r.status !== 0) return false;
  }
  return true;
}

if (process.platform === 'linux' && evict()) {
  let coldRead = { wall: Infinity, cpu: Infinity };
  let coldDiff = { wall: Infinity, cpu: null };
  for (let i = 0; i < reps; i++) {
    evict();
    const r = readAll();
    if (r.wall < coldRead.wall) coldRead = r;
    evict();
    const d = diffOnce();
    if (d.wall < coldDiff.wall) coldDiff = d;
  }
  console.log(`cold read both models:                              ${coldRead.wall.toFixed(2)} s  (${rate(coldRead.wall)}; CPU ${coldRead.cpu.toFixed(2)} s)`);
  console.log(`cold chatvec diff --no-cache (whole process):      ${coldDiff.wall.toFixed(2)} s  (${rate(coldDiff.wall)}${coldDiff.cpu !== null ? `; CPU ${coldDiff.cpu.toFixed(2)} s` : ''})`);
  console.log(`cold ratio diff / read: ${(coldDiff.wall / coldRead.wall).toFixed(2)}×  (target ≤ 1.2×)`);
} else {
  console.log('cold cache: not measured (needs Linux and GNU dd to evict the files from the page cache)');
}
