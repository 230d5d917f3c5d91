// apply and extract with `backend: 'gpu'` end to end, on whatever WebGPU adapter this machine has
// (in CI Mesa's llvmpipe through OpenGL ES, installed by scripts/setup-gpu-test.sh). Every output
// is compared with the same job on the CPU, element by element: the count of differing elements
// is reported and none may be more than 1 ulp away. Without any adapter the GPU tests skip and
// say why (CHATVEC_GPU_TEST=require makes that a failure); the fallback tests need no GPU.
process.env.EGL_PLATFORM ??= 'surfaceless'; // before webgpu loads: Mesa's EGL needs no display then

import assert from 'node:assert/strict';
import { gpuDeviceNodesPresent } from '../../src/core/io/gpuDevices';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { CombineArgs, ComputeBackend, KernelOptions } from '../../src/core/compute/types';
import { createGpuBackend } from '../../src/core/compute/gpu/gpuBackend';
import { generateDemoTrio, type DemoTrio } from '../../src/core/demo/generator';
import { PRESETS } from '../../src/core/demo/presets';
import { specialTokenIds } from '../../src/core/demo/tokenizer';
import { runApply } from '../../src/core/engine/apply';
import type { ComputeHooks, ComputeJobContext } from '../../src/core/engine/computeSelection';
import { runExtract } from '../../src/core/engine/extract';
import { ChatVecError } from '../../src/core/errors';
import type { ApplyOptions, ExtractOptions, JobOutcome, LogLevel } from '../../src/core/jobs/types';
import type { LogParams } from '../../src/protocol/taskHost';
import { TaskHostClient } from '../../src/taskhost/client';
import {
  type OutFloat,
  REPO_ROOT,
  assertNothingLeft,
  bitsArray,
  isNaNBits,
  readCheckpoint,
  rejectsWith,
  tempDir,
  ulpDistance,
  writeModel,
} from './support/engineFixtures';

const THREADS = 2;
let dir: string;
let tiny: DemoTrio;
let small: DemoTrio;
let noGpu = '';
let n = 0;
const out = (what: string) => path.join(dir, `${what}-${n++}`);
/** Elements compared between GPU and CPU outputs over the whole file, and how many differed. */
const tally = { compared: 0, differing: 0, maxUlp: 0 };

before(async () => {
  dir = tempDir('gpuapply');
  tiny = generateDemoTrio(path.join(dir, 'demo'), 'tiny', 7);
  small = generateDemoTrio(path.join(dir, 'demo'), 'small', 7);
  if (process.env.CHATVEC_GPU?.trim().toLowerCase() === 'off') {
    noGpu = 'CHATVEC_GPU=off';
    return;
  }
  try {
    const g = await createGpuBackend();
    await g.dispose();
  } catch (e) {
    noGpu = e instanceof Error ? e.message : String(e);
  }
});

after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  if (tally.compared) console.log(`# GPU jobs vs CPU jobs: ${tally.differing} of ${tally.compared} output elements differ (max ${tally.maxUlp} ulp)`);
});

/** True when the GPU tests can run; otherwise skips (or fails under CHATVEC_GPU_TEST=require). */
function haveGpu(t: TestContext): boolean {
  if (!noGpu) return true;
  if (process.env.CHATVEC_GPU_TEST === 'require') assert.fail(`no WebGPU adapter: ${noGpu}`);
  t.skip(`no WebGPU adapter, GPU job tests skipped: ${noGpu}`);
  return false;
}

