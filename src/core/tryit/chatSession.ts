/**
 * A chat with a model in llama.cpp: the whole conversation is rendered with the model's chat
 * template for every turn (chatTemplate.ts) and tokenized with special tokens read as such; the
 * part of the prompt already in the KV cache (the earlier turns) is kept, only the rest is
 * evaluated. Replies are greedy by default (the same reply every time), stream as text, stop at
 * an end-of-generation token (EOS, EOT …), at `maxTokens`, or when cancelled.
 */
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import type { GgufFileType } from '../gguf/llama';
import type { BackendChoice, JobContext } from '../jobs/types';
import { type ChatMessage, renderChatPrompt } from './chatTemplate';
import { llamaBackendName, loadGgufModel, startLlama } from './llamaRuntime';
import { basename } from '../io/paths';
import { type ModelFile, resolveModelFile } from './modelFile';

export interface ChatOpenOptions {
  /** A checkpoint folder (converted into the cache) or a .gguf file. */
  readonly model: string;
  readonly cacheDir: string;
  /** Weight type of a conversion; default F16. */
  readonly type?: GgufFileType;
  readonly backend?: BackendChoice;
  readonly threads?: number;
  /** A system message before the conversation. */
  readonly system?: string;
  /** KV cache size in tokens; default min(the model's training context, 4096). */
  readonly contextSize?: number;
  /**
   * Earlier turns (user, assistant, …) to continue from, e.g. a conversation restored after a
   * reload. Nothing is evaluated now: the next reply evaluates the whole transcript (the KV cache
   * starts empty), so it costs one prompt evaluation of the conversation so far.
   */
  readonly history?: readonly ChatMessage[];
}

/** What a loaded session is: for a chat panel's header and the CLI's first line. */
export interface ChatSessionInfo {
  /** The GGUF file, and whether it was given, reused from the cache or converted now. */
  readonly gguf: string;
  readonly ggufFrom: ModelFile['from'];
  /** The GGUF's `general.name`, else the file name. */
  readonly name: string;
  /** "llama.cpp cpu" / "llama.cpp cuda" … */
  readonly backend: string;
  /** The KV cache size in tokens, and the model's training context. */
  readonly contextSize: number;
  readonly trainContextSize: number;
  /** Whether the model has a chat template (without one every reply fails with one line). */
  readonly hasChatTemplate: boolean;
  /** The template's first characters, for a tooltip. */
  readonly templateHead: string | null;
}

export interface ReplyOptions {
  /** Most tokens in the reply; default 512. */
  readonly maxTokens?: number;
  /** 0 (default): greedy; above 0: sampled (llama.cpp's default top-k 40, top-p 0.95). */
  readonly temperature?: number;
  /** Seed of the sampler when temperature > 0. */
  readonly seed?: number;
  /** Each new piece of the reply's text as it is generated, and how many tokens the reply has so far. */
  readonly onText?: (text: string, tokens: number) => void;
  /** Raised: the reply stops where it is (stop reason `cancelled`). */
  readonly signal?: { readonly cancelled: boolean };
}

export interface ChatReply {
  /** The rendered prompt this reply continued (the template's text, special tokens as text). */
  readonly prompt: string;
  readonly promptTokens: readonly number[];
  readonly text: string;
  readonly tokens: readonly number[];
  readonly stop: 'eog' | 'maxTokens' | 'cancelled';
  /** Seconds generating (prompt evaluation included) and reply tokens per second. */
  readonly seconds: number;
  readonly tokensPerSecond: number;
}

/** A chat wherever its model runs: this process (ChatSession) or a task host (taskhost/chatClient.ts). */
export interface Chat {
  readonly info: ChatSessionInfo;
  reply(user: string, opts?: ReplyOptions): Promise<ChatReply>;
  dispose(): Promise<void>;
}

const DEFAULT_CONTEXT = 4096;
const DEFAULT_MAX_TOKENS = 512;

export class ChatSession implements Chat {
  private readonly history: ChatMessage[] = [];

  private constructor(
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly seq: LlamaContextSequence,
    /** The GGUF file, and where it came from. */
    readonly file: ModelFile,
    system: string | undefined,
  ) {
    if (system !== undefined && system !== '') this.history.push({ role: 'system', content: system });
  }

  /** The model's chat template (the GGUF's `tokenizer.chat_template`), null when it has none. */
  private get template(): string | null {
    const meta = this.model.fileInfo.metadata as { tokenizer?: { chat_template?: unknown } };
    return typeof meta.tokenizer?.chat_template === 'string' ? meta.tokenizer.chat_template : null;
  }

