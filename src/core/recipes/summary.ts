/**
 * The dry-run view of a plan: what will be written, how much will be read, a rough time and memory
 * estimate, and which tensors each parameter filter applies to.
 */
import { CHUNK_ELEMENTS } from '../engine/chunking';
import { formatBytes, formatDuration, table } from '../format';
import { dtypeBits } from '../safetensors/dtype';
import { type FilterReport, type MergePlan, inputBytes } from './plan';
import { pathLabel } from './yamlSource';

export interface PlanSummary {
  readonly method: string;
  readonly tensorCount: number;
  readonly mergedTensors: number;
  /** Non-float tensors copied unchanged. */
  readonly copiedTensors: number;
  readonly outputBytes: number;
  /** Bytes read by each pass (0 when the method does not need it). */
  readonly readBytes: { readonly analyse: number; readonly refine: number; readonly write: number };
  readonly threads: number;
  /** Rough: bytes moved over an assumed rate, in seconds. */
  readonly estimatedSeconds: number;
  /** Rough peak resident memory of the job, in bytes (it does not grow with model size). */
  readonly estimatedMemoryBytes: number;
  readonly outputLayers: number | null;
  readonly filters: readonly FilterReport[];
  readonly warnings: readonly string[];
  readonly tensors: readonly { readonly name: string; readonly shape: readonly number[]; readonly dtype: string; readonly inputs: readonly string[]; readonly kind: string }[];
}

/** Assumed throughput per worker (decode, compute, encode) and of the disk, in bytes per second. */
const PER_THREAD_RATE = 400e6;
const DISK_RATE = 2e9;

/** Summarises a plan for `threads` workers. */
export function summarizePlan(plan: MergePlan, threads: number): PlanSummary {
  let write = 0;
  let analyse = 0;
  let refine = 0;
  let outputBytes = 0;
  let maxInputs = 1;
  for (const t of plan.tensors) {
    const read = t.inputs.reduce((a, i) => a + inputBytes(i.entry, t.elementCount), 0);
    const out = (t.elementCount * dtypeBits(t.dtype)) / 8;
    outputBytes += out;
    write += read;
    maxInputs = Math.max(maxInputs, t.inputs.length);
    if (t.kind !== 'merge') continue;
    const trims = t.densities.some((d) => d < 1);
    if (plan.method === 'slerp') analyse += read;
    if (plan.method === 'ties' && trims) {
      analyse += read;
      refine += read;
    }
    if ((plan.method === 'dare_linear' || plan.method === 'dare_ties') && trims && t.rescale) analyse += read;
  }
  const moved = write + outputBytes + analyse + refine;
  const rate = Math.min(threads * PER_THREAD_RATE, DISK_RATE);
  const perWorker = 30e6 + CHUNK_ELEMENTS * (20 + 4 * maxInputs);
  return {
    method: plan.method,
    tensorCount: plan.tensors.length,
    mergedTensors: plan.tensors.filter((t) => t.kind === 'merge').length,
    copiedTensors: plan.tensors.filter((t) => t.kind === 'copy').length,
    outputBytes,
    readBytes: { analyse, refine, write },
    threads,
    estimatedSeconds: moved / rate,
    estimatedMemoryBytes: 100e6 + threads * perWorker,
    outputLayers: plan.outputLayers,
    filters: plan.filters,
    warnings: plan.warnings,
    tensors: plan.tensors.map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype, inputs: t.inputs.map((i) => i.model.given), kind: t.kind })),
  };
}

/** The summary as text for a terminal or an output channel; `verbose` lists every tensor. */
export function formatPlanSummary(s: PlanSummary, verbose = false): string {
  const reads = [
    s.readBytes.analyse ? `analyse ${formatBytes(s.readBytes.analyse)}` : '',
    s.readBytes.refine ? `refine ${formatBytes(s.readBytes.refine)}` : '',
    `write pass ${formatBytes(s.readBytes.write)}`,
  ].filter(Boolean);
  const lines = [
    `merge_method: ${s.method}`,
    `tensors:      ${s.tensorCount} (${s.mergedTensors} merged${s.copiedTensors ? `, ${s.copiedTensors} copied` : ''})${s.outputLayers !== null ? `, ${s.outputLayers} layers` : ''}`,
    `output size:  ${formatBytes(s.outputBytes)}`,
    `reads:        ${reads.join(', ')}`,
    `estimate:     ~${formatDuration(s.estimatedSeconds)} on ${s.threads} thread${s.threads === 1 ? '' : 's'}, ~${formatBytes(s.estimatedMemoryBytes)} memory (rough)`,
  ];
  if (s.filters.length) {
    lines.push('', 'filters (first match wins):');
    const rows = s.filters.map((f) => [
      pathLabel(f.path),
      f.filter === null ? '(all)' : `"${f.filter}"`,
      `${f.matched} tensor${f.matched === 1 ? '' : 's'}${f.shadowed ? ` (+${f.shadowed} taken by earlier entries)` : ''}`,
      f.examples.join(', ') + (f.matched > f.examples.length ? ', …' : ''),
    ]);
    lines.push(table(rows).replace(/^/gm, '  '));
  }
  if (s.warnings.length) lines.push('', 'warnings:', ...s.warnings.map((w) => `  - ${w}`));
  if (verbose) {
    lines.push('', 'tensors:');
    lines.push(table(s.tensors.map((t) => [t.name, `[${t.shape.join(', ')}]`, t.dtype, t.kind === 'copy' ? 'copied' : `${t.inputs.length} inputs`])).replace(/^/gm, '  '));
  }
  return lines.join('\n');
}
