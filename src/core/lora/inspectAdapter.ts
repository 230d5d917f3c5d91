/** `inspect` of a path that may be a PEFT LoRA adapter: the weights' report plus what the adapter is. */
import { openCheckpoint } from '../checkpoint/checkpoint';
import { type AdapterSummary, type InspectReport, inspectReport } from '../checkpoint/inspect';
import { type Adapter, isAdapterFolder, openAdapter } from './adapter';

/** The adapter's rank, alpha, targets and whole tensors, for display. */
export function adapterSummary(a: Adapter): AdapterSummary {
  const factors = [...a.lowRank.values()];
  return {
    rank: a.config.r,
    alpha: a.config.alpha,
    rslora: a.config.rslora,
    otherRanks: [...new Set(factors.map((f) => f.rank).filter((r) => r !== a.config.r))].sort((x, y) => x - y),
    modules: factors.length,
    targets: [...new Set(factors.map((f) => f.module.slice(f.module.lastIndexOf('.') + 1)))].sort(),
    fullTensors: [...a.full.keys()],
    baseModel: a.config.baseModel,
  };
}

/** One line for dry runs and recipe diagnostics: rank, alpha, scale rule and what the adapter changes. */
export function adapterLine(a: Adapter): string {
  const s = adapterSummary(a);
  const ranks = s.otherRanks.length ? ` (also ${s.otherRanks.join(', ')} by rank_pattern)` : '';
  const whole = s.fullTensors.length ? `, ${s.fullTensors.length} whole tensor(s)` : '';
  const deltas = a.direct.size ? `, ${a.direct.size} exact delta(s)` : '';
  return `LoRA r=${s.rank}${ranks}, lora_alpha=${s.alpha}${s.rslora ? ' (rsLoRA)' : ''}: ${s.modules} matrices (${s.targets.join(', ') || 'none'})${whole}${deltas}`;
}

/**
 * The inspect report of a checkpoint, or of an adapter folder (its weights, plus `adapter`).
 * @throws ChatVecError as openCheckpoint / openAdapter
 */
export function inspectPath(path: string): InspectReport {
  if (!isAdapterFolder(path)) return inspectReport(openCheckpoint(path));
  const a = openAdapter(path);
  return { ...inspectReport(a.weights), adapter: adapterSummary(a) };
}
