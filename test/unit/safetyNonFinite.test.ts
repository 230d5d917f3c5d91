// NaN/±Inf in job outputs (issue 11, item 7), as users meet them: the built CLI (dist/cli.js) in
// its own process. A job that turns finite inputs into NaN/±Inf (an overflowing ratio or weight, a
// difference beyond f16) fails with one line and leaves nothing behind, unless
// --allow-non-finite, which writes the output and warns; NaN/±Inf already in the inputs pass
// through with a count; `diff` never calls a checkpoint holding NaN/±Inf identical (not even to
// itself) and counts them per tensor; and ties passes zero-element tensors through.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateDemoTrio, type DemoTrio } from '../../src/core/demo/generator';
import { EXPONENT_16, type RawElements, anyNonFinite, anyNonFiniteJs, countNonFinite } from '../../src/core/engine/nonFinite';
import { simdKernels } from '../../src/core/compute/wasm/combineModule';
import { type OutFloat, decodeAll, readCheckpoint, rng, tempDir, valueOf, writeModel } from './support/engineFixtures';
import { CLI as cli, ensureCli } from './support/builtCli';

let root: string;
let tiny: DemoTrio;
/** F32 models: base, chat, a target holding NaN and +Inf, and one holding 70000 (beyond f16). */
const m = { base: '', chat: '', nanCp: '', big: '', m1: '', m2: '' };
let n = 0;

const CONFIG = { 'config.json': { architectures: ['LlamaForCausalLM'], model_type: 'llama' } };
const W = 'model.layers.0.mlp.up_proj.weight';
const EMPTY = 'model.layers.0.self_attn.q_proj.bias';

