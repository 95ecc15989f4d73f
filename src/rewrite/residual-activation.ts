// foldResidualActivations: the activation after a residual add (ResNet's and RegNet's relu(x + f(x))) runs in the
// kernel that computes the sum, one dispatch less per block:
//   Conv(x, w, b?, r) -> act      =>  Conv{activationPost}(x, w, b?, r)       (the Add already folded: epilogues.ts)
//   FusedXx(..., r) -> act        =>  FusedXx{activationPost}(..., r)         (an FCM whose second layer has r)
//   Add(a, b) -> act              =>  Add{activation}(a, b)                    (the binary kernel's epilogue)
// The convolution order becomes bias, activation, + residual, activationPost (src/graph/ir.ts, "Epilogues").
// Legality: the activation is one the epilogues take (src/planner/fusion-rules.ts activationParams; a Clip with
// constant bounds), reads the sum as its only data input, and is that tensor's only reader; the sum is no graph
// output and float32; the producer has one output and no activationPost (Conv, FCM: a residual input; Add: two inputs
// and no activation yet). The producer keeps its place and takes the activation's output name, so graph output names
// survive and the node list stays topological (every reader of that name comes after the activation, which came
// after the producer). Float graphs only: the integer kernels add residuals with ADD (pipeline.ts).

import { type AttrValue, type Graph, type Node, fcmDomain, hasExecutorLayout } from '../graph/ir.js';
import { cloneGraph } from '../graph/util.js';
import { activationParams, epilogueActivationOps } from '../planner/fusion-rules.js';

const plain = (n: Node) => n.domain === '' || n.domain === 'ai.onnx';

/** The attribute names the producer takes the activation under, or undefined when it cannot take it. */
function target(n: Node): { act: string; params: string } | undefined {
  if (n.outputs.length !== 1) return undefined;
  if (plain(n) && n.op === 'Conv' && (n.inputs[3] ?? '') !== '' && n.attrs.activationPost === undefined) return { act: 'activationPost', params: 'activationParamsPost' };
  if (n.domain === fcmDomain && (n.inputs[5] ?? '') !== '' && n.attrs.activationPost === undefined) return { act: 'activationPost', params: 'activationParamsPost' };
  if (plain(n) && n.op === 'Add' && n.inputs.length === 2 && n.inputs.every((x) => x) && n.attrs.activation === undefined) return { act: 'activation', params: 'activationParams' };
  return undefined;
}

export function foldResidualActivations(g0: Graph): Graph {
  const readers = new Map<string, number>();
  for (const n of g0.nodes) for (const x of new Set(n.inputs)) if (x) readers.set(x, (readers.get(x) ?? 0) + 1);
  const producer = new Map<string, number>();
  g0.nodes.forEach((n, i) => n.outputs.forEach((y) => y && producer.set(y, i)));
  const outputs = new Set(g0.outputs);
  let g: Graph | undefined;
  const drop = new Set<number>();
  g0.nodes.forEach((act, i) => {
    // An activation stored channels-last (src/rewrite/channels-last-store.ts) writes another layout than its producer.
    if (!plain(act) || !epilogueActivationOps.has(act.op) || act.outputs.length !== 1 || hasExecutorLayout(act)) return;
    const s = act.inputs[0];
    if (!s || act.inputs.slice(1).includes(s) || outputs.has(s) || readers.get(s) !== 1) return;
    const p = producer.get(s);
    if (p === undefined || drop.has(p)) return;
    const t = target(g0.nodes[p]);
    if (!t || g0.tensors.get(s)?.dtype !== 'float32' || g0.tensors.get(act.outputs[0])?.dtype !== 'float32') return;
    const params = activationParams(g0, act);
    if (!params) return;
    g ??= cloneGraph(g0);
    const n = g.nodes[p];
    n.attrs[t.act] = act.op;
    if (params.length > 0) n.attrs[t.params] = params as AttrValue;
    n.outputs = [act.outputs[0]];
    g.tensors.delete(s);
    drop.add(i);
  });
  if (!g) return g0;
  g.nodes = g.nodes.filter((_, i) => !drop.has(i));
  return g;
}
