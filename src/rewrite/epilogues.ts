// fuseEpilogues: folds into a Conv the element-wise work that follows it, so that the executor runs one
// kernel instead of two or three (src/graph/ir.ts, "Epilogues"):
//   Conv -> activation (sole consumer)            => Conv{activation, activationParams}
//   Conv -> Add(conv output, r) (sole consumer)   => Conv with r as its 4th input (the residual)
// in that order only (bias, activation, + residual: an activation after the Add is not an epilogue).
// Legality: the folded tensor has exactly one consumer and is no graph output (for the activation:
// src/planner/fusion-rules.ts foldedActivation, the rule the DAG writer applies too); r has the conv output's
// shape and dtype and does not depend on the conv (no cycle). The folded node keeps the Conv's name and takes
// the output name of the last folded node (graph output names are preserved), at that node's position (so
// the node list stays in topological order: r is computed before the Add).

import { type Activation, type AttrValue, type Graph, type Node, hasExecutorLayout } from '../graph/ir.js';
import { cloneGraph } from '../graph/util.js';
import { epilogueActivationOps, foldedActivation } from '../planner/fusion-rules.js';

/** The activations a Conv takes as epilogue (src/planner/fusion-rules.ts states which fold, for the DAG too). */
export const epilogueActivations = [...epilogueActivationOps] as readonly Activation[];

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

export function fuseEpilogues(g0: Graph): Graph {
  const g = cloneGraph(g0);
  // Slots keep positions while nodes move; null = removed.
  const slots: (Node | null)[] = [...g.nodes];
  const outputs = new Set(g.outputs);
  // Readers of each tensor, by node (each once), and each live node's slot: consumerSlots looks up instead of
  // scanning every slot, which made a long conv chain quadratic. Nodes only move (a Conv to the slot of what it
  // folds) or go; the one new read is the residual a Conv takes over from its Add.
  const readers = new Map<string, Set<Node>>();
  const slotOfNode = new Map<Node, number>();
  slots.forEach((n, i) => {
    if (!n) return;
    slotOfNode.set(n, i);
    for (const x of n.inputs) {
      const set = readers.get(x);
      if (set) set.add(n);
      else readers.set(x, new Set([n]));
    }
  });
  const consumerSlots = (t: string) => {
    const r: number[] = [];
    for (const n of readers.get(t) ?? []) {
      const i = slotOfNode.get(n);
      if (i !== undefined && slots[i] === n && n.inputs.includes(t)) r.push(i);
    }
    return r.sort((a, b) => a - b);
  };
  const move = (n: Node, from: number, to: number, removed: Node) => {
    slotOfNode.delete(removed);
    slots[to] = n;
    slots[from] = null;
    slotOfNode.set(n, to);
  };
  const producerSlot = new Map<string, number>();
  slots.forEach((n, i) => n?.outputs.forEach((y) => y && producerSlot.set(y, i)));
  // In topological order (kept by the folds: a Conv only moves forward to a node that reads it), nothing in an
  // earlier slot is computed from a later one, which bounds dependsOn's walk.
  const topological = slots.every((n, i) => !n || n.inputs.every((x) => (producerSlot.get(x) ?? -1) < i));

  for (let i = 0; i < slots.length; i++) {
    const conv = slots[i];
    if (!conv || conv.op !== 'Conv' || conv.domain !== '' || conv.outputs.length !== 1) continue;
    if (conv.attrs.activation !== undefined || (conv.inputs[3] ?? '') !== '' || hasExecutorLayout(conv)) continue;
    let pos = i;

    // 1. Activation.
    let y = conv.outputs[0];
    let cons = consumerSlots(y);
    if (cons.length === 1) {
      const act = slots[cons[0]]!;
      const params = hasExecutorLayout(act) ? undefined : foldedActivation(g, conv, act, cons.length, outputs);
      if (params) {
        conv.attrs.activation = act.op;
        if (params.length > 0) conv.attrs.activationParams = params as AttrValue;
        conv.outputs[0] = act.outputs[0];
        g.tensors.delete(y);
        move(conv, pos, cons[0], act);
        pos = cons[0];
        producerSlot.set(conv.outputs[0], pos);
        y = conv.outputs[0];
        cons = consumerSlots(y);
      }
    }

    // 2. Residual Add.
    if (outputs.has(y) || cons.length !== 1) continue;
    const add = slots[cons[0]]!;
    if (add.op !== 'Add' || add.domain !== '' || add.inputs.length !== 2 || add.outputs.length !== 1 || hasExecutorLayout(add)) continue;
    const k = add.inputs.indexOf(y);
    const r = add.inputs[1 - k];
    if (k < 0 || !r || r === y) continue;
    const ty = g.tensors.get(y);
    const tr = g.tensors.get(r);
    const tz = g.tensors.get(add.outputs[0]);
    if (!ty || !tr || !tz || ty.shapeUnknown || tr.shapeUnknown || tz.shapeUnknown) continue;
    if (!sameShape(ty.shape, tr.shape) || !sameShape(ty.shape, tz.shape) || ty.dtype !== tr.dtype) continue;
    if (dependsOn(slots, producerSlot, r, pos, topological)) continue;
    while (conv.inputs.length < 3) conv.inputs.push('');
    conv.inputs[3] = r;
    readers.get(r)?.add(conv);
    conv.outputs[0] = add.outputs[0];
    g.tensors.delete(y);
    move(conv, pos, cons[0], add);
    producerSlot.set(conv.outputs[0], cons[0]);
  }
  g.nodes = slots.filter((n): n is Node => n !== null);
  return g;
}

