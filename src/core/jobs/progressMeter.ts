/**
 * Turns a stream of "n more units done" into throttled ProgressEvents with a rate (bytes/s over
 * the whole run so far) and an ETA.
 */
import type { ProgressEvent, ProgressSink } from './types';

export class ProgressMeter {
  private done = 0;
  private readonly start = performance.now();
  private lastEmit = -Infinity;

  constructor(
    private readonly phase: string,
    private readonly total: number,
    private readonly sink: ProgressSink | undefined,
    private readonly unit: ProgressEvent['unit'] = 'bytes',
    /** Minimum time between events, in milliseconds. */
    private readonly intervalMs = 250,
  ) {
    this.emit();
  }

  /** Records `n` more units done; emits at most once per interval. */
  add(n: number): void {
    this.done += n;
    const now = performance.now();
    if (now - this.lastEmit >= this.intervalMs) this.emit(now);
  }

  /** Emits an event now, whatever the interval (e.g. when a new step begins), with an optional message. */
  flush(message?: string): void {
    this.emit(performance.now(), message);
  }

  /** Emits a final event with done = total. */
  finish(message?: string): void {
    this.done = this.total;
    this.emit(performance.now(), message);
  }

  get seconds(): number {
    return (performance.now() - this.start) / 1000;
  }

  private emit(now = performance.now(), message?: string): void {
    this.lastEmit = now;
    if (!this.sink) return;
    const secs = (now - this.start) / 1000;
    const rate = secs > 0 ? this.done / secs : 0;
    const eta = rate > 0 && this.done > 0 ? (this.total - this.done) / rate : null;
    this.sink({
      phase: this.phase,
      done: this.done,
      total: this.total,
      unit: this.unit,
      bytesPerSecond: this.unit === 'bytes' ? rate : 0,
      etaSeconds: eta,
      ...(message ? { message } : {}),
    });
  }
}
