/**
 * `chatvec --via-host …`: the CLI's jobs run in a task host process through the same client the
 * VS Code extension uses, so the host can be exercised (and used) headless. Output is the same as
 * in-process: the engine's own progress events and log lines are passed on unchanged, the host's
 * additions (queued/starting events, its life-cycle lines) are left out, a cancelled job throws
 * CancelledError, and failures arrive as the same ChatVecError.
 */
import type { InspectReport } from '../core/checkpoint/inspect';
import { CancelledError } from '../core/errors';
import type { JobContext } from '../core/jobs/types';
import type { JobKind, JobOptionsOf, JobResultMap } from '../protocol/taskHost';
import type { Chat, ChatOpenOptions, ReplyOptions } from '../core/tryit/chatSession';
import { HostChat } from '../taskhost/chatClient';
import { TaskHostClient, type TaskHostClientOptions } from '../taskhost/client';

/** How often the CLI's Ctrl-C flag (a polled boolean) is checked, in ms. */
const CANCEL_POLL_MS = 100;

/** The CLI's jobs, run in a task host. */
export class ViaHost {
  private readonly client: TaskHostClient;

  constructor(options: TaskHostClientOptions = {}) {
    this.client = new TaskHostClient(options);
    this.client.onLog((l) => {
      // Jobs' lines go through their JobContext; failures and crashes arrive as the thrown error;
      // the rest is for debugging the host itself.
      if (l.source !== 'job' && process.env.CHATVEC_DEBUG) process.stderr.write(`chatvec: task host: ${l.message}\n`);
    });
  }

  /** Reads a checkpoint's headers in the host. */
  inspect(path: string): Promise<InspectReport> {
    return this.client.inspect(path);
  }

  /**
   * Runs a job in the host with the in-process engine's contract.
   * @throws CancelledError when ctx.signal was raised; ChatVecError from the engine or the host
   */
  async run<K extends JobKind>(kind: K, options: JobOptionsOf<K>, ctx: JobContext = {}): Promise<JobResultMap[K]> {
    const abort = new AbortController();
    const poll = ctx.signal
      ? setInterval(() => {
          if (ctx.signal?.cancelled) abort.abort();
        }, CANCEL_POLL_MS)
      : undefined;
    const jobId = this.client.newJobId(kind);
    const unsubscribe = this.client.onLog((l) => {
      if (l.source === 'job' && l.jobId === jobId) ctx.onLog?.(l.level, l.message);
    });
    try {
      if (ctx.signal?.cancelled) throw new CancelledError();
      const r = await this.client.runJob(kind, options, {
        jobId,
        cancellation: abort.signal,
        onProgress: (p) => {
          if (p.source !== 'job' || !ctx.onProgress) return;
          const { jobId: _id, kind: _kind, state: _state, source: _source, queuePosition: _pos, ...event } = p;
          ctx.onProgress(event);
        },
      });
      if (r.status === 'cancelled') throw new CancelledError();
      return r.result;
    } finally {
      clearInterval(poll);
      unsubscribe.dispose();
    }
  }

  /**
   * A chat session in the host with ChatSession's contract (cancel by the polled signal).
   * @throws CancelledError when ctx.signal was raised during the opening; ChatVecError from the host
   */
  async openChat(opts: ChatOpenOptions, ctx: JobContext = {}): Promise<Chat> {
    const sessionId = this.client.newJobId('chat');
    const abort = pollSignal(ctx.signal);
    const unsubscribe = this.client.onLog((l) => l.source === 'job' && l.jobId === sessionId && ctx.onLog?.(l.level, l.message));
    let chat: HostChat;
    try {
      const { model, cacheDir, type, backend, threads, system, contextSize, history } = opts;
      chat = await HostChat.open(this.client, { sessionId, model, cacheDir, type, backend, threads, system, contextSize, history }, {
        cancellation: abort.signal,
        onProgress: ({ sessionId: _id, ...event }) => ctx.onProgress?.(event),
      });
    } finally {
      abort.dispose();
      unsubscribe.dispose();
    }
    return {
      info: chat.info,
      reply: async (user: string, o: ReplyOptions = {}) => {
        const cancel = pollSignal(o.signal);
        try {
          return await chat.reply(user, { maxTokens: o.maxTokens, temperature: o.temperature, seed: o.seed, cancellation: cancel.signal, onText: (p) => o.onText?.(p.text, p.tokens) });
        } finally {
          cancel.dispose();
        }
      },
      dispose: () => chat.dispose(),
    };
  }

  /** Shuts the host down (the CLI process would otherwise stay alive on the IPC channel). */
  dispose(): Promise<void> {
    return this.client.dispose();
  }
}

/** An AbortSignal raised once the CLI's polled flag is. */
function pollSignal(flag: { readonly cancelled: boolean } | undefined): { signal: AbortSignal; dispose(): void } {
  const abort = new AbortController();
  const poll = flag
    ? setInterval(() => {
        if (flag.cancelled) abort.abort();
      }, CANCEL_POLL_MS)
    : undefined;
  if (flag?.cancelled) abort.abort();
  return { signal: abort.signal, dispose: () => clearInterval(poll) };
}
