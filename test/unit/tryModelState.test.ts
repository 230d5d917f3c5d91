// The Try Model panel's saved state after a window reload (src/protocol/tryModel.ts): what the
// serializer accepts, and how a reply cut off by the reload is shown; and the page's messages.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFromTryWebview, restoredTryState, TRY_DEFAULT_MAX_TOKENS } from '../../src/protocol/tryModel';

describe('Try Model panel state', () => {
  it('restores the turns, reloads every model, and marks a reply cut off by the reload as stopped', () => {
    const saved = {
      columns: [{ model: '/m/a', status: 'ready', name: 'a', tokensPerSecond: 9 }, { model: '/m/b', status: 'failed', message: 'x' }],
      system: 'be brief',
      maxTokens: 64,
      turns: [
        { user: 'hi', replies: ['hello', 'hey'], stops: ['eog', 'maxTokens'] },
        { user: 'more', replies: ['par', 'tial'], stops: ['streaming', 'cancelled'] },
      ],
      busy: true,
    };
    assert.deepEqual(restoredTryState(saved), {
      columns: [{ model: '/m/a', status: 'loading' }, { model: '/m/b', status: 'loading' }],
      system: 'be brief',
      maxTokens: 64,
      turns: [
        { user: 'hi', replies: ['hello', 'hey'], stops: ['eog', 'maxTokens'] },
        { user: 'more', replies: ['par', 'tial'], stops: ['cancelled', 'cancelled'] },
      ],
      busy: false,
    });
  });

  it('refuses what is not a panel state, and drops malformed turns and fields', () => {
    assert.equal(restoredTryState(undefined), undefined);
    assert.equal(restoredTryState({ columns: [] }), undefined);
    assert.equal(restoredTryState({ columns: [{ model: 'a' }, { model: 'b' }, { model: 'c' }] }), undefined, 'at most two columns');
    const s = restoredTryState({ columns: [{ model: '/m/a' }], maxTokens: -3, turns: [{ user: 'x', replies: ['a', 'b'] }, { user: 'y', replies: ['z'] }] })!;
    assert.equal(s.maxTokens, TRY_DEFAULT_MAX_TOKENS);
    assert.equal(s.system, '');
    assert.deepEqual(s.turns, [{ user: 'y', replies: ['z'], stops: ['cancelled'] }], 'a turn with the wrong number of replies is dropped');
  });

  it('checks messages from the page', () => {
    assert.ok(isFromTryWebview({ type: 'send', text: 'hi', system: '', maxTokens: 5 }));
    assert.ok(!isFromTryWebview({ type: 'send', text: 'hi', system: '', maxTokens: 0 }));
    assert.ok(!isFromTryWebview({ type: 'send', text: 3, system: '', maxTokens: 5 }));
    assert.ok(isFromTryWebview({ type: 'stop' }));
    assert.ok(!isFromTryWebview({ type: 'eval' }));
    assert.ok(!isFromTryWebview(null));
  });
});
