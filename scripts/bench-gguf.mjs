// Benchmark of `chatvec gguf` (not a test; run by `npm run bench` after the apply benchmark, or
// alone). On the `1b` demo preset's cp model (TinyLlama shapes with 35 000 vocabulary rows, bf16,
// ~2.4 GB; the trio in bench-results/demo when bench.mjs made it, else this model alone, generated
// once), with a warm page cache, it times for each --type (default f16 and q8_0)
//
//   node dist/cli.js gguf P-cp --out bench-results/gguf-out-P.gguf --type T --overwrite --quiet
//
// as a child process, and in the same run an I/O floor: a plain Node child that reads the model's
// shards front to back and writes, then fsyncs, one file of the GGUF's size with 8 MiB sequential
// reads and writes (the export fsyncs its output too), as bench.mjs's floor does for apply. Floor
// and export runs alternate (median of --runs, default 2), so load from other processes weighs on
// both alike. Prints wall time, MB/s of source read, peak RSS (/usr/bin/time, else VmHWM), the
// export's CPU seconds (user + system, /usr/bin/time: on a loaded machine the single-threaded
// export waits for a core, the floor mostly for the disk, so CPU time says what the work costs)
// and the ratio to the floor; writes the figures as JSON into bench-results/.
//
// --threads N passes `--threads N` to the export (default: the export's own choice, all cores);
// --cli FILE times another build's dist/cli.js (e.g. a baseline) on the same model and floor.
//
//   node scripts/bench-gguf.mjs [--dir bench-results/demo] [--preset 1b] [--types f16,q8_0] [--runs 2] [--threads N] [--cli FILE] [--build]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { arg, ioFloor, measure, median } from './benchMeasure.mjs';

const root = path.resolve(import.meta.dirname, '..');
const demoDir = path.resolve(root, arg('dir', 'bench-results/demo'));
const resultsDir = path.join(root, 'bench-results');
const preset = arg('preset', '1b');
const types = arg('types', 'f16,q8_0').split(',');
const runs = Math.max(1, Number(arg('runs', '2')));
const cli = path.resolve(root, arg('cli', 'dist/cli.js'));
const threads = arg('threads', '');
const GB = 1e9;
const MiB = 1024 * 1024;

if (!fs.existsSync(cli) || process.argv.includes('--build')) spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: root, stdio: 'inherit' });
fs.mkdirSync(demoDir, { recursive: true });
fs.mkdirSync(resultsDir, { recursive: true });

