// Element-wise ops over any number of inputs with ONNX (numpy) multidirectional broadcasting: Max, Min, Sum,
// Mean (one or more inputs) and Where (condition, X, Y; the condition a bool stored as float32 0 or 1, see
// unary.ts). One invocation per output element; each input's offset drops the dimensions it broadcasts.

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid, unsupported } from '../src/errors.js';
import { bindings, cacheKey, coords, f32, flatDispatch, inShape, offset, outShape, sameShape, size, where } from './shader.js';
import { broadcastShapes } from './binary.js';

export const variadicOps: readonly string[] = ['Max', 'Min', 'Sum', 'Mean', 'Where'];

/** The WGSL expression combining the loaded values v0..v{n-1}. */
function combine(op: string, n: number, w: string): string {
  const v = [...Array(n).keys()].map((k) => `v${k}`);
  switch (op) {
    // NaN propagates as in onnxruntime (std::max/min keep a NaN first operand; WGSL's max/min may drop it).
    case 'Max': return v.slice(1).reduce((a, b) => `maxNan(${a}, ${b})`, v[0]);
    case 'Min': return v.slice(1).reduce((a, b) => `minNan(${a}, ${b})`, v[0]);
    case 'Sum': return v.join(' + ');
    case 'Mean': return `(${v.join(' + ')}) / ${f32(n, w)}`;
    case 'Where': return 'select(v2, v1, v0 != 0.0)';
    default: throw unsupported(w, `no element-wise kernel for '${op}'`);
  }
}

const nanFns = `
fn isNan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn maxNan(a: f32, b: f32) -> f32 { return select(select(max(a, b), b, isNan(b)), a, isNan(a)); }
fn minNan(a: f32, b: f32) -> f32 { return select(select(min(a, b), b, isNan(b)), a, isNan(a)); }`;

export function variadic(args: KernelArgs): KernelProgram {
  const w = where(args);
  const op = args.node.op;
  const n = args.node.inputs.length;
  if (n === 0) throw invalid(w, 'has no inputs');
  if (op === 'Where' && n !== 3) throw invalid(w, `takes 3 inputs (condition, X, Y), got ${n}`);
  const shapes = args.node.inputs.map((_, k) => inShape(args, k, `input ${k}`));
  const o = outShape(args);
  let bc: number[] | undefined = shapes[0];
  for (const s of shapes.slice(1)) bc = bc && broadcastShapes(bc, s);
  if (!bc || !sameShape(bc, o)) throw invalid(w, `inputs ${shapes.map((s) => `[${s.join(',')}]`).join(', ')} do not broadcast to the output [${o.join(',')}]`);
  const expr = combine(op, n, w);
  const total = size(o);
  const d = flatDispatch(total, args.limits, w);
  const names = shapes.map((_, k) => `X${k}`);
  const full = (s: number[]) => sameShape(s, o);
  const loads = shapes.map((s, k) => {
    const lead = o.length - s.length;
    const at = full(s) ? 'i' : offset(s.map((_, j) => `o${j + lead}`), s);
    return `let v${k} = X${k}[${at}];`;
  });
  const wgsl = `
${bindings(names)}
${op === 'Max' || op === 'Min' ? nanFns : ''}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  ${shapes.every(full) ? '' : coords('i', o, 'o')}
  ${loads.join('\n  ')}
  out[i] = ${expr};
}
`;
  return {
    name: op,
    cacheKey: cacheKey('variadic', op, ...shapes, o, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: shapes.map((_, k) => k),
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}
