// A straightforward TypeScript reference of TFLite's integer kernels, bit-exact with TFLite's reference
// kernels (tensorflow/lite/kernels/internal/reference/ and reference/integer_ops/) and the parameters their
// Prepare functions compute (tensorflow/lite/kernels/*.cc, kernel_util.cc). Tensors are in the IR's layout
// (NCHW for rank 4): every kernel here is layout-independent except for which axis is which, and integer
// accumulation is exact, so the order of summation does not matter.
//
// Float steps that TFLite does in float32 (scale ratios, QUANTIZE, MEAN's and CONCATENATION's requantization)
// are rounded to float32 with Math.fround after every operation, as C++ evaluates them without FMA.

import {
  multiplyByQuantizedMultiplier, multiplyByQuantizedMultiplierGreaterThanOne, multiplyByQuantizedMultiplierSmallerThanOneExp,
  quantizeMultiplier, quantizeMultiplierGreaterThanOne, quantizeMultiplierSmallerThanOneExp, rescale, roundingDivideByPOT,
  expOnNegativeValues, getReciprocal, srdhm, srdhm16, tfliteRound,
} from './fixedpoint.js';

export type QType = 'int8' | 'uint8';
export type QArray = Int8Array | Uint8Array;
export interface QParams { scale: number; zeroPoint: number }
export type FusedActivation = 'NONE' | 'RELU' | 'RELU6' | 'RELU_N1_TO_1';

const f32 = Math.fround;

export function qLimits(t: QType): [number, number] {
  return t === 'int8' ? [-128, 127] : [0, 255];
}

export function qAlloc(t: QType, n: number): QArray {
  return t === 'int8' ? new Int8Array(n) : new Uint8Array(n);
}

const clamp = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** kernel_util.cc CalculateActivationRangeQuantized: the fused activation as an integer clamp. */
export function activationRange(act: FusedActivation, q: QParams, t: QType): [number, number] {
  const [qmin, qmax] = qLimits(t);
  const quantize = (f: number) => q.zeroPoint + tfliteRound(f32(f / f32(q.scale)));
  switch (act) {
    case 'NONE': return [qmin, qmax];
    case 'RELU': return [Math.max(qmin, quantize(0)), qmax];
    case 'RELU6': return [Math.max(qmin, quantize(0)), Math.min(qmax, quantize(6))];
    case 'RELU_N1_TO_1': return [Math.max(qmin, quantize(-1)), Math.min(qmax, quantize(1))];
  }
}

// ---- QUANTIZE / DEQUANTIZE ------------------------------------------------------------------------------

/** reference/quantize.h AffineQuantize: q = round(x / scale) + zp, in float32, clamped. */
export function quantize(x: ArrayLike<number>, q: QParams, t: QType): QArray {
  const [lo, hi] = qLimits(t);
  const out = qAlloc(t, x.length);
  const scale = f32(q.scale);
  for (let i = 0; i < x.length; i++) out[i] = clamp(tfliteRound(f32(f32(x[i]) / scale)) + q.zeroPoint, lo, hi);
  return out;
}

/**
 * quantize() for a Float32Array, equal to it value for value (tested), about 1.5x faster: the run-time path of a
 * float input to an int8 session (150k values per 224x224 image). The quotient is rounded to float32 by the store
 * into a Float32Array (as Math.fround), and round-half-away-from-zero is trunc(r +- 0.5), exact in double for a
 * float32 r.
 */
export function quantizeF32(x: Float32Array, q: QParams, t: QType): QArray {
  const [lo, hi] = qLimits(t);
  const n = x.length, s = f32(q.scale), zp = q.zeroPoint;
  const r = new Float32Array(n);
  for (let i = 0; i < n; i++) r[i] = x[i] / s;
  const out = qAlloc(t, n);
  for (let i = 0; i < n; i++) {
    const v = r[i];
    const k = Math.trunc(v + (v < 0 ? -0.5 : 0.5)) + zp;
    out[i] = k < lo ? lo : k > hi ? hi : k;
  }
  return out;
}

/** The float32 order as unsigned integers: a < b (not NaN) iff orderKey(a) < orderKey(b); -0 sorts below +0. */
export function orderKey(bits: number): number {
  return (bits & 0x80000000 ? ~bits : bits | 0x80000000) >>> 0;
}

