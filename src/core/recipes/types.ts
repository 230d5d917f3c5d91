/**
 * Merge recipes: mergekit's YAML schema (plus `merge_method: chat_vector`) as data. The raw types
 * mirror the YAML after schema validation; the resolved types are what planning and running use.
 */
import type { FloatDtype } from '../safetensors/dtype';
import type { TokenRowSource, TokenRule } from '../vocab/rowRules';
import type { MergeMethodName } from './methods/registry';

/** A number, a flag, a word, or a gradient (a list interpolated over layer depth). */
export type ScalarOrGradient = number | boolean | string | readonly number[] | readonly (string | boolean)[];

/** `{filter, value}`: applies to tensors whose name contains `filter` (absent or `*`: all). */
export interface ConditionalParameter {
  readonly filter?: string | null;
  readonly value: ScalarOrGradient;
}

/** A parameter's setting: a plain value, a gradient, or filters where the first match wins. */
export type ParameterSetting = ScalarOrGradient | ConditionalParameter | readonly ConditionalParameter[];

export type ParameterMap = Readonly<Record<string, ParameterSetting>>;

export interface RawInputModel {
  readonly model: string;
  readonly parameters?: ParameterMap | null;
}

export interface RawInputSlice extends RawInputModel {
  readonly layer_range: readonly [number, number];
}

export interface RawOutputSlice {
  readonly sources: readonly RawInputSlice[];
  readonly base_model?: string;
  readonly parameters?: ParameterMap | null;
  readonly residual_weight?: number;
}

/** The recipe as written (after schema validation). */
export interface RawRecipe {
  readonly merge_method: string;
  readonly base_model?: string;
  readonly models?: readonly RawInputModel[];
  readonly slices?: readonly RawOutputSlice[];
  readonly parameters?: ParameterMap | null;
  readonly dtype?: string;
  readonly out_dtype?: string;
  readonly tokenizer_source?: string;
  readonly tokenizer?: unknown;
  readonly chat_template?: string;
  readonly modules?: unknown;
  readonly random_seed?: number;
  readonly name?: string;
  /** chatvec extension: depth t of the tensors after the last layer (0, mergekit ≥ 0.1.2; 1, ≤ 0.1.1). */
  readonly chatvec_post_layer_t?: 0 | 1;
  // merge_method: chat_vector
  readonly target_model?: string;
  readonly chat_models?: readonly { readonly model: string; readonly ratio?: number }[];
  readonly skip_embed?: boolean;
  readonly special_tokens?: Readonly<Record<string, number>>;
}

/** A location in the recipe: keys and list indexes from the document root. */
export type RecipePath = readonly (string | number)[];

export type IssueSeverity = 'error' | 'warning' | 'info';

/**
 * A problem found in a recipe. Either `path` (a node of the document: its value, or its key when
 * `at` is 'key') or `offsets` (a character range, for YAML syntax errors) says where.
 */
export interface RecipeIssue {
  readonly severity: IssueSeverity;
  readonly message: string;
  readonly path?: RecipePath;
  readonly at?: 'key' | 'value';
  /** [start, end) character offsets into the recipe text. */
  readonly offsets?: readonly [number, number];
}

/** A model referenced by the recipe, resolved to a local folder or file. */
export interface ModelRef {
  /** Absolute path. */
  readonly path: string;
  /** As written in the recipe. */
  readonly given: string;
  /** Where it is written (the value node). */
  readonly at: RecipePath;
  /**
   * Absolute path of a PEFT LoRA adapter folder merged into the model as it is read (mergekit's
   * `model+adapter`); `path` is then the model's.
   */
  readonly adapter?: string;
}

/** One input of an output slice. `layerRange` null: every layer (the `models:` form). */
export interface ResolvedSource {
  readonly model: ModelRef;
  readonly layerRange: readonly [number, number] | null;
  readonly parameters: ParameterMap;
  /** Where this source's `parameters` are (or would be) written. */
  readonly at: RecipePath;
}

export interface ResolvedSlice {
  readonly sources: readonly ResolvedSource[];
  /** Index into sources of the base model, or null (linear; slerp always has one). */
  readonly baseIndex: number | null;
  readonly parameters: ParameterMap;
  readonly at: RecipePath;
}

export interface ChatVectorSpec {
  readonly base: ModelRef;
  readonly target: ModelRef;
  readonly chats: readonly { readonly model: ModelRef; readonly ratio: number }[];
  readonly skipEmbed: boolean;
  /** [cp row, chat row] pairs. */
  readonly specialTokens: readonly (readonly [number, number])[];
}

/** Where a token's default row comes from (`tokens: {TOKEN: {source: …}}`), models as the recipe names them. */
export type TokenSourceSpec = TokenRowSource<ModelRef>;

/** One entry of `tokenizer: {tokens: …}`, with where the recipe writes it. */
export interface TokenSpec extends TokenRule<ModelRef> {
  readonly at: RecipePath;
}

/** A tokenizer source (`tokenizer_source:` or `tokenizer:`): the output vocabulary is rebuilt for it. */
export interface VocabularySpec {
  readonly source: 'base' | 'union' | ModelRef;
  readonly tokens: readonly TokenSpec[];
  readonly padToMultipleOf: number | null;
  /** The recipe's base_model (mergekit's base for the vocabulary and default rows, whatever the method). */
  readonly base: ModelRef | null;
  /** Where the source is written. */
  readonly at: RecipePath;
}

/** A recipe with every model resolved and its form normalised to output slices. */
export interface ResolvedRecipe {
  readonly method: MergeMethodName;
  /** Folder that relative model paths were resolved against. */
  readonly baseDir: string;
  readonly form: 'models' | 'slices' | 'chat_vector';
  /** Empty for chat_vector. */
  readonly slices: readonly ResolvedSlice[];
  /** Top-level `parameters`. */
  readonly parameters: ParameterMap;
  /** Output dtype for float tensors (`out_dtype`, else `dtype`); null: the reference model's per tensor. */
  readonly outDtype: FloatDtype | null;
  /** Folder whose tokenizer files the output gets. */
  readonly tokenizerFrom: ModelRef | null;
  /** The tokenizer source whose vocabulary embeddings are rebuilt for; null: none given (the base's files, rows as they are). */
  readonly vocabulary?: VocabularySpec | null;
  /** Seed of the DARE drop masks. */
  readonly seed: number;
  readonly chatVector: ChatVectorSpec | null;
  /** Lines for the dry-run plan about how the recipe was read (e.g. a model listed twice). */
  readonly notes?: readonly string[];
  /**
   * Depth t at which gradients are evaluated for the tensors after the last layer (final norm,
   * lm_head): 0 as mergekit ≥ 0.1.2 does (default), 1 as mergekit ≤ 0.1.1 did.
   */
  readonly postLayerT?: number;
}