/** The cp model of the preset: the trio's when complete, else this model alone (generated once, same bytes). */
function cpModel() {
  const gen = `const g = require(${JSON.stringify(path.join(root, 'src/core/demo/generator.ts'))});
const fs = require('node:fs'); const path = require('node:path');
const layout = g.demoTrioLayout(${JSON.stringify(demoDir)}, ${JSON.stringify(preset)}, 42);
let dir = layout.paths.cp;
if (!layout.complete()) {
  dir = path.join(${JSON.stringify(demoDir)}, ${JSON.stringify(`gguf-source-${preset}-cp`)});
  const stamp = path.join(dir, '.chatvec-bench-stamp');
  const want = JSON.stringify({ preset: ${JSON.stringify(preset)}, seed: 42, generator: g.GENERATOR_VERSION });
  if (!fs.existsSync(stamp) || fs.readFileSync(stamp, 'utf8') !== want) {
    process.stderr.write('generating the ${preset} cp model in ' + dir + ' (once; reused afterwards) …\\n');
    g.writeDemoModel(dir, 'cp', ${JSON.stringify(preset)}, 42, true);
    fs.writeFileSync(stamp, want);
  }
}
process.stdout.write(dir);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', gen], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`generating the ${preset} cp model failed (${r.status})`);
  return r.stdout.trim();
}

const model = cpModel();
const inputs = fs.readdirSync(model).filter((n) => n.endsWith('.safetensors')).sort().map((n) => path.join(model, n));
const inputBytes = inputs.reduce((s, f) => s + fs.statSync(f).size, 0);
const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, loadavgStart: os.loadavg().map((x) => +x.toFixed(2)) };
console.log(`gguf export of ${path.relative(root, model)}: ${(inputBytes / GB).toFixed(2)} GB in ${inputs.length} shards; ${machine.cpus} CPUs; load average ${machine.loadavgStart.join(' ')}`);
// Warm the page cache (the floor's first read does it).
await ioFloor(path.join(resultsDir, 'gguf-warm.bin'), 0, inputs, root);

const results = {};
for (const type of types) {
  const out = path.join(resultsDir, `gguf-out-${preset}-${type}.gguf`);
  const floorFile = path.join(resultsDir, `gguf-floor-${preset}.bin`);
  const args = [cli, 'gguf', model, '--out', out, '--type', type, '--overwrite', '--quiet', ...(threads ? ['--threads', threads] : [])];
  const exportRuns = [];
  const floorRuns = [];
  for (let i = 0; i < runs; i++) {
    fs.rmSync(out, { force: true }); // not timed
    const e = await measure(process.execPath, args, root);
    const outputBytes = fs.statSync(out).size;
    const f = await ioFloor(floorFile, outputBytes, inputs, root);
    exportRuns.push({ seconds: e.seconds, cpuSeconds: e.cpuSeconds, peakRss: e.peakRss, outputBytes });
    floorRuns.push({ seconds: f.seconds, readSeconds: f.readSeconds, writeSeconds: f.writeSeconds });
    console.log(`  ${type} run ${i + 1}/${runs}: export ${e.seconds.toFixed(2)} s${e.cpuSeconds !== null ? ` (CPU ${e.cpuSeconds.toFixed(1)} s)` : ''}, peak RSS ${(e.peakRss / MiB).toFixed(0)} MiB, ${(outputBytes / GB).toFixed(2)} GB written; floor ${f.seconds.toFixed(2)} s (read ${f.readSeconds.toFixed(2)} s + write/fsync ${f.writeSeconds.toFixed(2)} s)`);
  }
  fs.rmSync(out, { force: true });
  const exportS = median(exportRuns.map((r) => r.seconds));
  const floorS = median(floorRuns.map((r) => r.seconds));
  results[type] = {
    inputBytes,
    outputBytes: exportRuns[0].outputBytes,
    export: { medianSeconds: exportS, medianCpuSeconds: exportRuns.every((r) => r.cpuSeconds !== null) ? median(exportRuns.map((r) => r.cpuSeconds)) : null, sourceMBps: inputBytes / 1e6 / exportS, peakRssMiB: Math.max(...exportRuns.map((r) => r.peakRss)) / MiB, runs: exportRuns },
    floor: { medianSeconds: floorS, runs: floorRuns },
    ratioToFloor: exportS / floorS,
  };
}
machine.loadavgEnd = os.loadavg().map((x) => +x.toFixed(2));

console.log('\ntype   in → out            export (median)        I/O floor   ratio   peak RSS   export CPU');
for (const [t, r] of Object.entries(results)) {
  console.log(
    `${t.padEnd(6)} ${`${(r.inputBytes / GB).toFixed(2)} → ${(r.outputBytes / GB).toFixed(2)} GB`.padEnd(19)} ${`${r.export.medianSeconds.toFixed(2)} s  ${r.export.sourceMBps.toFixed(0)} MB/s`.padEnd(22)} ` +
      `${`${r.floor.medianSeconds.toFixed(2)} s`.padEnd(11)} ${`${r.ratioToFloor.toFixed(2)}×`.padEnd(7)} ${`${r.export.peakRssMiB.toFixed(0)} MiB`.padEnd(10)} ${r.export.medianCpuSeconds !== null ? `${r.export.medianCpuSeconds.toFixed(1)} s` : '–'}`,
  );
}
console.log(`load average at the end: ${machine.loadavgEnd.join(' ')} (${machine.cpus} CPUs)`);
const record = { benchmark: `gguf export (${preset} cp model)`, date: new Date().toISOString(), machine, runs, cli: path.relative(root, cli), threads: threads || 'default', results };
fs.mkdirSync(resultsDir, { recursive: true });
fs.writeFileSync(path.join(resultsDir, `bench-gguf-${record.date.replace(/[:.]/g, '-')}.json`), JSON.stringify(record, null, 2) + '\n');
fs.writeFileSync(path.join(resultsDir, 'bench-gguf-latest.json'), JSON.stringify(record, null, 2) + '\n');
