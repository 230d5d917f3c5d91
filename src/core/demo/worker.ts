/**
 * The `demoModel` worker task: one demo model written by the synchronous generator on a worker
 * thread, so the thread that started it (the task host's, with its JSON-RPC connection) stays
 * responsive and can stop the write at once by terminating the worker.
 */
import { writeDemoModel } from './generator';
import type { DemoRole } from './presets';
import type { PresetName } from './presets';

export interface DemoModelTask {
  readonly kind: 'demoModel';
  /** The model folder to write (replaced when it exists). */
  readonly dir: string;
  readonly role: DemoRole;
  readonly preset: PresetName;
  readonly seed: number;
  /** Names the temporary folder, so the caller can remove it after terminating the worker. */
  readonly tempTag: string;
}

/** Writes the model; reports the tensor-data bytes written so far (a number) after each tensor. */
export function runDemoModel(t: DemoModelTask, progress: (doneBytes: number) => void): null {
  writeDemoModel(t.dir, t.role, t.preset, t.seed, true, { tempTag: t.tempTag, onTensor: (done) => progress(done) });
  return null;
}
