/**
 * The HTML shell of every webview page (the chart page, the Try Model page): one script from
 * dist/ and one style sheet from media/, under a Content Security Policy with no inline code and
 * no network — scripts need the nonce, styles and fonts come from the extension.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';

export interface WebviewPage {
  /** The bundle in dist/, e.g. "webview.js". */
  readonly script: string;
  /** The style sheet in media/, e.g. "chart.css". */
  readonly css: string;
  readonly title: string;
  /** The placeholder shown until the script takes over. */
  readonly loading: string;
  /** Extra CSP sources for images (e.g. the chart's PNG export uses data: and blob: URLs). */
  readonly imgSrc?: string;
}

export function webviewPageHtml(webview: vscode.Webview, extensionUri: vscode.Uri, page: WebviewPage): string {
  const nonce = randomBytes(16).toString('base64');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', page.script));
  const css = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', page.css));
  const csp = [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src ${webview.cspSource}`,
    `font-src ${webview.cspSource}`,
    ...(page.imgSrc ? [`img-src ${webview.cspSource} ${page.imgSrc}`] : []),
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="${css}">
<title>${page.title}</title>
</head>
<body>
<main id="app" aria-live="polite"><p class="status" id="status">${page.loading}</p></main>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
}