/**
 * quantizeF32 as a table: the order keys (orderKey of the float bits) of the 255 thresholds t_k, k = qmin+1..qmax,
 * t_k the least float32 whose quantization is at least k. Quantization is monotone in x (a correctly rounded
 * division by a positive scale, rounding and clamping all are), so q(x) = qmin + #{k : key(x) >= key(t_k)} for
 * every x but NaN (0, as quantizeF32 stores it): what the GPU's input quantizer computes with integer compares only,
 * bit-exact without relying on WGSL's float division (2.5 ULP).
 */
export function quantizeThresholds(q: QParams, t: QType): Uint32Array {
  const [lo, hi] = qLimits(t);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  const qOf = (key: number) => {
    u[0] = key & 0x80000000 ? key & 0x7fffffff : ~key >>> 0;
    return quantizeF32(f, q, t)[0];
  };
  const out = new Uint32Array(hi - lo);
  // Keys of -inf and +inf; NaN keys lie outside them and are never probed.
  let from = orderKey(0xff800000);
  const top = orderKey(0x7f800000);
  for (let k = lo + 1; k <= hi; k++) {
    let a = from, b = top + 1;
    while (a < b) {
      const m = a + Math.floor((b - a) / 2);
      if (qOf(m) >= k) b = m; else a = m + 1;
    }
    out[k - lo - 1] = a;
    from = a;
  }
  return out;
}

/** reference/dequantize.h: float(double(scale) * (q - zp)). */
export function dequantize(x: ArrayLike<number>, q: QParams): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = q.scale * (x[i] - q.zeroPoint);
  return out;
}

/** QUANTIZE from an 8-bit tensor (quantize.cc, reference/requantize.h): rescale by in/out scale in double. */
export function requantize(x: QArray, xq: QParams, yq: QParams, outType: QType): QArray {
  const [lo, hi] = qLimits(outType);
  const { multiplier, shift } = quantizeMultiplier(xq.scale / yq.scale);
  const out = qAlloc(outType, x.length);
  for (let i = 0; i < x.length; i++) out[i] = clamp(multiplyByQuantizedMultiplier(x[i] - xq.zeroPoint, multiplier, shift) + yq.zeroPoint, lo, hi);
  return out;
}

// ---- Convolutions -------------------------------------------------------------------------------------

export interface ConvArgs {
  type: QType;
  x: QArray; xShape: number[]; xq: QParams;
  /** [F, C/group, KH, KW]; int8 symmetric (per channel or per tensor), or uint8 with a zero point. */
  w: QArray; wShape: number[]; wScales: number[]; wZeroPoint?: number;
  bias?: Int32Array;
  yShape: number[]; yq: QParams;
  strides: number[]; pads: number[]; dilations: number[]; group: number;
  act: [number, number];
}

/**
 * Per-output-channel requantization multipliers. int8: kernel_util.cc PopulateConvolutionQuantizationParams,
 * double(input_scale) * double(filter_scale[c]) / double(output_scale). uint8 (per tensor):
 * GetQuantizedConvolutionMultipler, whose input * filter product is a float32 product.
 */
export function convMultipliers(t: QType, inScale: number, wScales: number[], outScale: number, channels: number) {
  const m = new Int32Array(channels), s = new Int32Array(channels);
  for (let c = 0; c < channels; c++) {
    const ws = wScales.length === 1 ? wScales[0] : wScales[c];
    const real = t === 'uint8' ? f32(inScale * ws) / outScale : (inScale * ws) / outScale;
    const r = quantizeMultiplier(real);
    m[c] = r.multiplier; s[c] = r.shift;
  }
  return { m, s };
}

/**
 * reference/integer_ops/conv.h ConvPerChannel and integer_ops/depthwise_conv.h DepthwiseConvPerChannel
 * (group = channels, depth multiplier 1), reference/conv.h and depthwiseconv_uint8.h for uint8: per output
 * element acc = sum (w + filter_offset) * (x + input_offset) over the window (taps outside the image skipped)
 * + bias, then MultiplyByQuantizedMultiplier, + output zero point, clamped to the activation range.
 * Skipped taps are written here as taps on a border of x = zero point, which add exactly 0.
 */
