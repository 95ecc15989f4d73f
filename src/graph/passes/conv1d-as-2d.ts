// A 1-D convolution (input [N, C, L], weights [F, C/group, K]; openWakeWord's and Silero's STFT front ends) becomes
// the 2-D convolution the kernels and the planner know: Unsqueeze the input to [N, C, 1, L], weights [F, C/group,
// 1, K] with kernel [1, K], strides [1, s], pads [0, b, 0, e], dilations [1, d], and Squeeze the output back to
// [N, F, L']. Runs after shape inference (canonical attributes, static shapes) and writes the new shapes itself.
import type { Graph, Node, Tensor } from '../ir.js';
import { isKnownOp, newAttrs } from '../ir.js';
import { cloneGraph } from '../util.js';

export function conv1dAs2d(g0: Graph): Graph {
  if (!g0.nodes.some((n) => is1d(g0, n))) return g0;
  const g = cloneGraph(g0);
  const used = new Set([...g.tensors.keys(), ...g.nodes.map((n) => n.name)]);
  const fresh = (base: string) => {
    let name = base, i = 1;
    while (used.has(name)) name = `${base}_${i++}`;
    used.add(name);
    return name;
  };
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    if (!is1d(g, n)) { nodes.push(n); continue; }
    const x = g.tensors.get(n.inputs[0])!, w = g.tensors.get(n.inputs[1])!, y = g.tensors.get(n.outputs[0])!;
    const one = (k: string, dflt: number) => ((n.attrs[k] as number[] | undefined) ?? [dflt])[0];
    const pads = (n.attrs.pads as number[] | undefined) ?? [0, 0];
    const x2: Tensor = { name: fresh(`${x.name}/as_2d`), dtype: x.dtype, shape: [x.shape[0], x.shape[1], 1, x.shape[2]] };
    const w2: Tensor = { ...w, name: fresh(`${w.name}/as_2d`), shape: [w.shape[0], w.shape[1], 1, w.shape[2]] };
    const y2: Tensor = { name: fresh(`${y.name}/as_2d`), dtype: y.dtype, shape: [y.shape[0], y.shape[1], 1, y.shape[2]] };
    if (x.quant) x2.quant = x.quant;
    if (y.quant) y2.quant = y.quant;
    for (const t of [x2, w2, y2]) g.tensors.set(t.name, t);
    nodes.push({ name: fresh(`${n.name}/as_2d_in`), op: 'Unsqueeze', domain: '', inputs: [x.name], outputs: [x2.name], attrs: newAttrs({ axes: [2] }) });
    nodes.push({
      ...n,
      inputs: [x2.name, w2.name, ...n.inputs.slice(2)],
      outputs: [y2.name],
      attrs: newAttrs({
        ...n.attrs,
        kernel: [1, w.shape[2]], strides: [1, one('strides', 1)], dilations: [1, one('dilations', 1)], pads: [0, pads[0], 0, pads[1]],
      }),
    });
    nodes.push({ name: fresh(`${n.name}/as_2d_out`), op: 'Squeeze', domain: '', inputs: [y2.name], outputs: [y.name], attrs: newAttrs({ axes: [2] }) });
  }
  g.nodes = nodes;
  return g;
}

/** A Conv with constant 3-D weights on a 3-D input, shapes known. */
function is1d(g: Graph, n: Node): boolean {
  if (!isKnownOp(n) || n.op !== 'Conv' || n.outputs.length !== 1) return false;
  const x = g.tensors.get(n.inputs[0]), w = n.inputs[1] ? g.tensors.get(n.inputs[1]) : undefined, y = g.tensors.get(n.outputs[0]);
  return !!(x && w?.data && y && !x.shapeUnknown && !y.shapeUnknown && x.shape.length === 3 && w.shape.length === 3 && y.shape.length === 3);
}
