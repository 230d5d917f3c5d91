// The energy-at-rank estimate (compute/randomizedSvd.ts rankEnergy; the `rankEnergy` job of
// engine/rankEnergy.ts): against singular values from a one-sided Jacobi SVD written here in float64.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { gemmResidualNorm2, rankEnergy } from '../../src/core/compute/randomizedSvd';
import { gemmJsKernel } from '../../src/core/compute/kernels/gemmSimd';
import { gemmSimdKernel } from '../../src/core/compute/kernels/gemmSimd';
import { runEnergyAtRank } from '../../src/core/engine/energyAtRank';
import { ChatVecError } from '../../src/core/errors';
import { CLI, ensureCli } from './support/builtCli';
import { type FixtureTensor, readAll, rng, writeModel } from './support/recipeFixtures';
import { type Mat as MatOf, asFloat32, noise as uniform, singularValues, withSpectrum as spectrum } from './support/spectra';

type Mat = MatOf<Float32Array>;

/** U·diag(σ)·Vᵀ (random orthonormal U, V), rounded to float32. */
const withSpectrum = (rows: number, cols: number, sigma: readonly number[], seed: number): Mat => asFloat32(spectrum(rows, cols, sigma, seed));
const noise = (rows: number, cols: number, seed: number): Mat => asFloat32(uniform(rows, cols, seed));

/** The exact fraction Σ_{i≤k} σ_i² / Σ σ_i². */
function exactEnergy(m: Mat, k: number): number {
  const s = singularValues(m).map((x) => x * x);
  const total = s.reduce((a, x) => a + x, 0);
  return s.slice(0, k).reduce((a, x) => a + x, 0) / total;
}

const opts = (rank: number, seed = 11) => ({ maxRank: rank, oversample: 10, powerIterations: 1, seed });
const D = 40;
const decaying = Array.from({ length: D }, (_, i) => 3 * 0.8 ** i);
const flat = Array.from({ length: D }, (_, i) => 1 - 0.005 * i);
const slow = Array.from({ length: D }, (_, i) => 1 / Math.sqrt(i + 1));

describe('rankEnergy: the energy an optimal rank-R approximation keeps', () => {
  const cases: [string, Mat][] = [
    ['decaying spectrum', withSpectrum(96, 64, decaying, 1)],
    ['flat spectrum', withSpectrum(64, 96, flat, 2)],
    ['slowly decaying spectrum', withSpectrum(80, 80, slow, 3)],
    ['noise (uniform values)', noise(120, 72, 4)],
  ];
  for (const [label, m] of cases) {
    it(`${label}: never above the exact energy, at most 1 % of ‖τ‖² below it (ranks 1, 4, 16)`, () => {
      for (const rank of [1, 4, 16]) {
        const exact = exactEnergy(m, rank);
        const r = rankEnergy(m.v, m.rows, m.cols, opts(rank));
        const got = r.captured2 / r.norm2;
        assert.ok(got <= exact + 1e-9, `${label} rank ${rank}: ${got} above the exact ${exact}`);
        assert.ok(exact - got <= 0.01, `${label} rank ${rank}: ${got} more than 1 % below the exact ${exact}`);
        assert.equal(r.rank, rank);
        let norm2 = 0;
        for (const x of m.v) norm2 += x * x;
        assert.ok(Math.abs(r.norm2 - norm2) <= 1e-12 * norm2);
      }
    });
  }

  it('an exactly rank-3 τ has all its energy at rank 3 and the top singular value’s share at rank 1', () => {
    const m = withSpectrum(50, 30, [4, 2, 1], 5);
    const r3 = rankEnergy(m.v, m.rows, m.cols, opts(3));
    assert.ok(Math.abs(r3.captured2 / r3.norm2 - 1) < 1e-6);
    const r1 = rankEnergy(m.v, m.rows, m.cols, opts(1));
    assert.ok(Math.abs(r1.captured2 / r1.norm2 - exactEnergy(m, 1)) < 1e-6);
  });

  it('a zero τ captures 0 of 0; a rank above min(m, n) is capped (all the energy)', () => {
    const z = rankEnergy(new Float32Array(12), 3, 4, opts(2));
    assert.equal(z.norm2, 0);
    assert.equal(z.captured2, 0);
    const m = noise(6, 5, 6);
    const r = rankEnergy(m.v, 6, 5, opts(64));
    assert.equal(r.rank, 5);
    assert.ok(Math.abs(r.captured2 / r.norm2 - 1) < 1e-9);
  });

  it('the WebAssembly SIMD GEMMs give the same figures as the JavaScript ones', (t) => {
    const simd = gemmSimdKernel();
    if (!simd) return t.skip('no WebAssembly SIMD here');
    const m = noise(70, 45, 7);
    const l = 4 + 10;
    const { tau, panels } = simd.arrays(m.v.length, [70 * l, 45 * l, 45 * l]);
    tau.set(m.v);
    const a = rankEnergy(tau, 70, 45, opts(4), { gemm: simd, q: panels[0]!, z: panels[1]!, omega: panels[2]! });
    const b = rankEnergy(m.v, 70, 45, opts(4));
    assert.deepEqual(a, b);
  });
});

