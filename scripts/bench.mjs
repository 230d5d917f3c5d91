// Benchmark of the fused apply (not a test; `npm run bench`). On the `1b` demo preset (TinyLlama
// shapes, bf16, ~2.2 GB per model; generated once into bench-results/demo and reused) and on
// `small`, with a warm page cache, it times
//
//   node dist/cli.js apply --target P-cp --base P-base --chat P-chat --skip-embed --out … --overwrite --quiet
//
// as a child process (median of --runs, default 3; peak RSS from /usr/bin/time, else by polling
// VmHWM in /proc/<pid>/status), and in the same run an I/O floor: a plain Node child that reads the
// three inputs front to back and writes one file of the output's size with 8 MiB sequential
// reads/writes, then fsyncs it (apply fsyncs its output too). Floor and apply runs alternate, so
// load from other processes weighs on both alike. Prints wall time, GB/s, peak RSS and the ratio
// to the floor against the targets (≤ 1.5× the floor; RSS ≤ 300 MiB and within ±10 % between
// small and 1b) and writes the figures as JSON into bench-results/. Ends by running
// scripts/bench-diff.mjs when it exists (skip with --no-diff), then scripts/bench-lora.mjs
// (extract --rank at ranks 16 and 64 on the same presets; skip with --no-lora), then
// scripts/bench-gguf.mjs (GGUF export of the 1b cp model, f16 and q8_0; skip with --no-gguf) and
// scripts/bench-eval.mjs (eval tokens/s of that model's GGUF, CPU and GPU where one loads; skip with --no-eval).
//
//   node scripts/bench.mjs [--dir bench-results/demo] [--runs 3] [--presets small,1b] [--threads N] [--build] [--no-diff] [--no-lora] [--no-gguf] [--no-eval]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { arg, flag, ioFloor, measure, median, readThrough } from './benchMeasure.mjs';

const root = path.resolve(import.meta.dirname, '..');
const demoDir = path.resolve(root, arg('dir', 'bench-results/demo'));
const resultsDir = path.join(root, 'bench-results');
const runs = Math.max(1, Number(arg('runs', '3')));
const presets = arg('presets', 'small,1b').split(',');
const threads = arg('threads', undefined);
const cli = path.join(root, 'dist/cli.js');
const TARGETS = { ratioToFloor: 1.5, peakRssMiB: 300, rssSpread: 0.1 };
const GB = 1e9;
const MiB = 1024 * 1024;

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 * MiB, ...opts });
  if (r.status !== 0) {
    process.stderr.write(r.stderr ?? '');
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}`);
  }
  return r.stdout;
}

const shards = (folder) =>
  fs
    .readdirSync(folder)
    .filter((n) => n.endsWith('.safetensors'))
    .sort()
    .map((n) => path.join(folder, n));
const sizeOf = (files) => files.reduce((s, f) => s + fs.statSync(f).size, 0);
const fmtGB = (b) => `${(b / GB).toFixed(2)} GB`;

// --- setup --------------------------------------------------------------------------------------

if (!fs.existsSync(cli) || flag('build')) {
  console.log('building dist/ …');
  run(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
}
fs.mkdirSync(demoDir, { recursive: true });

/** Generates (or reuses) a demo trio with the generator the tests use. */
function trioFor(preset) {
  const marker = path.join(demoDir, `.chatvec-demo-${preset}.json`);
  if (!fs.existsSync(marker)) {
    // Three models, one output and one floor file of about a model each must fit.
    const perModel = preset === '1b' ? 2.3 * GB : 0.05 * GB;
    const free = fs.statfsSync(demoDir).bavail * fs.statfsSync(demoDir).bsize;
    if (free < 5.5 * perModel) throw new Error(`${demoDir}: ${fmtGB(free)} free, the ${preset} benchmark needs about ${fmtGB(5.5 * perModel)}`);
    console.log(`generating the ${preset} demo models in ${demoDir} (once; reused afterwards) …`);
  }
  const gen = `const g = require(${JSON.stringify(path.join(root, 'src/core/demo/generator.ts'))});
