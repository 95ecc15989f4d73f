// Structural checks every imported graph passes before any other pass: every input defined, one producer
// per tensor, nodes in topological order (sorted when the file lists them otherwise), no cycles.
import { invalid } from '../errors.js';
import { numel, type Graph, type Node } from './ir.js';

/** Returns `g` with its nodes in topological order (a new graph when they had to be sorted). */
export function validateGraph(g: Graph): Graph {
  const src = g.source;
  const graphInputs = new Set(g.inputs);
  for (const x of g.inputs) if (!g.tensors.has(x)) throw invalid(`${src}: tensor '${x}'`, 'graph input has no tensor description');
  // Every pass and the exporter trust that a constant's values fill its shape exactly.
  for (const t of g.tensors.values()) {
    if (t.data === undefined || t.dtype === 'string') continue;
    const need = numel(t.shape);
    if (t.data.length !== need) throw invalid(`${src}: tensor '${t.name}'`, `holds ${t.data.length} values, but shape [${t.shape.join(', ')}] needs ${need}`);
  }

  // Producers: a graph input or a constant counts as one.
  const producer = new Map<string, number>();
  g.nodes.forEach((n, i) => {
    for (const y of n.outputs) {
      if (!y) continue;
      if (graphInputs.has(y)) throw invalid(`${src}: node '${n.name}'`, `writes tensor '${y}', which is a graph input`);
      if (g.tensors.get(y)?.data !== undefined) throw invalid(`${src}: node '${n.name}'`, `writes tensor '${y}', which is a constant`);
      const other = producer.get(y);
      if (other !== undefined) {
        throw invalid(`${src}: tensor '${y}'`, `written by two nodes, '${g.nodes[other].name}' and '${n.name}'`);
      }
      producer.set(y, i);
    }
  });
  const defined = (x: string) => graphInputs.has(x) || producer.has(x) || g.tensors.get(x)?.data !== undefined;
  for (const n of g.nodes) {
    for (const x of n.inputs) {
      if (x && !defined(x)) throw invalid(`${src}: node '${n.name}'`, `reads tensor '${x}', which no node, input or constant defines`);
    }
  }
  for (const y of g.outputs) if (!defined(y)) throw invalid(`${src}: tensor '${y}'`, 'graph output is never written');

  // Kahn's algorithm, always taking the lowest pending index, so an already sorted list stays as it is.
  const n = g.nodes.length;
  const indegree = new Array<number>(n).fill(0);
  const succ: number[][] = g.nodes.map(() => []);
  g.nodes.forEach((node, i) => {
    const seen = new Set<number>();
    for (const x of node.inputs) {
      const p = x ? producer.get(x) : undefined;
      if (p === undefined || seen.has(p)) continue;
      seen.add(p);
      succ[p].push(i);
      indegree[i]++;
    }
  });
  const ready = new MinHeap();
  for (let i = 0; i < n; i++) if (indegree[i] === 0) ready.push(i);
  const order: number[] = [];
  while (ready.size > 0) {
    const i = ready.pop();
    order.push(i);
    for (const j of succ[i]) if (--indegree[j] === 0) ready.push(j);
  }
  if (order.length < n) throw invalid(`${src}: node '${g.nodes[nodeOnCycle(g, producer, indegree)].name}'`, 'is part of a cycle');
  if (order.every((v, i) => v === i)) return g;
  return { ...g, nodes: order.map((i) => g.nodes[i]) };
}

/** A node on a cycle: walk back through unsorted producers from an unsorted node until one repeats. */
function nodeOnCycle(g: Graph, producer: Map<string, number>, indegree: number[]): number {
  let i = indegree.findIndex((d) => d > 0);
  const visited = new Set<number>();
  while (!visited.has(i)) {
    visited.add(i);
    const node: Node = g.nodes[i];
    const next = node.inputs.map((x) => (x ? producer.get(x) : undefined)).find((p) => p !== undefined && indegree[p] > 0);
    if (next === undefined) break; // cannot happen: an unsorted node has an unsorted producer
    i = next;
  }
  return i;
}

class MinHeap {
  private a: number[] = [];
  get size() { return this.a.length; }
  push(v: number) {
    const a = this.a;
    a.push(v);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (a[p] <= a[i]) break;
      [a[p], a[i]] = [a[i], a[p]];
      i = p;
    }
  }
  pop(): number {
    const a = this.a;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && a[l] < a[m]) m = l;
        if (r < a.length && a[r] < a[m]) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
}
