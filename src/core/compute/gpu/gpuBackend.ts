/**
 * The GPU backend (WebGPU through Dawn): runs the WGSL implementations of the kernels (wgsl.ts).
 *
 * Streaming: inputs of any length go through a ring of *slots*. A slot owns an upload staging
 * buffer (MAP_WRITE, kept mapped while the slot is free), a storage buffer the kernel reads, a
 * storage buffer it writes, a readback staging buffer (MAP_READ) and a uniform buffer. While one
 * slot's results are being mapped back, the next slot is filled and submitted, so upload, compute
 * and readback of different chunks overlap. Calls running at once share the ring.
 *
 * Limits: a slot holds one or more *blocks*; each block's inputs (all sections) fit one binding
 * window of at most maxStorageBufferBindingSize bytes, and each block is one 2-D dispatch whose
 * dimensions stay within maxComputeWorkgroupsPerDimension.
 */
import { ChatVecError, throwIfCancelled } from '../../errors';
import { addSums, checkCombine, checkDiff, emptySums, isKernelDtype } from '../elements';
import { diffJs } from '../kernels/diffJs';
import type { BackendInfo, CombineArgs, ComputeBackend, DiffArgs, DiffSums, ElementArray, GpuGemmKernel, KernelArray, KernelDtype, KernelOptions } from '../types';
import { openGpuDevice, type GpuDevice, type GpuDeviceOptions } from './device';
import { dispatch } from './dispatch';
import { type GemmHost, GpuGemm, type GpuGemmOptions } from './gemmGpu';
import { lowRankProductOnGpu, probeTwoProd } from './lowRankProductGpu';
import type { TwoProdMethod } from './lowRankProductWgsl';
import { type LowRankArgs, checkLowRank } from '../kernels/lowRankJs';
import {
  COMBINE_ELEMS_PER_GROUP,
  DIFF_ELEMS_PER_GROUP,
  DIFF_WORDS_PER_GROUP,
  GPU_MAX_TERMS,
  PARAMS_BYTES,
  type CombineSig,
  combineKey,
  combineSections,
  combineShader,
  diffKey,
  diffShader,
} from './wgsl';

/** Options of the GPU backend; the defaults suit real GPUs and the software adapter alike. */
export interface GpuBackendOptions extends GpuDeviceOptions {
  /** Bytes of each buffer of a slot (upload, input, output, readback); default 16 MiB, at most 256 MiB. */
  readonly slotBytes?: number;
  /** Slots in the ring, i.e. chunks in flight; default 3, 1..8. */
  readonly slots?: number;
  /** Caps the binding window below the device's maxStorageBufferBindingSize (tests force several windows). */
  readonly maxBindingBytes?: number;
  /** Caps workgroups per dispatch dimension below the device's limit (tests force 2-D dispatch). */
  readonly maxWorkgroupsPerDim?: number;
  /** GPU memory of the GEMM kernel (gemmGpu.ts). */
  readonly gemm?: GpuGemmOptions;
}

/** Every block holds a multiple of this many elements: with 2-byte elements or more, every offset stays 256-byte aligned. */
const UNIT = 128;
/** The smallest slot: one UNIT block of the widest job (cp and 8 F32 pairs: 17 × 4 bytes). */
const MIN_SLOT_BYTES = UNIT * 17 * 4;
/** The largest slot: a ring holds 4 buffers of this per slot, in GPU and mapped host memory. */
const MAX_SLOT_BYTES = 256 * 1024 * 1024;
/** Uniform bytes reserved per block (minUniformBufferOffsetAlignment is at most 256). */
const PARAMS_STRIDE = 256;
const MAX_BLOCKS_PER_SLOT = 64;

const align = (x: number, a: number): number => Math.ceil(x / a) * a;

interface Slot {
  readonly upload: GPUBuffer;
  readonly input: GPUBuffer;
  readonly output: GPUBuffer;
  readonly readback: GPUBuffer;
  readonly params: GPUBuffer;
}

/** A streamed kernel: the sections it reads and how it writes and reads back a block. */
interface StreamJob {
  readonly count: number;
  readonly inputs: readonly KernelArray[];
  readonly pipeline: GPUComputePipeline;
  readonly elemsPerGroup: number;
  /** Bytes of output the kernel writes for a block of n elements. */
  outBytes(n: number): number;
  /** Writes the block's parameters (PARAMS_BYTES) for n elements. */
  params(view: DataView, n: number, gridX: number, groups: number, sectionWords: readonly number[]): void;
  /** Takes a block's results: elements [start, start+n) of the job, at `byteOffset` of `mapped`. */
  consume(start: number, n: number, mapped: ArrayBuffer, byteOffset: number): void;
}

