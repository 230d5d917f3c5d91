/**
 * The jobs of the engine, as plain data: their options, progress events and results. The CLI, the
 * task host (over JSON-RPC, see src/protocol) and the extension all speak these types.
 */
import type { ModuleKind, TensorRole } from '../checkpoint/layers';
import type { FloatDtype } from '../safetensors/dtype';

/** A progress report. `done`/`total` are in `unit`s; rates in bytes per second. */
export interface ProgressEvent {
  readonly phase: string;
  readonly done: number;
  readonly total: number;
  readonly unit: 'bytes' | 'tensors' | 'items';
  readonly bytesPerSecond: number;
  /** Seconds left at the current rate; null when unknown. */
  readonly etaSeconds: number | null;
  readonly message?: string;
}

export type ProgressSink = (e: ProgressEvent) => void;

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogSink = (level: LogLevel, message: string) => void;

/** Which compute backend runs the chunk kernels. */
export type BackendChoice = 'auto' | 'cpu' | 'gpu';

export interface CommonJobOptions {
  /** Worker threads; default: all cores. */
  readonly threads?: number;
  readonly backend?: BackendChoice;
}

/** τ = chat − base, tensor by tensor, matched by name. */
export interface ExtractOptions extends CommonJobOptions {
  readonly base: string;
  readonly chat: string;
  readonly out: string;
  /** Default F32 (exact). */
  readonly dtype?: FloatDtype;
  readonly overwrite?: boolean;
  /** Leave input embeddings and LM head out of the vector (for differing vocabularies). */
  readonly skipEmbed?: boolean;
  /** Bytes per shard; default 5 GB. */
  readonly maxShardBytes?: number;
  /**
   * Write the vector even when a difference of finite inputs is NaN/±Inf (beyond the output
   * dtype's range, e.g. with F16), with a warning; by default the job fails and writes nothing.
   * NaN/±Inf already in the inputs pass through either way.
   */
  readonly allowNonFinite?: boolean;
  /**
   * Write τ as a PEFT LoRA adapter (engine/extractLowRank.ts) with at most this rank per matrix;
   * absent: the full vector.
   */
  readonly rank?: number;
  /** With rank: [module-name key, rank] pairs matched like PEFT's rank_pattern keys (`q_proj`, `model.layers.0.mlp.down_proj`). */
  readonly rankFor?: readonly (readonly [string, number])[];
  /** With rank: each matrix gets the fewest components holding this fraction (0 < e ≤ 1) of ‖τ‖², up to its rank. */
  readonly energy?: number;
}

/** θ_out = θ_cp + Σ rᵢ·τᵢ, from stored vectors or fused from (base, chatᵢ). */
export interface ApplyOptions extends CommonJobOptions {
  readonly target: string;
  /** Chat-vector folders (two-step path). Exactly one of vectors / (base + chats) is given. */
  readonly vectors?: readonly string[];
  /** Fused path: the base model and one or more chat models. */
  readonly base?: string;
  readonly chats?: readonly string[];
  /** One ratio for all, or one per vector/chat. Default 1.0. */
  readonly ratios?: readonly number[];
  readonly out: string;
  readonly skipEmbed?: boolean;
  /** CP row → chat row, for input embeddings and LM head. */
  readonly specialTokens?: readonly (readonly [number, number])[];
  /**
   * Fused path: rebuild every model's embeddings and LM head by token for this vocabulary first
   * (`cp`: the target's, `base`, or `union`), so models with different vocabularies combine.
   */
  readonly tokenizerSource?: 'cp' | 'base' | 'union';
  readonly maxShardBytes?: number;
  /** Output dtype for float tensors; default: the target's dtype per tensor. */
  readonly dtype?: FloatDtype;
  readonly overwrite?: boolean;
  /**
   * Write the output even when the arithmetic turns finite inputs into NaN/±Inf (an overflowing
   * ratio, a value beyond the output dtype's range), with a warning; by default the job
   * fails and writes nothing. NaN/±Inf already in the inputs pass through either way.
   */
  readonly allowNonFinite?: boolean;
}

