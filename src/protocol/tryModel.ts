/**
 * Messages between the extension and the Try Model panel (webview/tryModel.ts), which chats with
 * one model or, for Compare Replies, sends each prompt to two models side by side. The extension
 * owns the conversation and sends the whole panel state after each change (a conversation is a
 * few kilobytes); the page only renders it, keeps it with `setState` for a window reload, and
 * sends what the user asks for. The page says `ready` before the extension sends anything.
 */

/** The view type of the panel; also names its serializer and activation event. */
export const TRY_MODEL_VIEW_TYPE = 'chatVector.tryModel';

/** The default of the max-tokens field. */
export const TRY_DEFAULT_MAX_TOKENS = 256;

/** One model of the panel (a column). */
export interface TryColumn {
  /** The checkpoint folder or .gguf file. */
  readonly model: string;
  /** `loading` while converting/loading, then `ready`, or `failed` with `message`. */
  readonly status: 'loading' | 'ready' | 'failed';
  /** Progress while loading ("Converting to GGUF… 40%"), the error when failed. */
  readonly message?: string;
  /** The GGUF's model name, the backend ("llama.cpp cpu"), once loaded. */
  readonly name?: string;
  readonly backend?: string;
  /** Tokens per second of the last (or current) reply. */
  readonly tokensPerSecond?: number;
}

/** One turn: the user's text and each column's reply (in column order). */
export interface TryTurn {
  readonly user: string;
  readonly replies: readonly string[];
  /** Per column: how the reply ended; `streaming` while it is written. */
  readonly stops: readonly ('eog' | 'maxTokens' | 'cancelled' | 'error' | 'streaming')[];
}

/** What the page shows, and what survives a reload (setState; the serializer gets it back). */
export interface TryPanelState {
  readonly columns: readonly TryColumn[];
  readonly system: string;
  readonly maxTokens: number;
  readonly turns: readonly TryTurn[];
  /** A reply is being written (the Stop button is live, Send is not). */
  readonly busy: boolean;
}

/** Extension → page. */
export type ToTryWebview = { readonly type: 'state'; readonly state: TryPanelState };

/** Page → extension. */
export type FromTryWebview =
  | { readonly type: 'ready' }
  | { readonly type: 'send'; readonly text: string; readonly system: string; readonly maxTokens: number }
  | { readonly type: 'stop' }
  | { readonly type: 'error'; readonly message: string };

/** A message from the page, checked (the page is a separate context: trust nothing). */
export function isFromTryWebview(m: unknown): m is FromTryWebview {
  if (typeof m !== 'object' || m === null) return false;
  const x = m as Record<string, unknown>;
  switch (x.type) {
    case 'ready':
    case 'stop':
      return true;
    case 'send':
      return typeof x.text === 'string' && typeof x.system === 'string' && typeof x.maxTokens === 'number' && Number.isInteger(x.maxTokens) && x.maxTokens >= 1;
    case 'error':
      return typeof x.message === 'string';
    default:
      return false;
  }
}

/** The restored state of a panel after a reload, checked; undefined when it is not one. */
export function restoredTryState(s: unknown): TryPanelState | undefined {
  if (typeof s !== 'object' || s === null) return undefined;
  const x = s as Partial<TryPanelState>;
  if (!Array.isArray(x.columns) || x.columns.length < 1 || x.columns.length > 2 || !x.columns.every((c) => typeof c?.model === 'string')) return undefined;
  const n = x.columns.length;
  const isTurn = (t: unknown): t is TryTurn => {
    const u = t as Partial<TryTurn> | null;
    return typeof u?.user === 'string' && Array.isArray(u.replies) && u.replies.length === n && u.replies.every((r: unknown) => typeof r === 'string');
  };
  const turns = (Array.isArray(x.turns) ? (x.turns as unknown[]) : []).filter(isTurn);
  return {
    columns: x.columns.map((c) => ({ model: c.model, status: 'loading' as const })),
    system: typeof x.system === 'string' ? x.system : '',
    maxTokens: typeof x.maxTokens === 'number' && Number.isInteger(x.maxTokens) && x.maxTokens >= 1 ? x.maxTokens : TRY_DEFAULT_MAX_TOKENS,
    // A reply cut off by the reload counts as stopped.
    turns: turns.map((t) => ({ user: t.user, replies: t.replies, stops: t.replies.map((_r, i) => { const st = Array.isArray(t.stops) ? t.stops[i] : undefined; return st === undefined || st === 'streaming' ? 'cancelled' : st; }) })),
    busy: false,
  };
}