/** The elements of a, from start, as a typed array over the same buffer. */
function sub(a: KernelArray, start: number, n: number): Uint16Array | Float32Array {
  return a.data.subarray(start, start + n);
}

const kernelBytes = (d: KernelDtype): number => (d === 'F32' ? 4 : 2);

/** `a` as a KernelArray. @throws ChatVecError('InvalidArgument') for F64, which the GPU kernels do not take. */
function kernelArray(what: string, a: ElementArray): KernelArray {
  if (!isKernelDtype(a.dtype)) throw new ChatVecError('InvalidArgument', `${what}: the GPU kernels take BF16, F16 or F32, not ${a.dtype}`);
  return a as KernelArray;
}

class Ring {
  private readonly free: Slot[];
  private readonly waiters: { resolve: (s: Slot) => void; reject: (e: unknown) => void }[] = [];
  private error: unknown;

  constructor(readonly slots: readonly Slot[]) {
    this.free = [...slots];
  }

  acquire(): Promise<Slot> {
    if (this.error !== undefined) return Promise.reject(this.error);
    const s = this.free.shift();
    if (s) return Promise.resolve(s);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  release(s: Slot): void {
    const w = this.waiters.shift();
    if (w) w.resolve(s);
    else this.free.push(s);
  }

  /** A slot could not be recovered: nobody gets one again. */
  fail(e: unknown): void {
    if (this.error === undefined) this.error = e;
    for (const w of this.waiters.splice(0)) w.reject(e);
  }
}

/** See the file comment. Create with createGpuBackend(). */
export class GpuBackend implements ComputeBackend {
  readonly kind = 'gpu' as const;
  readonly name: string;
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private readonly ring: Ring;
  private readonly slotBytes: number;
  private readonly windowBytes: number;
  private readonly maxDim: number;
  private failure: ChatVecError | undefined;
  private twoProdMethod: Promise<TwoProdMethod> | undefined;
  private disposed = false;
  private active = 0;
  private idle: (() => void)[] = [];
  private inFlight = 0;
  /** Running totals, for logs and tests: slot submissions, 2-D dispatches (one per block), most slots in flight at once. */
  readonly counters = { submits: 0, dispatches: 0, maxInFlight: 0 };

  private constructor(
    private readonly gpu: GpuDevice,
    private readonly opts: GpuBackendOptions,
  ) {
    const a = gpu.adapter;
    this.name = `gpu: ${a.name} (${a.backend}${a.software ? ', software' : ''})`;
    const lim = gpu.device.limits;
    const want = Math.min(opts.slotBytes ?? 16 * 1024 * 1024, MAX_SLOT_BYTES, lim.maxBufferSize);
    this.slotBytes = Math.max(MIN_SLOT_BYTES, Math.floor(want / 256) * 256);
    const window = Math.min(lim.maxStorageBufferBindingSize, opts.maxBindingBytes ?? Infinity);
    this.windowBytes = Math.floor(window / 256) * 256;
    this.maxDim = Math.min(lim.maxComputeWorkgroupsPerDimension, opts.maxWorkgroupsPerDim ?? Infinity);
    const { usage } = gpu.flags;
    const dev = gpu.device;
    const slots: Slot[] = [];
    for (let i = 0; i < Math.min(8, Math.max(1, opts.slots ?? 3)); i++) {
      slots.push({
        upload: dev.createBuffer({ label: `upload ${i}`, size: this.slotBytes, usage: usage.MAP_WRITE | usage.COPY_SRC, mappedAtCreation: true }),
        input: dev.createBuffer({ label: `input ${i}`, size: this.slotBytes, usage: usage.STORAGE | usage.COPY_DST }),
        output: dev.createBuffer({ label: `output ${i}`, size: this.slotBytes, usage: usage.STORAGE | usage.COPY_SRC }),
        readback: dev.createBuffer({ label: `readback ${i}`, size: this.slotBytes, usage: usage.MAP_READ | usage.COPY_DST }),
        params: dev.createBuffer({ label: `params ${i}`, size: PARAMS_STRIDE * MAX_BLOCKS_PER_SLOT, usage: usage.UNIFORM | usage.COPY_DST }),
      });
    }
    this.ring = new Ring(slots);
  }

