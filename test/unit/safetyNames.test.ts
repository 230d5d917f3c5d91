// Hostile names and values, as a crafted checkpoint or recipe carries them (issue 11, items 3, 12,
// 13, 14a–c): layer grouping stays linear on megabyte names; terminal escape sequences in tensor
// names, metadata and paths are shown escaped by the CLI (JSON output stays exact); the diff cache
// gives back every string and double it stored; recipes and --ratio refuse NaN, ±Inf and
// non-decimal numbers with messages that say so. CLI behaviour is checked through dist/cli.js.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { parseRatio } from '../../src/cli/options';
import type { DeltaStats, DiffReport } from '../../src/core/jobs/types';
import { type TensorSpec, createPlannedFile, planSafetensorsFile } from '../../src/core/safetensors/writer';
import { DIFF_CACHE_VERSION, diffCacheFile, readCachedDiff, writeCachedDiff } from '../../src/core/stats/diffCache';
import { REPO_ROOT, tempDir } from './support/engineFixtures';
import { CLI as cli, ensureCli } from './support/builtCli';

const root = tempDir('safety-names');
after(() => fs.rmSync(root, { recursive: true, force: true }));

function chatvec(args: readonly string[], timeout = 60_000): { status: number | null; stdout: string; stderr: string; ms: number } {
  const env = { ...process.env };
  delete env.CHATVEC_DEBUG;
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', env, timeout, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
}

// What a hostile name may carry: an OSC 52 clipboard write, a screen clear, a window title, a C1
// CSI and a right-to-left override.
const OSC52 = '\x1b]52;c;aGFja2Vk\x07';
const CLEAR = '\x1b[2J\x1b[H';
const TITLE = '\x1b]0;pwned\x07';
const C1 = '\x9b31m';
const RLO = '\u202e';
// Anything but the line feed that separates output lines.
const UNSAFE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/; // eslint-disable-line no-control-regex

function assertPrintable(text: string, what: string): void {
  const m = UNSAFE.exec(text);
  assert.equal(m, null, `${what} holds U+${m?.[0].charCodeAt(0).toString(16).padStart(4, '0')} raw: ${JSON.stringify(text.slice(0, 400))}`);
}

/** One safetensors file of F32 tensors (every element `fill`) with the given metadata. */
function writeFile(file: string, tensors: readonly { name: string; shape: number[] }[], fill: number, metadata: Record<string, string> = {}): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const specs: TensorSpec[] = tensors.map((t) => ({ name: t.name, dtype: 'F32', shape: t.shape }));
  const plan = planSafetensorsFile(path.basename(file), specs, metadata);
  const out = createPlannedFile(file, plan);
  try {
    for (const t of plan.tensors) out.writeAtSync(new Uint8Array(new Float32Array(t.byteLength / 4).fill(fill).buffer), t.position);
  } finally {
    out.syncAndClose();
  }
}

const Q = `model.layers.0.self_attn.q_proj${OSC52}.weight`;
const MLP = `model.layers.0.${CLEAR}mlp${RLO}.weight`;
const EXTRA = `extra${TITLE}${C1}.weight`;
const SHARED = [
  { name: 'model.embed_tokens.weight', shape: [4, 2] },
  { name: Q, shape: [2, 2] },
  { name: MLP, shape: [2] },
];
const ARCH = `Llama${TITLE}ForCausalLM`;
const NOTE = `${CLEAR}see ${RLO}txt.exe`;

let A: string;
let B: string;
let C: string;

before(() => {
  ensureCli();
  A = path.join(root, 'a');
  B = path.join(root, 'b');
  C = path.join(root, 'c');
  writeFile(path.join(A, 'model.safetensors'), [...SHARED, { name: EXTRA, shape: [1] }], 1, { note: NOTE });
  writeFile(path.join(B, 'model.safetensors'), SHARED, 1.5);
  writeFile(path.join(C, 'model.safetensors'), SHARED, 2);
  for (const d of [A, B, C]) fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ architectures: [ARCH], model_type: 'llama' }));
});

