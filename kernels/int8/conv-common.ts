// What the integer convolution kernels share (conv.ts, depthwise.ts, pointwise.ts, fc.ts, fused.ts): a quantized
// Conv node's integer parameters, the per-channel requantization words, the program of a kernel with one
// invocation per output word, and the rows-of-taps sum (one dot4 per kernel row of up to 4 taps, see depthwise.ts)
// that both the standalone depthwise kernel and the direct convolution's rows form use.

import { unsupported } from '../../src/errors.js';
import { convMultipliers } from '../../src/quant/reference.js';
import { type ConvGeom, convGeom } from '../conv-common.js';
import { where } from '../shader.js';
import {
  type Int8KernelArgs, type Int8Program, type QInfo, activationClamp, pack8, qBias, qTensor, qWeights, shapeArgs,
  unroll, wordLoader,
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

