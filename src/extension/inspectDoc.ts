/** "Inspect": a read-only Markdown document with a checkpoint's header summary and layer table. */
import type * as vscode from 'vscode';
import { formatBytes, formatCount, printable } from '../protocol/displayFormat';
import type { InspectReport } from '../protocol/taskHost';
import { formatQuantization } from '../protocol/quantizationText';
import { dtypeSummary } from './checkpoints';

export const INSPECT_SCHEME = 'chatvector-inspect';

/** The report as Markdown; names, paths and metadata from the checkpoint are escaped (`printable`). */
export function inspectMarkdown(r: InspectReport): string {
  const lines = [
    `# ${printable(r.path)}`,
    '',
    '| | |',
    '|:--|--:|',
    `| Architecture | ${r.architecture !== null ? printable(r.architecture) : '—'} |`,
    `| Model family | ${r.family} |`,
    `| Parameters | ${formatCount(r.parameterCount)} (${r.parameterCount.toLocaleString('en-US')}) |`,
    `| Layers | ${r.layerCount} |`,
    `| Vocabulary | ${r.vocabSize ?? '—'} |`,
    `| Dtype | ${dtypeSummary(r)} |`,
    ...(r.quantization ? [`| Quantized | ${printable(formatQuantization(r.quantization))} |`] : []),
    `| Tensors | ${r.tensorCount} |`,
    `| Tensor bytes | ${formatBytes(r.tensorBytes)} |`,
    `| Files | ${r.shards.length} (${formatBytes(r.fileBytes)}) |`,
    '',
    '## Groups',
    '',
    '| group | tensors | parameters | bytes |',
    '|:--|--:|--:|--:|',
    ...r.groups.map((g) => `| ${g.label} | ${g.tensorCount} | ${formatCount(g.parameterCount)} | ${formatBytes(g.bytes)} |`),
    '',
    '## Files',
    '',
    '| file | tensors | size |',
    '|:--|--:|--:|',
    ...r.shards.map((s) => `| ${printable(s.fileName)} | ${s.tensorCount} | ${formatBytes(s.size)} |`),
    '',
    '## Tensors',
    '',
    '| name | dtype | shape | file |',
    '|:--|:--|:--|:--|',
    ...r.tensors.map((t) => `| ${printable(t.name)} | ${t.dtype} | [${t.shape.join(', ')}] | ${printable(t.file)} |`),
    '',
  ];
  return lines.join('\n');
}

/** Serves `chatvector-inspect:/name.md?path=…` from the task host's `inspect` (headers only). */
export class InspectDocuments implements vscode.TextDocumentContentProvider {
  constructor(private readonly inspect: (p: string) => Promise<InspectReport>) {}

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const p = new URLSearchParams(uri.query).get('path');
    if (!p) return '# No checkpoint named';
    try {
      return inspectMarkdown(await this.inspect(p));
    } catch (e) {
      return `# ${printable(p)}\n\nCould not read the checkpoint: ${printable(e instanceof Error ? e.message : String(e))}\n`;
    }
  }
}