export function conv(a: ConvArgs): QArray {
  const [n, c, h, w] = a.xShape;
  const [f, cg, kh, kw] = a.wShape;
  const [, , oh, ow] = a.yShape;
  const [sh, sw] = a.strides, [dh, dw] = a.dilations;
  const [pt, pl] = a.pads;
  const g = a.group;
  if (cg * g !== c || f % g !== 0) throw new RangeError(`conv: weights [${a.wShape}] do not fit ${c} channels in ${g} groups`);
  const fg = f / g;
  const hp = Math.max(h + pt, (oh - 1) * sh + (kh - 1) * dh + 1), wp = Math.max(w + pl, (ow - 1) * sw + (kw - 1) * dw + 1);
  const wOff = -(a.wZeroPoint ?? 0);
  const { m, s } = convMultipliers(a.type, a.xq.scale, a.wScales, a.yq.scale, f);
  const y = qAlloc(a.type, n * f * oh * ow);
  const xp = new Int32Array(cg * hp * wp);
  const acc = new Int32Array(oh * ow);
  for (let b = 0; b < n; b++) {
    for (let gi = 0; gi < g; gi++) {
      xp.fill(0);
      for (let ci = 0; ci < cg; ci++) {
        const src = ((b * c + gi * cg + ci) * h) * w;
        for (let yy = 0; yy < h; yy++) {
          const dst = (ci * hp + yy + pt) * wp + pl;
          for (let xx = 0; xx < w; xx++) xp[dst + xx] = a.x[src + yy * w + xx] - a.xq.zeroPoint;
        }
      }
      for (let fi = 0; fi < fg; fi++) {
        const oc = gi * fg + fi;
        acc.fill(0);
        for (let ci = 0; ci < cg; ci++) {
          for (let ky = 0; ky < kh; ky++) {
            for (let kx = 0; kx < kw; kx++) {
              const wv = a.w[((oc * cg + ci) * kh + ky) * kw + kx] + wOff;
              if (wv === 0) continue;
              const base = (ci * hp + ky * dh) * wp + kx * dw;
              for (let oy = 0; oy < oh; oy++) {
                const row = base + oy * sh * wp, o = oy * ow;
                for (let ox = 0; ox < ow; ox++) acc[o + ox] += wv * xp[row + ox * sw];
              }
            }
          }
        }
        const bias = a.bias ? a.bias[oc] : 0;
        const out = (b * f + oc) * oh * ow;
        for (let i = 0; i < oh * ow; i++) {
          const v = multiplyByQuantizedMultiplier((acc[i] + bias) | 0, m[oc], s[oc]) + a.yq.zeroPoint;
          y[out + i] = clamp(v, a.act[0], a.act[1]);
        }
      }
    }
  }
  return y;
}

export interface FullyConnectedArgs {
  type: QType;
  /** [rows, depth] */
  x: QArray; xShape: number[]; xq: QParams;
  /** [units, depth] */
  w: QArray; wScales: number[]; wZeroPoint?: number;
  bias?: Int32Array;
  units: number; yq: QParams; act: [number, number];
}

/**
 * reference/integer_ops/fully_connected.h (and reference/fully_connected.h for uint8): acc = sum (w +
 * filter_offset) * (x + input_offset) + bias, requantized. The multiplier (fully_connected.cc Prepare,
 * GetQuantizedConvolutionMultipler) is float32(input_scale * filter_scale) / output_scale; per-channel
 * filters use the double product of PopulateConvolutionQuantizationParams.
 */
export function fullyConnected(a: FullyConnectedArgs): QArray {
  const [rows, depth] = a.xShape;
  const perChannel = a.wScales.length > 1;
  const mult = Array.from({ length: a.units }, (_, u) => {
    const ws = perChannel ? a.wScales[u] : a.wScales[0];
    return quantizeMultiplier(perChannel ? (a.xq.scale * ws) / a.yq.scale : f32(a.xq.scale * ws) / a.yq.scale);
  });
  const wOff = -(a.wZeroPoint ?? 0), xOff = -a.xq.zeroPoint;
  const y = qAlloc(a.type, rows * a.units);
  for (let r = 0; r < rows; r++) {
    for (let u = 0; u < a.units; u++) {
      let acc = 0;
      for (let d = 0; d < depth; d++) acc += (a.w[u * depth + d] + wOff) * (a.x[r * depth + d] + xOff);
      acc = (acc + (a.bias ? a.bias[u] : 0)) | 0;
      const v = multiplyByQuantizedMultiplier(acc, mult[u].multiplier, mult[u].shift) + a.yq.zeroPoint;
      y[r * a.units + u] = clamp(v, a.act[0], a.act[1]);
    }
  }
  return y;
}