export interface JobOutcome {
  readonly out: string;
  readonly tensorCount: number;
  /** Bytes of tensor data written. */
  readonly bytesWritten: number;
  readonly seconds: number;
  /** Which backend ran the kernels, e.g. "cpu (2 threads)". */
  readonly backend: string;
  readonly warnings: readonly string[];
  /** extract --rank: the energy of τ the adapter captures and its relative error ‖τ − B·A‖/‖τ‖, over all factored matrices. */
  readonly lowRank?: {
    readonly matrices: number;
    readonly energy: number;
    readonly relativeError: number;
    /** The energy each factored matrix keeps, per matrix and layer, in the shape the energy-at-rank view shows. */
    readonly byLayer: EnergyAtRankReport;
  };
}

/** Statistics of Δ = B − A over a set of elements; sums are exact enough (float64). */
export interface DeltaStats {
  readonly elements: number;
  /** ‖Δ‖₂ (Frobenius). */
  readonly deltaNorm: number;
  readonly normA: number;
  readonly normB: number;
  /** ‖Δ‖ / ‖A‖ (NaN when ‖A‖ = 0). */
  readonly relative: number;
  /** cos(A, B); NaN when either norm is 0. */
  readonly cosine: number;
  readonly maxAbsDelta: number;
  readonly meanAbsDelta: number;
  /** Fraction of elements with B ≠ A. */
  readonly changedFraction: number;
  /** Count of NaN or ±Inf elements in A or B. */
  readonly nonFinite: number;
}

export interface TensorDiff extends DeltaStats {
  readonly name: string;
  readonly role: TensorRole;
  readonly layer: number | null;
  readonly module: ModuleKind;
  readonly shapeA: readonly number[];
  readonly shapeB: readonly number[];
  /** Set when the shapes differ and only the shared leading rows were compared. */
  readonly note?: string;
}

export interface GroupDiff extends DeltaStats {
  /** "Embeddings", "Layer 3", "Final norm", "LM head", "Other". */
  readonly label: string;
  readonly role: TensorRole;
  readonly layer: number | null;
  /** Per module kind inside the group (q, k, v, o, gate, up, down, norm …). */
  readonly modules: readonly (DeltaStats & { readonly module: ModuleKind })[];
}

/**
 * The lineage verdict as data. Figures are those of the weight matrices when `ofMatrices` (else of
 * every compared tensor); `nonFinite` counts NaN/±Inf elements left out of the figures. Numbers
 * that are NaN here cross JSON as null.
 */
export type Lineage =
  | { readonly kind: 'nothing'; readonly mode: 'ab' | 'vector' }
  | { readonly kind: 'vector'; readonly deltaNorm: number; readonly relative: number; readonly nonFinite: number }
  | { readonly kind: 'identical' }
  /** Every compared element is equal, but `notCompared` tensors were not compared (see `skipped`, `onlyInA`/`onlyInB`). */
  | { readonly kind: 'equalWhereCompared'; readonly notCompared: number }
  | { readonly kind: 'notIdentical'; readonly nonFinite: number; readonly finite: number }
  | { readonly kind: 'zeros'; readonly deltaNorm: number; readonly nonFinite: number }
  | { readonly kind: 'unrelated' | 'fineTuned' | 'changedALot'; readonly cosine: number; readonly relative: number; readonly ofMatrices: boolean; readonly nonFinite: number };

export interface DiffReport {
  readonly a: string;
  /** Null when a chat-vector folder was scanned alone (Δ is the stored tensor). */
  readonly b: string | null;
  readonly total: DeltaStats;
  /** What the comparison says about lineage (as a sentence: protocol/verdictText.ts formatVerdict). */
  readonly lineage: Lineage;
  readonly groups: readonly GroupDiff[];
  readonly tensors: readonly TensorDiff[];
  readonly onlyInA: readonly string[];
  readonly onlyInB: readonly string[];
  readonly shapeMismatches: readonly { name: string; shapeA: readonly number[]; shapeB: readonly number[] }[];
  /** Tensors present on both sides but not compared (quantized codes and their scales, other non-float dtypes, shapes that cannot be lined up). */
  readonly skipped?: readonly { name: string; reason: string }[];
  /** Chat-vector mode only: the base model used as A for norms, or null when it was not found. */
  readonly base?: string | null;
  readonly fromCache: boolean;
  readonly seconds: number;
}

/**
 * A merge recipe (mergekit YAML or `merge_method: chat_vector`) run into a checkpoint. Only
 * chat_vector recipes use `backend`; the other methods run on the CPU worker pool.
 */
