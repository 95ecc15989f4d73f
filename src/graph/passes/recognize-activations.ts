// Exporters spell some activations out in elementary ops; recognize them as one op so that they can be a
// conv epilogue:
//   HardSwish   x * Clip(x + 3, 0, 6) / 6     (Add -> Clip -> Mul -> Div, PyTorch < opset 14 and PaddleOCR;
//                                              the Div may be a Mul by 1/6)
//               x * HardSigmoid(x), alpha 1/6, beta 0.5   (also after the HardSigmoid rewrite below, which
//                                              covers Add -> Clip -> Div -> Mul)
//   HardSigmoid Clip(x + 3, 0, 6) / 6         (or * 1/6): alpha 1/6, beta 0.5
//   SiLU        x * Sigmoid(x)
// Only when every intermediate tensor has this pattern as its single consumer and is no graph output.
// The new node takes the name and output of the pattern's last node, at its position.
import type { Graph, Node } from '../ir.js';
import { consumers, isKnownOp, newAttrs, numel, producers } from '../ir.js';
import { cloneGraph, constNumbers } from '../util.js';

interface Ctx {
  g: Graph;
  prod: Map<string, number>;
  cons: Map<string, number[]>;
  used: Set<number>;
}

type Pattern = (ctx: Ctx, i: number) => { x: string; nodes: number[]; op: 'HardSwish' | 'HardSigmoid' | 'SiLU' } | null;

export function recognizeActivations(g0: Graph): Graph {
  let g = cloneGraph(g0);
  // HardSwish with the Mul first must go before HardSigmoid, which would otherwise never match it anyway;
  // x * HardSigmoid(x) goes last so that it sees the HardSigmoids recognized just before.
  for (const p of [hardSwishMulThenDiv, hardSigmoidSpelled, hardSwishOfHardSigmoid, siluSpelled]) g = rewriteAll(g, p);
  return g;
}

function rewriteAll(g: Graph, pattern: Pattern): Graph {
  const ctx: Ctx = { g, prod: producers(g), cons: consumers(g), used: new Set() };
  const replaced = new Map<number, Node>();
  const removed = new Set<number>();
  g.nodes.forEach((_, i) => {
    if (ctx.used.has(i)) return;
    const m = pattern(ctx, i);
    if (!m) return;
    const last = g.nodes[i];
    for (const j of m.nodes) ctx.used.add(j);
    for (const j of m.nodes) if (j !== i) removed.add(j);
    const attrs = m.op === 'HardSigmoid' ? newAttrs({ alpha: 1 / 6, beta: 0.5 }) : newAttrs();
    replaced.set(i, { name: last.name, op: m.op, domain: '', inputs: [m.x], outputs: [last.outputs[0]], attrs });
  });
  if (replaced.size === 0) return g;
  const nodes: Node[] = [];
  g.nodes.forEach((n, i) => {
    if (removed.has(i)) {
      for (const y of n.outputs) if (y) g.tensors.delete(y);
      return;
    }
    nodes.push(replaced.get(i) ?? n);
  });
  return { ...g, nodes };
}

// ---- matching helpers ----

const near = (v: number | undefined, want: number) => v !== undefined && Math.abs(v - want) <= 1e-5 * Math.max(1, Math.abs(want));

function op(ctx: Ctx, i: number, name: string): Node | undefined {
  const n = ctx.g.nodes[i];
  return n && isKnownOp(n) && n.op === name && !ctx.used.has(i) ? n : undefined;
}

/** The producer of an intermediate tensor when it is `opName` and the tensor has exactly one reader. */
function single(ctx: Ctx, tensor: string, opName: string): number | undefined {
  const p = ctx.prod.get(tensor);
  if (p === undefined || !op(ctx, p, opName)) return undefined;
  if ((ctx.cons.get(tensor) ?? []).length !== 1 || ctx.g.outputs.includes(tensor)) return undefined;
  return p;
}

