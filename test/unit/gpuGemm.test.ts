// The GEMM kernel of the randomized SVD on the GPU backend (compute/gpu/gemmGpu.ts), on whatever
// WebGPU adapter this machine has (in CI Mesa's llvmpipe through OpenGL ES): both products against
// a float64 reference written here, within the float32 bound stated by the kernel (restated here
// from its definition, not imported), with row blocks, streaming and residency forced by tiny
// limits. Without an adapter the tests skip (CHATVEC_GPU_TEST=require: fail).
process.env.EGL_PLATFORM ??= 'surfaceless'; // before webgpu loads: Mesa's EGL needs no display then

import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { createGpuBackend, type GpuBackend } from '../../src/core/compute/gpu/gpuBackend';
import { ChatVecError } from '../../src/core/errors';
import { rng } from './gpuReference';

let gpu: GpuBackend | undefined;
/** Row blocks of 2 KiB (several per matrix), nothing resident: every block is re-uploaded per product. */
let streamed: GpuBackend | undefined;
/** Row blocks of 2 KiB, all resident. */
let blocked: GpuBackend | undefined;
let noGpu = '';

before(async () => {
  if (process.env.CHATVEC_GPU?.toLowerCase() === 'off') {
    noGpu = 'CHATVEC_GPU=off';
    return;
  }
  try {
    gpu = await createGpuBackend();
    streamed = await createGpuBackend({ gemm: { blockBytes: 2048, residentBytes: 0 } });
    blocked = await createGpuBackend({ gemm: { blockBytes: 2048 } });
  } catch (e) {
    noGpu = e instanceof Error ? e.message : String(e);
  }
});

after(async () => {
  await gpu?.dispose();
  await streamed?.dispose();
  await blocked?.dispose();
});

function need(t: TestContext): GpuBackend[] | undefined {
  if (gpu && streamed && blocked) return [gpu, streamed, blocked];
  if (process.env.CHATVEC_GPU_TEST === 'require') assert.fail(`no WebGPU adapter: ${noGpu}`);
  t.skip(`no WebGPU adapter: ${noGpu}`);
  return undefined;
}

/** M·X or Mᵀ·X in float64, and the same product of |M| and |X| (the scale of the error bound). */
function reference(M: Float32Array, m: number, n: number, X: Float64Array, l: number, transposed: boolean): { want: Float64Array; mag: Float64Array } {
  const [oRows, K] = transposed ? [n, m] : [m, n];
  const want = new Float64Array(oRows * l);
  const mag = new Float64Array(oRows * l);
  for (let i = 0; i < oRows; i++) {
    for (let c = 0; c < l; c++) {
      let s = 0;
      let a = 0;
      for (let k = 0; k < K; k++) {
        const v = transposed ? M[k * n + i]! : M[i * n + k]!;
        const x = X[k * l + c]!;
        s += v * x;
        a += Math.abs(v * x);
      }
      want[i * l + c] = s;
      mag[i * l + c] = a;
    }
  }
  return { want, mag };
}

/**
 * A sequential float32 sum of K products, the panel rounded to float32 first: error at most
 * (K+1)u/(1−(K+1)u)·Σ|M||X|, u = 2⁻²⁴, plus K·2⁻¹²⁵ for flushed subnormals.
 */
function within(got: Float64Array, r: { want: Float64Array; mag: Float64Array }, K: number, what: string): void {
  const g = ((K + 1) * 2 ** -24) / (1 - (K + 1) * 2 ** -24);
  for (let i = 0; i < got.length; i++) {
    const bound = g * r.mag[i]! + K * 2 ** -125;
    assert.ok(Math.abs(got[i]! - r.want[i]!) <= bound, `${what}: element ${i} is ${got[i]}, float64 ${r.want[i]} (bound ${bound})`);
  }
}

const values = (count: number, seed: number, scale = 1) => {
  const g = rng(seed);
  return Array.from({ length: count }, () => scale * (g() - 0.5) * 2 ** Math.floor(8 * g() - 4));
};

describe('GPU GEMM (the randomized SVD products) against float64', () => {
  for (const [m, n, l] of [
    [37, 29, 5],
    [150, 83, 21],
    [16, 16, 16],
    [1, 40, 3],
  ] as const) {
    it(`M·X and Mᵀ·X for ${m}×${n}, ${l} columns, within the float32 bound; row blocks, streaming and residency change no bit`, async (t) => {
      const backends = need(t);
      if (!backends) return;
      const M = Float32Array.from(values(m * n, m * 1000 + n));
      for (const transposed of [false, true]) {
        const X = Float64Array.from(values((transposed ? m : n) * l, l + 7));
        const ref = reference(M, m, n, X, l, transposed);
        const outs: Float64Array[] = [];
        for (const b of backends) {
          const k = b.gemm();
          const out = new Float64Array(ref.want.length).fill(NaN);
          // Twice: the second product reuses the resident blocks.
          for (let rep = 0; rep < 2; rep++) await (transposed ? k.mulPanelT(M, m, n, X, l, out) : k.mulPanel(M, m, n, X, l, out));
          k.release();
          within(out, ref, transposed ? m : n, `${transposed ? 'Mᵀ·X' : 'M·X'} on ${b === gpu ? 'defaults' : b === streamed ? 'streamed blocks' : 'resident blocks'}`);
          outs.push(out);
        }
        for (const o of outs.slice(1)) assert.deepEqual(o, outs[0], 'the blocking does not change the order of the sums');
      }
    });
  }

  it('a second matrix of the same shape is uploaded, not taken for the resident one', async (t) => {
    const backends = need(t);
    if (!backends) return;
    const [m, n, l] = [40, 33, 6];
    const X = Float64Array.from(values(n * l, 3));
    for (const b of backends) {
      const k = b.gemm();
      for (const seed of [1, 2]) {
        const M = Float32Array.from(values(m * n, seed));
        const out = new Float64Array(m * l);
        await k.mulPanel(M, m, n, X, l, out);
        within(out, reference(M, m, n, X, l, false), n, `matrix ${seed}`);
      }
      k.release();
    }
  });

  it('rejects short arrays and use after release with a ChatVecError', async (t) => {
    const backends = need(t);
    if (!backends) return;
    const k = backends[0]!.gemm();
    await assert.rejects(k.mulPanel(new Float32Array(5), 2, 3, new Float64Array(6), 2, new Float64Array(4)), (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument');
    k.release();
    await assert.rejects(k.mulPanel(new Float32Array(6), 2, 3, new Float64Array(6), 2, new Float64Array(4)), (e: unknown) => e instanceof ChatVecError && e.code === 'Internal');
  });
});
