// Benchmark of `chatvec eval` (not a test; run by `npm run bench` after the GGUF export benchmark,
// or alone): tokens per second of llama.cpp scoring a fixed sequence with the 1b preset's cp model
// (TinyLlama shapes, 22 layers, 35 000 vocabulary rows) exported as GGUF (f16 by default; exported
// once into bench-results/ and reused while the model is unchanged). The sequence is fixed ids
// (--tokens, default 1536, drawn by a seeded generator below the vocabulary size; ids rather than a
// text so that every run scores the same tokens whatever the tokenizer), in windows of --context
// tokens (default 512) with stride = context, so ⌈tokens/context⌉ windows each score context − 1
// tokens. Each backend runs as a child process
//
//   node dist/cli.js eval M.gguf --ids ids.json --context 512 --stride 512 --backend B --json
//
// and the figure is the report's tokensPerSecond (scored tokens per second of evaluation; loading
// excluded), median of --runs (default 2). Backends: cpu always; gpu as well, and reported as
// unavailable (with the reason) when no GPU build loads or no device is found. Writes the figures as
// JSON into bench-results/.
//
//   node scripts/bench-eval.mjs [--dir bench-results/demo] [--preset 1b] [--type f16] [--tokens 1536] [--context 512] [--runs 2] [--threads N] [--build]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { arg, median } from './benchMeasure.mjs';

const root = path.resolve(import.meta.dirname, '..');
const demoDir = path.resolve(root, arg('dir', 'bench-results/demo'));
const resultsDir = path.join(root, 'bench-results');
const preset = arg('preset', '1b');
const type = arg('type', 'f16');
const tokens = Number(arg('tokens', '1536'));
const context = Number(arg('context', '512'));
const runs = Math.max(1, Number(arg('runs', '2')));
const threads = arg('threads', '');
const cli = path.join(root, 'dist/cli.js');

if (!fs.existsSync(cli) || process.argv.includes('--build')) spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: root, stdio: 'inherit' });
fs.mkdirSync(resultsDir, { recursive: true });

const model = path.join(demoDir, `${preset}-cp`);
if (!fs.existsSync(path.join(model, 'config.json'))) {
  console.log(`bench-eval: no ${path.relative(root, model)} (run scripts/bench.mjs first, which generates the demo models); skipped`);
  process.exit(0);
}

// The GGUF, exported once per source state (the shards' sizes and modification times).
const shards = fs.readdirSync(model).filter((n) => n.endsWith('.safetensors')).sort();
const stampWant = JSON.stringify({ type, shards: shards.map((n) => [n, fs.statSync(path.join(model, n)).size, fs.statSync(path.join(model, n)).mtimeMs]) });
const gguf = path.join(resultsDir, `eval-${preset}-cp-${type}.gguf`);
const stamp = `${gguf}.stamp`;
if (!fs.existsSync(gguf) || !fs.existsSync(stamp) || fs.readFileSync(stamp, 'utf8') !== stampWant) {
  console.log(`exporting ${path.relative(root, model)} as ${type} GGUF (once; reused afterwards) …`);
  const r = spawnSync(process.execPath, [cli, 'gguf', model, '--out', gguf, '--type', type, '--overwrite', '--quiet'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`gguf export failed (${r.status})`);
  fs.writeFileSync(stamp, stampWant);
}

// Fixed ids below the vocabulary size (a 32-bit LCG, seed 42).
const vocab = JSON.parse(fs.readFileSync(path.join(model, 'config.json'), 'utf8')).vocab_size;
let s = 42;
const ids = Array.from({ length: tokens }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % vocab));
const idsFile = path.join(resultsDir, `eval-ids-${tokens}.json`);
fs.writeFileSync(idsFile, JSON.stringify(ids));

const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, loadavgStart: os.loadavg().map((x) => +x.toFixed(2)) };
console.log(`eval of ${path.relative(root, gguf)} (${(fs.statSync(gguf).size / 1e9).toFixed(2)} GB): ${tokens} ids, context ${context}, stride ${context}; ${machine.cpus} CPUs; load average ${machine.loadavgStart.join(' ')}`);

const results = {};
for (const backend of ['cpu', 'gpu']) {
  const runsOut = [];
  let unavailable = null;
  for (let i = 0; i < runs && unavailable === null; i++) {
    const args = [cli, 'eval', gguf, '--ids', idsFile, '--context', String(context), '--stride', String(context), '--backend', backend, '--json', ...(threads ? ['--threads', threads] : [])];
    const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    const line = r.stdout.split('\n').find((l) => l.includes('"type":"result"'));
    if (r.status !== 0 || !line) {
      unavailable = (r.stderr || r.stdout).trim().split('\n').filter(Boolean).at(-1) ?? `exit ${r.status}`;
      break;
    }
    const rep = JSON.parse(line);
    runsOut.push({ tokensPerSecond: rep.tokensPerSecond, seconds: rep.seconds, scored: rep.scored, windows: rep.windows, backend: rep.backend, meanNll: rep.meanNll });
    console.log(`  ${backend} run ${i + 1}/${runs}: ${rep.scored} tokens scored in ${rep.windows} windows, ${rep.seconds.toFixed(2)} s → ${rep.tokensPerSecond.toFixed(1)} tokens/s (${rep.backend}; mean NLL ${rep.meanNll.toFixed(4)})`);
  }
  results[backend] = unavailable !== null ? { unavailable } : { medianTokensPerSecond: median(runsOut.map((r) => r.tokensPerSecond)), runs: runsOut };
  if (unavailable !== null) console.log(`  ${backend}: unavailable — ${unavailable}`);
}
machine.loadavgEnd = os.loadavg().map((x) => +x.toFixed(2));
console.log(`\neval tokens/s (median of ${runs}): ${Object.entries(results).map(([b, r]) => `${b} ${r.unavailable ? 'unavailable' : r.medianTokensPerSecond.toFixed(1)}`).join(', ')}; load average at the end ${machine.loadavgEnd.join(' ')}`);
const record = { benchmark: `eval tokens/s (${preset} cp model, ${type} GGUF)`, date: new Date().toISOString(), machine, tokens, context, stride: context, runs, results };
fs.writeFileSync(path.join(resultsDir, `bench-eval-${record.date.replace(/[:.]/g, '-')}.json`), JSON.stringify(record, null, 2) + '\n');
fs.writeFileSync(path.join(resultsDir, 'bench-eval-latest.json'), JSON.stringify(record, null, 2) + '\n');
