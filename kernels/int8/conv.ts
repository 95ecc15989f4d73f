// Integer convolution, direct form: any Conv node (standard, grouped, depthwise, pointwise; any kernel, stride,
// pads, dilation), int8 (asymmetric activations, symmetric per-channel weights) or uint8 (per-tensor weights with
// a zero point). One invocation per output word (4 outputs); each output is TFLite's reference arithmetic:
// acc = sum over the window of (w - zw) * (x - zx) (taps outside the image skipped) + bias, then
// MultiplyByQuantizedMultiplier with the channel's multiplier, + the output zero point, clamped to the fused
// activation's integer range (reference/integer_ops/conv.h ConvPerChannel, depthwise_conv.h, reference/conv.h).
//
// Constants: `w` the weights [F, C/group, KH, KW] packed flat; `qp` 4 words per output channel
// (bias, multiplier, shift, 0). The pointwise kernels (pointwise.ts) are the faster choice for 1x1 convs and
// depthwise.ts for depthwise ones; kernel rows of up to 4 taps take the rows-of-taps sum (one dot4 per row and
// input channel, depthwise.ts rowsSumWgsl), other shapes this per-tap loop.

import { unsupported } from '../../src/errors.js';
import { convMultipliers } from '../../src/quant/reference.js';
import { type ConvGeom, convGeom, geomKey, isDepthwise, isPointwise } from '../conv-common.js';
import { cacheKey, constsI32, constsU32, flatDispatch } from '../shader.js';
import {
  type Int8KernelArgs, type Int8Program, type QInfo, activationClamp, dot4Requires, dot4Wgsl, fixedPointWgsl, int8Bindings, loader,
  pack8, perWordMain, qBias, qTensor, qWeights, shapeArgs, where,
} from './common.js';
import { dwWeights, rowsSumWgsl, tapRows } from './depthwise.js';

export interface ConvQuant {
  g: ConvGeom;
  xq: QInfo; yq: QInfo;
  w: Int8Array | Uint8Array; wZeroPoint: number;
  bias: Int32Array;
  multipliers: Int32Array; shifts: Int32Array;
  clamp: [number, number];
}

/** A quantized Conv node's geometry and integer parameters (what TFLite's Prepare computes). */
export function convQuant(args: Int8KernelArgs): ConvQuant {
  const w = where(args);
  const g = convGeom(shapeArgs(args));
  if (g.hasRes) throw unsupported(w, 'a fused residual has no integer kernel (TFLite adds it with ADD)');
  const xq = qTensor(args.inputs[0], 'input', w), yq = qTensor(args.outputs[0], 'output', w);
  if (yq.type !== xq.type) throw unsupported(w, `input is ${xq.type}, output ${yq.type}`);
  const wt = qWeights(args.inputs[1], 'weights', w, xq.type);
  if (xq.type === 'uint8' && wt.scales.length !== 1) throw unsupported(w, 'uint8 convolutions take per-tensor weights');
  const { m, s } = convMultipliers(xq.type, xq.scale, wt.scales, yq.scale, g.F);
  return {
    g, xq, yq, w: wt.data, wZeroPoint: wt.zeroPoint, bias: qBias(g.hasBias ? args.inputs[2] : undefined, g.F, w),
    multipliers: m, shifts: s, clamp: activationClamp(args.node.attrs, '', yq, w),
  };
}

/** Per-channel (bias, multiplier, shift, extra) words. */
export function channelParams(bias: ArrayLike<number>, m: Int32Array, s: Int32Array, extra?: ArrayLike<number>): Uint32Array {
  const v = new Int32Array(4 * m.length);
  for (let c = 0; c < m.length; c++) v.set([bias[c] | 0, m[c], s[c], extra ? extra[c] | 0 : 0], 4 * c);
  return new Uint32Array(v.buffer);
}

