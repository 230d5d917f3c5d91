/**
 * llama.cpp through node-llama-cpp, loaded on first use: its prebuilt binaries only (never a
 * build from source, which needs a compiler and minutes), the backend chosen as the tool's
 * `--backend` setting says. Every failure to load becomes one ChatVecError line.
 */
import type { Llama, LlamaModel } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { ChatVecError } from '../errors';
import { getPlatform } from '../io/env';
import { importLlamaCppPackage } from '../io/llamaCppPackage';
import type { BackendChoice, LogSink } from '../jobs/types';

/** The first line of an error's message (node-llama-cpp's can be long build logs). */
function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'unknown error';
}

/** One llama.cpp per backend choice for the life of the process: starting one takes seconds. */
const started = new Map<BackendChoice, Promise<Llama>>();
/** Where llama.cpp's own warnings go: the log of the job that asked for llama.cpp last. */
let logSink: LogSink | undefined;

/**
 * llama.cpp, started on first use and shared from then on (never disposed: it lives as long as
 * the process). `cpu`: the CPU build; `auto`: a GPU build (CUDA, Vulkan, Metal) when one is
 * installed and finds a device, else the CPU build; `gpu`: a GPU build or an error.
 * @throws ChatVecError Unsupported when node-llama-cpp is not installed, no prebuilt binary of it
 *   loads on this platform, or (`gpu`) none of its GPU builds does
 */
export function startLlama(backend: BackendChoice = 'auto', onLog?: LogSink): Promise<Llama> {
  logSink = onLog;
  let p = started.get(backend);
  if (!p) {
    p = createLlama(backend);
    started.set(backend, p);
    // A failure is not kept: the next job tries again (and reports the same line if it fails).
    p.catch(() => started.delete(backend));
  }
  return p;
}

async function createLlama(backend: BackendChoice): Promise<Llama> {
  let mod;
  try {
    mod = await importLlamaCppPackage();
  } catch (e) {
    throw new ChatVecError('Unsupported', `node-llama-cpp (llama.cpp for Node) is not installed, so models cannot be run here: ${firstLine(e)}`);
  }
  let llama: Llama;
  try {
    llama = await mod.getLlama({
      build: 'never',
      gpu: backend === 'cpu' ? false : 'auto',
      progressLogs: false,
      logLevel: mod.LlamaLogLevel.warn,
      // llama.cpp's errors go to the job's log as warnings (the job's own error says what failed);
      // its warnings ("possible training context overflow" …) as debug lines.
      logger: (level, message) => {
        const text = message.trim();
        if (text) logSink?.(level === mod.LlamaLogLevel.error || level === mod.LlamaLogLevel.fatal ? 'warn' : 'debug', `llama.cpp: ${text}`);
      },
    });
  } catch (e) {
    throw new ChatVecError('Unsupported', `llama.cpp could not be loaded (node-llama-cpp has no prebuilt binary that loads on ${getPlatform()}${backend === 'cpu' ? '' : ' with a GPU or on the CPU'}): ${firstLine(e)}`);
  }
  if (backend === 'gpu' && llama.gpu === false) {
    await llama.dispose();
    throw new ChatVecError('Unsupported', '--backend gpu: no GPU build of llama.cpp (CUDA, Vulkan, Metal) loads here; use --backend cpu or auto');
  }
  capThreadsAtCores(llama);
  return llama;
}

/**
 * On the CPU, node-llama-cpp (3.21.1) gives each context at least 4 threads, more than the cores
 * of a small machine; llama.cpp's threads wait for each other by spinning, so on 2 cores 4 threads
 * starve each other: 64 tokens of the tiny demo model took 32 s (62 CPU-s) with 4 threads and 2.3 s
 * with 2. So the most threads a context gets is the cores it counts as useful for math, which is
 * also the default; `--threads` (the `chatVector.threads` setting) can ask for fewer.
 */
function capThreadsAtCores(llama: Llama): void {
  if (llama.gpu === false && llama.cpuMathCores > 0 && llama.maxThreads > llama.cpuMathCores) llama.maxThreads = llama.cpuMathCores;
}

/** "llama.cpp cpu" / "llama.cpp cuda" … for result lines. */
export function llamaBackendName(llama: Llama): string {
  return `llama.cpp ${llama.gpu === false ? 'cpu' : llama.gpu}`;
}

/**
 * Loads a GGUF file into llama.cpp (all layers on the GPU when it has one).
 * @throws ChatVecError BadCheckpoint naming the file when llama.cpp refuses it
 */
export async function loadGgufModel(llama: Llama, file: string): Promise<LlamaModel> {
  try {
    return await llama.loadModel({ modelPath: file });
  } catch (e) {
    throw new ChatVecError('BadCheckpoint', `${file}: llama.cpp cannot load this GGUF file: ${firstLine(e)}`);
  }
}