  /** Opens a device and allocates the ring. @throws ChatVecError('Unsupported') when no adapter exists. */
  static async create(opts: GpuBackendOptions = {}): Promise<GpuBackend> {
    const gpu = await openGpuDevice(opts);
    try {
      gpu.device.pushErrorScope('out-of-memory');
      gpu.device.pushErrorScope('validation');
      const backend = new GpuBackend(gpu, opts);
      const errors = await Promise.all([gpu.device.popErrorScope(), gpu.device.popErrorScope()]);
      const err = errors.find((e) => e !== null);
      if (err) throw new ChatVecError('Unsupported', `GPU buffers for the ring cannot be allocated: ${err.message}`);
      return backend;
    } catch (e) {
      gpu.dispose();
      throw e;
    }
  }

  describe(): BackendInfo {
    const a = this.gpu.adapter;
    return { kind: 'gpu', name: this.name, adapter: { name: a.name, backend: a.backend, software: a.software, description: a.description } };
  }

  /** The binding window and dispatch limits in force (for logs and tests). */
  get limits(): { readonly windowBytes: number; readonly maxWorkgroupsPerDim: number; readonly slotBytes: number; readonly slots: number } {
    return { windowBytes: this.windowBytes, maxWorkgroupsPerDim: this.maxDim, slotBytes: this.slotBytes, slots: this.ring.slots.length };
  }

  async combine(args: CombineArgs, opts?: KernelOptions): Promise<void> {
    const n = checkCombine(args);
    if (args.terms.length < 1 || args.terms.length > GPU_MAX_TERMS) {
      throw new ChatVecError('InvalidArgument', `combine: ${args.terms.length} terms (1..${GPU_MAX_TERMS} on the GPU)`);
    }
    const out = kernelArray('combine out', args.out);
    const target = args.target ? kernelArray('combine target', args.target) : null;
    const terms = args.terms.map((t) => ({ a: kernelArray('combine term', t.a), b: t.b ? kernelArray('combine term', t.b) : null }));
    if (n === 0) return;
    const sig: CombineSig = { target: target?.dtype ?? null, out: out.dtype, terms: terms.map((t) => ({ a: t.a.dtype, b: t.b?.dtype ?? null })) };
    const inputs: KernelArray[] = target ? [target] : [];
    for (const t of terms) inputs.push(t.a, ...(t.b ? [t.b] : []));
    const ratios = new Float32Array(8);
    args.terms.forEach((t, i) => (ratios[i] = t.ratio));
    const outSize = kernelBytes(out.dtype);
    const pipeline = await this.pipeline(combineKey(sig), () => combineShader(sig));
    if (combineSections(sig).length !== inputs.length) throw new ChatVecError('Internal', 'combine: section count mismatch');
    await this.run(
      {
        count: n,
        inputs,
        pipeline,
        elemsPerGroup: COMBINE_ELEMS_PER_GROUP,
        outBytes: (k) => align(k * outSize, 4),
        params: (v, k, gridX, _groups, words) => {
          v.setUint32(0, k, true);
          v.setUint32(4, gridX, true);
          v.setUint32(8, 0, true); // P.zero: see combineShader
          for (let i = 0; i < 8; i++) v.setFloat32(16 + 4 * i, ratios[i]!, true);
          words.forEach((w, i) => v.setUint32(48 + 4 * i, w, true));
        },
        consume: (start, k, mapped, byteOffset) => {
          if (out.dtype === 'F32') out.data.set(new Float32Array(mapped, byteOffset, k), start);
          else out.data.set(new Uint16Array(mapped, byteOffset, k), start);
        },
      },
      opts,
    );
  }

