// Integer depthwise convolution on rows of taps: one dot4 per kernel row. A row's KW <= 4 taps at one output are
// KW consecutive bytes of an input row (dilation 1 along W), so one word loaded from the row's byte offset (any
// alignment: wordLoader's funnel shift) against the host-packed word of that row's KW weights gives sum w * x;
// taps outside the image are removed by masking the weight word's lanes (rows outside are skipped), and the zero
// points by dot4s against the lane mask (exact in wrapping int32 arithmetic, so bit-exact with TFLite's
// reference DepthwiseConvPerChannel / uint8 DepthwiseConv):
//   sum (w - zw)(x - zx) = sum w x - zx sum w - zw sum x + zw zx count, each sum over the unmasked lanes.
// Other depthwise shapes (KW > 4, dilated W) take the direct per-tap form, same function signature.
//
// `dwSumWgsl` is shared by the standalone kernel (one invocation per output word, 4 outputs) and the DW-PW FCM's
// depthwise phase (fused.ts). It writes `fn dwSum(n, c, oy, ox) -> i32` over the WGSL constants C (u32), H, W,
// PT, PL (i32), SH, SW, DH (u32) and the buffers `x` (packed input, through ldw_x / ld_x) and `wd` (dwWeights).

import type { ConvGeom } from '../conv-common.js';
import { geomKey } from '../conv-common.js';
import { cacheKey, constsI32, constsU32, flatDispatch, where } from '../shader.js';
import {
  type Int8KernelArgs, type Int8Program, type QType, dot4Requires, dot4Wgsl, fixedPointWgsl, int8Bindings, loader,
  perWordMain,
} from './common.js';
import { type DwShape, alignedRowsApply, alignedRowsConv, convQuant, dwWeights, perWordConvProgram, rowsSumWgsl, tapRows } from './conv-common.js';
import { invalid } from '../../src/errors.js';

/**
 * `fn dwSum(n: u32, c: u32, oy: u32, ox: u32) -> i32`: sum over the in-image taps of (w - zw) * (x - zx) for
 * channel c of image n at output (oy, ox). Needs `xWords` (the input buffer's length in words) for the funnel
 * loader, which this also emits (ldw_x) together with ld_x / ld_wd for the per-tap form.
 */
export function dwSumWgsl(g: Pick<DwShape, 'kh' | 'kw' | 'dw'>, type: QType, zx: number, zw: number, xWords: number): string {
  if (!tapRows(g)) {
    return `${loader('x', type)}
${loader('wd', type)}
fn dwSum(n: u32, c: u32, oy: u32, ox: u32) -> i32 {
  let iy0 = i32(oy * SH) - PT;
  let ix0 = i32(ox * SW) - PL;
  var s = 0i;
  for (var kh = 0u; kh < ${g.kh}u; kh++) {
    let iy = iy0 + i32(kh * DH);
    if (iy < 0i || iy >= H) { continue; }
    for (var kw = 0u; kw < ${g.kw}u; kw++) {
      let ix = ix0 + i32(kw * ${g.dw}u);
      if (ix >= 0i && ix < W) {
        s += (ld_wd((c * ${g.kh}u + kh) * ${g.kw}u + kw) - ${zw}i) * (ld_x(((n * C + c) * u32(H) + u32(iy)) * u32(W) + u32(ix)) - (${zx}i));
      }
    }
  }
  return s;
}`;
  }
  return `${rowsSumWgsl(g, zx, zw, xWords, 1)}
fn dwSum(n: u32, c: u32, oy: u32, ox: u32) -> i32 { return rowsSum(n, c, c, oy, ox); }`;
}

/**
 * Whether a layer takes the aligned-rows kernel (int8DepthwiseAligned): rows of taps, weights without a zero point
 * (int8's symmetric weights), input and output rows of whole words (W, WO multiples of 4), left padding under a word.
 */
export const dwAlignedApplies = alignedRowsApply;

/**
 * The depthwise kernel: the aligned-rows form where dwAlignedApplies, else one invocation per output word (4 outputs,
 * consecutive in NCHW order), each output a dwSum and its requantization.
 */
export function int8Depthwise(args: Int8KernelArgs): Int8Program {
  const q = convQuant(args);
  if (dwAlignedApplies(q.g, q.wZeroPoint)) return int8DepthwiseAligned(args);
  return int8DepthwisePerOutput(args);
}

/** One invocation per output word (4 outputs, consecutive in NCHW order), each output a dwSum and its requantization. */
export function int8DepthwisePerOutput(args: Int8KernelArgs): Int8Program {
  const w = where(args);
  const q = convQuant(args);
  const g: ConvGeom = q.g;
  const total = g.N * g.F * g.HO * g.WO;
  const d = flatDispatch(Math.ceil(total / 4), args.limits, w, 'j');
  const t = q.xq.type;
  const xWords = Math.max(1, Math.ceil((g.N * g.C * g.H * g.W) / 4));
  const wgsl = `${dot4Requires(args.dot4)}
${int8Bindings(['x'], ['wd', 'qp'])}
${constsU32({ C: g.C, HO: g.HO, WO: g.WO, SH: g.sh, SW: g.sw, DH: g.dh })}
${constsI32({ H: g.H, W: g.W, PT: g.pt, PL: g.pl, ZO: q.yq.zeroPoint, LO: q.clamp[0], HI: q.clamp[1] })}
${dot4Wgsl(t, args.dot4)}
${fixedPointWgsl}
${dwSumWgsl(g, t, q.xq.zeroPoint, q.wZeroPoint, xWords)}
fn elem(i: u32) -> i32 {
  let ox = i % WO;
  let oy = (i / WO) % HO;
  let c = (i / (WO * HO)) % C;
  let n = i / (WO * HO * C);
  let acc = dwSum(n, c, oy, ox) + bitcast<i32>(qp[4u * c]);
  return clamp(mbqm(acc, bitcast<i32>(qp[4u * c + 1u]), bitcast<i32>(qp[4u * c + 2u])) + ZO, LO, HI);
}
${perWordMain(total, d)}`;
  return perWordConvProgram(`Conv${t === 'int8' ? 'I8' : 'U8'}(dw ${g.kh}x${g.kw} s${g.sh}${tapRows(g) ? ' rows' : ''}${args.dot4 ? ' dot4' : ''})`,
    cacheKey('int8-depthwise', t, args.dot4 ? 'dot4' : 'unpack', geomKey(g), `zx${q.xq.zeroPoint}zw${q.wZeroPoint}zo${q.yq.zeroPoint}`, q.clamp, d.key),
    wgsl, d, dwWeights(g, q.w), q, 'wd');
}

/** Depthwise on aligned rows (conv-common.ts alignedRowsConv; dwAlignedApplies). */
export function int8DepthwiseAligned(args: Int8KernelArgs): Int8Program {
  const q = convQuant(args);
  if (!dwAlignedApplies(q.g, q.wZeroPoint)) throw invalid(where(args), 'the aligned depthwise kernel needs rows of whole words, <= 4 taps a row, weights without a zero point and left padding < 4');
  return alignedRowsConv(args, q, `dw ${q.g.kh}x${q.g.kw} s${q.g.sh}`);
}
