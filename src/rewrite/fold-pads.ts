// foldPads: a zero constant Pad of H and W only, whose one consumer takes it as the data input of a padded
// convolution (a Conv, or the depthwise first layer of a FusedDwPw), becomes that convolution's padding. TFLite
// writes its stride-2 convolutions as PAD + VALID conv: this removes a dispatch and a tensor per such layer.
// Runs after fusion (applyPlan names Pads in plans: a Pad between PW and DW is folded there, into the FCM).
//
// Legality: the padded tensor is not a graph output and has that one consumer; quantized tensors pad with the
// zero point, which a quantized convolution's padding also means (such taps add 0), so the Pad's input and output
// must share their quantization; the summed pads stay below the kernel's extent (the kernels' limit).

import type { Graph, Node } from '../graph/ir.js';
import { fcmDomain, newAttrs } from '../graph/ir.js';
import { attrInts, cloneGraph, pruneTensors } from '../graph/util.js';
import { spatialZeroPads } from '../planner/fusion-rules.js';

export { spatialZeroPads } from '../planner/fusion-rules.js';

const sameQuant = (g: Graph, a: string, b: string) => {
  const qa = g.tensors.get(a)?.quant, qb = g.tensors.get(b)?.quant;
  if (!qa || !qb) return !qa && !qb;
  return qa.scale.length === qb.scale.length && qa.scale.every((s, i) => s === qb.scale[i])
    && qa.zeroPoint.length === qb.zeroPoint.length && qa.zeroPoint.every((z, i) => z === qb.zeroPoint[i]);
};

/** The [kh, kw] extent of a padded convolution taking its data input at input 0; undefined for other nodes. */
function paddedConvExtent(g: Graph, n: Node): [number, number] | undefined {
  const isConv = n.op === 'Conv' && n.domain === '';
  if (!isConv && !(n.op === 'FusedDwPw' && n.domain === fcmDomain)) return undefined;
  const auto = n.attrs.auto_pad;
  if (auto !== undefined && auto !== 'NOTSET') return undefined;
  const ws = g.tensors.get(n.inputs[1])?.shape;
  const k = attrInts(g, n, 'kernel') ?? (ws && ws.length === 4 ? [ws[2], ws[3]] : undefined);
  const d = attrInts(g, n, 'dilations') ?? [1, 1];
  if (!k || k.length !== 2 || d.length !== 2) return undefined;
  return [(k[0] - 1) * d[0] + 1, (k[1] - 1) * d[1] + 1];
}

export function foldPads(g0: Graph): Graph {
  const g = cloneGraph(g0);
  const outputs = new Set(g.outputs);
  const drop = new Set<Node>();
  // Readers of each tensor (a scan of every node per Pad made TFLite models with many pads quadratic); kept up to
  // date when a fold moves a convolution's input from the Pad's output to its input.
  const readers = new Map<string, Set<Node>>();
  for (const n of g.nodes) {
    for (const x of n.inputs) {
      const set = readers.get(x);
      if (set) set.add(n);
      else readers.set(x, new Set([n]));
    }
  }
  for (const pad of g.nodes) {
    const extra = spatialZeroPads(g, pad);
    if (!extra || pad.outputs.length !== 1) continue;
    const [x, y] = [pad.inputs[0], pad.outputs[0]];
    if (!x || outputs.has(y) || !sameQuant(g, x, y)) continue;
    const cons = [...(readers.get(y) ?? [])].filter((n) => n.inputs.includes(y));
    if (cons.length !== 1) continue;
    const c = cons[0];
    if (c.inputs[0] !== y || c.inputs.slice(1).includes(y)) continue;
    const ext = paddedConvExtent(g, c);
    if (!ext) continue;
    const pads = (attrInts(g, c, 'pads') ?? [0, 0, 0, 0]).map((p, k) => p + extra[k]);
    if (pads.length !== 4 || pads[0] >= ext[0] || pads[2] >= ext[0] || pads[1] >= ext[1] || pads[3] >= ext[1]) continue;
    c.attrs = newAttrs({ ...c.attrs, pads });
    c.inputs = [x, ...c.inputs.slice(1)];
    readers.get(y)?.delete(c);
    const rx = readers.get(x);
    if (rx) rx.add(c);
    else readers.set(x, new Set([c]));
    drop.add(pad);
  }
  if (drop.size === 0) return g0;
  g.nodes = g.nodes.filter((n) => !drop.has(n));
  return pruneTensors(g);
}
