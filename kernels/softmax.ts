// Softmax along one axis (opset 13 semantics; normalized attribute `axis`): one invocation per row
// (outer x inner positions), three passes over the axis: max, sum of exp(v - max), normalize.

import type { KernelProgram } from './program.js';
import { invalid } from '../src/errors.js';
import {
  type KernelArgs, bindings, cacheKey, flatDispatch, inShape, intAttr, normAxis, outShape, sameShape, size, u32, where,
} from './shader.js';

export function softmax(args: KernelArgs): KernelProgram {
  const w = where(args);
  const x = inShape(args, 0, 'input');
  const o = outShape(args);
  if (!sameShape(o, x)) throw invalid(w, `output [${o.join(',')}] differs from the input [${x.join(',')}]`);
  const axis = normAxis(intAttr(args.node.attrs, 'axis', -1, w), x.length, w);
  const D = x[axis], inner = size(x.slice(axis + 1)), rows = size(x) / Math.max(D, 1);
  const d = flatDispatch(rows, args.limits, w);
  const wgsl = `
${bindings(['x'])}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  let base = (i / ${u32(inner)}) * ${u32(D * inner)} + i % ${u32(inner)};
  var m = -3.402823e38;
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
    uniforms: [],
    workgroupStorageBytes: 0,
  };
}
