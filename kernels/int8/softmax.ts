// Integer SOFTMAX (reference/softmax.h for 8-bit input and output; src/quant/reference.ts softmax), bit-exact: the
// differences to the row's maximum, rescaled to Q5.26 by MultiplyByQuantizedMultiplierGreaterThanOne, go through
// gemmlowp's exp_on_negative_values (Q0.31); their sum in Q12.19 (wrapping int32 additions, as the port does);
// GetReciprocal's one_over_one_plus_x_for_x_in_0_1 (Newton-Raphson); the output on the fixed grid 1/256 with zero
// point qmin, which TFLite requires (anything else is refused, and the session runs the reference on the host).
//
// One workgroup per row (outer x inner positions; a row is the `depth` elements along `axis`): workgroup tree
// reductions of the maximum and of the sum (integer addition is associative mod 2^32, so the tree gives the
// sequential wrapping sum bit for bit), then every thread requantizes its elements' exps. A difference to the
// maximum of 8-bit values is one of 256 (0 down to -255), so the host tabulates exp and its Q12.19 rescale for each
// with the reference's own fixed-point functions (constant `ex`, 2 words per difference), as TFLite's optimized
// kernels do: computing exp_on_negative_values twice per element (a dozen 64-bit-free high multiplies each) in one
// workgroup ran MobileNetV2's 1000-way Softmax in 19 us on the H100 against 11 for the float kernel. Where
// rows are whole words (inner 1, depth a multiple of 4) threads own output words; otherwise words straddle rows
// (workgroups) and bytes go through the atomic byte store.

import { invalid, unsupported } from '../../src/errors.js';
import { softmaxParams } from '../../src/quant/reference.js';
import { expOnNegativeValues, multiplyByQuantizedMultiplierGreaterThanOne, rescale } from '../../src/quant/fixedpoint.js';
import { cacheKey, constsI32, constsU32, layoutWorkgroups, pow2AtMost, threadCap, u32, where } from '../shader.js';
import {
  type Int8KernelArgs, type Int8Program, atomicByteStore, fixedPointWgsl, int8Bindings, loader, packedWords, qLimits,
  qTensor,
} from './common.js';

/**
 * gemmlowp's exp_on_negative_values (for 5 integer bits, reference/softmax.h's kScaledDiffIntegerBits) and
 * one_over_one_plus_x_for_x_in_0_1 in WGSL, as src/quant/fixedpoint.ts ports them (needs fixedPointWgsl):
 * srmpot: SaturatingRoundingMultiplyByPOT for an exponent e in [1, 30] (the negative ones are rdbpot);
 * exp_quarter: exp_on_interval_between_negative_one_quarter_and_0_excl (Q0.31); exp_neg5: Q5.26 -> Q0.31, the
 * barrel shifter's seven steps (exp(-2^k), k = -2..4, all below 5 integer bits, so no -32 clamp);
 * half_sum_max: RoundingHalfSum(a, INT32_MAX) without int64 (a + 2^31 fits a u32 for a > INT32_MIN);
 * one_over_one_plus_x: Q0.31 -> Q0.31.
 */
export const softmaxFixedPointWgsl = `
fn srmpot(x: i32, e: u32) -> i32 {
  let threshold = i32((1u << (31u - e)) - 1u);
  if (x > threshold) { return 2147483647i; }
  if (x < -threshold) { return -2147483647i - 1i; }
  return x << e;
}
fn exp_quarter(a: i32) -> i32 {
  let x = a + 268435456i;
  let x2 = srdhm(x, x);
  let x3 = srdhm(x2, x);
  let x4 = srdhm(x2, x2);
  let poly = rdbpot(srdhm(rdbpot(x4, 2u) + x3, 715827883i) + x2, 1u);
  return 1895147668i + srdhm(1895147668i, x + poly);
}
fn exp_neg5(a: i32) -> i32 {
  let a_mod = (a & 0xffffffi) - 16777216i;
  var r = exp_quarter(srmpot(a_mod, 5u));
  let rem = a_mod - a;
  if ((rem & (1i << 24u)) != 0i) { r = srdhm(r, 1672461947i); }
  if ((rem & (1i << 25u)) != 0i) { r = srdhm(r, 1302514674i); }
  if ((rem & (1i << 26u)) != 0i) { r = srdhm(r, 790015084i); }
  if ((rem & (1i << 27u)) != 0i) { r = srdhm(r, 290630308i); }
  if ((rem & (1i << 28u)) != 0i) { r = srdhm(r, 39332535i); }
  if ((rem & (1i << 29u)) != 0i) { r = srdhm(r, 720401i); }
  if ((rem & (1i << 30u)) != 0i) { r = srdhm(r, 242i); }
  return select(r, 2147483647i, a == 0i);
}
fn half_sum_max(a: i32) -> i32 {
  if (a == -2147483647i - 1i) { return -1i; }
  return i32((u32(a) + 0x80000000u) >> 1u);
}
fn one_over_one_plus_x(a: i32) -> i32 {
  let hd = half_sum_max(a);
  var x = 1515870810i + srdhm(hd, -1010580540i);
  for (var k = 0u; k < 3u; k++) {
    let one_minus = 536870912i - srdhm(hd, x);
    x = x + srmpot(srdhm(x, one_minus), 2u);
  }
  return srmpot(x, 1u);
}
`;

