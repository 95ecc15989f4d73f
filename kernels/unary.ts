// Standalone element-wise ops: the activations (Relu, Clip, HardSwish, HardSigmoid, Sigmoid, SiLU, LeakyRelu,
// Tanh; the same snippets as the convolution epilogues) and Abs. One invocation per element.

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid, unsupported } from '../src/errors.js';
import {
  activationFn, activationOps, bindings, cacheKey, flatDispatch, inShape, outShape, sameShape, size, standaloneParams,
  where,
} from './shader.js';

export const unaryOps: readonly string[] = [...activationOps, 'Abs'];

export function unary(args: KernelArgs): KernelProgram {
  const w = where(args);
  const op = args.node.op;
  if (!unaryOps.includes(op)) throw unsupported(w, `no element-wise kernel for '${op}'`);
  const x = inShape(args, 0, 'input');
  const o = outShape(args);
  if (!sameShape(x, o)) throw invalid(w, `output [${o.join(',')}] differs from the input [${x.join(',')}]`);
  const params = standaloneParams(op, args.node.attrs, w);
  const fn = op === 'Abs' ? 'fn act(v: f32) -> f32 { return abs(v); }' : activationFn('act', op, params, w);
  const total = size(o);
  const d = flatDispatch(total, args.limits, w);
  const wgsl = `
${bindings(['x'])}
${fn}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  out[i] = act(x[i]);
}
`;
  return {
    name: op,
    cacheKey: cacheKey('unary', op, params.join(','), total, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: [0],
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}