// ---- Elementwise ------------------------------------------------------------------------------------------

/** For each element of `outShape`, the flat index of a NumPy-broadcast input of shape `inShape`. */
export function broadcastIndex(inShape: readonly number[], outShape: readonly number[]): Int32Array {
  const r = outShape.length;
  const s = [...Array(r - inShape.length).fill(1), ...inShape];
  const strides = new Array<number>(r).fill(0);
  let st = 1;
  for (let i = r - 1; i >= 0; i--) {
    if (s[i] !== 1 && s[i] !== outShape[i]) throw new RangeError(`broadcast: [${inShape}] does not broadcast to [${outShape}]`);
    strides[i] = s[i] === 1 ? 0 : st;
    st *= s[i];
  }
  const n = size(outShape);
  const idx = new Int32Array(n);
  const pos = new Array<number>(r).fill(0);
  let cur = 0;
  for (let i = 0; i < n; i++) {
    idx[i] = cur;
    for (let d = r - 1; d >= 0; d--) {
      pos[d]++; cur += strides[d];
      if (pos[d] < outShape[d]) break;
      cur -= strides[d] * pos[d]; pos[d] = 0;
    }
  }
  return idx;
}

export interface BinaryArgs {
  type: QType;
  a: QArray; aShape: number[]; aq: QParams;
  b: QArray; bShape: number[]; bq: QParams;
  yShape: number[]; yq: QParams; act: [number, number];
}

/**
 * ADD and SUB: add.cc / sub.cc Prepare (left_shift = 20 for 8-bit; inputs scaled by scale / (2 * max input
 * scale), output by 2 * max / (2^20 * output scale), all QuantizeMultiplierSmallerThanOneExp) and
 * reference/integer_ops/add.h AddElementwise / reference/sub.h SubElementwise.
 */
export function addSub(a: BinaryArgs, subtract = false): QArray {
  const leftShift = 20;
  const twiceMax = 2 * Math.max(a.aq.scale, a.bq.scale);
  const m1 = quantizeMultiplierSmallerThanOneExp(a.aq.scale / twiceMax);
  const m2 = quantizeMultiplierSmallerThanOneExp(a.bq.scale / twiceMax);
  const mo = quantizeMultiplierSmallerThanOneExp(twiceMax / ((1 << leftShift) * a.yq.scale));
  const ia = broadcastIndex(a.aShape, a.yShape), ib = broadcastIndex(a.bShape, a.yShape);
  const y = qAlloc(a.type, ia.length);
  for (let i = 0; i < y.length; i++) {
    const v1 = (a.a[ia[i]] - a.aq.zeroPoint) * (1 << leftShift);
    const v2 = (a.b[ib[i]] - a.bq.zeroPoint) * (1 << leftShift);
    const s1 = multiplyByQuantizedMultiplierSmallerThanOneExp(v1, m1.multiplier, m1.shift);
    const s2 = multiplyByQuantizedMultiplierSmallerThanOneExp(v2, m2.multiplier, m2.shift);
    const raw = subtract ? s1 - s2 : s1 + s2;
    const out = multiplyByQuantizedMultiplierSmallerThanOneExp(raw | 0, mo.multiplier, mo.shift) + a.yq.zeroPoint;
    y[i] = clamp(out, a.act[0], a.act[1]);
  }
  return y;
}

/**
 * MUL: mul.cc Prepare (double(s1) * double(s2) / double(s_out), QuantizeMultiplier) and
 * reference/integer_ops/mul.h MulElementwise: out = zp + MBQM((x1 - zp1) * (x2 - zp2)).
 */
export function mul(a: BinaryArgs): QArray {
  const { multiplier, shift } = quantizeMultiplier((a.aq.scale * a.bq.scale) / a.yq.scale);
  const ia = broadcastIndex(a.aShape, a.yShape), ib = broadcastIndex(a.bShape, a.yShape);
  const y = qAlloc(a.type, ia.length);
  for (let i = 0; i < y.length; i++) {
    const p = (a.a[ia[i]] - a.aq.zeroPoint) * (a.b[ib[i]] - a.bq.zeroPoint);
    y[i] = clamp(a.yq.zeroPoint + multiplyByQuantizedMultiplier(p, multiplier, shift), a.act[0], a.act[1]);
  }
  return y;
}

