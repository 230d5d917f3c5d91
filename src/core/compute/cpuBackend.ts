/** The CPU implementation of ComputeBackend: cpuKernels on the calling thread. */
import { throwIfCancelled } from '../errors';
import type { BackendInfo, ComputeBackend, DiffStats, ElementArray, FusedApplyRequest, KernelOptions } from './backend';
import { fusedApplyChunk, reduceDiffChunk } from './cpuKernels';

export class CpuBackend implements ComputeBackend {
  readonly kind = 'cpu' as const;
  readonly name = 'cpu';

  describe(): BackendInfo {
    return { kind: 'cpu', name: 'cpu' };
  }

  async fusedApply(req: FusedApplyRequest, opts?: KernelOptions): Promise<ElementArray> {
    throwIfCancelled(opts?.signal);
    return fusedApplyChunk(req);
  }

  async reduceDiff(a: ElementArray, b: ElementArray, opts?: KernelOptions): Promise<DiffStats> {
    throwIfCancelled(opts?.signal);
    return reduceDiffChunk(a, b);
  }

  async dispose(): Promise<void> {}
}
