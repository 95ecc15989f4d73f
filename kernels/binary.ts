// Element-wise binary ops with ONNX (numpy) multidirectional broadcasting: Add, Sub, Mul, Div, and PRelu
// (slope broadcast to x). One invocation per output element; each input's offset drops the dimensions it
// broadcasts, so a [N,C,1,1] squeeze-excite scale reads one value per channel.

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid, unsupported } from '../src/errors.js';
import {
  bindings, cacheKey, coords, flatDispatch, inShape, nodeEpilogue, offset, outShape, sameShape, size, where,
} from './shader.js';

const exprs: Record<string, string> = {
  Add: 'a + b',
  Sub: 'a - b',
  Mul: 'a * b',
  Div: 'a / b',
  PRelu: 'select(a * b, a, a >= 0.0)',
};

/** The broadcast shape of two shapes (numpy rules), or undefined when they do not broadcast. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] | undefined {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let k = 0; k < r; k++) {
    const da = a[a.length - r + k] ?? 1, db = b[b.length - r + k] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return undefined;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** The offset in `inp` (right-aligned to the output's rank) of output coordinates named `${prefix}k`. */
function broadcastOffset(inp: readonly number[], out: readonly number[], prefix: string): string {
  const lead = out.length - inp.length;
  return offset(inp.map((_, k) => `${prefix}${k + lead}`), inp);
}

export function binary(args: KernelArgs): KernelProgram {
  const w = where(args);
  const op = args.node.op;
  const e = exprs[op];
  if (!e) throw unsupported(w, `no binary kernel for '${op}'`);
  const a = inShape(args, 0, 'A'), b = inShape(args, 1, 'B');
  const o = outShape(args);
  const bc = broadcastShapes(a, b);
  if (!bc || !sameShape(bc, o) || (op === 'PRelu' && !sameShape(a, o))) {
    throw invalid(w, `inputs [${a.join(',')}] and [${b.join(',')}] do not broadcast to the output [${o.join(',')}]`);
  }
  const act = nodeEpilogue(args.node.attrs, w);
  const total = size(o);
  const d = flatDispatch(total, args.limits, w);
  const full = (s: number[]) => sameShape(s, o);
  const wgsl = `
${bindings(['A', 'B'])}
${act.fn}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  ${full(a) && full(b) ? '' : coords('i', o, 'o')}
  let a = A[${full(a) ? 'i' : broadcastOffset(a, o, 'o')}];
  let b = B[${full(b) ? 'i' : broadcastOffset(b, o, 'o')}];
  out[i] = act(${e});
}
`;
  return {
    name: op,
    cacheKey: cacheKey('binary', op, a, b, o, act.key, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: [0, 1],
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}
