import type { Command } from 'commander';
import type { InspectReport } from '../../core/checkpoint/inspect';
import { formatBytes, formatCount, printable, printableLines, table } from '../../protocol/displayFormat';
import { formatQuantization } from '../../protocol/quantizationText';
import { inspectCheckpoint } from '../jobs';
import { action } from '../run';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('show a checkpoint: architecture, parameters, dtypes, size, shards, metadata, layers (reads headers only)')
    .argument('<checkpoint>', 'a checkpoint folder, a .safetensors file or a Hugging Face id (org/name[@rev], from the hub cache)')
    .option('--json', 'print the full catalogue as JSON (name, dtype, shape, file, byte offsets)')
    .action(
      action(async (path: string, opts: { json?: boolean }) => {
        const report = await inspectCheckpoint(path);
        process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : renderInspect(report));
      }),
    );
}

/** Which table grouped the tensors and who chose it: the config, the names, or neither. */
function familyText(r: InspectReport): string {
  if (r.familyChosenBy === 'config') return `${r.family}, from config.json`;
  if (r.familyChosenBy === 'names') return `${r.family}, guessed from tensor names: ${r.architecture !== null ? 'config.json names no family chatvec knows' : 'no config.json'}`;
  return 'generic name patterns: no known family';
}

/** What an adapter folder is, in place of the architecture line. */
function adapterLines(a: NonNullable<InspectReport['adapter']>): string[] {
  const scale = a.alpha / (a.rslora ? Math.sqrt(a.rank) : a.rank);
  return [
    `  adapter       PEFT LoRA, r ${a.rank}${a.otherRanks.length ? ` (also ${a.otherRanks.join(', ')} by rank_pattern)` : ''}, alpha ${a.alpha}${a.rslora ? ', rsLoRA' : ''} (scale ${Number(scale.toPrecision(4))})`,
    `  modules       ${a.modules} adapted: ${a.targets.map(printable).join(', ')}${a.fullTensors.length ? `; saved whole: ${a.fullTensors.slice(0, 4).map(printable).join(', ')}${a.fullTensors.length > 4 ? ' …' : ''}` : ''}`,
    `  base model    ${a.baseModel !== null ? printable(a.baseModel) : 'not named'}`,
  ];
}

/** The report as text for a terminal; names, paths and metadata from the checkpoint are escaped (`printable`). */
export function renderInspect(r: InspectReport): string {
  const dtypes = Object.entries(r.dtypes)
    .map(([d, n]) => `${d} ${formatCount(n)}`)
    .join(', ');
  const lines = [
    printable(r.path),
    `  architecture  ${r.architecture !== null ? printable(r.architecture) : 'unknown (no config.json)'}  (layer names: ${familyText(r)})`,
    `  parameters    ${formatCount(r.parameterCount)} (${r.parameterCount.toLocaleString('en-US')}) in ${r.tensorCount} tensors`,
    `  dtypes        ${dtypes || 'none'}`,
    `  size          ${formatBytes(r.fileBytes)} in ${r.shards.length} file${r.shards.length === 1 ? '' : 's'}`,
    `  layers        ${r.layerCount}${r.vocabSize !== null ? `   vocabulary ${r.vocabSize}` : ''}`,
  ];
  if (r.adapter) lines.splice(1, 1, ...adapterLines(r.adapter));
  if (r.quantization) lines.push(`  quantized     ${printable(formatQuantization(r.quantization))}`);
  if (r.shards.length > 1 || r.shards.some((s) => s.metadata && Object.keys(s.metadata).length)) {
    lines.push('', '  shards');
    for (const s of r.shards) {
      const meta = s.metadata ? Object.entries(s.metadata).map(([k, v]) => `${printable(k)}=${shorten(printable(v))}`).join(' ') : '';
      lines.push(`    ${printable(s.fileName)}  ${formatBytes(s.size)}  ${s.tensorCount} tensors  ${meta}`.trimEnd());
    }
  }
  lines.push('', '  per layer');
  const rows = [['group', 'tensors', 'parameters', 'size'], ...r.groups.map((g) => [g.label, String(g.tensorCount), formatCount(g.parameterCount), formatBytes(g.bytes)])];
  lines.push(...table(rows, new Set([1, 2, 3])).split('\n').map((l) => `    ${l}`));
  // Every field above that comes from the files is escaped; this pass makes sure nothing else slips through.
  return printableLines(lines.join('\n')) + '\n';
}

function shorten(v: string): string {
  return v.length > 60 ? v.slice(0, 57) + '…' : v;
}