before(() => {
  ensureCli();
  root = tempDir('nonfinite');
  tiny = generateDemoTrio(path.join(root, 'demo'), 'tiny', 7);
  const values = (f: (i: number) => number) => Array.from({ length: 32 }, (_, i) => Math.fround(f(i)));
  const model = (name: string, f: (i: number) => number, extra: { name: string; shape: number[]; values: number[] }[] = []) =>
    writeModel(
      path.join(root, name),
      [
        { name: W, dtype: 'F32', shape: [4, 8], values: values(f) },
        { name: 'model.norm.weight', dtype: 'F32', shape: [8], values: Array.from({ length: 8 }, (_, i) => 1 + i / 64) },
        ...extra.map((e) => ({ ...e, dtype: 'F32' as const })),
      ],
      { files: CONFIG },
    );
  m.base = model('base', (i) => Math.sin(i));
  m.chat = model('chat', (i) => Math.sin(i) + 0.01 * Math.cos(3 * i));
  m.nanCp = model('nan-cp', (i) => (i === 3 ? NaN : i === 5 ? Infinity : Math.sin(i) + 0.02));
  m.big = model('big', (i) => (i % 4 === 0 ? 70000 : Math.sin(i)));
  // Merge inputs with a zero-element tensor beside a normal one.
  const empty = [{ name: EMPTY, shape: [0, 4], values: [] }];
  m.m1 = model('m1', (i) => Math.sin(i) + 0.1 * Math.cos(i), empty);
  m.m2 = model('m2', (i) => Math.sin(i) - 0.1 * Math.sin(2 * i), empty);
  model('m0', (i) => Math.sin(i), empty);
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

function chatvec(args: readonly string[], env: Record<string, string> = {}) {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env };
  // The test process points workers at the TypeScript sources; the CLI runs its own bundle.
  delete e.CHATVEC_WORKER_SCRIPT;
  delete e.CHATVEC_DEBUG;
  if (!env.CHATVEC_KERNEL) delete e.CHATVEC_KERNEL;
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', env: e, timeout: 120_000 });
  assert.equal(r.error, undefined);
  return r;
}

/** A fresh output path inside its own empty folder (so any leftover sibling shows). */
function outPath(what: string): { out: string; parent: string } {
  const parent = path.join(root, 'outs', `${what}-${n++}`);
  fs.mkdirSync(parent, { recursive: true });
  return { out: path.join(parent, 'out'), parent };
}

/** The job failed with exit code 2 and exactly one error line matching every pattern, and left nothing. */
function assertFailedClean(r: ReturnType<typeof chatvec>, parent: string, ...patterns: RegExp[]): string {
  assert.equal(r.status, 2, `exit code ${r.status}; stderr: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `one line on stderr: ${JSON.stringify(r.stderr)}`);
  assert.match(lines[0]!, /^chatvec: error: /);
  for (const p of patterns) assert.match(lines[0]!, p);
  assert.deepEqual(fs.readdirSync(parent), [], 'no output folder and no temporary sibling is left');
  return lines[0]!;
}

/** Values of a float tensor of an output folder. */
function valuesOf(dir: string, name: string): Float64Array {
  const t = readCheckpoint(dir).tensors.get(name);
  assert.ok(t, `${dir} lacks ${name}`);
  return decodeAll(t.bytes, t.dtype as 'F32' | 'BF16' | 'F16');
}

const nonFiniteCount = (xs: ArrayLike<number>) => Array.from(xs).filter((x) => !Number.isFinite(x)).length;

describe('apply', () => {
  const fused = (out: string) => ['apply', '--target', tiny.cp, '--base', tiny.base, '--chat', tiny.chat, '--skip-embed', '--out', out, '--quiet'];

  for (const kernel of ['simd', 'js'] as const) {
    it(`--ratio 1e308 fails before writing anything (${kernel} kernel)`, () => {
      const { out, parent } = outPath(`ratio-${kernel}`);
      const r = chatvec([...fused(out), '--ratio', '1e308'], kernel === 'js' ? { CHATVEC_KERNEL: 'js' } : {});
      assertFailedClean(r, parent, /apply produced (at least )?\d+ non-finite values \(NaN\/±Inf\) from finite inputs/, /first: model\.layers\.0\./, /the ratio 1e308 overflows float32/, /no output was written/, /--allow-non-finite/);
    });
  }

  it('--ratio 1e308 from a stored vector (two-step) fails the same way', () => {
    const v = outPath('vector');
    assert.equal(chatvec(['extract', '--base', tiny.base, '--chat', tiny.chat, '--skip-embed', '--out', v.out, '--quiet']).status, 0);
    const { out, parent } = outPath('two-step');
    const r = chatvec(['apply', '--target', tiny.cp, '--vector', v.out, '--ratio', '1e308', '--out', out, '--quiet']);
    assertFailedClean(r, parent, /apply produced (at least )?\d+ non-finite values/, /the ratio 1e308 overflows float32/);
  });

  it('--allow-non-finite writes the output and warns loudly (stderr, the JSON result, the model card)', () => {
    const { out } = outPath('allowed');
    const r = chatvec([...fused(out).filter((a) => a !== '--quiet'), '--ratio', '1e308', '--allow-non-finite', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const result = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { type: string; warnings?: string[] })
      .find((x) => x.type === 'result');
    assert.ok(result?.warnings, r.stdout);
    const warning = result.warnings.find((w) => /non-finite/.test(w));
    assert.ok(warning, JSON.stringify(result.warnings));
    assert.match(warning, /^apply wrote \d+ non-finite values \(NaN\/±Inf\) produced from finite inputs \(first: model\.layers\.0\..+\); the ratio 1e308 overflows float32/);
    const count = Number(/wrote (\d+)/.exec(warning)![1]);
    let inOutput = 0;
    for (const name of readCheckpoint(out).order) inOutput += nonFiniteCount(valuesOf(out, name));
    assert.equal(count, inOutput, 'the warning counts the non-finite values the output holds');
    assert.match(fs.readFileSync(path.join(out, 'README.md'), 'utf8'), /non-finite values/);
  });

  it('--allow-non-finite also passes through the task host (--via-host)', () => {
    const { out } = outPath('via-host');
    const r = chatvec(['--via-host', ...fused(out).filter((a) => a !== '--quiet'), '--ratio', '1e308', '--allow-non-finite']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /apply wrote \d+ non-finite values \(NaN\/±Inf\) produced from finite inputs/);
    assert.ok(fs.existsSync(path.join(out, 'model.safetensors')));
  });

  it('NaN and +Inf already in the target pass through with a count, and the job succeeds', () => {
    const { out } = outPath('nan-input');
    const r = chatvec(['apply', '--target', m.nanCp, '--base', m.base, '--chat', m.chat, '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout.split('\n').find((l) => l.includes('"type":"result"'))!) as { warnings: string[] };
    assert.ok(result.warnings.includes(`2 non-finite values (NaN/±Inf) of the inputs passed through into the output (first: ${W})`), JSON.stringify(result.warnings));
    assert.ok(!result.warnings.some((w) => /from finite inputs/.test(w)), JSON.stringify(result.warnings));
    const v = valuesOf(out, W);
    assert.ok(Number.isNaN(v[3]) && v[5] === Infinity, `${v[3]}, ${v[5]}`);
  });

  it('a finite float32 70000 rounded to f16 is a value produced from finite inputs', () => {
    const { out, parent } = outPath('f16-apply');
    const r = chatvec(['apply', '--target', m.big, '--base', m.base, '--chat', m.chat, '--dtype', 'f16', '--out', out, '--quiet']);
    assertFailedClean(r, parent, /apply produced (at least )?\d+ non-finite value/, new RegExp(`first: ${W.replace(/\./g, '\\.')}`), /results beyond ±65504 do not fit f16/);
  });
});

describe('extract', () => {
  it('--dtype f16 with a difference beyond ±65504 fails; f32 (the default) holds it', () => {
    const { out, parent } = outPath('f16-extract');
    const r = chatvec(['extract', '--base', m.base, '--chat', m.big, '--dtype', 'f16', '--out', out, '--quiet']);
    assertFailedClean(r, parent, /^chatvec: error: extract produced (at least )?\d+ non-finite values? \(NaN\/±Inf\) from finite inputs/, /results beyond ±65504 do not fit f16/);
    const ok = outPath('f32-extract');
    assert.equal(chatvec(['extract', '--base', m.base, '--chat', m.big, '--out', ok.out, '--quiet']).status, 0);
    assert.equal(nonFiniteCount(valuesOf(ok.out, W)), 0);
  });

  it('--allow-non-finite writes the f16 vector with +Inf where the difference overflowed', () => {
    const { out } = outPath('f16-extract-allowed');
    const r = chatvec(['extract', '--base', m.base, '--chat', m.big, '--dtype', 'f16', '--out', out, '--allow-non-finite']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /extract wrote 8 non-finite values \(NaN\/±Inf\) produced from finite inputs/);
    assert.equal(nonFiniteCount(valuesOf(out, W)), 8);
  });
});

describe('merge', () => {
  function recipe(name: string, text: string): string {
    const file = path.join(root, `${name}.yaml`);
    fs.writeFileSync(file, text);
    return file;
  }

  it('linear with a weight float32 cannot hold fails before writing anything', () => {
    const file = recipe('linear-huge', 'merge_method: linear\nmodels:\n  - model: m1\n    parameters: {weight: 1e39}\n  - model: m2\n    parameters: {weight: 1}\nparameters: {normalize: false}\ndtype: float32\n');
    const { out, parent } = outPath('linear');
    assertFailedClean(chatvec(['merge', file, '--out', out, '--quiet']), parent, /^chatvec: error: merge produced (at least )?\d+ non-finite values \(NaN\/±Inf\) from finite inputs/, /the weight 1e39 overflows float32/);
    const allowed = outPath('linear-allowed');
    const r = chatvec(['merge', file, '--out', allowed.out, '--allow-non-finite']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /merge wrote \d+ non-finite values \(NaN\/±Inf\) produced from finite inputs/);
  });

  it('ties with a weight float32 cannot hold fails too (the merge kernels check their output)', () => {
    const file = recipe('ties-huge', 'merge_method: ties\nbase_model: base\nmodels:\n  - model: chat\n    parameters: {weight: 1e39, density: 0.5}\n  - model: big\n    parameters: {weight: 1, density: 0.5}\ndtype: float32\n');
    const { out, parent } = outPath('ties-huge');
    assertFailedClean(chatvec(['merge', file, '--out', out, '--quiet']), parent, /merge produced (at least )?\d+ non-finite values/, /the weight 1e39 overflows float32/);
  });

  it('ties passes a zero-element tensor through (empty in every model → empty in the output)', () => {
    const file = recipe('ties-empty', 'merge_method: ties\nbase_model: m0\nmodels:\n  - model: m1\n    parameters: {weight: 0.6, density: 0.5}\n  - model: m2\n    parameters: {weight: 0.4, density: 0.5}\ndtype: float32\n');
    const { out } = outPath('ties-empty');
    const r = chatvec(['merge', file, '--out', out, '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    const ck = readCheckpoint(out);
    const t = ck.tensors.get(EMPTY);
    assert.ok(t, `the output lacks ${EMPTY}`);
    assert.deepEqual(t.shape, [0, 4]);
    assert.equal(t.bytes.length, 0);
    assert.equal(valuesOf(out, W).length, 32);
  });
});

describe('diff', () => {
  it('a checkpoint holding NaN/Inf is not identical to itself; the counts are per tensor in JSON and text', () => {
    const r = chatvec(['diff', m.nanCp, m.nanCp, '--json', '--no-cache']);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { verdict: string; total: { nonFinite: number }; tensors: { name: string; nonFinite: number }[]; groups: { nonFinite: number }[] };
    assert.doesNotMatch(report.verdict, /identical weights/);
    assert.match(report.verdict, /^not identical: 2 NaN\/Inf values/);
    assert.equal(report.total.nonFinite, 2);
    assert.deepEqual(
      report.tensors.map((t) => [t.name, t.nonFinite]),
      [
        [W, 2],
        ['model.norm.weight', 0],
      ],
    );
    const text = chatvec(['diff', m.nanCp, m.nanCp, '--no-cache', '--by', 'tensor']);
    assert.equal(text.status, 0, text.stderr);
    assert.doesNotMatch(text.stdout, /identical weights/);
    assert.match(text.stdout, /verdict {2}not identical: 2 NaN\/Inf values/);
    assert.match(text.stdout, new RegExp(`note {5}2 NaN/Inf values in 1 tensor, left out of the sums: ${W.replace(/\./g, '\\.')} \\(2\\)`));
    // The table gets a NaN/Inf column with the count of each row.
    const header = text.stdout.split('\n').find((l) => /^\s+tensor\s/.test(l));
    assert.ok(header?.includes('NaN/Inf'), text.stdout);
    const row = text.stdout.split('\n').find((l) => l.trimStart().startsWith(W));
    assert.match(row ?? '', /\s2(\s|$)/);
  });

  it('an output full of overflowed values is not "identical" to itself either', () => {
    const { out } = outPath('diff-allowed');
    assert.equal(chatvec(['apply', '--target', tiny.cp, '--base', tiny.base, '--chat', tiny.chat, '--skip-embed', '--ratio', '1e308', '--allow-non-finite', '--out', out, '--quiet']).status, 0);
    const r = chatvec(['diff', out, out, '--no-cache']);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /identical weights/);
    assert.match(r.stdout, /verdict {2}not identical: \d+ NaN\/Inf values/);
  });
});

describe('the output scan (engine/nonFinite.ts and its SIMD twin in combine.wat)', () => {
  const WIDTH: Record<OutFloat, number> = { BF16: 2, F16: 2, F32: 4 };
  // Largest finite, smallest non-finite (+Inf), a NaN, −Inf, and ordinary values, as bit patterns.
  const PATTERNS: Record<OutFloat, { finite: number[]; nonFinite: number[] }> = {
    BF16: { finite: [0x7f7f, 0xff7f, 0x0000, 0x8000, 0x3f80, 0x0001], nonFinite: [0x7f80, 0xff80, 0x7fc0, 0x7f81] },
    F16: { finite: [0x7bff, 0xfbff, 0x0000, 0x8000, 0x3c00, 0x0001], nonFinite: [0x7c00, 0xfc00, 0x7e00, 0x7c01] },
    F32: { finite: [0x7f7fffff, 0xff7fffff, 0, 0x80000000, 0x3f800000, 1], nonFinite: [0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001] },
  };

  /** `count` elements at byte offset `offset` of a fresh buffer: finite patterns, non-finite at `bad`. */
  function elements(dtype: OutFloat, count: number, offset: number, bad: readonly number[], seed: number): RawElements {
    const r = rng(seed);
    const w = WIDTH[dtype];
    const buf = new ArrayBuffer(offset + count * w + 8);
    const view = new DataView(buf, offset);
    const pick = (xs: number[]) => xs[Math.floor(r() * xs.length)]!;
    for (let i = 0; i < count; i++) {
      const bits = bad.includes(i) ? pick(PATTERNS[dtype].nonFinite) : pick(PATTERNS[dtype].finite);
      if (w === 2) view.setUint16(i * 2, bits, true);
      else view.setUint32(i * 4, bits, true);
    }
    return { dtype, bytes: new Uint8Array(buf, offset, count * w) };
  }

  /** The reference: decode each element (test fixtures' decoder) and ask Number.isFinite. */
  function reference(e: RawElements, count: number): number[] {
    const view = new DataView(e.bytes.buffer, e.bytes.byteOffset);
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const bits = WIDTH[e.dtype as OutFloat] === 2 ? view.getUint16(2 * i, true) : view.getUint32(4 * i, true);
      if (!Number.isFinite(valueOf(e.dtype as OutFloat, bits))) out.push(i);
    }
    return out;
  }

  it('JavaScript scan, SIMD scan (in place and copied) and the reference agree at every position and alignment', () => {
    const k = simdKernels();
    let cases = 0;
    for (const dtype of ['BF16', 'F16', 'F32'] as const) {
      for (const count of [1, 2, 3, 7, 8, 9, 31, 32, 33, 63, 65, 1000, 4099]) {
        for (const offset of dtype === 'F32' ? [0, 4] : [0, 2, 4, 6]) {
          const spots = [[], [0], [count - 1], [count >> 1], [Math.min(count - 1, 31)], [Math.min(count - 1, 32)]];
          for (const bad of spots) {
            const e = elements(dtype, count, offset, bad, cases);
            const want = reference(e, count);
            assert.deepEqual(want, [...new Set(bad)].sort((a, b) => a - b), 'fixture');
            const what = `${dtype} count ${count} offset ${offset} bad ${JSON.stringify(bad)}`;
            assert.equal(anyNonFiniteJs(e, count), want.length > 0, `JavaScript scan, ${what}`);
            assert.equal(anyNonFinite(e, count), want.length > 0, `anyNonFinite, ${what}`);
            if (k) {
              // In place in the kernels' memory, at an odd 16-bit position as the fused bf16 output may be.
              const at = 64 + offset;
              k.reserve(at + e.bytes.length);
              new Uint8Array(k.memory.buffer, at, e.bytes.length).set(e.bytes);
              const inPlace = dtype === 'F32' ? k.any_nonfinite32(at, count) : k.any_nonfinite16(at, count, EXPONENT_16[dtype]);
              assert.equal(inPlace !== 0, want.length > 0, `SIMD scan, ${what}`);
              assert.equal(anyNonFinite({ dtype, bytes: new Uint8Array(k.memory.buffer, at, e.bytes.length) }, count), want.length > 0, `anyNonFinite in place, ${what}`);
            }
            const counts = countNonFinite(e, count, []);
            assert.deepEqual(counts, { produced: want.length, passed: 0 }, `count, ${what}`);
            cases++;
          }
        }
      }
    }
    assert.ok(cases > 500);
  });

  it('countNonFinite tells produced values from passed-through ones, input by input', () => {
    const out = elements('BF16', 100, 0, [3, 10, 50, 99], 1);
    const a = elements('F32', 100, 0, [10, 60], 2); // 10 passes through; 60 is finite in the output
    const b = elements('F16', 100, 0, [50, 10], 3);
    assert.deepEqual(countNonFinite(out, 100, [a, b]), { produced: 2, passed: 2 });
    assert.deepEqual(countNonFinite(out, 100, []), { produced: 4, passed: 0 });
    // F64 inputs: finite 1e300 (beyond float32) counts as finite, NaN as not.
    const f64 = new Float64Array(100).fill(1e300);
    f64[3] = NaN;
    assert.deepEqual(countNonFinite(out, 100, [{ dtype: 'F64', bytes: new Uint8Array(f64.buffer) }]), { produced: 3, passed: 1 });
  });
});
