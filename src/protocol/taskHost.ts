/**
 * The task host's JSON-RPC protocol: every request and notification between a client (the VS Code
 * extension, `chatvec --via-host`) and the task host process (src/taskhost/main.ts), with the
 * types of their parameters and results. Both sides import this one file, so a method name or a
 * field can only change in one place.
 *
 * Transport: `vscode-jsonrpc` over Node's IPC channel (`child_process.fork`). All parameters are
 * passed by name (one object).
 *
 * Jobs (`diff`, `extract`, `apply`, `merge`, `createDemo`, `downloadModel`, `evalModel`, `sweep`) carry a client-chosen `jobId`; progress and logs name it. A job
 * ends in one of three ways:
 * - success: `{ status: 'ok', result }`;
 * - cancelled (by `cancel`, by the library's `$/cancelRequest`, or by `shutdown`):
 *   `{ status: 'cancelled' }`, a normal result and not an error, since the user asked for it;
 * - failure: a JSON-RPC error whose `data` is {@link TaskHostErrorData} (a stable ChatVecError code
 *   such as `BadCheckpoint`, `ShapeMismatch`, `OutputExists`, `Io`, plus details for the log).
 */
import { NotificationType, ParameterStructures, RequestType, RequestType0 } from 'vscode-jsonrpc';
import type { InspectReport } from '../core/checkpoint/inspect';
import type { RowStat, RowStatsReport } from '../core/checkpoint/rowStats';
import type { DemoTrio } from '../core/demo/generator';
import type { ErrorCode } from '../core/errors';
import type { ApplyOptions, BackendChoice, CreateDemoOptions, DiffOptions, DiffReport, EnergyAtRankOptions, EnergyAtRankReport, ExtractOptions, JobOutcome, LogLevel, MergeOptions, ProgressEvent } from '../core/jobs/types';
import type { RecipeDiagnostic } from '../core/recipes/diagnostics';
import type { PlanSummary } from '../core/recipes/summary';
import type { DocumentPlanSummary } from '../core/recipes/multiRecipe';
import type { CachedModel } from '../core/hub/cachedModels';
import type { DownloadJobOptions, DownloadResult } from '../core/download/download';
import type { EvalOptions, EvalReport } from '../core/tryit/evaluate';
import type { SweepOptions, SweepRow } from '../core/tryit/sweep';
import type { ChatMessage } from '../core/tryit/chatTemplate';
import type { ChatReply, ChatSessionInfo } from '../core/tryit/chatSession';
import type { GgufFileType } from '../core/gguf/llama';

export type { ChatMessage, ChatSessionInfo, GgufFileType };
export type { ApplyOptions, BackendChoice, CachedModel, CreateDemoOptions, DemoTrio, DownloadJobOptions, DownloadResult, DiffOptions, DiffReport, EnergyAtRankOptions, EnergyAtRankReport, ErrorCode, EvalOptions, EvalReport, ExtractOptions, InspectReport, JobOutcome, LogLevel, MergeOptions, PlanSummary, ProgressEvent, RecipeDiagnostic, RowStat, SweepOptions, SweepRow };

/** Bumped when a method or a shape changes incompatibly; `status` reports it. */
export const TASK_HOST_PROTOCOL_VERSION = 2;

// ---------------------------------------------------------------------------------------------
// Jobs as data: a discriminated union on `kind`, so a UI can list, label and re-run them.

/** The options of each kind of heavy job, exactly as the in-process engine takes them. */
export interface JobOptionsMap {
  readonly diff: DiffOptions;
  readonly extract: ExtractOptions;
  readonly apply: ApplyOptions;
  readonly merge: MergeOptions;
  readonly createDemo: CreateDemoOptions;
  readonly downloadModel: DownloadJobOptions;
  readonly evalModel: EvalOptions;
  readonly sweep: SweepOptions;
  readonly energyAtRank: EnergyAtRankOptions;
}

/** `diff` | `extract` | `apply` | `merge` | `createDemo` | `downloadModel` | `evalModel` | `sweep` | `energyAtRank`. */
export type JobKind = keyof JobOptionsMap;

/** A heavy job as data: `{ kind: 'apply', options: ApplyOptions }` and so on. */
export type JobSpec = { readonly [K in JobKind]: { readonly kind: K; readonly options: JobOptionsMap[K] } }[JobKind];

/** The value each kind of job produces on success. */
export interface JobResultMap {
  readonly diff: DiffReport;
  readonly extract: JobOutcome;
  readonly apply: JobOutcome;
  readonly merge: JobOutcome;
  readonly createDemo: DemoTrio;
  readonly downloadModel: DownloadResult;
  readonly evalModel: EvalReport;
  readonly sweep: SweepRow[];
  readonly energyAtRank: EnergyAtRankReport;
}

