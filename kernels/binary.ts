// Element-wise binary ops with ONNX (numpy) multidirectional broadcasting: Add, Sub, Mul, Div, Pow, PRelu
// (slope broadcast to x), the comparisons Less, Greater, LessOrEqual, GreaterOrEqual, Equal and the bool And, Or,
// Xor. One invocation per output element; each input's offset drops the dimensions it broadcasts, so a [N,C,1,1]
// squeeze-excite scale reads one value per channel. Bool results are stored as float32 0 or 1 (see unary.ts).

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
  Pow: 'powf(a, b)',
  Less: 'select(0.0, 1.0, a < b)',
  Greater: 'select(0.0, 1.0, a > b)',
  LessOrEqual: 'select(0.0, 1.0, a <= b)',
  GreaterOrEqual: 'select(0.0, 1.0, a >= b)',
  Equal: 'select(0.0, 1.0, a == b)',
  And: 'select(0.0, 1.0, a != 0.0 && b != 0.0)',
  Or: 'select(0.0, 1.0, a != 0.0 || b != 0.0)',
  Xor: 'select(0.0, 1.0, (a != 0.0) != (b != 0.0))',
};

export const binaryOps: readonly string[] = Object.keys(exprs);

// C's pow, which WGSL's (exp2(b * log2(a)), undefined for a < 0) is not: a negative base with an integer exponent
// (LayerNorm's (x - mean)^2), 0^b, and small integer exponents exactly.
const powFn = `
fn powf(a: f32, b: f32) -> f32 {
  if (b == 0.0) { return 1.0; }
  if (b == 1.0) { return a; }
  if (b == 2.0) { return a * a; }
  if (b == 3.0) { return a * a * a; }
  if (b == 0.5 && a >= 0.0) { return sqrt(a); }
  // NaN and infinity from the input's bits: WGSL has no literal for them.
  let nan = bitcast<f32>((bitcast<u32>(a) & 0u) | 0x7fc00000u);
  let inf = bitcast<f32>((bitcast<u32>(a) & 0u) | 0x7f800000u);
  let odd = fract(b) == 0.0 && fract(b * 0.5) != 0.0;
  if (a == 0.0) { let z = select(inf, 0.0, b > 0.0); return select(z, -z, odd && (bitcast<u32>(a) >> 31u) == 1u); }
  let r = pow(abs(a), b);
  if (a > 0.0) { return r; }
  if (fract(b) != 0.0) { return nan; }
  return select(r, -r, odd);
}`;

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
${op === 'Pow' ? powFn : ''}

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
