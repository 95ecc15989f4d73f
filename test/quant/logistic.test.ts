// LOGISTIC on 8-bit tensors (src/quant/reference.ts logistic): TFLite's table (activations.cc SigmoidPrepare,
// LUTPopulate) against the definition in float64: q_out = round(256 * sigmoid(scale * (q - zp))) + zp_out, clamped.
// float32 and float64 can round a value that lies within float32 rounding of a half-way point differently; the test
// counts how close each value comes to one and requires the two to agree wherever none is that close (all, here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { logistic, qLimits, type QType } from '../../src/quant/reference.js';

for (const [t, scale, zeroPoint] of [['uint8', 0.0735, 131], ['uint8', 0.25, 0], ['int8', 0.05, -3], ['int8', 0.125, 10]] as Array<[QType, number, number]>) {
  test(`logistic ${t}, input scale ${scale}, zero point ${zeroPoint}: every input value as the definition says`, () => {
    const [lo, hi] = qLimits(t);
    const x = t === 'int8' ? Int8Array.from({ length: 256 }, (_, i) => i - 128) : Uint8Array.from({ length: 256 }, (_, i) => i);
    const y = logistic(x, { scale, zeroPoint }, { scale: 1 / 256, zeroPoint: lo }, t);
    let nearHalf = 0;
    for (let i = 0; i < 256; i++) {
      const s = 256 / (1 + Math.exp(-scale * (x[i] - zeroPoint)));
      if (Math.abs(s - Math.floor(s) - 0.5) < 1e-5) { nearHalf++; continue; }
      const want = Math.min(hi, Math.max(lo, Math.round(s) + lo));
      assert.equal(y[i], want, `input ${x[i]}`);
    }
    assert.equal(nearHalf, 0);
  });
}

test('logistic refuses an output grid other than TFLite\'s (scale 1/256, zero point at the type\'s minimum)', () => {
  assert.throws(() => logistic(new Uint8Array(4), { scale: 0.1, zeroPoint: 0 }, { scale: 1 / 255, zeroPoint: 0 }, 'uint8'), RangeError);
  assert.throws(() => logistic(new Int8Array(4), { scale: 0.1, zeroPoint: 0 }, { scale: 1 / 256, zeroPoint: 0 }, 'int8'), RangeError);
});
