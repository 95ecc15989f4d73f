// Constant folding: every node whose inputs are all constants (or a Shape or Size of a tensor with a known shape)
// is evaluated on the host and removed, its outputs becoming constants. PyTorch exports `x.view(x.size(0), -1)`
// as Shape -> Gather -> Unsqueeze -> Concat -> Reshape; TF-exported ONNX computes pads from Split/Concat of
// initializers and fills them with ConstantOfShape; MediaPipe files cast float16 weights to float32. Once
// shapes are static all of these are constants. One sweep in topological order; any node that does not fold
// gets its output shapes inferred so that a later Shape can fold. Integers are evaluated exactly (int64 stays
// BigInt64Array in the graph). Ops without a host evaluation here are left to the executor as they are.
import { invalid } from '../../errors.js';
import type { DType, Graph, Node, Tensor } from '../ir.js';
import { isKnownOp, numel } from '../ir.js';
import type { ShapeOptions } from '../shape.js';
import {
  broadcastShapes, castTarget, inferNode, reshapeShape, sliceRanges, squeezeShape, unsqueezeShape,
} from '../shape.js';
import { branchNodes, isIf, takenBranch } from './inline-if.js';
import { attrInt, attrInts, attrString, cloneGraph, constNumbers, isIntegerDType, makeData, nodeWhere } from '../util.js';

/** Ops that only relabel the data: folded at any size without copying. */
const metadataOps = new Set(['Reshape', 'Squeeze', 'Unsqueeze', 'Identity', 'Flatten']);
/** Known ops (shape inference gives their output shapes) evaluated here. */
const foldableKnown = new Set(['Shape', 'Gather', 'Unsqueeze', 'Squeeze', 'Concat', 'Reshape', 'Cast', 'Slice', 'Identity',
  'Flatten', 'Add', 'Sub', 'Mul', 'Div', 'Constant', 'Split', 'Transpose', 'Pad', 'Relu', 'Abs', 'Sigmoid', 'Tanh', 'Clip']);
/** Default-domain ops outside the IR's known list, folded here with their own output shapes (ONNX semantics). */
const foldableOther = new Set(['ConstantOfShape', 'Size', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'Not', 'And',
  'Or', 'Where', 'Neg', 'Sqrt', 'Pow', 'Exp', 'Log', 'Reciprocal', 'Floor', 'Ceil', 'Round', 'Max', 'Min', 'Range', 'Expand',
  'Sign']);
/** Elements computed per folded node at most: constant subgraphs are index and weight arithmetic; a larger
 *  one is left to the executor rather than held as number arrays on the host. */
const maxFoldElements = 1 << 22;

/** True for a node `foldConstants` evaluates when its inputs are constants. */
export function isFoldable(n: Node): boolean {
  if (n.domain !== '') return false;
  return (isKnownOp(n) && foldableKnown.has(n.op)) || foldableOther.has(n.op);
}

