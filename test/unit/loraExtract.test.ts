// Chat vectors as LoRA adapters (issue 15, adapters out): `extract --rank` against a float64 SVD
// written here (one-sided Jacobi), on tiny models whose τ has a known spectrum — decaying, flat,
// noise-like. Checks Eckart–Young's 1 % rule on the factors as stored, the files as PEFT reads them,
// the round trip extract → apply --vector, --skip-embed with an extended vocabulary, --rank-for
// and --energy (rank_pattern), and the built CLI.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mulPanel, mulPanelT } from '../../src/core/compute/kernels/gemmJs';
import type { ComputeBackend } from '../../src/core/compute/types';
import { gemmSimdKernel } from '../../src/core/compute/kernels/gemmSimd';
import { runApply } from '../../src/core/engine/apply';
import { runExtract } from '../../src/core/engine/extract';
import { ChatVecError } from '../../src/core/errors';
import { readSafetensorsHeader } from '../../src/core/safetensors/reader';
import { runDiff } from '../../src/core/stats/diff';
import { CLI, ensureCli } from './support/builtCli';
import { type FixtureTensor, readAll, rng, writeModel } from './support/recipeFixtures';
import { type Mat, noise, singularValues, withSpectrum } from './support/spectra';

let dir: string;
let n = 0;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-lora-out-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const fresh = (name: string) => path.join(dir, `${name}-${n++}`);

const frob2 = (v: Float64Array) => v.reduce((s, x) => s + x * x, 0);
/** ‖τ‖² minus the best rank-k energy: Eckart–Young's optimal squared error. */
const optimal2 = (s: readonly number[], k: number) => s.slice(k).reduce((a, x) => a + x * x, 0);

const D = 24;
const W = 40;
const V = 32;

interface Pair {
  base: string;
  chat: string;
  /** τ as stored: float32(chat − base) per tensor. */
  tau: Map<string, Mat>;
}

/** Writes base (random) and chat = base + τ; `vocabExtra` rows more in the chat's vocabulary tensors. */
function pair(taus: [string, Mat | number[]][], seed: number, vocabExtra = 0, modelConfig: Record<string, unknown> = {}): Pair {
  const g = rng(seed);
  const baseT: FixtureTensor[] = [];
  const chatT: FixtureTensor[] = [];
  for (const [name, t] of taus) {
    const shape = Array.isArray(t) ? [t.length] : [t.rows, t.cols];
    const count = shape.reduce((a, b) => a * b, 1);
    const b = Array.from({ length: count }, () => 2 * g() - 1);
    const d = Array.isArray(t) ? t : Array.from(t.v);
    baseT.push({ name, shape, values: b });
    const extra = vocabExtra && /embed_tokens|lm_head/.test(name) ? Array.from({ length: vocabExtra * shape[1]! }, () => 2 * g() - 1) : [];
    chatT.push({ name, shape: extra.length ? [shape[0]! + vocabExtra, shape[1]!] : shape, values: [...b.map((x, i) => x + d[i]!), ...extra] });
  }
  const base = writeModel(fresh('base'), baseT, modelConfig);
  const chat = writeModel(fresh('chat'), chatT, modelConfig);
  const [B, C] = [readAll(base), readAll(chat)];
  const tau = new Map<string, Mat>();
  for (const [name, t] of taus) {
    const b = B.get(name)!;
    const c = C.get(name)!;
    const v = Float64Array.from(b.values, (x, i) => Math.fround(c.values[i]! - x));
    tau.set(name, Array.isArray(t) ? { rows: 1, cols: t.length, v } : { rows: t.rows, cols: t.cols, v });
  }
  return { base, chat, tau };
}

const config = (out: string) => JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;

