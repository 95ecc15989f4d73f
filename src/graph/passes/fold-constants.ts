// Constant folding of shape computations. PyTorch exports `x.view(x.size(0), -1)` as
// Shape -> Gather -> Unsqueeze -> Concat -> Reshape; once shapes are static the whole chain is a constant.
// One sweep in topological order: a node whose inputs are all constant (or a Shape of a tensor with a
// known shape) is evaluated and removed; any other node gets its output shapes inferred so that a later
// Shape can fold. Integers are evaluated exactly (int64 stays BigInt64Array in the graph).
import { invalid } from '../../errors.js';
import type { DType, Graph, Node, Tensor } from '../ir.js';
import { isKnownOp, numel } from '../ir.js';
import type { ShapeOptions } from '../shape.js';
import {
  broadcastShapes, castTarget, inferNode, reshapeShape, sliceRanges, squeezeShape, unsqueezeShape,
} from '../shape.js';
import { attrInt, attrInts, cloneGraph, constNumbers, isIntegerDType, makeData, nodeWhere } from '../util.js';

/** Ops that only relabel the data: folded at any size without copying. */
const metadataOps = new Set(['Reshape', 'Squeeze', 'Unsqueeze', 'Identity', 'Flatten']);
const foldableOps = new Set(['Shape', 'Gather', 'Unsqueeze', 'Squeeze', 'Concat', 'Reshape', 'Cast', 'Slice', 'Identity',
  'Flatten', 'Add', 'Sub', 'Mul', 'Div', 'Constant']);
/** Elements computed per folded node at most (shape arithmetic is tiny; weights math is left alone). */
const maxFoldElements = 1 << 16;

export function foldConstants(g0: Graph, opts: ShapeOptions = {}): Graph {
  const g = cloneGraph(g0);
  const kept: Node[] = [];
  for (const n of g.nodes) {
    // Every foldable op has one output; a node listing more (even '') is left to shape inference, which
    // checks it (an extra '' output crashed the probe below, RELIABILITY.md H).
    const values = isKnownOp(n) && foldableOps.has(n.op) && n.outputs.length === 1 ? tryFold(g, n) : null;
    if (values) {
      n.outputs.forEach((y, i) => { if (y) g.tensors.set(y, { ...values[i], name: y }); });
      continue;
    }
    inferNode(g, n, opts);
    kept.push(n);
  }
  g.nodes = kept;
  return g;
}

