// Split: one copy program per output, each reading its slab of the input along the axis.

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid } from '../src/errors.js';
import { bindings, cacheKey, flatDispatch, inShape, intAttr, normAxis, size, u32, where } from './shader.js';

export function split(args: KernelArgs): KernelProgram[] {
  const w = where(args);
  const x = inShape(args, 0, 'input');
  const axis = normAxis(intAttr(args.node.attrs, 'axis', 0, w), x.length, w);
  const rest = size(x.slice(axis + 1));
  const programs: KernelProgram[] = [];
  let at = 0;
  args.outputShapes.forEach((s, k) => {
    if (s.length !== x.length || s.some((dim, j) => j !== axis && dim !== x[j])) {
      throw invalid(w, `output ${k} [${s.join(',')}] does not fit the input [${x.join(',')}] along axis ${axis}`);
    }
    const total = size(s);
    if (total > 0) {
      const inner = s[axis] * rest;
      const d = flatDispatch(total, args.limits, w);
      const wgsl = `
${bindings(['x'])}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  let q = i / ${u32(inner)};
  let j = i % ${u32(inner)};
  out[i] = x[q * ${u32(x[axis] * rest)} + ${u32(at * rest)} + j];
}
`;
      programs.push({
        name: `Split(part ${k})`,
        cacheKey: cacheKey('splitPart', total, inner, x[axis] * rest, at * rest, d.key),
        wgsl,
        workgroupSize: d.workgroupSize,
        dispatch: d.dispatch,
        inputs: [0],
        outputs: 1,
        outputIndices: [k],
        workgroupStorageBytes: 0,
      });
    }
    at += s[axis];
  });
  if (at > x[axis]) throw invalid(w, `outputs add up to ${at} along axis ${axis}, the input has ${x[axis]}`);
  return programs;
}
