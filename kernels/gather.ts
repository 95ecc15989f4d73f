// Gather with constant indices (attribute `indices`, copied from the constant operand by normalize-attrs.ts) on a
// tensor computed at run time: x viewed as [P, D, Q] around the gathered axis, the output as [P, K, Q]; output
// element (p, k, q) reads x (p, indices[k], q). Negative indices count from the end, as in ONNX. Indices computed at
// run time are not supported.

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid, unsupported } from '../src/errors.js';
import { bindings, cacheKey, flatDispatch, inShape, normAxis, outShape, sameShape, size, u32, where } from './shader.js';

/** Baked into the WGSL as a constant array: beyond this many, a run-time indices buffer would be the better kernel. */
const maxIndices = 4096;

export function gather(args: KernelArgs): KernelProgram {
  const w = where(args);
  const ind = args.node.attrs.indices;
  if (!Array.isArray(ind)) throw unsupported(w, 'Gather with indices computed at run time is not supported');
  const x = inShape(args, 0, 'data');
  const axis = normAxis(typeof args.node.attrs.axis === 'number' ? args.node.attrs.axis : 0, x.length, w);
  const D = x[axis], P = size(x.slice(0, axis)), Q = size(x.slice(axis + 1));
  const k = (ind as number[]).map((v) => {
    if (!Number.isInteger(v) || v < -D || v >= D) throw invalid(w, `index ${v} is out of range for axis ${axis} of size ${D}`);
    return v < 0 ? v + D : v;
  });
  if (k.length === 0 || k.length > maxIndices) throw unsupported(w, `Gather of ${k.length} constant indices is not supported (1 to ${maxIndices})`);
  const idxShape = args.inputShapes[1] ?? [k.length];
  const o = outShape(args);
  const want = [...x.slice(0, axis), ...idxShape, ...x.slice(axis + 1)];
  if (!sameShape(o, want) || size(idxShape) !== k.length) throw invalid(w, `output [${o.join(',')}] does not match the computed [${want.join(',')}]`);
  const total = size(o);
  const d = flatDispatch(total, args.limits, w);
  const K = k.length;
  const wgsl = `
${bindings(['x'])}
const ind = array<u32, ${K}>(${k.map((v) => u32(v)).join(', ')});

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  let q = i % ${u32(Q)};
  let kk = (i / ${u32(Q)}) % ${u32(K)};
  let p = i / ${u32(Q * K)};
  out[i] = x[(p * ${u32(D)} + ind[kk]) * ${u32(Q)} + q];
}
`;
  return {
    name: 'Gather',
    cacheKey: cacheKey('gather', x, axis, k, o, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: [0],
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}