/** scale·B·A (Linear) or scale·(B·A)ᵀ (Embedding) from the adapter's stored factors, float64, with PEFT's scale for the module. */
function product(out: string, module: string, rows: number, cols: number): Float64Array {
  const w = readAll(out);
  const cfg = config(out);
  const rp = (cfg.rank_pattern ?? {}) as Record<string, number>;
  const ap = (cfg.alpha_pattern ?? {}) as Record<string, number>;
  const key = Object.keys(rp).find((k) => module === k || module.endsWith(`.${k}`));
  const scale = (key ? ap[key]! : (cfg.lora_alpha as number)) / (key ? rp[key]! : (cfg.r as number));
  const lin = w.get(`base_model.model.${module}.lora_A.weight`);
  const emb = !lin;
  const A = lin ?? w.get(`base_model.model.${module}.lora_embedding_A`)!;
  const B = emb ? w.get(`base_model.model.${module}.lora_embedding_B`)! : w.get(`base_model.model.${module}.lora_B.weight`)!;
  const k = A.shape[0]!;
  const v = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += emb ? A.values[c * rows + i]! * B.values[j * k + c]! : B.values[i * k + c]! * A.values[c * cols + j]!;
      v[i * cols + j] = scale * s;
    }
  }
  return v;
}

const sub = (x: Float64Array, y: Float64Array) => Float64Array.from(x, (v, i) => v - y[i]!);

const decay = Array.from({ length: D }, (_, i) => 3 * 0.8 ** i);
const flat = Array.from({ length: D }, (_, i) => 1 - 0.005 * i);

