// Integer MEAN (ReduceMean / GlobalAveragePool), as reduce.cc EvalMean picks the kernel for 8-bit tensors
// (src/quant/reference.ts mean):
// - 4-D, keep_dims, axes {H, W}: int8 reference/integer_ops/mean.h (sum of x - zx, MBQM by in / out scale,
//   rounded division by the count, + zo); uint8 reference/reduce.h Mean (MBQM of the raw sum by
//   in / (count * out), + a float32 bias computed on the host);
// - same scale and zero point in and out: the truncated integer mean of the raw values (any axes);
// - otherwise TFLite computes a float32 mean with a float32 division, which WGSL does not round correctly:
//   refused as unsupported rather than run approximately.

import { unsupported } from '../../src/errors.js';
import { quantizeMultiplier } from '../../src/quant/fixedpoint.js';
import { cacheKey, constsI32, flatDispatch, intsAttr, layoutWorkgroups, normAxis, stridesOf, where } from '../shader.js';
import {
  type Int8KernelArgs, type Int8Program, type QType, dot4Requires, dot4Wgsl, fixedPointWgsl, int8Bindings, loader,
  perWordMain, qLimits, qTensor, wordLoader,
} from './common.js';

export function int8Mean(args: Int8KernelArgs): Int8Program {
  const w = where(args);
  const xq = qTensor(args.inputs[0], 'input', w), yq = qTensor(args.outputs[0], 'output', w);
  if (xq.type !== yq.type) throw unsupported(w, 'input and output must share one 8-bit type');
  const xs = args.inputs[0]!.shape, r = xs.length;
  const global = args.node.op === 'GlobalAveragePool';
  const axesAttr = global ? [2, 3] : intsAttr(args.node.attrs, 'axes', [], w);
  const axes = (axesAttr.length ? axesAttr : xs.map((_, i) => i)).map((a) => normAxis(a, r, w));
  const keep = global || !!args.node.attrs.keepdims;
  const kept = xs.map((d, i) => (axes.includes(i) ? 1 : d));
  const reduced = axes.map((a) => xs[a]);
  const count = reduced.reduce((a, b) => a * b, 1);
  const total = kept.reduce((a, b) => a * b, 1);
  const spatial = r === 4 && keep && axes.length === 2 && axes.includes(2) && axes.includes(3);
  const [qmin, qmax] = qLimits(yq.type);
  const fr = Math.fround;
  let finish: string;
  let consts: Record<string, number>;
  if (spatial && yq.type === 'int8') {
    const { multiplier, shift } = quantizeMultiplier(xq.scale / yq.scale);
    consts = { M: multiplier, S: shift, HALF: Math.trunc(count / 2) };
    finish = `var acc = mbqm(sum - ZX * ${count}i, M, S);
  acc = select((acc - HALF) / ${count}i, (acc + HALF) / ${count}i, acc > 0i);
  return clamp(acc + ZO, ${qmin}i, ${qmax}i);`;
  } else if (spatial) {
    const bias = yq.zeroPoint - Math.trunc(fr(fr(xq.zeroPoint * fr(xq.scale)) / fr(yq.scale)));
    const { multiplier, shift } = quantizeMultiplier(fr(fr(xq.scale) / fr(fr(count) * fr(yq.scale))));
    consts = { M: multiplier, S: shift, BIAS: bias };
    finish = `return clamp(mbqm(sum, M, S) + BIAS, ${qmin}i, ${qmax}i);`;
  } else if (xq.scale === yq.scale && xq.zeroPoint === yq.zeroPoint) {
    consts = {};
    finish = `return sum / ${count}i;`;
  } else {
    throw unsupported(w, 'MEAN with requantization outside the 4-D spatial keep_dims case computes in float32 (no exact integer kernel)');
  }
  // Reduced axes that are the trailing ones (in any order): each output's inputs are one contiguous run of bytes,
  // summed a word at a time as the spatial case is (MobileNetV2's final ReduceMean over H, W without keep_dims).
  // (The per-element loop below ran it as 320 invocations of 196 byte loads each: 17 us on the H100.)
  const trailing = [...axes].sort((p, q) => p - q).every((a, k, sorted) => a === r - sorted.length + k);
  if (spatial || trailing) return spatialMean(args, w, xq.type, total, count, { ZX: xq.zeroPoint, ZO: yq.zeroPoint, ...consts }, finish);
  const ks = stridesOf(kept), xst = stridesOf(xs), rs = stridesOf(reduced);
  const base = kept.map((d, k) => (d === 1 ? '' : `((i / ${ks[k]}u) % ${d}u) * ${xst[k]}u`)).filter((t) => t).join(' + ') || '0u';
  const roff = axes.map((a, k) => `((q / ${rs[k]}u) % ${reduced[k]}u) * ${xst[a]}u`).join(' + ') || '0u';
  const d = flatDispatch(Math.ceil(total / 4), args.limits, w, 'j');
  const wgsl = `${int8Bindings(['x'], [])}
${constsI32({ ZX: xq.zeroPoint, ZO: yq.zeroPoint, ...consts })}
${loader('x', xq.type)}
${fixedPointWgsl}
fn elem(i: u32) -> i32 {
  let b = ${base};
  var sum = 0i;
  for (var q = 0u; q < ${count}u; q++) { sum += ld_x(b + ${roff}); }
  ${finish}
}
${perWordMain(total, d)}`;
  return {
    name: `Mean${xq.type === 'int8' ? 'I8' : 'U8'}`,
    cacheKey: cacheKey('int8-mean', xq.type, xs, axes, keep, xq.zeroPoint, yq.zeroPoint, Object.values(consts).join(','), d.key),
    wgsl, workgroupSize: d.workgroupSize, dispatch: d.dispatch, inputs: [0], outputs: 1, workgroupStorageBytes: 0, constants: [],
  };
}

