// `diff` with `backend: 'gpu'` end to end, on whatever WebGPU adapter this machine has (in CI
// Mesa's llvmpipe through OpenGL ES). Every statistic of every tensor, module, group and the total
// is compared with the same diff on the CPU within twice the bound stated in compute/diffBound.ts
// (each lies within it of the float64 definition; counts exactly), on hand-made checkpoints with
// NaN/±Inf, mixed dtypes (F64 stays on the CPU) and on a demo pair. Without an adapter the tests
// skip (CHATVEC_GPU_TEST=require: fail).
process.env.EGL_PLATFORM ??= 'surfaceless'; // before webgpu loads: Mesa's EGL needs no display then

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { DIFF_ABSOLUTE_PER_ELEMENT, DIFF_RELATIVE_BOUND } from '../../src/core/compute/diffBound';
import { createGpuBackend } from '../../src/core/compute/gpu/gpuBackend';
import { generateDemoTrio } from '../../src/core/demo/generator';
import type { DeltaStats, DiffReport, LogLevel } from '../../src/core/jobs/types';
import { runExtract } from '../../src/core/engine/extract';
import { runDiff } from '../../src/core/stats/diff';
import { type HandTensor, randomValues, tempDir, writeHandCheckpoint } from './support/diffReference';
import { formatVerdict } from '../../src/protocol/verdictText';

const root = tempDir('chatvec-gpudiff-');
let noGpu = '';
const aDir = path.join(root, 'a');
const bDir = path.join(root, 'b');