const t = g.generateDemoTrio(${JSON.stringify(demoDir)}, ${JSON.stringify(preset)}, 42, (r) => process.stderr.write('  generating ' + r + ' …\\n'));
process.stdout.write(JSON.stringify(t));`;
  return JSON.parse(run(process.execPath, ['--import', 'tsx', '-e', gen], { stdio: ['ignore', 'pipe', 'inherit'] }));
}

// --- the I/O floor --------------------------------------------------------------------------------

// --- the benchmark --------------------------------------------------------------------------------

const machine = {
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? 'unknown',
  totalMemGiB: +(os.totalmem() / 1024 ** 3).toFixed(1),
  node: process.version,
  platform: `${os.platform()} ${os.release()}`,
  loadavgStart: os.loadavg().map((x) => +x.toFixed(2)),
};
console.log(`machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.totalMemGiB} GiB, node ${machine.node}; load average ${machine.loadavgStart.join(' ')}`);

const results = {};
for (const preset of presets) {
  const trio = trioFor(preset);
  const inputs = [...shards(trio.base), ...shards(trio.chat), ...shards(trio.cp)];
  const inputBytes = sizeOf(inputs);
  const out = path.join(resultsDir, `apply-out-${preset}`);
  const floorFile = path.join(resultsDir, `floor-out-${preset}.bin`);
  const applyArgs = [cli, 'apply', '--target', trio.cp, '--base', trio.base, '--chat', trio.chat, '--skip-embed', '--out', out, '--overwrite', '--quiet', ...(threads ? ['--threads', threads] : [])];
  console.log(`\n${preset}: inputs ${fmtGB(inputBytes)} in ${inputs.length} files; warming the page cache …`);
  readThrough(inputs, 8 * MiB); // into the page cache
  fs.rmSync(out, { recursive: true, force: true });

  const applyRuns = [];
  const floorRuns = [];
  // One untimed apply first: it warms the page cache for the output's size and the code caches.
  await measure(process.execPath, applyArgs, root);
  const outputBytes = sizeOf(shards(out));
  for (let i = 0; i < runs; i++) {
    const f = await ioFloor(floorFile, outputBytes, inputs, root);
    floorRuns.push({ seconds: f.seconds, readSeconds: f.readSeconds, writeSeconds: f.writeSeconds });
    fs.rmSync(out, { recursive: true, force: true }); // not timed: --overwrite would delete the old output inside the run
    const a = await measure(process.execPath, applyArgs, root);
    applyRuns.push({ seconds: a.seconds, peakRss: a.peakRss });
    console.log(
      `  run ${i + 1}/${runs}: apply ${a.seconds.toFixed(2)} s, peak RSS ${(a.peakRss / MiB).toFixed(0)} MiB;` +
        ` floor ${f.seconds.toFixed(2)} s (read ${f.readSeconds.toFixed(2)} s + write/fsync ${f.writeSeconds.toFixed(2)} s)`,
    );
  }
  fs.rmSync(out, { recursive: true, force: true });
  const moved = inputBytes + outputBytes;
  const applyS = median(applyRuns.map((r) => r.seconds));
  const floorS = median(floorRuns.map((r) => r.seconds));
  results[preset] = {
    inputBytes,
    outputBytes,
    bytesMoved: moved,
    apply: { medianSeconds: applyS, gbPerSecond: moved / GB / applyS, peakRssMiB: Math.max(...applyRuns.map((r) => r.peakRss)) / MiB, runs: applyRuns },
    floor: { medianSeconds: floorS, gbPerSecond: moved / GB / floorS, runs: floorRuns },
    ratioToFloor: applyS / floorS,
  };
}
machine.loadavgEnd = os.loadavg().map((x) => +x.toFixed(2));

// --- report ---------------------------------------------------------------------------------------

console.log('\npreset  moved      apply (median)        I/O floor (median)    ratio   peak RSS');
for (const [p, r] of Object.entries(results)) {
  console.log(
    `${p.padEnd(7)} ${fmtGB(r.bytesMoved).padEnd(10)} ${`${r.apply.medianSeconds.toFixed(2)} s  ${r.apply.gbPerSecond.toFixed(2)} GB/s`.padEnd(21)} ` +
      `${`${r.floor.medianSeconds.toFixed(2)} s  ${r.floor.gbPerSecond.toFixed(2)} GB/s`.padEnd(21)} ${`${r.ratioToFloor.toFixed(2)}×`.padEnd(7)} ${r.apply.peakRssMiB.toFixed(0)} MiB`,
  );
}
const verdicts = [];
const big = results['1b'];
const small = results.small;
if (big) {
  verdicts.push({ target: `1b apply ≤ ${TARGETS.ratioToFloor}× the I/O floor`, value: +big.ratioToFloor.toFixed(3), met: big.ratioToFloor <= TARGETS.ratioToFloor });
  verdicts.push({ target: `1b peak RSS ≤ ${TARGETS.peakRssMiB} MiB`, value: +big.apply.peakRssMiB.toFixed(1), met: big.apply.peakRssMiB <= TARGETS.peakRssMiB });
}
if (big && small) {
  const spread = big.apply.peakRssMiB / small.apply.peakRssMiB - 1;
  verdicts.push({ target: `peak RSS of 1b within ±${TARGETS.rssSpread * 100} % of small`, value: +(spread * 100).toFixed(1), met: Math.abs(spread) <= TARGETS.rssSpread });
}
for (const v of verdicts) console.log(`${v.met ? 'MET   ' : 'MISSED'} ${v.target}: ${v.value}${v.target.includes('RSS ≤') ? ' MiB' : v.target.includes('±') ? ' %' : '×'}`);
console.log(`load average at the end: ${machine.loadavgEnd.join(' ')} (${machine.cpus} CPUs)`);

const record = { benchmark: 'apply (fused, ratio 1.0, --skip-embed)', date: new Date().toISOString(), machine, runs, threads: threads ?? 'all', targets: TARGETS, results, verdicts };
fs.mkdirSync(resultsDir, { recursive: true });
const file = path.join(resultsDir, `bench-apply-${record.date.replace(/[:.]/g, '-')}.json`);
fs.writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
fs.writeFileSync(path.join(resultsDir, 'bench-apply-latest.json'), JSON.stringify(record, null, 2) + '\n');
console.log(`figures written to ${path.relative(root, file)}`);

// --- hooks ------------------------------------------------------------------------------------------

const diffBench = path.join(root, 'scripts/bench-diff.mjs');
if (fs.existsSync(diffBench) && !flag('no-diff') && presets.includes('1b')) {
  console.log('\nrunning scripts/bench-diff.mjs …');
  const r = spawnSync(process.execPath, [diffBench, '--dir', demoDir, ...(threads ? ['--threads', threads] : [])], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exitCode = r.status ?? 1;
}

const loraBench = path.join(root, 'scripts/bench-lora.mjs');
if (fs.existsSync(loraBench) && !flag('no-lora')) {
  console.log('\nrunning scripts/bench-lora.mjs …');
  const r = spawnSync(process.execPath, [loraBench, '--dir', demoDir, '--presets', presets.join(','), ...(threads ? ['--threads', threads] : [])], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exitCode = r.status ?? 1;
}

const ggufBench = path.join(root, 'scripts/bench-gguf.mjs');
if (fs.existsSync(ggufBench) && !flag('no-gguf') && presets.includes('1b')) {
  console.log('\nrunning scripts/bench-gguf.mjs …');
  const r = spawnSync(process.execPath, [ggufBench, '--dir', demoDir, '--preset', '1b'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exitCode = r.status ?? 1;
}

const evalBench = path.join(root, 'scripts/bench-eval.mjs');
if (fs.existsSync(evalBench) && !flag('no-eval') && presets.includes('1b')) {
  console.log('\nrunning scripts/bench-eval.mjs …');
  const r = spawnSync(process.execPath, [evalBench, '--dir', demoDir, '--preset', '1b'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exitCode = r.status ?? 1;
}
