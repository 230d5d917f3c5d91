/**
 * `chatvec eval`: the mean negative log-likelihood (nats per token) and perplexity of a model on a
 * text, computed by llama.cpp over sliding windows (slidingWindow.ts). Probabilities come from
 * llama.cpp's softmax over the full vocabulary (temperature 1, no truncation), read for the token
 * that actually follows. The KV cache is kept in float32 and flash attention off, so that the
 * numbers are those of the weights (llama.cpp's f16 cache moves NLLs by ~1e-3).
 */
import type { LlamaContextSequence } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { CancelledError } from '../errors';
import type { GgufFileType } from '../gguf/llama';
import { ProgressMeter } from '../jobs/progressMeter';
import type { BackendChoice, JobContext } from '../jobs/types';
import { evalTokens, vocabSize } from './evalInput';
import { llamaBackendName, loadGgufModel, startLlama } from './llamaRuntime';
import { resolveModelFile } from './modelFile';
import { type EvalWindow, slidingWindows } from './slidingWindow';

export interface EvalOptions {
  /** A checkpoint folder (converted into the cache) or a .gguf file. */
  readonly model: string;
  /** A UTF-8 text file, tokenized by the model. */
  readonly text?: string;
  /** A JSON file of token ids (instead of `text`). */
  readonly ids?: string;
  /** Tokens per window; default min(the model's training context, 1024). */
  readonly context?: number;
  /** Tokens a window advances by; default context / 2 (rounded down). */
  readonly stride?: number;
  /** The tool's cache folder (GGUF conversions go to its `gguf/` folder). */
  readonly cacheDir: string;
  /** Weight type of a conversion; default F16. */
  readonly type?: GgufFileType;
  readonly backend?: BackendChoice;
  /** llama.cpp threads; default and most: the cores (see llamaRuntime.ts). */
  readonly threads?: number;
}

export interface EvalReport {
  readonly model: string;
  /** The GGUF file evaluated, and whether it was given, reused from the cache or converted now. */
  readonly gguf: string;
  readonly ggufFrom: 'gguf' | 'cache' | 'converted';
  readonly context: number;
  readonly stride: number;
  readonly windows: number;
  /** The evaluated ids (with the BOS token a text got). */
  readonly ids: readonly number[];
  /**
   * nlls[i]: −ln p(ids[i + 1] | the window before it), in nats; ids.length − 1 of them. null for
   * a token no window scores: with stride = context, the first token of every window (as in
   * Hugging Face's loop, where a window's first token has nothing before it).
   */
  readonly nlls: readonly (number | null)[];
  /** How many tokens were scored (the non-null nlls). */
  readonly scored: number;
  /** Mean of the scored nlls (every scored token weighs the same, whatever its window). */
  readonly meanNll: number;
  /** exp(meanNll). */
  readonly perplexity: number;
  readonly backend: string;
  readonly seconds: number;
  /** Scored tokens per second of evaluation (loading and conversion excluded). */
  readonly tokensPerSecond: number;
  readonly warnings: readonly string[];
}

const DEFAULT_CONTEXT = 1024;
/** The smallest positive float32: a probability that underflowed to 0 counts as this. */
const MIN_PROBABILITY = 1.401298464324817e-45;

/**
 * Evaluates one model.
 * @throws ChatVecError InvalidArgument (inputs, window sizes), Unsupported (llama.cpp cannot load,
 *   a checkpoint that cannot be converted), BadCheckpoint; CancelledError when ctx.signal is raised
 */
