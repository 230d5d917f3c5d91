// The one heat scale of the tree, the bars and the heatmap: its colours reach 3:1 contrast against
// the backgrounds of VS Code's default themes (WCAG 2.x relative luminance, computed here in
// float64 from the sRGB definition, independently of the code), package.json and the tree's
// icon files carry the same colours, and steps and legend numbers fall where they should.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { HEAT_PALETTE, HEAT_STEPS, heatLegendTicks, heatScaleMax, heatStep } from '../../src/protocol/heatScale';

const repo = path.resolve(__dirname, '../..');

/** WCAG 2.x contrast ratio of two #rrggbb colours. */
function contrast(a: string, b: string): number {
  const luminance = (hex: string): number => {
    const channel = (i: number) => {
      const c = parseInt(hex.slice(1 + 2 * i, 3 + 2 * i), 16) / 255;
      return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2);
  };
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

// editor.background and sideBar.background of VS Code 1.100's built-in themes (the chart sits on
// the first, the tree's icons on the second).
const BACKGROUNDS: { theme: string; kind: 'dark' | 'light'; colour: string }[] = [
  { theme: 'Dark Modern editor', kind: 'dark', colour: '#1f1f1f' },
  { theme: 'Dark Modern side bar', kind: 'dark', colour: '#181818' },
  { theme: 'Dark+ editor', kind: 'dark', colour: '#1e1e1e' },
  { theme: 'Dark+ side bar', kind: 'dark', colour: '#252526' },
  { theme: 'Dark High Contrast', kind: 'dark', colour: '#000000' },
  { theme: 'Light Modern editor', kind: 'light', colour: '#ffffff' },
  { theme: 'Light Modern side bar', kind: 'light', colour: '#f8f8f8' },
  { theme: 'Light+ side bar', kind: 'light', colour: '#f3f3f3' },
  { theme: 'Light High Contrast', kind: 'light', colour: '#ffffff' },
];

describe('heat scale', () => {
  it('the reference contrast is right on known pairs', () => {
    assert.equal(contrast('#000000', '#ffffff'), 21);
    assert.ok(Math.abs(contrast('#777777', '#ffffff') - 4.48) < 0.01);
  });

  for (const bg of BACKGROUNDS) {
    it(`every step, the lowest included, reaches 3:1 against ${bg.theme} (${bg.colour})`, () => {
      const palette = HEAT_PALETTE[bg.kind];
      assert.equal(palette.length, HEAT_STEPS);
      for (const [i, c] of palette.entries()) {
        const r = contrast(c, bg.colour);
        assert.ok(r >= 3, `step ${i} ${c} on ${bg.colour}: ${r.toFixed(2)}:1`);
      }
    });
  }

  it('package.json contributes the same colours (dark = high contrast, light = high contrast light)', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as {
      contributes: { colors: { id: string; defaults: Record<string, string> }[] };
    };
    const colours = pkg.contributes.colors.filter((c) => c.id.startsWith('chatVector.heat'));
    assert.equal(colours.length, HEAT_STEPS);
    for (let i = 0; i < HEAT_STEPS; i++) {
      const c = colours.find((x) => x.id === `chatVector.heat${i}`);
      assert.ok(c, `chatVector.heat${i}`);
      assert.deepEqual(c.defaults, { dark: HEAT_PALETTE.dark[i], light: HEAT_PALETTE.light[i], highContrast: HEAT_PALETTE.dark[i], highContrastLight: HEAT_PALETTE.light[i] });
    }
  });

  it("the tree's icon files are filled with the scale's colours", () => {
    for (const kind of ['dark', 'light'] as const) {
      for (let i = 0; i < HEAT_STEPS; i++) {
        const svg = fs.readFileSync(path.join(repo, 'media', 'heat', `${kind}-${i}.svg`), 'utf8');
        assert.match(svg, new RegExp(`fill="${HEAT_PALETTE[kind][i]}"`), `${kind}-${i}.svg`);
      }
    }
  });

  it('steps split 0…max into equal parts; max is the last step; nothing positive is step 0', () => {
    assert.equal(heatStep(0, 8), 0);
    assert.equal(heatStep(NaN, 8), 0);
    assert.equal(heatStep(-1, 8), 0);
    assert.equal(heatStep(3, 0), 0);
    assert.equal(heatStep(0.999, 8), 0);
    assert.equal(heatStep(1, 8), 1);
    assert.equal(heatStep(4, 8), 4);
    assert.equal(heatStep(7.999, 8), 7);
    assert.equal(heatStep(8, 8), 7);
  });

  it('the maximum ignores non-finite values; the legend names 0, the midpoint and the maximum', () => {
    assert.equal(heatScaleMax([0.1, NaN, Infinity, 0.3, -2]), 0.3);
    assert.equal(heatScaleMax([]), 0);
    assert.deepEqual(heatLegendTicks(0.08), [
      { value: 0, at: 0 },
      { value: 0.04, at: 0.5 },
      { value: 0.08, at: 1 },
    ]);
  });
});
