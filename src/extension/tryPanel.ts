/**
 * The Try Model panel: a chat with one model, or (Compare Replies) one prompt sent to two models
 * side by side — the same panel with two columns, each its own chat session in the task host
 * (taskhost/chatClient.ts: the model is never loaded in the extension host). The extension owns
 * the conversation and sends the page the whole state after each change (src/protocol/tryModel.ts).
 *
 * After a window reload the serializer hands the page's saved state back: each model is loaded
 * again with the earlier turns as its history, and those turns are shown. The KV cache is not
 * saved: the next reply evaluates the whole transcript again (one prompt evaluation), then replies
 * as the conversation would have gone on.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ChatMessage } from '../protocol/taskHost';
import { type FromTryWebview, isFromTryWebview, restoredTryState, TRY_DEFAULT_MAX_TOKENS, TRY_MODEL_VIEW_TYPE, type TryColumn, type TryPanelState, type TryTurn } from '../protocol/tryModel';
import { HostChat } from '../taskhost/chatClient';
import type { TaskHostClient } from '../taskhost/client';
import { TaskHostCrashedError } from '../taskhost/clientErrors';
import { progressMessage } from './jobs';
import { Disposable } from './dispose';
import { webviewPageHtml } from './webviewPage';

/** What a panel needs from the extension. */
export interface TryPanelHost {
  readonly log: vscode.LogOutputChannel;
  readonly extensionUri: vscode.Uri;
  /** The task host client of the current session. */
  client(): TaskHostClient;
  /** Where conversions go and how models run (the extension's settings). */
  openOptions(): { cacheDir: string; backend?: 'auto' | 'cpu' | 'gpu'; threads?: number };
}

type Stop = TryTurn['stops'][number];
interface Turn {
  user: string;
  replies: string[];
  stops: Stop[];
}

/** One Try Model / Compare Replies panel (see the file comment). */
export class TryModelPanel extends Disposable {
  private columns: TryColumn[];
  private turns: Turn[];
  private system: string;
  private maxTokens: number;
  private busy = false;
  private ready = false;
  private readonly chats: (HostChat | undefined)[];
  /** The system prompt the open sessions were started with. */
  private openedSystem: string;
  private aborts: AbortController[] = [];
  private loading: Promise<void>;

  constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly host: TryPanelHost,
    initial: TryPanelState,
  ) {
    super();
    this.columns = initial.columns.map((c) => ({ model: c.model, status: 'loading' }));
    this.turns = initial.turns.map((t) => ({ user: t.user, replies: [...t.replies], stops: [...t.stops] }));
    this.system = initial.system;
    this.openedSystem = initial.system;
    this.maxTokens = initial.maxTokens;
    this.chats = this.columns.map(() => undefined);
    panel.title = panelTitle(this.columns.map((c) => c.model));
    panel.iconPath = vscode.Uri.joinPath(host.extensionUri, 'media', 'icon.svg');
    panel.webview.options = webviewOptions(host.extensionUri);
    panel.webview.html = webviewPageHtml(panel.webview, host.extensionUri, { script: 'tryModel.js', css: 'tryModel.css', title: 'Try Model', loading: 'Loading…' });
    this.register(panel.webview.onDidReceiveMessage((m: unknown) => void this.handle(m)));
    this.register(
      panel.onDidChangeViewState(() => {
        // A hidden page is gone (no retainContextWhenHidden); it says `ready` again when shown.
        if (!panel.visible) this.ready = false;
      }),
    );
    this.register(panel.onDidDispose(() => this.dispose()));
    this.register({ dispose: () => void this.closeChats() });
    this.loading = this.loadAll();
  }

  /** The state the page shows (for the e2e tests). */
  get snapshot(): TryPanelState {
    return { columns: [...this.columns], system: this.system, maxTokens: this.maxTokens, turns: this.turns.map((t) => ({ ...t, replies: [...t.replies], stops: [...t.stops] })), busy: this.busy };
  }
  get isReady(): boolean {
    return this.ready;
  }
  /** Resolves once every column has loaded or failed. */
  whenLoaded(): Promise<void> {
    return this.loading;
  }

  /** A message from the page (public so the e2e tests can act as the page does). */
  async handle(m: unknown): Promise<void> {
    if (!isFromTryWebview(m)) {
      this.host.log.warn(`try model: ignored an unknown message ${JSON.stringify(m)?.slice(0, 200)}`);
      return;
    }
    const msg: FromTryWebview = m;
    switch (msg.type) {
      case 'ready':
        this.ready = true;
        this.post();
        return;
      case 'stop':
        this.stop();
        return;
      case 'error':
        this.host.log.error(`try model webview: ${msg.message}`);
        return;
      case 'send':
        await this.send(msg.text, msg.system, msg.maxTokens);
    }
  }

  /** Stops the replies being written (each column keeps what it has, marked stopped). */
  stop(): void {
    for (const a of this.aborts) a.abort();
  }

  /** Sends `text` to every column; replies stream into the page. */
  async send(text: string, system: string, maxTokens: number): Promise<void> {
    if (this.busy || text.trim() === '') return;
    this.system = system;
    this.maxTokens = maxTokens;
    if (system !== this.openedSystem) {
      // The system prompt is the conversation's first message: reload with the turns so far.
      this.busy = true;
      await this.closeChats();
      this.loading = this.loadAll();
      await this.loading;
      this.busy = false;
    }
    if (!this.chats.every((c) => c)) {
      this.post();
      return;
    }
    const turn: Turn = { user: text, replies: this.columns.map(() => ''), stops: this.columns.map(() => 'streaming') };
    this.turns.push(turn);
    this.busy = true;
    this.aborts = this.columns.map(() => new AbortController());
    this.post();
    await Promise.all(
      this.chats.map(async (chat, i) => {
        const reply = (c: HostChat) =>
          c.reply(text, {
            maxTokens,
            cancellation: this.aborts[i]!.signal,
            onText: (p) => {
              turn.replies[i] += p.text;
              this.setColumn(i, { tokensPerSecond: p.tokensPerSecond });
              this.post();
            },
          });
        try {
          let r;
          try {
            r = await reply(chat!);
          } catch (e) {
            // The background process was restarted (or crashed) since the model was loaded: its
            // sessions are gone. Load the model again with the turns so far, and send once more.
            if (!sessionLost(e)) throw e;
            this.host.log.warn(`try model: ${this.columns[i]!.model}: the chat session was lost; loading the model again`);
            turn.replies[i] = '';
            await this.load(i, turn);
            if (!this.chats[i]) throw new Error(this.columns[i]!.message ?? 'the model could not be loaded again');
            r = await reply(this.chats[i]!);
          }
          turn.replies[i] = r.text;
          turn.stops[i] = r.stop;
          this.setColumn(i, { tokensPerSecond: r.tokensPerSecond });
          this.host.log.info(`try model: ${this.columns[i]!.model}: ${r.tokens.length} tokens, ${r.tokensPerSecond.toFixed(1)} tokens/s (${r.stop})`);
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          this.host.log.error(`try model: ${this.columns[i]!.model}: ${message}`);
          turn.stops[i] = 'error';
          turn.replies[i] = message;
        }
      }),
    );
    this.aborts = [];
    this.busy = false;
    this.post();
  }

  private async loadAll(): Promise<void> {
    this.openedSystem = this.system;
    await Promise.all(this.columns.map((_c, i) => this.load(i)));
  }

  /** Opens column i's chat session with the turns so far (its own replies; not `except`) as history. */
  private async load(i: number, except?: Turn): Promise<void> {
    const model = this.columns[i]!.model;
    this.setColumn(i, { status: 'loading', message: 'Loading the model…' });
    this.post();
    const history: ChatMessage[] = this.turns
      .filter((t) => t !== except && (t.stops[i] === 'eog' || t.stops[i] === 'maxTokens'))
      .flatMap((t) => [
        { role: 'user' as const, content: t.user },
        { role: 'assistant' as const, content: t.replies[i]! },
      ]);
    try {
      const o = this.host.openOptions();
      const chat = await HostChat.open(
        this.host.client(),
        { model, cacheDir: o.cacheDir, backend: o.backend, ...(o.threads ? { threads: o.threads } : {}), ...(this.system ? { system: this.system } : {}), history },
        {
          onProgress: (p) => {
            // The job progress line (progressMessage reads only the event's own fields).
            const line = progressMessage({ ...p, jobId: this.columns[i]!.model, kind: 'evalModel', state: 'running', source: 'job' });
            this.setColumn(i, { message: p.phase === 'gguf' ? `Converting to GGUF (once, into the cache): ${line}` : line });
            this.post();
          },
        },
      );
      if (this.isDisposed) {
        await chat.dispose();
        return;
      }
      this.chats[i] = chat;
      const note = chat.info.hasChatTemplate ? undefined : 'This model has no chat template: replies will fail. Use Evaluate Perplexity for a base model.';
      this.setColumn(i, { status: 'ready', message: note, name: chat.info.name, backend: chat.info.backend });
      this.host.log.info(`try model: loaded ${model} (${chat.info.gguf}, ${chat.info.ggufFrom}) on ${chat.info.backend}`);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.host.log.error(`try model: cannot load ${model}: ${message}`);
      this.setColumn(i, { status: 'failed', message: `Cannot load ${path.basename(model)}: ${message}` });
    }
    this.post();
  }

  private setColumn(i: number, change: Partial<TryColumn>): void {
    this.columns[i] = { ...this.columns[i]!, ...change };
  }

  private async closeChats(): Promise<void> {
    this.stop();
    const open = this.chats.splice(0, this.chats.length, ...this.chats.map(() => undefined));
    await Promise.all(open.map((c) => c?.dispose()));
  }

  private post(): void {
    if (!this.ready || this.isDisposed) return;
    void this.panel.webview.postMessage({ type: 'state', state: this.snapshot });
  }
}

