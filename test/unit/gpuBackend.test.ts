// The GPU backend on whatever WebGPU adapter this machine has — in CI Mesa's llvmpipe through
// OpenGL ES (scripts/setup-gpu-test.sh installs it). Every output is compared with the JavaScript
// reference kernels (compute/kernels/*Js.ts)
// (counting the elements that differ, ≤ 1 ulp allowed) and with the independent references of
// gpuReference.ts. Without any adapter the GPU tests skip and say why; CHATVEC_GPU_TEST=require
// turns that skip into a failure. The fallback tests need no GPU.
process.env.EGL_PLATFORM ??= 'surfaceless'; // before webgpu loads: Mesa's EGL needs no display then

import assert from 'node:assert/strict';
import { gpuDeviceNodesPresent } from '../../src/core/io/gpuDevices';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { selectBackend } from '../../src/core/compute/select';
import type { KernelArray as ElementArray, KernelDtype } from '../../src/core/compute/types';
import { combineJs } from '../../src/core/compute/kernels/combineJs';
import { diffJs } from '../../src/core/compute/kernels/diffJs';
import { DIFF_ABSOLUTE_PER_ELEMENT, DIFF_RELATIVE_BOUND, abMagnitude } from '../../src/core/compute/diffBound';
import { createGpuBackend, type GpuBackend, type GpuBackendOptions } from '../../src/core/compute/gpu/gpuBackend';
import { gpuSelfTest } from '../../src/core/compute/gpu/selfTest';
import { ChatVecError } from '../../src/core/errors';
import {
  type ApplyTerm,
  type FusedApplyRequest,
  bitsAt,
  close,
  combineArgs,
  compareWithReference,
  float64Violations,
  gen,
  isNaN16,
  ordinal,
  referenceDiff,
  outArray,
  referenceFused,
  tieValues,
} from './gpuReference';

/** The JavaScript reference combine on a request (into req.out when given). */
function fusedApplyChunk(req: FusedApplyRequest): ElementArray {
  const out = req.out ?? outArray(req.outDtype, req.cp.data.length);
  combineJs(combineArgs(req, out));
  return out;
}

/** The GPU's combine on a request (into req.out when given). */
async function gpuFused(g: GpuBackend, req: FusedApplyRequest): Promise<ElementArray> {
  const out = req.out ?? outArray(req.outDtype, req.cp.data.length);
  await g.combine(combineArgs(req, out));
  return out;
}

const DTYPES: readonly KernelDtype[] = ['BF16', 'F16', 'F32'];
const root = path.resolve(__dirname, '../..');

let gpu: GpuBackend | undefined;
let noGpu = '';
/** A second backend with tiny binding windows, slots and dispatch limits. */
let tiny: GpuBackend | undefined;
const TINY: GpuBackendOptions = { maxBindingBytes: 40 * 1024, maxWorkgroupsPerDim: 3, slotBytes: 64 * 1024, slots: 2 };
/** Elements compared with the JavaScript reference and how many differed, over the whole file. */
const tally = { compared: 0, differing: 0, maxUlp: 0 };

before(async () => {
  if (process.env.CHATVEC_GPU?.toLowerCase() === 'off') {
    noGpu = 'CHATVEC_GPU=off';
    return;
  }
  try {
    gpu = await createGpuBackend();
    tiny = await createGpuBackend(TINY);
  } catch (e) {
    noGpu = e instanceof Error ? e.message : String(e);
  }
});

after(async () => {
  await gpu?.dispose();
  await tiny?.dispose();
  if (tally.compared) {
    console.log(`# GPU (${gpu?.name}) vs the JavaScript reference: ${tally.differing} of ${tally.compared} elements differ (max ${tally.maxUlp} ulp)`);
  }
});

/** The GPU backend, or undefined after skipping the test (failing it under CHATVEC_GPU_TEST=require). */
function need(t: TestContext, which: 'gpu' | 'tiny' = 'gpu'): GpuBackend | undefined {
  const g = which === 'gpu' ? gpu : tiny;
  if (g) return g;
  if (process.env.CHATVEC_GPU_TEST === 'require') assert.fail(`no WebGPU adapter: ${noGpu}`);
  t.skip(`no WebGPU adapter: ${noGpu}`);
  return undefined;
}

