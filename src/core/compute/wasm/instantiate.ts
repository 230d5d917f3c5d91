/** Instantiating the kernels' WebAssembly modules (each once per thread). */
import { getEnv } from '../../io/env';

/**
 * The exports of the module whose bytes are `base64`, or null when CHATVEC_KERNEL=js asks for
 * the JavaScript kernels or the runtime lacks WebAssembly SIMD (the JavaScript kernels then
 * compute the same results).
 */
export function instantiateKernels<T>(base64: string): T | null {
  if (getEnv('CHATVEC_KERNEL') === 'js') return null;
  try {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    return new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as T;
  } catch {
    return null;
  }
}