/** The options type of one kind of job. */
export type JobOptionsOf<K extends JobKind> = JobOptionsMap[K];

/** Every job kind, e.g. for validation and menus. */
export const JOB_KINDS: readonly JobKind[] = ['diff', 'extract', 'apply', 'merge', 'createDemo', 'downloadModel', 'evalModel', 'sweep', 'energyAtRank'];

/** Parameters of a job request: the client-chosen id (unique among the host's live jobs). */
export interface JobParams<O> {
  readonly jobId: string;
  readonly options: O;
}

/** How a job ended when it did not fail. Failures are JSON-RPC errors instead. */
export type JobResult<R> = { readonly status: 'ok'; readonly result: R } | { readonly status: 'cancelled' };

/** A job's place in the host's queue. */
export type JobState = 'queued' | 'running';

/** One live job, as `status` lists it. */
export interface JobInfo {
  readonly jobId: string;
  readonly kind: JobKind;
  readonly state: JobState;
  /** True once cancellation was requested and the job is winding down. */
  readonly cancelling: boolean;
  /** Milliseconds since the Unix epoch when the host received the request. */
  readonly submittedAt: number;
  /** When it started running (null while queued). */
  readonly startedAt: number | null;
}

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * The JSON-RPC error code of every failure the engine reports (the ChatVecError `code` is in
 * `data.code`). Chosen outside the range JSON-RPC reserves (-32768…-32000).
 */
export const JOB_FAILED_ERROR = -31000;

/** `data` of every error response from the task host, including malformed requests. */
export interface TaskHostErrorData {
  /** InvalidArgument for malformed or unknown parameters; Internal for host bugs. */
  readonly code: ErrorCode;
  /** Details for the log (stack, offending field); not for the user. */
  readonly details?: string;
}

// ---------------------------------------------------------------------------------------------
// Requests

/** Reads the headers of a checkpoint folder or .safetensors file. Light: never queued. */
export interface InspectParams {
  readonly path: string;
  /** Optional id so that logs can name the request. */
  readonly jobId?: string;
}
/** `inspect` → InspectReport. */
export const InspectRequest = new RequestType<InspectParams, InspectReport, TaskHostErrorData>('inspect', ParameterStructures.byName);

/** Delta statistics between two checkpoints (or of one chat-vector folder). */
export type DiffParams = JobParams<DiffOptions>;
/** `diff` → JobResult<DiffReport>. */
export const DiffRequest = new RequestType<DiffParams, JobResult<DiffReport>, TaskHostErrorData>('diff', ParameterStructures.byName);

/** τ = chat − base, written as a checkpoint. */
export type ExtractParams = JobParams<ExtractOptions>;
/** `extract` → JobResult<JobOutcome>. */
export const ExtractRequest = new RequestType<ExtractParams, JobResult<JobOutcome>, TaskHostErrorData>('extract', ParameterStructures.byName);

/** θ_out = θ_cp + Σ rᵢ·τᵢ, from stored vectors or fused from (base, chats). */
export type ApplyParams = JobParams<ApplyOptions>;
/** `apply` → JobResult<JobOutcome>. */
export const ApplyRequest = new RequestType<ApplyParams, JobResult<JobOutcome>, TaskHostErrorData>('apply', ParameterStructures.byName);

/** A merge recipe file run into a checkpoint (core/recipes runRecipeFile). */
export type MergeParams = JobParams<MergeOptions>;
/** `merge` → JobResult<JobOutcome>. */
export const MergeRequest = new RequestType<MergeParams, JobResult<JobOutcome>, TaskHostErrorData>('merge', ParameterStructures.byName);

/**
 * The demo trio (base, chat, cp) written under `dir`, model by model on a worker thread; an
 * existing trio of the same preset and seed is reused at once (`reused: true`). Cancelling removes
 * the model being written and those this job wrote.
 */
export type CreateDemoParams = JobParams<CreateDemoOptions>;
/** `createDemo` → JobResult<DemoTrio>. */
export const CreateDemoRequest = new RequestType<CreateDemoParams, JobResult<DemoTrio>, TaskHostErrorData>('createDemo', ParameterStructures.byName);

/** A model from the Hub (HF_ENDPOINT) into the hub cache (core/download/download.ts); cancelling keeps the partial file. */
export type DownloadModelParams = JobParams<DownloadJobOptions>;
/** `downloadModel` → JobResult<DownloadResult>. */
export const DownloadModelRequest = new RequestType<DownloadModelParams, JobResult<DownloadResult>, TaskHostErrorData>('downloadModel', ParameterStructures.byName);

