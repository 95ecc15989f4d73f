// A per-channel constant added to a 2-D Conv's output folds into the Conv's bias (TensorFlow graphs spell the bias as a
// BiasAdd or AddV2 after a Conv2D without one; so do some ONNX exports), and a chain of clamps (Relu, Clip) reading
// one another is one Clip (converters write ReLU6 as Maximum(x, 0) then Minimum(x, 6)). Both let the epilogue
// fusion and the planner see the Conv with its bias and activation as one layer.
// Legal only where the Conv's (or the first clamp's) output has that one reader and is no graph output.
import type { Graph, Node, Tensor } from '../ir.js';
import { consumers, isKnownOp, newAttrs, numel, producers } from '../ir.js';
import { cloneGraph, constNumbers, nodeWhere, uniqueName } from '../util.js';

const isFloatConst = (t: Tensor | undefined): t is Tensor => !!t && (t.dtype === 'float32' || t.dtype === 'float64') && t.data !== undefined
  && (t.data instanceof Float32Array || t.data instanceof Float64Array);

/** Whether a constant of shape `s` added to an NCHW tensor of F channels varies along the channels only (or not at all). */
function perChannel(s: readonly number[], F: number): boolean {
  // One value: the same for every element, so for every channel.
  if (numel(s) === 1) return s.length <= 4;
  if (numel(s) !== F) return false;
  // [F, 1, 1] or [1, F, 1, 1]: the channel axis of NCHW; a shape [F] would vary along W.
  return (s.length === 3 && s[0] === F && s[1] === 1 && s[2] === 1) || (s.length === 4 && s[0] === 1 && s[1] === F && s[2] === 1 && s[3] === 1);
}

export function foldBiasAdd(g0: Graph): Graph {
  const g = cloneGraph(g0);
  const cons = consumers(g);
  const prod = producers(g);
  const removed = new Set<Node>();
  for (const add of g.nodes) {
    if (!isKnownOp(add) || (add.op !== 'Add' && add.op !== 'Sub') || add.inputs.length !== 2) continue;
    for (const side of add.op === 'Sub' ? [0] : [0, 1]) {
      const y = add.inputs[side], c = g.tensors.get(add.inputs[1 - side]);
      const pi = prod.get(y);
      if (pi === undefined) continue;
      const conv = g.nodes[pi];
      if (!isKnownOp(conv) || conv.op !== 'Conv' || removed.has(conv) || conv.attrs.activation !== undefined || conv.inputs[3]) continue;
      if ((cons.get(y) ?? []).length !== 1 || g.outputs.includes(y)) continue;
      const w = g.tensors.get(conv.inputs[1]);
      const b = conv.inputs[2] ? g.tensors.get(conv.inputs[2]) : undefined;
      if (!w || w.shape.length !== 4 || !isFloatConst(c) || (conv.inputs[2] && !isFloatConst(b))) continue;
      const F = w.shape[0];
      if (!perChannel(c.shape, F) || (b && numel(b.shape) !== F)) continue;
      const where = nodeWhere(g, add);
      const cv = constNumbers(c, where);
      const bias = b ? constNumbers(b, where) : new Array<number>(F).fill(0);
      const sign = add.op === 'Sub' ? -1 : 1;
      const bName = uniqueName(g, `${conv.name || w.name}_bias`);
      g.tensors.set(bName, { name: bName, dtype: w.dtype, shape: [F], data: Float32Array.from(bias, (v, f) => v + sign * cv[cv.length === 1 ? 0 : f]) });
      conv.inputs = [conv.inputs[0], conv.inputs[1], bName];
      // The Conv takes over the Add's output name: its readers and graph outputs are unchanged.
      conv.outputs = [add.outputs[0]];
      g.tensors.delete(y);
      removed.add(add);
      break;
    }
  }
  g.nodes = g.nodes.filter((n) => !removed.has(n));
  return g;
}

/** A clamp's bounds: Relu [0, inf), Clip [min, max] (absent bounds unbounded); undefined for other nodes. */
function bounds(n: Node): [number, number] | undefined {
  if (!isKnownOp(n)) return undefined;
  if (n.op === 'Relu') return [0, Infinity];
  if (n.op !== 'Clip' || n.inputs.length > 1) return undefined;
  const lo = n.attrs.min, hi = n.attrs.max;
  if ((lo !== undefined && typeof lo !== 'number') || (hi !== undefined && typeof hi !== 'number')) return undefined;
  return [lo ?? -Infinity, hi ?? Infinity];
}

export function mergeClamps(g0: Graph): Graph {
  const g = cloneGraph(g0);
  const cons = consumers(g);
  const prod = producers(g);
  const removed = new Set<Node>();
  for (const second of g.nodes) {
    const b = bounds(second);
    if (!b) continue;
    const x = second.inputs[0];
    const pi = prod.get(x);
    if (pi === undefined) continue;
    const first = g.nodes[pi];
    const a = bounds(first);
    if (!a || removed.has(first) || (cons.get(x) ?? []).length !== 1 || g.outputs.includes(x)) continue;
    const lo = Math.max(a[0], b[0]), hi = Math.min(a[1], b[1]);
    if (!(lo <= hi)) continue;
    // The first clamp becomes the merged one and writes the second's output.
    first.op = 'Clip';
    const attrs = newAttrs();
    for (const k of Object.keys(first.attrs)) if (k !== 'min' && k !== 'max') attrs[k] = first.attrs[k];
    if (lo !== -Infinity) attrs.min = lo;
    if (hi !== Infinity) attrs.max = hi;
    first.attrs = attrs;
    first.outputs = [second.outputs[0]];
    g.tensors.delete(x);
    removed.add(second);
    // A third clamp may follow: it now reads the merged node's output.
    prod.set(second.outputs[0], pi);
  }
  g.nodes = g.nodes.filter((n) => !removed.has(n));
  return g;
}
