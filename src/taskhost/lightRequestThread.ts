/**
 * The worker-thread side of the task host's light requests (inspect, recipeCheck, recipePlan,
 * rowStats): they read headers and side files with synchronous file I/O, and one read can block
 * for ever (a FIFO, a hung network mount). Run here, such a read blocks this thread only, and the
 * host's event loop stays free to answer `status`, `cancel`, `shutdown` and the jobs. The thread
 * runs the task host bundle itself (main.ts starts this when it is not the main thread); see
 * lightRequests.ts for the pool that feeds it.
 */
import fs from 'node:fs';
import type { MessagePort } from 'node:worker_threads';
import { inspectPath } from '../core/lora/inspectAdapter';
import { listCachedModels } from '../core/hub/cachedModels';
import { toChatVecError } from '../core/errors';
import type { InspectParams, RecipeCheckParams, RecipePlanParams, RowStatsParams } from '../protocol/taskHost';
import { recipeCheck, recipePlan, rowStatsRequest } from './runners';

/** The requests run on these threads, with their (already validated) parameters. */
export interface LightParamsMap {
  readonly inspect: InspectParams;
  readonly recipeCheck: RecipeCheckParams;
  readonly recipePlan: RecipePlanParams;
  readonly rowStats: RowStatsParams;
  readonly hubCacheList: Record<string, never>;
}
export type LightMethod = keyof LightParamsMap;

/** Host state a request depends on, sent with it (threads cannot see the main thread's). */
export interface LightContext {
  /** The host's default for jobs' threads (null: all cores), for recipePlan's estimate. */
  readonly defaultThreads: number | null;
}

/** Main thread → worker. */
export interface LightRequestMessage {
  readonly id: number;
  readonly method: LightMethod;
  readonly params: unknown;
  readonly context: LightContext;
}

/** Worker → main thread. */
export type LightReplyMessage =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: { readonly code: string; readonly message: string; readonly details?: string } };

const HANDLERS: { readonly [M in LightMethod]: (p: LightParamsMap[M], c: LightContext) => unknown } = {
  inspect: (p) => inspectPath(p.path),
  recipeCheck: (p) => recipeCheck(p),
  recipePlan: (p, c) => recipePlan(p, c.defaultThreads),
  rowStats: (p) => rowStatsRequest(p),
  hubCacheList: () => listCachedModels(),
};

/**
 * Test hook, off unless the environment sets it: `CHATVEC_TEST_BLOCK_REQUEST=<method>:<path>` makes
 * every request of that method first read `path` — a FIFO without a writer blocks in the kernel
 * exactly like a header read of a FIFO or of a hung network mount, whatever the readers of side
 * files refuse. It lets the tests hold a request stuck on purpose.
 */
function testBlock(method: LightMethod): void {
  const hook = process.env.CHATVEC_TEST_BLOCK_REQUEST;
  if (!hook) return;
  const colon = hook.indexOf(':');
  if (colon > 0 && hook.slice(0, colon) === method) fs.readFileSync(hook.slice(colon + 1));
}

/** Answers light requests arriving on `port`, one at a time, until the thread is terminated. */
export function serveLightRequests(port: MessagePort): void {
  port.on('message', (m: LightRequestMessage) => {
    let reply: LightReplyMessage;
    try {
      testBlock(m.method);
      const handler = HANDLERS[m.method] as (p: unknown, c: LightContext) => unknown;
      reply = { id: m.id, ok: true, result: handler(m.params, m.context) };
    } catch (e) {
      const err = toChatVecError(e);
      reply = { id: m.id, ok: false, error: { code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) } };
    }
    try {
      port.postMessage(reply);
    } catch {
      // Not structured-cloneable (a function or class instance in a report): send what JSON-RPC
      // would have sent anyway.
      port.postMessage(reply.ok ? { ...reply, result: JSON.parse(JSON.stringify(reply.result) ?? 'null') as unknown } : reply);
    }
  });
}
