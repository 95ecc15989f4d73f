// foldTransposesIntoConvs: a pointwise Conv whose only reader is a Transpose to channels-last becomes that Conv with a
// channels-last store (kernels/pointwise.ts DotGeom.channelsLast): the thread that computes element (n, f, p) stores
// it at [n, p, f]. Detection heads end so: SSD's, BlazeFace's and MediaPipe's box and score heads are 1x1 convs whose
// NCHW outputs are turned to NHWC, reshaped to [N, anchors, k] and concatenated. At batch 1 each Transpose is a
// dispatch that costs what the small conv before it does; with the fold its tensor is written once, in place, and
// the Concat after the Reshape takes it as a block (src/runtime/views.ts).
//   Conv(x, w, b?, '', s?) -> c;  Transpose{perm [0, 2, 3, 1]}(c) -> t
//   =>  Conv{channelsLast 1}(x, w, b?, '', s?) -> t
// and the same for a DW-PW FCM (kernels/fused-dwpw.ts), whose second layer is the pointwise conv: the planner fuses
// some heads with the depthwise conv before them (MediaPipe's pose detector: 4 of its 6 heads); and for the ops whose
// kernel stores each output element once at its flat index (element-wise ops, pools, Slice: kernels/registry.ts
// channelsLastFlat), which end the classifier heads of TensorFlow-converted models (a pool, then NHWC for Flatten).
// Pattern and rules (channelsLastMatch), separate from the choice to apply them (always, where the rules hold: one
// dispatch less and no tensor written twice; FCM_OPT_CHANNELS_LAST=0 in the environment turns the fold off, for A/B):
//   - the Transpose is default-domain, perm [0, 2, 3, 1], one input c and one output t, both float32 of known 4-D
//     shapes, t's [N, H, W, F] for c's [N, F, H, W];
//   - c is the only output of a default-domain pointwise Conv (weights [F, C, 1, 1], strides 1, no pads, dilations 1,
//     group 1) with no shuffled or channels-last store and no residual (the kernel reads a residual at the output's
//     NCHW index; no head has one), of a FusedDwPw with no channels-last store and no residual, or of a
//     default-domain op of flatStoreOps;
//   - c has exactly one reader, the Transpose, and is no graph output (it is never written).
// The producer takes the Transpose's place in the node list: its inputs come before its old place and t is read
// after the Transpose, so the list stays topological. FCMs are planned before this pass; a head fused into a PW-DW or
// PW-PW FCM keeps its Transpose (no such kernel stores channels-last). Float graphs only (src/pipeline/pipeline.ts): the
// integer registry refuses the attribute.

import type { AttrValue, Graph, Node } from '../graph/ir.js';
import { fcmDomain, newAttrs } from '../graph/ir.js';
import { cloneGraph } from '../graph/util.js';

const plain = (n: Node) => n.domain === '' || n.domain === 'ai.onnx';
const ints = (v: AttrValue | undefined): number[] | undefined => (Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined);
const same = (a: readonly number[] | undefined, b: readonly number[] | undefined) => !!a && !!b && a.length === b.length && a.every((v, i) => v === b[i]);

/** Whether the fold runs: FCM_OPT_CHANNELS_LAST=0 in the environment turns it off (A/B timing in one build). */
export function channelsLastEnabled(): boolean {
  return !(typeof process !== 'undefined' && process.env?.FCM_OPT_CHANNELS_LAST === '0');
}

/** A Transpose the rules admit: its index and its producer's (a Conv or a FusedDwPw). */
export interface ChannelsLastMatch { transpose: number; conv: number }

/** Whether `n` is a default-domain pointwise Conv of `g` with a plain store and no residual. */
function isPlainPointwise(g: Graph, n: Node): boolean {
  if (!plain(n) || n.op !== 'Conv' || n.attrs.shuffleGroups !== undefined || n.attrs.channelsLast !== undefined) return false;
  if (n.inputs[3] || n.inputs.length > 5) return false;
  const w = g.tensors.get(n.inputs[1] ?? '');
  if (!w || w.shapeUnknown || w.shape.length !== 4 || w.shape[2] !== 1 || w.shape[3] !== 1) return false;
  const all = (k: string, len: number, v: number) => { const a = ints(n.attrs[k]); return a === undefined || (a.length === len && a.every((x) => x === v)); };
  return all('kernel', 2, 1) && all('strides', 2, 1) && all('pads', 4, 0) && all('dilations', 2, 1) && (n.attrs.group === undefined || n.attrs.group === 1);
}