describe('extract --rank: the 1 % rule against a float64 SVD', () => {
  let p: Pair;
  let out: string;
  const Q = 'model.layers.0.self_attn.q_proj';
  const DOWN = 'model.layers.0.mlp.down_proj';
  const VP = 'model.layers.0.self_attn.v_proj';
  before(async () => {
    p = pair(
      [
        ['model.embed_tokens.weight', noise(V, D, 5, 0.1)],
        [`${Q}.weight`, withSpectrum(D, W, decay, 1)],
        [`${DOWN}.weight`, withSpectrum(W, D, flat, 2)],
        [`${VP}.weight`, noise(D, W, 3, 0.05)],
        ['model.layers.0.input_layernorm.weight', Array.from({ length: W }, (_, i) => 0.001 * i)],
        ['model.norm.weight', Array.from({ length: W }, (_, i) => -0.002 * i)],
        ['lm_head.weight', withSpectrum(V, D, decay.slice(0, 12), 4)],
      ],
      10,
    );
    out = fresh('adapter');
    await runExtract({ base: p.base, chat: p.chat, out, rank: 4, threads: 2 });
  });

  /**
   * Eckart–Young's 1 % rule for every matrix of the adapter at `at`, and the report's figures
   * against the factors as stored; `energySlack`: how far the reported energy may exceed the optimum.
   */
  function assertOnePercent(at: string, energySlack: number): void {
    const report = JSON.parse(fs.readFileSync(path.join(at, 'chatvec_extract.json'), 'utf8')) as { matrices: { module: string; energy: number; relativeError: number; rank: number }[]; total: { energy: number; relativeError: number } };
    let [norm2, err2] = [0, 0];
    for (const module of ['model.embed_tokens', Q, DOWN, VP, 'lm_head']) {
      const tau = p.tau.get(`${module}.weight`)!;
      const s = singularValues(tau);
      const e2 = frob2(sub(tau.v, product(at, module, tau.rows, tau.cols)));
      const opt2 = optimal2(s, 4);
      assert.ok(opt2 > 1e-6 * frob2(tau.v), `${module}: the fixture's optimal error is well above float32 rounding`);
      assert.ok(Math.sqrt(e2) <= 1.01 * Math.sqrt(opt2), `${module}: error ${Math.sqrt(e2)} vs optimal ${Math.sqrt(opt2)}`);
      const m = report.matrices.find((x) => x.module === module)!;
      assert.equal(m.rank, 4, module);
      const rel = Math.sqrt(e2 / frob2(tau.v));
      assert.ok(Math.abs(m.relativeError - rel) <= 1e-5 * rel, `${module}: reported relative error ${m.relativeError} vs ${rel}`);
      assert.ok(Math.abs(m.energy - (1 - rel * rel)) <= 1e-5, `${module}: reported energy ${m.energy} vs 1 − error² ${1 - rel * rel}`);
      assert.ok(m.energy <= 1 - opt2 / frob2(tau.v) + energySlack, `${module}: no more energy than the optimum`);
      norm2 += frob2(tau.v);
      err2 += e2;
    }
    assert.ok(Math.abs(report.total.relativeError - Math.sqrt(err2 / norm2)) <= 1e-5, 'total relative error');
  }

  it('every matrix is within 1 % of the optimal rank-4 error (decaying, flat, noise-like spectra; Linear and Embedding)', () => {
    assertOnePercent(out, 1e-9);
  });

  it('--backend gpu (the GEMMs on the GPU, summed in float32) meets the same 1 % rule', async (t) => {
    const onGpu = fresh('adapter-gpu');
    const logs: string[] = [];
    const r = await runExtract({ base: p.base, chat: p.chat, out: onGpu, rank: 4, threads: 2, backend: 'gpu' }, { onLog: (level, message) => logs.push(`${level}: ${message}`) });
    if (!r.backend.startsWith('gpu')) {
      if (process.env.CHATVEC_GPU_TEST === 'require') assert.fail(`no GPU: ${logs.join('; ')}`);
      t.skip(`no usable WebGPU adapter (${logs.join('; ')})`);
      return;
    }
    assert.ok(!logs.some((l) => /GPU failure/.test(l)), logs.join('\n'));
    assert.match(r.backend, /GEMMs/);
    // float32 sums move the captured energy by rounding only (the eigenvalues of a float32 product).
    assertOnePercent(onGpu, 1e-6);
  });

  it('a GPU failure mid-job reruns the factorisations on the CPU: the CPU bytes, and a warning', async (t) => {
    const failing = (g: ComputeBackend): ComputeBackend => ({
      kind: 'gpu',
      name: g.name,
      describe: () => g.describe(),
      combine: (a, o) => g.combine(a, o),
      diff: (a, o) => g.diff(a, o),
      lowRank: (a, out, o) => g.lowRank(a, out, o),
      dispose: () => g.dispose(),
      gemm: () => ({
        impl: 'wgsl',
        mulPanel: () => Promise.reject(new ChatVecError('Internal', 'injected GPU failure')),
        mulPanelT: () => Promise.reject(new ChatVecError('Internal', 'injected GPU failure')),
        release: () => {},
      }),
    });
    const rerun = fresh('adapter-rerun');
    const logs: string[] = [];
    const r = await runExtract({ base: p.base, chat: p.chat, out: rerun, rank: 4, threads: 2, backend: 'gpu' }, { onLog: (level, message) => logs.push(`${level}: ${message}`), compute: { wrapGpu: failing } });
    if (!r.backend.startsWith('gpu')) {
      if (process.env.CHATVEC_GPU_TEST === 'require') assert.fail(`no GPU: ${logs.join('; ')}`);
      t.skip(`no usable WebGPU adapter (${logs.join('; ')})`);
      return;
    }
    assert.ok(logs.some((l) => /^warn: GPU failure mid-job \(injected GPU failure\)/.test(l)), logs.join('\n'));
    assert.deepEqual(fs.readFileSync(path.join(rerun, 'adapter_model.safetensors')), fs.readFileSync(path.join(out, 'adapter_model.safetensors')));
  });

  it('writes adapter_config.json and adapter_model.safetensors as PEFT reads them, the 1-D deltas exactly beside them', () => {
    const cfg = config(out);
    const PEFT_KEYS = ['peft_type', 'task_type', 'base_model_name_or_path', 'r', 'lora_alpha', 'target_modules', 'rank_pattern', 'alpha_pattern', 'lora_dropout', 'bias', 'fan_in_fan_out', 'use_rslora', 'use_dora', 'init_lora_weights', 'inference_mode', 'modules_to_save', 'layers_to_transform', 'layers_pattern', 'revision'];
    for (const k of Object.keys(cfg)) assert.ok(PEFT_KEYS.includes(k), `adapter_config.json key "${k}" is a LoraConfig field`);
    assert.equal(cfg.peft_type, 'LORA');
    assert.equal(cfg.task_type, 'CAUSAL_LM');
    assert.equal(cfg.r, 4);
    assert.equal(cfg.lora_alpha, 4);
    assert.equal(cfg.base_model_name_or_path, p.base);
    assert.deepEqual(cfg.target_modules, ['down_proj', 'embed_tokens', 'lm_head', 'q_proj', 'v_proj']);
    assert.deepEqual(cfg.rank_pattern, {});
    const header = readSafetensorsHeader(path.join(out, 'adapter_model.safetensors'));
    const shapes = Object.fromEntries(header.tensors.map((t) => [t.name, [t.dtype, ...t.shape]]));
    assert.deepEqual(shapes, {
      'base_model.model.model.embed_tokens.lora_embedding_A': ['F32', 4, V],
      'base_model.model.model.embed_tokens.lora_embedding_B': ['F32', D, 4],
      [`base_model.model.${Q}.lora_A.weight`]: ['F32', 4, W],
      [`base_model.model.${Q}.lora_B.weight`]: ['F32', D, 4],
      [`base_model.model.${DOWN}.lora_A.weight`]: ['F32', 4, D],
      [`base_model.model.${DOWN}.lora_B.weight`]: ['F32', W, 4],
      [`base_model.model.${VP}.lora_A.weight`]: ['F32', 4, W],
      [`base_model.model.${VP}.lora_B.weight`]: ['F32', D, 4],
      'base_model.model.lm_head.lora_A.weight': ['F32', 4, D],
      'base_model.model.lm_head.lora_B.weight': ['F32', V, 4],
    });
    assert.equal(header.metadata?.format, 'pt');
    const deltas = readAll(path.join(out, 'chatvec_deltas.safetensors'));
    assert.deepEqual([...deltas.keys()].sort(), ['model.layers.0.input_layernorm.weight', 'model.norm.weight']);
    for (const [name, t] of deltas) assert.deepEqual(Array.from(t.values), Array.from(p.tau.get(name)!.v), `${name} stored exactly`);
    const card = fs.readFileSync(path.join(out, 'README.md'), 'utf8');
    assert.match(card, /^---\nlibrary_name: peft\n/);
    assert.match(card, /captured energy Σ s_i² \/ ‖τ‖² over 5 matrices: \d+\.\d\d %; relative error ‖τ − B·A‖ \/ ‖τ‖: \d+\.\d\d %/);
    assert.match(card, /\| `model\.layers\.0\.self_attn\.q_proj` \| 24×40 \| 4 \| \d+\.\d\d % \| \d+\.\d\d % \|/);
  });

  it('gives the same bytes on one thread as on two', async () => {
    const one = fresh('adapter');
    await runExtract({ base: p.base, chat: p.chat, out: one, rank: 4, threads: 1 });
    assert.deepEqual(fs.readFileSync(path.join(one, 'adapter_model.safetensors')), fs.readFileSync(path.join(out, 'adapter_model.safetensors')));
  });

  it('round trip: apply --vector ADAPTER gives cp + ratio·(low-rank τ + exact 1-D τ)', async () => {
    const g = rng(77);
    const cp = writeModel(
      fresh('cp'),
      [...readAll(p.base)].map(([name, t]) => ({ name, shape: t.shape, values: Array.from(t.values, (x) => x + 0.01 * (g() - 0.5)) })),
    );
    const merged = fresh('merged');
    await runApply({ target: cp, vectors: [out], ratios: [0.5], out: merged, threads: 2 });
    const [P, O] = [readAll(cp), readAll(merged)];
    for (const [name, tau] of p.tau) {
      const lowRank = tau.rows > 1 ? product(out, name.slice(0, -'.weight'.length), tau.rows, tau.cols) : tau.v;
      const want = Float64Array.from(P.get(name)!.values, (x, i) => x + 0.5 * lowRank[i]!);
      const got = O.get(name)!.values;
      for (let i = 0; i < want.length; i++) if (Math.abs(got[i]! - want[i]!) > 2e-6 * (1 + Math.abs(want[i]!))) assert.fail(`${name}[${i}]: ${got[i]} vs ${want[i]}`);
    }
  });
});

