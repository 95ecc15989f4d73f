// What the integer convolution kernels share (conv.ts, depthwise.ts, pointwise.ts, fc.ts, fused.ts): a quantized
// Conv node's integer parameters, the per-channel requantization words, the program of a kernel with one
// invocation per output word, and the rows-of-taps sum (one dot4 per kernel row of up to 4 taps, see depthwise.ts)
// that both the standalone depthwise kernel and the direct convolution's rows form use.

import { unsupported } from '../../src/errors.js';
import { convMultipliers } from '../../src/quant/reference.js';
import { type ConvGeom, convGeom, geomKey } from '../conv-common.js';
import { cacheKey, constsI32, constsU32, flatDispatch, where } from '../shader.js';
import {
  type Int8KernelArgs, type Int8Program, type QInfo, activationClamp, dot4Requires, dot4Wgsl, fixedPointWgsl, int8Bindings,
  pack8, qBias, qTensor, qWeights, shapeArgs, unroll, wordLoader,
} from './common.js';

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
  if (g.hasRes && !args.residual) throw unsupported(w, 'a fused residual has no integer kernel (TFLite adds it with ADD)');
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

/** The program of a convolution with one invocation per output word: input 0, the weights `w` and `qp`. */
export function perWordConvProgram(name: string, key: string, wgsl: string, d: { workgroupSize: [number, number, number]; dispatch: [number, number, number] },
  w: Uint32Array, q: ConvQuant, wName = 'w'): Int8Program {
  return {
    name, cacheKey: key, wgsl, workgroupSize: d.workgroupSize, dispatch: d.dispatch, inputs: [0], outputs: 1, workgroupStorageBytes: 0,
    constants: [{ name: wName, data: w }, { name: 'qp', data: channelParams(q.bias, q.multipliers, q.shifts) }],
  };
}

export interface DwShape { C: number; kh: number; kw: number; dw: number }

/** Whether a depthwise layer's rows of taps fit one word each. */
export const tapRows = (g: Pick<DwShape, 'kw' | 'dw'>) => g.kw <= 4 && g.dw === 1;

/**
 * The weights as dwSum / rowsSum read them: [C, KH] words of a row's KW taps (lanes >= KW zero), C the weight
 * tensor's rows (channels, or filters x CG), or the flat bytes for the per-tap form.
 */
export function dwWeights(g: DwShape, w: ArrayLike<number>): Uint32Array {
  if (!tapRows(g)) return pack8(w);
  const out = new Uint32Array(Math.max(1, g.C * g.kh));
  for (let c = 0; c < g.C; c++) {
    for (let r = 0; r < g.kh; r++) {
      let v = 0;
      for (let k = 0; k < g.kw; k++) v |= (w[(c * g.kh + r) * g.kw + k] & 0xff) << (8 * k);
      out[c * g.kh + r] = v >>> 0;
    }
  }
  return out;
}

/**
 * `fn rowsSum(n, c0, r0, oy, ox) -> i32`: the rows-of-taps sum over CG input channels c0.. of image n at output
 * (oy, ox), the weight rows of input channel c0 + i being words (r0 + i) * KH .. of `wd` (dwWeights' layout for
 * [F, CG, KH, KW] weights: filter f's rows start at r0 = f * CG). One dot4 per kernel row and input channel; the
 * lane mask and the left-padding shift depend on ox only, so every channel shares them.
 */
