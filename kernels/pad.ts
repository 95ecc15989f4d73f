// Pad (modes constant, reflect, edge; pads [x1_begin, ..., x1_end, ...], negative pads crop): one invocation
// per output element mapping its coordinates back into the input.

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid, unsupported } from '../src/errors.js';
import {
  bindings, cacheKey, coords, f32, flatDispatch, i32, inShape, intsAttr, numAttr, outShape, sameShape, size, stridesOf,
  strAttr, where,
} from './shader.js';

export function pad(args: KernelArgs): KernelProgram {
  const w = where(args);
  if (args.node.inputs.length > 1 && args.node.inputs.slice(1).some((x) => x)) {
    throw unsupported(w, 'pads or value computed at run time are not supported');
  }
  const a = args.node.attrs;
  const x = inShape(args, 0, 'input');
  const pads = intsAttr(a, 'pads', undefined, w, 2 * x.length);
  const mode = strAttr(a, 'mode', 'constant', w);
  const value = numAttr(a, 'value', 0, w);
  if (!['constant', 'reflect', 'edge'].includes(mode)) throw unsupported(w, `pad mode '${mode}'`);
  const r = x.length;
  const expected = x.map((d, k) => d + pads[k] + pads[k + r]);
  const o = outShape(args);
  if (!sameShape(o, expected)) throw invalid(w, `output [${o.join(',')}] does not match the computed [${expected.join(',')}]`);
  if (mode !== 'constant' && x.some((d, k) => d === 0 && o[k] > 0)) throw invalid(w, `mode ${mode} needs a non-empty input`);
  if (mode === 'reflect' && x.some((d, k) => pads[k] >= d || pads[k + r] >= d)) {
    throw invalid(w, `reflect pads [${pads.join(',')}] must be smaller than the input [${x.join(',')}]`);
  }
  const total = size(o);
  const d = flatDispatch(total, args.limits, w);
  const st = stridesOf(x);
  const lines = x.map((dim, k) => {
    const c = `let c${k} = i32(o${k}) - ${i32(pads[k])};`;
    if (mode === 'constant') return `${c}\n  inside = inside && c${k} >= 0i && c${k} < ${i32(dim)};`;
    if (mode === 'edge') return `let c${k}e = clamp(i32(o${k}) - ${i32(pads[k])}, 0i, ${i32(dim - 1)});`;
    // reflect: -1 -> 1, dim -> dim - 2 (pads < dim, so one reflection is enough).
    return `var c${k}r = i32(o${k}) - ${i32(pads[k])};\n  if (c${k}r < 0i) { c${k}r = -c${k}r; }\n  if (c${k}r >= ${i32(dim)}) { c${k}r = ${i32(2 * dim - 2)} - c${k}r; }\n  c${k}r = clamp(c${k}r, 0i, ${i32(Math.max(dim - 1, 0))});`;
  });
  const suffix = mode === 'constant' ? '' : mode === 'edge' ? 'e' : 'r';
  const off = x.map((_, k) => `c${k}${suffix} * ${i32(st[k])}`).join(' + ') || '0i';
  const wgsl = `
${bindings(['x'])}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  ${coords('i', o, 'o')}
  var inside = true;
  ${lines.join('\n  ')}
  var v = ${mode === 'constant' ? f32(value, w) : '0.0'};
  let j = ${off};
  if (inside && j >= 0i && j < ${i32(size(x))}) { v = x[u32(j)]; }
  out[i] = v;
}
`;
  return {
    name: `Pad(${mode})`,
    cacheKey: cacheKey('pad', x, pads, mode, value, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: [0],
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}