before(async () => {
  const q = randomValues(64 * 40, 1, 0.2);
  const up = randomValues(50 * 90, 2, 0.5);
  const upB = up.map((v, i) => (i % 3 === 0 ? v : v + 0.01 * Math.sin(i)));
  upB[7] = NaN;
  upB[100] = Infinity;
  const upA = [...up];
  upA[200] = -Infinity;
  upA[7] = NaN;
  upA[4000] = 1e30; // beyond 2^56: its workgroup is summed on the host
  const a: HandTensor[] = [
    { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [100, 16], values: randomValues(1600, 3, 0.05) },
    { name: 'model.layers.0.self_attn.q_proj.weight', dtype: 'F32', shape: [64, 40], values: q },
    { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F16', shape: [50, 90], values: upA.map((v) => (Math.abs(v) > 6e4 && Number.isFinite(v) ? 6e4 : v)) },
    { name: 'model.layers.0.mlp.down_proj.weight', dtype: 'BF16', shape: [90, 50], values: upA },
    { name: 'model.layers.0.input_layernorm.weight', dtype: 'BF16', shape: [40], values: randomValues(40, 6, 0.1).map((v) => 1 + v) },
    { name: 'model.layers.1.self_attn.k_proj.weight', dtype: 'F64', shape: [10, 40], values: randomValues(400, 7, 0.1) },
    { name: 'model.layers.1.self_attn.q_proj.weight', dtype: 'BF16', shape: [40, 40], values: randomValues(1600, 8, 0.1) },
    { name: 'model.norm.weight', dtype: 'F32', shape: [16], values: randomValues(16, 9, 0.1).map((v) => 1 + v) },
  ];
  const b: HandTensor[] = [
    { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [100, 16], values: randomValues(1600, 3, 0.05).map((v) => v + 1e-3) },
    { name: 'model.layers.0.self_attn.q_proj.weight', dtype: 'BF16', shape: [64, 40], values: q.map((v, i) => v * (1 + 0.02 * Math.sin(i))) },
    { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F16', shape: [50, 90], values: upB },
    { name: 'model.layers.0.mlp.down_proj.weight', dtype: 'BF16', shape: [90, 50], values: upB },
    { name: 'model.layers.0.input_layernorm.weight', dtype: 'F32', shape: [40], values: randomValues(40, 6, 0.1).map((v) => 1.001 + v) },
    { name: 'model.layers.1.self_attn.k_proj.weight', dtype: 'F32', shape: [10, 40], values: randomValues(400, 7, 0.1).map((v) => v + 1e-4) },
    { name: 'model.layers.1.self_attn.q_proj.weight', dtype: 'BF16', shape: [40, 40], values: randomValues(1600, 8, 0.1) }, // unchanged
    { name: 'model.norm.weight', dtype: 'F16', shape: [16], values: randomValues(16, 9, 0.1).map((v) => 1 + v) },
  ];
  writeHandCheckpoint(aDir, a);
  writeHandCheckpoint(bDir, b, 20_000);
  if (process.env.CHATVEC_GPU?.trim().toLowerCase() === 'off') {
    noGpu = 'CHATVEC_GPU=off';
    return;
  }
  try {
    await (await createGpuBackend()).dispose();
  } catch (e) {
    noGpu = e instanceof Error ? e.message : String(e);
  }
});

after(() => fs.rmSync(root, { recursive: true, force: true }));

function haveGpu(t: TestContext): boolean {
  if (!noGpu) return true;
  if (process.env.CHATVEC_GPU_TEST === 'require') assert.fail(`no WebGPU adapter: ${noGpu}`);
  t.skip(`no WebGPU adapter: ${noGpu}`);
  return false;
}

/** runDiff with the logs kept. */
async function diff(backend: 'cpu' | 'gpu', a: string, b: string | undefined, chunkElements?: number, cacheDir?: string): Promise<{ report: DiffReport; logs: string[] }> {
  const logs: string[] = [];
  const onLog = (level: LogLevel, message: string) => logs.push(`${level}: ${message}`);
  const report = await runDiff({ a, ...(b ? { b } : {}), threads: 2, backend, ...(cacheDir ? { cacheDir } : {}) }, { onLog }, chunkElements ? { chunkElements } : {});
  return { report, logs };
}

/**
 * Every figure of DeltaStats within what the bound on the sums implies. The GPU and the CPU's SIMD
 * kernel each lie within 2⁻¹⁹·Σ|terms| + n·2⁻¹²³ of the float64 definition, so they agree within
 * twice that: ε = 2·2⁻¹⁹. Counts and changedFraction exactly; norms (square roots of sums) within
 * ε/2, relative within ε, max and mean |Δ| within ε. The cosine Σab/(‖A‖‖B‖): each Σab lies within
 * (ε/2)·abMagnitude = (ε/2)·m‖A‖‖B‖ of the definition, m = (‖A‖² + ‖B‖² + ‖Δ‖²)/(2‖A‖‖B‖), and is
 * divided by norms within ε/4 relative each: the two cosines agree within ε·(m + 1) absolute.
 */
function assertStatsWithinBound(gpu: DeltaStats, cpu: DeltaStats, what: string): void {
  const e = 2 * DIFF_RELATIVE_BOUND;
  const abs = 2 * DIFF_ABSOLUTE_PER_ELEMENT * cpu.elements;
  assert.equal(gpu.elements, cpu.elements, `${what}: elements`);
  assert.equal(gpu.nonFinite, cpu.nonFinite, `${what}: nonFinite`);
  assert.ok(Object.is(gpu.changedFraction, cpu.changedFraction), `${what}: changedFraction ${gpu.changedFraction} vs ${cpu.changedFraction}`);
  const near = (k: keyof DeltaStats, rel: number, extra = 0) => {
    const x = gpu[k] as number;
    const y = cpu[k] as number;
    assert.ok(Object.is(x, y) || Math.abs(x - y) <= rel * Math.abs(y) + extra, `${what}: ${k} ${x} vs ${y}`);
  };
  for (const k of ['deltaNorm', 'normA', 'normB'] as const) near(k, e / 2, Math.sqrt(abs));
  near('relative', e, 1e-300);
  near('maxAbsDelta', e, abs);
  near('meanAbsDelta', e, abs);
  near('cosine', 0, e * (1 + (cpu.normA ** 2 + cpu.normB ** 2 + cpu.deltaNorm ** 2) / (2 * cpu.normA * cpu.normB)));
}

function assertReportsWithinBound(gpu: DiffReport, cpu: DiffReport): number {
  let compared = 0;
  assertStatsWithinBound(gpu.total, cpu.total, 'total');
  assert.equal(gpu.tensors.length, cpu.tensors.length);
  gpu.tensors.forEach((t, i) => assertStatsWithinBound(t, cpu.tensors[i]!, t.name));
  assert.equal(gpu.groups.length, cpu.groups.length);
  gpu.groups.forEach((g, i) => {
    assertStatsWithinBound(g, cpu.groups[i]!, g.label);
    g.modules.forEach((m, j) => assertStatsWithinBound(m, cpu.groups[i]!.modules[j]!, `${g.label} ${m.module}`));
    compared += 1 + g.modules.length;
  });
  assert.deepEqual([gpu.onlyInA, gpu.onlyInB, gpu.skipped], [cpu.onlyInA, cpu.onlyInB, cpu.skipped]);
  return compared + gpu.tensors.length + 1;
}

describe('diff on the GPU', () => {
  it('agrees with the CPU within the stated bound for every tensor, module, group and the total (NaN/Inf, dtype mixes, F64)', async (t) => {
    if (!haveGpu(t)) return;
    for (const chunk of [undefined, 1024]) {
      const cpu = await diff('cpu', aDir, bDir, chunk);
      const gpu = await diff('gpu', aDir, bDir, chunk);
      assert.ok(
        gpu.logs.some((l) => /compute backend: GPU requested: using gpu/.test(l)),
        gpu.logs.join('\n'),
      );
      assert.ok(cpu.report.total.nonFinite >= 3, 'the data has NaN/Inf');
      const n = assertReportsWithinBound(gpu.report, cpu.report);
      t.diagnostic(`chunks of ${chunk ?? 'default'} elements: ${n} sets of statistics within the bound; total ‖Δ‖ gpu ${gpu.report.total.deltaNorm} cpu ${cpu.report.total.deltaNorm}`);
    }
  });

  it('agrees with the CPU on a demo pair, and a chat vector alone', async (t) => {
    if (!haveGpu(t)) return;
    const trio = generateDemoTrio(path.join(root, 'demo'), 'tiny', 5);
    const cpu = await diff('cpu', trio.base, trio.chat);
    const gpu = await diff('gpu', trio.base, trio.chat);
    assertReportsWithinBound(gpu.report, cpu.report);
    assert.equal(formatVerdict(gpu.report.lineage), formatVerdict(cpu.report.lineage));
    const vector = path.join(root, 'vector');
    await runExtract({ base: trio.base, chat: trio.chat, out: vector, dtype: 'BF16', threads: 2, backend: 'cpu' });
    const vc = await diff('cpu', vector, undefined);
    const vg = await diff('gpu', vector, undefined);
    assert.ok(vg.logs.some((l) => /using gpu/.test(l)));
    assertReportsWithinBound(vg.report, vc.report);
  });

  it('shares cache entries across backends (the results agree within the bound)', async (t) => {
    if (!haveGpu(t)) return;
    const cacheDir = path.join(root, 'cache');
    const gpu = await diff('gpu', aDir, bDir, undefined, cacheDir);
    assert.equal(gpu.report.fromCache, false);
    const cpu = await diff('cpu', aDir, bDir, undefined, cacheDir);
    assert.equal(cpu.report.fromCache, true);
  });
});