/**
 * RELU / RELU6 / RELU_N1_TO_1 as separate ops (activations.cc QuantizedReluX, reference ReluX): requantize
 * by float32(in_scale / out_scale), then clamp to [zp + round(min / s), zp + round(max / s)].
 */
export function reluX(x: QArray, xq: QParams, yq: QParams, t: QType, actMin: number, actMax: number): QArray {
  const [qmin, qmax] = qLimits(t);
  const lo = actMin === -Infinity ? qmin : Math.max(qmin, yq.zeroPoint + tfliteRound(f32(actMin / f32(yq.scale))));
  const hi = actMax === Infinity ? qmax : Math.min(qmax, yq.zeroPoint + tfliteRound(f32(actMax / f32(yq.scale))));
  const { multiplier, shift } = quantizeMultiplier(f32(xq.scale / yq.scale));
  const y = qAlloc(t, x.length);
  for (let i = 0; i < x.length; i++) y[i] = clamp(yq.zeroPoint + multiplyByQuantizedMultiplier(x[i] - xq.zeroPoint, multiplier, shift), lo, hi);
  return y;
}

/** quantization_util.cc DownScaleInt32ToInt16Multiplier. */
function downScaleToInt16(m: number): number {
  if (m >= 2147483647 - (1 << 15)) return 32767;
  return (m + (1 << 15)) >> 16;
}

const sat16 = (v: number) => clamp(v, -32768, 32767);

/** HARD_SWISH: activations.cc HardSwishPrepare and reference/hard_swish.h (int16 fixed point). */
export function hardSwish(x: QArray, xq: QParams, yq: QParams, t: QType): QArray {
  const hiresInputScale = f32(f32(1 / 128) * f32(xq.scale));
  const reluishScale = f32(3 / 32768);
  const outMult = quantizeMultiplier(f32(hiresInputScale / f32(yq.scale)));
  const outM16 = downScaleToInt16(outMult.multiplier);
  if (outMult.shift > 0) throw new RangeError('hardSwish: output multiplier exponent > 0');
  const reluMult = quantizeMultiplier(f32(hiresInputScale / reluishScale));
  const reluM16 = downScaleToInt16(reluMult.multiplier);
  const [qmin, qmax] = qLimits(t);
  const y = qAlloc(t, x.length);
  for (let i = 0; i < x.length; i++) {
    const inputValue = x[i] - xq.zeroPoint;
    const hires = inputValue * 128;
    const preshiftOut = srdhm16(hires, outM16);
    let reluish = hires;
    if (reluMult.shift > 0) reluish = sat16(reluish * (1 << (reluMult.shift - 1)));
    reluish = srdhm16(reluish, reluM16);
    if (reluMult.shift > 0) reluish = sat16(reluish * 2);
    if (reluMult.shift < 0) reluish = roundingDivideByPOT(reluish, -reluMult.shift);
    reluish = (reluish + (1 << 15)) >> 1;
    // SaturatingDoublingHighMul (int16): truncating, not rounding.
    const pre = reluish === -32768 && preshiftOut === -32768 ? 32767 : Math.trunc((reluish * preshiftOut) / 32768);
    let out = roundingDivideByPOT(pre, -outMult.shift);
    out += yq.zeroPoint;
    y[i] = clamp(out, qmin, qmax);
  }
  return y;
}

/**
 * LOGISTIC on 8-bit tensors: activations.cc SigmoidPrepare fills a 256-entry table (LUTPopulate: dequantize in
 * float32, 1 / (1 + exp(-x)) in float32, round half away from zero to the output grid, clamp), Eval looks it up.
 * TFLite requires the output quantization 1/256 with zero point 0 (uint8) or -128 (int8); other grids are refused.
 */
export function logistic(x: QArray, xq: QParams, yq: QParams, t: QType): QArray {
  const [qmin, qmax] = qLimits(t);
  if (f32(yq.scale) !== 1 / 256 || yq.zeroPoint !== qmin) {
    throw new RangeError(`logistic: output quantization must be scale 1/256, zero point ${qmin} (TFLite's), got ${yq.scale}, ${yq.zeroPoint}`);
  }
  const lut = new Int32Array(256);
  const inverse = f32(1 / f32(yq.scale));
  for (let v = qmin; v <= qmax; v++) {
    const real = f32(f32(xq.scale) * (v - xq.zeroPoint));
    const y = f32(1 / f32(1 + f32(Math.exp(-real))));
    lut[v - qmin] = clamp(tfliteRound(f32(y * inverse)) + yq.zeroPoint, qmin, qmax);
  }
  const out = qAlloc(t, x.length);
  for (let i = 0; i < x.length; i++) out[i] = lut[x[i] - qmin];
  return out;
}

