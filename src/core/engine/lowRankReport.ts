/**
 * What extract --rank reports: per factored matrix and in total, the energy of τ the adapter
 * captures (Σ_{i≤k} s_i² / ‖τ‖²) and its relative error ‖τ − B·A‖_F / ‖τ‖_F, measured on the
 * float32 factors as stored. Written to chatvec_extract.json and the model card (README.md).
 */
import { modelCard } from './modelFiles';

export interface MatrixReport {
  readonly tensor: string;
  readonly module: string;
  readonly shape: readonly [number, number];
  /** The rank allowed (--rank, --rank-for, capped at min(rows, cols)) and the rank kept. */
  readonly maxRank: number;
  readonly rank: number;
  /** ‖τ‖²_F, Σ_{i≤rank} s_i² and ‖τ − B·A‖²_F (float64). */
  readonly norm2: number;
  readonly captured2: number;
  readonly error2: number;
  readonly powerIterations: number;
}

export interface LowRankSummary {
  readonly matrices: number;
  /** Σ captured² / Σ ‖τ‖² over the factored matrices. */
  readonly energy: number;
  /** √(Σ error² / Σ ‖τ‖²). */
  readonly relativeError: number;
  /** Float32 values of the factors. */
  readonly parameters: number;
}

/** chatvec_extract.json. */
export interface LowRankReport {
  readonly format: 'chatvec-lora/1';
  readonly base: string;
  readonly chat: string;
  readonly rank: number;
  readonly rankFor: readonly string[];
  readonly energyTarget: number | null;
  readonly skipEmbed: boolean;
  readonly oversample: number;
  readonly minPowerIterations: number;
  readonly factorDtype: 'F32';
  /** Every module's product is stored at this scale (lora_alpha = r, alpha_pattern = rank_pattern). */
  readonly scale: 1;
  readonly split: string;
  readonly total: LowRankSummary;
  readonly matrices: readonly (MatrixReport & { readonly energy: number; readonly relativeError: number })[];
  /** Tensors stored exactly in chatvec_deltas.safetensors. */
  readonly exactDeltas: readonly string[];
  readonly tool: string;
}

/** Totals over the matrices (an all-zero τ counts as fully captured). */
export function summarizeMatrices(ms: readonly MatrixReport[]): LowRankSummary {
  const norm2 = ms.reduce((s, m) => s + m.norm2, 0);
  const captured2 = ms.reduce((s, m) => s + m.captured2, 0);
  const error2 = ms.reduce((s, m) => s + m.error2, 0);
  return {
    matrices: ms.length,
    energy: norm2 > 0 ? captured2 / norm2 : 1,
    relativeError: norm2 > 0 ? Math.sqrt(error2 / norm2) : 0,
    parameters: ms.reduce((s, m) => s + m.rank * (m.shape[0] + m.shape[1]), 0),
  };
}

const pct = (x: number) => `${(100 * x).toFixed(2)} %`;

/** The model card: PEFT's front matter, how to use the adapter, and the per-matrix table. */
export function lowRankCard(r: LowRankReport, warnings: readonly string[]): string {
  const rows = r.matrices.map((m) => `| \`${m.module}\` | ${m.shape[0]}×${m.shape[1]} | ${m.rank} | ${pct(m.energy)} | ${pct(m.relativeError)} |`);
  const body = modelCard('Chat vector as a LoRA adapter', [
    'A chat vector τ = θ_chat − θ_base ([Chat Vector](https://arxiv.org/abs/2310.04799)) stored as a PEFT LoRA adapter by `chatvec extract --rank`:',
    'each weight matrix τ_W ≈ B·A from a randomized SVD (B = U·√S, A = √S·Vᵀ, scale 1: `lora_alpha` = `r`, `alpha_pattern` = `rank_pattern`).',
    '',
    `- base: \`${r.base}\``,
    `- chat: \`${r.chat}\``,
    `- rank: ${r.rank}${r.rankFor.length ? ` (--rank-for ${r.rankFor.join(', ')})` : ''}${r.energyTarget !== null ? `, per matrix the fewest components holding ${pct(r.energyTarget)} of ‖τ‖² (--energy)` : ''}`,
    `- captured energy Σ s_i² / ‖τ‖² over ${r.total.matrices} matrices: ${pct(r.total.energy)}; relative error ‖τ − B·A‖ / ‖τ‖: ${pct(r.total.relativeError)}`,
    `- ${r.exactDeltas.length ? `${r.exactDeltas.length} tensors LoRA cannot express (norms, biases) stored exactly in \`chatvec_deltas.safetensors\`: \`chatvec apply\` adds them, PEFT and vLLM ignore them` : 'no tensors outside the adapter'}`,
    `- ${r.skipEmbed ? 'input embeddings and LM head left out (--skip-embed)' : 'input embeddings and LM head included'}`,
    `- tool: ${r.tool}`,
    '',
    'Use it with PEFT (`PeftModel.from_pretrained(base, THIS)`), vLLM (`--lora-modules name=THIS`), or add it to a continually-pretrained model with `chatvec apply --target CP --vector THIS --out OUT`.',
    '',
    '| module | shape | rank | energy | relative error |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    ...(warnings.length ? ['', 'Warnings:', ...warnings.map((w) => `- ${w}`)] : []),
  ]);
  return `---\nlibrary_name: peft\nbase_model: ${JSON.stringify(r.base)}\ntags:\n- chatvec\n- lora\n---\n\n${body}`;
}
