import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planMemory } from '../../src/runtime/memory.js';

const sizes: Record<string, number> = { x: 100, a: 400, b: 400, c: 100, d: 400, y: 40 };

test('a chain reuses buffers once lifetimes end; outputs never share with inputs of the same step', () => {
  // x -> a -> b -> c -> d -> y
  const chain = ['x', 'a', 'b', 'c', 'd', 'y'];
  const p = planMemory({
    inputs: ['x'], outputs: ['y'], bytes: (t) => sizes[t],
    steps: chain.slice(1).map((t, i) => ({ reads: [chain[i]], writes: [t] })),
  });
  for (let i = 1; i < chain.length; i++) assert.notEqual(p.slotOf.get(chain[i]), p.slotOf.get(chain[i - 1]), `${chain[i]} shares with its input`);
  assert.equal(p.slotOf.get('b'), p.slotOf.get('x'), 'b should take x\'s freed slot (grown)');
  assert.equal(p.slotBytes.length, 2);
  assert.equal(p.unsharedBytes, 1440);
  assert.ok(p.peakBytes <= 800, `peak ${p.peakBytes}`);
});

test('a tensor read later (a skip connection) keeps its buffer; graph outputs live to the end', () => {
  // x -> a; a -> b; b -> c; (a, c) -> d ; d is an output, c too
  const p = planMemory({
    inputs: ['x'], outputs: ['d', 'c'], bytes: (t) => sizes[t],
    steps: [{ reads: ['x'], writes: ['a'] }, { reads: ['a'], writes: ['b'] }, { reads: ['b'], writes: ['c'] }, { reads: ['a', 'c'], writes: ['d'] }],
  });
  const slot = (t: string) => p.slotOf.get(t);
  assert.notEqual(slot('b'), slot('a'));
  assert.notEqual(slot('c'), slot('a'));
  assert.notEqual(slot('d'), slot('a'));
  assert.notEqual(slot('d'), slot('c'));
  assert.equal(new Set(['a', 'b', 'c', 'd'].map(slot)).size >= 3, true);
});
