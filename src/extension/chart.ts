/**
 * The chart panel: a webview with a per-layer bar chart and a layers × module-kinds heatmap of the
 * comparison shown in the Layer Deltas view. Strict CSP with a nonce, scripts and styles only from
 * dist/ and media/, a `ready` handshake before the first message, and a serializer so the panel
 * comes back after a window reload (its state names the compared checkpoints; the diff itself is
 * cached by the task host, so restoring costs no recomputation).
 */
import { webviewPageHtml } from './webviewPage';
import * as vscode from 'vscode';
import { CHART_VIEW_TYPE, type ChartData, type ChartPanelState, type FromWebview, type ToWebview, type ValueMode } from '../protocol/webview';
import type { Comparison } from './deltas';
import { Disposable } from './dispose';

export interface ChartHost {
  /** Re-runs (from cache) the comparison a restored panel names. */
  restore(a: string, b: string | null): Promise<Comparison | undefined>;
  /** The user clicked a group in the chart. */
  select(key: string): void;
  mode(mode: ValueMode): void;
  readonly log: vscode.LogOutputChannel;
}

export function isFromWebview(m: unknown): m is FromWebview {
  if (typeof m !== 'object' || m === null) return false;
  const t = (m as { type?: unknown }).type;
  return t === 'ready' || t === 'select' || t === 'mode' || t === 'saveCsv' || t === 'savePng' || t === 'png' || t === 'openFolder' || t === 'error';
}