/** Whether tensor `t` is computed (transitively) from the output of the node in slot `from`. */
function dependsOn(slots: (Node | null)[], producerSlot: Map<string, number>, t: string, from: number, topological: boolean): boolean {
  const seen = new Set<number>();
  const stack = [t];
  while (stack.length > 0) {
    const p = producerSlot.get(stack.pop()!);
    if (p === undefined || seen.has(p)) continue;
    if (p === from) return true;
    if (topological && p < from) continue;
    seen.add(p);
    const n = slots[p];
    if (n) for (const x of n.inputs) if (x) stack.push(x);
  }
  return false;
}

/**
 * foldMatrixActivations: an activation after a Gemm or MatMul (a classifier head's hidden layer: MobileNetV3's
 * Linear -> Hardswish -> Linear) runs in that kernel's epilogue, which applies `activation` after alpha, beta and C
 * (kernels/gemm.ts), one dispatch less:   Gemm(a, b, c?) -> act  =>  Gemm{activation}(a, b, c?)
 * Legality: foldedActivation's (the product's only reader is the activation, on its data input; no graph output; one
 * the epilogues take), the product float32 and the node plain ONNX with no activation yet. The node keeps its place
 * and takes the activation's output name (every reader of that name comes after the activation).
 */
export function foldMatrixActivations(g0: Graph): Graph {
  const readers = new Map<string, number>();
  for (const n of g0.nodes) for (const x of new Set(n.inputs)) if (x) readers.set(x, (readers.get(x) ?? 0) + 1);
  const producer = new Map<string, number>();
  g0.nodes.forEach((n, i) => n.outputs.forEach((y) => y && producer.set(y, i)));
  const outputs = new Set(g0.outputs);
  let g: Graph | undefined;
  const drop = new Set<number>();
  g0.nodes.forEach((act, i) => {
    const p = producer.get(act.inputs[0] ?? '');
    if (p === undefined || drop.has(p)) return;
    const m = g0.nodes[p];
    if ((m.op !== 'Gemm' && m.op !== 'MatMul') || (m.domain !== '' && m.domain !== 'ai.onnx')) return;
    const y = m.outputs[0];
    if (g0.tensors.get(y)?.dtype !== 'float32' || g0.tensors.get(act.outputs[0] ?? '')?.dtype !== 'float32') return;
    const params = foldedActivation(g0, m, act, readers.get(y) ?? 0, outputs);
    if (!params) return;
    g ??= cloneGraph(g0);
    const n = g.nodes[p];
    n.attrs.activation = act.op;
    if (params.length > 0) n.attrs.activationParams = params as AttrValue;
    n.outputs = [act.outputs[0]];
    g.tensors.delete(y);
    drop.add(i);
  });
  if (!g) return g0;
  g.nodes = g.nodes.filter((_, i) => !drop.has(i));
  return g;
}