export function rowsSumWgsl(g: Pick<DwShape, 'kh' | 'kw'>, zx: number, zw: number, xWords: number, cg: number, flip = false): string {
  const row = (r: number) => `{
      let iy = iy0 + ${r}i * i32(DH);
      if (iy >= 0i && iy < H) {
        let xv = ldw_x((plane + u32(iy)) * u32(W) + ixc) << sh;
        let wv = wd[wr + ${r}u] & m;
        s += dot4(wv, xv);${zx !== 0 ? '\n        sw += dot4(wv, 0x01010101u);' : ''}${zw !== 0 ? '\n        sx += dot4(m1, xv);\n        cnt += countOneBits(m1);' : ''}
      }
    }`;
  return `${wordLoader('x', xWords, flip)}
/** Lanes lo..hi-1 of a word (none when hi <= lo). */
fn laneMask(lo: i32, hi: i32) -> u32 {
  if (hi <= lo) { return 0u; }
  return (0xffffffffu >> u32(32i - 8i * (hi - lo))) << u32(8i * lo);
}
fn rowsSum(n: u32, c0: u32, r0: u32, oy: u32, ox: u32) -> i32 {
  let iy0 = i32(oy * SH) - PT;
  let ix = i32(ox * SW) - PL;
  // Left padding: load from the row's start and shift the bytes up to their lanes (masked lanes read 0).
  let ixc = u32(clamp(ix, 0i, W - 1i));
  let sh = u32(max(-ix, 0i)) * 8u;
  let m = laneMask(max(-ix, 0i), min(${g.kw}i, W - ix));
  ${zw !== 0 ? 'let m1 = m & 0x01010101u;' : ''}
  var s = 0i;
  ${zx !== 0 ? 'var sw = 0i;' : ''}
  ${zw !== 0 ? 'var sx = 0i; var cnt = 0u;' : ''}
  for (var ci = 0u; ci < ${cg}u; ci++) {
    let plane = (n * C + c0 + ci) * u32(H);
    let wr = (r0 + ci) * ${g.kh}u;
    ${unroll(g.kh, row, '\n    ')}
  }
  return s${zx !== 0 ? ` - (${zx}i) * sw` : ''}${zw !== 0 ? ` - ${zw}i * sx + ${zw * zx}i * i32(cnt)` : ''};
}`;
}


/**
 * Whether a convolution takes the aligned-rows kernel (alignedRowsConv): rows of taps, weights without a zero point
 * (int8's symmetric weights), input and output rows of whole words (W, WO multiples of 4), left padding under a word.
 */
export const alignedRowsApply = (g: Pick<ConvGeom, 'kw' | 'dw' | 'W' | 'WO' | 'pl'>, zw: number) => tapRows(g) && zw === 0 && g.W % 4 === 0 && g.WO % 4 === 0 && g.pl <= 3;

/**
 * A convolution with rows of taps on aligned rows (alignedRowsApply): one invocation per output word, the 4 outputs of
 * one row of one filter sharing their input. Per input channel of the group and kernel row it loads the NW aligned
 * words that hold every tap of the 4 outputs (3 at stride 1, 4 at stride 2) and cuts each output's window of 4 bytes
 * out of them with constant shifts; words outside the image (whole words, as rows hold whole words) read as the
 * input's zero point in every lane, so that they add w * (zx - zx) = 0 and no weight lane needs masking. With the zero
 * point in the padding every window has all KW taps, and sum_taps w (x - zx) = dot4s - zx * sum w, the second term a
 * per-filter constant folded into the bias on the host (wrapping int32, as the device adds): bit-exact with TFLite's
 * reference, which skips the padded taps. The per-output forms (rowsSumWgsl) load each output's row words again and
 * mask lanes and zero points per tap, about twice the work per output on integer units, where these layers are bound.
 * `kind`: the program name's shape part. A flipped input (Int8KernelArgs.flippedInput) is read with its top bits flipped.
 */