describe('extract --rank options', () => {
  it('--skip-embed leaves the vocabulary out, so an extended-vocabulary chat and CP work', async () => {
    const p = pair(
      [
        ['model.embed_tokens.weight', noise(V, D, 20, 0.1)],
        ['model.layers.0.self_attn.q_proj.weight', withSpectrum(D, W, decay, 21)],
        ['model.norm.weight', Array.from({ length: W }, () => 0.01)],
        ['lm_head.weight', noise(V, D, 22, 0.1)],
      ],
      23,
      4,
    );
    await assert.rejects(runExtract({ base: p.base, chat: p.chat, out: fresh('adapter'), rank: 2, threads: 2 }), (e: unknown) => e instanceof ChatVecError && e.code === 'ShapeMismatch');
    const out = fresh('adapter');
    await runExtract({ base: p.base, chat: p.chat, out, rank: 2, skipEmbed: true, threads: 2 });
    const keys = readSafetensorsHeader(path.join(out, 'adapter_model.safetensors')).tensors.map((t) => t.name);
    assert.deepEqual(keys.sort(), ['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight']);
    assert.deepEqual(config(out).target_modules, ['q_proj']);
    const C = readAll(p.chat);
    const cp = writeModel(fresh('cp'), [...C].map(([name, t]) => ({ name, shape: t.shape, values: Array.from(t.values, (x) => -x) })));
    for (const skipEmbed of [false, true]) {
      const merged = fresh('merged');
      await runApply({ target: cp, vectors: [out], out: merged, skipEmbed, threads: 2 });
      const [P, O] = [readAll(cp), readAll(merged)];
      for (const name of ['model.embed_tokens.weight', 'lm_head.weight']) assert.deepEqual(O.get(name)!.bytes, P.get(name)!.bytes, `${name} is the CP's (${V + 4} rows)`);
      const q = 'model.layers.0.self_attn.q_proj';
      const ba = product(out, q, D, W);
      const want = Float64Array.from(P.get(`${q}.weight`)!.values, (x, i) => x + ba[i]!);
      const got = O.get(`${q}.weight`)!.values;
      for (let i = 0; i < want.length; i++) if (Math.abs(got[i]! - want[i]!) > 2e-6 * (1 + Math.abs(want[i]!))) assert.fail(`q_proj[${i}]`);
      const nt = p.tau.get('model.norm.weight')!.v;
      assert.deepEqual(Array.from(O.get('model.norm.weight')!.values), Array.from(P.get('model.norm.weight')!.values, (x, i) => Math.fround(x + nt[i]!)));
    }
  });

  it('--rank-for and --energy choose ranks per module and write rank_pattern/alpha_pattern (scale 1 everywhere)', async () => {
    const Q = 'model.layers.0.self_attn.q_proj';
    const K = 'model.layers.0.self_attn.k_proj';
    const DOWN = 'model.layers.0.mlp.down_proj';
    const UP = 'model.layers.0.mlp.up_proj';
    const steep = [4, 3, 2, 1, ...Array.from({ length: 20 }, (_, i) => 0.05 * 0.9 ** i)];
    const p = pair(
      [
        [`${Q}.weight`, withSpectrum(D, W, steep, 30)],
        [`${K}.weight`, withSpectrum(D, W, flat, 31)],
        [`${DOWN}.weight`, withSpectrum(W, D, steep, 32)],
        [`${UP}.weight`, withSpectrum(W, D, steep, 33)],
      ],
      34,
    );
    const out = fresh('adapter');
    await runExtract({ base: p.base, chat: p.chat, out, rank: 8, energy: 0.9, rankFor: [['down_proj', 2], ['mlp.up_proj', 6]], threads: 2 });
    // Reference ranks: the fewest singular values holding 90 % of ‖τ‖², at most the module's rank.
    const energyRank = (s: number[], max: number) => {
      const total = s.reduce((a, x) => a + x * x, 0);
      let acc = 0;
      for (let k = 1; k <= max; k++) if ((acc += s[k - 1]! ** 2) >= 0.9 * total) return k;
      return max;
    };
    const want: Record<string, number> = {
      [Q]: energyRank(singularValues(p.tau.get(`${Q}.weight`)!), 8),
      [K]: energyRank(singularValues(p.tau.get(`${K}.weight`)!), 8),
      [DOWN]: energyRank(singularValues(p.tau.get(`${DOWN}.weight`)!), 2),
      [UP]: energyRank(singularValues(p.tau.get(`${UP}.weight`)!), 6),
    };
    assert.deepEqual(want, { [Q]: 3, [K]: 8, [DOWN]: 2, [UP]: 3 }, 'the fixture gives distinct cases');
    const cfg = config(out);
    assert.equal(cfg.r, 8);
    assert.equal(cfg.lora_alpha, 8);
    assert.deepEqual(cfg.rank_pattern, { [Q]: 3, [DOWN]: 2, [UP]: 3 });
    assert.deepEqual(cfg.alpha_pattern, cfg.rank_pattern);
    const header = readSafetensorsHeader(path.join(out, 'adapter_model.safetensors'));
    for (const [module, k] of Object.entries(want)) {
      assert.equal(header.tensors.find((t) => t.name === `base_model.model.${module}.lora_A.weight`)!.shape[0], k, module);
      const tau = p.tau.get(`${module}.weight`)!;
      const s = singularValues(tau);
      const e = Math.sqrt(frob2(sub(tau.v, product(out, module, tau.rows, tau.cols))));
      assert.ok(e <= 1.01 * Math.sqrt(optimal2(s, k)), `${module}: rank-${k} error ${e} vs optimal ${Math.sqrt(optimal2(s, k))}`);
    }
  });

  it('refuses bad options before writing anything', async () => {
    const p = pair([['model.layers.0.self_attn.q_proj.weight', noise(D, W, 40)]], 41);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ energy: 0.9 }, /--rank must be a whole number ≥ 1 .*--energy and --rank-for need it/],
      [{ rank: 4, energy: 1.5 }, /--energy must be in \(0, 1\]/],
      [{ rank: 4, rankFor: [['.*proj', 2]] }, /--rank-for \.\*proj=2: the pattern must be a module name/],
      [{ rank: 4, dtype: 'BF16' }, /extract --rank writes float32 factors/],
    ];
    for (const [o, message] of cases) {
      const out = fresh('adapter');
      await assert.rejects(runExtract({ base: p.base, chat: p.chat, out, threads: 1, ...o }), (e: unknown) => e instanceof ChatVecError && message.test(e.message), String(message));
      assert.ok(!fs.existsSync(out));
    }
  });
});

