// Roles move predictably: one role per checkpoint, one checkpoint per role, swaps instead of losses.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assignRole, describeRoleMoves } from '../../src/protocol/roleMoves';

type R = 'base' | 'chat' | 'target';
const ROLES: R[] = ['base', 'chat', 'target'];
const LABEL: Record<R, string> = { base: 'Base', chat: 'Chat', target: 'Target' };
const say = (moves: Parameters<typeof describeRoleMoves<R>>[0]) => describeRoleMoves(moves, (r) => LABEL[r], (p) => p.toUpperCase());
const trio = { base: 'b', chat: 'c', target: 't' };

describe('role moves', () => {
  it('Set as Base on the Target swaps the two roles; Chat stays; the input is not modified', () => {
    const before = { ...trio };
    const r = assignRole(ROLES, before, 'base', 't');
    assert.deepEqual(r.map, { base: 't', chat: 'c', target: 'b' });
    assert.deepEqual(before, trio);
    assert.equal(say(r.moves), 'T is now Base (was Target); B is now Target (was Base).');
  });

  it('a checkpoint without a role takes it; the old holder loses it, and is told', () => {
    const r = assignRole(ROLES, trio, 'chat', 'x');
    assert.deepEqual(r.map, { base: 'b', chat: 'x', target: 't' });
    assert.equal(say(r.moves), 'X is now Chat; C is no longer Chat.');
  });

  it('a free role moves from the checkpoint that had another one', () => {
    const r = assignRole(ROLES, { base: 'b' }, 'target', 'b');
    assert.deepEqual(r.map, { target: 'b' });
    assert.equal(say(r.moves), 'B is now Target (was Base).');
  });

  it('giving the role a checkpoint already has, or clearing a free role, changes nothing', () => {
    assert.deepEqual(assignRole(ROLES, trio, 'chat', 'c'), { map: trio, moves: [] });
    assert.deepEqual(assignRole(ROLES, { base: 'b' }, 'chat', undefined), { map: { base: 'b' }, moves: [] });
    assert.equal(say([]), '');
  });

  it('clearing takes the role from its holder', () => {
    const r = assignRole(ROLES, trio, 'base', undefined);
    assert.deepEqual(r.map, { chat: 'c', target: 't' });
    assert.equal(say(r.moves), 'B is no longer Base.');
  });
});
