/**
 * One task host process as the client sees it: forked with an IPC channel, a JSON-RPC connection
 * over that channel, its stdout/stderr as log lines, and one `exited` promise that says how it
 * ended. The client (client.ts) decides what an exit means (crash or requested) and when to start
 * another.
 */
import { type ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createMessageConnection, IPCMessageReader, IPCMessageWriter, type Logger, type MessageConnection } from 'vscode-jsonrpc/node';

/** How a host process ended. */
export interface HostExit {
  readonly pid: number;
  /** Null when a signal ended it. */
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The last lines it wrote to stderr (a stack trace, usually, when it crashed). */
  readonly stderrTail: string;
}

/** What to start and where its output goes. */
export interface HostSpawnOptions {
  readonly script: string;
  readonly args: readonly string[];
  readonly execPath: string;
  readonly execArgv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** stdout/stderr lines of the host. */
  readonly onOutput: (stream: 'stdout' | 'stderr', line: string) => void;
  /** Transport trouble the JSON-RPC library reports. */
  readonly onTransportLog: (message: string) => void;
}

const STDERR_TAIL_LINES = 20;

/** A forked task host and its connection. */
export class HostProcess {
  readonly connection: MessageConnection;
  readonly pid: number;
  /** Resolves once the process has exited and its output has been read. Never rejects. */
  readonly exited: Promise<HostExit>;
  private exitInfo: HostExit | null = null;
  private readonly child: ChildProcess;

  constructor(o: HostSpawnOptions) {
    this.child = fork(o.script, [...o.args], {
      execPath: o.execPath,
      execArgv: [...o.execArgv],
      env: o.env,
      // stdin is not used; stdout/stderr are read so a chatty host can never block on a full pipe.
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    const tail: string[] = [];
    const readLines = (stream: NodeJS.ReadableStream | null, name: 'stdout' | 'stderr') => {
      if (!stream) return Promise.resolve();
      // A pipe torn down with the process (ECONNRESET) ends the lines; 'exit' says what happened.
      stream.on('error', () => {});
      const rl = createInterface({ input: stream, crlfDelay: Infinity });
      rl.on('line', (line) => {
        if (name === 'stderr') {
          tail.push(line);
          if (tail.length > STDERR_TAIL_LINES) tail.shift();
        }
        o.onOutput(name, line);
      });
      return new Promise<void>((r) => rl.once('close', () => r()));
    };
    const outputDone = Promise.all([readLines(this.child.stdout, 'stdout'), readLines(this.child.stderr, 'stderr')]);
    // A failed spawn (bad execPath) has no pid and emits 'error' instead of 'exit'.
    this.pid = this.child.pid ?? -1;
    const exitEvent = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      this.child.once('exit', (code, signal) => resolve({ code, signal }));
      this.child.once('error', (e) => {
        if (this.child.pid === undefined) {
          tail.push(`cannot start the task host: ${e.message}`);
          resolve({ code: null, signal: null });
        }
      });
    });
    this.exited = exitEvent.then(async ({ code, signal }) => {
      // Give the pipes a moment to deliver the last stderr lines (the crash's stack trace).
      await Promise.race([outputDone, new Promise((r) => setTimeout(r, 200))]);
      this.exitInfo = { pid: this.pid, exitCode: code, signal, stderrTail: tail.join('\n') };
      this.connection.dispose();
      return this.exitInfo;
    });
    const logger: Logger = { error: o.onTransportLog, warn: o.onTransportLog, info: () => {}, log: () => {} };
    this.connection = createMessageConnection(new IPCMessageReader(this.child), new IPCMessageWriter(this.child), logger);
    // Errors on the channel (EPIPE while the host dies) are followed by 'exit', which tells more.
    this.child.on('error', () => {});
  }

  /** Null while it runs. */
  get exit(): HostExit | null {
    return this.exitInfo;
  }

  /** Sends a signal (default SIGKILL); harmless once it has exited. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.exitInfo === null && this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** Closes the IPC channel; the host exits when it notices. */
  disconnect(): void {
    if (this.child.connected) this.child.disconnect();
  }

  /** Resolves true if the process exits within `ms`. */
  async waitForExit(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
    try {
      return await Promise.race([this.exited.then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** "exit code 3" or "killed by SIGKILL", for messages. */
export function describeExit(e: Pick<HostExit, 'exitCode' | 'signal'>): string {
  if (e.signal) return `killed by ${e.signal}`;
  if (e.exitCode === null) return 'could not be started';
  return `exit code ${e.exitCode}`;
}

/** Where the bundled host is: beside this file's bundle (dist/), or dist/ when run from source. */
export function defaultHostScript(): string {
  if (process.env.CHATVEC_TASKHOST_SCRIPT) return process.env.CHATVEC_TASKHOST_SCRIPT;
  const beside = path.join(__dirname, 'taskhost.js');
  if (fs.existsSync(beside)) return beside;
  return path.resolve(__dirname, '../../dist/taskhost.js');
}
