// BatchNormalization after a Conv folds into the Conv's weights and bias (inference only):
//   y = scale * (conv(x) - mean) / sqrt(var + eps) + B
//     = conv'(x) with W'[f] = W[f] * k[f], b'[f] = (b[f] - mean[f]) * k[f] + B[f], k = scale / sqrt(var + eps).
// Legal only when the BN is the Conv output's single consumer and the output is not a graph output
// (otherwise the unnormalized tensor is still needed) and every parameter is a float constant.
import type { Graph, Node, Tensor } from '../ir.js';
import { consumers, isKnownOp, numel, producers } from '../ir.js';
import { attrFloat, cloneGraph, constNumbers, nodeWhere, uniqueName } from '../util.js';

export function foldBatchNorm(g0: Graph): Graph {
  const g = cloneGraph(g0);
  const cons = consumers(g);
  const prod = producers(g);
  const removed = new Set<Node>();
  for (const bn of g.nodes) {
    if (!isKnownOp(bn) || bn.op !== 'BatchNormalization') continue;
    if (bn.outputs.slice(1).some((o) => o)) continue; // training-mode outputs
    const y = bn.inputs[0];
    const pi = prod.get(y);
    if (pi === undefined) continue;
    const conv = g.nodes[pi];
    if (!isKnownOp(conv) || conv.op !== 'Conv' || removed.has(conv) || conv.inputs[3]) continue;
    if (conv.attrs.activation !== undefined) continue; // BN must come before any fused epilogue
    if ((cons.get(y) ?? []).length !== 1 || g.outputs.includes(y)) continue;
    const w = g.tensors.get(conv.inputs[1]);
    const b = conv.inputs[2] ? g.tensors.get(conv.inputs[2]) : undefined;
    const params = bn.inputs.slice(1, 5).map((x) => (x ? g.tensors.get(x) : undefined));
    if (!w || !isFloatConst(w) || (conv.inputs[2] && (!b || !isFloatConst(b)))) continue;
    if (params.length !== 4 || params.some((p) => !p || !isFloatConst(p))) continue;
    const F = w.shape[0];
    if (params.some((p) => numel(p!.shape) !== F) || (b && numel(b.shape) !== F)) continue;

    const where = nodeWhere(g, bn);
    const [scale, beta, mean, variance] = params.map((p) => constNumbers(p!, where));
    const eps = attrFloat(g, bn, 'epsilon', 1e-5);
    const bias = b ? constNumbers(b, where) : new Array<number>(F).fill(0);
    const wv = w.data as Float32Array | Float64Array;
    const per = wv.length / F;
    const Ctor = w.data instanceof Float64Array ? Float64Array : Float32Array;
    const newW = new Ctor(wv.length);
    const newB = new Ctor(F);
    for (let f = 0; f < F; f++) {
      // In double, rounded once when stored.
      const k = scale[f] / Math.sqrt(variance[f] + eps);
      for (let i = 0; i < per; i++) newW[f * per + i] = wv[f * per + i] * k;
      newB[f] = (bias[f] - mean[f]) * k + beta[f];
    }
    const wName = uniqueName(g, `${conv.name || w.name}_bnfold_w`);
    g.tensors.set(wName, { name: wName, dtype: w.dtype, shape: [...w.shape], data: newW });
    const bName = uniqueName(g, `${conv.name || w.name}_bnfold_b`);
    g.tensors.set(bName, { name: bName, dtype: w.dtype, shape: [F], data: newB });
    conv.inputs = [conv.inputs[0], wName, bName];
    // The Conv takes over the BN's output name, so readers of the BN and graph outputs are unchanged.
    conv.outputs = [bn.outputs[0]];
    g.tensors.delete(y);
    removed.add(bn);
  }
  g.nodes = g.nodes.filter((n) => !removed.has(n));
  return g;
}

const isFloatConst = (t: Tensor) => (t.dtype === 'float32' || t.dtype === 'float64') && t.data !== undefined
  && (t.data instanceof Float32Array || t.data instanceof Float64Array);