export async function runEval(opts: EvalOptions, ctx: JobContext = {}): Promise<EvalReport> {
  const cancelled = () => ctx.signal?.cancelled === true;
  const file = await resolveModelFile(opts.model, { cacheDir: opts.cacheDir, type: opts.type }, ctx);
  if (cancelled()) throw new CancelledError();
  const llama = await startLlama(opts.backend, ctx.onLog);
  const model = await loadGgufModel(llama, file.gguf);
  try {
    const ids = evalTokens(model, opts);
    const context = opts.context ?? Math.min(model.trainContextSize || DEFAULT_CONTEXT, DEFAULT_CONTEXT);
    const stride = opts.stride ?? Math.max(1, Math.floor(context / 2));
    const windows = slidingWindows(ids.length, context, stride);
    if (context > model.trainContextSize && model.trainContextSize > 0) ctx.onLog?.('warn', `--context ${context} is longer than the model's training context (${model.trainContextSize})`);
    const lctx = await model.createContext({
      contextSize: Math.min(context, ids.length),
      ...(opts.threads ? { threads: opts.threads } : {}),
      experimentalKvCacheKeyType: 'F32',
      experimentalKvCacheValueType: 'F32',
      flashAttention: false,
    });
    const seq = lctx.getSequence();
    const vocab = vocabSize(model);
    const nlls = new Array<number | null>(ids.length - 1).fill(null);
    let underflow = 0;
    // Progress in tokens evaluated (a window's first token is fed but predicts nothing scored before it).
    const meter = new ProgressMeter('eval', windows.reduce((a, w) => a + w.end - w.begin - 1, 0), ctx.onProgress, 'items');
    const start = performance.now();
    let fed = 0;
    for (const w of windows) {
      if (cancelled()) throw new CancelledError();
      underflow += await scoreWindow(seq, ids, w, vocab, nlls);
      meter.add(w.end - w.begin - 1);
      fed += w.end - w.begin - 1;
      // One event per window (a window is hundreds of tokens: seconds on a real model); the rate
      // is in the message because ProgressEvent's rate is in bytes.
      const secs = (performance.now() - start) / 1000;
      meter.flush(secs > 0 ? `scoring, ${(fed / secs).toFixed(1)} tokens/s` : 'scoring');
    }
    const seconds = (performance.now() - start) / 1000;
    meter.finish('done');
    const scored = nlls.filter((x): x is number => x !== null);
    const meanNll = scored.reduce((a, b) => a + b, 0) / scored.length;
    const warnings = underflow ? [`${underflow} tokens had probability 0 in float32 and count as ${-Math.log(MIN_PROBABILITY)} nats`] : [];
    for (const w of warnings) ctx.onLog?.('warn', w);
    await lctx.dispose();
    return {
      model: opts.model, gguf: file.gguf, ggufFrom: file.from, context, stride, windows: windows.length, ids, nlls, scored: scored.length, meanNll, perplexity: Math.exp(meanNll),
      backend: llamaBackendName(llama), seconds, tokensPerSecond: seconds > 0 ? scored.length / seconds : 0, warnings,
    };
  } finally {
    await model.dispose();
  }
}

/**
 * Evaluates one window from an empty cache and writes the NLL of each scored token into `nlls`.
 * Each full-vocabulary probability list is dropped as soon as its one value is read, so memory
 * stays at one list per token being sampled, whatever the window's length.
 * @returns how many scored tokens had probability 0
 */
async function scoreWindow(seq: LlamaContextSequence, ids: readonly number[], w: EvalWindow, vocab: number, nlls: (number | null)[]): Promise<number> {
  await seq.clearHistory();
  const probe = { generateNext: { probabilities: true, options: { temperature: 1, topK: vocab, topP: 1, minP: 0 } } };
  // Position p predicts p + 1: the logits of positions scoredFrom − 1 … end − 2 are read.
  const input = ids.slice(w.begin, w.end).map((id, k) => (w.begin + k + 1 >= w.scoredFrom && w.begin + k + 1 < w.end ? ([id, probe] as const) : id));
  let underflow = 0;
  await seq.controlledEvaluate(input as never, {
    onTokenResult(k, result) {
      const p = w.begin + k;
      const prob = result.next.probabilities?.get(ids[p + 1]! as never) ?? 0;
      if (prob <= 0) underflow++;
      nlls[p] = -Math.log(Math.max(prob, MIN_PROBABILITY));
      delete (result.next as { probabilities?: unknown }).probabilities;
    },
  });
  return underflow;
}
