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
// input channel, conv-common.ts rowsSumWgsl), other shapes this per-tap loop. Both take a folded input QUANTIZE
// between the two 8-bit types (Int8KernelArgs.flippedInput: the model's uint8 input read as int8).

import { geomKey, isDepthwise, isPointwise } from '../conv-common.js';
import { cacheKey, constsI32, constsU32, flatDispatch, where } from '../shader.js';
import {
  type Int8KernelArgs, type Int8Program, dot4Requires, dot4Wgsl, fixedPointWgsl, int8Bindings, loader, pack8,
  perWordMain,
} from './common.js';
import { type ConvQuant, alignedRowsApply, alignedRowsConv, convQuant, dwWeights, perWordConvProgram, rowsSumWgsl, tapRows } from './conv-common.js';

export function int8Conv(args: Int8KernelArgs): Int8Program {
  const w = where(args);
  const q = convQuant(args);
  const g = q.g;
  const CG = g.C / g.group, FG = g.F / g.group;
  const total = g.N * g.F * g.HO * g.WO;
  const words = Math.ceil(total / 4);
  const d = flatDispatch(words, args.limits, w, 'j');
  const t = q.xq.type;
  if (alignedRowsApply(g, q.wZeroPoint)) return alignedRowsConv(args, q, isDepthwise(g) ? `dw ${g.kh}x${g.kw} s${g.sh}` : `${g.kh}x${g.kw} s${g.sh} g${g.group}`);
  if (tapRows(g)) return int8ConvRows(args, q, total, d);
  const wgsl = `
${int8Bindings(['x'], ['w', 'qp'])}
${constsU32({ C: g.C, F: g.F, CG, FG, HO: g.HO, WO: g.WO, KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw, DH: g.dh, DW: g.dw })}
${constsI32({ H: g.H, W: g.W, PT: g.pt, PL: g.pl, XOFF: -q.xq.zeroPoint, WOFF: -q.wZeroPoint, ZO: q.yq.zeroPoint, LO: q.clamp[0], HI: q.clamp[1] })}
${loader('x', t, args.flippedInput)}
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
  const flip = args.flippedInput ? ' flipped' : '';
  return { ...perWordConvProgram(`Conv${t === 'int8' ? 'I8' : 'U8'}(${kind}${flip})`,
    cacheKey('int8-conv', t, geomKey(g), `zx${q.xq.zeroPoint}zw${q.wZeroPoint}zo${q.yq.zeroPoint}`, q.clamp, d.key, flip), wgsl, d, pack8(q.w), q), inputFlipped: !!args.flippedInput };
}

/**
 * Kernel rows of KW <= 4 taps (dilation 1 along W): the rows-of-taps sum (conv-common.ts rowsSumWgsl) over the group's input
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
${rowsSumWgsl(g, q.xq.zeroPoint, q.wZeroPoint, xWords, CG, args.flippedInput)}
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
  const flip = args.flippedInput ? ' flipped' : '';
  return {
    ...perWordConvProgram(`Conv${t === 'int8' ? 'I8' : 'U8'}(${kind} rows${args.dot4 ? ' dot4' : ''}${flip})`,
      cacheKey('int8-conv-rows', t, args.dot4 ? 'dot4' : 'unpack', geomKey(g), `zx${q.xq.zeroPoint}zw${q.wZeroPoint}zo${q.yq.zeroPoint}`, q.clamp, d.key, flip),
      wgsl, d, dwWeights({ C: g.F * CG, kh: g.kh, kw: g.kw, dw: g.dw }, q.w), q, 'wd'),
    inputFlipped: !!args.flippedInput,
  };
}
