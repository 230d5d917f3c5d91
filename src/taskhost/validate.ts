/**
 * Structural checks of request parameters. JSON-RPC delivers whatever a client sent; the engine
 * trusts its TypeScript types, so a number where a path belongs would surface as a confusing
 * TypeError deep in a job. Each field is checked here and a bad one is named in an
 * InvalidArgument error. Unknown fields are refused too, which catches a client and host of
 * different versions. The field tables are typed against the option interfaces, so adding an
 * option in core/jobs/types.ts fails type-checking here until it gets a check.
 */
import type { ApplyOptions, CommonJobOptions, CreateDemoOptions, DiffOptions, EnergyAtRankOptions, ExtractOptions, MergeOptions } from '../core/jobs/types';
import { ChatVecError } from '../core/errors';
import { describeThreadLimit, maxThreads } from '../core/jobs/threadLimit';
import { FLOAT_DTYPES } from '../core/safetensors/dtype';
import { GGUF_FILE_TYPES } from '../core/gguf/llama';
import type { DownloadJobOptions } from '../core/download/download';
import type { EvalOptions } from '../core/tryit/evaluate';
import type { SweepOptions } from '../core/tryit/sweep';
import type { ChatCancelParams, ChatOpenParams, ChatSendParams, ConfigureParams, JobKind, JobOptionsOf, RecipeCheckParams, RecipePlanParams, RowStatsParams } from '../protocol/taskHost';
import { MAX_JOB_CONCURRENCY } from './jobQueue';

type Check = (v: unknown) => string | null;

const str: Check = (v) => (typeof v === 'string' && v.length > 0 ? null : 'a non-empty string');
const bool: Check = (v) => (typeof v === 'boolean' ? null : 'true or false');
const posInt: Check = (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 1 ? null : 'a whole number ≥ 1');
/** posInt up to a limit: worker threads (core/jobs/threadLimit.ts) and jobs at once (jobQueue.ts). */
const posIntUpTo =
  (max: () => number, limit: () => string): Check =>
  (v) =>
    posInt(v) === null && (v as number) <= max() ? null : `a whole number ≥ 1 and at most ${limit()}`;
const threadCount: Check = posIntUpTo(maxThreads, describeThreadLimit);
const concurrency: Check = posIntUpTo(() => MAX_JOB_CONCURRENCY, () => String(MAX_JOB_CONCURRENCY));
const posNum: Check = (v) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? null : 'a positive number');
const strList: Check = (v) => (Array.isArray(v) && v.every((x) => str(x) === null) ? null : 'a list of non-empty strings');
const numList: Check = (v) => (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x)) ? null : 'a list of finite numbers');
const oneOf =
  (values: readonly string[]): Check =>
  (v) =>
    typeof v === 'string' && values.includes(v) ? null : `one of ${values.join(', ')}`;
/** Recipe text: may be empty (a new document), bounded like a recipe file the engine reads. */
const MAX_RECIPE_CHARS = 16 * 1024 * 1024;
const recipeText: Check = (v) => (typeof v === 'string' && v.length <= MAX_RECIPE_CHARS ? null : `a string of at most ${MAX_RECIPE_CHARS} characters`);
const int: Check = (v) => (typeof v === 'number' && Number.isSafeInteger(v) ? null : 'a whole number');
const MAX_ROWS = 4096;
const rowList: Check = (v) =>
  Array.isArray(v) && v.length >= 1 && v.length <= MAX_ROWS && v.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)
    ? null
    : `a list of 1 to ${MAX_ROWS} whole numbers ≥ 0`;
const rowPairs: Check = (v) =>
  Array.isArray(v) && v.every((p) => Array.isArray(p) && p.length === 2 && p.every((x) => Number.isInteger(x) && (x as number) >= 0))
    ? null
    : 'a list of [cpRow, chatRow] pairs of whole numbers ≥ 0';
const rankPairs: Check = (v) =>
  Array.isArray(v) && v.every((p) => Array.isArray(p) && p.length === 2 && str(p[0]) === null && posInt(p[1]) === null)
    ? null
    : 'a list of [module pattern, rank] pairs';
