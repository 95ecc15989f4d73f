// TFLite's fixed-point primitives: hand-checked values (multiplier/shift pairs, rounding of negative ties,
// saturation) and property tests against exact int64 (BigInt) and real arithmetic.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  expOnNegativeValues, getReciprocal, multiplyByQuantizedMultiplier, multiplyByQuantizedMultiplierSingleRounding,
  quantizeMultiplier, quantizeMultiplierGreaterThanOne, quantizeMultiplierSmallerThanOneExp, roundingDivideByPOT, srdhm,
  srdhmBigInt, tfliteRound, withRounding,
} from '../../src/quant/fixedpoint.js';
import { rng } from '../../fixtures/tflite-builder.js';

const I32_MIN = -2147483648, I32_MAX = 2147483647;

describe('quantizeMultiplier', () => {
  it('gives the known significand/shift pairs', () => {
    assert.deepEqual(quantizeMultiplier(0.5), { multiplier: 1 << 30, shift: 0 });
    assert.deepEqual(quantizeMultiplier(1), { multiplier: 1 << 30, shift: 1 });
    assert.deepEqual(quantizeMultiplier(0.75), { multiplier: 1610612736, shift: 0 });
    // frexp(0.1) = 0.8 * 2^-3; round(0.8 * 2^31) = round(1717986918.4).
    assert.deepEqual(quantizeMultiplier(0.1), { multiplier: 1717986918, shift: -3 });
    assert.deepEqual(quantizeMultiplier(3), { multiplier: 1610612736, shift: 2 });
    assert.deepEqual(quantizeMultiplier(0), { multiplier: 0, shift: 0 });
    // q rounds up to 2^31: halved, shift + 1.
    assert.deepEqual(quantizeMultiplier(1 - 2 ** -40), { multiplier: 1 << 30, shift: 1 });
    // Below 2^-32 the shift would pass -31: flushed to zero.
    assert.deepEqual(quantizeMultiplier(2 ** -32), { multiplier: 1 << 30, shift: -31 });
    assert.deepEqual(quantizeMultiplier(2 ** -33), { multiplier: 0, shift: 0 });
    assert.throws(() => quantizeMultiplierSmallerThanOneExp(1));
    assert.throws(() => quantizeMultiplierGreaterThanOne(0.5));
  });
  it('round-trips random multipliers to 2^-31 relative precision', () => {
    const r = rng(1);
    for (let i = 0; i < 2000; i++) {
      const m = 2 ** (r() * 40 - 30) * (0.5 + r());
      const { multiplier, shift } = quantizeMultiplier(m);
      assert.ok(multiplier >= 2 ** 30 && multiplier < 2 ** 31, `${m}: ${multiplier}`);
      assert.ok(Math.abs((multiplier * 2 ** (shift - 31)) / m - 1) <= 2 ** -30, `${m}`);
    }
  });
});

