// `chatvec eval` (core/tryit/evaluate.ts, the CLI, the task host job): per-token NLLs of the tiny
// LLaMA in llama.cpp against the float64 reference forward pass written in the tests
// (support/llamaReference.ts); sliding windows against a reference loop written here from
// Hugging Face's perplexity guide; the GGUF cache; cancellation; a family that cannot be
// converted.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CancelledError } from '../../src/core/errors';
import { runEval } from '../../src/core/tryit/evaluate';
import { CLI, ensureCli } from './support/builtCli';
import { tempDir } from './support/engineFixtures';
import { referenceNlls } from './support/llamaReference';
import { writeModel } from './support/recipeFixtures';
import { TINY_LLAMA as S, referenceWeights, tinyLlamaTensors, writeTinyLlama } from './support/tinyLlama';

const IDS = [32, 27, 30, 14, 26, 29, 3, 17, 31, 0, 12, 28, 4, 9, 22, 30, 14, 5];
const TOL = 1e-3;
// One llama.cpp thread: on a loaded machine its thread barriers make several threads ~100× slower.
const CLI_OPTS = ['--type', 'f32', '--backend', 'cpu', '--threads', '1'];

let dir: string;
let cacheDir: string;
let model: string;
let idsFile: string;
const tensors = tinyLlamaTensors(11);
before(() => {
  dir = tempDir('try-eval');
  cacheDir = path.join(dir, 'cache');
  model = writeTinyLlama(path.join(dir, 'tiny'), tensors);
  idsFile = path.join(dir, 'ids.json');
  fs.writeFileSync(idsFile, JSON.stringify(IDS));
  ensureCli();
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const opts = () => ({ cacheDir, type: 'F32' as const, backend: 'cpu' as const, threads: 1 });
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Hugging Face's loop ("Perplexity of fixed-length models"): for begin in range(0, n, stride),
 * end = min(begin + max_length, n), trg_len = end − prev_end, labels before the last trg_len
 * masked; the model's own shift leaves the window's first token unscored. Here each window's
 * NLLs come from a fresh reference forward pass over the window's ids alone.
 */
function referenceSliding(ids: readonly number[], maxLength: number, stride: number): (number | null)[] {
  const w = referenceWeights(tensors);
  const out: (number | null)[] = new Array(ids.length - 1).fill(null);
  let prevEnd = 0;
  for (let begin = 0; begin < ids.length; begin += stride) {
    const end = Math.min(begin + maxLength, ids.length);
    const trgLen = end - prevEnd;
    const nlls = referenceNlls(w, S, ids.slice(begin, end)); // nlls[k]: token begin + k + 1
    for (let t = Math.max(end - trgLen, begin + 1); t < end; t++) out[t - 1] = nlls[t - begin - 1]!;
    prevEnd = end;
    if (end === ids.length) break;
  }
  return out;
}

/** Equal within TOL; null (a token no window scores) only where the reference has null. */
function assertClose(got: readonly (number | null)[], want: readonly (number | null)[], what: string): void {
  assert.equal(got.length, want.length, `${what}: count`);
  for (let i = 0; i < want.length; i++) {
    const ok = want[i] === null ? got[i] === null : got[i] !== null && Math.abs(got[i]! - want[i]!) < TOL;
    assert.ok(ok, `${what}: token ${i + 1}: ${got[i]} vs reference ${want[i]}`);
  }
}

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: cacheDir, ...env }, timeout: 120_000 });
}

function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