/** The value of a one-element constant (one that cannot broadcast the other operand to a larger shape). */
function scalar(ctx: Ctx, name: string, other: string): number | undefined {
  const t = ctx.g.tensors.get(name);
  if (!t?.data || numel(t.shape) !== 1) return undefined;
  const o = ctx.g.tensors.get(other);
  if (t.shape.length > 1 && (!o || o.shapeUnknown || o.shape.length < t.shape.length)) return undefined;
  if (t.dtype !== 'float32' && t.dtype !== 'float64' && t.dtype !== 'float16') return undefined;
  return constNumbers(t, name)[0];
}

/** For a binary op node: the non-constant operand when the other is the scalar `value`. */
function withScalar(ctx: Ctx, n: Node, value: number, commutative: boolean): string | undefined {
  const [a, b] = n.inputs;
  if (near(scalar(ctx, b, a), value)) return a;
  if (commutative && near(scalar(ctx, a, b), value)) return b;
  return undefined;
}

/** Clip(x + 3, 0, 6) producing `c`: returns x and the node indices [add, clip]. */
function clipXPlus3(ctx: Ctx, c: string): { x: string; nodes: number[] } | undefined {
  const ci = single(ctx, c, 'Clip');
  if (ci === undefined) return undefined;
  const clip = ctx.g.nodes[ci];
  if (clip.inputs.length !== 1 || !near(clip.attrs.min as number, 0) || !near(clip.attrs.max as number, 6)) return undefined;
  const ai = single(ctx, clip.inputs[0], 'Add');
  if (ai === undefined) return undefined;
  const x = withScalar(ctx, ctx.g.nodes[ai], 3, true);
  return x ? { x, nodes: [ai, ci] } : undefined;
}

/** `n` is Div(v, 6) or Mul(v, 1/6): returns v. */
function divideBy6(ctx: Ctx, n: Node): string | undefined {
  if (n.op === 'Div') return withScalar(ctx, n, 6, false);
  if (n.op === 'Mul') return withScalar(ctx, n, 1 / 6, true);
  return undefined;
}

// ---- patterns (i = index of the pattern's last node) ----

const hardSwishMulThenDiv: Pattern = (ctx, i) => {
  const last = op(ctx, i, 'Div') ?? op(ctx, i, 'Mul');
  if (!last) return null;
  const m = divideBy6(ctx, last);
  if (!m) return null;
  const mi = single(ctx, m, 'Mul');
  if (mi === undefined) return null;
  const [p, q] = ctx.g.nodes[mi].inputs;
  for (const [x, c] of [[p, q], [q, p]]) {
    const inner = clipXPlus3(ctx, c);
    if (inner && inner.x === x) return { x, nodes: [...inner.nodes, mi, i], op: 'HardSwish' };
  }
  return null;
};

const hardSigmoidSpelled: Pattern = (ctx, i) => {
  const last = op(ctx, i, 'Div') ?? op(ctx, i, 'Mul');
  if (!last) return null;
  const c = divideBy6(ctx, last);
  const inner = c ? clipXPlus3(ctx, c) : undefined;
  return inner ? { x: inner.x, nodes: [...inner.nodes, i], op: 'HardSigmoid' } : null;
};

const hardSwishOfHardSigmoid: Pattern = (ctx, i) => {
  const mul = op(ctx, i, 'Mul');
  if (!mul) return null;
  const [p, q] = mul.inputs;
  for (const [x, h] of [[p, q], [q, p]]) {
    const hi = single(ctx, h, 'HardSigmoid');
    if (hi === undefined) continue;
    const hs = ctx.g.nodes[hi];
    if (hs.inputs[0] === x && near(hs.attrs.alpha as number ?? 0.2, 1 / 6) && near(hs.attrs.beta as number ?? 0.5, 0.5)) {
      return { x, nodes: [hi, i], op: 'HardSwish' };
    }
  }
  return null;
};

const siluSpelled: Pattern = (ctx, i) => {
  const mul = op(ctx, i, 'Mul');
  if (!mul) return null;
  const [p, q] = mul.inputs;
  for (const [x, s] of [[p, q], [q, p]]) {
    const si = single(ctx, s, 'Sigmoid');
    if (si !== undefined && ctx.g.nodes[si].inputs[0] === x) return { x, nodes: [si, i], op: 'SiLU' };
  }
  return null;
};
