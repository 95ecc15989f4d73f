// Softmax along one axis (opset 13 semantics; normalized attribute `axis`), three passes over the axis: max,
// sum of exp(v - max), normalize. Short rows: one invocation per row (outer x inner positions). Rows of 64 or
// more: one workgroup per row, the threads striding over the axis with tree reductions in workgroup memory
// (a classifier's 1x1000 softmax run by one thread took 0.5 ms on the H100).

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid } from '../src/errors.js';
import {
  bindings, cacheKey, flatDispatch, inShape, intAttr, layoutWorkgroups, normAxis, outShape, sameShape, size, threadCap,
  u32, where,
} from './shader.js';

export function softmax(args: KernelArgs): KernelProgram {
  const w = where(args);
  const x = inShape(args, 0, 'input');
  const o = outShape(args);
  if (!sameShape(o, x)) throw invalid(w, `output [${o.join(',')}] differs from the input [${x.join(',')}]`);
  const axis = normAxis(intAttr(args.node.attrs, 'axis', -1, w), x.length, w);
  const D = x[axis], inner = size(x.slice(axis + 1)), rows = size(x) / Math.max(D, 1);
  if (D >= 64) return softmaxRowPerWorkgroup(args, D, inner, rows);
  const d = flatDispatch(rows, args.limits, w);
  const wgsl = `
${bindings(['x'])}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  let base = (i / ${u32(inner)}) * ${u32(D * inner)} + i % ${u32(inner)};
  var m = -0x1.fffffep+127f;
  for (var k = 0u; k < ${u32(D)}; k++) { m = max(m, x[base + k * ${u32(inner)}]); }
  var s = 0.0;
  for (var k = 0u; k < ${u32(D)}; k++) { s += exp(x[base + k * ${u32(inner)}] - m); }
  for (var k = 0u; k < ${u32(D)}; k++) {
    let j = base + k * ${u32(inner)};
    out[j] = exp(x[j] - m) / s;
  }
}
`;
  return {
    name: 'Softmax',
    cacheKey: cacheKey('softmax', rows, D, inner, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: [0],
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}

function softmaxRowPerWorkgroup(args: KernelArgs, D: number, inner: number, rows: number): KernelProgram {
  const w = where(args);
  let T = 1;
  while (T * 2 <= Math.min(threadCap(args.limits), D)) T *= 2;
  const d = layoutWorkgroups(rows, args.limits, w);
  const reduce = (op: string) => `
  red[li] = v;
  workgroupBarrier();
  for (var s = ${u32(T / 2)}; s > 0u; s >>= 1u) {
    if (li < s) { red[li] = ${op}; }
    workgroupBarrier();
  }`;
  const wgsl = `
${bindings(['x'])}
var<workgroup> red: array<f32, ${T}>;

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  // Uniform per workgroup: returning here cannot split a barrier.
  let row = wid.x + wid.y * ${u32(d.dispatchX)};
  if (row >= ${u32(rows)}) { return; }
  let base = (row / ${u32(inner)}) * ${u32(D * inner)} + row % ${u32(inner)};
  var v = -0x1.fffffep+127f;
  for (var k = li; k < ${u32(D)}; k += ${u32(T)}) { v = max(v, x[base + k * ${u32(inner)}]); }
  ${reduce('max(red[li], red[li + s])')}
  let m = red[0];
  workgroupBarrier();
  v = 0.0;
  for (var k = li; k < ${u32(D)}; k += ${u32(T)}) { v += exp(x[base + k * ${u32(inner)}] - m); }
  ${reduce('red[li] + red[li + s]')}
  let total = red[0];
  for (var k = li; k < ${u32(D)}; k += ${u32(T)}) {
    let j = base + k * ${u32(inner)};
    out[j] = exp(x[j] - m) / total;
  }
}
`;
  return {
    name: 'Softmax(row per workgroup)',
    cacheKey: cacheKey('softmax-wg', rows, D, inner, T, d.dispatchX),
    wgsl,
    workgroupSize: [T, 1, 1],
    dispatch: d.dispatch,
    inputs: [0],
    outputs: 1,
    workgroupStorageBytes: 4 * T,
  };
}