  /** The file, model name, backend, context sizes and whether there is a chat template. */
  get info(): ChatSessionInfo {
    const meta = this.model.fileInfo.metadata as { general?: { name?: unknown } };
    const t = this.template;
    return {
      gguf: this.file.gguf,
      ggufFrom: this.file.from,
      name: typeof meta.general?.name === 'string' && meta.general.name !== '' ? meta.general.name : basename(this.file.gguf),
      backend: this.backend,
      contextSize: this.context.contextSize,
      trainContextSize: this.model.trainContextSize,
      hasChatTemplate: t !== null && t.trim() !== '',
      templateHead: t === null ? null : t.slice(0, 200),
    };
  }

  /**
   * Resolves the model (converting a checkpoint into the cache), starts llama.cpp and loads it.
   * @throws as resolveModelFile, startLlama, loadGgufModel; CancelledError during a conversion
   */
  static async open(opts: ChatOpenOptions, ctx: JobContext = {}): Promise<ChatSession> {
    const file = await resolveModelFile(opts.model, { cacheDir: opts.cacheDir, type: opts.type }, ctx);
    const llama = await startLlama(opts.backend, ctx.onLog);
    const model = await loadGgufModel(llama, file.gguf);
    try {
      const train = model.trainContextSize || DEFAULT_CONTEXT;
      const context = await model.createContext({ contextSize: opts.contextSize ?? Math.min(train, DEFAULT_CONTEXT), ...(opts.threads ? { threads: opts.threads } : {}) });
      const session = new ChatSession(llama, model, context, context.getSequence(), file, opts.system);
      session.history.push(...(opts.history ?? []).filter((m) => m.role !== 'system'));
      return session;
    } catch (e) {
      await model.dispose();
      throw e;
    }
  }

  /** "llama.cpp cpu" / "llama.cpp cuda" … */
  get backend(): string {
    return llamaBackendName(this.llama);
  }

  /** The conversation so far (system message first when there is one). */
  get messages(): readonly ChatMessage[] {
    return this.history;
  }

  /**
   * The prompt text and ids for the conversation followed by `user` and the assistant's turn.
   * @throws ChatVecError Unsupported when the model has no usable chat template
   */
  async renderPrompt(user: string): Promise<{ text: string; tokens: number[] }> {
    const text = await renderChatPrompt(this.template, [...this.history, { role: 'user', content: user }], { bos_token: this.model.tokens.bosString, eos_token: this.model.tokens.eosString });
    // As apply_chat_template(tokenize=True): the template writes BOS itself where it wants one.
    return { text, tokens: [...this.model.tokenize(text, true)] as number[] };
  }

  /**
   * Sends `user`, streams the reply, and adds both to the conversation (a cancelled turn is
   * dropped, so the next one starts from the conversation before it).
   * @throws ChatVecError Unsupported (no chat template)
   */
  async reply(user: string, opts: ReplyOptions = {}): Promise<ChatReply> {
    const prompt = await this.renderPrompt(user);
    const maxTokens = opts.maxTokens ?? DEFAULT_MAX_TOKENS;
    const start = performance.now();
    // Keep what the cache already holds of this prompt; at least one token must be evaluated.
    const reuse = Math.min(this.seq.compareContextTokens(prompt.tokens as Token[]).firstDifferentIndex, prompt.tokens.length - 1);
    if (reuse < this.seq.nextTokenIndex) await this.seq.eraseContextTokenRanges([{ start: reuse, end: this.seq.nextTokenIndex }]);
    const tokens: number[] = [];
    let text = '';
    let stop: ChatReply['stop'] = 'maxTokens';
    const temperature = opts.temperature ?? 0;
    if (opts.signal?.cancelled) stop = 'cancelled';
    else if (maxTokens > 0) {
      for await (const token of this.seq.evaluate(prompt.tokens.slice(reuse) as Token[], { temperature, ...(temperature > 0 && opts.seed !== undefined ? { seed: opts.seed } : {}) })) {
        if (this.model.isEogToken(token)) {
          stop = 'eog';
          break;
        }
        tokens.push(token);
        const full = this.model.detokenize(tokens as Token[], false);
        // A character split across tokens decodes as U+FFFD until its last byte arrives.
        if (!full.endsWith('\uFFFD')) {
          if (full.length > text.length && full.startsWith(text)) opts.onText?.(full.slice(text.length), tokens.length);
          text = full;
        }
        if (opts.signal?.cancelled) {
          stop = 'cancelled';
          break;
        }
        if (tokens.length >= maxTokens) break;
      }
    }
    const final = this.model.detokenize(tokens as Token[], false);
    if (final.length > text.length && final.startsWith(text)) opts.onText?.(final.slice(text.length), tokens.length);
    if (stop !== 'cancelled') this.history.push({ role: 'user', content: user }, { role: 'assistant', content: final });
    const seconds = (performance.now() - start) / 1000;
    return { prompt: prompt.text, promptTokens: prompt.tokens, text: final, tokens, stop, seconds, tokensPerSecond: seconds > 0 ? tokens.length / seconds : 0 };
  }

  /** Frees the context and the model (llama.cpp itself stays for the next one: llamaRuntime.ts). */
  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }
}