/**
 * Runs req on the GPU and checks it against the JavaScript reference, element by element. Equal bits (any NaN
 * equal to any NaN) pass. An element that differs must be one that FMA contraction changes (the
 * all-FMA reference differs from the CPU there) and be within 1 ulp of the output dtype of the
 * CPU, or equal to the all-FMA result; anything else is a bug. The count of differing elements is
 * reported. Then the float64 error bound.
 */
async function checkFused(t: TestContext, g: GpuBackend, req: FusedApplyRequest, what: string): Promise<ElementArray> {
  const got = await gpuFused(g, req);
  judge(t, req, got, what);
  const v = float64Violations(req, got);
  assert.equal(v.bad, 0, `${what}: ${v.bad} of ${v.checked} elements outside the float64 error bound (first ${v.first})`);
  return got;
}

/** The element-by-element part of checkFused, for an output already computed. */
function judge(t: TestContext, req: FusedApplyRequest, got: ElementArray, what: string): void {
  const cpu = fusedApplyChunk(req);
  const ref = referenceFused(req);
  const fma = referenceFused(req, true);
  const dtype = req.outDtype;
  // The CPU must equal the independent reference exactly (the GPU is compared with both).
  const rc = compareWithReference(cpu, ref);
  assert.equal(rc.differing, 0, `${what}: the JavaScript reference differs from the reference at ${rc.first}`);
  const isNaN = (a: ElementArray, i: number) => (a.dtype === 'F32' ? Number.isNaN(a.data[i]!) : isNaN16(a.data[i]!, a.dtype));
  let differing = 0;
  let maxUlp = 0;
  const unexplained: string[] = [];
  for (let i = 0; i < got.data.length; i++) {
    const x = bitsAt(cpu, i);
    const y = bitsAt(got, i);
    if (x === y || (isNaN(cpu, i) && isNaN(got, i))) continue;
    differing++;
    const ulp = isNaN(cpu, i) || isNaN(got, i) ? Infinity : Math.abs(ordinal(x, dtype) - ordinal(y, dtype));
    maxUlp = Math.max(maxUlp, ulp);
    const f = fma.bits[i]!;
    const sensitive = f !== ref.bits[i];
    const equalsFma = f === -1 ? isNaN(got, i) : (f >>> 0) === y;
    if (!(equalsFma || (sensitive && ulp <= 1)) && unexplained.length < 5) unexplained.push(`#${i}: cpu ${x.toString(16)} gpu ${y.toString(16)} (${ulp} ulp)`);
  }
  tally.compared += got.data.length;
  tally.differing += differing;
  tally.maxUlp = Math.max(tally.maxUlp, maxUlp);
  t.diagnostic(`${what}: ${differing} of ${got.data.length} elements differ from the JavaScript reference (max ${maxUlp} ulp)`);
  assert.deepEqual(unexplained, [], `${what}: elements that differ from the CPU beyond FMA contraction`);
}

function request(cpDtype: KernelDtype, outDtype: KernelDtype, n: number, seed: number, terms = 3, raw = 0.02): FusedApplyRequest {
  const list: ApplyTerm[] = [];
  const ratios = [1, 0.5, -0.75, 0.3, 2, -1, 0.1, 1.7];
  const o = { rawBits: raw, special: 0.02 };
  for (let t = 0; t < terms; t++) {
    const d1 = DTYPES[(DTYPES.indexOf(cpDtype) + t) % 3]!;
    const d2 = DTYPES[(DTYPES.indexOf(cpDtype) + 2 * t + 1) % 3]!;
    if (t % 3 === 2) list.push({ ratio: ratios[t]!, tau: gen(d1, n, seed + 100 * t + 1, { ...o, scale: 0.01 }) });
    else {
      const base = gen(d2, n, seed + 100 * t + 2, o);
      list.push({ ratio: ratios[t]!, chat: gen(d1, n, seed + 100 * t + 3, { ...o, near: base }), base });
    }
  }
  return { cp: gen(cpDtype, n, seed, o), terms: list, outDtype };
}