// ---- Pooling and reductions --------------------------------------------------------------------------------

export interface PoolArgs {
  type: QType; x: QArray; xShape: number[]; yShape: number[];
  kernel: number[]; strides: number[]; pads: number[]; act: [number, number];
}

/**
 * reference/integer_ops/pooling.h AveragePool (int8) and reference/pooling.h (uint8): the mean of the taps
 * inside the image (padding not counted), rounded half away from zero by integer division; input and
 * output share their quantization (TFLite requires it).
 */
export function averagePool(a: PoolArgs): QArray {
  return pool(a, (x, idx) => {
    let acc = 0;
    for (const i of idx) acc += x[i];
    const n = idx.length;
    return acc > 0 ? Math.trunc((acc + Math.trunc(n / 2)) / n) : Math.trunc((acc - Math.trunc(n / 2)) / n);
  });
}

/** reference/integer_ops/pooling.h MaxPool. */
export function maxPool(a: PoolArgs): QArray {
  return pool(a, (x, idx) => {
    let m = -Infinity;
    for (const i of idx) if (x[i] > m) m = x[i];
    return m;
  });
}

function pool(a: PoolArgs, reduce: (x: QArray, idx: number[]) => number): QArray {
  const [n, c, h, w] = a.xShape, [, , oh, ow] = a.yShape;
  const [kh, kw] = a.kernel, [sh, sw] = a.strides, [pt, pl] = a.pads;
  const y = qAlloc(a.type, n * c * oh * ow);
  const idx: number[] = [];
  for (let p = 0; p < n * c; p++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        idx.length = 0;
        const y0 = oy * sh - pt, x0 = ox * sw - pl;
        for (let ky = Math.max(0, -y0); ky < Math.min(kh, h - y0); ky++) {
          for (let kx = Math.max(0, -x0); kx < Math.min(kw, w - x0); kx++) idx.push((p * h + y0 + ky) * w + x0 + kx);
        }
        if (idx.length === 0) throw new RangeError('pool: a window lies entirely in the padding');
        y[(p * oh + oy) * ow + ox] = clamp(reduce(a.x, idx), a.act[0], a.act[1]);
      }
    }
  }
  return y;
}

export interface MeanArgs {
  type: QType; x: QArray; xShape: number[]; xq: QParams; yq: QParams;
  /** Reduced axes of xShape. */
  axes: number[];
  /** TFLite's keep_dims with a 4-D input reduced over H and W: the kernel TFLite picks for it. */
  spatialKeepDims: boolean;
}

/**
 * MEAN, as reduce.cc EvalMean picks the kernel for 8-bit tensors:
 * - keep_dims, 4-D, axes {H, W}: reference/integer_ops/mean.h (int8: sum of x - zp, MBQM by in/out scale,
 *   rounded integer division by the count) or reference/reduce.h Mean uint8 (sum, MBQM by
 *   in / (count * out), plus a float32 bias);
 * - same scale and zero point in and out: reference/reduce.h Mean (integer sum / count, truncating);
 * - otherwise reference/reduce.h QuantizedMeanOrSum (float32 mean, scale and bias, rounded).
 */