describe('layer grouping on hostile names (item 3)', () => {
  it('classifies a 1 MB name in well under a second (in a process of its own)', () => {
    const script = path.join(root, 'classify.ts');
    fs.writeFileSync(
      script,
      `import { classifyTensors, moduleKindOf } from ${JSON.stringify(path.join(REPO_ROOT, 'src/core/checkpoint/layers.ts'))};
const names = ['model.layers.0.' + 'norm'.repeat(262144), 'x.' + 'ln_1'.repeat(262144), 'model.layers.1.' + 'layernorm'.repeat(116509) + '.weight'];
const t0 = performance.now();
const groups = classifyTensors(names);
for (const n of names) moduleKindOf(n);
const ms = performance.now() - t0;
process.stdout.write(JSON.stringify({ ms, groups: [...groups.values()], lengths: names.map((n) => n.length) }));
`,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, `the classification did not finish in 30 s (status ${r.status}, signal ${r.signal}): ${r.stderr}`);
    const out = JSON.parse(r.stdout) as { ms: number; groups: { role: string; module: string }[]; lengths: number[] };
    assert.ok(out.lengths.every((n) => n >= 1_000_000), 'the names are 1 MB long');
    assert.ok(out.ms < 1000, `classifying three 1 MB names took ${out.ms.toFixed(0)} ms`);
    for (const g of out.groups) assert.deepEqual(g, { role: 'other', module: 'other' }, 'names over the analysed length are grouped as Other');
  });

  it('`inspect` of a header full of long hostile names finishes in bounded time', () => {
    const dir = path.join(root, 'long-names');
    const tensors = [
      { name: 'model.layers.0.' + 'norm'.repeat(262144), shape: [1] }, // 1 MB
      ...Array.from({ length: 200 }, (_, i) => ({ name: `model.layers.${i}.` + ['norm', 'ln_1', 'layernorm', 'ln_f'][i % 4]!.repeat(4096), shape: [1] })), // 16 kB each
      ...Array.from({ length: 2000 }, (_, i) => ({ name: (`model.layers.${i}.` + 'norm'.repeat(256)).slice(0, 1024), shape: [1] })), // at the analysed length
      { name: 'model.layers.0.input_layernorm.weight', shape: [1] },
    ];
    writeFile(path.join(dir, 'model.safetensors'), tensors, 0);
    const r = chatvec(['inspect', dir, '--json'], 60_000);
    assert.equal(r.status, 0, `inspect did not finish (status ${r.status}): ${r.stderr.slice(0, 400)}`);
    assert.ok(r.ms < 15_000, `inspect took ${r.ms.toFixed(0)} ms`);
    const report = JSON.parse(r.stdout) as { groups: { label: string; tensorCount: number }[]; tensorCount: number };
    assert.equal(report.tensorCount, tensors.length);
    assert.equal(report.groups.find((g) => g.label === 'Other')?.tensorCount, 201, 'the 201 names over 1 KiB are Other');
    assert.equal(report.groups.find((g) => g.label === 'Layer 0')?.tensorCount, 2);
  });
});