const fraction: Check = (v) => (typeof v === 'number' && v > 0 && v <= 1 ? null : 'a number in (0, 1]');

type Table<T> = { readonly [K in keyof Required<T>]: { readonly check: Check; readonly required?: true } };

const common: Table<CommonJobOptions> = {
  threads: { check: threadCount },
  backend: { check: oneOf(['auto', 'cpu', 'gpu']) },
};

const ggufType: Check = oneOf(GGUF_FILE_TYPES);

/** What `evalModel` and each ratio of `sweep` score (EvalOptions but the model). */
const evaluation: Table<Omit<EvalOptions, 'model'>> = {
  ...common,
  text: { check: str },
  ids: { check: str },
  context: { check: posInt },
  stride: { check: posInt },
  cacheDir: { check: str, required: true },
  type: { check: ggufType },
};

const TABLES: { readonly [K in JobKind]: Table<JobOptionsOf<K>> } = {
  diff: {
    ...common,
    a: { check: str, required: true },
    b: { check: str },
    cacheDir: { check: str },
  } satisfies Table<DiffOptions>,
  extract: {
    ...common,
    base: { check: str, required: true },
    chat: { check: str, required: true },
    out: { check: str, required: true },
    dtype: { check: oneOf(FLOAT_DTYPES) },
    overwrite: { check: bool },
    skipEmbed: { check: bool },
    maxShardBytes: { check: posNum },
    allowNonFinite: { check: bool },
    rank: { check: posInt },
    rankFor: { check: rankPairs },
    energy: { check: fraction },
  } satisfies Table<ExtractOptions>,
  apply: {
    ...common,
    target: { check: str, required: true },
    out: { check: str, required: true },
    vectors: { check: strList },
    base: { check: str },
    chats: { check: strList },
    ratios: { check: numList },
    skipEmbed: { check: bool },
    specialTokens: { check: rowPairs },
    tokenizerSource: { check: oneOf(['cp', 'base', 'union']) },
    maxShardBytes: { check: posNum },
    dtype: { check: oneOf(FLOAT_DTYPES) },
    overwrite: { check: bool },
    allowNonFinite: { check: bool },
  } satisfies Table<ApplyOptions>,
  merge: {
    ...common,
    recipe: { check: str, required: true },
    out: { check: str, required: true },
    intermediateDir: { check: str },
    overwrite: { check: bool },
    maxShardBytes: { check: posNum },
    allowNonFinite: { check: bool },
  } satisfies Table<MergeOptions>,
  createDemo: {
    dir: { check: str, required: true },
    preset: { check: oneOf(['tiny', 'small', '1b']), required: true },
    seed: { check: int },
  } satisfies Table<CreateDemoOptions>,
  downloadModel: {
    id: { check: str, required: true },
    include: { check: strList },
    token: { check: str },
  } satisfies Table<DownloadJobOptions>,
  evalModel: {
    ...evaluation,
    model: { check: str, required: true },
  } satisfies Table<EvalOptions>,
  sweep: {
    ...evaluation,
    target: { check: str, required: true },
    base: { check: str, required: true },
    chat: { check: str, required: true },
    ratios: { check: numList, required: true },
    out: { check: str, required: true },
    keep: { check: oneOf(['all', 'best']) },
    skipEmbed: { check: bool },
    overwrite: { check: bool },
  } satisfies Table<SweepOptions>,
  energyAtRank: {
    ...common,
    base: { check: str, required: true },
    chat: { check: str, required: true },
    rank: { check: posInt, required: true },
    skipEmbed: { check: bool },
    cacheDir: { check: str },
  } satisfies Table<EnergyAtRankOptions>,
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkObject(what: string, value: unknown, table: Readonly<Record<string, { check: Check; required?: true }>>): void {
  if (!isObject(value)) throw new ChatVecError('InvalidArgument', `${what} must be an object`);
  // Own properties only: `key in table` would let "constructor", "toString" or "__proto__" through.
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(table, key)) throw new ChatVecError('InvalidArgument', `${what} has an unknown field ${JSON.stringify(key).slice(0, 80)} (known: ${Object.keys(table).join(', ')})`);
  }
  for (const [key, rule] of Object.entries(table)) {
    const v = Object.hasOwn(value, key) ? value[key] : undefined;
    if (v === undefined || v === null) {
      if (rule.required) throw new ChatVecError('InvalidArgument', `${what}.${key} is missing`);
      continue;
    }
    const expected = rule.check(v);
    if (expected) throw new ChatVecError('InvalidArgument', `${what}.${key} must be ${expected}, got ${JSON.stringify(v)?.slice(0, 80)}`);
  }
}

