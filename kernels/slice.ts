// Slice (starts, ends, axes, steps as normalized attributes; negative steps included): one invocation per
// output element, input coordinate = start + output coordinate * step on the sliced axes.

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid, unsupported } from '../src/errors.js';
import {
  bindings, cacheKey, coords, flatDispatch, i32, inShape, intsAttr, normAxis, outShape, sameShape, size, stridesOf,
  where,
} from './shader.js';

/** Per axis of `x`: first input index and step (ONNX clamping rules); the resulting output shape. */
export function sliceRanges(x: readonly number[], starts: number[], ends: number[], axes: number[], steps: number[], w: string):
  { start: number[]; step: number[]; shape: number[] } {
  if (starts.length !== ends.length || axes.length !== starts.length || steps.length !== starts.length) {
    throw invalid(w, 'starts, ends, axes and steps must have the same length');
  }
  const start = x.map(() => 0), step = x.map(() => 1), shape = [...x];
  const seen = new Set<number>();
  axes.forEach((a0, k) => {
    const a = normAxis(a0, x.length, w);
    if (seen.has(a)) throw invalid(w, `axis ${a0} repeats`);
    seen.add(a);
    const d = x[a], st = steps[k];
    if (st === 0 || !Number.isInteger(st)) throw invalid(w, `step ${st} must be a non-zero integer`);
    let s = starts[k] < 0 ? starts[k] + d : starts[k];
    let e = ends[k] < 0 ? ends[k] + d : ends[k];
    if (st > 0) { s = Math.min(Math.max(s, 0), d); e = Math.min(Math.max(e, 0), d); }
    else { s = Math.min(Math.max(s, -1), d - 1); e = Math.min(Math.max(e, -1), d - 1); }
    start[a] = s;
    step[a] = st;
    shape[a] = Math.max(0, Math.ceil((e - s) / st));
  });
  return { start, step, shape };
}

export function slice(args: KernelArgs): KernelProgram {
  const w = where(args);
  if (args.node.inputs.length > 1 && args.node.inputs.slice(1).some((x) => x)) {
    throw unsupported(w, 'starts/ends/axes/steps computed at run time are not supported');
  }
  const a = args.node.attrs;
  const x = inShape(args, 0, 'input');
  const starts = intsAttr(a, 'starts', undefined, w);
  const r = sliceRanges(x, starts, intsAttr(a, 'ends', undefined, w), intsAttr(a, 'axes', starts.map((_, k) => k), w),
    intsAttr(a, 'steps', starts.map(() => 1), w), w);
  const o = outShape(args);
  if (!sameShape(o, r.shape)) throw invalid(w, `output [${o.join(',')}] does not match the computed [${r.shape.join(',')}]`);
  const total = size(o);
  const d = flatDispatch(total, args.limits, w);
  const st = stridesOf(x);
  // Signed arithmetic: negative steps walk backwards; the result is within the input by construction.
  const terms = x.map((_, k) => `(${i32(r.start[k])} + i32(o${k}) * ${i32(r.step[k])}) * ${i32(st[k])}`);
  const wgsl = `
${bindings(['x'])}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  ${coords('i', o, 'o')}
  let j = ${terms.length ? terms.join(' + ') : '0i'};
  if (j >= 0i && j < ${i32(size(x))}) { out[i] = x[u32(j)]; }
}
`;
  return {
    name: 'Slice',
    cacheKey: cacheKey('slice', x, r.start, r.step, o, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: [0],
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}
