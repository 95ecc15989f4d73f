// Integer fully connected layer (Gemm in FULLY_CONNECTED's form: transB, alpha = beta = 1; x [rows, depth],
// w [units, depth]), reference/integer_ops/fully_connected.h and reference/fully_connected.h (uint8), one
// invocation per output word. Rows of x are packed along depth, so the reduction is dot4 over words: whole words
// of x when depth is a multiple of 4, else words rebuilt from bytes. Zero points folded as in pointwise.ts.
// Multipliers (fully_connected.cc Prepare): per-channel double(in) * double(w[u]) / out, per-tensor
// float32(in * w) / out.
//
// Constants: `wp` the weights [units, ceil(depth / 4)] words; `qp` 4 words per unit (folded bias, multiplier,
// shift, 0).

import { unsupported } from '../../src/errors.js';
import { quantizeMultiplier } from '../../src/quant/fixedpoint.js';
import { cacheKey, constsI32, constsU32, flatDispatch, where } from '../shader.js';
import {
  type Int8KernelArgs, type Int8Program, activationClamp, dot4Requires, dot4Wgsl, fixedPointWgsl, int8Bindings,
  loader, perWordMain, qBias, qTensor, qWeights,
} from './common.js';
import { channelParams } from './conv-common.js';
import { foldBias, packRows } from './pointwise.js';

export function int8FullyConnected(args: Int8KernelArgs): Int8Program {
  const w = where(args);
  const a = args.node.attrs;
  if (a.transA || !a.transB || (a.alpha ?? 1) !== 1 || (a.beta ?? 1) !== 1) throw unsupported(w, "only FULLY_CONNECTED's Gemm form (transB, alpha = beta = 1) has an integer kernel");
  const xq = qTensor(args.inputs[0], 'input', w), yq = qTensor(args.outputs[0], 'output', w);
  const wt = qWeights(args.inputs[1], 'weights', w, xq.type);
  const [units, depth] = args.inputs[1]!.shape;
  const xs = args.inputs[0]!.shape;
  if (xs.length !== 2 || xs[1] !== depth) throw unsupported(w, `input [${xs}] must be [rows, ${depth}]`);
  const rows = xs[0];
  const per = wt.scales.length > 1;
  const fr = Math.fround;
  const m = new Int32Array(units), s = new Int32Array(units);
  for (let u = 0; u < units; u++) {
    const ws = per ? wt.scales[u] : wt.scales[0];
    const r = quantizeMultiplier(per ? (xq.scale * ws) / yq.scale : fr(xq.scale * ws) / yq.scale);
    m[u] = r.multiplier; s[u] = r.shift;
  }
  const bias = qBias(args.inputs[2], units, w);
  const folded = foldBias(bias, wt.data, units, depth, xq.zeroPoint, wt.zeroPoint);
  const [lo, hi] = activationClamp(a, '', yq, w);
  const D4 = Math.ceil(depth / 4);
  const aligned = depth % 4 === 0;
  const hasWzp = wt.zeroPoint !== 0;
  const total = rows * units;
  const d = flatDispatch(Math.ceil(total / 4), args.limits, w, 'j');
  const xword = aligned ? 'x[row * D4 + d4]' : 'xw(row * DEPTH + d4 * 4u, d4 * 4u)';
  const wgsl = `${dot4Requires(args.dot4)}
${int8Bindings(['x'], ['wp', 'qp'])}
${constsU32({ UNITS: units, DEPTH: depth, D4 })}
${constsI32({ ZW: wt.zeroPoint, ZO: yq.zeroPoint, LO: lo, HI: hi })}
${loader('x', xq.type)}
${dot4Wgsl(xq.type, args.dot4)}
${fixedPointWgsl}
fn xw(at: u32, c: u32) -> u32 {
  var word = 0u;
  for (var k = 0u; k < 4u; k++) {
    if (c + k < DEPTH) { word |= (u32(ld_x(at + k)) & 0xffu) << (k * 8u); }
  }
  return word;
}
fn elem(i: u32) -> i32 {
  let u = i % UNITS;
  let row = i / UNITS;
  var acc = 0i;
  var sx = 0i;
  for (var d4 = 0u; d4 < D4; d4++) {
    let xv = ${xword};
    acc += dot4(wp[u * D4 + d4], xv);
    ${hasWzp ? 'sx += dot4(xv, 0x01010101u);' : ''}
  }
  let p = 4u * u;
  acc += bitcast<i32>(qp[p])${hasWzp ? ' - ZW * sx' : ''};
  return clamp(mbqm(acc, bitcast<i32>(qp[p + 1u]), bitcast<i32>(qp[p + 2u])) + ZO, LO, HI);
}
${perWordMain(total, d)}`;
  return {
    name: `FullyConnected${xq.type === 'int8' ? 'I8' : 'U8'}${args.dot4 ? '(dot4)' : ''}`,
    cacheKey: cacheKey('int8-fc', xq.type, args.dot4 ? 'dot4' : 'unpack', rows, units, depth, wt.zeroPoint, yq.zeroPoint, [lo, hi], d.key),
    wgsl, workgroupSize: d.workgroupSize, dispatch: d.dispatch, inputs: [0], outputs: 1, workgroupStorageBytes: 0,
    constants: [{ name: 'wp', data: packRows(wt.data, units, depth) }, { name: 'qp', data: channelParams(folded, m, s) }],
  };
}
