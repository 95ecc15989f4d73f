// GlobalAveragePool and the reductions ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd: one invocation
// per output element folding its reduced elements in order. GlobalAveragePool reduces every axis past the
// channel; the Reduce ops their `axes` ([] = all, or none with noop_with_empty_axes), keepdims either way.

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid, unsupported } from '../src/errors.js';
import {
  bindings, cacheKey, coords, f32, flatDispatch, inShape, intAttr, intsAttr, normAxis, offset, outShape,
  layoutWorkgroups, threadCap, sameShape, size, u32, where,
} from './shader.js';

/** Per reduction: the initial value, the fold of `s` with the element `v`, and the result from `s`. */
const folds: Record<string, { init: string; step: string; result: (R: string) => string }> = {
  ReduceMean: { init: '0.0', step: 's + v', result: (R) => `s / ${R}` },
  ReduceSum: { init: '0.0', step: 's + v', result: () => 's' },
  ReduceProd: { init: '1.0', step: 's * v', result: () => 's' },
  // NaN propagates (onnxruntime's max/min over a NaN give NaN; WGSL's max/min may drop it).
  ReduceMax: { init: 'x[first]', step: 'select(select(max(s, v), v, isNan(v)), s, isNan(s))', result: () => 's' },
  ReduceMin: { init: 'x[first]', step: 'select(select(min(s, v), v, isNan(v)), s, isNan(s))', result: () => 's' },
};
export const reduceOps: readonly string[] = Object.keys(folds);

export function reduceMean(args: KernelArgs): KernelProgram {
  const w = where(args);
  const op = args.node.op;
  const x = inShape(args, 0, 'input');
  let axes: number[];
  let keep = 1;
  if (op === 'GlobalAveragePool') {
    if (x.length < 3) throw invalid(w, `input must have rank >= 3, got [${x.join(',')}]`);
    axes = x.slice(2).map((_, k) => k + 2);
  } else if (folds[op]) {
    // Axes given as an input are copied into the attribute once constant (src/graph/passes/normalize-attrs.ts).
    if (args.node.attrs.axes === undefined && args.node.inputs[1]) throw unsupported(w, 'reduction axes computed at run time are not supported');
    const raw = intsAttr(args.node.attrs, 'axes', [], w);
    // ReduceMean is known to the IR (normalized name); the other reductions keep the file's.
    const noop = intAttr(args.node.attrs, 'noopWithEmptyAxes', intAttr(args.node.attrs, 'noop_with_empty_axes', 0, w), w);
    axes = raw.length ? raw.map((a) => normAxis(a, x.length, w)) : noop ? [] : x.map((_, k) => k);
    if (new Set(axes).size !== axes.length) throw invalid(w, `axes [${raw.join(',')}] repeat an axis`);
    keep = intAttr(args.node.attrs, 'keepdims', 1, w);
  } else throw unsupported(w, `no reduction kernel for '${op}'`);
  const reduced = new Set(axes);
  const keptShape = x.map((d, k) => (reduced.has(k) ? 1 : d));
  const o = outShape(args);
  const expected = keep ? keptShape : x.filter((_, k) => !reduced.has(k));
  if (!sameShape(o, expected)) throw invalid(w, `output [${o.join(',')}] does not match the computed [${expected.join(',')}]`);
  const rShape = axes.slice().sort((p, q) => p - q).map((k) => x[k]);
  const R = size(rShape);
  if (R === 0) throw invalid(w, 'reduction over an empty axis');
  const total = size(o);
  // GlobalAveragePool over 7x7 .. 56x56 maps (squeeze-excite, heads): one workgroup of 64 threads per channel,
  // strided partial sums then a tree reduction, instead of one thread walking the whole map.
  if (op === 'GlobalAveragePool' && R >= 32) return poolRows(total, R, x, args, w);
  const d = flatDispatch(total, args.limits, w);
  // Input coordinate k: the output's for kept axes, the loop's for reduced ones.
  const sortedAxes = axes.slice().sort((p, q) => p - q);
  const inCoords = x.map((_, k) => (reduced.has(k) ? `r${sortedAxes.indexOf(k)}` : `o${k}`));
  const firstCoords = x.map((_, k) => (reduced.has(k) ? '0u' : `o${k}`));
  const f = folds[op === 'GlobalAveragePool' ? 'ReduceMean' : op];
  const wgsl = `
${bindings(['x'])}

fn isNan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  ${coords('i', keptShape, 'o')}
  let first = ${offset(firstCoords, x)};
  var s = ${f.init};
  for (var j = 0u; j < ${u32(R)}; j++) {
    ${coords('j', rShape, 'r')}
    let v = x[${offset(inCoords, x)}];
    s = ${f.step};
  }
  out[i] = ${f.result(f32(R, w))};
}
`;
  return {
    name: op,
    cacheKey: cacheKey('reduce', op, x, axes.join(','), keep, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: [0],
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}

function poolRows(rows: number, R: number, x: readonly number[], args: KernelArgs, w: string): KernelProgram {
  // Large maps (EfficientNet's first squeeze-excite: 32 rows of 112x112) get 256 threads: there are few rows to
  // spread over the GPU, so each row's loads must be many and independent (50 us with 64 threads on the H100).
  const T = R >= 2048 ? Math.min(256, threadCap(args.limits)) : 64;
  const d = layoutWorkgroups(rows, args.limits, w);
  const wgsl = `
${bindings(['x'])}
var<workgroup> part: array<f32, ${T}>;

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let row = wid.x + wid.y * ${u32(d.dispatchX)};
  // Uniform per workgroup: returning here cannot split a barrier.
  if (row >= ${u32(rows)}) { return; }
  // Four independent partial sums: four loads in flight per thread.
  let base = row * ${u32(R)};
  var s4 = vec4<f32>(0.0);
  var j = li;
  for (; j + ${u32(3 * T)} < ${u32(R)}; j += ${u32(4 * T)}) {
    s4 += vec4<f32>(x[base + j], x[base + j + ${u32(T)}], x[base + j + ${u32(2 * T)}], x[base + j + ${u32(3 * T)}]);
  }
  for (; j < ${u32(R)}; j += ${u32(T)}) { s4.x += x[base + j]; }
  part[li] = (s4.x + s4.y) + (s4.z + s4.w);
  workgroupBarrier();
  for (var h = ${u32(T / 2)}; h > 0u; h /= 2u) {
    if (li < h) { part[li] += part[li + h]; }
    workgroupBarrier();
  }
  if (li == 0u) { out[row] = part[0] / ${f32(R, w)}; }
}
`;
  return {
    name: 'GlobalAveragePool',
    cacheKey: cacheKey('globalAveragePoolRows', x, T, 'u4', `dx${d.dispatchX}`),
    wgsl, workgroupSize: [T, 1, 1], dispatch: d.dispatch, inputs: [0], outputs: 1, workgroupStorageBytes: 4 * T,
  };
}