export function int8Conv(args: Int8KernelArgs): Int8Program {
  const w = where(args);
  const q = convQuant(args);
  const g = q.g;
  const CG = g.C / g.group, FG = g.F / g.group;
  const total = g.N * g.F * g.HO * g.WO;
  const words = Math.ceil(total / 4);
  const d = flatDispatch(words, args.limits, w, 'j');
  const t = q.xq.type;
  if (tapRows(g)) return int8ConvRows(args, q, total, d);
  const wgsl = `
${int8Bindings(['x'], ['w', 'qp'])}
${constsU32({ C: g.C, F: g.F, CG, FG, HO: g.HO, WO: g.WO, KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw, DH: g.dh, DW: g.dw })}
${constsI32({ H: g.H, W: g.W, PT: g.pt, PL: g.pl, XOFF: -q.xq.zeroPoint, WOFF: -q.wZeroPoint, ZO: q.yq.zeroPoint, LO: q.clamp[0], HI: q.clamp[1] })}
${loader('x', t)}
${loader('w', t)}
${fixedPointWgsl}
fn elem(i: u32) -> i32 {
  let ox = i % WO;
  let oy = (i / WO) % HO;
  let f = (i / (WO * HO)) % F;
  let n = i / (WO * HO * F);
  let c0 = n * C + (f / FG) * CG;
  let iy0 = i32(oy * SH) - PT;
  let ix0 = i32(ox * SW) - PL;
  var acc = 0i;
  for (var ci = 0u; ci < CG; ci++) {
    let xc = (c0 + ci) * u32(H);
    let wc = (f * CG + ci) * KH;
    for (var kh = 0u; kh < KH; kh++) {
      let iy = iy0 + i32(kh * DH);
      if (iy < 0i || iy >= H) { continue; }
      let xr = (xc + u32(iy)) * u32(W);
      for (var kw = 0u; kw < KW; kw++) {
        let ix = ix0 + i32(kw * DW);
        if (ix >= 0i && ix < W) {
          acc += (ld_w((wc + kh) * KW + kw) + WOFF) * (ld_x(xr + u32(ix)) + XOFF);
        }
      }
    }
  }
  let p = f * 4u;
  acc += bitcast<i32>(qp[p]);
  return clamp(mbqm(acc, bitcast<i32>(qp[p + 1u]), bitcast<i32>(qp[p + 2u])) + ZO, LO, HI);
}
${perWordMain(total, d)}`;
  const kind = isPointwise(g) ? 'pw' : isDepthwise(g) ? `dw ${g.kh}x${g.kw} s${g.sh}` : `${g.kh}x${g.kw} s${g.sh} g${g.group}`;
  return perWordConvProgram(`Conv${t === 'int8' ? 'I8' : 'U8'}(${kind})`,
    cacheKey('int8-conv', t, geomKey(g), `zx${q.xq.zeroPoint}zw${q.wZeroPoint}zo${q.yq.zeroPoint}`, q.clamp, d.key), wgsl, d, pack8(q.w), q);
}

/**
 * Kernel rows of KW <= 4 taps (dilation 1 along W): depthwise.ts's rows-of-taps sum over the group's input
 * channels, one dot4 per row and channel instead of KW multiply-adds (MobileNets' first 3x3 convolution).
 */
function int8ConvRows(args: Int8KernelArgs, q: ConvQuant, total: number, d: ReturnType<typeof flatDispatch>): Int8Program {
  const g = q.g, t = q.xq.type;
  const CG = g.C / g.group, FG = g.F / g.group;
  const xWords = Math.max(1, Math.ceil((g.N * g.C * g.H * g.W) / 4));
  const wgsl = `${dot4Requires(args.dot4)}
${int8Bindings(['x'], ['wd', 'qp'])}
${constsU32({ C: g.C, F: g.F, CG, FG, HO: g.HO, WO: g.WO, SH: g.sh, SW: g.sw, DH: g.dh })}
${constsI32({ H: g.H, W: g.W, PT: g.pt, PL: g.pl, ZO: q.yq.zeroPoint, LO: q.clamp[0], HI: q.clamp[1] })}
${dot4Wgsl(t, args.dot4)}
${fixedPointWgsl}
${rowsSumWgsl(g, q.xq.zeroPoint, q.wZeroPoint, xWords, CG)}
fn elem(i: u32) -> i32 {
  let ox = i % WO;
  let oy = (i / WO) % HO;
  let f = (i / (WO * HO)) % F;
  let n = i / (WO * HO * F);
  let acc = rowsSum(n, (f / FG) * CG, f * CG, oy, ox) + bitcast<i32>(qp[4u * f]);
  return clamp(mbqm(acc, bitcast<i32>(qp[4u * f + 1u]), bitcast<i32>(qp[4u * f + 2u])) + ZO, LO, HI);
}
${perWordMain(total, d)}`;
  const kind = isDepthwise(g) ? `dw ${g.kh}x${g.kw} s${g.sh}` : `${g.kh}x${g.kw} s${g.sh} g${g.group}`;
  return perWordConvProgram(`Conv${t === 'int8' ? 'I8' : 'U8'}(${kind} rows${args.dot4 ? ' dot4' : ''})`,
    cacheKey('int8-conv-rows', t, args.dot4 ? 'dot4' : 'unpack', geomKey(g), `zx${q.xq.zeroPoint}zw${q.wZeroPoint}zo${q.yq.zeroPoint}`, q.clamp, d.key),
    wgsl, d, dwWeights({ C: g.F * CG, kh: g.kh, kw: g.kw, dw: g.dw }, q.w), q, 'wd');
}

/** The program of a convolution with one invocation per output word: input 0, the weights `w` and `qp`. */
export function perWordConvProgram(name: string, key: string, wgsl: string, d: { workgroupSize: [number, number, number]; dispatch: [number, number, number] },
  w: Uint32Array, q: ConvQuant, wName = 'w'): Int8Program {
  return {
    name, cacheKey: key, wgsl, workgroupSize: d.workgroupSize, dispatch: d.dispatch, inputs: [0], outputs: 1, uniforms: [], workgroupStorageBytes: 0,
    constants: [{ name: wName, data: w }, { name: 'qp', data: channelParams(q.bias, q.multipliers, q.shifts) }],
  };
}