/** A GPU backend wrapper that counts calls and concurrency, and can fail or cancel on a given call. */
class Spy implements ComputeBackend {
  readonly kind = 'gpu' as const;
  calls = 0;
  active = 0;
  maxActive = 0;
  constructor(
    readonly inner: ComputeBackend,
    private readonly on?: { call: number; fail?: ChatVecError; cancel?: { cancelled: boolean } },
  ) {}
  get name() {
    return this.inner.name;
  }
  describe() {
    return this.inner.describe();
  }
  async combine(req: CombineArgs, opts?: KernelOptions) {
    const call = ++this.calls;
    if (this.on && call === this.on.call) {
      if (this.on.fail) throw this.on.fail;
      if (this.on.cancel) this.on.cancel.cancelled = true;
    }
    this.maxActive = Math.max(this.maxActive, ++this.active);
    try {
      return await this.inner.combine(req, opts);
    } finally {
      this.active--;
    }
  }
  diff(...a: Parameters<ComputeBackend['diff']>) {
    return this.inner.diff(...a);
  }
  gemm() {
    return this.inner.gemm();
  }
  lowRank(...a: Parameters<ComputeBackend['lowRank']>) {
    return this.inner.lowRank(...a);
  }
  dispose() {
    return this.inner.dispose();
  }
}

interface Logged {
  readonly logs: { level: LogLevel; message: string }[];
  readonly ctx: ComputeJobContext;
}

function context(compute?: ComputeHooks, signal?: { cancelled: boolean }): Logged {
  const logs: { level: LogLevel; message: string }[] = [];
  return { logs, ctx: { onLog: (level, message) => logs.push({ level, message }), ...(compute ? { compute } : {}), ...(signal ? { signal } : {}) } };
}

function meta(dirPath: string): Record<string, unknown> {
  return JSON.parse(readCheckpoint(dirPath).metadata[0]!.chatvec!) as Record<string, unknown>;
}

/**
 * Compares every tensor of two outputs element by element (any NaN equals any NaN), reports the
 * count of differing elements and requires each to be within 1 ulp; the metadata must agree but
 * for the backend.
 */
function compareOutputs(t: TestContext, gotDir: string, wantDir: string, what: string): { compared: number; differing: number } {
  const got = readCheckpoint(gotDir);
  const want = readCheckpoint(wantDir);
  assert.deepEqual(got.order, want.order, `${what}: tensor order`);
  let compared = 0;
  let differing = 0;
  let maxUlp = 0;
  const worst: string[] = [];
  for (const name of want.order) {
    const a = want.tensors.get(name)!;
    const b = got.tensors.get(name)!;
    assert.equal(b.dtype, a.dtype, `${what}: ${name} dtype`);
    assert.deepEqual(b.shape, a.shape, `${what}: ${name} shape`);
    if (!['BF16', 'F16', 'F32'].includes(a.dtype)) {
      // F64 and integer tensors are never on the GPU: the same bytes.
      assert.ok(b.bytes.equals(a.bytes), `${what}: ${name} (${a.dtype}) differs`);
      continue;
    }
    const dtype = a.dtype as OutFloat;
    const x = bitsArray(a.bytes, dtype);
    const y = bitsArray(b.bytes, dtype);
    assert.equal(y.length, x.length);
    for (let i = 0; i < x.length; i++) {
      const p = x[i]!;
      const q = y[i]!;
      if (p === q || (isNaNBits(p, dtype) && isNaNBits(q, dtype))) continue;
      differing++;
      const ulp = isNaNBits(p, dtype) || isNaNBits(q, dtype) ? Infinity : ulpDistance(p, q, dtype);
      maxUlp = Math.max(maxUlp, ulp);
      if (ulp > 1 && worst.length < 5) worst.push(`${name}[${i}]: cpu ${p.toString(16)} gpu ${q.toString(16)} (${ulp} ulp)`);
    }
    compared += x.length;
  }
  // The bundled CLI and the sources differ in `tool` (version stamp) only.
  const { backend: _g, tool: _tg, ...mg } = meta(gotDir);
  const { backend: _w, tool: _tw, ...mw } = meta(wantDir);
  assert.deepEqual(mg, mw, `${what}: metadata other than the backend`);
  tally.compared += compared;
  tally.differing += differing;
  tally.maxUlp = Math.max(tally.maxUlp, maxUlp);
  t.diagnostic(`${what}: ${differing} of ${compared} elements differ from the CPU output (max ${maxUlp} ulp)`);
  assert.deepEqual(worst, [], `${what}: elements more than 1 ulp from the CPU output`);
  return { compared, differing };
}

