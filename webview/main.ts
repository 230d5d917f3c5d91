/**
 * The charts panel's page: a per-group bar chart of ‖Δ‖ and a layers × module-kinds heatmap, in
 * plain SVG coloured by the theme (CSS variables, including the contributed heat colours). It
 * talks to the extension only through the messages of src/protocol/webview.ts, starting with
 * `ready`. Runs under a CSP without inline code: every element is built through the DOM API.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import {
  type ChartData,
  type ChartGroup,
  type ChartPanelState,
  type FromWebview,
  type ToWebview,
  type ValueMode,
} from '../src/protocol/webview';
import { HEAT_STEPS, heatLegendTicks, heatStep } from '../src/protocol/heatScale';
import { niceTicks } from '../src/protocol/chartAxis';
import { formatNorm, formatPercent, printable } from '../src/protocol/displayFormat';
import { formatPerplexity } from '../src/protocol/evalText';
import { SWEEP_TABLE_HEADER, type SweepChartData, type SweepPanelState, sweepPlot, sweepTableRows } from '../src/protocol/sweepChart';

interface VsCodeApi {
  postMessage(message: FromWebview): void;
  /** The deltas chart's state, or the sweep panel's (the same page serves both panels). */
  getState(): Partial<ChartPanelState> | undefined;
  setState(state: ChartPanelState | SweepPanelState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const SVG = 'http://www.w3.org/2000/svg';

let data: ChartData | undefined;
/** The sweep panel's data (the same page, another panel): drawn instead of the deltas charts. */
let sweep: SweepChartData | undefined;
let mode: ValueMode = vscode.getState()?.mode ?? 'relative';
let layersOnly = vscode.getState()?.layersOnly ?? false;
const saveState = (d: ChartData) => vscode.setState({ a: d.a, b: d.b, mode, layersOnly });
let selected: string | null = null;
let nextRequest = 1;
/** The width the charts were last drawn for (the panel's content width). */
let drawnWidth = 0;

const app = document.getElementById('app')!;

window.addEventListener('error', (e) => post({ type: 'error', message: `${e.message} (${e.filename}:${e.lineno})` }));
window.addEventListener('unhandledrejection', (e) => post({ type: 'error', message: String(e.reason) }));

function post(m: FromWebview): void {
  vscode.postMessage(m);
}

window.addEventListener('message', (event: MessageEvent) => {
  const m = event.data as ToWebview;
  try {
    switch (m?.type) {
      case 'show':
        data = m.data;
        mode = m.mode;
        saveState(m.data);
        render();
        break;
      case 'sweep':
        sweep = m.data;
        // Kept for the panel serializer: the sweep comes back after a window reload.
        vscode.setState({ sweep: m.data });
        renderSweep();
        break;
      case 'reveal':
        selected = m.key;
        highlight(true);
        break;
      case 'loading':
      case 'failed':
        status(m.message, m.type === 'failed');
        break;
      case 'renderPng':
        toPng().then(
          (dataUrl) => post({ type: 'png', requestId: m.requestId, dataUrl }),
          (e: unknown) => post({ type: 'png', requestId: m.requestId, error: String(e) }),
        );
        break;
      case 'reply':
        if (m.error) status(`Could not save: ${m.error}`, true, true);
        break;
    }
  } catch (e) {
    post({ type: 'error', message: e instanceof Error ? `${e.message}\n${e.stack}` : String(e) });
  }
});

function status(text: string, error = false, keep = false): void {
  if (!keep || !data) app.replaceChildren();
  const p = el('p', { class: error ? 'status error' : 'status', id: 'status' }, text);
  app.prepend(p);
}

// ---------------------------------------------------------------------------------------------

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const value = (v: { deltaNorm: number; relative: number }) => (mode === 'relative' ? v.relative : v.deltaNorm);
const fmt = (x: number) => (mode === 'relative' ? formatPercent(x) : formatNorm(x));
const measureName = () => (mode === 'relative' ? 'relative ‖Δ‖ (‖Δ‖ / ‖A‖)' : '‖Δ‖');

function shortLabel(g: ChartGroup): string {
  if (g.layer !== null) return String(g.layer);
  return { embedding: 'emb', final_norm: 'norm', lm_head: 'head', vision_tower: 'vision', audio_tower: 'audio', projector: 'proj', mtp: 'mtp', other: 'other' }[g.key] ?? g.label;
}

function render(): void {
  if (!data) return;
  const d = data;
  app.replaceChildren();

  const header = el('header');
  header.append(el('h1', { id: 'title' }, d.title));
  // One headline: the verdict (with the models' names) and the total ‖Δ‖, not a second percentage.
  header.append(el('p', { class: 'verdict', id: 'verdict' }, `${d.verdict} · total ‖Δ‖ ${formatNorm(d.total.deltaNorm)}`));

  const toolbar = el('div', { class: 'toolbar', role: 'toolbar' });
  const select = el('vscode-single-select' as 'div', { id: 'mode', 'aria-label': 'Measure' });
  for (const [v, label] of [
    ['relative', 'Relative ‖Δ‖ / ‖A‖'],
    ['absolute', 'Absolute ‖Δ‖'],
  ] as const) {
    const o = el('vscode-option' as 'div', { value: v }, label);
    if (v === mode) o.setAttribute('selected', '');
    select.append(o);
  }
  select.addEventListener('change', () => {
    const v = (select as unknown as { value: string }).value === 'absolute' ? 'absolute' : 'relative';
    if (v === mode) return;
    mode = v;
    saveState(d);
    post({ type: 'mode', mode });
    render();
  });
  const png = el('vscode-button' as 'button', { id: 'save-png', secondary: '' }, 'Save as PNG');
  png.addEventListener('click', () => {
    toPng().then(
      (dataUrl) => post({ type: 'savePng', requestId: nextRequest++, dataUrl }),
      (e: unknown) => status(`Could not render the PNG: ${String(e)}`, true, true),
    );
  });
  const csv = el('vscode-button' as 'button', { id: 'save-csv', secondary: '' }, 'Save as CSV');
  csv.addEventListener('click', () => post({ type: 'saveCsv', requestId: nextRequest++ }));
  const only = el('label', { class: 'layers-only' });
  const box = el('input', { type: 'checkbox', id: 'layers-only' });
  box.checked = layersOnly;
  box.addEventListener('change', () => {
    layersOnly = box.checked;
    saveState(d);
    render();
  });
  only.append(box, document.createTextNode(' Layers only (leave out embeddings and LM head)'));
  toolbar.append(select, png, csv, only);
  header.append(toolbar);
  app.append(header);

  const readout = el('p', { id: 'readout', class: 'readout', 'aria-live': 'polite' }, 'Hover a bar or a cell for its values; click to reveal it in the Layer Deltas view.');
  app.append(readout);

  const width = chartWidth();
  drawnWidth = width;
  const bars = el('section', { class: 'chart' });
  bars.append(el('h2', {}, `Per layer: ${measureName()}`));
  bars.append(barChart(d, width));
  app.append(bars);

  const layers = d.groups.filter((g) => g.layer !== null);
  if (layers.length && d.columns.length) {
    const heat = el('section', { class: 'chart' });
    heat.append(el('h2', {}, `Layers × module kinds: ${measureName()}`));
    heat.append(heatmap(d, layers, width));
    app.append(heat);
  }
  app.append(legend(d.scale[mode], width));
  highlight(false);
}

/** The charts' width: the panel's content width (never wider, so nothing is cut off), at most 1400 px. */
function chartWidth(): number {
  return Math.max(240, Math.min(1400, app.clientWidth || 800));
}

// Redraw when the panel changes width (side bar dragged, editor split, window resized): the charts
// are drawn for one width and would be cut off or stay narrow. Once per animation frame at most.
let resizeQueued = false;
new ResizeObserver(() => {
  if (resizeQueued) return;
  resizeQueued = true;
  requestAnimationFrame(() => {
    resizeQueued = false;
    if (data && chartWidth() !== drawnWidth) render();
    if (sweep && chartWidth() !== drawnWidth) renderSweep();
  });
}).observe(app);

function readout(g: ChartGroup, module?: string): void {
  const r = document.getElementById('readout');
  if (!r) return;
  const v = module ? g.modules[module as keyof ChartGroup['modules']] : g;
  if (!v) return;
  r.textContent = `${g.label}${module ? ` · ${module}` : ''}: relative ${formatPercent(v.relative)} · ‖Δ‖ ${formatNorm(v.deltaNorm)}`;
}

function pick(g: ChartGroup): void {
  selected = g.key;
  highlight(false);
  post({ type: 'select', key: g.key });
}

function barChart(d: ChartData, width: number): SVGSVGElement {
  const height = 240;
  const m = { left: 64, right: 12, top: 12, bottom: 36 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const groups = layersOnly && d.groups.some((g) => g.layer !== null) ? d.groups.filter((g) => g.layer !== null) : d.groups;
  const values = groups.map(value).map((x) => (Number.isFinite(x) ? x : 0));
  const tickValues = niceTicks(Math.max(...values, 0), 4);
  const top = tickValues.at(-1)!;
  const scale = d.scale[mode];
  const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, id: 'bars', role: 'img', 'aria-label': `Bar chart of ${measureName()} per group` });
  for (const v of tickValues) {
    const y = m.top + plotH - (top > 0 ? (plotH * v) / top : 0);
    root.append(svg('line', { x1: m.left, x2: width - m.right, y1: y, y2: y, class: 'grid' }));
    root.append(svg('text', { x: m.left - 6, y: y + 4, class: 'tick', 'text-anchor': 'end' }, top > 0 ? fmt(v) : ''));
  }
  const band = plotW / Math.max(1, groups.length);
  const every = Math.ceil(groups.length / Math.max(1, Math.floor(plotW / 28)));
  groups.forEach((g, i) => {
    const v = values[i]!;
    const h = top > 0 ? (plotH * v) / top : 0;
    const x = m.left + i * band + band * 0.15;
    const bar = svg('rect', {
      x,
      y: m.top + plotH - h,
      width: Math.max(1, band * 0.7),
      height: Math.max(h, 0.5),
      class: `bar heat-${heatStep(v, scale)}`,
      'data-key': g.key,
      tabindex: 0,
      role: 'button',
      'aria-label': `${g.label}: ${fmt(v)}`,
    });
    bar.append(svg('title', {}, `${g.label}: relative ${formatPercent(g.relative)}, ‖Δ‖ ${formatNorm(g.deltaNorm)}`));
    bar.addEventListener('mouseenter', () => readout(g));
    bar.addEventListener('focus', () => readout(g));
    bar.addEventListener('click', () => pick(g));
    bar.addEventListener('keydown', (e) => (e.key === 'Enter' || e.key === ' ') && pick(g));
    root.append(bar);
    if (i % every === 0) root.append(svg('text', { x: m.left + i * band + band / 2, y: height - m.bottom + 16, class: 'tick', 'text-anchor': 'middle' }, shortLabel(g)));
  });
  root.append(svg('line', { x1: m.left, x2: width - m.right, y1: m.top + plotH, y2: m.top + plotH, class: 'axis' }));
  root.append(svg('text', { x: m.left + plotW / 2, y: height - 4, class: 'axis-label', 'text-anchor': 'middle' }, 'layer'));
  return root;
}

