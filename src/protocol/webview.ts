/**
 * Messages between the extension and the charts webview (webview/main.ts). Both sides import this
 * one file. The webview announces `ready` before the extension sends anything (a message posted
 * earlier would be lost while the page loads); requests that expect an answer carry a `requestId`
 * and get exactly one `reply`, with `error` set when they failed.
 */
import type { SweepChartData } from './sweepChart';

/** The view type of the chart panel; also names its serializer and activation event. */
export const CHART_VIEW_TYPE = 'chatVector.chart';

/** The view type of the ratio-sweep panel (the same page, drawing a SweepChartData). */
export const SWEEP_VIEW_TYPE = 'chatVector.sweep';

/** Module kinds shown as heatmap columns, in the order a transformer block runs them. */
export const CHART_MODULE_COLUMNS = ['q', 'k', 'v', 'kv', 'qkv', 'o', 'gate', 'up', 'gate_up', 'down', 'router', 'norm'] as const;
export type ChartModuleColumn = (typeof CHART_MODULE_COLUMNS)[number];

/** Statistics of one cell or bar: ‖Δ‖ (Frobenius) and ‖Δ‖/‖A‖ (a fraction, not a percentage). */
export interface ChartValue {
  readonly deltaNorm: number;
  readonly relative: number;
}

/** A group's key, shared by the chart and the Layer Deltas tree: "layer:3" for a block, else its role ("embedding"). */
export function groupKey(role: string, layer: number | null): string {
  return role === 'layer' ? `layer:${layer}` : role;
}

/** One group of the comparison (a layer, the embeddings, the LM head …), in network order. */
export interface ChartGroup extends ChartValue {
  /** Stable key shared with the Layer Deltas tree, e.g. "layer:3" or "embedding". */
  readonly key: string;
  readonly label: string;
  /** Block index for transformer layers, null for the others. */
  readonly layer: number | null;
  /** Per module kind (only the kinds present in this group). */
  readonly modules: Partial<Record<ChartModuleColumn, ChartValue>>;
}

/** Everything one chart shows. Sizes are O(layers × module kinds), never O(model size). */
export interface ChartData {
  /** "tiny-base → tiny-chat". */
  readonly title: string;
  readonly a: string;
  readonly b: string | null;
  readonly verdict: string;
  readonly total: ChartValue;
  readonly groups: readonly ChartGroup[];
  /** The module kinds that occur in any layer, in CHART_MODULE_COLUMNS order. */
  readonly columns: readonly ChartModuleColumn[];
  /**
   * The heat scale's maximum per measure, over groups, module cells and tensors: the tree, the bars
   * and the heatmap colour with this one scale (src/protocol/heatScale.ts).
   */
  readonly scale: Readonly<Record<ValueMode, number>>;
}

export type ValueMode = 'relative' | 'absolute';

/** State the webview keeps with `setState`, handed back by the panel serializer after a reload. */
export interface ChartPanelState {
  readonly a: string;
  readonly b: string | null;
  readonly mode: ValueMode;
  /** The bar chart leaves out embeddings, LM head and other non-layer groups (their scale flattens the layers). */
  readonly layersOnly?: boolean;
}

// ---------------------------------------------------------------------------------------------
// extension → webview

export type ToWebview =
  | { readonly type: 'show'; readonly data: ChartData; readonly mode: ValueMode }
  /** The ratio sweep: perplexity against ratio, and the table (the sweep panel). */
  | { readonly type: 'sweep'; readonly data: SweepChartData }
  /** Highlights a group (selected in the tree); null clears the highlight. */
  | { readonly type: 'reveal'; readonly key: string | null }
  | { readonly type: 'loading'; readonly message: string }
  | { readonly type: 'failed'; readonly message: string }
  /** Asks the webview to render the chart as PNG and answer with `png`. */
  | { readonly type: 'renderPng'; readonly requestId: number }
  | { readonly type: 'reply'; readonly requestId: number; readonly error?: string };

// ---------------------------------------------------------------------------------------------
// webview → extension

export type FromWebview =
  | { readonly type: 'ready' }
  /** The user clicked a group in a chart. */
  | { readonly type: 'select'; readonly key: string }
  | { readonly type: 'mode'; readonly mode: ValueMode }
  /** Save buttons; the extension asks where and answers with `reply`. */
  | { readonly type: 'saveCsv'; readonly requestId: number }
  | { readonly type: 'savePng'; readonly requestId: number; readonly dataUrl: string }
  /** Answer to `renderPng`. */
  | { readonly type: 'png'; readonly requestId: number; readonly dataUrl?: string; readonly error?: string }
  /** The sweep panel's button: reveal (or open) a merge's folder. */
  | { readonly type: 'openFolder'; readonly path: string }
  /** A script error inside the webview, for the log. */
  | { readonly type: 'error'; readonly message: string };
