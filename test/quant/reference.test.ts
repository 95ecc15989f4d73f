// The integer reference kernels against float64 computations of the same real-valued op, rounded to the
// output grid: within 1 LSB (the fixed-point multiplier is 2^-31 accurate and rounds twice, so a value
// near a tie may land on the neighbouring grid point), on random shapes, per-channel scales and extreme
// zero points, int8 and uint8. Plus hand-checked cases.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tfliteRound } from '../../src/quant/fixedpoint.js';
import {
  type QArray, type QParams, type QType, activationRange, addSub, averagePool, concat, conv, dequantize, fullyConnected, hardSwish,
  maxPool, mean, mul, pad, qAlloc, qLimits, quantize, quantizeF32, reluX, requantize, softmax,
} from '../../src/quant/reference.js';
import { rng } from '../../fixtures/tflite-builder.js';

const r = rng(77);
const randInt = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const randQ = (t: QType, n: number): QArray => { const [lo, hi] = qLimits(t); const a = qAlloc(t, n); for (let i = 0; i < n; i++) a[i] = randInt(lo, hi); return a; };
const real = (x: ArrayLike<number>, q: QParams) => Array.from(x, (v) => q.scale * (v - q.zeroPoint));
function assertWithin1(got: ArrayLike<number>, want: ArrayLike<number>, q: QParams, t: QType, range?: [number, number], what = '') {
  const [lo, hi] = range ?? qLimits(t);
  assert.equal(got.length, want.length);
  for (let i = 0; i < got.length; i++) {
    const w = Math.min(hi, Math.max(lo, tfliteRound(want[i] / q.scale) + q.zeroPoint));
    assert.ok(Math.abs(got[i] - w) <= 1, `${what} element ${i}: got ${got[i]}, float gives ${w}`);
  }
}

describe('quantize, dequantize, requantize, activation ranges', () => {
  it('rounds ties away from zero and clamps', () => {
    const q = { scale: 0.5, zeroPoint: -1 };
    assert.deepEqual(Array.from(quantize([0.25, -0.25, 0.75, -0.75, 100, -100], q, 'int8')), [0, -2, 1, -3, 127, -128]);
    assert.deepEqual(Array.from(quantize([0.25, 1000], { scale: 0.5, zeroPoint: 3 }, 'uint8')), [4, 255]);
    assert.deepEqual(Array.from(dequantize(Int8Array.of(-1, 3), q)), [0, 2]);
    // uint8 (1/127.5, 127) -> int8 (same scale, -1): an exact shift by 128.
    assert.deepEqual(Array.from(requantize(Uint8Array.of(0, 127, 255), { scale: 0.007843137718737125, zeroPoint: 127 }, { scale: 0.007843137718737125, zeroPoint: -1 }, 'int8')), [-128, -1, 127]);
  });
  it('computes the fused activation clamps', () => {
    assert.deepEqual(activationRange('RELU6', { scale: 0.0235294122248888, zeroPoint: -128 }, 'int8'), [-128, 127]);
    assert.deepEqual(activationRange('RELU6', { scale: 0.05, zeroPoint: -3 }, 'int8'), [-3, 117]);
    assert.deepEqual(activationRange('RELU', { scale: 0.05, zeroPoint: 10 }, 'uint8'), [10, 255]);
    assert.deepEqual(activationRange('RELU_N1_TO_1', { scale: 0.1, zeroPoint: 0 }, 'int8'), [-10, 10]);
  });
  it('RELU with its own output scale requantizes then clamps', () => {
    const xq = { scale: 0.6, zeroPoint: 8 }, yq = { scale: 0.28, zeroPoint: -128 };
    const x = randQ('int8', 500);
    const y = reluX(x, xq, yq, 'int8', 0, Infinity);
    assertWithin1(y, real(x, xq).map((v) => Math.max(0, v)), yq, 'int8');
  });
});

