/**
 * The low-rank product on the GPU (host side of lowRankProductWgsl.ts): one chunk of τ = B·A or (B·A)ᵀ,
 * as kernels/lowRankJs.ts defines it, summed in double-float and rounded once to float32
 * (compute/lowRankBound.ts: the CPU's bits except near a float32 rounding boundary).
 *
 * Each call uploads the chunk's factors (for 'BA' only the rows of B it needs), runs one 2-D
 * dispatch and reads τ back: GPU memory is the two factors and twice τ, freed when the call ends.
 * Before the first call the backend probes which TwoProd is exact on the device (probeTwoProd).
 */
import { ChatVecError } from '../../errors';
import { type LowRankArgs, bRowsOf } from '../kernels/lowRankJs';
import type { GemmHost } from './gemmGpu';
import { LOW_RANK_PARAMS_BYTES, LOW_RANK_WORKGROUP, type TwoProdMethod, lowRankShader, twoProdProbeShader } from './lowRankProductWgsl';
import { dispatch } from './dispatch';

const align4 = (bytes: number): number => Math.ceil(bytes / 4) * 4;

/** Runs one shader over storage buffers made from `inputs`, returning the output's first `outFloats` values. */
async function runOnce(host: GemmHost, key: string, source: () => string, params: Uint32Array, inputs: readonly Float32Array[], outFloats: number, groups: number): Promise<Float32Array> {
  host.check();
  const { device: dev, flags } = host.gpu;
  const { usage } = flags;
  const pipeline = await host.pipeline(key, source);
  const gridX = Math.min(groups, host.maxDim);
  const gridY = Math.ceil(groups / gridX);
  if (gridY > host.maxDim) throw new ChatVecError('Internal', `GPU low-rank product: ${groups} workgroups exceed the dispatch limit`);
  params[5] = gridX;
  const outBytes = align4(outFloats * 4);
  for (const b of [...inputs.map((x) => x.length * 4), outBytes]) {
    if (b > host.windowBytes) throw new ChatVecError('Internal', `GPU low-rank product: ${b} bytes exceed the binding window of ${host.windowBytes}`);
  }
  const buffers: GPUBuffer[] = [];
  const make = (d: GPUBufferDescriptor): GPUBuffer => {
    const b = dev.createBuffer(d);
    buffers.push(b);
    return b;
  };
  try {
    // Everything from here to submit is synchronous: the scopes hold exactly this call's errors.
    dev.pushErrorScope('out-of-memory');
    dev.pushErrorScope('validation');
    let read: GPUBuffer;
    let errors: Promise<(GPUError | null)[]>;
    try {
      const p = make({ label: `${key} params`, size: LOW_RANK_PARAMS_BYTES, usage: usage.UNIFORM | usage.COPY_DST });
      dev.queue.writeBuffer(p, 0, params as Uint32Array<ArrayBuffer>);
      const ins = inputs.map((x, i) => {
        const b = make({ label: `${key} in ${i}`, size: Math.max(4, x.length * 4), usage: usage.STORAGE | usage.COPY_DST });
        dev.queue.writeBuffer(b, 0, x as Float32Array<ArrayBuffer>, 0, x.length);
        return b;
      });
      const out = make({ label: `${key} out`, size: outBytes, usage: usage.STORAGE | usage.COPY_SRC });
      read = make({ label: `${key} readback`, size: outBytes, usage: usage.MAP_READ | usage.COPY_DST });
      const enc = dev.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      dispatch(dev, pass, pipeline, [p, ...ins, out], gridX, gridY);
      pass.end();
      enc.copyBufferToBuffer(out, 0, read, 0, outBytes);
      dev.queue.submit([enc.finish()]);
    } finally {
      errors = Promise.all([dev.popErrorScope(), dev.popErrorScope()]);
    }
    const err = (await errors).find((e) => e !== null);
    if (err) throw new ChatVecError('Internal', `GPU rejected the low-rank product: ${err.message}`);
    await read.mapAsync(flags.map.READ, 0, outBytes);
    try {
      return new Float32Array(read.getMappedRange(0, outBytes), 0, outFloats).slice();
    } finally {
      read.unmap();
    }
  } finally {
    for (const b of buffers) b.destroy();
  }
}

/**
 * Writes the chunk of τ described by `p` (already checked by checkLowRank) into `out` (float32,
 * `p.count` elements) on the GPU.
 * @throws ChatVecError Internal when the device fails or a factor exceeds the binding window
 */
export async function lowRankProductOnGpu(host: GemmHost, method: TwoProdMethod, p: LowRankArgs, out: Float32Array): Promise<void> {
  const { rank, rows, cols, first, count } = p;
  if (count === 0) return;
  const [r0, nRows] = bRowsOf(first, count, cols);
  const [left, right] = p.layout === 'BA' ? [p.left.subarray(0, nRows * rank), p.right.subarray(0, rank * cols)] : [p.left.subarray(0, rank * rows), p.right.subarray(0, cols * rank)];
  const params = new Uint32Array([count, first - r0 * cols, cols, rows, rank, 0, 0, r0]);
  const got = await runOnce(host, `lowRank-${p.layout}-${method}`, () => lowRankShader(p.layout, method), params, [left, right], count, Math.ceil(count / LOW_RANK_WORKGROUP));
  out.set(got);
}

/**
 * Whether TwoProd by `method` is exact on this device: products of float32 values with full
 * 24-bit significands over magnitudes 2⁻³⁰…2³⁰, each p + e compared with the float64 product
 * (exact: 48 bits fit in 53), and p with the float32-rounded product.
 * @throws ChatVecError Internal when the device fails
 */
export async function probeTwoProd(host: GemmHost, method: TwoProdMethod): Promise<boolean> {
  const pairs = 1024;
  const x = new Float32Array(2 * pairs);
  let seed = 987654321;
  const next = (): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  for (let i = 0; i < x.length; i++) x[i] = (next() < 0.5 ? -1 : 1) * (1 + next()) * 2 ** Math.floor(60 * next() - 30);
  const got = await runOnce(host, `twoProd-${method}`, () => twoProdProbeShader(method), new Uint32Array([pairs, 0, 0, 0, 0, 0, 0, 0]), [x], 2 * pairs, Math.ceil(pairs / LOW_RANK_WORKGROUP));
  for (let i = 0; i < pairs; i++) {
    const exact = x[2 * i]! * x[2 * i + 1]!;
    if (got[2 * i] !== Math.fround(exact) || got[2 * i]! + got[2 * i + 1]! !== exact) return false;
  }
  return true;
}
