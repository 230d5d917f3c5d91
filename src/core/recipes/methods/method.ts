/**
 * What a merge method is, as data: the parameters it reads (with mergekit's defaults), whether it
 * needs a base model or a seed, which analysis passes it runs before writing, and where it comes
 * from. One module per method (or per family: the generalized-task-arithmetic variants are rows of
 * one table, as in mergekit's merge_methods/registry.py); registry.ts lists them all, and
 * normalize, plan, analysis, run, summary, the CLI help and the consistency test read it.
 */

/** A parameter a method reads: per model ('tensor') or once per tensor ('global'). */
export interface ParameterDef {
  readonly name: string;
  readonly scope: 'tensor' | 'global';
  readonly type: 'number' | 'boolean';
  /** undefined: required. */
  readonly default?: number | boolean;
}

/** mergekit's SparsificationMethod (sparsify.py). */
export type Sparsification = 'magnitude' | 'random' | 'magnitude_outliers' | 'della_magprune';

/** A generalized-task-arithmetic variant (mergekit's GeneralizedTaskArithmeticMerge fields). */
export interface GtaVariant {
  /** 'sum': TIES sign election by mass; null: plain sum. */
  readonly consensus: 'sum' | null;
  readonly sparsification: Sparsification | null;
  readonly defaultNormalize: boolean;
  readonly defaultRescale: boolean;
}

/** How the write pass makes a chunk (and which analysis it needs first). */
export type MethodKind = 'linear' | 'passthrough' | 'slerp' | 'gta' | 'sce' | 'gram' | 'chat_vector';

export interface MergeMethodDef<N extends string = string> {
  readonly name: N;
  readonly prettyName: string;
  /** The paper or page mergekit cites (null: chatvec's own). */
  readonly referenceUrl: string | null;
  readonly kind: MethodKind;
  /** In mergekit's order: per-tensor parameters, then global ones. */
  readonly parameters: readonly ParameterDef[];
  readonly gta?: GtaVariant;
  /** Whether task vectors (or the t = 0 end) need `base_model:`. */
  readonly needsBase: boolean;
  /** Whether `random_seed` changes the output. */
  readonly usesSeed: boolean;
  /** The output in one line, for the docs table. */
  readonly output: string;
  /** The docs table's parameter cell when the method reads no `parameters:` (chat_vector). */
  readonly parametersNote?: string;
}