/** A chat session the host no longer has: it was restarted or crashed after the model was loaded. */
function sessionLost(e: unknown): boolean {
  if (e instanceof TaskHostCrashedError) return true;
  const err = e as { code?: string; message?: string } | null;
  return err?.code === 'InvalidArgument' && /no open session/.test(err.message ?? '');
}

/** "Try: tiny-merged" or "Compare: tiny-cp ↔ tiny-merged". */
function panelTitle(models: readonly string[]): string {
  const names = models.map((m) => path.basename(m));
  return names.length === 1 ? `Try: ${names[0]}` : `Compare: ${names.join(' ↔ ')}`;
}

function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewPanelOptions & vscode.WebviewOptions {
  return {
    enableScripts: true,
    retainContextWhenHidden: false,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}


/** Every open Try Model panel, and the serializer that brings them back after a reload. */
export class TryModelPanels extends Disposable {
  private readonly open = new Set<TryModelPanel>();

  constructor(private readonly host: TryPanelHost) {
    super();
    this.register(
      vscode.window.registerWebviewPanelSerializer(TRY_MODEL_VIEW_TYPE, {
        deserializeWebviewPanel: async (panel, state: unknown) => {
          const s = restoredTryState(state);
          if (!s) {
            panel.dispose();
            return;
          }
          this.adopt(panel, s);
        },
      }),
    );
    this.register({ dispose: () => [...this.open].forEach((p) => p.panel.dispose()) });
  }

  /** The open panels, oldest first (for the e2e tests). */
  get panels(): readonly TryModelPanel[] {
    return [...this.open];
  }

  /** A new panel chatting with `models` (one, or two side by side). */
  show(models: readonly string[]): TryModelPanel {
    const panel = vscode.window.createWebviewPanel(TRY_MODEL_VIEW_TYPE, panelTitle(models), vscode.ViewColumn.Active, webviewOptions(this.host.extensionUri));
    return this.adopt(panel, { columns: models.map((model) => ({ model, status: 'loading' })), system: '', maxTokens: TRY_DEFAULT_MAX_TOKENS, turns: [], busy: false });
  }

  private adopt(panel: vscode.WebviewPanel, state: TryPanelState): TryModelPanel {
    const p = new TryModelPanel(panel, this.host, state);
    this.open.add(p);
    panel.onDidDispose(() => this.open.delete(p));
    return p;
  }
}
