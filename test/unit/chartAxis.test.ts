// Round axis ticks: every tick a multiple of 1, 2, 2.5 or 5 × 10^k, the last at or above the maximum.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { niceTicks } from '../../src/protocol/chartAxis';

describe('chart axis ticks', () => {
  it('uses round steps and covers the maximum', () => {
    assert.deepEqual(niceTicks(1.025), [0, 0.25, 0.5, 0.75, 1, 1.25]);
    assert.deepEqual(niceTicks(0.0783), [0, 0.02, 0.04, 0.06, 0.08]);
    assert.deepEqual(niceTicks(10), [0, 2, 4, 6, 8, 10]);
    assert.deepEqual(niceTicks(0.9355, 4), [0, 0.25, 0.5, 0.75, 1]);
  });

  it('every tick is a round number and at most maxTicks intervals', () => {
    for (const max of [0.000123, 0.0347, 0.5706, 1.592, 7.3, 123.4, 98765]) {
      const t = niceTicks(max);
      const step = t[1]! - t[0]!;
      const mant = step / 10 ** Math.floor(Math.log10(step));
      assert.ok([1, 2, 2.5, 5].some((f) => Math.abs(mant - f) < 1e-9), `${max}: step ${step}`);
      assert.ok(t.at(-1)! >= max && t.at(-2)! < max, `${max}: ${t.join(', ')}`);
      assert.ok(t.length - 1 <= 5, `${max}: ${t.length - 1} intervals`);
    }
  });

  it('gives a lone zero for nothing to show', () => {
    assert.deepEqual(niceTicks(0), [0]);
    assert.deepEqual(niceTicks(NaN), [0]);
  });
});