export function foldConstants(g0: Graph, opts: ShapeOptions = {}): Graph {
  const g = cloneGraph(g0);
  const kept: Node[] = [];
  const queue = g.nodes;
  for (let i = 0; i < queue.length; i++) {
    const n = queue[i];
    // An If with a constant condition is replaced by the nodes of the branch it takes, folded in turn.
    const branch = isIf(n) ? takenBranch(g, n) : null;
    if (branch) {
      queue.splice(i + 1, 0, ...branchNodes(g, n, branch, n.outputs));
      continue;
    }
    // Every foldable op but Split has one output; a node listing more (even '') is left to shape inference,
    // which checks it (an extra '' output crashed the probe below, RELIABILITY.md H).
    const values = isFoldable(n) && (n.outputs.length === 1 || n.op === 'Split') && n.outputs.every((y) => y) ? tryFold(g, n) : null;
    if (values) {
      n.outputs.forEach((y, i) => { g.tensors.set(y, { ...values[i], name: y }); });
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
  if (n.op === 'Size' && n.inputs.length === 1) {
    const t = g.tensors.get(n.inputs[0]);
    if (!t || t.shapeUnknown) return null;
    return [{ name: '', dtype: 'int64', shape: [], data: makeData('int64', [numel(t.shape)]) }];
  }
  const ins = n.inputs.map((x) => (x ? g.tensors.get(x) : undefined));
  if (ins.some((t, i) => n.inputs[i] && (!t || t.data === undefined))) return null;
  const x = ins[0]!;
  if (!x) return null;
  if (ins.some((t) => t?.dtype === 'string')) return null;
  if (!metadataOps.has(n.op) && (x.dtype === 'float16' || x.dtype === 'bfloat16')) {
    // Half-precision values are decoded (constNumbers); only a Cast to a wider type can write the result.
    if (n.op !== 'Cast') return null;
  }
  if (ins.some((t) => t && numel(t.shape) > maxFoldElements)) return null;
  if (!isKnownOp(n)) return foldOther(g, n, ins, where);
  // Shape inference on the constant operands gives the output shapes (and all the checks).
  const probe = { ...g, tensors: new Map(g.tensors) };
  const copy: Node = { ...n, attrs: n.attrs };
  inferNode(probe, copy);
  const outs = n.outputs.map((y) => probe.tensors.get(y)!);
  if (outs.some((t) => t.shapeUnknown)) return null;
  if (metadataOps.has(n.op)) return outs.map((t) => ({ ...t, data: x.data }));
  if (outs.some((t) => numel(t.shape) > maxFoldElements)) return null;
  const out = outs[0];
  const vals = (t: Tensor) => constNumbers(t, where);
  let result: number[];
  switch (n.op) {
    case 'Split': {
      const axis = normAxis(attrInt(g, n, 'axis', 0), x.shape.length);
      const xv = vals(x);
      const outer = numel(x.shape.slice(0, axis)), inner = numel(x.shape.slice(axis + 1));
      let offset = 0;
      return outs.map((t) => {
        const len = t.shape[axis];
        const r: number[] = [];
        for (let o = 0; o < outer; o++) for (let k = 0; k < len * inner; k++) r.push(xv[(o * x.shape[axis] + offset) * inner + k]);
        offset += len;
        checkFolded(t, r, where);
        return { name: t.name, dtype: t.dtype, shape: t.shape, data: makeData(t.dtype, r) };
      });
    }
    case 'Transpose': {
      const perm = attrInts(g, n, 'perm') ?? x.shape.map((_, i) => x.shape.length - 1 - i);
      result = transposeValues(vals(x), x.shape, perm);
      break;
    }
    case 'Pad': {
      if (attrString(g, n, 'mode', 'constant') !== 'constant') return null;
      // Attribute form (old opsets, or once normalized) or input form (opset 11+; an axes input is left alone).
      if (n.inputs[3]) return null;
      const pads = Array.isArray(n.attrs.pads) ? n.attrs.pads as number[] : ins[1] ? vals(ins[1]) : undefined;
      const r = x.shape.length;
      if (!pads || pads.length !== 2 * r) return null;
      const value = typeof n.attrs.value === 'number' ? n.attrs.value : ins[2] ? vals(ins[2])[0] ?? 0 : 0;
      result = padValues(vals(x), x.shape, pads.slice(0, r), pads.slice(r), out.shape, value);
      break;
    }
    case 'Relu': result = vals(x).map((v) => Math.max(0, v)); break;
    case 'Abs': result = vals(x).map(Math.abs); break;
    case 'Sigmoid': result = vals(x).map((v) => 1 / (1 + Math.exp(-v))); break;
    case 'Tanh': result = vals(x).map(Math.tanh); break;
    case 'Clip': {
      const bound = (attr: string, i: number, dflt: number) => {
        if (typeof n.attrs[attr] === 'number') return n.attrs[attr] as number;
        const t = n.inputs[i] ? g.tensors.get(n.inputs[i]) : undefined;
        return t?.data ? vals(t)[0] : dflt;
      };
      const lo = bound('min', 1, -Infinity), hi = bound('max', 2, Infinity);
      result = vals(x).map((v) => Math.min(hi, Math.max(lo, v)));
      break;
    }
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

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

function transposeValues(xv: readonly number[], s: readonly number[], perm: readonly number[]): number[] {
  const outShape = perm.map((p) => s[p]);
  const inStrides = s.map((_, i) => numel(s.slice(i + 1)));
  const result = new Array<number>(xv.length);
  const idx = new Array<number>(s.length).fill(0);
  for (let o = 0; o < xv.length; o++) {
    let src = 0;
    for (let d = 0; d < s.length; d++) src += idx[d] * inStrides[perm[d]];
    result[o] = xv[src];
    for (let d = s.length - 1; d >= 0; d--) {
      if (++idx[d] < outShape[d]) break;
      idx[d] = 0;
    }
  }
  return result;
}

function padValues(xv: readonly number[], s: readonly number[], begin: readonly number[], _end: readonly number[], out: readonly number[], value: number): number[] {
  const result = new Array<number>(numel(out)).fill(value);
  const outStrides = out.map((_, i) => numel(out.slice(i + 1)));
  const idx = new Array<number>(s.length).fill(0);
  for (let i = 0; i < xv.length; i++) {
    let dst = 0, inside = true;
    for (let d = 0; d < s.length; d++) {
      const c = idx[d] + begin[d];
      if (c < 0 || c >= out[d]) { inside = false; break; }
      dst += c * outStrides[d];
    }
    if (inside) result[dst] = xv[i];
    for (let d = s.length - 1; d >= 0; d--) {
      if (++idx[d] < s[d]) break;
      idx[d] = 0;
    }
  }
  return result;
}

/** Elementwise over broadcast operands: the output shape and the values. */
function broadcastMap(ins: Tensor[], where: string, f: (...v: number[]) => number): { shape: number[]; values: number[] } {
  const shape = ins.map((t) => t.shape).reduce((a, b) => broadcastShapes(a, b, where));
  const vs = ins.map((t) => constNumbers(t, where));
  const idx = ins.map((t) => broadcastIndex(t.shape, shape));
  const values = new Array<number>(numel(shape));
  for (let i = 0; i < values.length; i++) values[i] = f(...vs.map((v, k) => v[idx[k](i)]));
  return { shape, values };
}

/** Default-domain ops outside the known list: output shape and values from ONNX semantics. */
/**
 * Inputs of the ops foldOther folds, as their ONNX schemas give them ([fewest, most]; all of them required): a node
 * with another count is refused here, before a fold reads an operand that is not there (an Expand with one input
 * crashed the fold) or folds a comparison of one operand.
 */
const foldArity: Readonly<Record<string, readonly [number, number]>> = {
  ConstantOfShape: [1, 1], Not: [1, 1], Neg: [1, 1], Sqrt: [1, 1], Exp: [1, 1], Log: [1, 1], Reciprocal: [1, 1],
  Floor: [1, 1], Ceil: [1, 1], Round: [1, 1], Sign: [1, 1],
  Equal: [2, 2], Less: [2, 2], LessOrEqual: [2, 2], Greater: [2, 2], GreaterOrEqual: [2, 2], And: [2, 2], Or: [2, 2],
  Pow: [2, 2], Expand: [2, 2], Where: [3, 3], Range: [3, 3], Max: [1, Infinity], Min: [1, Infinity],
};

function foldOther(g: Graph, n: Node, ins: Array<Tensor | undefined>, where: string): Tensor[] | null {
  const arity = n.domain === '' || n.domain === 'ai.onnx' ? foldArity[n.op] : undefined;
  if (arity) {
    const [lo, hi] = arity;
    const k = n.inputs.length;
    if (k < lo || k > hi) throw invalid(where, `has ${k} input${k === 1 ? '' : 's'}; ${n.op} takes ${lo === hi ? lo : hi === Infinity ? `at least ${lo}` : `${lo} to ${hi}`}`);
    const empty = n.inputs.findIndex((name) => !name);
    if (empty >= 0) throw invalid(where, `input ${empty} is empty; every input of ${n.op} is required`);
  }
  const x = ins[0]!;
  const y = n.outputs[0];
  const make = (dtype: DType, shape: number[], values: number[]): Tensor[] | null => {
    if (numel(shape) > maxFoldElements) return null;
    if (dtype === 'float16' || dtype === 'bfloat16' || dtype === 'string') return null;
    const t: Tensor = { name: y, dtype, shape, data: makeData(dtype, values) };
    checkFolded(t, values, where);
    return [t];
  };
  const present = ins.filter((t): t is Tensor => !!t);
  const integer = isIntegerDType(x.dtype);
  const unary = (f: (v: number) => number) => make(x.dtype, [...x.shape], constNumbers(x, where).map((v) => (integer ? Math.trunc(f(v)) : f(v))));
  const compare = (f: (a: number, b: number) => boolean) => {
    const r = broadcastMap(present, where, (a, b) => (f(a, b) ? 1 : 0));
    return make('bool', r.shape, r.values);
  };
  switch (n.op) {
    case 'ConstantOfShape': {
      const shape = constNumbers(x, where);
      if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw invalid(where, `shape [${shape.join(', ')}] has a negative or non-integer dimension`);
      const v = n.attrs.value;
      let dtype: DType = 'float32', fill = 0;
      if (v && typeof v === 'object' && !Array.isArray(v) && 'data' in v && v.data) {
        dtype = v.dtype;
        fill = constNumbers(v, where)[0] ?? 0;
      }
      return make(dtype, shape, new Array<number>(numel(shape)).fill(fill));
    }
    case 'Equal': return compare((a, b) => a === b);
    case 'Less': return compare((a, b) => a < b);
    case 'LessOrEqual': return compare((a, b) => a <= b);
    case 'Greater': return compare((a, b) => a > b);
    case 'GreaterOrEqual': return compare((a, b) => a >= b);
    case 'And': return compare((a, b) => a !== 0 && b !== 0);
    case 'Or': return compare((a, b) => a !== 0 || b !== 0);
    case 'Not': return make('bool', [...x.shape], constNumbers(x, where).map((v) => (v === 0 ? 1 : 0)));
    case 'Where': {
      if (present.length !== 3) return null;
      const r = broadcastMap(present, where, (c, a, b) => (c !== 0 ? a : b));
      return make(ins[1]!.dtype, r.shape, r.values);
    }
    case 'Neg': return unary((v) => -v);
    case 'Sqrt': return unary(Math.sqrt);
    case 'Exp': return unary(Math.exp);
    case 'Log': return unary(Math.log);
    case 'Reciprocal': return unary((v) => 1 / v);
    case 'Floor': return unary(Math.floor);
    case 'Ceil': return unary(Math.ceil);
    case 'Round': return unary((v) => { const f = Math.floor(v), d = v - f; return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f; });
    case 'Sign': return unary(Math.sign);
    case 'Pow': {
      const r = broadcastMap(present, where, (a, b) => (integer ? Math.trunc(a ** b) : a ** b));
      return make(x.dtype, r.shape, r.values);
    }
    case 'Max': case 'Min': {
      const f = n.op === 'Max' ? Math.max : Math.min;
      const r = broadcastMap(present, where, (...v) => f(...v));
      return make(x.dtype, r.shape, r.values);
    }
    case 'Range': {
      if (present.length !== 3) return null;
      const [start, limit, delta] = present.map((t) => constNumbers(t, where)[0]);
      if (delta === 0 || !Number.isFinite(start) || !Number.isFinite(limit)) throw invalid(where, `Range(${start}, ${limit}, ${delta}) has no finite length`);
      const len = Math.max(Math.ceil((limit - start) / delta), 0);
      if (len > maxFoldElements) return null;
      return make(x.dtype, [len], Array.from({ length: len }, (_, i) => start + i * delta));
    }
    case 'Expand': {
      const target = constNumbers(ins[1]!, where);
      const shape = broadcastShapes(x.shape, target, where);
      const idx = broadcastIndex(x.shape, shape);
      const xv = constNumbers(x, where);
      return make(x.dtype, shape, Array.from({ length: numel(shape) }, (_, i) => xv[idx(i)]));
    }
    default: return null;
  }
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
