import { test } from 'node:test';
import assert from 'node:assert/strict';
import { median, p90, percentile } from '../../src/bench/stats.js';

test('median of odd and even counts, order-independent', () => {
  assert.equal(median([5]), 5);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([10, 1, 1, 1, 10]), 1);
});

test('p90 is the nearest-rank 90th percentile (a measured value)', () => {
  const ten = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
  assert.equal(p90(ten), 9);
  assert.equal(p90([...ten, 11]), 10);  // 11 values: rank ceil(9.9) = 10
  assert.equal(p90([7]), 7);
  assert.equal(p90([1, 2]), 2);
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.equal(p90(hundred), 90);
  assert.equal(percentile(hundred, 100), 100);
  assert.equal(percentile(hundred, 1), 1);
  assert.equal(percentile([3, 1, 2], 50), 2);
});

test('empty input, non-finite values and bad percentiles throw', () => {
  assert.throws(() => median([]), RangeError);
  assert.throws(() => p90([]), RangeError);
  assert.throws(() => median([1, NaN]), RangeError);
  assert.throws(() => percentile([1], 0), RangeError);
  assert.throws(() => percentile([1], 101), RangeError);
});
