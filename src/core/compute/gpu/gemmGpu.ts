/**
 * The GEMM kernel of the randomized SVD on the GPU (host side of gemmWgsl.ts): the products
 * M·X and Mᵀ·X of GemmKernel (compute/kernels/gemmSimd.ts) for a float32 matrix M and float64
 * panels, asynchronous. The panel is rounded to float32 on upload and the products are summed in
 * float32 (WGSL has no float64), so they differ from the CPU's float64 sums within
 * {@link gemmBound}; the factorisation measures its error on the CPU in float64 either way.
 *
 * GPU memory stays bounded: M goes up in row blocks of at most one binding window (and
 * `blockBytes`); when the whole matrix fits `residentBytes` its blocks stay on the GPU for every
 * product of the factorisation (uploaded once per matrix), otherwise one block buffer is refilled
 * for each block of each product. Beside M: the panel, the output and its readback (each
 * max(m, n) × l float32). One GpuGemm serves one factorisation at a time; release() frees it.
 */
import { ChatVecError } from '../../errors';
import type { GpuGemmKernel } from '../types';
import type { GpuDevice } from './device';
import { GEMM_PARAMS_BYTES, GEMM_TILE, type GemmOp, gemmShader } from './gemmWgsl';
import { dispatch } from './dispatch';

/** Unit roundoff of float32. */
const U32 = 2 ** -24;
/** Stride of the per-dispatch uniform blocks (minUniformBufferOffsetAlignment is at most 256). */
const PARAMS_STRIDE = 256;

/**
 * The bound on |GPU − exact| of one output element of a product summed over K terms:
 * γ_{K+1}·Σ|M|·|X| (a sequential float32 sum of K products, with the panel rounded to float32
 * once: (K+1)·u/(1 − (K+1)·u), u = 2⁻²⁴), plus K·2⁻¹²⁵ for subnormals a GPU may flush to zero.
 * @returns [relative factor of Σ|M|·|X|, absolute term]
 */
export function gemmBound(K: number): readonly [number, number] {
  const k1 = (K + 1) * U32;
  return [k1 / (1 - k1), K * 2 ** -125];
}

export interface GpuGemmOptions {
  /** The largest M kept on the GPU across a factorisation's products; default 256 MiB. */
  readonly residentBytes?: number;
  /** The largest row block of M per dispatch; default 64 MiB (and at most the binding window). */
  readonly blockBytes?: number;
}

/** What the GEMM needs of its backend. */
export interface GemmHost {
  readonly gpu: GpuDevice;
  /** Binding window (bytes) and workgroups per dispatch dimension. */
  readonly windowBytes: number;
  readonly maxDim: number;
  pipeline(key: string, source: () => string): Promise<GPUComputePipeline>;
  /** Throws the backend's failure, if any. */
  check(): void;
  /** Turns an error into the backend's fatal failure (the caller falls back to the CPU). */
  fatal(e: unknown): ChatVecError;
}

/** See the file comment. */
export class GpuGemm implements GpuGemmKernel {
  readonly impl = 'wgsl' as const;
  private blocks: GPUBuffer[] = [];
  /** The matrix whose blocks are resident, and its shape. */
  private resident: { M: Float32Array; m: number; n: number } | null = null;
  private panel: { x: GPUBuffer; o: GPUBuffer; read: GPUBuffer; params: GPUBuffer; bytes: number; paramBlocks: number } | null = null;
  private released = false;

  constructor(
    private readonly host: GemmHost,
    private readonly opts: GpuGemmOptions = {},
  ) {}

  mulPanel(M: Float32Array, m: number, n: number, X: Float64Array, l: number, out: Float64Array): Promise<void> {
    return this.product('panel', M, m, n, X, l, out);
  }

  mulPanelT(M: Float32Array, m: number, n: number, X: Float64Array, l: number, out: Float64Array): Promise<void> {
    return this.product('panelT', M, m, n, X, l, out);
  }

  /** Frees the GPU buffers. Idempotent; the kernel is unusable afterwards. */
  release(): void {
    this.released = true;
    this.freeBlocks();
    if (this.panel) for (const b of [this.panel.x, this.panel.o, this.panel.read, this.panel.params]) b.destroy();
    this.panel = null;
  }

  private freeBlocks(): void {
    for (const b of this.blocks) b.destroy();
    this.blocks = [];
    this.resident = null;
  }

  /** Rows of M per block: one binding window and `blockBytes` at most, and within the dispatch limit. */
  private blockRows(m: number, n: number): number {
    const bytes = Math.min(this.host.windowBytes, this.opts.blockBytes ?? 64 * 1024 * 1024);
    const rows = Math.min(m, Math.floor(bytes / (4 * n)), GEMM_TILE * this.host.maxDim);
    if (rows < 1) throw new ChatVecError('Internal', `GPU GEMM: a row of ${n} float32 exceeds the binding window of ${bytes} bytes`);
    return rows;
  }

  private async product(op: GemmOp, M: Float32Array, m: number, n: number, X: Float64Array, l: number, out: Float64Array): Promise<void> {
    if (this.released) throw new ChatVecError('Internal', 'the GPU GEMM was released');
    const [xRows, oRows] = op === 'panel' ? [n, m] : [m, n];
    if (M.length < m * n || X.length < xRows * l || out.length < oRows * l) throw new ChatVecError('InvalidArgument', `GPU GEMM: arrays shorter than a ${m}×${n} matrix and ${l} panel columns need`);
    this.host.check();
    try {
      await this.run(op, M, m, n, X, l, out, oRows);
    } catch (e) {
      throw this.host.fatal(e);
    }
  }