function heatmap(d: ChartData, layers: ChartGroup[], width: number): SVGSVGElement {
  const m = { left: 72, top: 28, right: 12, bottom: 8 };
  const cellW = Math.max(28, Math.min(72, (width - m.left - m.right) / d.columns.length));
  const cellH = Math.max(12, Math.min(24, 480 / layers.length));
  const w = m.left + cellW * d.columns.length + m.right;
  const h = m.top + cellH * layers.length + m.bottom;
  const scale = d.scale[mode];
  const root = svg('svg', { width: w, height: h, viewBox: `0 0 ${w} ${h}`, id: 'heatmap', role: 'img', 'aria-label': `Heatmap of ${measureName()}, layers by module kinds` });
  d.columns.forEach((c, j) => root.append(svg('text', { x: m.left + j * cellW + cellW / 2, y: m.top - 10, class: 'tick', 'text-anchor': 'middle' }, c)));
  layers.forEach((g, i) => {
    const y = m.top + i * cellH;
    const row = svg('g', { class: 'heat-row', 'data-key': g.key });
    row.append(svg('text', { x: m.left - 6, y: y + cellH / 2 + 4, class: 'tick', 'text-anchor': 'end' }, g.label));
    d.columns.forEach((c, j) => {
      const mv = g.modules[c];
      const v = mv ? value(mv) : NaN;
      const cell = svg('rect', {
        x: m.left + j * cellW + 1,
        y: y + 1,
        width: cellW - 2,
        height: cellH - 2,
        class: mv ? `cell heat-${heatStep(v, scale)}` : 'cell empty',
      });
      if (mv) cell.append(svg('title', {}, `${g.label} · ${c}: relative ${formatPercent(mv.relative)}, ‖Δ‖ ${formatNorm(mv.deltaNorm)}`));
      cell.addEventListener('mouseenter', () => readout(g, c));
      cell.addEventListener('click', () => pick(g));
      row.append(cell);
    });
    root.append(row);
  });
  return root;
}