describe('convolutions', () => {
  for (const t of ['int8', 'uint8'] as QType[]) {
    it(`${t} conv, depthwise and grouped conv with strides, pads, dilations, per-channel scales, extreme zero points`, () => {
      for (let trial = 0; trial < 12; trial++) {
        const kind = trial % 3; // 0 standard, 1 depthwise, 2 grouped
        const c = kind === 2 ? 4 : randInt(1, 6), group = kind === 1 ? c : kind === 2 ? 2 : 1;
        const f = kind === 1 ? c : group * randInt(1, 3);
        const k = randInt(1, 3), s = randInt(1, 2), d = k > 1 ? randInt(1, 2) : 1;
        const h = randInt(k * d, 9), w = randInt(k * d, 9);
        const pads = [randInt(0, 1), randInt(0, 1), randInt(0, 1), randInt(0, 1)];
        const oh = Math.floor((h + pads[0] + pads[2] - (k - 1) * d - 1) / s) + 1, ow = Math.floor((w + pads[1] + pads[3] - (k - 1) * d - 1) / s) + 1;
        const [lo, hi] = qLimits(t);
        const xq = { scale: 0.02 + r() * 0.1, zeroPoint: [lo, hi, randInt(lo, hi)][trial % 3] };
        const yq = { scale: 0.05 + r() * 0.3, zeroPoint: randInt(lo, hi) };
        const wScales = t === 'int8' ? Array.from({ length: f }, () => 0.001 + r() * 0.05) : [0.01 + r() * 0.02];
        const wZp = t === 'uint8' ? randInt(0, 255) : 0;
        const cg = c / group;
        const x = randQ(t, c * h * w);
        const wts = t === 'int8' ? Int8Array.from({ length: f * cg * k * k }, () => randInt(-127, 127)) : randQ('uint8', f * cg * k * k);
        const bias = Int32Array.from({ length: f }, () => randInt(-5000, 5000));
        const act: [number, number] = trial % 2 ? activationRange('RELU6', yq, t) : qLimits(t);
        const y = conv({
          type: t, x, xShape: [1, c, h, w], xq, w: wts, wShape: [f, cg, k, k], wScales, wZeroPoint: wZp, bias,
          yShape: [1, f, oh, ow], yq, strides: [s, s], pads, dilations: [d, d], group, act,
        });
        const want: number[] = [];
        for (let o = 0; o < f; o++) {
          const ws = wScales.length > 1 ? wScales[o] : wScales[0];
          const gi = Math.floor(o / (f / group));
          for (let oy = 0; oy < oh; oy++) for (let ox = 0; ox < ow; ox++) {
            let acc = bias[o] * xq.scale * ws;
            for (let ci = 0; ci < cg; ci++) for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) {
              const iy = oy * s - pads[0] + ky * d, ix = ox * s - pads[1] + kx * d;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              acc += ws * (wts[((o * cg + ci) * k + ky) * k + kx] - wZp) * xq.scale * (x[((gi * cg + ci) * h + iy) * w + ix] - xq.zeroPoint);
            }
            want.push(acc);
          }
        }
        assertWithin1(y, want, yq, t, act, `trial ${trial}`);
      }
    });
  }

  it('fully connected, per tensor and per channel, with and without bias', () => {
    for (const perChannel of [false, true]) {
      const rows = 2, depth = 37, units = 5;
      const xq = { scale: 0.05, zeroPoint: -128 }, yq = { scale: 0.2, zeroPoint: 17 };
      const wScales = perChannel ? Array.from({ length: units }, () => 0.002 + r() * 0.02) : [0.01];
      const x = randQ('int8', rows * depth), w = Int8Array.from({ length: units * depth }, () => randInt(-127, 127));
      const bias = perChannel ? undefined : Int32Array.from({ length: units }, () => randInt(-3000, 3000));
      const y = fullyConnected({ type: 'int8', x, xShape: [rows, depth], xq, w, wScales, bias, units, yq, act: qLimits('int8') });
      const want: number[] = [];
      for (let rr = 0; rr < rows; rr++) for (let u = 0; u < units; u++) {
        const ws = perChannel ? wScales[u] : wScales[0];
        let acc = bias ? bias[u] * ws * xq.scale : 0;
        for (let dd = 0; dd < depth; dd++) acc += ws * w[u * depth + dd] * xq.scale * (x[rr * depth + dd] - xq.zeroPoint);
        want.push(acc);
      }
      assertWithin1(y, want, yq, 'int8');
    }
  });
});