  /**
   * The diff sums on the GPU: float32 partials per workgroup of DIFF_ELEMS_PER_GROUP elements,
   * added here in float64, Σab taken from Σa², Σb² and Σd²; a workgroup with a finite input of
   * 2^56 or more (whose float32 partials could overflow) is summed again here by the JavaScript
   * reference. Counts are exact; the sums and the maximum lie within DIFF_RELATIVE_BOUND
   * (../diffBound.ts) of the float64 reference.
   */
  async diff(args: DiffArgs, opts?: KernelOptions): Promise<DiffSums> {
    const n = checkDiff(args);
    const a = args.a ? kernelArray('diff a', args.a) : null;
    const b = kernelArray('diff b', args.b);
    const total = emptySums();
    if (n === 0) return total;
    /** Each block's sums by its first element: added in element order, so results repeat to the last bit. */
    const parts = new Map<number, DiffSums>();
    const sig = { mode: args.mode, a: a?.dtype ?? null, b: b.dtype } as const;
    const pipeline = await this.pipeline(diffKey(sig), () => diffShader(sig));
    const groupsOf = (k: number): number => Math.ceil(k / DIFF_ELEMS_PER_GROUP);
    const W = DIFF_WORDS_PER_GROUP;
    await this.run(
      {
        count: n,
        inputs: a ? [a, b] : [b],
        pipeline,
        elemsPerGroup: DIFF_ELEMS_PER_GROUP,
        outBytes: (k) => groupsOf(k) * W * 4,
        params: (v, k, gridX, groups, words) => {
          v.setUint32(0, k, true);
          v.setUint32(4, gridX, true);
          v.setUint32(8, groups, true);
          v.setUint32(16, a ? words[0]! : 0, true);
          v.setUint32(20, words[words.length - 1]!, true);
        },
        consume: (start, k, mapped, byteOffset) => {
          const groups = groupsOf(k);
          const st = emptySums();
          parts.set(start, st);
          const f = new Float32Array(mapped, byteOffset, groups * W);
          const u = new Uint32Array(mapped, byteOffset, groups * W);
          for (let g = 0; g < groups; g++) {
            const o = g * W;
            if (u[o + 7]! > 0) {
              // Inputs of 2^56 or more: float32 partials could overflow; float64 on the host cannot.
              const first = start + g * DIFF_ELEMS_PER_GROUP;
              const count = Math.min(DIFF_ELEMS_PER_GROUP, start + k - first);
              const part = (x: KernelArray): ElementArray => ({ dtype: x.dtype, data: x.data.subarray(first, first + count) }) as ElementArray;
              addSums(st, diffJs({ mode: args.mode, a: a ? part(a) : null, b: part(b) }));
              continue;
            }
            st.sumD2 += f[o]!;
            st.sumA2 += f[o + 1]!;
            st.sumB2 += f[o + 2]!;
            // Σab from the three sums, in float64, as the SIMD kernel takes it (../diffBound.ts).
            st.sumAB += (f[o + 1]! + f[o + 2]! - f[o]!) / 2;
            st.maxAbs = Math.max(st.maxAbs, f[o + 3]!);
            st.sumAbs += f[o + 4]!;
            st.changed += u[o + 5]!;
            st.nonFinite += u[o + 6]!;
          }
          st.elements = k;
        },
      },
      opts,
    );
    for (const start of [...parts.keys()].sort((x, y) => x - y)) addSums(total, parts.get(start)!);
    return total;
  }

  /** The GEMM kernel of the randomized SVD (gemmGpu.ts), sharing this backend's device and pipelines. */
  gemm(): GpuGemmKernel {
    return new GpuGemm(this.host(), this.opts.gemm);
  }

  /**
   * One chunk of a low-rank product τ = B·A or (B·A)ᵀ into `out` (float32), summed in double-float
   * (lowRankProductGpu.ts; compute/lowRankBound.ts states how far it may lie from the CPU's bits).
   * @throws ChatVecError Internal for a range outside τ, short factors, or a failing device
   */
  async lowRank(args: LowRankArgs, out: Float32Array, opts?: KernelOptions): Promise<void> {
    checkLowRank(args, out);
    throwIfCancelled(opts?.signal);
    const method = await this.twoProd();
    try {
      await lowRankProductOnGpu(this.host(), method, args, out);
    } catch (e) {
      throw this.fatal(e);
    }
  }

  /**
   * The TwoProd the low-rank kernel uses here: 'fma' when the device's fma is fused (its error
   * term exact on every probe), else Veltkamp/Dekker 'split'; probed once.
   * @throws ChatVecError Unsupported when neither is exact (the self-test then keeps the CPU)
   */
  twoProd(): Promise<TwoProdMethod> {
    this.twoProdMethod ??= (async () => {
      const host = this.host();
      for (const m of ['fma', 'split'] as const) if (await probeTwoProd(host, m)) return m;
      throw new ChatVecError('Unsupported', 'the GPU rounds float32 products in a way that neither fma nor splitting makes exact');
    })();
    return this.twoProdMethod;
  }