describe('extract --rank on GPT-2 (Conv1D weights stored [in, out]): PEFT fan_in_fan_out factors', () => {
  const GPT2 = { architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', n_layer: 1 };
  // The Hub's gpt2 files name tensors `h.0.…`; PEFT names GPT2LMHeadModel's modules `transformer.h.0.…`.
  const CONV: [string, number, number, number][] = [
    ['h.0.attn.c_attn', D, 3 * D, 1],
    ['h.0.attn.c_proj', D, D, 2],
    ['h.0.mlp.c_fc', D, W, 3],
    ['h.0.mlp.c_proj', W, D, 4],
  ];
  let p: Pair;
  let out: string;
  before(async () => {
    p = pair(
      [
        ['wte.weight', noise(V, D, 5, 0.1)],
        ...CONV.map(([m, rows, cols, seed]): [string, Mat] => [`${m}.weight`, withSpectrum(rows, cols, decay, seed)]),
        ['h.0.attn.c_attn.bias', Array.from({ length: 3 * D }, (_, i) => 0.001 * i)],
        ['ln_f.weight', Array.from({ length: D }, (_, i) => -0.002 * i)],
      ],
      11,
      0,
      GPT2,
    );
    out = fresh('adapter');
    await runExtract({ base: p.base, chat: p.chat, out, rank: 4, threads: 2 });
  });

  /** (B·A)ᵀ from the stored lora_A [k, in] and lora_B [out, k], float64 (PEFT's transpose(B @ A, fan_in_fan_out)). */
  function conv1dProduct(module: string, rows: number, cols: number): Float64Array {
    const w = readAll(out);
    const A = w.get(`base_model.model.transformer.${module}.lora_A.weight`)!;
    const B = w.get(`base_model.model.transformer.${module}.lora_B.weight`)!;
    assert.deepEqual([A.shape, B.shape], [[4, rows], [cols, 4]], `${module}: A [r, in], B [out, r]`);
    const v = new Float64Array(rows * cols);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) for (let c = 0; c < 4; c++) v[i * cols + j] = v[i * cols + j]! + A.values[c * rows + i]! * B.values[j * 4 + c]!;
    return v;
  }

  it('writes fan_in_fan_out: true, PEFT module names, and every Conv1D τ within 1 % of the optimal rank-4 error', () => {
    const cfg = config(out);
    assert.equal(cfg.fan_in_fan_out, true);
    assert.deepEqual(cfg.target_modules, ['c_attn', 'c_fc', 'c_proj', 'wte']);
    for (const [m, rows, cols] of CONV) {
      const tau = p.tau.get(`${m}.weight`)!;
      const e2 = frob2(sub(tau.v, conv1dProduct(m, rows, cols)));
      const opt2 = optimal2(singularValues(tau), 4);
      assert.ok(opt2 > 1e-6 * frob2(tau.v), `${m}: the fixture's optimal error is well above float32 rounding`);
      assert.ok(Math.sqrt(e2) <= 1.01 * Math.sqrt(opt2), `${m}: error ${Math.sqrt(e2)} vs optimal ${Math.sqrt(opt2)}`);
    }
    assert.ok(readAll(out).has('base_model.model.transformer.wte.lora_embedding_A'), 'the embedding keeps lora_embedding_* (always transposed in PEFT)');
    assert.deepEqual([...readAll(path.join(out, 'chatvec_deltas.safetensors')).keys()].sort(), ['h.0.attn.c_attn.bias', 'ln_f.weight']);
  });

  it('apply --vector reads it back: base + (B·A)ᵀ per Conv1D weight, the 1-D deltas exactly, against float64', async () => {
    const applied = fresh('applied');
    await runApply({ target: p.base, vectors: [out], out: applied, threads: 2 });
    const [B, O] = [readAll(p.base), readAll(applied)];
    for (const [m, rows, cols] of CONV) {
      const want = conv1dProduct(m, rows, cols).map((x, i) => B.get(`${m}.weight`)!.values[i]! + x);
      const got = O.get(`${m}.weight`)!.values;
      for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 2 ** -22 * (1 + Math.abs(want[i]!)), `${m}[${i}]: ${got[i]} vs ${want[i]}`);
    }
    const bias = O.get('h.0.attn.c_attn.bias')!.values;
    bias.forEach((x, i) => assert.equal(x, Math.fround(B.get('h.0.attn.c_attn.bias')!.values[i]! + p.tau.get('h.0.attn.c_attn.bias')!.v[i]!), `bias[${i}]`));
  });

  it('diff BASE ADAPTER finds the Conv1D weights under the file\'s `h.0.…` names: ‖(B·A)ᵀ‖ per weight', async () => {
    const report = await runDiff({ a: p.base, b: out, threads: 2 });
    for (const [m, rows, cols] of CONV) {
      const t = report.tensors.find((x) => x.name === `${m}.weight`);
      assert.ok(t, `${m}.weight is listed`);
      const norm = Math.sqrt(frob2(conv1dProduct(m, rows, cols)));
      assert.ok(Math.abs(t.deltaNorm - norm) <= 1e-5 * norm, `${m}: ‖Δ‖ ${t.deltaNorm} vs ${norm}`);
    }
  });
});