describe('the energyAtRank job on real safetensors', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-energy-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const taus: [string, Mat | number[]][] = [
    ['model.embed_tokens.weight', withSpectrum(48, 24, flat.slice(0, 24), 21)],
    ['model.layers.0.self_attn.q_proj.weight', withSpectrum(24, 24, decaying.slice(0, 24), 22)],
    ['model.layers.0.mlp.up_proj.weight', noise(40, 24, 23)],
    ['model.layers.0.input_layernorm.weight', Array.from({ length: 24 }, (_, i) => 0.01 * i)],
  ];
  const g = rng(20);
  const baseT: FixtureTensor[] = [];
  const chatT: FixtureTensor[] = [];
  for (const [name, t] of taus) {
    const shape = Array.isArray(t) ? [t.length] : [t.rows, t.cols];
    const b = Array.from({ length: Array.isArray(t) ? t.length : t.v.length }, () => 2 * g() - 1);
    const d = Array.isArray(t) ? t : Array.from(t.v);
    baseT.push({ name, shape, values: b });
    chatT.push({ name, shape, values: b.map((x, i) => x + d[i]!) });
  }
  const base = writeModel(path.join(dir, 'base'), baseT);
  const chat = writeModel(path.join(dir, 'chat'), chatT);
  // τ as the job sees it: float32(chat − base) of the stored values.
  const [B, C] = [readAll(base), readAll(chat)];
  const stored = (name: string, rows: number, cols: number): Mat => ({ rows, cols, v: Float32Array.from(B.get(name)!.values, (x, i) => C.get(name)!.values[i]! - x) });

  it('each matrix within [exact − 1 %, exact]; layers and total are Σ captured / Σ ‖τ‖²; 1-D tensors left out', async () => {
    const r = await runEnergyAtRank({ base, chat, rank: 3, threads: 2 });
    assert.equal(r.rank, 3);
    assert.equal(r.notMatrices, 1);
    assert.deepEqual(r.matrices.map((m) => m.name).sort(), taus.filter(([, t]) => !Array.isArray(t)).map(([n]) => n).sort());
    for (const m of r.matrices) {
      const exact = exactEnergy(stored(m.name, m.shape[0], m.shape[1]), 3);
      assert.ok(m.energy <= exact + 1e-9 && m.energy >= exact - 0.01, `${m.name}: ${m.energy} vs exact ${exact}`);
    }
    const layer0 = r.groups.find((x) => x.role === 'layer' && x.layer === 0)!;
    const inLayer = r.matrices.filter((m) => m.layer === 0);
    assert.equal(inLayer.length, 2);
    assert.ok(Math.abs(layer0.energy - inLayer.reduce((s, m) => s + m.captured2, 0) / inLayer.reduce((s, m) => s + m.norm2, 0)) < 1e-12);
    assert.ok(Math.abs(r.total.energy - r.matrices.reduce((s, m) => s + m.captured2, 0) / r.matrices.reduce((s, m) => s + m.norm2, 0)) < 1e-12);
    assert.equal(r.groups.find((x) => x.role === 'embedding')?.label, 'Embeddings');
  });

  it('the same figures on one thread as on two, and --skip-embed leaves the embedding out', async () => {
    const strip = (x: object) => ({ ...x, seconds: 0, backend: '' });
    const one = await runEnergyAtRank({ base, chat, rank: 2, threads: 1 });
    const two = await runEnergyAtRank({ base, chat, rank: 2, threads: 2 });
    assert.deepEqual(strip(one), strip(two));
    const noEmbed = await runEnergyAtRank({ base, chat, rank: 2, skipEmbed: true, threads: 1 });
    assert.ok(!noEmbed.matrices.some((m) => m.role === 'embedding'));
    assert.equal(noEmbed.matrices.length, one.matrices.length - 1);
  });

  it('--backend gpu (the GEMMs on the GPU, summed in float32) meets the same bounds, within float32 rounding', async (t) => {
    const logs: string[] = [];
    const r = await runEnergyAtRank({ base, chat, rank: 3, threads: 2, backend: 'gpu' }, { onLog: (level, message) => logs.push(`${level}: ${message}`) });
    if (!r.backend.startsWith('gpu') && !/GEMMs/.test(r.backend)) {
      if (process.env.CHATVEC_GPU_TEST === 'require') assert.fail(`no GPU: ${logs.join('; ')}`);
      t.skip(`no usable WebGPU adapter (${logs.join('; ')})`);
      return;
    }
    assert.ok(!logs.some((l) => /GPU failure/.test(l)), logs.join('\n'));
    for (const m of r.matrices) {
      const exact = exactEnergy(stored(m.name, m.shape[0], m.shape[1]), 3);
      assert.ok(m.energy <= exact + 1e-5 && m.energy >= exact - 0.01, `${m.name}: ${m.energy} vs exact ${exact}`);
    }
  });

  it('chatvec energy prints the same report (--json) and a table per layer with energy@R', async () => {
    ensureCli();
    const run = (...args: string[]) => spawnSync(process.execPath, [CLI, 'energy', base, chat, ...args, '--no-cache', '--quiet', '--threads', '1'], { encoding: 'utf8' });
    const json = run('--rank', '3', '--json');
    assert.equal(json.status, 0, json.stderr);
    const local = await runEnergyAtRank({ base, chat, rank: 3, threads: 1 });
    const strip = (x: object) => JSON.parse(JSON.stringify({ ...x, seconds: 0, backend: '' })) as unknown;
    assert.deepEqual(strip(JSON.parse(json.stdout) as object), strip(local));
    const text = run('--rank', '3');
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /total {2}energy@3 [\d.]+ % of ‖τ‖²/);
    for (const label of ['Embeddings', 'Layer 0']) assert.match(text.stdout, new RegExp(`^ {2}${label} `, 'm'));
    const bad = run('--rank', '0');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--rank must be a whole number ≥ 1/);
  });

  it('refuses a rank that is not a whole number ≥ 1, naming the rule', async () => {
    for (const rank of [0, -1, 2.5]) {
      await assert.rejects(runEnergyAtRank({ base, chat, rank }), (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument' && /--rank must be a whole number ≥ 1/.test(e.message));
    }
  });
});

