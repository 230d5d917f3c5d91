/**
 * The one heat scale of the Layer Deltas tree, the bar chart and the heatmap: the same steps, the
 * same colours and the same maximum everywhere, so a layer has one colour in all three. Shared by
 * the extension and the webview (no `vscode` import).
 *
 * The colours are the defaults of the contributed theme colours `chatVector.heat0…7` (package.json
 * repeats them; a unit test keeps both equal) and of the tree's icon files media/heat/*.svg. Every
 * step reaches 3:1 contrast (WCAG 1.4.11, non-text) against the editor and side-bar backgrounds
 * of VS Code's default themes: `dark` is for dark and high-contrast dark themes, `light` for light
 * and high-contrast light ones. Hue runs blue → green → yellow → red as the change grows.
 */

/** Number of steps of the heat scale. */
export const HEAT_STEPS = 8;

/** The scale's colours (#rrggbb), step 0 (smallest change) first. */
export const HEAT_PALETTE: { readonly dark: readonly string[]; readonly light: readonly string[] } = {
  dark: ['#6f8fc7', '#4fa3d1', '#3fb3a8', '#5fbf6f', '#a8c957', '#e0c94a', '#f0903a', '#f2503c'],
  light: ['#5b7fb8', '#3a7fb0', '#2a8585', '#3c8a4a', '#7a8a20', '#a8740f', '#c0501f', '#a01a14'],
};

/**
 * The step of the heat scale for `value` on a scale 0…`max`: step i covers
 * [i/HEAT_STEPS·max, (i+1)/HEAT_STEPS·max), `max` itself is the last step. NaN, ≤ 0 and a scale
 * without a positive maximum give step 0.
 */
export function heatStep(value: number, max: number): number {
  if (!(value > 0) || !(max > 0)) return 0;
  return Math.min(HEAT_STEPS - 1, Math.floor((value / max) * HEAT_STEPS));
}

/** The scale's maximum over every value shown with it (non-finite values are left out; 0 when none is positive). */
export function heatScaleMax(values: Iterable<number>): number {
  let max = 0;
  for (const v of values) if (Number.isFinite(v) && v > max) max = v;
  return max;
}

/** The numbers a legend writes under the scale: its two ends and its midpoint, as fractions of its width. */
export function heatLegendTicks(max: number): { readonly value: number; readonly at: number }[] {
  return [0, 0.5, 1].map((at) => ({ value: at * max, at }));
}