export function mean(a: MeanArgs): QArray {
  const rank = a.xShape.length;
  const kept = a.xShape.map((d, i) => (a.axes.includes(i) ? 1 : d));
  const outN = size(kept);
  const count = size(a.axes.map((i) => a.xShape[i]));
  const idx = broadcastIndex(kept, a.xShape);
  const sums = new Float64Array(outN);
  const raw = new Float64Array(outN);
  for (let i = 0; i < idx.length; i++) { sums[idx[i]] += a.x[i] - a.xq.zeroPoint; raw[idx[i]] += a.x[i]; }
  const [qmin, qmax] = qLimits(a.type);
  const y = qAlloc(a.type, outN);
  if (a.spatialKeepDims && rank === 4) {
    if (a.type === 'int8') {
      const { multiplier, shift } = quantizeMultiplier(a.xq.scale / a.yq.scale);
      const half = Math.trunc(count / 2);
      for (let o = 0; o < outN; o++) {
        let acc = multiplyByQuantizedMultiplier(sums[o] | 0, multiplier, shift);
        acc = acc > 0 ? Math.trunc((acc + half) / count) : Math.trunc((acc - half) / count);
        y[o] = clamp(acc + a.yq.zeroPoint, qmin, qmax);
      }
    } else {
      const bias = a.yq.zeroPoint - Math.trunc(f32(f32(a.xq.zeroPoint * f32(a.xq.scale)) / f32(a.yq.scale)));
      const { multiplier, shift } = quantizeMultiplier(f32(f32(a.xq.scale) / f32(f32(count) * f32(a.yq.scale))));
      for (let o = 0; o < outN; o++) y[o] = clamp(multiplyByQuantizedMultiplier(raw[o] | 0, multiplier, shift) + bias, qmin, qmax);
    }
    return y;
  }
  if (a.xq.scale === a.yq.scale && a.xq.zeroPoint === a.yq.zeroPoint) {
    // T(sum / count) with int sums of the raw values; the cast to T wraps.
    for (let o = 0; o < outN; o++) y[o] = Math.trunc(raw[o] / count);
    return y;
  }
  const scale = f32(f32(a.xq.scale) / f32(a.yq.scale));
  const bias = f32(-a.xq.zeroPoint * scale);
  for (let o = 0; o < outN; o++) {
    const m = f32(f32(raw[o]) / f32(count));
    const r = tfliteRound(f32(f32(m * scale) + bias)) + a.yq.zeroPoint;
    y[o] = clamp(r, qmin, qmax);
  }
  return y;
}

// ---- Data movement ---------------------------------------------------------------------------------------

/** PAD (reference/pad.h): pads [begin..., end...]; quantized tensors pad with the output zero point. */
export function pad(t: QType, x: QArray, xShape: number[], pads: number[], value: number): { y: QArray; shape: number[] } {
  const r = xShape.length;
  const shape = xShape.map((d, i) => d + pads[i] + pads[i + r]);
  const y = qAlloc(t, size(shape)).fill(value);
  const outStrides = strides(shape);
  const n = size(xShape);
  const pos = new Array<number>(r).fill(0);
  for (let i = 0; i < n; i++) {
    let o = 0;
    for (let d = 0; d < r; d++) o += (pos[d] + pads[d]) * outStrides[d];
    y[o] = x[i];
    for (let d = r - 1; d >= 0; d--) { if (++pos[d] < xShape[d]) break; pos[d] = 0; }
  }
  return { y, shape };
}

export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let st = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = st; st *= shape[i]; }
  return s;
}

/** TRANSPOSE: y[i_perm] = x[i]. */
export function transpose<T extends QArray | Float32Array | Float64Array>(x: T, xShape: number[], perm: number[], alloc: (n: number) => T): { y: T; shape: number[] } {
  const shape = perm.map((p) => xShape[p]);
  const xs = strides(xShape);
  const y = alloc(x.length);
  const r = shape.length;
  const pos = new Array<number>(r).fill(0);
  for (let i = 0; i < y.length; i++) {
    let src = 0;
    for (let d = 0; d < r; d++) src += pos[d] * xs[perm[d]];
    y[i] = x[src];
    for (let d = r - 1; d >= 0; d--) { if (++pos[d] < shape[d]) break; pos[d] = 0; }
  }
  return { y, shape };
}

/**
 * CONCATENATION with requantization: reference/concatenation.h ConcatenationWithScaling (written for uint8;
 * the same arithmetic clamped to the output type here): inputs with the output's scale and zero point are
 * copied, the others go through round(q * scale + bias) in float32. TFLite's int8 kernel requires equal
 * parameters, where this is a plain copy as well.
 */