/** The largest power of two <= n. */

export function int8Softmax(args: Int8KernelArgs): Int8Program {
  const w = where(args);
  const xq = qTensor(args.inputs[0], 'input', w), yq = qTensor(args.outputs[0], 'output', w);
  // An output of the other 8-bit type on its own Softmax grid is the Softmax followed by the QUANTIZE between the
  // two grids (same scale, zero points 128 apart: an exact shift), which src/runtime/compile.ts folds in here.
  if (xq.type !== yq.type && !args.requantizedOutput) throw unsupported(w, 'input and output must share one 8-bit type');
  const [xmin] = qLimits(xq.type);
  const xs = args.inputs[0]!.shape, ys = args.outputs[0].shape;
  if (xs.length !== ys.length || xs.some((d, k) => d !== ys[k])) throw invalid(w, `output [${ys.join(',')}] differs from the input [${xs.join(',')}]`);
  const [qmin, qmax] = qLimits(yq.type);
  // TFLite's only output grid; the reference throws for any other.
  if (yq.scale !== 1 / 256 || yq.zeroPoint !== qmin) {
    throw unsupported(w, `integer Softmax needs output scale 1/256 and zero point ${qmin}, got ${yq.scale} / ${yq.zeroPoint}`);
  }
  // The axis as run-reference.ts reads it (the importers always write it).
  const a = args.node.attrs.axis;
  if (typeof a !== 'number' || !Number.isInteger(a)) throw unsupported(w, 'integer Softmax needs an integer axis attribute');
  const axis = a < 0 ? a + xs.length : a;
  if (axis < 0 || axis >= xs.length) throw invalid(w, `axis ${a} is out of range for rank ${xs.length}`);
  const depth = xs[axis];
  const inner = xs.slice(axis + 1).reduce((p, d) => p * d, 1);
  const total = xs.reduce((p, d) => p * d, 1);
  if (total === 0) throw unsupported(w, 'integer Softmax of an empty tensor');
  if (total > 0xfffffff0) throw unsupported(w, `${total} elements exceed the u32 index range`);
  const rows = total / depth;
  let params: ReturnType<typeof softmaxParams>;
  try {
    params = softmaxParams(1, xq.scale);
  } catch (e) {
    // Input scales below 2^-26 have no QuantizeMultiplierGreaterThanOne (the reference refuses them too).
    throw unsupported(w, `integer Softmax cannot take input scale ${xq.scale}: ${(e as Error).message}`);
  }
  const { inputMultiplier, inputLeftShift, diffMin } = params;
  // ex[2d] = exp(-d) in Q0.31, ex[2d + 1] its Q12.19 rescale (reference.ts softmax); 0 where -d < diffMin (unused).
  const table = new Int32Array(512);
  for (let d = 0; d < 256 && -d >= diffMin; d++) {
    const e = expOnNegativeValues(multiplyByQuantizedMultiplierGreaterThanOne(-d, inputMultiplier, inputLeftShift), 5);
    table[2 * d] = e;
    table[2 * d + 1] = rescale(e, 0, 12);
  }
  // Rows of whole words: each thread owns words; else bytes of a word belong to several workgroups.
  const ownWords = inner === 1 && depth % 4 === 0;
  const threads = Math.max(1, Math.min(pow2AtMost(threadCap(args.limits)), Math.max(32, 2 ** Math.ceil(Math.log2(Math.ceil(depth / 4))))));
  const grid = layoutWorkgroups(rows, args.limits, w);
  const elem = `base + c * ${u32(inner)}`;
  const store = ownWords
    ? `for (var q = tid; q < ${u32(depth / 4)}; q += T) {
    var word = 0u;
    for (var k = 0u; k < 4u; k++) { word |= (u32(out_of(ld_x(base + 4u * q + k), mx, scale, expo)) & 0xffu) << (k * 8u); }
    out[(base >> 2u) + q] = word;
  }`
    : `for (var c = tid; c < D; c += T) { st_out(${elem}, out_of(ld_x(${elem}), mx, scale, expo)); }
  // The padding bytes of the last word, for a deterministic buffer.
  if (row == 0u && tid == 0u) { for (var i = ${u32(total)}; i < ${u32(4 * packedWords(total))}; i++) { st_out(i, 0i); } }`;
  const wgsl = `${int8Bindings(['x'], ['ex'], ['out'], !ownWords)}
${constsI32({ M: inputMultiplier, DIFF_MIN: diffMin, XMIN: xmin, QMIN: qmin, QMAX: qmax })}
${constsU32({ LS: inputLeftShift, D: depth, T: threads })}
${loader('x', xq.type)}
${fixedPointWgsl}
${softmaxFixedPointWgsl}
${ownWords ? '' : atomicByteStore}
var<workgroup> red: array<i32, ${threads}>;

// exp(diff) in Q0.31 of a diff in [DIFF_MIN, 0] (MultiplyByQuantizedMultiplierGreaterThanOne to Q5.26, then exp), and
// its Q12.19 rescale, from the host's table.
fn exp_of(diff: i32) -> i32 { return bitcast<i32>(ex[2u * u32(-diff)]); }
fn exp_q12(diff: i32) -> i32 { return bitcast<i32>(ex[2u * u32(-diff) + 1u]); }

// An output value: diffs under DIFF_MIN and exponents over 31 (a sum of exps >= 512; the exact rounding is 0) give qmin.
fn out_of(v: i32, mx: i32, scale: i32, expo: u32) -> i32 {
  let diff = v - mx;
  if (diff < DIFF_MIN || expo > 31u) { return QMIN; }
  return clamp(rdbpot(srdhm(scale, exp_of(diff)), expo) + QMIN, QMIN, QMAX);
}

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let row = wid.x + wid.y * ${u32(grid.dispatchX)};
  if (row >= ${u32(rows)}) { return; }
  let base = (row / ${u32(inner)}) * ${u32(depth * inner)} + row % ${u32(inner)};
  var m = XMIN;
  for (var c = tid; c < D; c += T) { m = max(m, ld_x(${elem})); }
  red[tid] = m;
  workgroupBarrier();
  for (var s = T / 2u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] = max(red[tid], red[tid + s]); }
    workgroupBarrier();
  }
  let mx = red[0];
  workgroupBarrier();
  // Sum of the exps rescaled to Q12.19 (Rescale<12>: rdbpot by 12), wrapping.
  var sum = 0i;
  for (var c = tid; c < D; c += T) {
    let diff = ld_x(${elem}) - mx;
    if (diff >= DIFF_MIN) { sum += exp_q12(diff); }
  }
  red[tid] = sum;
  workgroupBarrier();
  for (var s = T / 2u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] = red[tid] + red[tid + s]; }
    workgroupBarrier();
  }
  let sum_all = u32(red[0]);
  // GetReciprocal(sum, 12): headroom, the sum shifted to [1, 2) minus one in Q0.31 (a zero sum shifts to 0).
  let hp = countLeadingZeros(sum_all);
  let shifted = bitcast<i32>(select(sum_all << hp, 0u, hp >= 32u) - 0x80000000u);
  let scale = one_over_one_plus_x(shifted);
  // numBitsOverUnit + 31 - 8 = (12 - hp) + 23.
  let expo = 35u - hp;
  ${store}
}
`;
  return {
    name: `Softmax${xq.type === 'int8' ? 'I8' : 'U8'}${yq.type !== xq.type ? `(to ${yq.type})` : ''}`,
    cacheKey: cacheKey('int8-softmax', xq.type, yq.type, rows, depth, inner, inputMultiplier, inputLeftShift, diffMin, threads, ownWords, grid.dispatchX),
    wgsl, workgroupSize: [threads, 1, 1], dispatch: grid.dispatch, inputs: [0], outputs: 1, workgroupStorageBytes: 4 * threads,
    constants: [{ name: 'ex', data: new Uint32Array(table.buffer) }],
  };
}
