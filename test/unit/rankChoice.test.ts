// The rank field of the editor's Extract Chat Vector… (`R` or `R @ E`), read into extract's options.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRankChoice } from '../../src/protocol/rankChoice';

describe('parseRankChoice', () => {
  it('reads a rank, or a largest rank with an energy target', () => {
    assert.deepEqual(parseRankChoice('16'), { rank: 16 });
    assert.deepEqual(parseRankChoice(' 64 @ 0.9 '), { rank: 64, energy: 0.9 });
    assert.deepEqual(parseRankChoice('8@1'), { rank: 8, energy: 1 });
    assert.deepEqual(parseRankChoice('32 @ .95'), { rank: 32, energy: 0.95 });
  });
  it('says what is wrong otherwise', () => {
    assert.match(parseRankChoice('') as string, /Enter a rank/);
    assert.match(parseRankChoice('16.5') as string, /Enter a rank/);
    assert.match(parseRankChoice('-4') as string, /Enter a rank/);
    assert.match(parseRankChoice('0') as string, /whole number ≥ 1/);
    assert.match(parseRankChoice('16 @ 1.5') as string, /energy target must be in \(0, 1\]/);
    assert.match(parseRankChoice('16 @ 0') as string, /energy target must be in \(0, 1\]/);
  });
});