export class ChartPanel extends Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private ready = false;
  /** Messages posted before the webview said `ready`, delivered right after it does. */
  private pending: ToWebview[] = [];
  private data: ChartData | undefined;
  private valueMode: ValueMode = 'relative';
  private nextRequest = 1;
  private readonly pngWaiters = new Map<number, (r: { dataUrl?: string; error?: string }) => void>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly host: ChartHost,
  ) {
    super();
    this.register(
      vscode.window.registerWebviewPanelSerializer(CHART_VIEW_TYPE, {
        deserializeWebviewPanel: async (panel, state: unknown) => {
          this.adopt(panel);
          const s = state as Partial<ChartPanelState> | undefined;
          if (s && typeof s.a === 'string') {
            this.valueMode = s.mode === 'absolute' ? 'absolute' : 'relative';
            this.post({ type: 'loading', message: 'Restoring the comparison…' });
            try {
              const c = await this.host.restore(s.a, typeof s.b === 'string' ? s.b : null);
              if (c) this.show(c.chartData(), this.valueMode);
            } catch (e) {
              this.post({ type: 'failed', message: e instanceof Error ? e.message : String(e) });
            }
          } else {
            this.post({ type: 'failed', message: 'Nothing to show: compare two checkpoints first.' });
          }
        },
      }),
    );
    this.register({ dispose: () => this.panel?.dispose() });
  }

  get isOpen(): boolean {
    return !!this.panel;
  }
  get isReady(): boolean {
    return !!this.panel && this.ready;
  }
  get shown(): ChartData | undefined {
    return this.data;
  }

  /** Opens (or focuses) the panel with this comparison. */
  open(data: ChartData | undefined, mode: ValueMode): void {
    if (!this.panel) {
      const panel = vscode.window.createWebviewPanel(CHART_VIEW_TYPE, 'Layer Deltas Chart', vscode.ViewColumn.Active, this.webviewOptions());
      this.adopt(panel);
    } else {
      this.panel.reveal(undefined, false);
    }
    if (data) this.show(data, mode);
    else this.post({ type: 'failed', message: 'Nothing to show: compare two checkpoints first.' });
  }

  show(data: ChartData, mode: ValueMode): void {
    this.data = data;
    this.valueMode = mode;
    if (this.panel) this.panel.title = `Deltas: ${data.title}`;
    this.post({ type: 'show', data, mode });
  }

  reveal(key: string | null): void {
    if (this.panel) this.post({ type: 'reveal', key });
  }

  /** Renders the chart as PNG inside the webview (it has the fonts and colours) and returns it. */
  async renderPng(): Promise<Buffer> {
    if (!this.panel) throw new Error('The chart is not open.');
    const requestId = this.nextRequest++;
    const answer = new Promise<{ dataUrl?: string; error?: string }>((resolve) => this.pngWaiters.set(requestId, resolve));
    this.post({ type: 'renderPng', requestId });
    const timeout = new Promise<{ dataUrl?: string; error?: string }>((resolve) => setTimeout(() => resolve({ error: 'the chart did not answer within 20 s' }), 20000));
    const r = await Promise.race([answer, timeout]);
    this.pngWaiters.delete(requestId);
    if (!r.dataUrl) throw new Error(`Could not render the chart: ${r.error ?? 'no image'}`);
    return pngFromDataUrl(r.dataUrl);
  }

  /** CSV of the shown chart: one row per group, columns for each module kind. */
  csv(): string {
    const d = this.data;
    if (!d) throw new Error('The chart shows nothing yet.');
    const head = ['group', 'layer', 'delta_norm', 'relative', ...d.columns.flatMap((c) => [`${c}_delta_norm`, `${c}_relative`])];
    const lines = [head.join(',')];
    for (const g of d.groups) {
      const cells = [csvCell(g.label), g.layer === null ? '' : String(g.layer), num(g.deltaNorm), num(g.relative)];
      for (const c of d.columns) {
        const m = g.modules[c];
        cells.push(m ? num(m.deltaNorm) : '', m ? num(m.relative) : '');
      }
      lines.push(cells.join(','));
    }
    return lines.join('\n') + '\n';
  }

  private webviewOptions(): vscode.WebviewPanelOptions & vscode.WebviewOptions {
    return {
      enableScripts: true,
      // The chart is cheap to redraw from its data; keeping hidden iframes alive is not worth it.
      retainContextWhenHidden: false,
      localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist'), vscode.Uri.joinPath(this.extensionUri, 'media')],
    };
  }

  private adopt(panel: vscode.WebviewPanel): void {
    this.panel?.dispose();
    this.panel = panel;
    this.ready = false;
    panel.webview.options = this.webviewOptions();
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'icon.svg');
    panel.webview.html = this.html(panel.webview);
    const subs = [
      panel.webview.onDidReceiveMessage((m: unknown) => this.onMessage(panel, m)),
      panel.onDidChangeViewState(() => {
        // A hidden webview loses its page (no retainContextWhenHidden) and says `ready` again.
        if (!panel.visible) this.ready = false;
      }),
    ];
    panel.onDidDispose(() => {
      subs.forEach((s) => s.dispose());
      if (this.panel === panel) {
        this.panel = undefined;
        this.ready = false;
        this.pending = [];
      }
    });
  }

  private post(m: ToWebview): void {
    if (!this.panel) return;
    if (!this.ready) {
      // Only the latest `show` matters; keep other messages in order.
      if (m.type === 'show') this.pending = this.pending.filter((p) => p.type !== 'show' && p.type !== 'loading' && p.type !== 'failed');
      this.pending.push(m);
      return;
    }
    void this.panel.webview.postMessage(m);
  }

  private async onMessage(panel: vscode.WebviewPanel, m: unknown): Promise<void> {
    if (panel !== this.panel) return;
    if (!isFromWebview(m)) {
      this.host.log.warn(`chart: ignored an unknown message ${JSON.stringify(m)?.slice(0, 200)}`);
      return;
    }
    switch (m.type) {
      case 'ready': {
        this.ready = true;
        const queued = this.pending.splice(0);
        // A page that reloaded (hidden and shown again) needs the data again.
        if (this.data && !queued.some((q) => q.type === 'show')) queued.unshift({ type: 'show', data: this.data, mode: this.valueMode });
        for (const q of queued) void panel.webview.postMessage(q);
        return;
      }
      case 'select':
        this.host.select(m.key);
        return;
      case 'mode':
        this.valueMode = m.mode === 'absolute' ? 'absolute' : 'relative';
        this.host.mode(this.valueMode);
        return;
      case 'png':
        this.pngWaiters.get(m.requestId)?.({ dataUrl: m.dataUrl, error: m.error });
        return;
      case 'error':
        this.host.log.error(`chart webview: ${m.message}`);
        return;
      case 'saveCsv':
      case 'savePng': {
        const kind = m.type === 'saveCsv' ? 'csv' : 'png';
        try {
          const uri = await this.askTarget(kind);
          if (uri) {
            const bytes = kind === 'csv' ? Buffer.from(this.csv(), 'utf8') : pngFromDataUrl((m as { dataUrl: string }).dataUrl);
            await vscode.workspace.fs.writeFile(uri, bytes);
            this.host.log.info(`chart saved to ${uri.fsPath}`);
          }
          this.post({ type: 'reply', requestId: m.requestId });
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          this.host.log.error(`chart save: ${message}`);
          void vscode.window.showErrorMessage(`Could not save the chart: ${message}`);
          this.post({ type: 'reply', requestId: m.requestId, error: message });
        }
        return;
      }
    }
  }

  /** Asks where to save; the default sits in the first workspace folder. */
  async askTarget(kind: 'csv' | 'png'): Promise<vscode.Uri | undefined> {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const name = `${(this.data?.title ?? 'deltas').replace(/[^\w.-]+/g, '_')}.${kind}`;
    return vscode.window.showSaveDialog({
      defaultUri: folder ? vscode.Uri.joinPath(folder, name) : undefined,
      filters: kind === 'csv' ? { CSV: ['csv'] } : { PNG: ['png'] },
      title: kind === 'csv' ? 'Save Chart Data as CSV' : 'Save Chart as PNG',
    });
  }

  private html(webview: vscode.Webview): string {
    return chartPageHtml(webview, this.extensionUri, 'Layer Deltas Chart');
  }
}

/**
 * The page of the chart webview (dist/webview.js and media/chart.css): the deltas chart panel and
 * the ratio-sweep panel load the same page and send it different messages.
 */
export function chartPageHtml(webview: vscode.Webview, extensionUri: vscode.Uri, title: string): string {
  // images: only the data: and blob: URLs of a PNG export.
  return webviewPageHtml(webview, extensionUri, { script: 'webview.js', css: 'chart.css', title, loading: 'Loading the chart…', imgSrc: 'data: blob:' });
}

function pngFromDataUrl(dataUrl: string): Buffer {
  const m = /^data:image\/png;base64,([A-Za-z0-9+/=]+)$/.exec(dataUrl);
  if (!m) throw new Error('the chart sent something that is not a PNG image');
  return Buffer.from(m[1]!, 'base64');
}

function num(x: number): string {
  return Number.isFinite(x) ? String(x) : '';
}

function csvCell(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