/** The outcome of a GPU job must name the GPU, as must the output's metadata, and the spy must have seen the kernels. */
function assertRanOnGpu(r: JobOutcome, o: string, spy: Spy | undefined): void {
  assert.match(r.backend, /^gpu: .+\(.+\)$/, `outcome.backend: ${r.backend}`);
  assert.doesNotMatch(r.backend, /then cpu/);
  assert.equal(meta(o).backend, r.backend, 'metadata names the backend that ran');
  if (spy) assert.ok(spy.calls > 0, 'no kernel ran on the GPU');
  if (spy) assert.ok(spy.maxActive <= 3, `${spy.maxActive} GPU tasks in flight (at most 3 lanes)`);
}

async function apply(opts: Omit<ApplyOptions, 'out'>, c: Logged = context()): Promise<{ o: string; r: JobOutcome }> {
  const o = out('apply');
  const r = await runApply({ threads: THREADS, ...opts, out: o }, c.ctx);
  return { o, r };
}

async function extract(opts: Omit<ExtractOptions, 'out'>, c: Logged = context()): Promise<{ o: string; r: JobOutcome }> {
  const o = out('extract');
  const r = await runExtract({ threads: THREADS, ...opts, out: o }, c.ctx);
  return { o, r };
}

/** Runs `opts` on the GPU (through a Spy) and on the CPU and compares the outputs. */
async function gpuVsCpu(t: TestContext, kind: 'apply' | 'extract', opts: Omit<ApplyOptions, 'out'> | Omit<ExtractOptions, 'out'>, what: string) {
  let spy: Spy | undefined;
  const c = context({ wrapGpu: (g) => (spy = new Spy(g)) });
  const run = (o: typeof opts, ctx?: Logged) => (kind === 'apply' ? apply(o as ApplyOptions, ctx) : extract(o as ExtractOptions, ctx));
  const g = await run({ ...opts, backend: 'gpu' }, c);
  const cpu = await run({ ...opts, backend: 'cpu' });
  assertRanOnGpu(g.r, g.o, spy);
  assert.equal(cpu.r.backend, `cpu (${THREADS} threads)`);
  assert.equal(meta(cpu.o).backend, cpu.r.backend);
  assert.ok(!c.logs.some((l) => l.level === 'warn' && /compute backend|GPU failure/.test(l.message)), `no GPU warning on a working GPU: ${JSON.stringify(c.logs)}`);
  assert.ok(c.logs.some((l) => l.level === 'info' && l.message.includes(g.r.backend)), 'the selection is logged');
  const cmp = compareOutputs(t, g.o, cpu.o, what);
  t.diagnostic(`${what}: ${spy!.calls} GPU kernel calls, at most ${spy!.maxActive} at once`);
  return { gpu: g, cpu, cmp, spy: spy! };
}