/**
 * Perplexity of a model in llama.cpp (core/tryit/evaluate.ts runEval); a checkpoint is first
 * converted to GGUF into the cache (progress phase `gguf`), then scored (phase `eval`, tokens).
 */
export type EvalModelParams = JobParams<EvalOptions>;
/** `evalModel` → JobResult<EvalReport>. */
export const EvalModelRequest = new RequestType<EvalModelParams, JobResult<EvalReport>, TaskHostErrorData>('evalModel', ParameterStructures.byName);

/**
 * The ratio sweep (core/tryit/sweep.ts runSweep): per ratio an apply into `<out>/ratio-<r>` and its
 * evaluation; each progress message starts with `ratio r (i/n)`. Cancelling removes the merge of
 * the ratio under way; the merges already measured stay.
 */
export type SweepParams = JobParams<SweepOptions>;
/** `sweep` → JobResult<SweepRow[]> (in the order of `ratios`). */
export const SweepRequest = new RequestType<SweepParams, JobResult<SweepRow[]>, TaskHostErrorData>('sweep', ParameterStructures.byName);

/**
 * For each 2-D matrix of a (base, chat) pair, the energy of τ = chat − base an optimal rank-R
 * approximation keeps (core/engine/energyAtRank.ts), cached like diff results when `cacheDir` is set.
 */
export type EnergyAtRankParams = JobParams<EnergyAtRankOptions>;
/** `energyAtRank` → JobResult<EnergyAtRankReport>. */
export const EnergyAtRankRequest = new RequestType<EnergyAtRankParams, JobResult<EnergyAtRankReport>, TaskHostErrorData>('energyAtRank', ParameterStructures.byName);

/** The models of the hub cache with safetensors weights (core/hub/cachedModels.ts). Light: never queued. */
export const HubCacheListRequest = new RequestType<Record<string, never>, CachedModel[], TaskHostErrorData>('hubCacheList', ParameterStructures.byName);

/** The request type of each job kind. */
export const JOB_REQUESTS = {
  diff: DiffRequest,
  extract: ExtractRequest,
  apply: ApplyRequest,
  merge: MergeRequest,
  createDemo: CreateDemoRequest,
  downloadModel: DownloadModelRequest,
  evalModel: EvalModelRequest,
  sweep: SweepRequest,
  energyAtRank: EnergyAtRankRequest,
} as const satisfies { readonly [K in JobKind]: RequestType<JobParams<JobOptionsOf<K>>, JobResult<JobResultMap[K]>, TaskHostErrorData> };

// Recipe checks: light (headers only, never queued), answered while heavy jobs run.

/** How far a recipe check goes: syntax and schema; + model folders exist; + headers read and planned. */
export type RecipeCheckDepth = 'none' | 'folders' | 'headers';

/** The editor's as-you-type check of recipe text (core/recipes recipeDiagnostics). */
export interface RecipeCheckParams {
  /** The document's text (may be unsaved; up to 16 MiB). */
  readonly text: string;
  /** The document's file: relative model paths resolve against its folder. */
  readonly recipePath: string;
  /** Default 'headers' (kilobytes per model, no tensor data). */
  readonly depth?: RecipeCheckDepth;
}
/** `recipeCheck` → RecipeDiagnostic[] (0-based lines and columns, end exclusive; empty when clean). */
export const RecipeCheckRequest = new RequestType<RecipeCheckParams, RecipeDiagnostic[], TaskHostErrorData>('recipeCheck', ParameterStructures.byName);

/** The dry run of a recipe: `text` when given (unsaved edits), else the file at `recipePath`. */
export interface RecipePlanParams {
  /** The recipe file; with `text`, only the folder that relative model paths resolve against. */
  readonly recipePath?: string;
  /** Recipe text; relative paths resolve against `recipePath`'s folder, else the host's working directory. */
  readonly text?: string;
  /** Threads the estimate assumes; default: the host's default for jobs (all cores). */
  readonly threads?: number;
  /** List every output tensor in `text`. */
  readonly verbose?: boolean;
}
/** The answer to `recipePlan`. */
export interface RecipePlanResult {
  readonly summary: PlanSummary;
  /** The summary as `chatvec merge --dry-run` prints it. */
  readonly text: string;
  /** The recipe's warnings and notes (errors make the request fail instead). */
  readonly issues: readonly RecipeDiagnostic[];
  /**
   * Multi-document (mergekit-multi) recipes: every document in run order; `summary` is then the
   * last one that could be planned (a document waits for the merges it uses).
   */
  readonly documents?: readonly DocumentPlanSummary[];
}
/**
 * `recipePlan` → RecipePlanResult. A recipe that cannot run fails with InvalidArgument whose
 * message lists every error as file:line:col.
 */
