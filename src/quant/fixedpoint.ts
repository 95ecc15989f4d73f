// TFLite's fixed-point arithmetic, bit-exact with int32/int64 C++ semantics, in plain JS numbers.
//
// Ported from tensorflow/lite/kernels/internal/quantization_util.cc (QuantizeMultiplier and friends),
// tensorflow/lite/kernels/internal/common.h (MultiplyByQuantizedMultiplier*, GetReciprocal) and gemmlowp's
// fixedpoint/fixedpoint.h (SaturatingRoundingDoublingHighMul, RoundingDivideByPOT, exp_on_negative_values,
// one_over_one_plus_x_for_x_in_0_1), in TFLite's default build (TFLITE_SINGLE_ROUNDING = 0, the double
// rounding variant; no TFLITE_EMULATE_FLOAT), and the single-rounding variant on request (withRounding).

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const TWO31 = 2147483648;

/** TfLiteRound / std::round: to nearest, ties away from zero (Math.round sends -2.5 to -2). */
export function tfliteRound(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

export interface Multiplier { multiplier: number; shift: number }

/** quantization_util.cc QuantizeMultiplier: double -> Q0.31 significand in [2^30, 2^31) and a shift. */
export function quantizeMultiplier(m: number): Multiplier {
  if (m === 0) return { multiplier: 0, shift: 0 };
  if (!Number.isFinite(m)) throw new RangeError(`quantizeMultiplier: ${m} is not finite`);
  // std::frexp: m = q * 2^shift with |q| in [0.5, 1).
  let shift = Math.floor(Math.log2(Math.abs(m))) + 1;
  let q = m / 2 ** shift;
  // log2 can be off by one at powers of two and near them; fix q into [0.5, 1).
  while (Math.abs(q) >= 1) { shift++; q = m / 2 ** shift; }
  while (Math.abs(q) < 0.5) { shift--; q = m / 2 ** shift; }
  let qFixed = tfliteRound(q * TWO31);
  if (qFixed > TWO31) throw new RangeError('quantizeMultiplier: q_fixed > 2^31');
  if (qFixed === TWO31) { qFixed /= 2; shift++; }
  if (qFixed > INT32_MAX) throw new RangeError('quantizeMultiplier: q_fixed > INT32_MAX');
  // A shift below -31 would shift every bit out: flushed to zero as TFLite does.
  if (shift < -31) { shift = 0; qFixed = 0; }
  return { multiplier: qFixed, shift };
}

/** quantization_util.cc QuantizeMultiplierSmallerThanOneExp: 0 < m < 1, shift <= 0. */
export function quantizeMultiplierSmallerThanOneExp(m: number): Multiplier {
  if (!(m < 1 && m > 0)) throw new RangeError(`quantizeMultiplierSmallerThanOneExp: ${m} is not in (0, 1)`);
  const r = quantizeMultiplier(m);
  if (r.shift > 0) throw new RangeError('quantizeMultiplierSmallerThanOneExp: positive shift');
  return r;
}

/** quantization_util.cc QuantizeMultiplierGreaterThanOne: m > 1, shift >= 0. */
export function quantizeMultiplierGreaterThanOne(m: number): Multiplier {
  if (!(m > 1)) throw new RangeError(`quantizeMultiplierGreaterThanOne: ${m} is not > 1`);
  const r = quantizeMultiplier(m);
  if (r.shift < 0) throw new RangeError('quantizeMultiplierGreaterThanOne: negative shift');
  return r;
}

/**
 * gemmlowp SaturatingRoundingDoublingHighMul (int32): (a * b + nudge) / 2^31 with the int64 division
 * truncating toward zero, nudge = 2^30 or 1 - 2^30 by the product's sign; INT32_MIN * INT32_MIN saturates.
 * The 62-bit product is split so every intermediate is an exact double (|value| < 2^53).
 */
export function srdhm(a: number, b: number): number {
  if (a === INT32_MIN && b === INT32_MIN) return INT32_MAX;
  const bh = b >> 16;            // signed high half
  const bl = b & 0xffff;         // unsigned low half: b = bh * 2^16 + bl
  const p = a * bh;              // |p| < 2^46
  // The sign of ab: both terms are exact and a rounded sum keeps the sign of the exact one.
  const q = a * bl + (p * 65536 + a * bl >= 0 ? 1073741824 : 1 - 1073741824); // |q| < 2^48
  // ab + nudge = p * 2^16 + q = p1 * 2^31 + (p0 * 2^16 + q), p = p1 * 2^15 + p0, 0 <= p0 < 2^15.
  const p1 = Math.floor(p / 32768);
  const p0 = p - p1 * 32768;
  const r = p0 * 65536 + q;      // exact: |r| < 2^31 + 2^48
  const r1 = Math.floor(r / TWO31);
  const r0 = r - r1 * TWO31;     // 0 <= r0 < 2^31
  const fl = p1 + r1;            // floor((ab + nudge) / 2^31)
  return fl < 0 && r0 !== 0 ? fl + 1 : fl;
}

/** The same with BigInt (int64 arithmetic spelled out), to check srdhm. */
export function srdhmBigInt(a: number, b: number): number {
  if (a === INT32_MIN && b === INT32_MIN) return INT32_MAX;
  const ab = BigInt(a) * BigInt(b);
  const nudge = ab >= 0n ? 1n << 30n : 1n - (1n << 30n);
  return Number(BigInt.asIntN(32, (ab + nudge) / (1n << 31n))); // BigInt division truncates like C++
}

/** gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero (0 <= e <= 31). */
export function roundingDivideByPOT(x: number, exponent: number): number {
  if (!(exponent >= 0 && exponent <= 31)) throw new RangeError(`roundingDivideByPOT: exponent ${exponent} is outside [0, 31]`);
  if (exponent === 0) return x | 0;
  const mask = exponent === 31 ? 0x7fffffff : (1 << exponent) - 1;
  const remainder = x & mask;
  const threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/** int32 x * (1 << s) as C++ computes it on two's complement hardware (wraps). */
const shl = (x: number, s: number) => Math.imul(x, 1 << s) | 0;

/**
 * TFLite builds its requantization one of two ways: 'double' rounding (the default: gemmlowp's
 * SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT, each rounding half away from zero) or 'single'
 * rounding (TFLITE_SINGLE_ROUNDING: one int64 product rounded half up, i.e. x * M correctly rounded). The two differ
 * by 1 LSB where the first of the two roundings lands on a half: about 2^-(r+1) of the outputs for a right shift
 * r (0.2-0.3% of the convolution outputs of the int8 fixtures). The reference and the GPU kernels use double rounding;
 * withRounding('single', fn) runs reference code the other way (the comparisons with LiteRT.js use it).
 */
export type Rounding = 'double' | 'single';
let rounding: Rounding = 'double';

/** Runs fn with the MultiplyByQuantizedMultiplier* functions below in the given rounding, then restores it. */
export function withRounding<T>(mode: Rounding, fn: () => T): T {
  const previous = rounding;
  rounding = mode;
  try {
    return fn();
  } finally {
    rounding = previous;
  }
}

/**
 * common.cc MultiplyByQuantizedMultiplier with TFLITE_SINGLE_ROUNDING: (x * m + 2^(t-1)) >> t in int64, t = 31 - shift
 * (shift in [-31, 30]). The 62-bit product is split (m = mh * 2^16 + ml) so every step is exact in a double.
 */
export function multiplyByQuantizedMultiplierSingleRounding(x: number, multiplier: number, shift: number): number {
  const t = 31 - shift;
  if (!(t >= 1 && t <= 62)) throw new RangeError(`multiplyByQuantizedMultiplierSingleRounding: shift ${shift} is outside [-31, 30]`);
  const p = x * Math.floor(multiplier / 65536); // |p| < 2^46
  const q = x * (multiplier % 65536);            // |q| < 2^47; x * m = p * 2^16 + q
  if (t >= 17) {
    // floor((p * 2^16 + q + 2^(t-1)) / 2^16) = p + 2^(t-17) + floor(q / 2^16), then the remaining t - 16 bits.
    return Math.floor((p + 2 ** (t - 17) + Math.floor(q / 65536)) / 2 ** (t - 16)) | 0;
  }
  return (p * 2 ** (16 - t) + Math.floor((q + 2 ** (t - 1)) / 2 ** t)) | 0;
}

/** common.h MultiplyByQuantizedMultiplier (int32 x), in the current rounding (double unless withRounding says). */
export function multiplyByQuantizedMultiplier(x: number, multiplier: number, shift: number): number {
  if (rounding === 'single') return multiplyByQuantizedMultiplierSingleRounding(x, multiplier, shift);
  const left = shift > 0 ? shift : 0;
  const right = shift > 0 ? 0 : -shift;
  return roundingDivideByPOT(srdhm(shl(x, left), multiplier), right);
}

/** common.h MultiplyByQuantizedMultiplierSmallerThanOneExp (leftShift <= 0). */
export function multiplyByQuantizedMultiplierSmallerThanOneExp(x: number, multiplier: number, leftShift: number): number {
  if (rounding === 'single') return multiplyByQuantizedMultiplierSingleRounding(x, multiplier, leftShift);
  return roundingDivideByPOT(srdhm(x, multiplier), -leftShift);
}

/** common.h MultiplyByQuantizedMultiplierGreaterThanOne (leftShift >= 0). */
export function multiplyByQuantizedMultiplierGreaterThanOne(x: number, multiplier: number, leftShift: number): number {
  if (rounding === 'single') return multiplyByQuantizedMultiplierSingleRounding(x, multiplier, leftShift);
  return srdhm(shl(x, leftShift), multiplier);
}

// ---- gemmlowp fixed-point values (raw int32 with a given number of integer bits) ---------------------

/** gemmlowp SaturatingRoundingMultiplyByPOT<exponent> on a raw int32. */
export function saturatingRoundingMultiplyByPOT(x: number, exponent: number): number {
  if (exponent === 0) return x;
  if (exponent < 0) return roundingDivideByPOT(x, -exponent);
  const threshold = (1 << (31 - exponent)) - 1;
  if (x > threshold) return INT32_MAX;
  if (x < -threshold) return INT32_MIN;
  return shl(x, exponent);
}

/** gemmlowp Rescale<dstBits>(FixedPoint<srcBits>): the raw value re-expressed with dstBits integer bits. */
export const rescale = (raw: number, srcBits: number, dstBits: number) => saturatingRoundingMultiplyByPOT(raw, srcBits - dstBits);

/** gemmlowp RoundingHalfSum (int32): (a + b) / 2 rounded, via int64. */
function roundingHalfSum(a: number, b: number): number {
  const sum = a + b; // exact in a double
  return Math.trunc((sum + (sum >= 0 ? 1 : -1)) / 2);
}

const add32 = (a: number, b: number) => (a + b) | 0;
const sub32 = (a: number, b: number) => (a - b) | 0;

/** gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl (Q0.31 in, Q0.31 out). */
function expOnIntervalBetweenNegativeOneQuarterAnd0Excl(a: number): number {
  const constantTerm = 1895147668;   // exp(-1/8)
  const constant1Over3 = 715827883;  // 1/3
  const x = add32(a, 1 << 28);       // a + 1/8
  const x2 = srdhm(x, x);
  const x3 = srdhm(x2, x);
  const x4 = srdhm(x2, x2);
  const x4Over4 = saturatingRoundingMultiplyByPOT(x4, -2);
  const poly = saturatingRoundingMultiplyByPOT(add32(srdhm(add32(x4Over4, x3), constant1Over3), x2), -1);
  return add32(constantTerm, srdhm(constantTerm, add32(x, poly)));
}

/** gemmlowp exp_on_negative_values(FixedPoint<int32, integerBits>) -> Q0.31. */
export function expOnNegativeValues(a: number, integerBits: number): number {
  const fractionalBits = 31 - integerBits;
  const oneQuarter = 1 << (fractionalBits - 2);
  const mask = oneQuarter - 1;
  const aModQuarterMinusOneQuarter = sub32(a & mask, oneQuarter);
  let result = expOnIntervalBetweenNegativeOneQuarterAnd0Excl(rescale(aModQuarterMinusOneQuarter, integerBits, 0));
  const remainder = sub32(aModQuarterMinusOneQuarter, a);
  // Barrel shifter: exp(-2^k) for each set bit of the remainder.
  const barrel: Array<[number, number]> = [[-2, 1672461947], [-1, 1302514674], [0, 790015084], [1, 290630308], [2, 39332535], [3, 720401], [4, 242]];
  for (const [exponent, multiplier] of barrel) {
    if (integerBits > exponent) {
      const shiftAmount = fractionalBits + exponent;
      if (remainder & (1 << shiftAmount)) result = srdhm(result, multiplier);
    }
  }
  if (integerBits > 5) {
    const clamp = -(1 << (36 - integerBits)); // -32.0
    if (a < clamp) result = 0;
  }
  if (a === 0) result = INT32_MAX; // One() of Q0.31
  return result;
}

/** gemmlowp one_over_one_plus_x_for_x_in_0_1 (Q0.31 in and out): Newton-Raphson division. */
export function oneOverOnePlusXForXIn01(a: number): number {
  const halfDenominator = roundingHalfSum(a, INT32_MAX); // F0::One() is INT32_MAX
  const c48Over17 = 1515870810;      // Q2.29
  const cNeg32Over17 = -1010580540;  // Q2.29
  let x = add32(c48Over17, srdhm(halfDenominator, cNeg32Over17)); // F0 * F2 -> F2
  const oneF2 = 1 << 29;
  for (let i = 0; i < 3; i++) {
    const halfDenominatorTimesX = srdhm(halfDenominator, x);       // F2
    const oneMinus = sub32(oneF2, halfDenominatorTimesX);           // F2
    x = add32(x, rescale(srdhm(x, oneMinus), 4, 2));               // F2 * F2 = F4 -> F2
  }
  // ExactMulByPot<-1>: F2 -> F1 with the same raw; then Rescale<0>.
  return rescale(x, 1, 0);
}

/** common.h CountLeadingZeros for uint32. */
export const clz32 = (x: number) => Math.clz32(x >>> 0);

/** common.h GetReciprocal: 1 / x for x in Q(integerDigits), as a Q0.31 scale and a count of extra bits. */
export function getReciprocal(x: number, xIntegerDigits: number): { raw: number; numBitsOverUnit: number } {
  const headroomPlusOne = clz32(x);
  const numBitsOverUnit = xIntegerDigits - headroomPlusOne;
  const shiftedSumMinusOne = ((((x >>> 0) * 2 ** headroomPlusOne) % 2 ** 32) - 2 ** 31) | 0;
  return { raw: oneOverOnePlusXForXIn01(shiftedSumMinusOne), numBitsOverUnit };
}

/** 16-bit gemmlowp SaturatingRoundingDoublingHighMul (int16). */
export function srdhm16(a: number, b: number): number {
  if (a === -32768 && b === -32768) return 32767;
  const ab = a * b;
  const nudge = ab >= 0 ? 1 << 14 : 1 - (1 << 14);
  return (Math.trunc((ab + nudge) / 32768) << 16) >> 16;
}
