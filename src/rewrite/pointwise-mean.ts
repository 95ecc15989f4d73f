// foldPointwiseMeans: the head of most compact CNNs (MobileNetV2/V3, MnasNet, EfficientNet, ShuffleNetV2) is a
// pointwise Conv with an activation whose only reader is a global average pool. The Conv wrote [N, F, H, W] only for
// the pool to read it back and average it (at batch 32, 7x7x1280: 8 MB each way in f32), and at batch 1 the pool's
// own dispatch is nearly all overhead. Both become one PointwiseMean node (kernels/pointwise-mean.ts):
//   Conv{act}(x, w, b?) -> GlobalAveragePool                                 =>  PointwiseMean{act}(x, w, b?)
//   Conv{act}(x, w, b?) -> ReduceMean{axes [2, 3] (or [-2, -1]), keepdims}   =>  the same, the ReduceMean's output shape
// out[n, f] = mean over positions p of act(sum_c w[f, c] x[n, c, p] + b[f]): the mean of the activated values.
//
// Legality (pointwiseMeanMatches): the Conv is plain ONNX with one output, pointwise (1x1 weights, stride 1, no
// padding, dilation 1, group 1), with no residual, no channel scale, no activation after a residual and no shuffled
// store (src/rewrite/shuffle-conv.ts, which runs after this pass), and any
// activation the epilogues take; its output is read only by the pool, as the pool's data input, and is no graph
// output; the pool is plain ONNX with one output, a GlobalAveragePool of a 4-D tensor or a ReduceMean of one whose
// constant axes are exactly H and W (either keepdims); every tensor is float32. No cycle can arise: the node reads
// only what the Conv read, and takes the pool's place. There is no cost choice: the fold saves a dispatch and a
// write and read of the Conv's output; FCM_OPT_FOLD_POOL=0 (src/pipeline/pipeline.ts) turns it off to measure it.
// Float executor only: the integer pipeline never runs this pass (its head keeps the quantized Conv and mean).
// Arithmetic: the kernel sums the positions in another order than the pool kernel, so results agree within rounding.

import { type AttrValue, type Graph, type Node, hasExecutorLayout, newAttrs } from '../graph/ir.js';
import { cloneGraph } from '../graph/util.js';

const plain = (n: Node) => n.domain === '' || n.domain === 'ai.onnx';
const intsOf = (v: AttrValue | undefined): number[] | undefined => (Array.isArray(v) ? (v as number[]) : undefined);

/** A Conv with 1x1 weights, stride 1, no padding, dilation 1, group 1, no residual, no channel scale, one output. */
export function isPlainPointwiseConv(g: Graph, n: Node): boolean {
  if (n.op !== 'Conv' || !plain(n) || n.outputs.length !== 1 || !n.outputs[0]) return false;
  // No residual (3), channel scale (4) or other extra input, no activation after a residual, no shuffled store
  // (src/rewrite/shuffle-conv.ts runs after this pass; a Conv with one writes channels elsewhere).
  if (n.inputs.slice(3).some((x) => x) || n.attrs.activationPost !== undefined || hasExecutorLayout(n)) return false;
  const w = g.tensors.get(n.inputs[1] ?? '')?.shape;
  if (!w || w.length !== 4 || w[2] !== 1 || w[3] !== 1) return false;
  const all = (k: string, len: number, v: number) => { const a = intsOf(n.attrs[k]); return a === undefined || (a.length === len && a.every((x) => x === v)); };
  const k = intsOf(n.attrs.kernel);
  if (k !== undefined && (k.length !== 2 || k[0] !== 1 || k[1] !== 1)) return false;
  return all('strides', 2, 1) && all('pads', 4, 0) && all('dilations', 2, 1) && (n.attrs.group === undefined || n.attrs.group === 1);
}

/** Whether `pool` averages exactly the spatial axes (2 and 3) of its 4-D input. */
export function averagesSpatialAxes(g: Graph, pool: Node): boolean {
  if (!plain(pool) || pool.outputs.length !== 1 || !pool.outputs[0]) return false;
  const x = g.tensors.get(pool.inputs[0] ?? '');
  if (!x || x.shape.length !== 4) return false;
  if (pool.op === 'GlobalAveragePool') return true;
  if (pool.op !== 'ReduceMean') return false;
  // Axes given as an input are copied into the attribute once constant (src/graph/passes/normalize-attrs.ts).
  const axes = intsOf(pool.attrs.axes);
  if (!axes || axes.length !== 2) return false;
  const norm = new Set(axes.map((a) => (a < 0 ? a + 4 : a)));
  const keep = pool.attrs.keepdims;
  return norm.has(2) && norm.has(3) && (keep === undefined || keep === 0 || keep === 1);
}

export interface PointwiseMeanMatch { conv: Node; pool: Node }

/** Every legal Conv -> pool pair of `g` (for the fold, the tests and the bench). */
export function pointwiseMeanMatches(g: Graph): PointwiseMeanMatch[] {
  const readers = new Map<string, Node[]>();
  for (const n of g.nodes) for (const x of new Set(n.inputs)) if (x) (readers.get(x) ?? readers.set(x, []).get(x)!).push(n);
  const outputs = new Set(g.outputs);
  const f32 = (name: string | undefined) => !name || g.tensors.get(name)?.dtype === 'float32';
  const out: PointwiseMeanMatch[] = [];
  for (const conv of g.nodes) {
    if (!isPlainPointwiseConv(g, conv)) continue;
    const a = conv.attrs.activation;
    if (a !== undefined && typeof a !== 'string') continue;
    const y = conv.outputs[0];
    const rs = readers.get(y) ?? [];
    if (outputs.has(y) || rs.length !== 1) continue;
    const pool = rs[0];
    if (pool.inputs[0] !== y || pool.inputs.indexOf(y, 1) >= 0 || !averagesSpatialAxes(g, pool)) continue;
    if (![...conv.inputs, y, pool.outputs[0]].every(f32)) continue;
    out.push({ conv, pool });
  }
  return out;
}

export function foldPointwiseMeans(g0: Graph): Graph {
  const ms = pointwiseMeanMatches(g0);
  if (!ms.length) return g0;
  const g = cloneGraph(g0);
  const at = new Map(g0.nodes.map((n, i) => [n, i]));
  const replace = new Map<number, Node>();
  const drop = new Set<number>();
  for (const { conv, pool } of ms) {
    const attrs = newAttrs();
    const act = conv.attrs.activation, params = conv.attrs.activationParams;
    if (act !== undefined) attrs.activation = act;
    if (params !== undefined) attrs.activationParams = Array.isArray(params) ? ([...params] as AttrValue) : params;
    const node: Node = {
      name: `${conv.name}+${pool.name}`, op: 'PointwiseMean', domain: '',
      inputs: [conv.inputs[0], conv.inputs[1], conv.inputs[2] ?? ''], outputs: [pool.outputs[0]], attrs,
    };
    // The node takes the pool's place: what it reads was computed before the Conv.
    drop.add(at.get(conv)!);
    replace.set(at.get(pool)!, node);
    g.tensors.delete(conv.outputs[0]);
  }
  g.nodes = g.nodes.flatMap((n, i) => (drop.has(i) ? [] : [replace.get(i) ?? n]));
  return g;
}
