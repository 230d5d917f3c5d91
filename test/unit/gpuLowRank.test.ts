// LoRA adapters applied on the GPU (issue 15): the WGSL low-rank kernel (double-float sums) and
// `apply --backend gpu --vector ADAPTER`, on whatever WebGPU adapter this machine has (in CI Mesa's
// llvmpipe). References are written here in float64: the exact error term of each product, the
// dot products S and Σ|tₖ| of every element. The GPU's τ must lie in [fround(S − E), fround(S + E)]
// (E from compute/lowRankBound.ts); its bits and the job outputs are compared with the CPU's and
// the differing elements counted (expected: none). Without an adapter the tests skip and say why
// (CHATVEC_GPU_TEST=require makes that a failure).
process.env.EGL_PLATFORM ??= 'surfaceless'; // before webgpu loads: Mesa's EGL needs no display then

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { type GpuBackend, createGpuBackend } from '../../src/core/compute/gpu/gpuBackend';
import { type LowRankArgs, lowRankChunk } from '../../src/core/compute/kernels/lowRankJs';
import { lowRankGpuBound } from '../../src/core/compute/lowRankBound';
import type { ComputeBackend } from '../../src/core/compute/types';
import { runApply } from '../../src/core/engine/apply';
import type { FloatDtype } from '../../src/core/safetensors/dtype';
import { type OutFloat, bitsArray, isNaNBits, ulpDistance } from './support/engineFixtures';
import { loraFactors, uniformValues, writeAdapter } from './support/loraFixtures';
import { type FixtureTensor, readAll, rng, writeModel } from './support/recipeFixtures';

let dir: string;
let gpu: GpuBackend | undefined;
let noGpu = '';
let n = 0;
const fresh = (name: string) => path.join(dir, `${name}-${n++}`);
/** Elements compared between GPU and CPU, and how many differed (reported at the end). */
const tally = { kernel: 0, kernelDiffering: 0, outputs: 0, outputsDiffering: 0 };

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-gpulowrank-'));
  if (process.env.CHATVEC_GPU?.trim().toLowerCase() === 'off') {
    noGpu = 'CHATVEC_GPU=off';
    return;
  }
  try {
    gpu = await createGpuBackend();
  } catch (e) {
    noGpu = e instanceof Error ? e.message : String(e);
  }
});

after(async () => {
  await gpu?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`# low-rank kernel: ${tally.kernelDiffering} of ${tally.kernel} τ elements differ from the CPU's bits; apply outputs: ${tally.outputsDiffering} of ${tally.outputs} differ`);
});

function haveGpu(t: TestContext): boolean {
  if (gpu) return true;
  if (process.env.CHATVEC_GPU_TEST === 'require') assert.fail(`no WebGPU adapter: ${noGpu}`);
  t.skip(`no WebGPU adapter, GPU low-rank tests skipped: ${noGpu}`);
  return false;
}

/** The float64 sum S and Σ|tₖ| of element (i, j) of τ, from the factors as LowRankArgs lays them out (left starting at row r0 for 'BA'). */
function dot64(p: LowRankArgs, i: number, j: number, r0: number): [number, number] {
  let s = 0;
  let abs = 0;
  for (let k = 0; k < p.rank; k++) {
    const t = p.layout === 'BA' ? p.left[(i - r0) * p.rank + k]! * p.right[k * p.cols + j]! : p.left[k * p.rows + i]! * p.right[j * p.rank + k]!;
    s += t;
    abs += Math.abs(t);
  }
  return [s, abs];
}

