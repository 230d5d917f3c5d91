/** Value-axis ticks of the charts at round numbers (1, 2, 2.5 or 5 × a power of ten). */

/**
 * Ticks 0, step, 2·step … up to the first multiple of `step` at or above `max`, with at most
 * `maxTicks` intervals. A `max` ≤ 0 or not finite gives [0].
 */
export function niceTicks(max: number, maxTicks = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0];
  const raw = max / maxTicks;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * p).find((s) => s >= raw * (1 - 1e-12))!;
  const n = Math.max(1, Math.ceil(max / step - 1e-9));
  // Multiply, not accumulate, and round away float noise (0.30000000000000004).
  return Array.from({ length: n + 1 }, (_, i) => Number((i * step).toPrecision(12)));
}