  private async run(op: GemmOp, M: Float32Array, m: number, n: number, X: Float64Array, l: number, out: Float64Array, oRows: number): Promise<void> {
    const { device: dev, flags } = this.host.gpu;
    const { usage } = flags;
    const rows = this.blockRows(m, n);
    const nBlocks = Math.ceil(m / rows);
    const panelBytes = Math.ceil((Math.max(m, n) * l * 4) / 256) * 256;
    if (panelBytes > this.host.windowBytes) throw new ChatVecError('Internal', `GPU GEMM: a panel of ${Math.max(m, n)}×${l} float32 exceeds the binding window`);
    if (Math.ceil(l / GEMM_TILE) > this.host.maxDim || Math.ceil(oRows / GEMM_TILE) > this.host.maxDim) throw new ChatVecError('Internal', `GPU GEMM: ${oRows}×${l} outputs exceed the dispatch limit`);
    if (!this.panel || this.panel.bytes < panelBytes || this.panel.paramBlocks < nBlocks) {
      if (this.panel) for (const b of [this.panel.x, this.panel.o, this.panel.read, this.panel.params]) b.destroy();
      this.panel = {
        x: dev.createBuffer({ label: 'gemm panel', size: panelBytes, usage: usage.STORAGE | usage.COPY_DST }),
        o: dev.createBuffer({ label: 'gemm out', size: panelBytes, usage: usage.STORAGE | usage.COPY_SRC }),
        read: dev.createBuffer({ label: 'gemm readback', size: panelBytes, usage: usage.MAP_READ | usage.COPY_DST }),
        params: dev.createBuffer({ label: 'gemm params', size: nBlocks * PARAMS_STRIDE, usage: usage.UNIFORM | usage.COPY_DST }),
        bytes: panelBytes,
        paramBlocks: nBlocks,
      };
    }
    const pb = this.panel;
    const pipeline = await this.host.pipeline(`gemm-${op}`, () => gemmShader(op));
    const blockBytes = rows * n * 4;
    const keep = m * n * 4 <= (this.opts.residentBytes ?? 256 * 1024 * 1024);
    const r = this.resident;
    const uploaded = keep && r !== null && r.M === M && r.m === m && r.n === n;
    // Streaming reuses its one block buffer from product to product.
    const refill = !keep && this.resident === null && this.blocks.length === 1 && this.blocks[0]!.size >= blockBytes;
    if (!uploaded && !refill) {
      this.freeBlocks();
      const count = keep ? nBlocks : 1;
      for (let b = 0; b < count; b++) this.blocks.push(dev.createBuffer({ label: `gemm M ${b}`, size: blockBytes, usage: usage.STORAGE | usage.COPY_DST }));
      if (keep) this.resident = { M, m, n };
    }
    const xRows = op === 'panel' ? n : m;
    const params = new ArrayBuffer(nBlocks * PARAMS_STRIDE);
    // Each block's errors in their own scopes, pushed and popped with no await between (calls of
    // other factorisations may interleave at the awaits).
    const scopes: Promise<GPUError | null>[] = [];
    for (let b = 0; b < nBlocks; b++) {
      const r0 = b * rows;
      const k = Math.min(rows, m - r0);
      const buf = this.blocks[keep ? b : 0]!;
      dev.pushErrorScope('out-of-memory');
      dev.pushErrorScope('validation');
      try {
        if (b === 0) dev.queue.writeBuffer(pb.x, 0, Float32Array.from(X.subarray(0, xRows * l)));
        if (!uploaded) dev.queue.writeBuffer(buf, 0, M as Float32Array<ArrayBuffer>, r0 * n, k * n);
        new Uint32Array(params, b * PARAMS_STRIDE, 8).set([k, n, l, r0, b > 0 ? 1 : 0, 0, 0, 0]);
        dev.queue.writeBuffer(pb.params, b * PARAMS_STRIDE, params, b * PARAMS_STRIDE, GEMM_PARAMS_BYTES);
        const enc = dev.createCommandEncoder();
        const pass = enc.beginComputePass();
        pass.setPipeline(pipeline);
        const bindings = [{ buffer: pb.params, offset: b * PARAMS_STRIDE, size: GEMM_PARAMS_BYTES }, { buffer: buf, offset: 0, size: k * n * 4 }, pb.x, pb.o];
        dispatch(dev, pass, pipeline, bindings, Math.ceil(l / GEMM_TILE), Math.ceil((op === 'panel' ? k : n) / GEMM_TILE));
        pass.end();
        if (b === nBlocks - 1) enc.copyBufferToBuffer(pb.o, 0, pb.read, 0, panelBytes);
        dev.queue.submit([enc.finish()]);
      } finally {
        scopes.push(dev.popErrorScope(), dev.popErrorScope());
      }
      // A refilled block buffer: let the GPU take this block before the next upload is staged.
      if (!keep && b < nBlocks - 1) await dev.queue.onSubmittedWorkDone();
    }
    const err = (await Promise.all(scopes)).find((e) => e !== null);
    if (err) throw new ChatVecError('Internal', `GPU rejected the GEMM: ${err.message}`);
    await pb.read.mapAsync(flags.map.READ, 0, panelBytes);
    try {
      const got = new Float32Array(pb.read.getMappedRange(0, panelBytes), 0, oRows * l);
      for (let i = 0; i < oRows * l; i++) out[i] = got[i]!;
    } finally {
      pb.read.unmap();
    }
  }
}
