// Standalone element-wise ops: the activations (Relu, Clip, HardSwish, HardSigmoid, Sigmoid, SiLU, LeakyRelu,
// Tanh; the same snippets as the convolution epilogues), Abs, the math ops Neg, Exp, Log, Sqrt, Reciprocal, Floor,
// Ceil, and on bool/integer tensors Not and Cast. One invocation per element.
//
// Bool and integer tensors are stored as float32 values (bool: 0 or 1, integers exact up to 2^24), as every
// buffer of the float executor; so Cast to a float type copies, to an integer type truncates toward zero (as
// C++ and onnxruntime do), to bool tests for non-zero (NaN is true).

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid, unsupported } from '../src/errors.js';
import {
  activationFn, activationOps, bindings, cacheKey, flatDispatch, inShape, outShape, sameShape, size, standaloneParams,
  where,
} from './shader.js';

/** The math and bool ops: WGSL expressions of v. */
const mathFns: Record<string, string> = {
  Abs: 'abs(v)',
  Neg: '-v',
  // WGSL's exp and log are accurate to 3 + 2|x| ULP and 3 ULP (relative) outside [0.5, 2], onnxruntime's to ~1 ULP.
  Exp: 'exp(v)',
  Log: 'log(v)',
  Sqrt: 'sqrt(v)',
  Reciprocal: '1.0 / v',
  Floor: 'floor(v)',
  Ceil: 'ceil(v)',
  Not: 'select(0.0, 1.0, v == 0.0)',
};

const intTypes = new Set(['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64']);

/** The WGSL expression of Cast to `to` on a value stored as float32. */
function castExpr(to: unknown, w: string): string {
  if (to === 'float32' || to === 'float64') return 'v';
  if (to === 'bool') return 'select(0.0, 1.0, v != 0.0)';
  if (typeof to === 'string' && intTypes.has(to)) return 'trunc(v)';
  throw unsupported(w, `Cast to ${String(to)} is not supported by the float32 kernels`);
}

export const unaryOps: readonly string[] = [...activationOps, ...Object.keys(mathFns), 'Cast'];

export function unary(args: KernelArgs): KernelProgram {
  const w = where(args);
  const op = args.node.op;
  if (!unaryOps.includes(op)) throw unsupported(w, `no element-wise kernel for '${op}'`);
  const x = inShape(args, 0, 'input');
  const o = outShape(args);
  if (!sameShape(x, o)) throw invalid(w, `output [${o.join(',')}] differs from the input [${x.join(',')}]`);
  const params = standaloneParams(op, args.node.attrs, w);
  const math = op === 'Cast' ? castExpr(args.node.attrs.to, w) : mathFns[op];
  const fn = math !== undefined ? `fn act(v: f32) -> f32 { return ${math}; }` : activationFn('act', op, params, w);
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
    cacheKey: cacheKey('unary', op, math ?? params.join(','), total, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: [0],
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}