describe('GPU device', () => {
  it('reports its adapter and passes the exactness self-test', async (t) => {
    const g = need(t);
    if (!g) return;
    const info = g.describe();
    t.diagnostic(`adapter: ${info.adapter?.name} — ${info.adapter?.description} (backend ${info.adapter?.backend}, software ${info.adapter?.software})`);
    assert.equal(info.kind, 'gpu');
    assert.ok(info.adapter && info.adapter.name.length > 0);
    if (/llvmpipe/i.test(info.adapter.name)) assert.equal(info.adapter.software, true);
    const st = await gpuSelfTest(g);
    t.diagnostic(`self-test: ${st.differing} of ${st.compared} special-value elements differ`);
    assert.equal(st.ok, true, st.reason);
  });

  it('lets Node exit after dispose() (Dawn instance released)', (t) => {
    if (!need(t)) return;
    const script = `
      const { createGpuBackend } = require('./src/core/compute/gpu/gpuBackend');
      (async () => {
        const g = await createGpuBackend();
        const cp = { dtype: 'F32', data: new Float32Array([1, 2, 3]) };
        const out = { dtype: 'F32', data: new Float32Array(3) };
        await g.combine({ target: cp, terms: [{ ratio: 2, a: cp, b: null }], out });
        await g.dispose();
        console.log('result ' + Array.from(out.data).join(','));
      })();`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env } });
    assert.equal(r.signal, null, `the child did not exit by itself (killed by ${r.signal}): Dawn kept it alive`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /result 3,6,9/);
  });
});

