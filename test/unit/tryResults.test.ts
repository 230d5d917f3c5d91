// The editor's views of perplexity results: the table of several models (differences to the first,
// computed here in float64 from the reports' own numbers) and the ratio sweep's chart points
// (pixel positions computed here from the box and the values).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EvalReport } from '../../src/core/tryit/evaluate';
import type { SweepRow } from '../../src/core/tryit/sweep';
import { EVAL_TABLE_HEADER, evalTableRows, formatEvalMarkdown } from '../../src/protocol/evalText';
import { restoredSweep, sweepChartData, sweepPlot, sweepPoints, sweepTableRows } from '../../src/protocol/sweepChart';

function report(model: string, meanNll: number, ids: number[] = [1, 2, 3, 4]): EvalReport {
  return {
    model, gguf: `${model}.gguf`, ggufFrom: 'converted', context: 8, stride: 4, windows: 1, ids, nlls: [], scored: ids.length - 1,
    meanNll, perplexity: Math.exp(meanNll), backend: 'CPU', seconds: 1, tokensPerSecond: 3, warnings: [],
  };
}

describe('perplexity table', () => {
  it('lists each model with its numbers and its difference to the first', () => {
    const rows = evalTableRows([report('/w/cp', 2.5), report('/w/merged', 2.4), report('/w/other', 2.6, [1, 9, 9])], (m) => m.split('/').pop()!);
    assert.equal(rows.length, 3);
    assert.ok(rows.every((r) => r.length === EVAL_TABLE_HEADER.length));
    assert.deepEqual(rows[0], ['cp', '2.5000', Math.exp(2.5).toFixed(3), '3', '8 / 4', '—', '—']);
    assert.equal(rows[1]![5], '−0.1000');
    assert.equal(rows[1]![6], `×${(Math.exp(2.4) / Math.exp(2.5)).toFixed(4)}`);
    // Another tokenization: marked, as the CLI's --compare notes it.
    assert.equal(rows[2]![5], '+0.1000 *');
  });

  it('escapes Markdown in model names and explains the marker only when used', () => {
    const md = formatEvalMarkdown('/w/text.txt', [report('a|b_*c', 1), report('d', 1.5)]);
    assert.ok(md.includes('| a\\|b\\_\\*c | 1.0000 |'), md);
    assert.ok(!md.includes('split the text differently'));
    assert.ok(formatEvalMarkdown('t', [report('a', 1), report('b', 1, [5])]).includes('split the text differently'));
  });
});

describe('ratio sweep chart', () => {
  const rows: SweepRow[] = [
    { ratio: 1, out: '/o/ratio-1', report: report('/o/ratio-1', 2.2), best: false },
    { ratio: 0, out: '/o/ratio-0', report: report('/o/ratio-0', 2.9), best: false },
    { ratio: 0.5, out: '/o/ratio-0.5', report: report('/o/ratio-0.5', 2.1), best: true },
  ];

  it('keeps the sweep\'s best mark and the order of the ratios', () => {
    const points = sweepPoints(rows);
    assert.deepEqual(points.map((p) => [p.ratio, p.best]), [[1, false], [0, false], [0.5, true]]);
    const data = sweepChartData(rows, { title: 't', text: 'x.txt', out: '/o' });
    assert.deepEqual([data.context, data.stride, data.scored], [8, 4, 3]);
    assert.deepEqual(sweepTableRows(points)[2], ['0.5', '2.1000', Math.exp(2.1).toFixed(3), '/o/ratio-0.5  ← lowest']);
    assert.equal(sweepTableRows([{ ...points[0]!, out: null }])[0]![3], '(removed)');
  });

  it('places ratios linearly across the box and perplexity from 0 to the top tick', () => {
    const m = { left: 50, right: 10, top: 10, bottom: 30 };
    const plot = sweepPlot(sweepPoints(rows), 460, 240, m);
    const plotW = 460 - 50 - 10;
    const plotH = 240 - 10 - 30;
    const top = plot.yTicks.at(-1)!.value;
    assert.ok(top >= Math.exp(2.9) && plot.yTicks[0]!.value === 0);
    rows.forEach((r, i) => {
      assert.ok(Math.abs(plot.points[i]!.x - (50 + r.ratio * plotW)) < 1e-9, `x of ratio ${r.ratio}`);
      assert.ok(Math.abs(plot.points[i]!.y - (10 + plotH - (plotH * Math.exp(r.report.meanNll)) / top)) < 1e-9, `y of ratio ${r.ratio}`);
    });
    assert.deepEqual(plot.xTicks.map((t) => t.value), [0, 0.5, 1]);
    assert.equal(plot.yTicks[0]!.y, 10 + plotH);
    // Ratios not starting at 0: the smallest at the left edge, the largest at the right.
    const shifted = sweepPlot(sweepPoints(rows.map((r) => ({ ...r, ratio: 0.25 + r.ratio / 2 }))), 460, 240, m);
    assert.deepEqual(shifted.points.map((p) => p.x), [50 + plotW, 50, 50 + plotW / 2]);
    // One ratio: in the middle.
    assert.equal(sweepPlot(sweepPoints(rows.slice(0, 1)), 460, 240, m).points[0]!.x, 50 + plotW / 2);
  });

  it('a reloaded sweep panel shows the sweep its page kept, and nothing from a damaged state', () => {
    const data = sweepChartData(rows, { title: 't', text: 'x.txt', out: '/o' });
    // What the page stores goes through structured cloning: a JSON round trip stands in for it.
    const kept = JSON.parse(JSON.stringify({ sweep: data })) as unknown;
    assert.deepEqual(restoredSweep(kept), data);
    assert.equal(restoredSweep(undefined), undefined);
    assert.equal(restoredSweep({ a: '/m', b: null, mode: 'relative' }), undefined, 'a deltas chart state');
    assert.equal(restoredSweep({ sweep: { ...data, points: [] } }), undefined, 'no points');
    assert.equal(restoredSweep({ sweep: { ...data, points: [{ ...data.points[0]!, meanNll: 'x' }] } }), undefined, 'a damaged point');
    assert.equal(restoredSweep({ sweep: { ...data, context: null } }), undefined, 'a damaged field');
  });
});