describe("extract --rank: the stored factors' error by one GEMM", () => {
  /** ‖M − L·R‖² in float64, written here: every element of L·R summed in float64. */
  function reference(M: Float32Array, m: number, n: number, L: Float32Array, R: Float32Array, k: number): number {
    let s = 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let p = 0;
        for (let c = 0; c < k; c++) p += L[i * k + c]! * R[c * n + j]!;
        s += (M[i * n + j]! - p) ** 2;
      }
    }
    return s;
  }
  const g = rng(31);
  const [m, n, k] = [37, 29, 5];
  const L = Float32Array.from({ length: m * k }, () => 2 * g() - 1);
  const R = Float32Array.from({ length: k * n }, () => 2 * g() - 1);
  const norm2 = (M: Float32Array) => M.reduce((s, x) => s + x * x, 0);
  const panels = () => [new Float64Array(m * (k + 3)), new Float64Array(n * (k + 3))] as const;

  it('a large error: the identity ‖M‖² − 2⟨M, L·R⟩ + ‖L·R‖² within 1e-12 of the float64 sum', () => {
    const M = Float32Array.from({ length: m * n }, () => 2 * g() - 1);
    const ref = reference(M, m, n, L, R, k);
    const [q, z] = panels();
    const got = gemmResidualNorm2(gemmJsKernel, M, m, n, L, R, k, norm2(M), q, z);
    assert.ok(Math.abs(got - ref) <= 1e-12 * ref, `${got} vs ${ref}`);
  });

  it('a nearly exact factorisation (error far below 1e-6 of ‖M‖²): the direct sum, not the cancelling identity', () => {
    // M = float32(L·R): the error is float32 rounding, ~1e-15 of ‖M‖², where the identity would be noise.
    const M = new Float32Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let p = 0;
      for (let c = 0; c < k; c++) p += L[i * k + c]! * R[c * n + j]!;
      M[i * n + j] = p;
    }
    const ref = reference(M, m, n, L, R, k);
    assert.ok(ref > 0 && ref < 1e-10 * norm2(M));
    const [q, z] = panels();
    const got = gemmResidualNorm2(gemmJsKernel, M, m, n, L, R, k, norm2(M), q, z);
    assert.ok(Math.abs(got - ref) <= 1e-9 * ref, `${got} vs ${ref}`);
  });
});