describe('GPU apply equals the CPU', () => {
  for (const preset of ['tiny', 'small'] as const) {
    it(`fused, bf16 output, ${preset} preset (skip-embed, special-token rows on the CPU)`, async (t) => {
      if (!haveGpu(t)) return;
      const trio = preset === 'tiny' ? tiny : small;
      const ids = specialTokenIds(PRESETS[preset].vocab);
      const specialTokens = ids.map((id) => [id, id] as const);
      await gpuVsCpu(t, 'apply', { target: trio.cp, base: trio.base, chats: [trio.chat], ratios: [1], skipEmbed: true, specialTokens }, `fused bf16 ${preset}`);
    });
  }

  it('fused, f32 output, two chats with their own ratios (tiny)', async (t) => {
    if (!haveGpu(t)) return;
    const { gpu } = await gpuVsCpu(t, 'apply', { target: tiny.cp, base: tiny.base, chats: [tiny.chat, tiny.chat], ratios: [0.5, -1.25], skipEmbed: true, dtype: 'F32' }, 'fused f32 2 terms');
    assert.equal(readCheckpoint(gpu.o).tensors.get('model.layers.0.mlp.up_proj.weight')!.dtype, 'F32');
  });

  it('extract (f32 vector) then the vector path (bf16 output), small preset', async (t) => {
    if (!haveGpu(t)) return;
    const ex = await gpuVsCpu(t, 'extract', { base: small.base, chat: small.chat }, 'extract f32 small');
    // Both vectors are applied: the GPU's to check the vector path, compared with the CPU on the CPU's vector.
    const g = await gpuVsCpu(t, 'apply', { target: small.cp, vectors: [ex.cpu.o], ratios: [0.5], skipEmbed: true }, 'vector bf16 small');
    assert.equal(g.gpu.r.tensorCount, g.cpu.r.tensorCount);
  });

  it('extract to bf16 and f16 (tiny)', async (t) => {
    if (!haveGpu(t)) return;
    await gpuVsCpu(t, 'extract', { base: tiny.base, chat: tiny.chat, dtype: 'BF16' }, 'extract bf16 tiny');
    await gpuVsCpu(t, 'extract', { base: tiny.chat, chat: tiny.base, dtype: 'F16' }, 'extract f16 tiny (reversed)');
  });

  it('special values (−0, NaN, ±Inf, subnormals) bit for bit; F64 and integer tensors go to the CPU', async (t) => {
    if (!haveGpu(t)) return;
    // chat − base where base is +0 and chat −0 is −0: the GPU, which has no target in extract,
    // must start from −0 (not +0) to keep that sign.
    const special = [0, -0, 1e-40, -1e-40, Infinity, -Infinity, NaN, 3e38, -3e38, 1.5, -2.25, 1e-30];
    const model = (dirName: string, shift: number) =>
      writeModel(path.join(dir, dirName), [
        { name: 'w.bf16', dtype: 'BF16', shape: [12, 50], values: Array.from({ length: 600 }, (_, i) => special[(i * (shift + 1) + (i >> 4)) % special.length]!) },
        { name: 'w.f32', dtype: 'F32', shape: [600], values: Array.from({ length: 600 }, (_, i) => (i % 3 === 0 ? special[(i + shift) % special.length]! : Math.fround(Math.sin(i + shift)))) },
        { name: 'w.f16', dtype: 'F16', shape: [60], values: Array.from({ length: 60 }, (_, i) => (i % 2 ? 0.25 * (shift + 1) : shift === 1 ? -0 : 0)) },
        { name: 'w.f64', dtype: 'F64', shape: [8], bytes: new Uint8Array(new Float64Array([1, -0, 2.5, NaN, shift, 1e-300, -7, 0]).buffer) },
        { name: 'ids', dtype: 'I64', shape: [3], bytes: new Uint8Array(new BigInt64Array([1n, 2n, 3n]).buffer) },
      ]);
    const base = model('special-base', 0);
    const chat = model('special-chat', 1);
    const cp = model('special-cp', 2);
    // base and chat hold +0 and −0 at the same places in w.f16: chat − base = −0 there.
    // ±3e38 overflow on purpose (3e38 − (−3e38) = +Inf from finite inputs): allowed here, and
    // the GPU's count of non-finite outputs (nonFinite.ts on its output) must equal the CPU's.
    const sameNonFinite = (r: Awaited<ReturnType<typeof gpuVsCpu>>, what: string, produced = true) => {
      assert.deepEqual(r.gpu.r.warnings, r.cpu.r.warnings, `${what}: the GPU job reports the CPU job's non-finite counts`);
      if (produced) assert.ok(r.cpu.r.warnings.some((w) => /produced from finite inputs/.test(w)), `${what}: ${JSON.stringify(r.cpu.r.warnings)}`);
      assert.ok(r.cpu.r.warnings.some((w) => /of the inputs passed through/.test(w)), `${what}: ${JSON.stringify(r.cpu.r.warnings)}`);
    };
    const ex = await gpuVsCpu(t, 'extract', { base, chat, allowNonFinite: true }, 'extract special values');
    sameNonFinite(ex, 'extract');
    const tau = readCheckpoint(ex.gpu.o).tensors.get('w.f16')!;
    assert.ok(bitsArray(tau.bytes, 'F32').some((b) => b === 0x80000000), 'a −0 difference keeps its sign');
    sameNonFinite(await gpuVsCpu(t, 'apply', { target: cp, base, chats: [chat], ratios: [0.75], allowNonFinite: true }, 'apply special values'), 'apply');
    sameNonFinite(await gpuVsCpu(t, 'apply', { target: cp, vectors: [ex.cpu.o], dtype: 'BF16', allowNonFinite: true }, 'vector apply special values'), 'vector apply', false);
  });
});

