// ONNX If. Exporters emit it mostly for conditions computed from shapes (PyTorch's `if x.dim() == 3`, the
// checks of an LSTM's input rank), which are constants once every shape is static: constant folding then
// replaces the If with the nodes of the branch it takes (`takenBranch`, `branchNodes`), nested Ifs included.
// An If whose condition is computed from the data (a score threshold) becomes both branches plus a Where per
// output (`selectIfs`) when both branches give each output the same static shape and dtype: the executor has
// no control flow, and the branches have no side effects, so computing both and selecting is the same result.
// Any other If stays as it is, with the reason in its attribute `notInlined`, and the executor refuses it naming the
// node and that reason (exit 3).
import { FcmError, invalid } from '../../errors.js';
import type { Graph, Node, Tensor } from '../ir.js';
import { newAttrs, numel } from '../ir.js';
import { cloneNode, constNumbers, nodeWhere } from '../util.js';
import type { ShapeOptions } from '../shape.js';

export const isIf = (n: Node) => n.domain === '' && n.op === 'If';

const firstLine = (e: Error) => e.message.split('\n')[0];

/** A branch of an If as the ONNX importer stores it (converters/onnx/import.ts: an IR graph without inputs). */
export function branchOf(g: Graph, n: Node, key: 'then_branch' | 'else_branch'): Graph {
  const v = n.attrs[key];
  const sub = v && typeof v === 'object' && 'graph' in v ? (v.graph as Graph | undefined) : undefined;
  if (!sub || !Array.isArray(sub.nodes) || !(sub.tensors instanceof Map)) throw invalid(nodeWhere(g, n), `has no '${key}' graph`);
  if (sub.outputs.length !== n.outputs.length) {
    throw invalid(nodeWhere(g, n), `${key} has ${sub.outputs.length} outputs, the node ${n.outputs.length}`);
  }
  return sub;
}

/** Why an If cannot be inlined whatever its condition (set by the importer: a branch it could not convert), or undefined. */
const importRefusal = (n: Node) => (typeof n.attrs.notInlined === 'string' ? n.attrs.notInlined : undefined);

/** The branch an If takes when its condition is a constant, else null. */
export function takenBranch(g: Graph, n: Node): Graph | null {
  const c = g.tensors.get(n.inputs[0] ?? '');
  if (!c || c.data === undefined || importRefusal(n) !== undefined) return null;
  const where = nodeWhere(g, n);
  if (numel(c.shape) !== 1) throw invalid(where, `condition '${c.name}' has shape [${c.shape.join(', ')}]; an If takes a single value`);
  return branchOf(g, n, constNumbers(c, where)[0] !== 0 ? 'then_branch' : 'else_branch');
}

/**
 * The nodes that replace `n` by branch `sub`: the branch's nodes, then an Identity from each branch output to
 * the If output `to[i]` (graph passes drop them). The branch's tensors are added to `g`; a name that is already
 * there is refused (ONNX names are unique across a graph and its subgraphs).
 */
export function branchNodes(g: Graph, n: Node, sub: Graph, to: readonly string[]): Node[] {
  for (const [name, t] of sub.tensors) {
    if (g.tensors.has(name)) throw invalid(nodeWhere(g, n), `branch '${sub.name}' redefines tensor '${name}'`);
    g.tensors.set(name, t.data !== undefined ? t : { ...t });
  }
  const out = sub.nodes.map(cloneNode);
  sub.outputs.forEach((y, i) => {
    if (!to[i]) return;
    out.push({ name: `${n.name}/${to[i]}`, op: 'Identity', domain: '', inputs: [y], outputs: [to[i]], attrs: newAttrs() });
  });
  return out;
}

/**
 * Ifs with a condition computed at run time, as both branches and a Where per output (see the header).
 * `fold` is constant folding with shape inference (passed in: it inlines the constant Ifs of the branches).
 * Each If is tried alone; one whose branches disagree on a shape, or fail shape inference, stays.
 */