export const RecipePlanRequest = new RequestType<RecipePlanParams, RecipePlanResult, TaskHostErrorData>('recipePlan', ParameterStructures.byName);

// Row statistics: light (a few rows' bytes, bounded), never queued.

/** Statistics of some rows of one tensor, e.g. to find untrained (near-zero) special-token embedding rows. */
export interface RowStatsParams {
  /** A checkpoint folder or .safetensors file. */
  readonly path: string;
  /** A tensor name; default: the input embedding (`embed_tokens`, `wte`, …). */
  readonly tensor?: string;
  /** Indices along the tensor's first dimension (1–4096 of them, at most 64 MiB of data). */
  readonly rows: readonly number[];
}
/** The answer to `rowStats`: the tensor read, and {row, norm (L2, float64), maxAbs, nonFinite} per row in the order asked. */
export type RowStatsResult = RowStatsReport;
/** `rowStats` → RowStatsResult. A row out of range or an unknown tensor fails with InvalidArgument. */
export const RowStatsRequest = new RequestType<RowStatsParams, RowStatsResult, TaskHostErrorData>('rowStats', ParameterStructures.byName);

/**
 * Cancels a job by id (the alternative to `$/cancelRequest`, for a client that no longer holds the
 * request's token). The job's own request then answers `{ status: 'cancelled' }` once its
 * temporary output is removed; this request answers at once.
 */
export interface CancelParams {
  readonly jobId: string;
}
/** The answer to `cancel`. */
export interface CancelResult {
  /** The job's state when the request arrived; `unknown` when no live job has that id. */
  readonly state: JobState | 'unknown';
}
/** `cancel` → CancelResult. */
export const CancelRequest = new RequestType<CancelParams, CancelResult, TaskHostErrorData>('cancel', ParameterStructures.byName);

/** Changes settings of a running host; omitted fields stay as they are. */
export interface ConfigureParams {
  /** How many heavy jobs run at once (1–16). Default 1: jobs already use every core. */
  readonly concurrency?: number;
  /** Backend for jobs whose options name none. */
  readonly defaultBackend?: BackendChoice;
  /** Worker threads for jobs whose options name none; null for the engine's default (all cores). */
  readonly defaultThreads?: number | null;
}
/** `configure` → TaskHostStatus (after the change). */
export const ConfigureRequest = new RequestType<ConfigureParams, TaskHostStatus, TaskHostErrorData>('configure', ParameterStructures.byName);

/** What the host is and does now. */
export interface TaskHostStatus {
  readonly protocolVersion: number;
  readonly toolVersion: string;
  readonly pid: number;
  readonly nodeVersion: string;
  readonly concurrency: number;
  readonly defaultBackend: BackendChoice;
  readonly defaultThreads: number | null;
  readonly uptimeSeconds: number;
  /** Running jobs first, then queued ones in queue order. */
  readonly jobs: readonly JobInfo[];
}
/** `status` → TaskHostStatus. The client's start-up handshake. */
export const StatusRequest = new RequestType0<TaskHostStatus, TaskHostErrorData>('status');

/**
 * Cancels every job, waits (briefly) for them to remove their temporary output, answers, and
 * exits. Jobs answer `{ status: 'cancelled' }` before this request does.
 */
export const ShutdownRequest = new RequestType0<void, TaskHostErrorData>('shutdown');

// ---------------------------------------------------------------------------------------------
// Notifications (host → client)

/**
 * A job's progress. While running: the engine's ProgressEvent (`done`/`total` in `unit`s, rates in
 * bytes per second). While queued: `state: 'queued'`, `phase: 'queued'`, `done` = `total` = 0,
 * and `queuePosition` (1 = next to start); sent on arrival and whenever the position changes.
 */
export interface ProgressParams extends ProgressEvent {
  readonly jobId: string;
  readonly kind: JobKind;
  readonly state: JobState;
  /**
   * `job`: an event of the engine, as the in-process engine reports it. `host`: one the host adds
   * (phase `queued` while waiting, phase `starting` when the job leaves the queue).
   */
  readonly source: MessageSource;
  /** Only while queued. */
  readonly queuePosition?: number;
}
/** `progress` (host → client). */
export const ProgressNotification = new NotificationType<ProgressParams>('progress', ParameterStructures.byName);

