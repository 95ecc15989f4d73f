// foldShufflesIntoConvs: a ChannelShuffle (src/rewrite/channel-shuffle.ts) of two branches of which the second is a
// pointwise Conv's output becomes that Conv with a shuffled store (kernels/pointwise.ts DotGeom.shuffleOuts): the
// thread that stores the conv's element (n, f, p) stores it at shuffled channel 2f + 1 and copies the first branch's
// element (n, f, p) to channel 2f, writing the ChannelShuffle's outputs. ShuffleNetV2 ends every block so (the
// branch's last 1x1 + ReLU); at batch 1 the shuffle's own dispatch costs about what a small conv's does, and its
// reads and the conv's output tensor disappear with it.
//   Conv(x, w, b?, r?, s?) -> c;  ChannelShuffle{groups 2}(a, c) -> (y_0, .., y_k)
//   =>  Conv{shuffleGroups 2}(x, w, b?, r?, s?, a) -> (y_0, .., y_k)
// Pattern and rules (shuffleConvMatch), separate from the choice to apply them (always, where the rules hold: one
// dispatch less and fewer bytes moved; FCM_OPT_SHUFFLE_CONV=0 in the environment turns the fold off, for A/B runs):
//   - the ChannelShuffle is default-domain, groups 2, exactly two inputs [a, c], a !== c, both float32 of one known
//     4-D shape [N, F, H, W];
//   - c is the only output of a default-domain pointwise Conv (weights [F, C, 1, 1], strides 1, no pads, dilations 1,
//     group 1) that has no shuffled store yet and at most 5 inputs (input 5 is the new one);
//   - c has exactly one reader, the ChannelShuffle, and is no graph output (it is never written);
//   - the Conv's bindings (x, w, bias?, residual?, scale, a) plus the shuffle's outputs stay within WebGPU's 8
//     guaranteed storage buffers per stage (the scale counted whether or not the Conv has one yet:
//     src/rewrite/channel-scale.ts may add it after this pass).
// The Conv takes the ChannelShuffle's place in the node list: its own inputs come before the old Conv, `a` before
// the shuffle, and the outputs are read after it, so the list stays topological. FCMs are planned before this pass;
// a conv fused into one is no Conv node here and its shuffle stays. Float graphs only: src/pipeline/pipeline.ts
// applies it last of the float folds (after foldChannelShuffles; no pass before it meets the new form; the session's
// foldChannelScales after it keeps input 5) on fp32 / fp16 graphs, never on the integer executor's graph (whose
// registry entry refuses a Conv with shuffleGroups).

import type { AttrValue, Graph, Node } from '../graph/ir.js';
import { hasExecutorLayout, newAttrs } from '../graph/ir.js';
import { cloneGraph } from '../graph/util.js';

const maxBindings = 8;

const plain = (n: Node) => n.domain === '' || n.domain === 'ai.onnx';
const ints = (v: AttrValue | undefined): number[] | undefined => (Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined);
const same = (a: readonly number[] | undefined, b: readonly number[] | undefined) => !!a && !!b && a.length === b.length && a.every((v, i) => v === b[i]);

/** Whether the fold runs: FCM_OPT_SHUFFLE_CONV=0 in the environment turns it off (A/B timing in one build). */
export function shuffleConvEnabled(): boolean {
  return !(typeof process !== 'undefined' && process.env?.FCM_OPT_SHUFFLE_CONV === '0');
}

/** A ChannelShuffle the rule admits: its index, the Conv's index, and the partner input `a`. */
export interface ShuffleConvMatch { shuffle: number; conv: number; a: string }

/** Whether `n` is a default-domain pointwise Conv of `g` without a shuffled store. */
function isPlainPointwise(g: Graph, n: Node): boolean {
  if (!plain(n) || n.op !== 'Conv' || hasExecutorLayout(n)) return false;
  const w = g.tensors.get(n.inputs[1] ?? '');
  if (!w || w.shapeUnknown || w.shape.length !== 4 || w.shape[2] !== 1 || w.shape[3] !== 1) return false;
  const all = (k: string, len: number, v: number) => { const a = ints(n.attrs[k]); return a === undefined || (a.length === len && a.every((x) => x === v)); };
  return all('kernel', 2, 1) && all('strides', 2, 1) && all('pads', 4, 0) && all('dilations', 2, 1) && (n.attrs.group === undefined || n.attrs.group === 1);
}

