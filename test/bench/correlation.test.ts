import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ranks, spearman } from '../../src/bench/correlation.js';

test('ranks average ties', () => {
  assert.deepEqual(ranks([10, 20, 20, 5]), [2, 3.5, 3.5, 1]);
});

test('spearman: monotone, reversed, and a hand-computed case', () => {
  assert.equal(spearman([1, 2, 3, 4], [10, 100, 1000, 10000]), 1);
  assert.equal(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  // d = [0, 0, 1, -1, 0]: rho = 1 - 6*2 / (5*24) = 0.9
  assert.ok(Math.abs(spearman([1, 2, 3, 4, 5], [1, 2, 4, 3, 5]) - 0.9) < 1e-12);
  assert.ok(Number.isNaN(spearman([1, 1, 1], [1, 2, 3])));
  assert.throws(() => spearman([1], [1]), RangeError);
});
