// The few WebAssembly JS-API declarations the SIMD kernels use (TypeScript's ES libs lack them,
// and the DOM lib would let browser globals into Node code).
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Instance {
    constructor(module: Module, imports: Record<string, unknown>);
    readonly exports: Record<string, unknown>;
  }
  class Memory {
    readonly buffer: ArrayBuffer;
    grow(pages: number): number;
  }
}