describe('GPU failure and cancellation', () => {
  const fused = () => ({ target: tiny.cp, base: tiny.base, chats: [tiny.chat], skipEmbed: true });

  it('a device failure mid-job reruns on the CPU, says so, and the output is still right', async (t) => {
    if (!haveGpu(t)) return;
    let spy: Spy | undefined;
    const c = context({ wrapGpu: (g) => (spy = new Spy(g, { call: 3, fail: new ChatVecError('Internal', 'GPU device lost (injected by the test)') })) });
    const g = await apply({ ...fused(), backend: 'gpu' }, c);
    const cpu = await apply({ ...fused(), backend: 'cpu' });
    assert.match(g.r.backend, /^gpu: .+, then cpu \(2 threads\) after a GPU failure$/);
    const warn = c.logs.filter((l) => l.level === 'warn');
    assert.equal(warn.length, 1, JSON.stringify(c.logs));
    assert.match(warn[0]!.message, /GPU failure mid-job \(GPU device lost \(injected by the test\)\): running the rest on the CPU/);
    assert.equal(spy!.calls, 3, 'no GPU call after the failure');
    compareOutputs(t, g.o, cpu.o, 'after a mid-job GPU failure');
  });

  it("with onGpuFailure 'fail' the job fails and leaves nothing behind", async (t) => {
    if (!haveGpu(t)) return;
    const c = context({ onGpuFailure: 'fail', wrapGpu: (g) => new Spy(g, { call: 2, fail: new ChatVecError('Internal', 'GPU device lost (injected)') }) });
    const o = out('fail');
    await rejectsWith(runApply({ ...fused(), out: o, threads: THREADS, backend: 'gpu' }, c.ctx), 'Internal', 'GPU failed mid-job', 'injected');
    assertNothingLeft(o);
    assert.ok(c.logs.some((l) => l.level === 'warn' && l.message.includes('failing the job')));
  });

  it('cancellation stops a GPU job and leaves nothing behind', async (t) => {
    if (!haveGpu(t)) return;
    const signal = { cancelled: false };
    let spy: Spy | undefined;
    const c = context({ wrapGpu: (g) => (spy = new Spy(g, { call: 2, cancel: signal })) }, signal);
    const o = out('cancel');
    await rejectsWith(runApply({ ...fused(), out: o, threads: THREADS, backend: 'gpu' }, c.ctx), 'Cancelled');
    assertNothingLeft(o);
    assert.ok(spy!.calls <= 2 + 3, `${spy!.calls} GPU calls after cancelling`);
  });
});