/**
 * The 4-D spatial mean (each output one contiguous H x W plane): one invocation per output, summing its plane a
 * word at a time (dot4 against 1,1,1,1; the last word masked), then a quarter of the workgroup packs the words.
 * (One invocation per output word, summing 4 x 49 bytes one at a time, ran MobileNetV1's 7x7 mean in 15 us on the
 * H200 against 9 for the float kernel.)
 */
function spatialMean(args: Int8KernelArgs, w: string, t: QType, total: number, count: number, consts: Record<string, number>, finish: string): Int8Program {
  // Workgroups of 64 where 256 would leave most SMs of a large GPU (132) idle: MobileNetV2's 1280 means run as 20
  // workgroups, not 5.
  const T = Math.ceil(total / 256) >= 132 ? 256 : 64;
  const groups = Math.ceil(total / T);
  const d = layoutWorkgroups(groups, args.limits, w);
  const full = Math.floor(count / 4), rest = count % 4;
  const xWords = Math.max(1, Math.ceil((total * count) / 4));
  const wgsl = `${dot4Requires(args.dot4)}
${int8Bindings(['x'], [])}
${constsI32(consts)}
${wordLoader('x', xWords)}
${dot4Wgsl(t, args.dot4)}
${fixedPointWgsl}
var<workgroup> res: array<u32, ${T}>;
fn finish(sum: i32) -> i32 {
  ${finish}
}
@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let g = wid.x + wid.y * ${d.dispatchX}u;
  let e = g * ${T}u + li;
  var v = 0u;
  if (e < ${total}u) {
    let b = e * ${count}u;
    var sum = 0i;
    for (var k = 0u; k < ${full}u; k++) { sum += dot4(ldw_x(b + 4u * k), 0x01010101u); }
    ${rest ? `sum += dot4(ldw_x(b + ${4 * full}u) & ${(2 ** (8 * rest) - 1) >>> 0}u, 0x01010101u);` : ''}
    v = u32(finish(sum)) & 0xffu;
  }
  res[li] = v;
  workgroupBarrier();
  let j = g * ${T / 4}u + li;
  if (li < ${T / 4}u && j < ${Math.ceil(total / 4)}u) {
    out[j] = res[4u * li] | (res[4u * li + 1u] << 8u) | (res[4u * li + 2u] << 16u) | (res[4u * li + 3u] << 24u);
  }
}`;
  return {
    name: `Mean${t === 'int8' ? 'I8' : 'U8'}(spatial${args.dot4 ? ' dot4' : ''})`,
    cacheKey: cacheKey('int8-mean-spatial', t, args.dot4 ? 'dot4' : 'unpack', total, count, Object.entries(consts).join(','), finish, `dx${d.dispatchX}`),
    wgsl, workgroupSize: [T, 1, 1], dispatch: d.dispatch, inputs: [0], outputs: 1, workgroupStorageBytes: 4 * T, constants: [],
  };
}