export function concat(t: QType, inputs: Array<{ x: QArray; shape: number[]; q: QParams }>, axis: number, yq: QParams): { y: QArray; shape: number[] } {
  const shape = [...inputs[0].shape];
  shape[axis] = inputs.reduce((a, i) => a + i.shape[axis], 0);
  const outer = size(shape.slice(0, axis)), inner = size(shape.slice(axis + 1));
  const y = qAlloc(t, size(shape));
  const [qmin, qmax] = qLimits(t);
  const inverseOutputScale = f32(1 / f32(yq.scale));
  let o = 0;
  for (let k = 0; k < outer; k++) {
    for (const inp of inputs) {
      const n = inp.shape[axis] * inner;
      const src = k * n;
      if (inp.q.zeroPoint === yq.zeroPoint && inp.q.scale === yq.scale) {
        for (let j = 0; j < n; j++) y[o++] = inp.x[src + j];
      } else {
        const scale = f32(f32(inp.q.scale) * inverseOutputScale);
        const bias = f32(-inp.q.zeroPoint * scale);
        for (let j = 0; j < n; j++) y[o++] = clamp(tfliteRound(f32(f32(inp.x[src + j] * scale) + bias)) + yq.zeroPoint, qmin, qmax);
      }
    }
  }
  return { y, shape };
}

// ---- Softmax -------------------------------------------------------------------------------------------

/** Softmax's fixed-point parameters (softmax.cc Prepare for the reference kernel). */
export function softmaxParams(beta: number, inputScale: number) {
  const scaledDiffIntegerBits = 5;
  // quantization_util.cc PreprocessSoftmaxScaling and CalculateInputRadius.
  const real = Math.min(beta * inputScale * (1 << (31 - scaledDiffIntegerBits)), 2147483647);
  const { multiplier, shift } = quantizeMultiplierGreaterThanOne(real);
  const maxInputRescaled = (1.0 * ((1 << scaledDiffIntegerBits) - 1) * 2 ** (31 - scaledDiffIntegerBits)) / 2 ** shift;
  return { inputMultiplier: multiplier, inputLeftShift: shift, diffMin: -Math.floor(maxInputRescaled) };
}

/**
 * SOFTMAX (reference/softmax.h, 8-bit input and output): exp of (x - max) in gemmlowp fixed point
 * (Q5.26 scaled differences, Q12.19 sum), reciprocal by Newton-Raphson, output on the fixed scale 1/256
 * (zero point -128 for int8, 0 for uint8), which TFLite requires.
 */
export function softmax(t: QType, x: QArray, xShape: number[], axis: number, xq: QParams, yq: QParams, beta = 1): QArray {
  const [qmin, qmax] = qLimits(t);
  if (yq.scale !== 1 / 256 || yq.zeroPoint !== qmin) {
    throw new RangeError(`softmax: TFLite needs output scale 1/256 and zero point ${qmin}, got ${yq.scale} / ${yq.zeroPoint}`);
  }
  const { inputMultiplier, inputLeftShift, diffMin } = softmaxParams(beta, xq.scale);
  const depth = xShape[axis];
  const inner = size(xShape.slice(axis + 1)), outer = size(xShape.slice(0, axis));
  const y = qAlloc(t, x.length);
  const accBits = 12, diffBits = 5;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const at = (c: number) => (o * depth + c) * inner + i;
      let maxInRow = qmin;
      for (let c = 0; c < depth; c++) maxInRow = Math.max(maxInRow, x[at(c)]);
      let sumOfExps = 0;
      const exps = new Int32Array(depth);
      const valid = new Uint8Array(depth);
      for (let c = 0; c < depth; c++) {
        const diff = x[at(c)] - maxInRow;
        if (diff >= diffMin) {
          const rescaled = multiplyByQuantizedMultiplierGreaterThanOne(diff, inputMultiplier, inputLeftShift);
          exps[c] = expOnNegativeValues(rescaled, diffBits);
          valid[c] = 1;
          sumOfExps = (sumOfExps + rescale(exps[c], 0, accBits)) | 0;
        }
      }
      const { raw: shiftedScale, numBitsOverUnit } = getReciprocal(sumOfExps, accBits);
      for (let c = 0; c < depth; c++) {
        if (valid[c]) {
          // With a sum of exps >= 512 the exponent passes 31, where gemmlowp's RoundingDivideByPOT is undefined
          // (TFLite's reference kernel asserts in debug builds); the exact rounding of |v| < 2^31 is then 0.
          const exponent = numBitsOverUnit + 31 - 8;
          const unsat = exponent > 31 ? 0 : roundingDivideByPOT(srdhm(shiftedScale, exps[c]), exponent);
          y[at(c)] = clamp(unsat + qmin, qmin, qmax);
        } else {
          y[at(c)] = qmin;
        }
      }
    }
  }
  return y;
}