describe('terminal escapes in names, metadata and paths (item 12)', () => {
  it('`inspect` escapes the architecture and metadata; --json keeps them exact', () => {
    const r = chatvec(['inspect', A]);
    assert.equal(r.status, 0, r.stderr);
    assertPrintable(r.stdout, 'inspect output');
    assert.ok(r.stdout.includes('Llama\\x1b]0;pwned\\x07ForCausalLM'), r.stdout);
    assert.ok(r.stdout.includes('note=\\x1b[2J\\x1b[Hsee \\u202etxt.exe'), r.stdout);
    const j = chatvec(['inspect', A, '--json']);
    assert.equal(j.status, 0, j.stderr);
    const report = JSON.parse(j.stdout) as { architecture: string; shards: { metadata: Record<string, string> }[]; tensors: { name: string }[] };
    assert.equal(report.architecture, ARCH);
    assert.equal(report.shards[0]!.metadata.note, NOTE);
    assert.deepEqual(report.tensors.map((t) => t.name).sort(), [...SHARED.map((t) => t.name), EXTRA].sort());
  });

  it('`diff` escapes tensor names in rows and notes; --json keeps them exact', () => {
    for (const by of ['tensor', 'module', 'layer']) {
      const r = chatvec(['diff', A, B, '--by', by, '--no-cache', '--quiet']);
      assert.equal(r.status, 0, r.stderr);
      assertPrintable(r.stdout, `diff --by ${by}`);
      assertPrintable(r.stderr, `diff --by ${by} (stderr)`);
      assert.ok(r.stdout.includes('extra\\x1b]0;pwned\\x07\\x9b31m.weight'), `the only-in-A note names the tensor escaped:\n${r.stdout}`);
      if (by === 'tensor') {
        assert.ok(r.stdout.includes('model.layers.0.self_attn.q_proj\\x1b]52;c;aGFja2Vk\\x07.weight'), r.stdout);
        assert.ok(r.stdout.includes('model.layers.0.\\x1b[2J\\x1b[Hmlp\\u202e.weight'), r.stdout);
      }
    }
    const j = chatvec(['diff', A, B, '--json', '--no-cache']);
    assert.equal(j.status, 0, j.stderr);
    const report = JSON.parse(j.stdout) as DiffReport;
    assert.deepEqual(report.tensors.map((t) => t.name).sort(), SHARED.map((t) => t.name).sort());
    assert.deepEqual(report.onlyInA, [EXTRA]);
  });

  it('`merge --dry-run` prints the plan with names escaped', () => {
    const recipe = path.join(root, 'plan.yaml');
    fs.writeFileSync(recipe, `merge_method: linear\nmodels:\n  - model: b\n    parameters:\n      weight:\n        - filter: "q_proj\\e]52"\n          value: 0.3\n        - value: 0.5\n  - model: c\n    parameters:\n      weight: 0.5\n`);
    const r = chatvec(['merge', recipe, '--dry-run', '--verbose']);
    assert.equal(r.status, 0, r.stderr);
    assertPrintable(r.stdout, 'the plan');
    assertPrintable(r.stderr, 'the plan (stderr)');
    assert.ok(r.stdout.includes('model.layers.0.self_attn.q_proj\\x1b]52;c;aGFja2Vk\\x07.weight'), r.stdout);
    assert.ok(r.stdout.includes('"q_proj\\x1b]52"'), `the filter text is escaped:\n${r.stdout}`);
  });

  it('error messages quoting a name or a path are escaped', () => {
    const bad = path.join(root, 'bad-header.safetensors');
    const header = Buffer.from(JSON.stringify({ [`w${OSC52}${RLO}`]: 'not an entry' }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    fs.writeFileSync(bad, Buffer.concat([len, header]));
    const r = chatvec(['inspect', bad]);
    assert.equal(r.status, 1, r.stderr);
    assertPrintable(r.stderr, 'the error');
    assert.ok(r.stderr.includes('w\\x1b]52;c;aGFja2Vk\\x07\\u202e'), r.stderr);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, 'one line');

    const missing = path.join(root, `no${CLEAR}such${RLO}`);
    const m = chatvec(['inspect', missing]);
    assert.notEqual(m.status, 0);
    assertPrintable(m.stderr, 'the error');
    assert.ok(m.stderr.includes('no\\x1b[2J\\x1b[Hsuch\\u202e'), m.stderr);
  });
});

describe('diff cache round trip (item 13)', () => {
  const cacheDir = path.join(root, 'cache');
  const stats = (x: readonly number[]): DeltaStats => ({
    elements: 4,
    deltaNorm: x[0]!,
    normA: x[1]!,
    normB: x[2]!,
    relative: x[3]!,
    cosine: x[4]!,
    maxAbsDelta: x[5]!,
    meanAbsDelta: x[6]!,
    changedFraction: x[7]!,
    nonFinite: 0,
  });
  const name = fc.oneof(fc.string({ unit: 'binary' }), fc.constantFrom('\u0000num:NaN', '\u0000num:Infinity', '\u0000num:-0', '\u0000\u0000num:1', '\u0000', '\u0000\u0000', 'num:NaN'));
  const doubles = fc.array(fc.double(), { minLength: 8, maxLength: 8 });

  it('gives back every string and every double (NaN, ±Infinity, -0 included)', () => {
    let n = 0;
    fc.assert(
      fc.property(fc.array(fc.tuple(name, doubles), { minLength: 1, maxLength: 6 }), name, doubles, (rows, verdict, total) => {
        const report: DiffReport = {
          a: verdict,
          b: rows[0]![0],
          total: stats(total),
          lineage: { kind: 'vector', deltaNorm: total[0]!, relative: total[1]!, nonFinite: 0 },
          groups: [{ ...stats(total), label: verdict, role: 'other', layer: null, modules: [{ ...stats(rows[0]![1]), module: 'other' }] }],
          tensors: rows.map(([tensor, x], i) => ({ ...stats(x), name: tensor, role: 'layer', layer: i, module: 'q', shapeA: [2, 2], shapeB: [2, 2], note: tensor })),
          onlyInA: rows.map(([tensor]) => tensor),
          onlyInB: [verdict],
          shapeMismatches: [],
          skipped: rows.map(([tensor]) => ({ name: tensor, reason: verdict })),
          base: null,
          fromCache: false,
          seconds: total[0]!,
        };
        const key = `k${n++}`;
        writeCachedDiff(cacheDir, key, { mode: 'ab', a: [], b: [], base: null }, report);
        assert.deepStrictEqual(readCachedDiff(cacheDir, key), { ...report, fromCache: true });
      }),
      { numRuns: 300 },
    );
  });

  it('ignores entries of the previous encoding', () => {
    assert.ok(DIFF_CACHE_VERSION >= 2);
    const key = 'old';
    const report = { a: 'a', b: 'b', total: stats([1, 1, 1, 1, 1, 1, 1, 1]), lineage: { kind: 'identical' }, groups: [], tensors: [], onlyInA: ['\u0000num:NaN'], onlyInB: [], shapeMismatches: [], fromCache: false, seconds: 1 };
    fs.mkdirSync(cacheDir, { recursive: true });
    fs.writeFileSync(diffCacheFile(cacheDir, key), JSON.stringify({ format: 'chatvec-diff', version: 1, key, inputs: {}, report }));
    assert.equal(readCachedDiff(cacheDir, key), null);
  });
});

describe('recipe and option numbers (item 14a–c)', () => {
  function dryRun(text: string): { status: number | null; stderr: string } {
    const recipe = path.join(root, `r${Math.random().toString(36).slice(2)}.yaml`);
    fs.writeFileSync(recipe, text);
    return chatvec(['merge', recipe, '--dry-run']);
  }

  it('a .nan or .inf parameter is "must be a finite number, got .nan", at the number', () => {
    for (const [value, shown, col] of [
      ['.nan', '.nan', 15],
      ['.inf', '.inf', 15],
      ['-.inf', '-.inf', 15],
      ['[0.5, .NaN]', '.nan', 21],
      ['[{filter: q_proj, value: .inf}]', '.inf', 40],
    ] as const) {
      const r = dryRun(`merge_method: linear\nmodels:\n  - model: b\n    parameters:\n      weight: ${value}\n  - model: c\n    parameters:\n      weight: 0.5\n`);
      assert.equal(r.status, 2, r.stderr);
      assert.ok(r.stderr.includes(`:5:${col}: error: \`weight\` must be a finite number, got ${shown}`), `${value}:\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, /null/);
    }
    const cv = dryRun(`merge_method: chat_vector\nbase_model: b\ntarget_model: c\nchat_models:\n  - model: b\n    ratio: .nan\n`);
    assert.equal(cv.status, 2, cv.stderr);
    assert.match(cv.stderr, /`ratio` must be a finite number, got \.nan/);
  });

  it('merge_method given as a list or a mapping says it must be text', () => {
    for (const [value, got] of [
      ['[linear]', 'a list'],
      ['{linear: 1}', 'a mapping'],
    ]) {
      const r = dryRun(`merge_method: ${value}\nmodels:\n  - model: b\n    parameters:\n      weight: 1\n`);
      assert.equal(r.status, 2, r.stderr);
      assert.ok(r.stderr.includes(`merge_method must be text, one of linear,`) && r.stderr.includes(`(got ${got})`), r.stderr);
      assert.doesNotMatch(r.stderr, /did you mean/);
    }
  });

  it('--ratio and --top take decimal numbers only', () => {
    for (const bad of ['0x10', '0b1', '0o7', 'Infinity', '-Infinity', 'NaN', '', '   ', '1e400', '1_0']) {
      const out = path.join(root, 'ratio-out');
      const r = chatvec(['apply', '--target', C, '--vector', B, `--ratio=${bad}`, '--out', out, '--quiet']);
      assert.equal(r.status, 2, `--ratio "${bad}": ${r.stderr}`);
      assert.ok(r.stderr.includes(`--ratio "${bad}" is not a decimal number`), r.stderr);
      assert.equal(fs.existsSync(out), false);
    }
    const top = chatvec(['diff', B, C, '--top', '0x10', '--quiet']);
    assert.equal(top.status, 2, top.stderr);
    assert.match(top.stderr, /--top must be a positive integer \(got "0x10"\)/);
    for (const [ok, v] of [
      ['1e3', 1000],
      ['-0.5', -0.5],
      ['.5', 0.5],
      ['+2', 2],
      [' 3 ', 3],
      ['1.', 1],
      ['2.5E-1', 0.25],
    ] as const) {
      assert.equal(parseRatio(ok), v, ok);
    }
  });
});
