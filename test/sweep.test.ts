// test/sweep.ts: the sampled sweeps reach every option and every case, deterministically.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fullSweeps, sampleSweep, sweepPairs } from './sweep.js';

test('a sampled sweep gives each option distinct cases and reaches every case, the same for the same seed', { skip: fullSweeps && 'FCM_OPT_FULL_SWEEPS=1' }, () => {
  for (const [options, cases, per] of [[24, 5, 2], [5, 4, 2], [24, 5, 1], [3, 7, 3], [7, 7, 1]]) {
    for (const seed of [1, 900, 1200]) {
      const s = sampleSweep(options, cases, per, seed);
      assert.equal(s.length, options);
      for (const picked of s) {
        assert.equal(picked.length, per);
        assert.equal(new Set(picked).size, per, `distinct cases per option: ${picked}`);
        assert.ok(picked.every((c) => Number.isInteger(c) && c >= 0 && c < cases));
      }
      const counts = Array<number>(cases).fill(0);
      for (const picked of s) for (const c of picked) counts[c]++;
      assert.ok(counts.every((n) => n >= 1), `every case runs: ${counts}`);
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 2, `cases evenly used: ${counts}`);
      assert.deepEqual(sampleSweep(options, cases, per, seed), s);
      assert.equal(sweepPairs(options, cases, per, seed).length, options * per);
    }
  }
  assert.notDeepEqual(sampleSweep(24, 5, 2, 1), sampleSweep(24, 5, 2, 2));
  assert.throws(() => sampleSweep(2, 5, 2, 1), /cannot reach all 5 cases/);
  // perOption >= cases: the full product.
  assert.deepEqual(sampleSweep(2, 3, 3, 1), [[0, 1, 2], [0, 1, 2]]);
});