/** The one heat scale of the tree, the bars and the heatmap, with its ends and midpoint in numbers. */
function legend(max: number, width: number): HTMLElement {
  const box = el('div', { class: 'legend', id: 'legend' });
  box.append(el('div', {}, `Colour: ${measureName()}, one scale for the Layer Deltas tree (unless it shows energy at rank), the bars and the heatmap`));
  const step = Math.max(14, Math.min(40, (width - 40) / HEAT_STEPS));
  const pad = 24;
  const w = step * HEAT_STEPS + 2 * pad;
  const s = svg('svg', { width: w, height: 30, viewBox: `0 0 ${w} 30`, role: 'img', 'aria-label': `Heat scale from ${fmt(0)} to ${fmt(max)}` });
  for (let i = 0; i < HEAT_STEPS; i++) s.append(svg('rect', { x: pad + i * step, y: 0, width: step, height: 12, class: `heat-${i}` }));
  for (const t of heatLegendTicks(max)) {
    s.append(svg('text', { x: pad + t.at * step * HEAT_STEPS, y: 26, class: 'tick legend-tick', 'text-anchor': 'middle' }, fmt(t.value)));
  }
  box.append(s);
  return box;
}

function highlight(scroll: boolean): void {
  document.querySelectorAll('.selected').forEach((e) => e.classList.remove('selected'));
  if (!selected) return;
  const hits = document.querySelectorAll(`[data-key="${CSS.escape(selected)}"]`);
  hits.forEach((e) => e.classList.add('selected'));
  const g = data?.groups.find((x) => x.key === selected);
  if (g) readout(g);
  if (scroll) hits[0]?.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

// ---------------------------------------------------------------------------------------------
// PNG: the SVGs are drawn onto a canvas with their computed colours written inline, because an
// SVG loaded as an image sees neither the page's style sheet nor the theme's CSS variables.

async function toPng(): Promise<string> {
  const svgs = [...document.querySelectorAll<SVGSVGElement>('section.chart svg')];
  const titleEl = document.getElementById('title');
  if (!svgs.length) throw new Error('nothing to render');
  const pad = 16;
  const titleH = 28;
  const width = Math.max(...svgs.map((s) => s.width.baseVal.value)) + 2 * pad;
  const height = svgs.reduce((h, s) => h + s.height.baseVal.value + pad, titleH + pad);
  const body = getComputedStyle(document.body);
  const out = svg('svg', { xmlns: SVG, width, height, viewBox: `0 0 ${width} ${height}` });
  out.append(svg('rect', { x: 0, y: 0, width, height, fill: body.backgroundColor || '#1e1e1e' }));
  out.append(svg('text', { x: pad, y: pad + 14, fill: body.color, 'font-family': body.fontFamily, 'font-size': 16, 'font-weight': 600 }, titleEl?.textContent ?? ''));
  let y = titleH + pad;
  for (const s of svgs) {
    const clone = s.cloneNode(true) as SVGSVGElement;
    inlineStyles(s, clone);
    clone.setAttribute('x', String(pad));
    clone.setAttribute('y', String(y));
    out.append(clone);
    y += s.height.baseVal.value + pad;
  }
  const text = new XMLSerializer().serializeToString(out);
  const img = new Image();
  const loaded = new Promise<void>((resolve, reject) => {
    img.onload = () => resolve();
    img.onerror = () => reject(new Error('the SVG did not load as an image'));
  });
  img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(text)}`;
  await loaded;
  const scale = 2;
  const canvas = document.createElement('canvas');
  canvas.width = width * scale;
  canvas.height = height * scale;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('no 2D canvas');
  ctx.scale(scale, scale);
  ctx.drawImage(img, 0, 0);
  return canvas.toDataURL('image/png');
}

function inlineStyles(src: Element, dst: Element): void {
  const cs = getComputedStyle(src);
  for (const p of ['fill', 'stroke', 'stroke-width', 'opacity', 'font-family', 'font-size', 'font-weight']) {
    const v = cs.getPropertyValue(p);
    if (v) dst.setAttribute(p, v);
  }
  dst.removeAttribute('class');
  for (let i = 0; i < src.children.length; i++) inlineStyles(src.children[i]!, dst.children[i]!);
}

// ---------------------------------------------------------------------------------------------
// The ratio sweep: perplexity against ratio (a line through the measured ratios, the lowest
// marked), the table, and a button that reveals the best merge.

function renderSweep(): void {
  if (!sweep) return;
  const d = sweep;
  app.replaceChildren();
  const header = el('header');
  header.append(el('h1', { id: 'title' }, d.title));
  header.append(el('p', { class: 'verdict', id: 'verdict' }, `${d.scored} tokens of ${printable(d.text)} scored; context ${d.context}, stride ${d.stride}; ${d.backend}`));
  const best = d.points.find((p) => p.best);
  if (best?.out) {
    const open = el('vscode-button' as 'button', { id: 'open-best' }, `Reveal Best Merge (ratio ${best.ratio})`);
    const path = best.out;
    open.addEventListener('click', () => post({ type: 'openFolder', path }));
    const toolbar = el('div', { class: 'toolbar', role: 'toolbar' });
    toolbar.append(open);
    header.append(toolbar);
  }
  app.append(header);

  const width = Math.min(chartWidth(), 720);
  drawnWidth = chartWidth();
  const height = 240;
  const m = { left: 64, right: 24, top: 16, bottom: 40 };
  const plot = sweepPlot(d.points, width, height, m);
  const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, id: 'sweep-chart', role: 'img', 'aria-label': 'Perplexity against ratio' });
  for (const t of plot.yTicks) {
    root.append(svg('line', { x1: m.left, x2: width - m.right, y1: t.y, y2: t.y, class: 'grid' }));
    root.append(svg('text', { x: m.left - 6, y: t.y + 4, class: 'tick', 'text-anchor': 'end' }, formatPerplexity(t.value)));
  }
  for (const t of plot.xTicks) root.append(svg('text', { x: t.x, y: height - m.bottom + 16, class: 'tick', 'text-anchor': 'middle' }, String(t.value)));
  root.append(svg('line', { x1: m.left, x2: width - m.right, y1: height - m.bottom, y2: height - m.bottom, class: 'axis' }));
  root.append(svg('text', { x: m.left + (width - m.left - m.right) / 2, y: height - 4, class: 'axis-label', 'text-anchor': 'middle' }, 'ratio'));
  // In ratio order, so the line does not double back when the ratios were listed out of order.
  const order = d.points.map((p, i) => i).sort((a, b) => d.points[a]!.ratio - d.points[b]!.ratio);
  root.append(svg('polyline', { points: order.map((i) => `${plot.points[i]!.x},${plot.points[i]!.y}`).join(' '), class: 'sweep-line' }));
  d.points.forEach((p, i) => {
    const dot = svg('circle', { cx: plot.points[i]!.x, cy: plot.points[i]!.y, r: p.best ? 6 : 4, class: p.best ? 'sweep-dot best' : 'sweep-dot', 'data-ratio': String(p.ratio) });
    dot.append(svg('title', {}, `ratio ${p.ratio}: perplexity ${formatPerplexity(p.perplexity)}${p.best ? ' (lowest)' : ''}`));
    root.append(dot);
  });
  const section = el('section', { class: 'chart' });
  section.append(el('h2', {}, 'Perplexity against ratio (lower is better)'));
  section.append(root);
  app.append(section);

  const table = el('table', { id: 'sweep-table', class: 'sweep-table' });
  const head = el('tr');
  for (const h of SWEEP_TABLE_HEADER) head.append(el('th', {}, h));
  table.append(head);
  for (const [i, cells] of sweepTableRows(d.points, printable).entries()) {
    const tr = el('tr', d.points[i]!.best ? { class: 'best' } : {});
    for (const c of cells) tr.append(el('td', {}, c));
    table.append(tr);
  }
  app.append(table);
}

post({ type: 'ready' });
if (!data && !sweep) status('Waiting for data…');
