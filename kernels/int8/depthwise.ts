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
import { type DwShape, channelParams, convQuant, dwWeights, perWordConvProgram, rowsSumWgsl, tapRows } from './conv-common.js';
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
export const dwAlignedApplies = (g: Pick<ConvGeom, 'kw' | 'dw' | 'W' | 'WO' | 'pl'>, zw: number) => tapRows(g) && zw === 0 && g.W % 4 === 0 && g.WO % 4 === 0 && g.pl <= 3;

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

/**
 * Depthwise on aligned rows (dwAlignedApplies): one invocation per output word, the 4 outputs of one row sharing
 * their input. Per kernel row it loads the NW aligned words that hold every tap of the 4 outputs (3 at stride 1, 4 at
 * stride 2) and cuts each output's window of 4 bytes out of them with constant shifts; words outside the image
 * (whole words, as rows hold whole words) read as the input's zero point in every lane, so that they add
 * w * (zx - zx) = 0 and no weight lane needs masking. With the zero point in the padding every window has all KW
 * taps, and sum_taps w (x - zx) = dot4s - zx * sum w, the second term a per-channel constant folded into the bias on
 * the host (wrapping int32, as the device adds): bit-exact with TFLite's reference, which skips the padded taps.
 * The per-output form (int8DepthwisePerOutput) loads each output's row words again and masks lanes and zero points
 * per tap: about 1.5x the work per output on the H100's integer units, where these layers are bound.
 */
export function int8DepthwiseAligned(args: Int8KernelArgs): Int8Program {
  const w = where(args);
  const q = convQuant(args);
  const g: ConvGeom = q.g;
  if (!dwAlignedApplies(g, q.wZeroPoint)) throw invalid(w, 'the aligned depthwise kernel needs rows of whole words, <= 4 taps a row, weights without a zero point and left padding < 4');
  const t = q.xq.type, zx = q.xq.zeroPoint;
  const WW = g.W / 4, WOW = g.WO / 4;
  const total = g.N * g.F * g.HO * WOW;
  const d = flatDispatch(total, args.limits, w, 'j');
  // Bytes of the row from the first loaded word (4 before SW * ox0): output k's window of 4 bytes starts at
  // o_k = 4 + SW k - PL (>= 1); NW words hold the last window (o_3 .. o_3 + 3).
  const NW = Math.floor((7 + 3 * g.sw - g.pl) / 4) + 1;
  const zxWord = (((zx & 0xff) * 0x01010101) >>> 0);
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const window = (k: number) => {
    const o = 4 + g.sw * k - g.pl, wi = Math.floor(o / 4), sh = (o % 4) * 8;
    return sh === 0 ? `v${wi}` : `((v${wi} >> ${sh}u) | (v${wi + 1} << ${32 - sh}u))`;
  };
  const rows = range(g.kh).map((r) => `  {
    let iy = iy0 + ${r * g.dh}i;
    let rowOk = iy >= 0i && iy < H;
    let q0 = i32(plane + u32(clamp(iy, 0i, H - 1i)) * ${WW}u) + wb;
${range(NW).map((i) => `    let v${i} = select(ZXW, x[u32(clamp(q0 + ${i}i, 0i, XLAST))], rowOk && wb + ${i}i >= 0i && wb + ${i}i < ${WW}i);`).join('\n')}
    let wr = wd[c * ${g.kh}u + ${r}u];
${range(4).map((k) => `    s${k} += dot4(wr, ${window(k)});`).join('\n')}
  }`);
  // Bias with -zx * (sum of the channel's taps) folded in: every window has all KW taps of every kernel row.
  const folded = new Int32Array(g.F);
  for (let c = 0; c < g.F; c++) {
    let sw = 0;
    for (let k = 0; k < g.kh * g.kw; k++) sw += q.w[c * g.kh * g.kw + k];
    folded[c] = (q.bias[c] - Math.imul(zx, sw)) | 0;
  }
  const requant = (k: number) => `u32(clamp(mbqm(s${k} + bias, mult, shift) + ZO, LO, HI)) & 0xffu`;
  const wgsl = `${dot4Requires(args.dot4)}
${int8Bindings(['x'], ['wd', 'qp'])}
${constsU32({ C: g.C, HO: g.HO })}
${constsI32({ H: g.H, PT: g.pt, ZO: q.yq.zeroPoint, LO: q.clamp[0], HI: q.clamp[1], XLAST: Math.max(0, Math.ceil((g.N * g.C * g.H * g.W) / 4) - 1) })}
const ZXW = ${zxWord}u;
${dot4Wgsl(t, args.dot4)}
${fixedPointWgsl}
@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  let ox0 = (j % ${WOW}u) * 4u;
  let oy = (j / ${WOW}u) % HO;
  let c = (j / ${WOW * g.HO}u) % C;
  let n = j / ${WOW * g.HO * g.C}u;
  let plane = (n * C + c) * u32(H) * ${WW}u;
  let iy0 = i32(oy * ${g.sh}u) - PT;
  // First loaded word of each row: 4 bytes before SW * ox0 (a word boundary, ox0 a multiple of 4).
  let wb = i32(${g.sw}u * ox0 / 4u) - 1i;
  var s0 = 0i; var s1 = 0i; var s2 = 0i; var s3 = 0i;
${rows.join('\n')}
  let bias = bitcast<i32>(qp[4u * c]);
  let mult = bitcast<i32>(qp[4u * c + 1u]);
  let shift = bitcast<i32>(qp[4u * c + 2u]);
  out[j] = (${requant(0)}) | ((${requant(1)}) << 8u) | ((${requant(2)}) << 16u) | ((${requant(3)}) << 24u);
}`;
  return {
    name: `Conv${t === 'int8' ? 'I8' : 'U8'}(dw ${g.kh}x${g.kw} s${g.sh} aligned rows${args.dot4 ? ' dot4' : ''})`,
    cacheKey: cacheKey('int8-depthwise-aligned', t, args.dot4 ? 'dot4' : 'unpack', geomKey(g), `zx${zx}zo${q.yq.zeroPoint}`, q.clamp, d.key),
    wgsl, workgroupSize: d.workgroupSize, dispatch: d.dispatch, inputs: [0], outputs: 1, workgroupStorageBytes: 0,
    constants: [{ name: 'wd', data: dwWeights(g, q.w) }, { name: 'qp', data: channelParams(folded, q.multipliers, q.shifts) }],
  };
}
