// Transpose (channel shuffle included): one invocation per output element; output coordinate k is input
// coordinate perm[k].

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid } from '../src/errors.js';
import {
  bindings, cacheKey, coords, flatDispatch, inShape, intsAttr, offset, outShape, sameShape, size, where,
} from './shader.js';

export function transpose(args: KernelArgs): KernelProgram {
  const w = where(args);
  const x = inShape(args, 0, 'input');
  const perm = intsAttr(args.node.attrs, 'perm', x.map((_, k) => x.length - 1 - k), w);
  if (perm.length !== x.length || [...perm].sort((p, q) => p - q).some((p, k) => p !== k)) {
    throw invalid(w, `perm [${perm.join(',')}] is not a permutation of ${x.length} axes`);
  }
  const o = outShape(args);
  const expected = perm.map((p) => x[p]);
  if (!sameShape(o, expected)) throw invalid(w, `output [${o.join(',')}] does not match the computed [${expected.join(',')}]`);
  const total = size(o);
  const d = flatDispatch(total, args.limits, w);
  const inCoords = x.map((_, j) => `o${perm.indexOf(j)}`);
  const wgsl = `
${bindings(['x'])}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  ${coords('i', o, 'o')}
  out[i] = x[${offset(inCoords, x)}];
}
`;
  return {
    name: 'Transpose',
    cacheKey: cacheKey('transpose', x, perm, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: [0],
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}