/**
 * The rules above for node `si` of `g`: a match, or why not (a short reason, for tests and diagnostics).
 * `producer` and `readers` map tensor names to node indices (readers without repeats).
 */
export function shuffleConvMatch(g: Graph, si: number, producer: ReadonlyMap<string, number>, readers: ReadonlyMap<string, readonly number[]>): ShuffleConvMatch | string {
  const s = g.nodes[si];
  if (!plain(s) || s.op !== 'ChannelShuffle') return 'not a ChannelShuffle';
  if (s.attrs.groups !== 2) return `groups ${String(s.attrs.groups)}, not 2`;
  if (s.inputs.length !== 2 || s.inputs.some((x) => !x)) return 'not two inputs';
  const [a, c] = s.inputs;
  if (a === c) return 'both inputs are one tensor';
  const ta = g.tensors.get(a), tc = g.tensors.get(c);
  if (!ta || !tc || ta.shapeUnknown || tc.shapeUnknown || ta.dtype !== 'float32' || tc.dtype !== 'float32') return 'inputs not float32 of known shape';
  if (tc.shape.length !== 4 || !same(ta.shape, tc.shape)) return 'the inputs differ in shape';
  const ci = producer.get(c);
  const conv = ci === undefined ? undefined : g.nodes[ci];
  if (!conv || !isPlainPointwise(g, conv)) return 'the second input is no pointwise Conv\'s output';
  if (conv.outputs.length !== 1 || conv.outputs[0] !== c || conv.inputs.length > 5) return 'the Conv has other outputs or inputs';
  if (g.outputs.includes(c)) return 'the Conv\'s output is a graph output';
  const r = readers.get(c) ?? [];
  if (r.length !== 1 || r[0] !== si) return 'the Conv\'s output has another reader';
  // A free channel-scale slot counts too: foldChannelScales runs after this pass and may fill it.
  const bindings = conv.inputs.filter((x) => x).length + (conv.inputs[4] ? 0 : 1) + 1 + s.outputs.length;
  if (bindings > maxBindings) return `${bindings} storage bindings, over ${maxBindings}`;
  return { shuffle: si, conv: ci!, a };
}

export function foldShufflesIntoConvs(g0: Graph): Graph {
  if (!g0.nodes.some((n) => n.op === 'ChannelShuffle')) return g0;
  const producer = new Map<string, number>();
  g0.nodes.forEach((n, i) => n.outputs.forEach((y) => y && producer.set(y, i)));
  const readers = new Map<string, number[]>();
  g0.nodes.forEach((n, i) => { for (const x of new Set(n.inputs)) if (x) (readers.get(x) ?? readers.set(x, []).get(x)!).push(i); });
  const matches = g0.nodes.map((_, i) => shuffleConvMatch(g0, i, producer, readers)).filter((m): m is ShuffleConvMatch => typeof m !== 'string');
  if (!matches.length) return g0;
  const g = cloneGraph(g0);
  const place = new Map<number, Node>();
  const drop = new Set<number>();
  for (const m of matches) {
    const conv = g0.nodes[m.conv], s = g0.nodes[m.shuffle];
    const inputs = [...conv.inputs];
    while (inputs.length < 5) inputs.push('');
    inputs.push(m.a);
    place.set(m.shuffle, { name: conv.name, op: 'Conv', domain: conv.domain, inputs, outputs: [...s.outputs], attrs: newAttrs({ ...conv.attrs, shuffleGroups: 2 }) });
    drop.add(m.conv);
    g.tensors.delete(conv.outputs[0]);
  }
  g.nodes = g.nodes.flatMap((n, i) => (place.has(i) ? [place.get(i)!] : drop.has(i) ? [] : [n]));
  return g;
}
