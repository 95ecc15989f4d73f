// Integer fully connected layer (Gemm in FULLY_CONNECTED's form: transB, alpha = beta = 1; x [rows, depth],
// w [units, depth]), reference/integer_ops/fully_connected.h and reference/fully_connected.h (uint8). One workgroup
// per output word (4 outputs): its threads split the depth, each taking every T-th word of the rows (consecutive
// threads read consecutive weight words: coalesced), dot4 over words (whole words of x when depth is a multiple of
// 4, else words rebuilt from bytes), then a tree reduction in workgroup memory (wrapping int32 addition, so the
// order does not change a bit) and one thread requantizes and stores the word. Zero points folded as in
// pointwise.ts. (One invocation per output word, looping over the whole depth, ran MobileNetV2's 1280 -> 1000
// classifier in 62 us on the H100: 250 threads in all, each reading its weights with a stride of a whole row.)
// Multipliers (fully_connected.cc Prepare): per-channel double(in) * double(w[u]) / out, per-tensor
// float32(in * w) / out.
//
// Constants: `wp` the weights [units, ceil(depth / 4)] words; `qp` 4 words per unit (folded bias, multiplier,
// shift, 0).

import { unsupported } from '../../src/errors.js';
import { quantizeMultiplier } from '../../src/quant/fixedpoint.js';
import { cacheKey, constsI32, constsU32, layoutWorkgroups, pow2AtMost, threadCap, threadsFor, where } from '../shader.js';
import {
  type Int8KernelArgs, type Int8Program, activationClamp, dot4Requires, dot4Wgsl, fixedPointWgsl, int8Bindings,
  loader, qBias, qTensor, qWeights,
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
  const words = Math.ceil(total / 4);
  // K-split: T threads share one output word's reduction (a power of two for the tree below; 32 for short rows).
  const T = Math.min(threadsFor(D4, 64), pow2AtMost(threadCap(args.limits)));
  const d = layoutWorkgroups(words, args.limits, w);
  // The 4 elements of a word lie in one row when every row is whole words (or there is one row): one x word per step.
  const oneRow = rows === 1 || units % 4 === 0;
  const xword = (row: string) => (aligned ? `x[${row} * D4 + d4]` : `xw(${row} * DEPTH + d4 * 4u, d4 * 4u)`);
  const step = oneRow
    ? `let xv = ${xword('r0')};
    acc += vec4<i32>(dot4(wp[u.x * D4 + d4], xv), dot4(wp[u.y * D4 + d4], xv), dot4(wp[u.z * D4 + d4], xv), dot4(wp[u.w * D4 + d4], xv));
    ${hasWzp ? 'sx += vec4<i32>(dot4(xv, 0x01010101u));' : ''}`
    : `let x0 = ${xword('r.x')}; let x1 = ${xword('r.y')}; let x2 = ${xword('r.z')}; let x3 = ${xword('r.w')};
    acc += vec4<i32>(dot4(wp[u.x * D4 + d4], x0), dot4(wp[u.y * D4 + d4], x1), dot4(wp[u.z * D4 + d4], x2), dot4(wp[u.w * D4 + d4], x3));
    ${hasWzp ? 'sx += vec4<i32>(dot4(x0, 0x01010101u), dot4(x1, 0x01010101u), dot4(x2, 0x01010101u), dot4(x3, 0x01010101u));' : ''}`;
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
fn fin(acc: i32, u: u32) -> u32 {
  let p = 4u * u;
  return u32(clamp(mbqm(acc + bitcast<i32>(qp[p]), bitcast<i32>(qp[p + 1u]), bitcast<i32>(qp[p + 2u])) + ZO, LO, HI)) & 0xffu;
}
var<workgroup> red: array<vec4<i32>, ${T}>;
@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let j = wid.x + wid.y * ${d.dispatchX}u;
  // Elements 4j..4j+3 (past the end: the last element's row and unit, computed and not stored).
  let e = min(vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(${total - 1}u));
  let r = e / UNITS;
  let u = e % UNITS;
  let r0 = r.x;
  var acc = vec4<i32>(0i);
  var sx = vec4<i32>(0i);
  for (var d4 = li; d4 < D4; d4 += ${T}u) {
    ${step}
  }
  red[li] = acc${hasWzp ? ' - ZW * sx' : ''};
  for (var s = ${T / 2}u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (li < s) { red[li] += red[li + s]; }
  }
  if (li == 0u && j < ${words}u) {
    let a = red[0];
    var word = fin(a.x, u.x);
    ${[1, 2, 3].map((k) => `if (4u * j + ${k}u < ${total}u) { word |= fin(a.${'xyzw'[k]}, u.${'xyzw'[k]}) << ${8 * k}u; }`).join('\n    ')}
    out[j] = word;
  }
}`;
  return {
    name: `FullyConnected${xq.type === 'int8' ? 'I8' : 'U8'}${args.dot4 ? '(dot4)' : ''}`,
    cacheKey: cacheKey('int8-fc', xq.type, args.dot4 ? 'dot4' : 'unpack', rows, units, depth, wt.zeroPoint, yq.zeroPoint, [lo, hi], `wg${T}dx${d.dispatchX}`),
    wgsl, workgroupSize: [T, 1, 1], dispatch: d.dispatch, inputs: [0], outputs: 1, workgroupStorageBytes: 16 * T,
    constants: [{ name: 'wp', data: packRows(wt.data, units, depth) }, { name: 'qp', data: channelParams(folded, m, s) }],
  };
}
