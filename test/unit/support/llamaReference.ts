// A float64 LLaMA forward pass on Hugging Face weights (for the GGUF load test): RMSNorm, rotary
// embeddings in Hugging Face's rotate-half layout (optionally with Llama 3.1's frequency scaling),
// grouped-query causal attention, SwiGLU.
// Written from the model's definition; shares nothing with src/.

export interface LlamaShape {
  readonly hidden: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly layers: number;
  readonly ffn: number;
  readonly vocab: number;
  readonly ropeTheta: number;
  readonly eps: number;
  /** config.json's rope_scaling of type "llama3" (Llama 3.1), when the model has one. */
  readonly llama3?: { readonly factor: number; readonly lowFreqFactor: number; readonly highFreqFactor: number; readonly original: number };
}

/**
 * The rotary inverse frequencies ω_i = θ^(−2i/d), and under Llama 3.1 scaling transformers'
 * _compute_llama3_parameters: wavelength λ = 2π/ω; λ > original/low → ω/factor; λ < original/high
 * → ω; between, the blend (1 − s)·ω/factor + s·ω with s = (original/λ − low)/(high − low).
 */
export function inverseFrequencies(s: LlamaShape, d: number): Float64Array {
  const out = new Float64Array(d / 2);
  for (let i = 0; i < d / 2; i++) {
    const w = s.ropeTheta ** ((-2 * i) / d);
    const l3 = s.llama3;
    if (!l3) {
      out[i] = w;
      continue;
    }
    const wavelen = (2 * Math.PI) / w;
    if (wavelen > l3.original / l3.lowFreqFactor) out[i] = w / l3.factor;
    else if (wavelen < l3.original / l3.highFreqFactor) out[i] = w;
    else {
      const sm = (l3.original / wavelen - l3.lowFreqFactor) / (l3.highFreqFactor - l3.lowFreqFactor);
      out[i] = ((1 - sm) * w) / l3.factor + sm * w;
    }
  }
  return out;
}

type Weights = ReadonlyMap<string, Float64Array>;

function matVec(w: Float64Array, x: Float64Array, rows: number): Float64Array {
  const cols = x.length;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += w[r * cols + c]! * x[c]!;
    out[r] = s;
  }
  return out;
}

function rmsNorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  const ms = x.reduce((a, v) => a + v * v, 0) / x.length;
  const s = 1 / Math.sqrt(ms + eps);
  return x.map((v, i) => v * s * w[i]!);
}

function ropeHalf(v: Float64Array, pos: number, inv: Float64Array): Float64Array {
  const d = v.length;
  const out = new Float64Array(d);
  for (let i = 0; i < d / 2; i++) {
    const a = pos * inv[i]!;
    out[i] = v[i]! * Math.cos(a) - v[i + d / 2]! * Math.sin(a);
    out[i + d / 2] = v[i]! * Math.sin(a) + v[i + d / 2]! * Math.cos(a);
  }
  return out;
}

/** Negative log-likelihood of ids[p + 1] after ids[0..p], for each p < ids.length − 1. */
export function referenceNlls(w: Weights, s: LlamaShape, ids: readonly number[]): number[] {
  const logits = referenceLogits(w, s, ids);
  const nlls: number[] = [];
  for (let pos = 0; pos + 1 < ids.length; pos++) {
    const l = logits[pos]!;
    const m = Math.max(...l);
    const lse = m + Math.log(l.reduce((a, v) => a + Math.exp(v - m), 0));
    nlls.push(lse - l[ids[pos + 1]!]!);
  }
  return nlls;
}

/** The next-token logits after ids[0..p], for every position p. */
export function referenceLogits(w: Weights, s: LlamaShape, ids: readonly number[]): Float64Array[] {
  const hd = s.hidden / s.heads;
  const group = s.heads / s.kvHeads;
  const inv = inverseFrequencies(s, hd);
  const get = (n: string) => {
    const v = w.get(n);
    if (!v) throw new Error(`no ${n}`);
    return v;
  };
  const emb = get('model.embed_tokens.weight');
  let xs = ids.map((id) => emb.slice(id * s.hidden, (id + 1) * s.hidden));
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    const hs = xs.map((x) => rmsNorm(x, get(p + 'input_layernorm.weight'), s.eps));
    const qs = hs.map((h, pos) => headsRoped(matVec(get(p + 'self_attn.q_proj.weight'), h, s.heads * hd), s.heads, hd, pos, inv));
    const ks = hs.map((h, pos) => headsRoped(matVec(get(p + 'self_attn.k_proj.weight'), h, s.kvHeads * hd), s.kvHeads, hd, pos, inv));
    const vs = hs.map((h) => matVec(get(p + 'self_attn.v_proj.weight'), h, s.kvHeads * hd));
    xs = xs.map((x, pos) => {
      const att = new Float64Array(s.heads * hd);
      for (let h = 0; h < s.heads; h++) {
        const kv = Math.floor(h / group);
        const scores: number[] = [];
        for (let t = 0; t <= pos; t++) {
          let d = 0;
          for (let i = 0; i < hd; i++) d += qs[pos]![h * hd + i]! * ks[t]![kv * hd + i]!;
          scores.push(d / Math.sqrt(hd));
        }
        const m = Math.max(...scores);
        const e = scores.map((v) => Math.exp(v - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let t = 0; t <= pos; t++) for (let i = 0; i < hd; i++) att[h * hd + i]! += (e[t]! / z) * vs[t]![kv * hd + i]!;
      }
      const o = matVec(get(p + 'self_attn.o_proj.weight'), att, s.hidden);
      const x1 = x.map((v, i) => v + o[i]!);
      const h2 = rmsNorm(x1, get(p + 'post_attention_layernorm.weight'), s.eps);
      const g = matVec(get(p + 'mlp.gate_proj.weight'), h2, s.ffn);
      const u = matVec(get(p + 'mlp.up_proj.weight'), h2, s.ffn);
      const a = g.map((v, i) => (v / (1 + Math.exp(-v))) * u[i]!);
      const d = matVec(get(p + 'mlp.down_proj.weight'), a, s.hidden);
      return x1.map((v, i) => v + d[i]!);
    });
  }
  const head = w.get('lm_head.weight') ?? emb;
  return xs.map((x) => matVec(head, rmsNorm(x, get('model.norm.weight'), s.eps), s.vocab));
}

function headsRoped(v: Float64Array, heads: number, hd: number, pos: number, inv: Float64Array): Float64Array {
  const out = new Float64Array(v.length);
  for (let h = 0; h < heads; h++) out.set(ropeHalf(v.subarray(h * hd, (h + 1) * hd), pos, inv), h * hd);
  return out;
}
