/**
 * The WebGPU device: loads the `webgpu` package (Dawn) only when a GPU is asked for, finds an
 * adapter, and owns the device for its lifetime.
 *
 * Two Dawn rules shape this file: the object returned by `create()` must stay referenced while
 * any device made from it lives (dropping it crashes the process), and it must be released at the
 * end or Node never exits (Dawn keeps polling in the background while it is referenced).
 */
import { ChatVecError } from '../../errors';
import { getEnv, getPlatform, setEnvDefault } from '../../io/env';
import { importWebGpuPackage } from '../../io/webgpuPackage';

/** The parts of the `webgpu` package this module uses (its `index.js` exports). */
export interface WebGpuModule {
  create(options: string[]): GPU;
  globals: object;
}

/** Options for opening a device. */
export interface GpuDeviceOptions {
  /**
   * Which ways to find an adapter, tried in order: 'default' (the platform's best backend: Vulkan,
   * Metal, D3D12) and 'opengles' (compatibility mode on OpenGL ES, which Mesa's software
   * rasterizer llvmpipe provides with EGL_PLATFORM=surfaceless). Default: both, in that order.
   */
  readonly paths?: readonly ('default' | 'opengles')[];
  /** Extra options for Dawn's create(), e.g. 'enable-dawn-features=…'. */
  readonly dawnOptions?: readonly string[];
  /** Loads the webgpu module; tests replace it to simulate a machine without the package. */
  readonly load?: () => Promise<WebGpuModule>;
}

/** What the adapter is, for logs and the output's metadata. */
export interface GpuAdapterReport {
  /** The device name Dawn reports, e.g. "NVIDIA H200" or "llvmpipe (LLVM 15.0.6, 256 bits)". */
  readonly name: string;
  /** vulkan, metal, d3d12, opengles…; for the default path inferred from the platform. */
  readonly backend: string;
  /** A CPU rasterizer (llvmpipe, lavapipe, SwiftShader, WARP) or a fallback adapter. */
  readonly software: boolean;
  readonly vendor: string;
  readonly description: string;
}

const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|swrast|microsoft basic render|\bwarp\b/i;

async function loadWebGpu(): Promise<WebGpuModule> {
  // A real dynamic import: esbuild keeps 'webgpu' external, so the package (and its native
  // binary) is only read from disk when a GPU is requested.
  const mod = (await importWebGpuPackage()) as WebGpuModule & { default?: WebGpuModule };
  return typeof mod.create === 'function' ? mod : (mod.default as WebGpuModule);
}

function inferBackend(description: string): string {
  if (/OpenGL ES/i.test(description)) return 'opengles';
  if (/OpenGL/i.test(description)) return 'opengl';
  const p = getPlatform();
  return p === 'darwin' ? 'metal' : p === 'win32' ? 'd3d12' : 'vulkan';
}

/** An open WebGPU device. dispose() destroys it and lets the process exit. */
export class GpuDevice {
  /** The object from create(): referenced here for as long as `device` lives (see top). */
  private gpu: GPU | undefined;
  private lost: string | undefined;
  private disposed = false;

  constructor(
    gpu: GPU,
    readonly device: GPUDevice,
    readonly adapter: GpuAdapterReport,
    /** GPUBufferUsage and GPUMapMode flags (not globals in Node). */
    readonly flags: { readonly usage: GPUFlagsConstantsLike; readonly map: GPUMapModeLike },
  ) {
    this.gpu = gpu;
    device.lost.then(
      (info) => {
        if (!this.disposed) this.lost = `GPU device lost (${info.reason}): ${info.message}`;
      },
      () => undefined,
    );
  }

  /** Why the device can no longer be used, or undefined while it works. */
  get failure(): string | undefined {
    return this.disposed ? 'the GPU backend was disposed' : this.lost;
  }

  /** Destroys the device (unmapping and freeing its buffers) and drops Dawn's instance. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    try {
      this.device.destroy();
    } finally {
      this.gpu = undefined;
    }
  }
}

/** GPUBufferUsage as a plain object. */
export interface GPUFlagsConstantsLike {
  readonly MAP_READ: number;
  readonly MAP_WRITE: number;
  readonly COPY_SRC: number;
  readonly COPY_DST: number;
  readonly UNIFORM: number;
  readonly STORAGE: number;
}
/** GPUMapMode as a plain object. */
export interface GPUMapModeLike {
  readonly READ: number;
  readonly WRITE: number;
}

// The WebGPU spec's values, used when the module's globals lack them.
const USAGE: GPUFlagsConstantsLike = { MAP_READ: 1, MAP_WRITE: 2, COPY_SRC: 4, COPY_DST: 8, UNIFORM: 64, STORAGE: 128 };
const MAP: GPUMapModeLike = { READ: 1, WRITE: 2 };

/**
 * Opens a WebGPU device: the platform's default adapter first, then OpenGL ES in compatibility
 * mode (with EGL_PLATFORM=surfaceless unless the environment sets it), which is how Mesa's
 * software rasterizer is reached on a machine without a GPU.
 * The device gets the adapter's largest storage binding and buffer sizes.
 * @throws ChatVecError('Unsupported') naming each path tried and why it gave no device.
 */
export async function openGpuDevice(opts: GpuDeviceOptions = {}): Promise<GpuDevice> {
  let mod: WebGpuModule;
  try {
    mod = await (opts.load ?? loadWebGpu)();
  } catch (e) {
    throw new ChatVecError('Unsupported', `the webgpu package cannot be loaded: ${e instanceof Error ? e.message : String(e)}`);
  }
  const g = mod.globals as { GPUBufferUsage?: GPUFlagsConstantsLike; GPUMapMode?: GPUMapModeLike };
  const flags = { usage: g.GPUBufferUsage ?? USAGE, map: g.GPUMapMode ?? MAP };
  const failures: string[] = [];
  for (const path of opts.paths ?? ['default', 'opengles']) {
    let gpu: GPU | undefined;
    try {
      let adapter: GPUAdapter | null;
      if (path === 'opengles') {
        // EGL reads this when Dawn opens its display; surfaceless needs no X or Wayland server.
        setEnvDefault('EGL_PLATFORM', 'surfaceless');
        gpu = mod.create(['backend=opengles', ...(opts.dawnOptions ?? [])]);
        adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions);
      } else {
        gpu = mod.create([...(opts.dawnOptions ?? [])]);
        adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      }
      if (!adapter) {
        failures.push(`${path}: no adapter${path === 'opengles' ? ` (EGL_PLATFORM=${getEnv('EGL_PLATFORM') ?? ''})` : ''}`);
        continue;
      }
      const info = adapter.info;
      const name = info.device || info.description || info.vendor || 'unknown adapter';
      const report: GpuAdapterReport = {
        name,
        backend: path === 'opengles' ? 'opengles' : inferBackend(info.description),
        software: SOFTWARE.test(`${info.device} ${info.description} ${info.vendor}`) || info.isFallbackAdapter === true,
        vendor: info.vendor,
        description: info.description,
      };
      const lim = adapter.limits;
      const device = await adapter.requestDevice({
        requiredLimits: {
          maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
          maxBufferSize: lim.maxBufferSize,
        },
      });
      return new GpuDevice(gpu, device, report, flags);
    } catch (e) {
      failures.push(`${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  throw new ChatVecError('Unsupported', `no WebGPU adapter (${failures.join('; ')})`);
}
