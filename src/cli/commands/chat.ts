/**
 * `chatvec chat MODEL`: a terminal chat in llama.cpp with the model's own chat template, run in
 * this process, or with `--via-host` in a task host's chat session (the path the VS Code chat
 * panel takes). `--prompt` answers one message and exits, for scripts.
 */
import readline from 'node:readline';
import type { Command } from 'commander';
import { ChatVecError } from '../../core/errors';
import { userCacheDir } from '../../core/io/files';
import type { Chat } from '../../core/tryit/chatSession';
import { openChat } from '../jobs';
import { parseDecimal, printableLines } from '../../protocol/displayFormat';
import { parseBackend, parseThreads } from '../options';
import { progressMode } from '../jobCommand';
import { withJobContext } from '../progress';
import { action, interruptSignal } from '../run';
import { TRY_BACKEND_HELP } from './eval';
import { parseGgufType } from './gguf';

interface ChatCli {
  system?: string;
  prompt?: string;
  maxTokens?: string;
  temperature?: string;
  seed?: string;
  context?: string;
  type?: string;
  backend?: string;
  threads?: string;
  json?: boolean;
  quiet?: boolean;
}

function wholeNumber(what: string, s: string | undefined, min: number): number | undefined {
  if (s === undefined) return undefined;
  const v = /^\s*\d+\s*$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(v) || v < min) throw new ChatVecError('InvalidArgument', `${what} "${s}" must be a whole number ≥ ${min}`);
  return v;
}

function parseTemperature(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const v = parseDecimal(s);
  if (v === null || v < 0) throw new ChatVecError('InvalidArgument', `--temperature "${s}" must be a number ≥ 0 (0: greedy)`);
  return v;
}

export function registerChat(program: Command): void {
  program
    .command('chat')
    .description('chat with a model in the terminal (llama.cpp, the model\'s own chat template, streamed replies; greedy unless --temperature)')
    .argument('<model>', 'a checkpoint folder (converted to GGUF into the cache once per content) or a .gguf file')
    .option('--system <text>', 'a system message before the conversation')
    .option('--prompt <text>', 'answer this one message, print the reply and exit (for scripts)')
    .option('--max-tokens <n>', 'most tokens per reply (default 512)')
    .option('--temperature <t>', '0 (default): greedy, the same reply every time; above 0: sampled')
    .option('--seed <n>', 'sampling seed (with --temperature)')
    .option('--context <n>', 'context size in tokens (default: the training context, at most 4096)')
    .option('--type <type>', 'weight type when converting a checkpoint: f32 | f16 (default) | bf16 | q8_0')
    .option('--backend <kind>', TRY_BACKEND_HELP)
    .option('--threads <n>', 'llama.cpp threads (default and most: the cores)')
    .option('--json', 'with --prompt: print the rendered prompt, its token ids and the reply as one JSON line')
    .option('--quiet', 'print nothing but replies and errors')
    .action(
      action(async (model: string, o: ChatCli) => {
        if (o.json && o.prompt === undefined) throw new ChatVecError('InvalidArgument', '--json needs --prompt (an interactive chat prints text)');
        const reply = {
          maxTokens: wholeNumber('--max-tokens', o.maxTokens, 1),
          temperature: parseTemperature(o.temperature),
          seed: wholeNumber('--seed', o.seed, 0),
        };
        const mode = progressMode(o);
        const session: Chat = await withJobContext(
          mode === 'json' ? 'quiet' : mode,
          () => (l, m) => mode === 'auto' && (l !== 'debug' || process.env.CHATVEC_DEBUG !== undefined) && process.stderr.write(`${l}: ${printableLines(m)}\n`),
          (ctx) =>
            openChat({ model, cacheDir: userCacheDir(), system: o.system, contextSize: wholeNumber('--context', o.context, 16), type: parseGgufType(o.type), backend: parseBackend(o.backend), threads: parseThreads(o.threads) }, ctx),
        );
        try {
          if (o.prompt !== undefined) await oneShot(session, o.prompt, reply, o.json === true);
          else await interactive(session, reply, mode === 'auto');
        } finally {
          await session.dispose();
        }
      }),
    );
}

type Reply = { maxTokens?: number; temperature?: number; seed?: number };

async function oneShot(session: Chat, prompt: string, opts: Reply, json: boolean): Promise<void> {
  const signal = interruptSignal();
  try {
    const r = await session.reply(prompt, { ...opts, signal, onText: json ? undefined : (t) => process.stdout.write(t) });
    if (json) process.stdout.write(JSON.stringify({ type: 'result', backend: session.info.backend, gguf: session.info.gguf, prompt: r.prompt, promptTokens: r.promptTokens, reply: r.text, replyTokens: r.tokens, stop: r.stop, tokensPerSecond: r.tokensPerSecond }) + '\n');
    else process.stdout.write('\n');
    if (r.stop === 'cancelled') process.exitCode = 130;
  } finally {
    signal.dispose();
  }
}

async function interactive(session: Chat, opts: Reply, chatty: boolean): Promise<void> {
  const tty = process.stdin.isTTY === true;
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: tty });
  const state = { cancelled: false, generating: false };
  // Ctrl-C: cancels the reply being written; at the prompt, ends the chat.
  const onInterrupt = () => {
    if (state.generating) state.cancelled = true;
    else rl.close();
  };
  rl.on('SIGINT', onInterrupt);
  process.on('SIGINT', onInterrupt);
  if (chatty) process.stderr.write(`chatvec: chatting with ${session.info.gguf} (${session.info.backend}); Ctrl-C cancels a reply, Ctrl-D or Ctrl-C at the prompt ends\n`);
  try {
    rl.setPrompt(tty ? '> ' : '');
    rl.prompt();
    for await (const line of rl) {
      if (line.trim() === '') {
        rl.prompt();
        continue;
      }
      state.cancelled = false;
      state.generating = true;
      rl.pause();
      const r = await session.reply(line, { ...opts, signal: state, onText: (t) => process.stdout.write(t) });
      state.generating = false;
      process.stdout.write(r.stop === 'cancelled' ? ' [cancelled]\n' : '\n');
      if (chatty && tty) process.stderr.write(`(${r.tokens.length} tokens, ${r.tokensPerSecond.toFixed(1)} tokens/s${r.stop === 'maxTokens' ? ', stopped at --max-tokens' : ''})\n`);
      rl.resume();
      rl.prompt();
    }
  } finally {
    process.off('SIGINT', onInterrupt);
    rl.close();
  }
}