/** A log line from the host or one of its jobs. */
export interface LogParams {
  readonly level: LogLevel;
  readonly message: string;
  /** Set when the line belongs to a job. */
  readonly jobId?: string;
  /**
   * `job`: the engine's own line (what the in-process engine passes to JobContext.onLog); `host`:
   * the host's (job started/finished/cancelled, life cycle); `client`: the client's (host stderr,
   * crashes). Absent means `host`.
   */
  readonly source?: MessageSource;
}

/** Who produced a progress event or log line. */
export type MessageSource = 'job' | 'host' | 'client';
/** `log` (host → client). */
export const LogNotification = new NotificationType<LogParams>('log', ParameterStructures.byName);

// ---------------------------------------------------------------------------------------------
// Chat sessions: a model loaded in the host for a conversation (core/tryit/chatSession.ts). They
// live outside the job queue (a chat waits on nobody's merge, and a merge on no chat) until
// `chatClose`, `shutdown` or the host's exit; the client chooses `sessionId` (as a job id).

/** `chatOpen`: resolve the model (a checkpoint is converted into the cache first), load it. */
export interface ChatOpenParams {
  readonly sessionId: string;
  /** A checkpoint folder or a .gguf file. */
  readonly model: string;
  /** The tool's cache folder (conversions go to its `gguf/` folder). */
  readonly cacheDir: string;
  /** Default: the host's default backend. */
  readonly backend?: BackendChoice;
  /** Weight type of a conversion; default F16. */
  readonly type?: GgufFileType;
  readonly threads?: number;
  /** KV cache size in tokens; default min(training context, 4096). */
  readonly contextSize?: number;
  readonly system?: string;
  /** Earlier user/assistant turns to continue (a restored conversation); the next reply evaluates them all. */
  readonly history?: readonly ChatMessage[];
}
/** How `chatOpen` ended: loaded, or cancelled (by `chatCancel` or `$/cancelRequest`) while converting or loading. */
export type ChatOpenResult = { readonly status: 'ok'; readonly sessionId: string; readonly info: ChatSessionInfo } | { readonly status: 'cancelled' };
/** `chatOpen` → ChatOpenResult; a model that cannot be converted or loaded fails with its one-line ChatVecError. */
export const ChatOpenRequest = new RequestType<ChatOpenParams, ChatOpenResult, TaskHostErrorData>('chatOpen', ParameterStructures.byName);

/** `chatSend`: one user message; the reply streams as `chatText` notifications. One reply at a time per session. */
export interface ChatSendParams {
  readonly sessionId: string;
  readonly text: string;
  /** Most tokens in the reply; default 512. */
  readonly maxTokens?: number;
  /** 0 (default): greedy. */
  readonly temperature?: number;
  readonly seed?: number;
}
/** The whole reply (its text is the concatenation of the `chatText` pieces). A cancelled reply has `stop: 'cancelled'` and is not kept in the conversation. */
export type ChatSendResult = ChatReply;
/** `chatSend` → ChatSendResult. */
export const ChatSendRequest = new RequestType<ChatSendParams, ChatSendResult, TaskHostErrorData>('chatSend', ParameterStructures.byName);

/** `chatCancel`: stops the session's reply (or its opening); answered at once. */
export interface ChatCancelParams {
  readonly sessionId: string;
}
/** What the session was doing when the cancel arrived. */
export interface ChatCancelResult {
  readonly state: 'opening' | 'replying' | 'idle' | 'unknown';
}
/** `chatCancel` → ChatCancelResult. */
export const ChatCancelRequest = new RequestType<ChatCancelParams, ChatCancelResult, TaskHostErrorData>('chatCancel', ParameterStructures.byName);

/** `chatClose`: cancels what the session does and frees its model; `closed: false` for an unknown id. */
export const ChatCloseRequest = new RequestType<ChatCancelParams, { readonly closed: boolean }, TaskHostErrorData>('chatClose', ParameterStructures.byName);

/** A piece of a reply's text (host → client), with the reply's tokens so far and its rate (prompt evaluation included). */
export interface ChatTextParams {
  readonly sessionId: string;
  readonly text: string;
  readonly tokens: number;
  readonly tokensPerSecond: number;
}
/** `chatText` (host → client). */
export const ChatTextNotification = new NotificationType<ChatTextParams>('chatText', ParameterStructures.byName);

/** Progress of a session's opening: the conversion to GGUF (phase `gguf`), as a job reports it. */
export interface ChatProgressParams extends ProgressEvent {
  readonly sessionId: string;
}
/** `chatProgress` (host → client). */
export const ChatProgressNotification = new NotificationType<ChatProgressParams>('chatProgress', ParameterStructures.byName);