describe('chatvec eval', () => {
  it('with the context covering the text: per-token NLLs equal the float64 reference, perplexity = exp(mean NLL)', async () => {
    const r = await runEval({ model, ids: idsFile, context: 64, ...opts() });
    const want = referenceNlls(referenceWeights(tensors), S, IDS);
    assert.ok(Math.max(...want) - Math.min(...want) > 0.1, 'the reference NLLs vary, so a wrong model would show');
    assert.deepEqual(r.ids, IDS);
    assert.equal(r.windows, 1);
    assertClose(r.nlls, want, 'full context');
    assert.ok(Math.abs(r.meanNll - mean(want)) < TOL);
    assert.ok(Math.abs(r.perplexity - Math.exp(mean(want))) / Math.exp(mean(want)) < TOL);
    assert.equal(r.ggufFrom, 'converted');
  });

  it('sliding windows score each token once with the context HF\'s loop gives it', async () => {
    for (const [context, stride] of [[6, 3], [5, 5], [7, 2]] as const) {
      const r = await runEval({ model, ids: idsFile, context, stride, ...opts() });
      const want = referenceSliding(IDS, context, stride);
      const full = referenceNlls(referenceWeights(tensors), S, IDS);
      assert.ok(want.some((v, i) => v !== null && Math.abs(v - full[i]!) > 10 * TOL), `context ${context}: the windowed reference differs from the full one, so windows are tested`);
      assertClose(r.nlls, want, `context ${context}, stride ${stride}`);
      const scored = want.filter((v): v is number => v !== null);
      assert.equal(r.scored, scored.length);
      assert.ok(Math.abs(r.meanNll - mean(scored)) < TOL, 'the mean is over the scored tokens');
      assert.ok(Math.abs(r.perplexity - Math.exp(mean(scored))) / Math.exp(mean(scored)) < TOL);
      assert.equal(r.context, context);
      assert.equal(r.stride, stride);
    }
    // context ≥ length: one window, the full-context NLLs.
    const r = await runEval({ model, ids: idsFile, context: IDS.length, stride: 3, ...opts() });
    assertClose(r.nlls, referenceNlls(referenceWeights(tensors), S, IDS), 'context = length');
  });

  it('reuses the cached conversion, and converts again when the weights change', async () => {
    const m = writeTinyLlama(path.join(dir, 'cached'), tensors);
    const first = await runEval({ model: m, ids: idsFile, context: 64, ...opts() });
    assert.equal(first.ggufFrom, 'converted');
    const mtime = fs.statSync(first.gguf).mtimeMs;
    const second = await runEval({ model: m, ids: idsFile, context: 64, ...opts() });
    assert.equal(second.ggufFrom, 'cache');
    assert.equal(second.gguf, first.gguf);
    assert.equal(fs.statSync(second.gguf).mtimeMs, mtime, 'the cached file was not rewritten');
    // Other weights, same shapes and file size: a new key, a new conversion, the new model's NLLs.
    const changed = tinyLlamaTensors(12);
    writeTinyLlama(m, changed);
    const third = await runEval({ model: m, ids: idsFile, context: 64, ...opts() });
    assert.equal(third.ggufFrom, 'converted');
    assert.notEqual(third.gguf, first.gguf);
    assertClose(third.nlls, referenceNlls(referenceWeights(changed), S, IDS), 'changed weights');
    // Another weight type is another file too.
    const f16 = await runEval({ model: m, ids: idsFile, context: 64, ...opts(), type: 'F16' });
    assert.equal(f16.ggufFrom, 'converted');
    assert.notEqual(f16.gguf, third.gguf);
  });

  it('cancels between windows and during the conversion (leaving no cache file)', async () => {
    const signal = { cancelled: false };
    await assert.rejects(
      runEval({ model, ids: idsFile, context: 4, stride: 1, ...opts() }, { signal, onProgress: (e) => { if (e.phase === 'eval' && e.done > 0) signal.cancelled = true; } }),
      CancelledError,
    );
    const m = writeTinyLlama(path.join(dir, 'cancel'), tensorsWithSeed(13));
    const s2 = { cancelled: false };
    const fresh = path.join(dir, 'cache-cancel');
    // Raised as the conversion begins (a model this small converts between two progress events).
    await assert.rejects(runEval({ model: m, ids: idsFile, ...opts(), cacheDir: fresh }, { signal: s2, onLog: (_l, msg) => { if (msg.startsWith('converting')) s2.cancelled = true; } }), CancelledError);
    const left = fs.existsSync(path.join(fresh, 'gguf')) ? fs.readdirSync(path.join(fresh, 'gguf')) : [];
    assert.deepEqual(left, [], 'no GGUF (or temporary file) left in the cache');
  });

  it('CLI: --json has per-token NLLs; --compare prints both and B − A; --via-host runs it in the task host', () => {
    const a = cli(['eval', model, '--ids', idsFile, '--context', '64', ...CLI_OPTS, '--json']);
    assert.equal(a.status, 0, a.stderr);
    const ra = lastJson(a.stdout);
    assert.equal(ra.type, 'result');
    assertClose(ra.nlls as number[], referenceNlls(referenceWeights(tensors), S, IDS), 'CLI --json');

    const other = writeTinyLlama(path.join(dir, 'other'), tensorsWithSeed(21));
    const wantB = mean(referenceNlls(referenceWeights(tensorsWithSeed(21)), S, IDS));
    const wantA = mean(referenceNlls(referenceWeights(tensors), S, IDS));
    const c = cli(['eval', model, '--compare', other, '--ids', idsFile, '--context', '64', ...CLI_OPTS]);
    assert.equal(c.status, 0, c.stderr);
    const diffLine = c.stdout.split('\n').find((l) => l.startsWith('B − A'));
    assert.ok(diffLine, c.stdout);
    const printed = Number(diffLine.split(/\s+/)[3]!.replace('−', '-'));
    assert.ok(Math.abs(printed - (wantB - wantA)) < TOL, `printed ${printed} vs reference ${wantB - wantA}: ${diffLine}`);
    assert.match(c.stdout, /context 64, stride 32/);

    const cj = cli(['eval', model, '--compare', other, '--ids', idsFile, '--context', '64', ...CLI_OPTS, '--json']);
    const d = (lastJson(cj.stdout).difference as { meanNll: number }).meanNll;
    assert.ok(Math.abs(d - (wantB - wantA)) < TOL);

    const h = cli(['--via-host', 'eval', model, '--ids', idsFile, '--context', '64', ...CLI_OPTS, '--json']);
    assert.equal(h.status, 0, h.stderr);
    const rh = lastJson(h.stdout);
    assert.equal(rh.ggufFrom, 'cache', 'the host found the conversion the in-process run made');
    assertClose(rh.nlls as number[], referenceNlls(referenceWeights(tensors), S, IDS), 'via the task host');
  });

  it('a model that cannot be converted (GPT-2 family) and bad inputs are one clear line', () => {
    const gpt2 = writeModel(path.join(dir, 'gpt2'), [{ name: 'wte.weight', shape: [8, 4], values: new Array(32).fill(0.1) }, { name: 'h.0.attn.c_attn.weight', shape: [4, 12], values: new Array(48).fill(0.1) }], { architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', n_layer: 1 });
    const g = cli(['eval', gpt2, '--ids', idsFile, ...CLI_OPTS]);
    assert.equal(g.status, 1);
    assert.equal(g.stderr.trim().split('\n').length, 1, g.stderr);
    assert.match(g.stderr, /^chatvec: error: .*gpt2|GPT2/i);

    const bad = path.join(dir, 'bad-ids.json');
    fs.writeFileSync(bad, JSON.stringify([1, 2, 999]));
    const b = cli(['eval', model, '--ids', bad, ...CLI_OPTS]);
    assert.equal(b.status, 2);
    assert.match(b.stderr, /^chatvec: error: .*bad-ids\.json: ids\[2\] = 999 is not a token id of this model \(integers 0 to 40\)\n$/);

    const w = cli(['eval', model, '--ids', idsFile, '--context', '4', '--stride', '5', ...CLI_OPTS]);
    assert.equal(w.status, 2);
    assert.match(w.stderr, /--stride 5: must be a whole number from 1 to the context \(4\)/);
  });
});

function tensorsWithSeed(seed: number) {
  return tinyLlamaTensors(seed);
}