  private host(): GemmHost {
    return {
      gpu: this.gpu,
      windowBytes: this.windowBytes,
      maxDim: this.maxDim,
      pipeline: (key, source) => this.pipeline(key, source),
      check: () => this.check(),
      fatal: (e) => this.fatal(e),
    };
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.ring.fail(new ChatVecError('Internal', 'the GPU backend was disposed'));
    // Let chunks in flight finish their readback before the device goes.
    if (this.active > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    this.gpu.dispose();
  }

  private check(): void {
    if (this.disposed) throw new ChatVecError('Internal', 'the GPU backend was disposed');
    if (this.failure) throw this.failure;
    const f = this.gpu.failure;
    if (f) throw (this.failure = new ChatVecError('Internal', f));
  }

  private pipeline(key: string, source: () => string): Promise<GPUComputePipeline> {
    let p = this.pipelines.get(key);
    if (!p) {
      p = this.compile(key, source());
      this.pipelines.set(key, p);
      p.catch(() => this.pipelines.delete(key));
    }
    return p;
  }

  private async compile(key: string, code: string): Promise<GPUComputePipeline> {
    this.check();
    const dev = this.gpu.device;
    dev.pushErrorScope('validation');
    const module = dev.createShaderModule({ label: key, code });
    const pipeline = dev.createComputePipeline({ label: key, layout: 'auto', compute: { module, entryPoint: 'main' } });
    const err = await dev.popErrorScope();
    if (err) {
      const info = await module.getCompilationInfo();
      const msgs = info.messages.map((m) => `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`).join('\n');
      throw new ChatVecError('Internal', `GPU kernel ${key} failed to build: ${err.message}`, msgs);
    }
    return pipeline;
  }

  /** Streams a job through the ring; resolves when every chunk has been read back. */
  private async run(job: StreamJob, opts?: KernelOptions): Promise<void> {
    this.check();
    const sizes = job.inputs.map((a) => kernelBytes(a.dtype));
    const inPerElem = sizes.reduce((s, x) => s + x, 0);
    const room = Math.min(this.windowBytes, this.slotBytes);
    // Largest block that fits one binding window (inputs and output) and one 2-D dispatch.
    let blockElems = Math.floor(Math.min(room / inPerElem, this.maxDim * this.maxDim * job.elemsPerGroup) / UNIT) * UNIT;
    while (blockElems > 0 && align(job.outBytes(blockElems), 256) > room) blockElems -= UNIT;
    if (blockElems <= 0) {
      throw new ChatVecError('Internal', `GPU binding window of ${this.windowBytes} bytes is too small for ${job.inputs.length} inputs`);
    }
    const blockIn = blockElems * inPerElem;
    const outStride = align(job.outBytes(blockElems), 256);
    const blocksPerSlot = Math.max(1, Math.min(Math.floor(this.slotBytes / blockIn), Math.floor(this.slotBytes / outStride), MAX_BLOCKS_PER_SLOT));
    const perSlot = blocksPerSlot * blockElems;
    const sectionBytes: number[] = [];
    let acc = 0;
    for (const s of sizes) {
      sectionBytes.push(acc);
      acc += blockElems * s;
    }
    const sectionWords = sectionBytes.map((b) => b / 4);

    const pending: Promise<void>[] = [];
    let firstError: unknown;
    this.active++;
    try {
      for (let start = 0; start < job.count; start += perSlot) {
        throwIfCancelled(opts?.signal);
        this.check();
        const slot = await this.ring.acquire();
        const n = Math.min(perSlot, job.count - start);
        const blocks = Math.ceil(n / blockElems);
        let submitted = false;
        try {
          this.fill(slot, job, start, n, blockElems, blockIn, sectionBytes);
          const params = new ArrayBuffer(blocks * PARAMS_STRIDE);
          const dev = this.gpu.device;
          // Everything from encoding to submit is synchronous, so this scope holds exactly this
          // chunk's errors (bind groups, dispatch sizes, the submit) even with calls interleaved.
          dev.pushErrorScope('validation');
          let errors: Promise<GPUError | null>;
          try {
            const enc = dev.createCommandEncoder();
            enc.copyBufferToBuffer(slot.upload, 0, slot.input, 0, blocks * blockIn);
            const pass = enc.beginComputePass();
            pass.setPipeline(job.pipeline);
            for (let b = 0; b < blocks; b++) {
              const k = Math.min(blockElems, n - b * blockElems);
              const groups = Math.ceil(k / job.elemsPerGroup);
              const gridX = Math.min(groups, this.maxDim);
              const gridY = Math.ceil(groups / gridX);
              job.params(new DataView(params, b * PARAMS_STRIDE, PARAMS_BYTES), k, gridX, groups, sectionWords);
              const bindings = [
                { buffer: slot.params, offset: b * PARAMS_STRIDE, size: PARAMS_BYTES },
                { buffer: slot.input, offset: b * blockIn, size: blockIn },
                { buffer: slot.output, offset: b * outStride, size: outStride },
              ];
              dispatch(dev, pass, job.pipeline, bindings, gridX, gridY);
              this.counters.dispatches++;
            }
            pass.end();
            enc.copyBufferToBuffer(slot.output, 0, slot.readback, 0, blocks * outStride);
            dev.queue.writeBuffer(slot.params, 0, params);
            dev.queue.submit([enc.finish()]);
          } finally {
            errors = dev.popErrorScope();
          }
          submitted = true;
          this.counters.submits++;
          this.counters.maxInFlight = Math.max(this.counters.maxInFlight, ++this.inFlight);
          pending.push(
            this.finish(slot, errors, blocks * outStride, (mapped) => {
              for (let b = 0; b < blocks; b++) {
                const k = Math.min(blockElems, n - b * blockElems);
                job.consume(start + b * blockElems, k, mapped, b * outStride);
              }
            }).catch((e) => {
              firstError ??= e;
            }),
          );
        } finally {
          if (!submitted) await this.recycle(slot);
        }
        if (firstError !== undefined) break;
      }
    } catch (e) {
      firstError ??= e;
    } finally {
      await Promise.all(pending);
      if (--this.active === 0) for (const r of this.idle.splice(0)) r();
    }
    if (firstError !== undefined) throw firstError instanceof ChatVecError ? firstError : this.fatal(firstError);
  }

  /** Copies the slot's share of every input into the mapped upload buffer, block by block. */
  private fill(slot: Slot, job: StreamJob, start: number, n: number, blockElems: number, blockIn: number, sectionBytes: readonly number[]): void {
    const mapped = slot.upload.getMappedRange();
    try {
      for (let b = 0, s = start; s < start + n; b++, s += blockElems) {
        const k = Math.min(blockElems, start + n - s);
        job.inputs.forEach((a, j) => {
          const at = b * blockIn + sectionBytes[j]!;
          if (a.dtype === 'F32') new Float32Array(mapped, at, k).set(sub(a, s, k));
          else new Uint16Array(mapped, at, k).set(sub(a, s, k));
        });
      }
    } finally {
      slot.upload.unmap();
    }
  }

  /** Waits for the slot's results, hands them over, and returns the slot to the ring mapped for writing. */
  private async finish(slot: Slot, errors: Promise<GPUError | null>, bytes: number, take: (mapped: ArrayBuffer) => void): Promise<void> {
    const { map } = this.gpu.flags;
    try {
      const [err] = await Promise.all([errors, slot.readback.mapAsync(map.READ, 0, bytes), slot.upload.mapAsync(map.WRITE)]).finally(
        () => this.inFlight--,
      );
      try {
        if (err) throw new ChatVecError('Internal', `GPU rejected a kernel: ${err.message}`);
        take(slot.readback.getMappedRange(0, bytes));
      } finally {
        slot.readback.unmap();
      }
    } catch (e) {
      // A slot in an unknown state is not reused: the whole backend stops and callers fall back.
      throw this.fatal(e);
    }
    this.ring.release(slot);
  }

  /** Returns a slot that was acquired but not submitted, remapping its upload buffer if needed. */
  private async recycle(slot: Slot): Promise<void> {
    try {
      if (slot.upload.mapState !== 'mapped') await slot.upload.mapAsync(this.gpu.flags.map.WRITE);
      this.ring.release(slot);
    } catch (e) {
      this.fatal(e);
    }
  }

  private fatal(e: unknown): ChatVecError {
    const err = e instanceof ChatVecError ? e : new ChatVecError('Internal', `GPU failure: ${e instanceof Error ? e.message : String(e)}`);
    if (err.code !== 'Cancelled') {
      this.failure ??= err;
      this.ring.fail(this.failure);
    }
    return err;
  }
}

/** Opens the GPU backend. @throws ChatVecError('Unsupported') when no adapter exists. */
export function createGpuBackend(opts?: GpuBackendOptions): Promise<GpuBackend> {
  return GpuBackend.create(opts);
}