describe('backend selection in jobs', () => {
  const fused = () => ({ target: tiny.cp, base: tiny.base, chats: [tiny.chat], skipEmbed: true });
  let cpuOut: string;
  before(async () => {
    cpuOut = (await apply({ ...fused(), backend: 'cpu' })).o;
  });

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

  it("'gpu' with CHATVEC_GPU=off runs on the CPU, warns, and the output is right", async (t) => {
    const c = context();
    const g = await withGpuEnv('off', () => apply({ ...fused(), backend: 'gpu' }, c));
    assert.equal(g.r.backend, `cpu (${THREADS} threads)`);
    assert.equal(meta(g.o).backend, g.r.backend);
    const warn = c.logs.filter((l) => l.level === 'warn');
    assert.equal(warn.length, 1, JSON.stringify(c.logs));
    assert.match(warn[0]!.message, /GPU requested but the GPU is switched off \(CHATVEC_GPU=off\): using the CPU \(cpu \(2 threads\)\)/);
    const cmp = compareOutputs(t, g.o, cpuOut, 'CHATVEC_GPU=off fallback');
    assert.equal(cmp.differing, 0, 'the fallback is the CPU path itself');
  });

  it("'gpu' where no adapter can be made (webgpu cannot load) falls back with the reason; extract too", async (t) => {
    const hooks: ComputeHooks = { select: { gpu: { load: () => Promise.reject(new Error('no webgpu on this machine (simulated)')) } } };
    const c = context(hooks);
    const g = await apply({ ...fused(), backend: 'gpu' }, c);
    assert.equal(g.r.backend, `cpu (${THREADS} threads)`);
    assert.ok(c.logs.some((l) => l.level === 'warn' && /no usable GPU .*simulated/.test(l.message)), JSON.stringify(c.logs));
    assert.equal(compareOutputs(t, g.o, cpuOut, 'no-adapter fallback').differing, 0);
    const c2 = context(hooks);
    const ex = await extract({ base: tiny.base, chat: tiny.chat, backend: 'gpu' }, c2);
    assert.equal(ex.r.backend, `cpu (${THREADS} threads)`);
    assert.equal(meta(ex.o).backend, ex.r.backend);
    assert.ok(c2.logs.some((l) => l.level === 'warn' && l.message.includes('simulated')));
  });

  it("'cpu' and small 'auto' jobs never load webgpu and log no warning", async () => {
    let loads = 0;
    const hooks: ComputeHooks = {
      select: {
        gpu: {
          load: () => {
            loads++;
            return Promise.reject(new Error('must not load'));
          },
        },
      },
    };
    for (const backend of ['cpu', 'auto', undefined] as const) {
      const c = context(hooks);
      const r = await apply({ ...fused(), backend }, c);
      assert.equal(r.r.backend, `cpu (${THREADS} threads)`, String(backend));
      assert.deepEqual(c.logs.filter((l) => l.level === 'warn'), [], String(backend));
    }
    assert.equal(loads, 0);
  });

  it("'auto' above the threshold skips a software adapter unless allowed", async (t) => {
    if (!haveGpu(t)) return;
    const c = context({ select: { autoThresholdBytes: 0 } });
    const r = await apply({ ...fused(), backend: 'auto' }, c);
    // no probe at all where no GPU device node exists; else the software adapter is seen and skipped
    const software = !gpuDeviceNodesPresent() || c.logs.some((l) => l.message.includes('only a software GPU adapter'));
    if (software) assert.equal(r.r.backend, `cpu (${THREADS} threads)`);
    else assert.match(r.r.backend, /^gpu: /, 'a hardware adapter is used under auto');
    t.diagnostic(`auto, threshold 0: ${r.r.backend}`);
    const c2 = context({ select: { autoThresholdBytes: 0, allowSoftwareForAuto: true } });
    const r2 = await apply({ ...fused(), backend: 'auto' }, c2);
    assert.match(r2.r.backend, /^gpu: /);
    assert.equal(compareOutputs(t, r2.o, cpuOut, 'auto on the GPU').compared > 0, true);
  });
});