export interface MergeOptions extends CommonJobOptions {
  /** The recipe file; model paths in it are relative to its folder. */
  readonly recipe: string;
  readonly out: string;
  /** Multi-document recipes: keep the named merges in DIR/<name> (default: a temporary folder, removed). */
  readonly intermediateDir?: string;
  readonly overwrite?: boolean;
  /** Bytes per shard; default 5 GB. */
  readonly maxShardBytes?: number;
  /**
   * Write the output even when the arithmetic turns finite inputs into NaN/±Inf (an overflowing
   * weight, a value beyond the output dtype's range), with a warning; by default the job
   * fails and writes nothing. NaN/±Inf already in the inputs pass through either way.
   */
  readonly allowNonFinite?: boolean;
}

/** The demo trio (base, chat, cp; core/demo/generator), written under `dir`. */
export interface CreateDemoOptions {
  /** The folder that gets PRESET-base, PRESET-chat and PRESET-cp. */
  readonly dir: string;
  readonly preset: 'tiny' | 'small' | '1b';
  /** Generator seed; default 42. */
  readonly seed?: number;
}

/**
 * `diff`'s options. `backend` (CommonJobOptions) picks where the sums are computed: the GPU's, like
 * the CPU's, lie within compute/diffBound.ts of the float64 definition (2⁻¹⁹ relative, counts
 * exactly), so a cached result serves either backend.
 */
export interface DiffOptions extends CommonJobOptions {
  readonly a: string;
  /** Omit to scan a chat-vector folder alone. */
  readonly b?: string;
  /** Folder for cached results; omit to disable the cache. */
  readonly cacheDir?: string;
}

/**
 * How low-rank a fine-tune is (engine/rankEnergy.ts): for each 2-D float matrix of the pair, the
 * fraction of ‖τ‖², τ = chat − base, that an optimal rank-`rank` approximation (the best LoRA of
 * that rank) keeps.
 */
export interface EnergyAtRankOptions extends CommonJobOptions {
  readonly base: string;
  readonly chat: string;
  /** R ≥ 1 (capped per matrix at min(rows, cols)). */
  readonly rank: number;
  /** Leave token embeddings and LM heads out (base and chat may then differ in vocabulary). */
  readonly skipEmbed?: boolean;
  /** Folder for cached results (key: R, skipEmbed and every input shard's path, size, mtime); omit to disable. */
  readonly cacheDir?: string;
}

/** The energy figures of a set of matrices: Σ captured / Σ ‖τ‖² (1 where ‖τ‖ = 0). */
export interface EnergyFigures {
  /** Σ ‖τ‖²_F (float64). */
  readonly norm2: number;
  /** Σ of each matrix's energy at its rank: what per-matrix rank-R adapters would keep. */
  readonly captured2: number;
  readonly energy: number;
}

export interface MatrixEnergy extends EnergyFigures {
  readonly name: string;
  readonly role: TensorRole;
  readonly layer: number | null;
  readonly module: ModuleKind;
  readonly shape: readonly [number, number];
  /** The rank measured at: min(R, rows, cols). */
  readonly rank: number;
  readonly powerIterations: number;
}

export interface GroupEnergy extends EnergyFigures {
  /** As DiffReport's groups: "Embeddings", "Layer 3", "LM head" … */
  readonly label: string;
  readonly role: TensorRole;
  readonly layer: number | null;
}

export interface EnergyAtRankReport {
  readonly base: string;
  readonly chat: string;
  readonly rank: number;
  /**
   * What the figures guarantee: each matrix's energy is a lower bound of the exact Σ_{i≤R} σ_i² / ‖τ‖²
   * and at most `tolerance` below it.
   */
  readonly tolerance: number;
  readonly total: EnergyFigures;
  readonly groups: readonly GroupEnergy[];
  readonly matrices: readonly MatrixEnergy[];
  /** Float tensors that are not matrices (norms, biases): not measured. */
  readonly notMatrices: number;
  readonly backend: string;
  readonly fromCache: boolean;
  readonly seconds: number;
}

/** What a running job may use to report and to learn it should stop. */
export interface JobContext {
  readonly signal?: { readonly cancelled: boolean };
  readonly onProgress?: ProgressSink;
  readonly onLog?: LogSink;
}