describe('extract --rank through the built CLI', () => {
  before(() => ensureCli());
  it('prints the captured energy and relative error, and inspect reads the adapter', () => {
    const p = pair(
      [
        ['model.layers.0.self_attn.q_proj.weight', withSpectrum(D, W, decay, 50)],
        ['model.layers.0.self_attn.v_proj.weight', noise(D, W, 51)],
        ['model.norm.weight', Array.from({ length: W }, () => 0.01)],
      ],
      52,
    );
    const out = fresh('adapter');
    const env = { ...process.env, CHATVEC_WORKER_SCRIPT: '' };
    const r = spawnSync(process.execPath, [CLI, 'extract', '--base', p.base, '--chat', p.chat, '--out', out, '--rank', '4', '--rank-for', 'v_proj=2', '--threads', '2'], { encoding: 'utf8', env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^wrote LoRA adapter .*: 5 tensors, .* \(cpu \(2 threads\)\); 2 matrices factored: \d+\.\d\d % of the energy captured, relative error \d+\.\d\d %$/m);
    assert.match(r.stderr, /model\.layers\.0\.self_attn\.v_proj\.weight: rank 2, energy \d+\.\d\d %, relative error \d+\.\d\d %/);
    const quiet = spawnSync(process.execPath, [CLI, 'extract', '--base', p.base, '--chat', p.chat, '--out', fresh('adapter'), '--rank', '2', '--quiet'], { encoding: 'utf8', env });
    assert.equal(quiet.status, 0, quiet.stderr);
    assert.equal(quiet.stdout + quiet.stderr, '', '--quiet prints nothing, not the per-matrix lines');
    const i = spawnSync(process.execPath, [CLI, 'inspect', out], { encoding: 'utf8', env });
    assert.equal(i.status, 0, i.stderr);
    assert.match(i.stdout, /PEFT LoRA, r 4 \(also 2 by rank_pattern\), alpha 4 \(scale 1\)/);
    const bad = spawnSync(process.execPath, [CLI, 'extract', '--base', p.base, '--chat', p.chat, '--out', fresh('x'), '--rank', '4', '--energy', '2'], { encoding: 'utf8', env });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--energy "2" must be a fraction in \(0, 1\]/);
  });
});

