/**
 * The ratio-sweep panel: the chart webview's page (chart.ts chartPageHtml) showing perplexity
 * against ratio and the table of a finished sweep, with a button that reveals the best merge. One
 * panel, reused by the next sweep; the same `ready` handshake as the deltas chart. It comes back
 * after a window reload (the page keeps the sweep with setState).
 */
import * as vscode from 'vscode';
import { type SweepChartData, restoredSweep } from '../protocol/sweepChart';
import { SWEEP_VIEW_TYPE } from '../protocol/webview';
import { chartPageHtml, isFromWebview } from './chart';
import { Disposable } from './dispose';

export class SweepPanel extends Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private ready = false;
  private data: SweepChartData | undefined;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
    /** The button's action: reveal or open a merge's folder. */
    private readonly openFolder: (path: string) => Promise<void>,
  ) {
    super();
    this.register({ dispose: () => this.panel?.dispose() });
    // After a window reload the panel comes back with the sweep its page kept (restoredSweep checks it).
    this.register(
      vscode.window.registerWebviewPanelSerializer(SWEEP_VIEW_TYPE, {
        deserializeWebviewPanel: async (panel, state: unknown) => {
          this.data = restoredSweep(state);
          this.adopt(panel);
          if (!this.data) panel.dispose();
        },
      }),
    );
  }

  /** What the panel shows now (for the tests). */
  get shown(): SweepChartData | undefined {
    return this.data;
  }

  /** Opens (or focuses) the panel with this sweep. */
  show(data: SweepChartData): void {
    this.data = data;
    if (!this.panel) {
      const panel = vscode.window.createWebviewPanel(SWEEP_VIEW_TYPE, data.title, vscode.ViewColumn.Active, {
        enableScripts: true,
        retainContextWhenHidden: false,
        localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist'), vscode.Uri.joinPath(this.extensionUri, 'media')],
      });
      this.adopt(panel);
    } else {
      this.panel.title = data.title;
      this.panel.reveal(undefined, false);
      if (this.ready) void this.panel.webview.postMessage({ type: 'sweep', data });
    }
  }

  private adopt(panel: vscode.WebviewPanel): void {
    this.panel = panel;
    this.ready = false;
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'icon.svg');
    panel.webview.html = chartPageHtml(panel.webview, this.extensionUri, 'Ratio Sweep');
    const subs = [
      panel.webview.onDidReceiveMessage((m: unknown) => this.onMessage(panel, m)),
      // A hidden webview loses its page (no retainContextWhenHidden) and says `ready` again.
      panel.onDidChangeViewState(() => (this.ready = this.ready && panel.visible)),
    ];
    panel.onDidDispose(() => {
      subs.forEach((s) => s.dispose());
      if (this.panel === panel) {
        this.panel = undefined;
        this.ready = false;
      }
    });
  }

  private onMessage(panel: vscode.WebviewPanel, m: unknown): void {
    if (panel !== this.panel || !isFromWebview(m)) return;
    if (m.type === 'ready') {
      this.ready = true;
      if (this.data) void panel.webview.postMessage({ type: 'sweep', data: this.data });
    } else if (m.type === 'openFolder') {
      // Only a folder this panel listed: the page is not trusted to name any path.
      if (this.data?.points.some((p) => p.out === m.path)) void this.openFolder(m.path).catch((e: unknown) => void vscode.window.showErrorMessage(String(e)));
    } else if (m.type === 'error') {
      this.log.error(`sweep webview: ${m.message}`);
    }
  }
}
