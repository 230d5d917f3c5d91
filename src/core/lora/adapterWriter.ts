/**
 * What `extract --rank` writes so that PEFT and vLLM load the adapter unchanged: PEFT's key names
 * for each factored module and adapter_config.json with the fields PEFT's LoraConfig reads. Only
 * PEFT's own keys go into adapter_config.json (older PEFT versions refuse unknown keys); chatvec's
 * report goes into chatvec_extract.json beside it.
 *
 * Scale: every module's product is stored at scale 1. `r` is the largest rank and `lora_alpha = r`;
 * a module of smaller rank r_m gets rank_pattern r_m and alpha_pattern r_m, so PEFT's per-module
 * scale alpha_m / r_m and vLLM's single scale lora_alpha / r (vLLM reads no patterns) are both 1.
 */
/** The adapter's weights file, as PEFT names it. */
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
/** chatvec's record of an extraction (ranks, energies, errors), beside adapter_config.json. */
export const EXTRACT_REPORT = 'chatvec_extract.json';

/**
 * How PEFT stores a module's factors: Linear (τ = B·A), Embedding (τ = (B·A)ᵀ, `lora_embedding_*`),
 * or GPT-2's Conv1D, whose weight is stored [in, out] (τ = (B·A)ᵀ under `lora_A`/`lora_B`, with
 * `fan_in_fan_out: true` in the config; PEFT's Linear.get_delta_weight transposes B·A for it).
 */
export type PeftLayout = 'linear' | 'embedding' | 'conv1d';

const PREFIX = 'base_model.model.';

/** PEFT's keys of a module's factors: [A, B] (`lora_A.weight`/`lora_B.weight`, or `lora_embedding_A/B`). */
export function peftFactorKeys(module: string, layout: PeftLayout): readonly [string, string] {
  return layout === 'embedding'
    ? [`${PREFIX}${module}.lora_embedding_A`, `${PREFIX}${module}.lora_embedding_B`]
    : [`${PREFIX}${module}.lora_A.weight`, `${PREFIX}${module}.lora_B.weight`];
}

/** PEFT's shapes of [A, B] for a rows × cols weight at rank k (Conv1D: rows = in, cols = out features). */
export function peftFactorShapes(rows: number, cols: number, k: number, layout: PeftLayout): readonly [readonly number[], readonly number[]] {
  return layout === 'linear' ? [[k, cols], [rows, k]] : [[k, rows], [cols, k]];
}

/**
 * adapter_config.json for modules (full names, e.g. `model.layers.0.self_attn.q_proj`) and their
 * ranks. target_modules lists the modules' last names, as PEFT users write them. `fanInFanOut`: the
 * modules are GPT-2 Conv1D layers (PEFT then reads every lora_A/lora_B of the adapter transposed).
 */
export function peftAdapterConfig(baseModel: string, ranks: ReadonlyMap<string, number>, fanInFanOut = false): Record<string, unknown> {
  const r = Math.max(1, ...ranks.values());
  const pattern = Object.fromEntries([...ranks].filter(([, k]) => k !== r));
  const targets = [...new Set([...ranks.keys()].map((m) => m.slice(m.lastIndexOf('.') + 1)))].sort();
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    r,
    lora_alpha: r,
    target_modules: targets,
    rank_pattern: pattern,
    alpha_pattern: pattern,
    lora_dropout: 0,
    bias: 'none',
    fan_in_fan_out: fanInFanOut,
    use_rslora: false,
    use_dora: false,
    init_lora_weights: true,
    inference_mode: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    revision: null,
  };
}