describe('the GEMM kernels of the factorisation', () => {
  it('mulPanel and mulPanelT equal a float64 reference (row counts not a multiple of four)', () => {
    const g = rng(90);
    for (const [m, k, l] of [[7, 5, 3], [9, 13, 4], [1, 3, 2]] as const) {
      const M = Float32Array.from({ length: m * k }, () => 2 * g() - 1);
      const X = Float64Array.from({ length: k * l }, () => 2 * g() - 1);
      const Y = Float64Array.from({ length: m * l }, () => 2 * g() - 1);
      const out = new Float64Array(m * l).fill(NaN);
      const outT = new Float64Array(k * l).fill(NaN);
      mulPanel(M, m, k, X, l, out);
      mulPanelT(M, m, k, Y, l, outT);
      for (let i = 0; i < m; i++) {
        for (let c = 0; c < l; c++) {
          let s = 0;
          for (let j = 0; j < k; j++) s += M[i * k + j]! * X[j * l + c]!;
          assert.ok(Math.abs(out[i * l + c]! - s) <= 1e-14 * (1 + Math.abs(s)), `M·X [${i}, ${c}]`);
        }
      }
      for (let j = 0; j < k; j++) {
        for (let c = 0; c < l; c++) {
          let s = 0;
          for (let i = 0; i < m; i++) s += M[i * k + j]! * Y[i * l + c]!;
          assert.ok(Math.abs(outT[j * l + c]! - s) <= 1e-14 * (1 + Math.abs(s)), `Mᵀ·Y [${j}, ${c}]`);
        }
      }
    }
  });

  it('the WebAssembly SIMD kernels give the same bits as the JavaScript ones (odd and even panel widths, any row count)', () => {
    const simd = gemmSimdKernel();
    assert.ok(simd, 'WebAssembly SIMD is available on the test runtime');
    const g = rng(91);
    for (const [m, k, l] of [[7, 5, 3], [9, 13, 4], [1, 3, 2], [12, 17, 27], [4, 4, 1]] as const) {
      const { tau, panels } = simd.arrays(m * k, [k * l, m * l, m * l, k * l]);
      const [X, Y, out, outT] = panels as [Float64Array, Float64Array, Float64Array, Float64Array];
      for (let i = 0; i < tau.length; i++) tau[i] = 2 * g() - 1;
      for (let i = 0; i < X.length; i++) X[i] = 2 * g() - 1;
      for (let i = 0; i < Y.length; i++) Y[i] = 2 * g() - 1;
      simd.mulPanel(tau, m, k, X, l, out);
      simd.mulPanelT(tau, m, k, Y, l, outT);
      const want = new Float64Array(m * l);
      const wantT = new Float64Array(k * l);
      mulPanel(Float32Array.from(tau), m, k, Float64Array.from(X), l, want);
      mulPanelT(Float32Array.from(tau), m, k, Float64Array.from(Y), l, wantT);
      assert.deepEqual(Array.from(out), Array.from(want), `M·X ${m}×${k}·${l}`);
      assert.deepEqual(Array.from(outT), Array.from(wantT), `Mᵀ·Y ${m}×${k}·${l}`);
    }
  });
});