export function alignedRowsConv(args: Int8KernelArgs, q: ConvQuant, kind: string): Int8Program {
  const w = where(args);
  const g = q.g;
  if (!alignedRowsApply(g, q.wZeroPoint)) throw unsupported(w, 'the aligned-rows kernel needs rows of whole words, <= 4 taps a row, weights without a zero point and left padding < 4');
  const t = q.xq.type, zx = q.xq.zeroPoint;
  const CG = g.C / g.group, FG = g.F / g.group;
  const WW = g.W / 4, WOW = g.WO / 4;
  const total = g.N * g.F * g.HO * WOW;
  const d = flatDispatch(total, args.limits, w, 'j');
  // Bytes of the row from the first loaded word (4 before SW * ox0): output k's window of 4 bytes starts at
  // o_k = 4 + SW k - PL (>= 1); NW words hold the last window (o_3 .. o_3 + 3).
  const NW = Math.floor((7 + 3 * g.sw - g.pl) / 4) + 1;
  const zxWord = (((zx & 0xff) * 0x01010101) >>> 0);
  const flip = args.flippedInput ? ' ^ 0x80808080u' : '';
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const window = (k: number) => {
    const o = 4 + g.sw * k - g.pl, wi = Math.floor(o / 4), sh = (o % 4) * 8;
    return sh === 0 ? `v${wi}` : `((v${wi} >> ${sh}u) | (v${wi + 1} << ${32 - sh}u))`;
  };
  const rows = range(g.kh).map((r) => `    {
      let iy = iy0 + ${r * g.dh}i;
      let rowOk = iy >= 0i && iy < H;
      let q0 = i32((plane + u32(clamp(iy, 0i, H - 1i))) * ${WW}u) + wb;
${range(NW).map((i) => `      let v${i} = select(ZXW, x[u32(clamp(q0 + ${i}i, 0i, XLAST))]${flip}, rowOk && wb + ${i}i >= 0i && wb + ${i}i < ${WW}i);`).join('\n')}
      let wr = wd[wrow + ${r}u];
${range(4).map((k) => `      s${k} += dot4(wr, ${window(k)});`).join('\n')}
    }`);
  // Bias with -zx * (sum of the filter's taps) folded in: every window has all KW taps of every kernel row.
  const folded = new Int32Array(g.F), taps = CG * g.kh * g.kw;
  for (let f = 0; f < g.F; f++) {
    let sw = 0;
    for (let k = 0; k < taps; k++) sw += q.w[f * taps + k];
    folded[f] = (q.bias[f] - Math.imul(zx, sw)) | 0;
  }
  const requant = (k: number) => `u32(clamp(mbqm(s${k} + bias, mult, shift) + ZO, LO, HI)) & 0xffu`;
  const wgsl = `${dot4Requires(args.dot4)}
${int8Bindings(['x'], ['wd', 'qp'])}
${constsU32({ C: g.C, F: g.F, HO: g.HO })}
${constsI32({ H: g.H, PT: g.pt, ZO: q.yq.zeroPoint, LO: q.clamp[0], HI: q.clamp[1], XLAST: Math.max(0, Math.ceil((g.N * g.C * g.H * g.W) / 4) - 1) })}
const ZXW = ${zxWord}u;
${dot4Wgsl(t, args.dot4)}
${fixedPointWgsl}
@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  let ox0 = (j % ${WOW}u) * 4u;
  let oy = (j / ${WOW}u) % HO;
  let f = (j / ${WOW * g.HO}u) % F;
  let n = j / ${WOW * g.HO * g.F}u;
  let iy0 = i32(oy * ${g.sh}u) - PT;
  // First loaded word of each row: 4 bytes before SW * ox0 (a word boundary, ox0 a multiple of 4).
  let wb = i32(${g.sw}u * ox0 / 4u) - 1i;
  var s0 = 0i; var s1 = 0i; var s2 = 0i; var s3 = 0i;
  for (var ci = 0u; ci < ${CG}u; ci++) {
    let plane = (n * C + (f / ${FG}u) * ${CG}u + ci) * u32(H);
    let wrow = (f * ${CG}u + ci) * ${g.kh}u;
${rows.join('\n')}
  }
  let bias = bitcast<i32>(qp[4u * f]);
  let mult = bitcast<i32>(qp[4u * f + 1u]);
  let shift = bitcast<i32>(qp[4u * f + 2u]);
  out[j] = (${requant(0)}) | ((${requant(1)}) << 8u) | ((${requant(2)}) << 16u) | ((${requant(3)}) << 24u);
}`;
  const flipped = args.flippedInput ? ' flipped' : '';
  return {
    name: `Conv${t === 'int8' ? 'I8' : 'U8'}(${kind} aligned rows${args.dot4 ? ' dot4' : ''}${flipped})`,
    cacheKey: cacheKey('int8-conv-aligned-rows', t, args.dot4 ? 'dot4' : 'unpack', geomKey(g), `zx${zx}zo${q.yq.zeroPoint}`, q.clamp, d.key, flipped),
    wgsl, workgroupSize: d.workgroupSize, dispatch: d.dispatch, inputs: [0], outputs: 1, workgroupStorageBytes: 0,
    constants: [{ name: 'wd', data: dwWeights({ C: g.F * CG, kh: g.kh, kw: g.kw, dw: g.dw }, q.w) }, { name: 'qp', data: channelParams(folded, q.multipliers, q.shifts) }],
    inputFlipped: !!args.flippedInput,
  };
}
