/**
 * A chat session in the task host, seen from a client (the VS Code chat panel, `chatvec chat
 * --via-host`): the model is loaded and run in the host process, never in the caller's. Replies
 * stream as `chatText` notifications; cancelling stops a reply where it is (the call then resolves
 * with `stop: 'cancelled'`), or an opening (conversion, loading).
 */
import { CancelledError } from '../core/errors';
import {
  ChatCancelRequest,
  type ChatCancelResult,
  ChatCloseRequest,
  type ChatOpenParams,
  ChatOpenRequest,
  ChatProgressNotification,
  type ChatProgressParams,
  type ChatSendResult,
  ChatSendRequest,
  type ChatSessionInfo,
  ChatTextNotification,
  type ChatTextParams,
} from '../protocol/taskHost';
import { type Cancellation, isCancellationRequested } from './cancellation';
import type { TaskHostClient } from './client';

/** One reply's options. */
export interface HostReplyOptions {
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly seed?: number;
  /** Each piece of the reply's text as it arrives, with the tokens so far and the rate. */
  readonly onText?: (p: ChatTextParams) => void;
  /** Stops the reply (the call resolves with `stop: 'cancelled'`). */
  readonly cancellation?: Cancellation;
}

/** A chat session opened in a task host (see the file comment). */
export class HostChat {
  private closed = false;

  private constructor(
    private readonly client: TaskHostClient,
    readonly sessionId: string,
    /** The model as loaded: file, name, backend, context, whether it has a chat template. */
    readonly info: ChatSessionInfo,
  ) {}

  /**
   * Opens a session in the host: a checkpoint is converted into the cache first (progress).
   * @throws CancelledError when `cancellation` fired first; ChatVecError from the host (one line:
   *   a model that cannot be converted or loaded); TaskHostCrashedError
   */
  static async open(
    client: TaskHostClient,
    params: Omit<ChatOpenParams, 'sessionId'> & { readonly sessionId?: string },
    call: { readonly cancellation?: Cancellation; readonly onProgress?: (p: ChatProgressParams) => void } = {},
  ): Promise<HostChat> {
    const sessionId = params.sessionId ?? client.newJobId('chat');
    if (isCancellationRequested(call.cancellation)) throw new CancelledError();
    const sub = call.onProgress ? client.onNotification(ChatProgressNotification, (p) => p.sessionId === sessionId && call.onProgress!(p)) : undefined;
    try {
      const r = await client.request(ChatOpenRequest, { ...params, sessionId }, sessionId, call.cancellation);
      if (r.status === 'cancelled') throw new CancelledError();
      return new HostChat(client, sessionId, r.info);
    } finally {
      sub?.dispose();
    }
  }

  /**
   * Sends `text`; the reply streams to `opts.onText`. Its text is the pieces concatenated.
   * @throws ChatVecError (Unsupported: the model has no chat template; InvalidArgument: a reply
   *   is still being written); TaskHostCrashedError
   */
  async reply(text: string, opts: HostReplyOptions = {}): Promise<ChatSendResult> {
    const sub = opts.onText ? this.client.onNotification(ChatTextNotification, (p) => p.sessionId === this.sessionId && opts.onText!(p)) : undefined;
    try {
      const { maxTokens, temperature, seed } = opts;
      return await this.client.request(ChatSendRequest, { sessionId: this.sessionId, text, maxTokens, temperature, seed }, this.sessionId, opts.cancellation);
    } finally {
      sub?.dispose();
    }
  }

  /** Stops the reply being written (its call resolves `stop: 'cancelled'`); answered at once. */
  cancel(): Promise<ChatCancelResult> {
    return this.client.request(ChatCancelRequest, { sessionId: this.sessionId });
  }

  /** Frees the model in the host (best effort: a host that is gone has freed it already). */
  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.request(ChatCloseRequest, { sessionId: this.sessionId }).catch(() => undefined);
  }
}
