// foldChannelScales: a squeeze-excite block ends in Mul(x, s) with s [N, C, 1, 1]; when the product's only reader is
// a pointwise Conv, that Conv reads x and multiplies each channel by s as it loads it (kernels/conv-common.ts, input
// 4), so the Mul's dispatch and its full-size tensor disappear (MobileNetV3 and EfficientNet spend one
// dispatch per block on it).
//   Mul(x, s) -> Conv(product, w, b?, r?)   =>   Conv(x, w, b?, r?, s)
// Legality: the product has exactly one consumer, that Conv, as its input 0, and is no graph output; the Conv is
// pointwise (1x1 weights, stride 1, no padding, group 1), plain ONNX and has no scale yet; s has shape [N, C, 1, 1]
// and x the Conv's input shape [N, C, H, W], both float32. No cycle can arise: x and s are computed before the Mul,
// which comes before the Conv. Runs on the executor's graph, after planning (FCM nodes take no scale).

import { type AttrValue, type Graph, type Node, hasExecutorLayout } from '../graph/ir.js';
import { cloneGraph } from '../graph/util.js';

const intsOf = (v: AttrValue | undefined): number[] | undefined => (Array.isArray(v) ? (v as number[]) : undefined);

const same = (a: readonly number[] | undefined, b: readonly number[]) => !!a && a.length === b.length && a.every((v, i) => v === b[i]);

function isPlainPointwise(g: Graph, n: Node): boolean {
  if (n.op !== 'Conv' || (n.domain !== '' && n.domain !== 'ai.onnx') || n.inputs[4]) return false;
  const w = g.tensors.get(n.inputs[1])?.shape;
  if (!w || w.length !== 4 || w[2] !== 1 || w[3] !== 1) return false;
  const ones = (k: string, len: number, v: number) => { const a = intsOf(n.attrs[k]); return a === undefined || (a.length === len && a.every((x) => x === v)); };
  return ones('strides', 2, 1) && ones('pads', 4, 0) && ones('dilations', 2, 1) && (n.attrs.group === undefined || n.attrs.group === 1);
}

export function foldChannelScales(g0: Graph): Graph {
  const g = cloneGraph(g0);
  const readers = new Map<string, Node[]>();
  for (const n of g.nodes) {
    for (const x of n.inputs) {
      if (!x) continue;
      const list = readers.get(x);
      if (list) list.push(n);
      else readers.set(x, [n]);
    }
  }
  const outputs = new Set(g.outputs);
  const drop = new Set<Node>();
  for (const m of g.nodes) {
    if (m.op !== 'Mul' || (m.domain !== '' && m.domain !== 'ai.onnx') || m.inputs.length !== 2 || hasExecutorLayout(m)) continue;
    const y = m.outputs[0];
    const rs = readers.get(y) ?? [];
    if (outputs.has(y) || rs.length !== 1) continue;
    const c = rs[0];
    if (c.inputs[0] !== y || c.inputs.indexOf(y, 1) >= 0 || !isPlainPointwise(g, c)) continue;
    const xs = g.tensors.get(c.inputs[0])?.shape;
    if (!xs || xs.length !== 4) continue;
    const [N, C] = xs;
    const t = (name: string) => g.tensors.get(name);
    // Either operand may be the scale.
    const k = [0, 1].find((i) => same(t(m.inputs[i])?.shape, [N, C, 1, 1]) && same(t(m.inputs[1 - i])?.shape, xs));
    if (k === undefined) continue;
    const s = m.inputs[k], x = m.inputs[1 - k];
    if ([s, x, y].some((name) => t(name)?.dtype !== 'float32')) continue;
    const inputs = [...c.inputs];
    while (inputs.length < 4) inputs.push('');
    inputs[0] = x;
    inputs[4] = s;
    c.inputs = inputs;
    drop.add(m);
    g.tensors.delete(y);
  }
  if (!drop.size) return g0;
  g.nodes = g.nodes.filter((n) => !drop.has(n));
  return g;
}