describe('SaturatingRoundingDoublingHighMul and RoundingDivideByPOT', () => {
  it('round ties as gemmlowp does: positive ties up, negative ties toward zero', () => {
    assert.equal(srdhm(1 << 30, 1 << 30), 1 << 29); // 0.5 * 0.5
    assert.equal(srdhm(3, 1 << 30), 2);             // 1.5 -> 2
    assert.equal(srdhm(-3, 1 << 30), -1);           // -1.5 -> -1 (nudge 1 - 2^30 is just under a half)
    assert.equal(srdhm(1, 1 << 30), 1);             // 0.5 -> 1
    assert.equal(srdhm(-1, 1 << 30), 0);            // -0.5 -> 0
    assert.equal(srdhm(I32_MIN, I32_MIN), I32_MAX); // the one overflow saturates
    assert.equal(srdhm(I32_MIN, I32_MAX), -I32_MAX);
  });
  it('equals the int64 (BigInt) computation on random and extreme operands', () => {
    const r = rng(2);
    const edge = [0, 1, -1, 2, -2, 1 << 30, -(1 << 30), I32_MAX, I32_MIN, I32_MAX - 1, I32_MIN + 1, 65535, 65536, -65536, -65537];
    const vals = [...edge, ...Array.from({ length: 3000 }, () => Math.floor(r() * 2 ** 32) - 2 ** 31), ...Array.from({ length: 500 }, () => Math.floor(r() * 200000) - 100000)];
    for (let i = 0; i < vals.length; i++) {
      for (const b of [vals[(i * 7) % vals.length], edge[i % edge.length]]) {
        assert.equal(srdhm(vals[i], b), srdhmBigInt(vals[i], b), `${vals[i]} * ${b}`);
      }
    }
  });
  it('RoundingDivideByPOT rounds half away from zero', () => {
    assert.equal(roundingDivideByPOT(3, 1), 2);
    assert.equal(roundingDivideByPOT(-3, 1), -2);
    assert.equal(roundingDivideByPOT(5, 2), 1);
    assert.equal(roundingDivideByPOT(-5, 2), -1);
    assert.equal(roundingDivideByPOT(6, 2), 2);
    assert.equal(roundingDivideByPOT(-6, 2), -2);
    assert.equal(roundingDivideByPOT(-7, 2), -2);
    assert.equal(roundingDivideByPOT(I32_MIN, 31), -1);
    assert.equal(roundingDivideByPOT(I32_MAX, 31), 1);
    assert.throws(() => roundingDivideByPOT(1, 32));
    const r = rng(3);
    for (let i = 0; i < 2000; i++) {
      const x = Math.floor(r() * 2 ** 32) - 2 ** 31, e = Math.floor(r() * 32);
      assert.equal(roundingDivideByPOT(x, e), Math.sign(x) * Math.round(Math.abs(x) / 2 ** e) || 0, `${x} >> ${e}`);
    }
  });
  it('MultiplyByQuantizedMultiplier is within 1 of round(x * m) and exact on known cases', () => {
    assert.equal(multiplyByQuantizedMultiplier(100, 1 << 30, 0), 50);
    assert.equal(multiplyByQuantizedMultiplier(100, 1 << 30, 1), 100);
    assert.equal(multiplyByQuantizedMultiplier(100, 1 << 30, -1), 25);
    assert.equal(multiplyByQuantizedMultiplier(-3, 1 << 30, 0), -1);
    assert.equal(multiplyByQuantizedMultiplier(-5, 1 << 30, -1), -1); // -1.25
    const r = rng(4);
    for (let i = 0; i < 5000; i++) {
      const m = 2 ** (-r() * 20) * (0.5 + 0.5 * r());
      const x = Math.floor((r() - 0.5) * 2 ** 24);
      const { multiplier, shift } = quantizeMultiplier(m);
      const got = multiplyByQuantizedMultiplier(x, multiplier, shift);
      assert.ok(Math.abs(got - tfliteRound(x * m)) <= 1, `${x} * ${m}: ${got}`);
    }
  });
  it('the single-rounding variant is the int64 (x * m + 2^(30 - shift)) >> (31 - shift), over the whole shift range', () => {
    // Hand values: 3 / 8 and -3 / 8 round to 0 (double rounding gives 1 and 0), ties go up: 12 / 8 -> 2, -12 / 8 -> -1.
    const eighth = (x: number) => multiplyByQuantizedMultiplierSingleRounding(x, 1 << 30, -2);
    assert.deepEqual([3, -3, 12, -12, 4, -4].map(eighth), [0, 0, 2, -1, 1, 0]);
    assert.equal(multiplyByQuantizedMultiplier(3, 1 << 30, -2), 1);
    assert.equal(withRounding('single', () => multiplyByQuantizedMultiplier(3, 1 << 30, -2)), 0);
    assert.equal(multiplyByQuantizedMultiplier(3, 1 << 30, -2), 1, 'withRounding restores double rounding');
    const r = rng(9);
    let checked = 0;
    for (let i = 0; i < 20000; i++) {
      const shift = Math.floor(r() * 62) - 31;
      const m = (1 << 30) + Math.floor(r() * 2 ** 30);
      const x = Math.floor((r() - 0.5) * 2 ** 32) >> Math.floor(r() * 31);
      const want = (BigInt(x) * BigInt(m) + (1n << BigInt(30 - shift))) >> BigInt(31 - shift);
      if (want < BigInt(I32_MIN) || want > BigInt(I32_MAX)) continue; // TFLite DCHECKs the result fits int32
      assert.equal(multiplyByQuantizedMultiplierSingleRounding(x, m, shift), Number(want), `${x} * ${m} >> ${31 - shift}`);
      checked++;
    }
    assert.ok(checked > 5000, `${checked} cases in range`);
  });
});

describe('gemmlowp exp and reciprocal', () => {
  it('exp_on_negative_values matches Math.exp to ~1e-8 on Q5.26 inputs', () => {
    assert.equal(expOnNegativeValues(0, 5), I32_MAX);
    for (let v = -16; v <= 0; v += 0.37) {
      const raw = Math.round(v * 2 ** 26);
      assert.ok(Math.abs(expOnNegativeValues(raw, 5) / 2 ** 31 - Math.exp(raw / 2 ** 26)) < 1e-7, `exp(${v})`);
    }
  });
  it('GetReciprocal gives 1 / x as a Q0.31 scale and a bit count', () => {
    for (const x of [1, 1.25, 2.5, 7, 100, 600, 3000]) {
      const { raw, numBitsOverUnit } = getReciprocal(Math.round(x * 2 ** 19), 12);
      assert.ok(Math.abs(raw / 2 ** 31 / 2 ** numBitsOverUnit - 1 / x) < 1e-6 / x, `1/${x}`);
    }
  });
});
