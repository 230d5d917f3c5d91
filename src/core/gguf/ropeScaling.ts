/**
 * `rope_scaling` of config.json in GGUF, as llama.cpp's converter writes it (convert_hf_to_gguf.py
 * at ggml-org/llama.cpp 0024aa74: TextModel.set_gguf_parameters and LlamaModel.generate_extra_tensors):
 * - `linear`: `{arch}.rope.scaling.type` "linear" and `.factor`;
 * - `yarn`: type "yarn", `.factor`, `.original_context_length`, and when given the extrapolation,
 *   attention and beta factors (`.yarn_ext_factor`, `.yarn_attn_factor`, `.yarn_beta_fast`, `.yarn_beta_slow`);
 * - `llama3` (Llama 3.1+): no metadata but a tensor `rope_freqs.weight` of head_dim/2 float32
 *   divisors, one per rotary frequency, that llama.cpp's rope applies (θ_i = pos·base^(−2i/d) / f_i).
 * No scaling, `default` or an absent type writes nothing. Every other type (dynamic, longrope, …)
 * is refused: llama.cpp's LLaMA and Qwen2 graphs have no form of it.
 */
import { ChatVecError } from '../errors';
import type { GgufValue } from './writer';

/** What a checkpoint's rope scaling adds to the export. */
export interface GgufRopeScaling {
  readonly metadata: ReadonlyMap<string, GgufValue>;
  /** llama3 only: the values of `rope_freqs.weight` (length head_dim / 2). */
  readonly ropeFreqs?: Float32Array;
}

/**
 * Reads `rope_parameters` (transformers ≥ 5) or `rope_scaling` of a config.json.
 * @param folder the checkpoint folder (named in errors)
 * @param headDim the rotary dimension count; @param ropeTheta the base
 * @throws ChatVecError Unsupported for a type llama.cpp cannot run in `arch`; BadCheckpoint for a
 *   missing or non-positive factor, a yarn scaling without original_max_position_embeddings, or
 *   llama3 factors with low_freq_factor = high_freq_factor
 */
export function ropeScalingOf(cfg: Readonly<Record<string, unknown>>, folder: string, arch: 'llama' | 'qwen2', headDim: number, ropeTheta: number): GgufRopeScaling {
  const metadata = new Map<string, GgufValue>();
  const raw = cfg.rope_parameters ?? cfg.rope_scaling;
  if (raw === null || raw === undefined) return { metadata };
  const where = `${folder}/config.json: ${cfg.rope_parameters !== undefined ? 'rope_parameters' : 'rope_scaling'}`;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ChatVecError('BadCheckpoint', `${where} must be an object`);
  const p = raw as Record<string, unknown>;
  const type = p.rope_type ?? p.type;
  if (type === undefined || type === 'default') return { metadata };
  const num = (key: string, fallback?: number): number => {
    const v = p[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ChatVecError('BadCheckpoint', `${where}.${key} must be a positive number for rope scaling "${String(type)}"`);
    return v;
  };
  const optional = (key: string, alias?: string): number | undefined => {
    const v = p[key] ?? (alias !== undefined ? p[alias] : undefined);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ChatVecError('BadCheckpoint', `${where}.${key} must be a number`);
    return v;
  };
  const key = (k: string) => `${arch}.rope.scaling.${k}`;
  switch (type) {
    case 'linear':
      metadata.set(key('type'), { type: 'string', value: 'linear' });
      metadata.set(key('factor'), { type: 'f32', value: num('factor') });
      return { metadata };
    case 'yarn': {
      metadata.set(key('type'), { type: 'string', value: 'yarn' });
      metadata.set(key('factor'), { type: 'f32', value: num('factor') });
      const ctx = num('original_max_position_embeddings');
      if (!Number.isSafeInteger(ctx)) throw new ChatVecError('BadCheckpoint', `${where}.original_max_position_embeddings must be a positive integer`);
      metadata.set(key('original_context_length'), { type: 'u32', value: ctx });
      const extras: [string, number | undefined][] = [
        ['yarn_ext_factor', optional('extrapolation_factor')],
        ['yarn_attn_factor', optional('attention_factor', 'attn_factor')],
        ['yarn_beta_fast', optional('beta_fast')],
        ['yarn_beta_slow', optional('beta_slow')],
      ];
      for (const [k, v] of extras) if (v !== undefined) metadata.set(key(k), { type: 'f32', value: v });
      return { metadata };
    }
    case 'llama3': {
      if (arch !== 'llama') throw new ChatVecError('Unsupported', `${where} type "llama3" is not supported for ${arch} (llama.cpp's converter writes rope_freqs for the LLaMA family only)`);
      const factor = num('factor', 8);
      const low = num('low_freq_factor', 1);
      const high = num('high_freq_factor', 4);
      // transformers reads the original context from rope_scaling; the converter from the top level
      // of config.json. Published Llama 3.x configs hold 8192 in rope_scaling only, which is also the
      // converter's default, so both give the same factors there.
      const original = num('original_max_position_embeddings', typeof cfg.original_max_position_embeddings === 'number' ? cfg.original_max_position_embeddings : 8192);
      if (low === high) throw new ChatVecError('BadCheckpoint', `${where}: low_freq_factor and high_freq_factor must differ for rope scaling "llama3"`);
      return { metadata, ropeFreqs: llama3RopeFreqs(headDim, ropeTheta, factor, low, high, original) };
    }
    default:
      throw new ChatVecError('Unsupported', `${where} type "${String(type)}" is not supported by GGUF export (supported: linear, yarn, llama3 — what llama.cpp's converter writes for the LLaMA family)`);
  }
}

/**
 * Llama 3.1's per-frequency divisors: for frequency ω_i = base^(−2i/d) with wavelength λ = 2π/ω_i,
 * 1 when λ < original/high, `factor` when λ > original/low, and in between the inverse of the
 * smooth blend 1 / ((1 − s)/factor + s) with s = (original/λ − low) / (high − low). Computed in
 * float64, stored as float32 (the converter computes the frequencies in float32).
 */
function llama3RopeFreqs(headDim: number, base: number, factor: number, low: number, high: number, original: number): Float32Array {
  const lowWavelen = original / low;
  const highWavelen = original / high;
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < out.length; i++) {
    const wavelen = (2 * Math.PI) / base ** ((-2 * i) / headDim);
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = factor;
    else {
      const s = (original / wavelen - low) / (high - low);
      out[i] = 1 / ((1 - s) / factor + s);
    }
  }
  return out;
}
