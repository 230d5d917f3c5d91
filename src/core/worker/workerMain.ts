/**
 * Entry of every worker thread (bundled as dist/worker.js). Dispatches tasks by `kind` to the
 * handlers of workerHandlers.ts (engine, diff statistics, merge methods, demo models); replies with the result
 * or a ChatVecError's code and message.
 */
import { parentPort } from 'node:worker_threads';
import { toChatVecError } from '../errors';
import { closeAllHandles } from '../io/handleCache';
import { type WorkerTask } from '../io/workerPool';
import { workerHandlers } from './workerHandlers';

if (!parentPort) throw new Error('workerMain must run in a worker thread');
const port = parentPort;

port.on('message', (m: { id: number; task: WorkerTask }) => {
  try {
    if (m.task.kind === 'closeHandles') {
      closeAllHandles();
      port.postMessage({ id: m.id, ok: true, result: null });
      return;
    }
    const handler = workerHandlers[m.task.kind];
    if (!handler) throw new Error(`unknown worker task "${m.task.kind}"`);
    port.postMessage({ id: m.id, ok: true, result: handler(m.task, (progress) => port.postMessage({ id: m.id, progress })) });
  } catch (e) {
    const err = toChatVecError(e);
    port.postMessage({ id: m.id, ok: false, error: { code: err.code, message: err.message, details: err.details ?? err.stack } });
  }
});
