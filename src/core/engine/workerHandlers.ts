/** Worker task handlers by kind. Each returns plain, cloneable data. */
import type { WorkerTask } from '../io/workerPool';
import { type CombineTask, type CopyBytesTask, runCombine, runCopyBytes } from './combineKernel';

export const workerHandlers: Record<string, (task: WorkerTask) => unknown> = {
  combine: (t) => runCombine(t as CombineTask),
  copyBytes: (t) => runCopyBytes(t as CopyBytesTask),
};
