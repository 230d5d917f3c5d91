/**
 * What is added to a stored tensor when it is read: the plain data (it travels to worker threads)
 * that a catalogue entry of a model opened with a LoRA adapter merged in carries (mergekit's
 * `model+adapter`; lora/adaptedModel.ts builds it, engine/adaptedRun.ts reads through it). It lives
 * with the checkpoint's catalogue, below the engine and lora/, so that neither imports upward.
 */
import type { FloatDtype } from '../safetensors/dtype';
import type { TensorLocation } from '../safetensors/reader';

/** How τ follows from the factors: 'BA' τ = B·A (Linear); 'transposed' τ = (B·A)ᵀ (Conv1D, embeddings). */
export type FactorLayout = 'BA' | 'transposed';

/**
 * One adapted matrix of a PEFT LoRA adapter: τ = scale·B·A (or its transpose). E: how the factors'
 * tensors are described (an opened adapter's catalogue entries; the stored location is all a read needs).
 */
export interface LowRankFactors<E extends TensorLocation = TensorLocation> {
  /** The module (`model.layers.0.self_attn.q_proj`) and the tensor it updates (`….weight`). */
  readonly module: string;
  readonly target: string;
  /** lora_A: [rank, in] (BA) or [rank, rows] (transposed); lora_B: [out, rank] or [cols, rank]. */
  readonly a: E;
  readonly b: E;
  readonly rank: number;
  readonly alpha: number;
  readonly scale: number;
  readonly layout: FactorLayout;
  /** The updated weight's shape [rows, cols]. */
  readonly shape: readonly [number, number];
}

/** An adapter's low-rank term of one tensor with its ratio: ratio·scale·B·A. */
export interface AdapterLowRank {
  readonly ratio: number;
  readonly factors: LowRankFactors;
}

/** A stored tensor: where its element 0 is and how it is stored. */
export interface StoredTensor {
  readonly file: string;
  readonly position: number;
  readonly dtype: FloatDtype;
}

/** What an adapter changes in one tensor of the model it is merged into. */
export interface AdapterAddend {
  /** The model tensor (the merged value is rounded to its dtype). */
  readonly tensor: StoredTensor;
  /** A tensor the adapter saves whole, read instead of the model's. */
  readonly replace: StoredTensor | null;
  /** scale · B·A (ratio 1; the scale is in the factors). */
  readonly lowRank: AdapterLowRank | null;
  /** τ itself (chatvec_deltas.safetensors). */
  readonly delta: StoredTensor | null;
}