describe('chatvec apply --backend (CLI)', () => {
  const cli = path.join(REPO_ROOT, 'dist/cli.js');
  let cpuOut: string;
  before(async () => {
    const b = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts/build.mjs')], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(b.status, 0, b.stderr);
    cpuOut = (await apply({ target: tiny.cp, base: tiny.base, chats: [tiny.chat], skipEmbed: true, backend: 'cpu' })).o;
  });

  function chatvec(env: NodeJS.ProcessEnv, ...args: string[]) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, CHATVEC_WORKER_SCRIPT: '', ...env }, timeout: 60_000 });
    assert.equal(r.error, undefined, String(r.error));
    return { ...r, seconds: (performance.now() - t0) / 1000 };
  }
  const args = (o: string, backend: string) => ['apply', '--target', tiny.cp, '--base', tiny.base, '--chat', tiny.chat, '--skip-embed', '--out', o, '--threads', '2', '--backend', backend];

  it('--backend gpu runs on the GPU (or falls back with a warning), exits promptly, and writes the CPU bytes', (t) => {
    const o = out('cli');
    const r = chatvec({}, ...args(o, 'gpu'));
    assert.equal(r.status, 0, r.stderr);
    t.diagnostic(`CLI apply --backend gpu: ${r.stdout.trim()} in ${r.seconds.toFixed(1)} s`);
    if (noGpu) {
      assert.match(r.stdout, /\(cpu \(2 threads\)\)/);
      assert.match(r.stderr, /warn: compute backend: GPU requested but/);
    } else {
      assert.match(r.stdout, /\(gpu: [^\n]+\)\n$/);
      assert.match(String(meta(o).backend), /^gpu: /);
    }
    compareOutputs(t, o, cpuOut, 'CLI --backend gpu');
  });

  it('outside any node_modules, the bundles load Dawn from dist/webgpu/ as a platform .vsix lays it out', (t) => {
    if (noGpu) return t.skip('no WebGPU adapter: nothing to load the copy for');
    // The layout scripts/package-vsix.mjs --target puts into the package: bundles + dist/webgpu/.
    const folder = process.platform === 'darwin' ? 'darwin-universal' : `${process.platform}-${process.arch}`;
    const pkg = path.join(REPO_ROOT, 'node_modules', 'webgpu');
    const ext = fs.mkdtempSync(path.join(os.tmpdir(), 'cv-vsix-layout-'));
    try {
      fs.mkdirSync(path.join(ext, 'dist', 'webgpu', 'dist'), { recursive: true });
      for (const f of ['cli.js', 'cliMain.js', 'cliDiff.js', 'worker.js']) fs.copyFileSync(path.join(REPO_ROOT, 'dist', f), path.join(ext, 'dist', f));
      for (const f of ['package.json', 'index.js']) fs.copyFileSync(path.join(pkg, f), path.join(ext, 'dist', 'webgpu', f));
      fs.cpSync(path.join(pkg, 'dist', folder), path.join(ext, 'dist', 'webgpu', 'dist', folder), { recursive: true });
      const o = out('cli-vsix-layout');
      const r = spawnSync(process.execPath, [path.join(ext, 'dist', 'cli.js'), ...args(o, 'gpu')], { encoding: 'utf8', env: { ...process.env, CHATVEC_WORKER_SCRIPT: '' }, timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /\(gpu: [^\n]+\)\n$/, 'the GPU ran from the copy beside the bundles');
      assert.equal(compareOutputs(t, o, cpuOut, 'bundled webgpu copy').differing, 0);
    } finally {
      fs.rmSync(ext, { recursive: true, force: true });
    }
  });

  it('--backend gpu with CHATVEC_GPU=off warns and runs on the CPU', (t) => {
    const o = out('cli-off');
    const r = chatvec({ CHATVEC_GPU: 'off' }, ...args(o, 'gpu'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /warn: compute backend: GPU requested but the GPU is switched off \(CHATVEC_GPU=off\)/);
    assert.match(r.stdout, /\(cpu \(2 threads\)\)/);
    assert.equal(compareOutputs(t, o, cpuOut, 'CLI CHATVEC_GPU=off').differing, 0);
  });

  it('rejects an unknown backend before any work', () => {
    const o = out('cli-bad');
    const r = chatvec({}, ...args(o, 'tpu'));
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--backend "tpu" is not one of auto, cpu, gpu/);
    assertNothingLeft(o);
  });

  it('extract --backend is accepted and named in the result line', () => {
    const o = out('cli-extract');
    const r = chatvec({ CHATVEC_GPU: 'off' }, 'extract', '--base', tiny.base, '--chat', tiny.chat, '--out', o, '--threads', '2', '--backend', 'cpu');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /wrote chat vector .*\(cpu \(2 threads\)\)/);
    assert.equal(meta(o).backend, 'cpu (2 threads)');
  });
});