describe('the GPU low-rank kernel (double-float sums)', () => {
  it("TwoProd's error term is exact: rank 2 with B·A = a·b − fround(a·b) gives the float64 error of each product", async (t) => {
    if (!haveGpu(t)) return;
    const method = await gpu!.twoProd();
    t.diagnostic(`TwoProd on ${gpu!.name}: ${method === 'fma' ? 'fma (fused)' : 'Veltkamp/Dekker splitting (fma is not fused here)'}`);
    const r = rng(41);
    const rows = 512;
    let nonZero = 0;
    for (let c = 0; c < 8; c++) {
      // Full 24-bit significands over 2⁻²⁰…2²⁰: a·b needs up to 48 bits, so the error term is rarely 0.
      const b = Math.fround((1 + r()) * 2 ** Math.floor(40 * r() - 20));
      const a = Float32Array.from({ length: rows }, () => (r() < 0.5 ? -1 : 1) * (1 + r()) * 2 ** Math.floor(40 * r() - 20));
      // 'BA', rank 2: row i of B is [aᵢ, −fround(aᵢ·b)], A (2 × 1) is [b, 1].
      const left = new Float32Array(2 * rows);
      for (let i = 0; i < rows; i++) left.set([a[i]!, -Math.fround(a[i]! * b)], 2 * i);
      const got = new Float32Array(rows);
      await gpu!.lowRank({ layout: 'BA', rank: 2, rows, cols: 1, first: 0, count: rows, left, right: new Float32Array([b, 1]) }, got);
      for (let i = 0; i < rows; i++) {
        const exact = a[i]! * b - Math.fround(a[i]! * b); // exact in float64, and a float32 value
        if (exact !== 0) nonZero++;
        assert.equal(got[i], exact, `a = ${a[i]}, b = ${b}: error term ${got[i]} instead of ${exact}`);
      }
    }
    assert.ok(nonZero > 3000, `only ${nonZero} products had an error term`);
  });

  it('both layouts, ranks 1, 8 and 64, chunks cut inside rows: within the bound of a float64 reference, and the CPU kernel’s bits', async (t) => {
    if (!haveGpu(t)) return;
    const [rows, cols] = [93, 71];
    for (const layout of ['BA', 'transposed'] as const) {
      for (const rank of [1, 8, 64]) {
        for (const [first, count] of [
          [0, rows * cols],
          [37, 2 * cols + 5],
          [rows * cols - 100, 100],
        ] as const) {
          const r = rng(rank * 1000 + first);
          // LoRA-like factors: uniform in [−1, 1), one row in eight scaled by 2⁻¹⁰ (magnitudes of both kinds in one sum).
          const v = () => (2 * r() - 1) * (r() < 0.125 ? 2 ** -10 : 1);
          const r0 = Math.floor(first / cols);
          const nRows = Math.floor((first + count - 1) / cols) - r0 + 1;
          const [nl, nr] = layout === 'BA' ? [nRows * rank, rank * cols] : [rank * rows, cols * rank];
          const p: LowRankArgs = { layout, rank, rows, cols, first, count, left: Float32Array.from({ length: nl }, v), right: Float32Array.from({ length: nr }, v) };
          const got = new Float32Array(count);
          await gpu!.lowRank(p, got);
          const cpu = new Float32Array(count);
          lowRankChunk(p, cpu);
          let differing = 0;
          for (let e = 0; e < count; e++) {
            const i = Math.floor((first + e) / cols);
            const j = first + e - i * cols;
            const [s, abs] = dot64(p, i, j, layout === 'BA' ? r0 : 0);
            const E = lowRankGpuBound(rank, abs);
            const what = `${layout} rank ${rank} [${first}, +${count}) element (${i}, ${j})`;
            assert.ok(Math.fround(s - E) <= got[e]! && got[e]! <= Math.fround(s + E), `${what}: ${got[e]}, float64 sum ${s} ± ${E}`);
            if (!Object.is(got[e], cpu[e])) {
              differing++;
              assert.notEqual(Math.fround(s - E), Math.fround(s + E), `${what}: differs from the CPU's ${cpu[e]} though no float32 rounding boundary lies within the bound`);
            }
          }
          tally.kernel += count;
          tally.kernelDiffering += differing;
          if (differing) t.diagnostic(`${layout} rank ${rank}: ${differing} of ${count} differ from the CPU's bits (within the bound)`);
        }
      }
    }
  });
});

/** A GPU wrapper that counts low-rank and combine calls. */
function spyOn(inner: ComputeBackend, calls: { lowRank: number; combine: number }): ComputeBackend {
  return {
    kind: 'gpu',
    name: inner.name,
    describe: () => inner.describe(),
    combine: (a, o) => (calls.combine++, inner.combine(a, o)),
    diff: (a, o) => inner.diff(a, o),
    gemm: () => inner.gemm(),
    lowRank: (a, out, o) => (calls.lowRank++, inner.lowRank(a, out, o)),
    dispose: () => inner.dispose(),
  };
}