export function selectIfs(g0: Graph, fold: (g: Graph, opts: ShapeOptions) => Graph, opts: ShapeOptions = {}): Graph {
  let g = g0;
  const tried = new Set<string>();
  for (;;) {
    const n = g.nodes.find((m) => isIf(m) && !tried.has(m.name));
    if (!n) return g;
    tried.add(n.name);
    const r = selectIf(g, n, fold, opts);
    if (typeof r !== 'string') g = r;
    else if (importRefusal(n) === undefined) {
      const i = g.nodes.indexOf(n);
      const kept = cloneNode(n);
      kept.attrs.notInlined = `its condition '${n.inputs[0]}' is computed at run time, and its branches cannot run as a select: ${r}`;
      g = { ...g, nodes: g.nodes.map((m, k) => (k === i ? kept : m)) };
    }
  }
}

/** The graph with `n` as both branches and a select, or why not. */
function selectIf(g: Graph, n: Node, fold: (g: Graph, opts: ShapeOptions) => Graph, opts: ShapeOptions): Graph | string {
  const refused = importRefusal(n);
  if (refused !== undefined) return refused;
  const at = g.nodes.indexOf(n);
  const cand: Graph = { ...g, tensors: new Map(g.tensors), nodes: [...g.nodes] };
  const thenSub = branchOf(g, n, 'then_branch'), elseSub = branchOf(g, n, 'else_branch');
  const thenOut = n.outputs.map((y) => (y ? `${y}/then` : ''));
  const elseOut = n.outputs.map((y) => (y ? `${y}/else` : ''));
  let added: Node[];
  try {
    added = [...branchNodes(cand, n, thenSub, thenOut), ...branchNodes(cand, n, elseSub, elseOut)];
  } catch (e) {
    if (e instanceof FcmError) return firstLine(e);
    throw e;
  }
  n.outputs.forEach((y, i) => {
    if (!y) return;
    for (const x of [thenOut[i], elseOut[i]]) cand.tensors.set(x, { name: x, dtype: 'float32', shape: [], shapeUnknown: true });
    // The select's output shape follows from the branches (compared below), not from what the file recorded for the If.
    const old = cand.tensors.get(y);
    cand.tensors.set(y, { name: y, dtype: old?.dtype ?? 'float32', shape: [], shapeUnknown: true });
    added.push({ name: `${n.name}/select/${y}`, op: 'Where', domain: '', inputs: [n.inputs[0], thenOut[i], elseOut[i]], outputs: [y], attrs: newAttrs() });
  });
  cand.nodes.splice(at, 1, ...added);
  let out: Graph;
  try {
    out = fold(cand, opts);
  } catch (e) {
    if (e instanceof FcmError) return firstLine(e);
    throw e;
  }
  const cond = out.tensors.get(n.inputs[0])!;
  const known = (t: Tensor | undefined): t is Tensor => !!t && !t.shapeUnknown;
  for (let i = 0; i < n.outputs.length; i++) {
    const y = n.outputs[i];
    if (!y) continue;
    const a = out.tensors.get(thenOut[i]), b = out.tensors.get(elseOut[i]);
    if (!known(a) || !known(b)) {
      // The first node whose outputs have no static shape (an op the IR does not know).
      const stuck = out.nodes.find((m) => m.outputs.some((x) => x && out.tensors.get(x)?.shapeUnknown));
      return `the shape of output '${y}' is unknown${stuck ? ` past node '${stuck.name}' (${stuck.op})` : ''}`;
    }
    if (a.dtype !== b.dtype || a.shape.join() !== b.shape.join()) {
      return `output '${y}' is ${a.dtype} [${a.shape.join(', ')}] in then_branch and ${b.dtype} [${b.shape.join(', ')}] in else_branch`;
    }
    // The single-valued condition must not widen the output (a [1] condition against a scalar output).
    if (cond.shapeUnknown || cond.shape.length > a.shape.length) return `the condition has rank ${cond.shape.length}, over output '${y}''s ${a.shape.length}`;
  }
  return out;
}
