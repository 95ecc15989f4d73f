// BatchNormalization (inference) standing alone, where it could not be folded into a preceding Conv:
// y = (x - mean) / sqrt(var + epsilon) * scale + B per channel (axis 1). One invocation per element.

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid } from '../src/errors.js';
import {
  bindings, cacheKey, f32, flatDispatch, inShape, numAttr, outShape, sameShape, size, u32, where,
} from './shader.js';

export function batchNorm(args: KernelArgs): KernelProgram {
  const w = where(args);
  const x = inShape(args, 0, 'input');
  if (x.length < 2) throw invalid(w, `input must have rank >= 2, got [${x.join(',')}]`);
  const C = x[1];
  for (const [k, what] of [[1, 'scale'], [2, 'B'], [3, 'mean'], [4, 'var']] as const) {
    if (!sameShape(inShape(args, k, what), [C])) throw invalid(w, `${what} '${args.node.inputs[k]}' must have shape [${C}]`);
  }
  const o = outShape(args);
  if (!sameShape(o, x)) throw invalid(w, `output [${o.join(',')}] differs from the input [${x.join(',')}]`);
  const eps = numAttr(args.node.attrs, 'epsilon', 1e-5, w);
  const inner = size(x.slice(2));
  const d = flatDispatch(size(x), args.limits, w);
  const wgsl = `
${bindings(['x', 'scale', 'bias', 'mean', 'variance'])}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  let c = (i / ${u32(inner)}) % ${u32(C)};
  out[i] = (x[i] - mean[c]) / sqrt(variance[c] + ${f32(eps, w)}) * scale[c] + bias[c];
}
`;
  return {
    name: 'BatchNormalization',
    cacheKey: cacheKey('batchNorm', x, eps, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: [0, 1, 2, 3, 4],
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}