function tryFold(g: Graph, n: Node): Tensor[] | null {
  const where = nodeWhere(g, n);
  if (n.op === 'Constant') {
    const v = n.attrs.value;
    if (v && typeof v === 'object' && !Array.isArray(v) && 'data' in v && v.data) return [v as Tensor];
    return null;
  }
  if (n.op === 'Shape') {
    const t = g.tensors.get(n.inputs[0]);
    if (!t || t.shapeUnknown) return null;
    const r = t.shape.length;
    const clamp = (a: number) => Math.max(0, Math.min(r, a < 0 ? a + r : a));
    const dims = t.shape.slice(clamp(attrInt(g, n, 'start', 0)), clamp(attrInt(g, n, 'end', r)));
    return [{ name: '', dtype: 'int64', shape: [dims.length], data: makeData('int64', dims) }];
  }
  const ins = n.inputs.map((x) => (x ? g.tensors.get(x) : undefined));
  if (ins.some((t, i) => n.inputs[i] && (!t || t.data === undefined))) return null;
  const x = ins[0]!;
  if (!metadataOps.has(n.op)) {
    if (x.dtype === 'string' || x.dtype === 'float16' || x.dtype === 'bfloat16') return null;
  }
  // Shape inference on the constant operands gives the output shapes (and all the checks).
  const probe = { ...g, tensors: new Map(g.tensors) };
  const copy: Node = { ...n, attrs: n.attrs };
  inferNode(probe, copy);
  const outs = n.outputs.map((y) => probe.tensors.get(y)!);
  if (outs.some((t) => t.shapeUnknown)) return null;
  if (metadataOps.has(n.op)) return outs.map((t) => ({ ...t, data: x.data }));
  if (outs.some((t) => numel(t.shape) > maxFoldElements) || ins.some((t) => t && numel(t.shape) > maxFoldElements)) return null;
  const out = outs[0];
  const vals = (t: Tensor) => constNumbers(t, where);
  let result: number[];
  switch (n.op) {
    case 'Gather': {
      const axis = attrInt(g, n, 'axis', 0);
      const s = x.shape, a = axis < 0 ? axis + s.length : axis;
      if (!isIntegerDType(ins[1]!.dtype) || ins[1]!.dtype === 'bool') throw invalid(where, `indices '${n.inputs[1]}' are ${ins[1]!.dtype}, not int32/int64`);
      const idx = vals(ins[1]!).map((i) => {
        if (!Number.isInteger(i) || i < -s[a] || i >= s[a]) throw invalid(where, `index ${i} is out of range for dimension ${s[a]}`);
        return i < 0 ? i + s[a] : i;
      });
      const outer = numel(s.slice(0, a)), inner = numel(s.slice(a + 1));
      const xv = vals(x);
      result = [];
      for (let o = 0; o < outer; o++) for (const i of idx) for (let k = 0; k < inner; k++) result.push(xv[(o * s[a] + i) * inner + k]);
      break;
    }
    case 'Concat': result = concat(ins.filter((t): t is Tensor => !!t), attrInt(g, n, 'axis', 0), where); break;
    case 'Cast': {
      const to = castTarget(g, n, where);
      if (!isIntegerDType(to) && to !== 'float32' && to !== 'float64') return null;
      result = vals(x).map((v) => castValue(v, to));
      break;
    }
    case 'Slice': {
      const s = x.shape;
      const num = (name: string, i: number) => {
        const a = attrInts(g, n, name);
        if (a) return a;
        const t = n.inputs[i] ? g.tensors.get(n.inputs[i]) : undefined;
        return t ? constNumbers(t, where, true) : undefined;
      };
      const ranges = sliceRanges(s, num('starts', 1)!, num('ends', 2)!, num('axes', 3), num('steps', 4), where);
      const xv = vals(x);
      const strides = s.map((_, i) => numel(s.slice(i + 1)));
      result = [];
      const walk = (axis: number, offset: number) => {
        if (axis === s.length) { result.push(xv[offset]); return; }
        const r = ranges[axis];
        for (let k = 0; k < r.len; k++) walk(axis + 1, offset + (r.start + k * r.step) * strides[axis]);
      };
      if (numel(out.shape) > 0) walk(0, 0);
      break;
    }
    case 'Add': case 'Sub': case 'Mul': case 'Div': {
      const b = ins[1]!;
      const shape = broadcastShapes(x.shape, b.shape, where);
      const av = vals(x), bv = vals(b);
      const ai = broadcastIndex(x.shape, shape), bi = broadcastIndex(b.shape, shape);
      const integer = isIntegerDType(x.dtype);
      result = new Array(numel(shape));
      for (let i = 0; i < result.length; i++) {
        const p = av[ai(i)], q = bv[bi(i)];
        let v: number;
        switch (n.op) {
          case 'Add': v = p + q; break;
          case 'Sub': v = p - q; break;
          case 'Mul': v = p * q; break;
          default:
            if (integer && q === 0) throw invalid(where, 'integer division by zero');
            v = integer ? Math.trunc(p / q) : p / q;
        }
        if (integer && !Number.isSafeInteger(v)) throw invalid(where, `integer result ${v} overflows`);
        result[i] = v;
      }
      break;
    }
    default: return null;
  }
  checkFolded(out, result, where);
  return [{ name: out.name, dtype: out.dtype, shape: out.shape, data: makeData(out.dtype, result) }];
}

/** An integer tensor cannot hold NaN, Inf or an unsafe integer (BigInt() would throw on them): a fold
 *  that produces one came from invalid input (fuzz crash D, RELIABILITY.md). */
function checkFolded(out: Tensor, result: readonly number[], where: string): void {
  if (!isIntegerDType(out.dtype)) return;
  if (result.length !== numel(out.shape)) throw invalid(where, `folded ${result.length} values for an output of shape [${out.shape.join(', ')}]`);
  for (const v of result) {
    if (!Number.isSafeInteger(v)) throw invalid(where, `folding gives ${v} for ${out.dtype} output '${out.name}'`);
  }
}

function concat(parts: Tensor[], axis0: number, where: string): number[] {
  const s = parts[0].shape;
  const axis = axis0 < 0 ? axis0 + s.length : axis0;
  const outer = numel(s.slice(0, axis));
  const result: number[] = [];
  const vs = parts.map((p) => constNumbers(p, where));
  for (let o = 0; o < outer; o++) {
    parts.forEach((p, j) => {
      const chunk = numel(p.shape.slice(axis));
      for (let k = 0; k < chunk; k++) result.push(vs[j][o * chunk + k]);
    });
  }
  return result;
}

/** Maps a flat index of the broadcast output to a flat index of an operand of shape `s`. */
function broadcastIndex(s: readonly number[], out: readonly number[]): (i: number) => number {
  const r = out.length, off = r - s.length;
  const strides = s.map((_, i) => numel(s.slice(i + 1)));
  return (i: number) => {
    let idx = 0;
    for (let a = r - 1, rem = i; a >= 0; a--) {
      const d = out[a];
      const c = rem % d;
      rem = Math.floor(rem / d);
      const sa = a - off;
      if (sa >= 0 && s[sa] !== 1) idx += c * strides[sa];
    }
    return idx;
  };
}

function castValue(v: number, to: DType): number {
  switch (to) {
    case 'float32': return Math.fround(v);
    case 'float64': return v;
    case 'bool': return v !== 0 ? 1 : 0;
    default:
      if (isIntegerDType(to)) return Math.trunc(v);
      throw new Error(`cannot fold a cast to ${to}`);
  }
}