/** A job id: printable, short, so it can appear in logs and file names. */
function checkJobId(v: unknown, what: string): string {
  if (typeof v !== 'string' || !/^[\w.:@/+-]{1,128}$/.test(v)) {
    throw new ChatVecError('InvalidArgument', `${what} must be 1–128 characters of letters, digits and _.:@/+-, got ${JSON.stringify(v)?.slice(0, 80)}`);
  }
  return v;
}

/**
 * Checks the parameters of a job request and returns them typed. Null fields are dropped (JSON has
 * no `undefined`, and the engine treats a missing option as "use the default").
 * @throws ChatVecError InvalidArgument naming the field
 */
export function validateJobParams<K extends JobKind>(kind: K, params: unknown): { jobId: string; options: JobOptionsOf<K> } {
  if (!isObject(params)) throw new ChatVecError('InvalidArgument', `${kind}: parameters must be an object { jobId, options }`);
  for (const key of Object.keys(params)) {
    if (key !== 'jobId' && key !== 'options') throw new ChatVecError('InvalidArgument', `${kind}: unknown parameter "${key}" (expected jobId, options)`);
  }
  const jobId = checkJobId(params.jobId, `${kind}: jobId`);
  checkObject(`${kind}: options`, params.options, TABLES[kind] as Readonly<Record<string, { check: Check; required?: true }>>);
  const options = Object.fromEntries(Object.entries(params.options as Record<string, unknown>).filter(([, v]) => v !== null && v !== undefined));
  return { jobId, options: options as unknown as JobOptionsOf<K> };
}

/** Checks `inspect` parameters. @throws ChatVecError InvalidArgument */
export function validateInspectParams(params: unknown): { path: string; jobId: string | undefined } {
  checkObject('inspect: parameters', params, { path: { check: str, required: true }, jobId: { check: (v) => (checkJobId(v, 'inspect: jobId'), null) } });
  const p = params as { path: string; jobId?: string | null };
  return { path: p.path, jobId: p.jobId ?? undefined };
}

/** Checks the parameters of a request that takes none (`{}`, or nothing at all). @throws ChatVecError InvalidArgument */
export function validateNoParams(method: string, params: unknown): Record<string, never> {
  if (params !== undefined && params !== null) checkObject(`${method}: parameters`, params, {});
  return {};
}

/** Checks `cancel` parameters. @throws ChatVecError InvalidArgument */
export function validateCancelParams(params: unknown): { jobId: string } {
  if (!isObject(params)) throw new ChatVecError('InvalidArgument', 'cancel: parameters must be an object { jobId }');
  checkObject('cancel: parameters', params, { jobId: { check: () => null, required: true } });
  return { jobId: checkJobId(params.jobId, 'cancel: jobId') };
}

/** Checks `configure` parameters. @throws ChatVecError InvalidArgument */
export function validateConfigureParams(params: unknown): ConfigureParams {
  const table: Table<ConfigureParams> = {
    concurrency: { check: concurrency },
    defaultBackend: { check: oneOf(['auto', 'cpu', 'gpu']) },
    defaultThreads: { check: threadCount },
  };
  checkObject('configure: parameters', params, table);
  return params as ConfigureParams;
}