const H = 64;
const V = 300;
/** Target tensors: [name, shape]. down_proj has more elements than one chunk (2²⁰), cut inside a row. */
const MODEL: [string, number[]][] = [
  ['model.embed_tokens.weight', [V, H]],
  ['model.layers.0.self_attn.q_proj.weight', [H, H]],
  ['model.layers.0.self_attn.v_proj.weight', [32, H]],
  ['model.layers.0.mlp.up_proj.weight', [192, H]],
  ['model.layers.0.mlp.down_proj.weight', [1100, 1000]],
  ['model.layers.0.input_layernorm.weight', [H]],
];

function model(dtype: FloatDtype, seed: number): string {
  const r = rng(seed);
  const tensors: FixtureTensor[] = MODEL.map(([name, shape]) => ({ name, shape, dtype, values: uniformValues(shape.reduce((a, b) => a * b, 1), r) }));
  return writeModel(fresh(`model-${dtype}`), tensors);
}

const P = (m: string) => `base_model.model.model.${m}`;

/** Ranks 1, 8 and 64 (rank_pattern), BF16 and F32 factors; scale alpha/r. */
function plainAdapter(): string {
  return writeAdapter(fresh('adapter'), { r: 8, lora_alpha: 16, rank_pattern: { q_proj: 1, up_proj: 64 }, target_modules: ['q_proj', 'v_proj', 'up_proj', 'down_proj'] }, [
    ...loraFactors(P('layers.0.self_attn.q_proj'), 1, H, H, 11),
    ...loraFactors(P('layers.0.self_attn.v_proj'), 8, 32, H, 12, { dtype: 'BF16' }),
    ...loraFactors(P('layers.0.mlp.up_proj'), 64, 192, H, 13),
    ...loraFactors(P('layers.0.mlp.down_proj'), 8, 1100, 1000, 14),
  ]);
}

/** rsLoRA (alpha/√r), fan_in_fan_out ((B·A)ᵀ) and embedding LoRA. */
function transposedAdapter(): string {
  return writeAdapter(fresh('adapter'), { r: 8, lora_alpha: 16, use_rslora: true, fan_in_fan_out: true, target_modules: ['q_proj', 'embed_tokens'] }, [
    ...loraFactors(P('layers.0.self_attn.q_proj'), 8, H, H, 21, { transposed: true }),
    ...loraFactors(P('embed_tokens'), 8, V, H, 22, { transposed: true, embedding: true }),
  ]);
}

/** Where each adapted tensor's factors are in the adapter folder, and their layout. */
interface Module {
  readonly prefix: string;
  readonly names: readonly [string, string];
  readonly transposed: boolean;
}

/**
 * Compares the GPU's output with the CPU's bit for bit, tensor by tensor; an element may differ
 * only by one ulp and only where the bound allows it: a float32 rounding boundary lies within E
 * of the float64 sum S of its τ element (τ then may round either way).
 */
function compare(t: TestContext, gpuOut: string, cpuOut: string, ad: string, modules: ReadonlyMap<string, Module>, what: string): void {
  const [G, C, A] = [readAll(gpuOut), readAll(cpuOut), readAll(ad)];
  let compared = 0;
  let differing = 0;
  for (const [name, c] of C) {
    const g = G.get(name)!;
    assert.equal(g.dtype, c.dtype, `${what}: ${name} dtype`);
    const dtype = c.dtype as OutFloat;
    const [x, y] = [bitsArray(c.bytes, dtype), bitsArray(g.bytes, dtype)];
    const [rows, cols] = c.shape.length === 2 ? [c.shape[0]!, c.shape[1]!] : [1, c.shape[0]!];
    for (let e = 0; e < x.length; e++) {
      if (x[e] === y[e] || (isNaNBits(x[e]!, dtype) && isNaNBits(y[e]!, dtype))) continue;
      differing++;
      const m = modules.get(name);
      assert.ok(m, `${what}: ${name}[${e}] differs but the tensor has no low-rank term`);
      assert.ok(ulpDistance(x[e]!, y[e]!, dtype) <= 1, `${what}: ${name}[${e}] more than 1 ulp from the CPU`);
      const a = A.get(`${m.prefix}.${m.names[0]}`)!.values;
      const b = A.get(`${m.prefix}.${m.names[1]}`)!.values;
      const rank = A.get(`${m.prefix}.${m.names[0]}`)!.shape[0]!;
      const i = Math.floor(e / cols);
      const j = e - i * cols;
      let s = 0;
      let abs = 0;
      for (let k = 0; k < rank; k++) {
        const term = m.transposed ? a[k * rows + i]! * b[j * rank + k]! : b[i * rank + k]! * a[k * cols + j]!;
        s += term;
        abs += Math.abs(term);
      }
      const E = lowRankGpuBound(rank, abs);
      assert.notEqual(Math.fround(s - E), Math.fround(s + E), `${what}: ${name}[${e}] differs though no float32 rounding boundary lies within ${E} of τ's sum ${s}`);
    }
    compared += x.length;
  }
  tally.outputs += compared;
  tally.outputsDiffering += differing;
  t.diagnostic(`${what}: ${differing} of ${compared} output elements differ from the CPU's`);
}

