// Concat as one copy program per input, each writing its slab of the output at its offset along the axis:
// any number of inputs without running into maxStorageBuffersPerShaderStage, and no per-element search for
// the source. One invocation per element of that input.

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid } from '../src/errors.js';
import { bindings, cacheKey, flatDispatch, inShape, intAttr, normAxis, outShape, size, u32, where } from './shader.js';

export function concat(args: KernelArgs): KernelProgram[] {
  const w = where(args);
  const o = outShape(args);
  const axis = normAxis(intAttr(args.node.attrs, 'axis', 0, w), o.length, w);
  const rest = size(o.slice(axis + 1));
  const outer = size(o.slice(0, axis));
  const programs: KernelProgram[] = [];
  let at = 0;
  args.node.inputs.forEach((name, k) => {
    if (!name) return;
    const s = inShape(args, k, `input ${k}`, o.length);
    if (s.some((dim, j) => j !== axis && dim !== o[j])) throw invalid(w, `input '${name}' [${s.join(',')}] does not fit the output [${o.join(',')}] along axis ${axis}`);
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
  out[q * ${u32(o[axis] * rest)} + ${u32(at * rest)} + j] = x[i];
}
`;
      programs.push({
        name: `Concat(part ${k})`,
        cacheKey: cacheKey('concatPart', outer, inner, o[axis] * rest, at * rest, d.key),
        wgsl,
        workgroupSize: d.workgroupSize,
        dispatch: d.dispatch,
        inputs: [k],
        outputs: 1,
        workgroupStorageBytes: 0,
      });
    }
    at += s[axis];
  });
  if (at !== o[axis]) throw invalid(w, `inputs add up to ${at} along axis ${axis}, the output has ${o[axis]}`);
  return programs;
}