/** Checks `recipeCheck` parameters; null fields are dropped. @throws ChatVecError InvalidArgument */
export function validateRecipeCheckParams(params: unknown): RecipeCheckParams {
  const table: Table<RecipeCheckParams> = {
    text: { check: recipeText, required: true },
    recipePath: { check: str, required: true },
    depth: { check: oneOf(['none', 'folders', 'headers']) },
  };
  checkObject('recipeCheck: parameters', params, table);
  return withoutNulls(params) as unknown as RecipeCheckParams;
}

/** Checks `rowStats` parameters; null fields are dropped. @throws ChatVecError InvalidArgument */
export function validateRowStatsParams(params: unknown): RowStatsParams {
  const table: Table<RowStatsParams> = {
    path: { check: str, required: true },
    tensor: { check: str },
    rows: { check: rowList, required: true },
  };
  checkObject('rowStats: parameters', params, table);
  return withoutNulls(params) as unknown as RowStatsParams;
}

/** Checks `recipePlan` parameters (`recipePath`, `text` or both); null fields are dropped. @throws ChatVecError InvalidArgument */
export function validateRecipePlanParams(params: unknown): RecipePlanParams {
  const table: Table<RecipePlanParams> = {
    recipePath: { check: str },
    text: { check: recipeText },
    threads: { check: threadCount },
    verbose: { check: bool },
  };
  checkObject('recipePlan: parameters', params, table);
  const p = withoutNulls(params) as unknown as RecipePlanParams;
  if (p.recipePath === undefined && p.text === undefined) throw new ChatVecError('InvalidArgument', 'recipePlan: give recipePath, text or both');
  return p;
}

function withoutNulls(value: unknown): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== null && v !== undefined));
}

// Chat sessions (chatSessions.ts).

/** A chat message or system prompt: any text (may be empty), bounded. */
const MAX_CHAT_CHARS = 1024 * 1024;
const chatText: Check = (v) => (typeof v === 'string' && v.length <= MAX_CHAT_CHARS ? null : `a string of at most ${MAX_CHAT_CHARS} characters`);
const chatHistory: Check = (v) =>
  Array.isArray(v) && v.every((m) => isObject(m) && Object.keys(m).every((k) => k === 'role' || k === 'content') && ['user', 'assistant'].includes(m.role as string) && chatText(m.content) === null)
    ? null
    : 'a list of { role: user | assistant, content: string }';
const nonNegative: Check = (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? null : 'a number ≥ 0');
const sessionId: Check = (v) => (typeof v === 'string' && /^[\w.:@/+-]{1,128}$/.test(v) ? null : '1–128 characters of letters, digits and _.:@/+-');

/** Checks `chatOpen` parameters; null fields are dropped. @throws ChatVecError InvalidArgument */
export function validateChatOpenParams(params: unknown): ChatOpenParams {
  const table: Table<ChatOpenParams> = {
    sessionId: { check: sessionId, required: true },
    model: { check: str, required: true },
    cacheDir: { check: str, required: true },
    backend: { check: oneOf(['auto', 'cpu', 'gpu']) },
    type: { check: ggufType },
    threads: { check: threadCount },
    contextSize: { check: posInt },
    system: { check: chatText },
    history: { check: chatHistory },
  };
  checkObject('chatOpen: parameters', params, table);
  return withoutNulls(params) as unknown as ChatOpenParams;
}

/** Checks `chatSend` parameters; null fields are dropped. @throws ChatVecError InvalidArgument */
export function validateChatSendParams(params: unknown): ChatSendParams {
  const table: Table<ChatSendParams> = {
    sessionId: { check: sessionId, required: true },
    text: { check: chatText, required: true },
    maxTokens: { check: posInt },
    temperature: { check: nonNegative },
    seed: { check: int },
  };
  checkObject('chatSend: parameters', params, table);
  return withoutNulls(params) as unknown as ChatSendParams;
}

/** Checks `chatCancel` / `chatClose` parameters. @throws ChatVecError InvalidArgument */
export function validateChatIdParams(method: string, params: unknown): ChatCancelParams {
  checkObject(`${method}: parameters`, params, { sessionId: { check: sessionId, required: true } } satisfies Table<ChatCancelParams>);
  return params as ChatCancelParams;
}
