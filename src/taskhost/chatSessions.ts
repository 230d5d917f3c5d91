/**
 * The chat sessions of the task host: each a model loaded by core/tryit/chatSession.ts (the code
 * `chatvec chat` runs in-process), kept until closed. Outside the job queue: a conversation must
 * not wait behind a merge, and llama.cpp evaluates on threads of its own, so this process keeps
 * answering while a reply is written. One reply at a time per session; any number of sessions.
 */
import { CancelledError, ChatVecError } from '../core/errors';
import type { BackendChoice, LogSink } from '../core/jobs/types';
import { ChatSession } from '../core/tryit/chatSession';
import type { ChatCancelResult, ChatOpenParams, ChatOpenResult, ChatProgressParams, ChatSendParams, ChatSendResult, ChatTextParams } from '../protocol/taskHost';

/** Where a session's events go (notifications to the client). */
export interface ChatSinks {
  readonly text: (p: ChatTextParams) => void;
  readonly progress: (p: ChatProgressParams) => void;
  readonly log: LogSink;
}

interface Entry {
  /** Null while opening. */
  session: ChatSession | null;
  /** The signal of what runs now (the opening or a reply); null when idle. */
  busy: { cancelled: boolean } | null;
  closed: boolean;
}

/** Cancellation the caller may also raise (JSON-RPC's `$/cancelRequest`). */
export interface CancelHook {
  onCancellationRequested(listener: () => void): { dispose(): void };
}

/** The host's chat sessions by client-chosen id (see the file comment). */
export class ChatSessions {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly defaults: { readonly backend: BackendChoice; readonly threads: number | null }) {}

  /**
   * Opens a session: converts a checkpoint into the cache (progress), starts llama.cpp, loads.
   * @throws ChatVecError InvalidArgument for an id in use; as ChatSession.open (one line)
   */
  async open(p: ChatOpenParams, sinks: ChatSinks, cancel?: CancelHook): Promise<ChatOpenResult> {
    if (this.entries.has(p.sessionId)) throw new ChatVecError('InvalidArgument', `chatOpen: session ${p.sessionId} is already open`);
    const signal = { cancelled: false };
    const entry: Entry = { session: null, busy: signal, closed: false };
    this.entries.set(p.sessionId, entry);
    const hook = cancel?.onCancellationRequested(() => (signal.cancelled = true));
    try {
      const threads = p.threads ?? this.defaults.threads ?? undefined;
      const session = await ChatSession.open(
        { model: p.model, cacheDir: p.cacheDir, type: p.type, backend: p.backend ?? this.defaults.backend, threads, contextSize: p.contextSize, system: p.system, history: p.history },
        { signal, onProgress: (e) => sinks.progress({ ...e, sessionId: p.sessionId }), onLog: sinks.log },
      );
      // Closed or cancelled while loading: nobody wants this model any more.
      if (entry.closed || signal.cancelled) {
        await session.dispose();
        this.forget(p.sessionId, entry);
        return { status: 'cancelled' };
      }
      entry.session = session;
      entry.busy = null;
      return { status: 'ok', sessionId: p.sessionId, info: session.info };
    } catch (e) {
      this.forget(p.sessionId, entry);
      if (e instanceof CancelledError) return { status: 'cancelled' };
      throw e;
    } finally {
      hook?.dispose();
    }
  }

  /**
   * One user message; the reply's text goes to `sinks.text` piece by piece.
   * @throws ChatVecError InvalidArgument (unknown session, one still opening or replying);
   *   Unsupported (no chat template)
   */
  async send(p: ChatSendParams, sinks: ChatSinks, cancel?: CancelHook): Promise<ChatSendResult> {
    const entry = this.entries.get(p.sessionId);
    if (!entry) throw new ChatVecError('InvalidArgument', `chatSend: no open session ${p.sessionId}`);
    if (!entry.session || entry.busy) throw new ChatVecError('InvalidArgument', `chatSend: session ${p.sessionId} is ${entry.session ? 'still replying' : 'still opening'}`);
    const signal = { cancelled: false };
    entry.busy = signal;
    const hook = cancel?.onCancellationRequested(() => (signal.cancelled = true));
    const start = performance.now();
    try {
      return await entry.session.reply(p.text, {
        maxTokens: p.maxTokens,
        temperature: p.temperature,
        seed: p.seed,
        signal,
        onText: (text, tokens) => {
          const s = (performance.now() - start) / 1000;
          sinks.text({ sessionId: p.sessionId, text, tokens, tokensPerSecond: s > 0 ? tokens / s : 0 });
        },
      });
    } finally {
      hook?.dispose();
      entry.busy = null;
      // Closed while replying: the model is freed once the reply has stopped.
      if (entry.closed) await this.dispose(entry);
    }
  }

  /** Stops the session's reply or opening; answers at once. */
  cancel(sessionId: string): ChatCancelResult {
    const entry = this.entries.get(sessionId);
    if (!entry) return { state: 'unknown' };
    if (!entry.busy) return { state: 'idle' };
    entry.busy.cancelled = true;
    return { state: entry.session ? 'replying' : 'opening' };
  }

  /** Cancels what the session does and frees its model (after a running reply stops). */
  async close(sessionId: string): Promise<boolean> {
    const entry = this.entries.get(sessionId);
    if (!entry) return false;
    this.entries.delete(sessionId);
    entry.closed = true;
    if (entry.busy) entry.busy.cancelled = true;
    else await this.dispose(entry);
    return true;
  }

  /** Closes every session (shutdown). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.entries.keys()].map((id) => this.close(id)));
  }

  /** How many sessions are open or opening. */
  get size(): number {
    return this.entries.size;
  }

  private forget(id: string, entry: Entry): void {
    if (this.entries.get(id) === entry) this.entries.delete(id);
  }

  private async dispose(entry: Entry): Promise<void> {
    const s = entry.session;
    entry.session = null;
    await s?.dispose().catch(() => undefined);
  }
}