describe('apply --backend gpu with an adapter (--vector ADAPTER, --chat ADAPTER) equals the CPU', () => {
  const plainModules = new Map<string, Module>([
    ['model.layers.0.self_attn.q_proj.weight', { prefix: P('layers.0.self_attn.q_proj'), names: ['lora_A.weight', 'lora_B.weight'], transposed: false }],
    ['model.layers.0.self_attn.v_proj.weight', { prefix: P('layers.0.self_attn.v_proj'), names: ['lora_A.weight', 'lora_B.weight'], transposed: false }],
    ['model.layers.0.mlp.up_proj.weight', { prefix: P('layers.0.mlp.up_proj'), names: ['lora_A.weight', 'lora_B.weight'], transposed: false }],
    ['model.layers.0.mlp.down_proj.weight', { prefix: P('layers.0.mlp.down_proj'), names: ['lora_A.weight', 'lora_B.weight'], transposed: false }],
  ]);
  const transposedModules = new Map<string, Module>([
    ['model.layers.0.self_attn.q_proj.weight', { prefix: P('layers.0.self_attn.q_proj'), names: ['lora_A.weight', 'lora_B.weight'], transposed: true }],
    ['model.embed_tokens.weight', { prefix: P('embed_tokens'), names: ['lora_embedding_A', 'lora_embedding_B'], transposed: true }],
  ]);

  const cases: [string, FloatDtype, () => string, Map<string, Module>, ('vector' | 'chat')?][] = [
    ['ranks 1, 8, 64, bf16 output', 'BF16', plainAdapter, plainModules],
    ['--base B --chat ADAPTER, ranks 1, 8, 64, bf16 output', 'BF16', plainAdapter, plainModules, 'chat'],
    ['ranks 1, 8, 64, f16 output', 'F16', plainAdapter, plainModules],
    ['ranks 1, 8, 64, f32 output', 'F32', plainAdapter, plainModules],
    ['rsLoRA, fan_in_fan_out and embedding LoRA, bf16 output', 'BF16', transposedAdapter, transposedModules],
    ['rsLoRA, fan_in_fan_out and embedding LoRA, f32 output', 'F32', transposedAdapter, transposedModules],
  ];
  for (const [what, dtype, makeAdapter, modules, as = 'vector'] of cases) {
    it(what, async (t) => {
      if (!haveGpu(t)) return;
      const cp = model(dtype, 5);
      const ad = makeAdapter();
      const calls = { lowRank: 0, combine: 0 };
      const logs: string[] = [];
      const [gOut, cOut] = [fresh('gpu'), fresh('cpu')];
      const job = as === 'vector' ? { target: cp, vectors: [ad], ratios: [0.75] } : { target: cp, base: cp, chats: [ad], ratios: [0.75] };
      const g = await runApply({ ...job, out: gOut, threads: 2, backend: 'gpu' }, { onLog: (level, m) => logs.push(`${level}: ${m}`), compute: { wrapGpu: (x) => spyOn(x, calls) } });
      const c = await runApply({ ...job, out: cOut, threads: 2, backend: 'cpu' });
      assert.match(g.backend, /^gpu: /, g.backend);
      assert.doesNotMatch(g.backend, /then cpu/);
      assert.ok(!logs.some((l) => /GPU failure/.test(l)), logs.join('\n'));
      // Every adapted chunk formed its τ on the GPU (down_proj: two chunks).
      const chunks = [...modules.keys()].reduce((s, name) => s + (name.includes('down_proj') ? 2 : 1), 0);
      assert.equal(calls.lowRank, chunks, 'low-rank kernel calls');
      assert.ok(calls.combine >= chunks);
      assert.equal(g.tensorCount, c.tensorCount);
      compare(t, gOut, cOut, ad, modules, what);
    });
  }
});