describe('GPU fused apply', () => {
  it('matches the CPU for every input/output dtype (odd lengths, specials, raw bits)', async (t) => {
    const g = need(t);
    if (!g) return;
    for (const cpDtype of DTYPES) {
      for (const outDtype of DTYPES) {
        const n = 6007 + 2 * DTYPES.indexOf(outDtype); // odd, not a multiple of any workgroup
        await checkFused(t, g, request(cpDtype, outDtype, n, 31 + 3 * DTYPES.indexOf(cpDtype) + DTYPES.indexOf(outDtype)), `${cpDtype}→${outDtype}`);
      }
    }
  });

  it('takes 1..8 terms, all-τ and mixed', async (t) => {
    const g = need(t);
    if (!g) return;
    for (let terms = 1; terms <= 8; terms++) {
      await checkFused(t, g, request('BF16', terms % 2 ? 'BF16' : 'F16', 2049 + terms, 500 + terms, terms), `${terms} terms`);
    }
    const n = 3333;
    const taus: ApplyTerm[] = Array.from({ length: 8 }, (_, i) => ({ ratio: (i - 3.5) / 3, tau: gen(DTYPES[i % 3]!, n, 900 + i, { scale: 0.01 }) }));
    await checkFused(t, g, { cp: gen('BF16', n, 899), outDtype: 'BF16', terms: taus }, '8 τ terms');
  });

  it('rounds ties to even, keeps NaN, −0 and subnormals like the CPU', async (t) => {
    const g = need(t);
    if (!g) return;
    for (const outDtype of ['BF16', 'F16'] as const) {
      const n = 5001;
      const cp: ElementArray = { dtype: 'F32', data: tieValues(outDtype, n, 77) };
      const zero: ElementArray = { dtype: 'F32', data: new Float32Array(n) };
      await checkFused(t, g, { cp, outDtype, terms: [{ ratio: 1.5, chat: zero, base: zero }] }, `ties → ${outDtype}`);
    }
    const n = 4099;
    const wild = (d: KernelDtype, s: number) => gen(d, n, s, { special: 0.3, rawBits: 0.5 });
    for (const outDtype of DTYPES) {
      const req: FusedApplyRequest = {
        cp: wild('F32', 1),
        outDtype,
        terms: [
          { ratio: 1, chat: wild('BF16', 2), base: wild('F16', 3) },
          { ratio: -0.5, tau: wild('F32', 4) },
        ],
      };
      await checkFused(t, g, req, `specials → ${outDtype}`);
    }
    // subnormal arithmetic: bf16 subnormal inputs and results, which a flushing GPU would zero
    const sub = (s: number): ElementArray => {
      const d = new Uint16Array(n);
      for (let i = 0; i < n; i++) d[i] = ((i * 2654435761 + s) >>> 0) % 0x7f | (i & 1 ? 0x8000 : 0);
      return { dtype: 'BF16', data: d };
    };
    const out = await checkFused(t, g, { cp: sub(1), outDtype: 'BF16', terms: [{ ratio: 0.5, chat: sub(2), base: sub(3) }] }, 'subnormals');
    let nonzero = 0;
    for (const h of out.data as Uint16Array) if ((h & 0x7fff) !== 0) nonzero++;
    assert.ok(nonzero > n / 2, `${nonzero} of ${n} subnormal results are non-zero`);
  });

  it('streams lengths beyond one binding window and one slot, with 2-D dispatch', async (t) => {
    const g = need(t, 'tiny');
    if (!g) return;
    assert.equal(g.limits.windowBytes, 40 * 1024);
    assert.equal(g.limits.maxWorkgroupsPerDim, 3);
    const before = { ...g.counters };
    const n = 100_003;
    await checkFused(t, g, request('BF16', 'BF16', n, 4242), 'tiny windows, BF16');
    const submits = g.counters.submits - before.submits;
    const dispatches = g.counters.dispatches - before.dispatches;
    t.diagnostic(`${dispatches} windows in ${submits} slot submissions, ${g.counters.maxInFlight} in flight at most`);
    // 3 sections × 2 bytes, each window ≤ 40 KiB
    assert.ok(dispatches >= Math.ceil((n * 6) / (40 * 1024)), `${dispatches} dispatches`);
    assert.ok(dispatches > submits, 'several windows per slot');
    assert.ok(submits > g.limits.slots, `${submits} submissions: the ring wrapped`);
    assert.ok(g.counters.maxInFlight >= 2, 'upload of one slot overlapped another in flight');
    // F32 with 8 pairs (68 bytes per element) still fits: blocks shrink to the window
    await checkFused(t, g, request('F32', 'F16', 9001, 4343, 8), 'tiny windows, 8 terms');
  });

  it('serves several calls at once through the shared ring', async (t) => {
    const g = need(t, 'tiny');
    if (!g) return;
    const reqs = [0, 1, 2, 3, 4].map((i) => request(DTYPES[i % 3]!, DTYPES[(i + 1) % 3]!, 20_000 + 999 * i, 60 + i, 1 + (i % 3)));
    const outs = await Promise.all(reqs.map((r) => gpuFused(g, r)));
    outs.forEach((out, i) => judge(t, reqs[i]!, out, `concurrent call ${i}`));
  });

  it('writes into a given output, validates, and stops when cancelled', async (t) => {
    const g = need(t, 'tiny');
    if (!g) return;
    const req = request('F16', 'F32', 50_000, 88, 2);
    const out: ElementArray = { dtype: 'F32', data: new Float32Array(50_000) };
    assert.equal(await gpuFused(g, { ...req, out }), out);
    judge(t, req, out, 'into out');
    await assert.rejects(gpuFused(g, { ...req, terms: [] }), (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument');
    await assert.rejects(gpuFused(g, { ...req, cp: gen('F16', 10, 1) }), (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument');
    const signal = { cancelled: false };
    const p = g.combine(combineArgs(req), { signal });
    signal.cancelled = true;
    await assert.rejects(p, (e: unknown) => e instanceof ChatVecError && e.code === 'Cancelled');
    // still usable afterwards
    const again = await gpuFused(g, req);
    judge(t, req, again, 'after a cancel');
    assert.equal((await gpuFused(g, { cp: gen('BF16', 0, 1), outDtype: 'BF16', terms: [{ ratio: 1, tau: gen('BF16', 0, 2) }] })).data.length, 0);
  });
});

describe('GPU diff', () => {
  /**
   * The bound stated in compute/diffBound.ts: |gpu − cpu| ≤ 2⁻¹⁹·Σ|terms| + n·2⁻¹²³, counts
   * exact. Checked against the CPU's JavaScript reference (what `chatvec diff` computes on the
   * CPU) and against the float64 definition in gpuReference.ts.
   */
  function assertWithinBound(what: string, got: ReturnType<typeof diffJs>, want: ReturnType<typeof referenceDiff> | ReturnType<typeof diffJs>, magAB: number): void {
    assert.equal(got.elements, want.elements, `${what}: elements`);
    assert.equal(got.changed, want.changed, `${what}: changed`);
    assert.equal(got.nonFinite, want.nonFinite, `${what}: nonFinite`);
    const abs = DIFF_ABSOLUTE_PER_ELEMENT * want.elements;
    for (const k of ['sumD2', 'sumA2', 'sumB2', 'sumAbs', 'maxAbs'] as const) {
      assert.ok(close(got[k], want[k], DIFF_RELATIVE_BOUND * Math.abs(want[k]) + abs), `${what}: ${k} ${got[k]} vs ${want[k]}`);
    }
    assert.ok(close(got.sumAB, want.sumAB, DIFF_RELATIVE_BOUND * magAB + abs), `${what}: sumAB ${got.sumAB} vs ${want.sumAB}`);
  }

  async function checkDiff(t: TestContext, g: GpuBackend, a: ElementArray | null, b: ElementArray, what: string, mode: 'ab' | 'delta' = 'ab'): Promise<void> {
    const got = await g.diff({ mode, a, b });
    const cpu = diffJs({ mode, a, b });
    const zeros = outArray('F32', b.data.length);
    const ref = referenceDiff(a ?? zeros, b, mode);
    t.diagnostic(`${what}: Σd² gpu ${got.sumD2} cpu ${cpu.sumD2} ref ${ref.sumD2}`);
    assertWithinBound(`${what} (against the CPU)`, got, cpu, abMagnitude(ref));
    assertWithinBound(`${what} (against the definition)`, got, ref, abMagnitude(ref));
    // and the CPU agrees with the same reference far more tightly
    assert.ok(close(cpu.sumD2, ref.sumD2, 1e-12 * ref.sumD2));
  }

  it('matches the CPU within the stated bound for every dtype pair and both modes (NaN/Inf inputs, counts exactly)', async (t) => {
    const g = need(t);
    if (!g) return;
    for (const mode of ['ab', 'delta'] as const) {
      for (const da of DTYPES) {
        for (const db of DTYPES) {
          const n = 30_011;
          const a = gen(da, n, 5 + DTYPES.indexOf(da), { special: 0.02 });
          const b = gen(db, n, 50 + DTYPES.indexOf(db), { near: mode === 'ab' ? a : undefined, special: 0.02, scale: mode === 'ab' ? 0.05 : 0.001 });
          await checkDiff(t, g, a, b, `${mode} ${da}/${db}`, mode);
        }
      }
      const delta = gen('F32', 20_000, 77, { special: 0.01, scale: 0.001 });
      await checkDiff(t, g, null, delta, 'delta without a base', 'delta');
    }
  });

  it('sums workgroups with finite values of 2^56 or more on the host, exactly as the CPU', async (t) => {
    const g = need(t);
    if (!g) return;
    // raw bit patterns: finite values up to float32's maximum, whose float32 squares overflow
    const n = 50_000;
    const a = gen('F32', n, 31, { rawBits: 0.3, special: 0.02 });
    const b = gen('BF16', n, 32, { near: a, rawBits: 0.3, special: 0.02 });
    await checkDiff(t, g, a, b, 'huge values');
    const got = await g.diff({ mode: 'ab', a, b });
    assert.ok(Number.isFinite(got.sumD2) && Number.isFinite(got.sumA2), 'no float32 overflow reaches the sums');
  });

  it('counts ±0 as unchanged, leaves NaN/Inf pairs out, and sees identical inputs as unchanged', async (t) => {
    const g = need(t);
    if (!g) return;
    const a: ElementArray = { dtype: 'F32', data: new Float32Array([0, NaN, 1, Infinity, 2, -0, 1e-45]) };
    // 1e-45 and 3e-45 are the float32 subnormals with bits 1 and 2
    const b: ElementArray = { dtype: 'F32', data: new Float32Array([-0, NaN, 1, Infinity, 3, 0, 3e-45]) };
    const st = await g.diff({ mode: 'ab', a, b });
    // Σd² = 1 + 2⁻²⁹⁸, which is 1 in float64 (and on the GPU, whose float32 square of 2⁻¹⁴⁹ is 0)
    assert.deepEqual([st.changed, st.nonFinite, st.maxAbs, st.sumD2], [2, 2, 1, 1]);
    const same = gen('BF16', 10_000, 3, { special: 0.05 });
    const s2 = await g.diff({ mode: 'ab', a: same, b: same });
    assert.equal(s2.changed, 0);
    assert.equal(s2.nonFinite, referenceDiff(same, same).nonFinite);
    assert.equal(s2.sumD2, 0);
  });

  it('streams beyond one window with 2-D dispatch', async (t) => {
    const g = need(t, 'tiny');
    if (!g) return;
    const n = 123_457;
    const a = gen('F32', n, 11, { huge: false });
    const b = gen('BF16', n, 12, { near: a, huge: false });
    const d0 = g.counters.dispatches;
    await checkDiff(t, g, a, b, 'tiny windows');
    assert.ok(g.counters.dispatches - d0 >= Math.ceil((n * 6) / (40 * 1024)), 'one dispatch per window');
  });

  it('rejects F64, which the GPU kernels do not take', async (t) => {
    const g = need(t);
    if (!g) return;
    const f64 = { dtype: 'F64', data: new Float64Array(4) } as const;
    await assert.rejects(g.diff({ mode: 'ab', a: f64, b: f64 }), (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument');
  });
});

/** Runs fn with CHATVEC_GPU set to `value` (unset for undefined), restoring it afterwards. */
async function withGpuEnv<T>(value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.CHATVEC_GPU;
  if (value === undefined) delete process.env.CHATVEC_GPU;
  else process.env.CHATVEC_GPU = value;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.CHATVEC_GPU;
    else process.env.CHATVEC_GPU = saved;
  }
}

describe('backend selection', () => {
  it('cpu is cpu', async () => {
    const s = await selectBackend('cpu', 1e12);
    assert.equal(s.kind, 'cpu');
    assert.equal(s.fellBack, false);
    await s.gpu?.dispose();
  });

  it('falls back to the CPU with a reason when the GPU is switched off', async () => {
    for (const kind of ['gpu', 'auto'] as const) {
      const s = await selectBackend(kind, 1e12, { gpuOff: true });
      assert.equal(s.kind, 'cpu');
      assert.match(s.reason, /GPU is switched off/);
      assert.equal(s.fellBack, kind === 'gpu');
      await s.gpu?.dispose();
    }
    const s = await withGpuEnv('off', () => selectBackend('gpu', 1e12));
    assert.equal(s.kind, 'cpu');
    assert.match(s.reason, /CHATVEC_GPU=off/);
    assert.equal(s.fellBack, true);
  });

  it('falls back when the webgpu package cannot load or no adapter exists', async () => {
    const broken = await withGpuEnv(undefined, () => selectBackend('gpu', 1e12, { gpu: { load: () => Promise.reject(new Error('module not found')) } }));
    assert.equal(broken.kind, 'cpu');
    assert.equal(broken.fellBack, true);
    assert.match(broken.reason, /no usable GPU.*webgpu package cannot be loaded: module not found/);
    const none = await withGpuEnv(undefined, () => selectBackend('auto', 1e12, { gpu: { paths: [] }, allowSoftwareForAuto: true }));
    assert.equal(none.kind, 'cpu');
    assert.match(none.reason, /no WebGPU adapter/);
    // a setting that must fail instead of falling back
    await assert.rejects(
      withGpuEnv(undefined, () => selectBackend('gpu', 1, { gpu: { paths: [] }, failIfUnavailable: true })),
      (e: unknown) => e instanceof ChatVecError && e.code === 'Unsupported' && /no WebGPU adapter/.test(e.message),
    );
    await assert.rejects(selectBackend('gpu', 1, { gpuOff: true, failIfUnavailable: true }), /switched off/);
    await assert.rejects(selectBackend('fast' as 'gpu', 1), (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument');
  });

  it('auto does not load the WebGPU runtime where no GPU device node exists', async (t) => {
    if (gpuDeviceNodesPresent()) return t.skip('this machine has GPU device nodes');
    let loaded = false;
    const s = await withGpuEnv(undefined, () => selectBackend('auto', 1e12, { gpu: { load: () => ((loaded = true), Promise.reject(new Error('x'))) } }));
    assert.equal(s.kind, 'cpu');
    assert.equal(s.fellBack, false);
    assert.match(s.reason, /no GPU device found|only a software GPU adapter/);
    assert.equal(loaded, false);
  });

  it('auto keeps small jobs on the CPU without touching the GPU', async () => {
    let loaded = false;
    const s = await withGpuEnv(undefined, () =>
      selectBackend('auto', 10 * 1024 * 1024, {
        gpu: {
          load: () => {
            loaded = true;
            return Promise.reject(new Error('x'));
          },
        },
      }),
    );
    assert.equal(s.kind, 'cpu');
    assert.equal(s.fellBack, false);
    assert.match(s.reason, /below the GPU threshold/);
    assert.equal(loaded, false);
  });

  it('gpu picks the adapter; auto skips a software one unless allowed', async (t) => {
    if (!need(t)) return;
    const g = await selectBackend('gpu', 1);
    assert.equal(g.kind, 'gpu', g.reason);
    const sw = g.gpu?.describe().adapter?.software;
    await g.gpu?.dispose();
    const a = await selectBackend('auto', 1e12, { allowSoftwareForAuto: true });
    assert.equal(a.kind, 'gpu', a.reason);
    await a.gpu?.dispose();
    const b = await selectBackend('auto', 1e12);
    assert.equal(b.kind, sw ? 'cpu' : 'gpu', b.reason);
    if (sw) assert.match(b.reason, /only a software GPU adapter|no GPU device found/);
    await b.gpu?.dispose();
  });
});
