/**
 * Recording a compute dispatch: every WGSL kernel here binds its buffers in group 0 at bindings
 * 0, 1, … in declaration order, so a dispatch is a pipeline, a list of buffers (or ranges of
 * them) and a grid. One helper, so the kernels' hosts (gpuBackend.ts, gemmGpu.ts,
 * lowRankProductGpu.ts) differ only in what they bind.
 */

/** A buffer bound whole, or a byte range of one. */
export type Binding = GPUBuffer | { readonly buffer: GPUBuffer; readonly offset: number; readonly size: number };

/**
 * Records one dispatch of `pipeline` (already set on `pass`) over a gridX × gridY grid of
 * workgroups, with `bindings[i]` at binding i of group 0.
 */
export function dispatch(dev: GPUDevice, pass: GPUComputePassEncoder, pipeline: GPUComputePipeline, bindings: readonly Binding[], gridX: number, gridY = 1): void {
  pass.setBindGroup(
    0,
    dev.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: bindings.map((b, binding) => ({ binding, resource: 'offset' in b ? { buffer: b.buffer, offset: b.offset, size: b.size } : { buffer: b } })),
    }),
  );
  pass.dispatchWorkgroups(gridX, gridY);
}