describe('the task host with backend gpu (the extension\'s chatVector.computeBackend)', () => {
  let cpuOut: string;
  before(async () => {
    // The CLI suite above built dist/; build again only when run alone.
    if (!fs.existsSync(path.join(REPO_ROOT, 'dist/taskhost.js'))) {
      const b = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts/build.mjs')], { cwd: REPO_ROOT, encoding: 'utf8' });
      assert.equal(b.status, 0, b.stderr);
    }
    cpuOut = (await apply({ target: tiny.cp, base: tiny.base, chats: [tiny.chat], skipEmbed: true, backend: 'cpu' })).o;
  });

  async function viaHost(env: Record<string, string>) {
    const client = new TaskHostClient({ hostScript: path.join(REPO_ROOT, 'dist/taskhost.js'), backend: 'gpu', threads: THREADS, env: { CHATVEC_WORKER_SCRIPT: '', ...env } });
    const logs: LogParams[] = [];
    client.onLog((l) => logs.push(l));
    try {
      const o = out('host');
      const r = await client.apply({ target: tiny.cp, base: tiny.base, chats: [tiny.chat], skipEmbed: true, out: o }, { jobId: 'gpu-job' });
      assert.ok(r.status === 'ok', JSON.stringify(r));
      return { o, backend: r.result.backend, logs: logs.filter((l) => l.jobId === 'gpu-job') };
    } finally {
      await client.dispose();
    }
  }

  it('runs jobs without a backend option on the GPU (or falls back, saying so), with the CPU bytes', async (t) => {
    const r = await viaHost({});
    t.diagnostic(`task host --backend=gpu: ${r.backend}`);
    if (noGpu) {
      assert.equal(r.backend, `cpu (${THREADS} threads)`);
      assert.ok(r.logs.some((l) => l.level === 'warn' && l.source === 'job' && /GPU requested but/.test(l.message)), JSON.stringify(r.logs));
    } else {
      assert.match(r.backend, /^gpu: /);
      assert.ok(r.logs.some((l) => l.source === 'host' && l.message.includes(`on ${r.backend}`)), 'the finish line names the GPU');
    }
    assert.equal(meta(r.o).backend, r.backend);
    compareOutputs(t, r.o, cpuOut, 'task host --backend=gpu');
  });

  it('falls back to the CPU with a forwarded warning when the GPU is off', async (t) => {
    const r = await viaHost({ CHATVEC_GPU: 'off' });
    assert.equal(r.backend, `cpu (${THREADS} threads)`);
    assert.ok(r.logs.some((l) => l.level === 'warn' && l.source === 'job' && /GPU requested but the GPU is switched off/.test(l.message)), JSON.stringify(r.logs));
    assert.equal(compareOutputs(t, r.o, cpuOut, 'task host, CHATVEC_GPU=off').differing, 0);
  });
});