describe('elementwise, pooling, reductions, data movement, softmax', () => {
  for (const t of ['int8', 'uint8'] as QType[]) {
    it(`${t} add, sub and mul with broadcasting and differing scales`, () => {
      const [lo, hi] = qLimits(t);
      for (let trial = 0; trial < 6; trial++) {
        const aq = { scale: 0.01 + r(), zeroPoint: randInt(lo, hi) }, bq = { scale: 0.01 + r(), zeroPoint: randInt(lo, hi) };
        const yq = { scale: 0.05 + 2 * r(), zeroPoint: randInt(lo, hi) };
        const a = randQ(t, 2 * 3 * 4 * 5), b = randQ(t, 3);
        const args = { type: t, a, aShape: [2, 3, 4, 5], aq, b, bShape: [1, 3, 1, 1], bq, yShape: [2, 3, 4, 5], yq, act: qLimits(t) };
        const ra = real(a, aq), rb = real(b, bq);
        const bAt = (i: number) => rb[Math.floor(i / 20) % 3];
        assertWithin1(addSub(args), ra.map((v, i) => v + bAt(i)), yq, t, undefined, 'add');
        assertWithin1(addSub(args, true), ra.map((v, i) => v - bAt(i)), yq, t, undefined, 'sub');
        const mq = { scale: aq.scale * bq.scale * (0.5 + 20 * r()), zeroPoint: randInt(lo, hi) };
        assertWithin1(mul({ ...args, yq: mq }), ra.map((v, i) => v * bAt(i)), mq, t, undefined, 'mul');
      }
    });
  }

  it('average pool (padding not counted, rounded) and max pool', () => {
    const x = randQ('int8', 2 * 7 * 7), q = { scale: 0.1, zeroPoint: -5 };
    const args = { type: 'int8' as const, x, xShape: [1, 2, 7, 7], yShape: [1, 2, 4, 4], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], act: qLimits('int8') };
    const avg = averagePool(args), mx = maxPool(args);
    for (let c = 0; c < 2; c++) for (let oy = 0; oy < 4; oy++) for (let ox = 0; ox < 4; ox++) {
      const taps: number[] = [];
      for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) {
        const iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx;
        if (iy >= 0 && iy < 7 && ix >= 0 && ix < 7) taps.push(x[(c * 7 + iy) * 7 + ix]);
      }
      const i = (c * 4 + oy) * 4 + ox;
      const m = taps.reduce((a, b) => a + b, 0) / taps.length;
      assert.equal(avg[i], tfliteRound(m), `avg ${i}`);
      assert.equal(mx[i], Math.max(...taps));
    }
    void q;
  });

  it('mean: the kernel TFLite picks for each case, each within 1 LSB', () => {
    const x = randQ('int8', 3 * 5 * 6), xq = { scale: 0.07, zeroPoint: -20 };
    const means = (q: QParams) => Array.from({ length: 3 }, (_, c) => real(x.subarray(c * 30, c * 30 + 30), xq).reduce((a, b) => a + b, 0) / 30 + 0 * q.scale);
    for (const [yq, spatial] of [[{ scale: 0.05, zeroPoint: 3 }, true], [{ scale: 0.05, zeroPoint: 3 }, false], [xq, false]] as Array<[QParams, boolean]>) {
      const y = mean({ type: 'int8', x, xShape: [1, 3, 5, 6], xq, yq, axes: [2, 3], spatialKeepDims: spatial });
      assertWithin1(y, means(yq), yq, 'int8', undefined, `spatial ${spatial}`);
    }
    const u = randQ('uint8', 3 * 4 * 4), uq = { scale: 0.1, zeroPoint: 100 }, uy = { scale: 0.03, zeroPoint: 30 };
    const y = mean({ type: 'uint8', x: u, xShape: [1, 3, 4, 4], xq: uq, yq: uy, axes: [2, 3], spatialKeepDims: true });
    assertWithin1(y, [0, 1, 2].map((c) => real(u.subarray(c * 16, c * 16 + 16), uq).reduce((a, b) => a + b, 0) / 16), uy, 'uint8');
  });

  it('pads with the zero point and concatenates with requantization', () => {
    const { y, shape } = pad('int8', Int8Array.of(1, 2, 3, 4), [1, 1, 2, 2], [0, 0, 1, 0, 0, 0, 0, 1], -7);
    assert.deepEqual(shape, [1, 1, 3, 3]);
    assert.deepEqual(Array.from(y), [-7, -7, -7, 1, 2, -7, 3, 4, -7]);
    const aq = { scale: 0.1, zeroPoint: 0 }, bq = { scale: 0.3, zeroPoint: -10 };
    const a = randQ('int8', 2 * 2 * 3), b = randQ('int8', 2 * 1 * 3);
    const out = concat('int8', [{ x: a, shape: [2, 2, 3], q: aq }, { x: b, shape: [2, 1, 3], q: bq }], 1, aq);
    assert.deepEqual(out.shape, [2, 3, 3]);
    const want: number[] = [];
    for (let k = 0; k < 2; k++) { want.push(...real(a.subarray(k * 6, k * 6 + 6), aq)); want.push(...real(b.subarray(k * 3, k * 3 + 3), bq)); }
    assertWithin1(out.y, want, aq, 'int8');
    for (let k = 0; k < 2; k++) for (let j = 0; j < 6; j++) assert.equal(out.y[k * 9 + j], a[k * 6 + j], 'same parameters: a copy');
  });

  for (const t of ['int8', 'uint8'] as QType[]) {
    it(`${t} softmax matches the float softmax within 1 LSB, rows of 10 and 1000`, () => {
      const [lo] = qLimits(t);
      for (const [depth, scale] of [[10, 0.1], [10, 0.5], [1000, 0.18], [1000, 0.02]] as Array<[number, number]>) {
        const xq = { scale, zeroPoint: randInt(-20, 20) + (t === 'uint8' ? 128 : 0) };
        const yq = { scale: 1 / 256, zeroPoint: lo };
        const x = randQ(t, 2 * depth);
        const y = softmax(t, x, [2, depth], 1, xq, yq);
        const want: number[] = [];
        for (let row = 0; row < 2; row++) {
          const v = real(x.subarray(row * depth, (row + 1) * depth), xq);
          const m = Math.max(...v), e = v.map((z) => Math.exp(z - m)), s = e.reduce((a, b) => a + b, 0);
          want.push(...e.map((z) => z / s));
        }
        assertWithin1(y, want, yq, t, undefined, `depth ${depth} scale ${scale}`);
      }
    });
  }

  it('hard swish within 1 LSB of x * relu6(x + 3) / 6', () => {
    for (const [xq, yq] of [[{ scale: 0.05, zeroPoint: -3 }, { scale: 0.05, zeroPoint: -3 }], [{ scale: 0.1, zeroPoint: 20 }, { scale: 0.04, zeroPoint: -100 }]] as Array<[QParams, QParams]>) {
      const x = Int8Array.from({ length: 256 }, (_, i) => i - 128);
      const y = hardSwish(x, xq, yq, 'int8');
      assertWithin1(y, real(x, xq).map((v) => (v * Math.min(6, Math.max(0, v + 3))) / 6), yq, 'int8');
    }
  });
});

describe('quantizeF32', () => {
  it('equals quantize value for value: ties, both signs, saturation, NaN, -0, subnormal and extreme scales', () => {
    const r = rng(77);
    const edge = [0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999997, -0.49999997, 1e30, -1e30, 0, -0, 127.5, -128.5, 255.5, NaN, Infinity, -Infinity, 1e-40, 3.4e38];
    const x = Float32Array.from([...edge, ...Array.from({ length: 20000 }, () => (r() * 2 - 1) * 300)]);
    for (const [scale, zeroPoint, t] of [[0.0078125, 128, 'uint8'], [0.1, -3, 'int8'], [1, 0, 'int8'], [0.5, 0, 'int8'], [1e-6, -128, 'int8'], [37.5, 255, 'uint8'], [0.0234, 17, 'uint8']] as const) {
      const want = quantize(x, { scale, zeroPoint }, t), got = quantizeF32(x, { scale, zeroPoint }, t);
      assert.equal(got.constructor, want.constructor);
      const i = want.findIndex((v, k) => v !== got[k]);
      assert.equal(i, -1, `scale ${scale} zp ${zeroPoint} ${t}: x ${x[i]} -> ${got[i]}, reference ${want[i]}`);
    }
  });
});