/** Whether `n` is a DW-PW FCM (its last layer a pointwise conv) with a plain store and no residual. */
const isPlainDwPw = (n: Node) => n.domain === fcmDomain && n.op === 'FusedDwPw' && n.attrs.channelsLast === undefined && !n.inputs[5] && n.inputs.length <= 6;

/**
 * Ops whose float kernel runs one invocation per output element and stores it once at its flat index (kernels/
 * registry.ts channelsLastFlat stores those channels-last): element-wise ops, pools, Slice.
 */
export const flatStoreOps: ReadonlySet<string> = new Set([
  'Relu', 'Clip', 'HardSwish', 'HardSigmoid', 'Sigmoid', 'SiLU', 'LeakyRelu', 'Tanh', 'Abs', 'Neg', 'Exp', 'Log', 'Sqrt',
  'Reciprocal', 'Floor', 'Ceil', 'Add', 'Sub', 'Mul', 'Div', 'PRelu', 'Pow', 'MaxPool', 'AveragePool', 'Slice',
]);

const isFlatStore = (n: Node) => plain(n) && flatStoreOps.has(n.op) && n.attrs.channelsLast === undefined;

/**
 * The rules above for node `ti` of `g`: a match, or why not (a short reason, for tests and diagnostics).
 * `producer` and `readers` map tensor names to node indices (readers without repeats).
 */
export function channelsLastMatch(g: Graph, ti: number, producer: ReadonlyMap<string, number>, readers: ReadonlyMap<string, readonly number[]>): ChannelsLastMatch | string {
  const t = g.nodes[ti];
  if (!plain(t) || t.op !== 'Transpose') return 'not a Transpose';
  if (!same(ints(t.attrs.perm), [0, 2, 3, 1])) return 'perm is not [0,2,3,1]';
  if (t.inputs.length !== 1 || t.outputs.length !== 1 || !t.inputs[0] || !t.outputs[0]) return 'not one input and one output';
  const c = t.inputs[0], y = t.outputs[0];
  const tc = g.tensors.get(c), ty = g.tensors.get(y);
  if (!tc || !ty || tc.shapeUnknown || ty.shapeUnknown || tc.dtype !== 'float32' || ty.dtype !== 'float32') return 'tensors not float32 of known shape';
  if (tc.shape.length !== 4) return 'not a 4-D tensor';
  const [N, F, H, W] = tc.shape;
  if (!same(ty.shape, [N, H, W, F])) return 'output shape is not the input\'s channels-last';
  const ci = producer.get(c);
  const conv = ci === undefined ? undefined : g.nodes[ci];
  if (!conv || !(isPlainPointwise(g, conv) || isPlainDwPw(conv) || isFlatStore(conv))) return 'the input is no plain pointwise Conv\'s or DW-PW FCM\'s output, nor an element-wise op\'s, a pool\'s or a Slice\'s';
  if (conv.outputs.length !== 1 || conv.outputs[0] !== c) return 'the producer has other outputs';
  if (g.outputs.includes(c)) return 'the Conv\'s output is a graph output';
  const r = readers.get(c) ?? [];
  if (r.length !== 1 || r[0] !== ti) return 'the Conv\'s output has another reader';
  return { transpose: ti, conv: ci! };
}

export function foldTransposesIntoConvs(g0: Graph): Graph {
  if (!g0.nodes.some((n) => n.op === 'Transpose')) return g0;
  const producer = new Map<string, number>();
  g0.nodes.forEach((n, i) => n.outputs.forEach((y) => y && producer.set(y, i)));
  const readers = new Map<string, number[]>();
  g0.nodes.forEach((n, i) => { for (const x of new Set(n.inputs)) if (x) (readers.get(x) ?? readers.set(x, []).get(x)!).push(i); });
  const matches = g0.nodes.map((_, i) => channelsLastMatch(g0, i, producer, readers)).filter((m): m is ChannelsLastMatch => typeof m !== 'string');
  if (!matches.length) return g0;
  const g = cloneGraph(g0);
  const place = new Map<number, Node>();
  const drop = new Set<number>();
  for (const m of matches) {
    const conv = g0.nodes[m.conv], t = g0.nodes[m.transpose];
    place.set(m.transpose, { name: conv.name, op: conv.op, domain: conv.domain, inputs: [...conv.inputs], outputs: [...t.outputs], attrs: newAttrs({ ...conv.attrs, channelsLast: 1 }) });
    drop.add(m.conv);
    g.tensors.delete(conv.outputs[0]);
  }
  g.nodes = g.nodes.flatMap((n, i) => (place.has(i) ? [place.get(i)!] : drop.has(i) ? [] : [n]));
  return g;
}
