// Identity and inference-time Dropout do nothing: consumers read the input directly. When the output is a
// graph output its name must survive, so the producer of the input is renamed to write it instead; where
// that is impossible (the input is a graph input, a constant or another graph output) the node stays.
import type { Graph, Node } from '../ir.js';
import { consumers, isKnownOp } from '../ir.js';
import { cloneGraph, renameUses } from '../util.js';

export function removeIdentity(g0: Graph): Graph {
  const g = cloneGraph(g0);
  const removed = new Set<Node>();
  for (const n of g.nodes) {
    if (!isKnownOp(n) || (n.op !== 'Identity' && n.op !== 'Dropout')) continue;
    // A Dropout whose mask is read is not a pure pass-through.
    if (n.op === 'Dropout' && n.outputs.slice(1).some((m) => m && isRead(g, m, removed))) continue;
    const x = n.inputs[0], y = n.outputs[0];
    if (!x || !y) continue;
    if (!g.outputs.includes(y)) {
      renameUses(g, y, x);
      removed.add(n);
      g.tensors.delete(y);
      continue;
    }
    const producer = g.nodes.find((p) => !removed.has(p) && p.outputs.includes(x));
    if (!producer || g.outputs.includes(x) || g.inputs.includes(x)) continue;
    // The producer now writes `y`; every other reader of `x` reads `y`.
    producer.outputs = producer.outputs.map((o) => (o === x ? y : o));
    renameUses(g, x, y);
    const t = g.tensors.get(x);
    if (t) g.tensors.set(y, { ...t, name: y });
    g.tensors.delete(x);
    removed.add(n);
  }
  g.nodes = g.nodes.filter((n) => !removed.has(n));
  // Unread Dropout masks of removed nodes.
  for (const n of removed) for (const m of n.outputs.slice(1)) if (m) g.tensors.delete(m);
  return g;
}

function isRead(g: Graph, name: string, removed: Set<Node>): boolean {
  if (g.outputs.includes(name)) return true;
  const c = consumers(g).get(name) ?? [];
  return c.some((i) => !removed.has(g.nodes[i]));
}
