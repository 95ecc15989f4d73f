// foldChannelShuffles: ShuffleNet's block tail, Concat of the branches -> channel shuffle -> Split (or Slices) of the
// next block, as one ChannelShuffle node (kernels/channel-shuffle.ts): one dispatch instead of a copy per Concat input,
// the Transpose and a copy per Split output (5 dispatches in a stride-1 ShuffleNetV2 block, 3 in a down-sampling one).
//   [Concat(axis 1)] -> Reshape [N,g,C/g,H,W] -> Transpose [0,2,1,3,4] -> Reshape [N,C,H,W] -> [Split(axis 1) | Slices]
//   =>  ChannelShuffle{groups: g}(concat inputs | x) -> (split outputs | slice outputs | the shuffled tensor)
// The Reshapes are aliases already; what goes is the copying around them. Why a fused node rather than views (the
// Concat as write offsets of its producers, the Split as read offsets of its readers): a binding offset must be a
// multiple of 256 bytes, which a channel range of [N, C, H, W] is not in general (58 channels of 28x28 f32), so
// views would need an offset in every producer's and reader's kernel; this node needs no kernel but its own.
// Legality: the shuffle is exactly the pattern above (5-D shapes [N,g,C/g,H,W] and [N,C/g,g,H,W] between 4-D [N,C,H,W]);
// each tensor that disappears (the Concat output, both 5-D tensors, the shuffled tensor when its Split or Slices fold)
// has exactly the readers named here and is no graph output. The Concat folds when it is on axis 1 of 4-D tensors;
// the Split when it is the shuffled tensor's only reader, on axis 1, every output named; Slices when they are all its
// readers, each one range of channels (axis 1, step 1) and together every channel once. Inputs plus outputs stay
// within WebGPU's guaranteed 8 storage buffers per stage (else the Concat or the split stays as it was). The node
// takes the second Reshape's place: its inputs are computed before the Concat, its outputs read after the Split or
// Slices, so the node list stays topological. Float graphs only (no integer kernel).

import type { AttrValue, Graph, Node } from '../graph/ir.js';
import { newAttrs } from '../graph/ir.js';
import { cloneGraph } from '../graph/util.js';

/** WebGPU's guaranteed maxStorageBuffersPerShaderStage. */
const maxBindings = 8;

const plain = (n: Node) => n.domain === '' || n.domain === 'ai.onnx';
const ints = (v: AttrValue | undefined): number[] | undefined => (Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined);
const same = (a: readonly number[] | undefined, b: readonly number[]) => !!a && a.length === b.length && a.every((v, i) => v === b[i]);

/** The channel range [start, end) a Slice of a 4-D tensor of C channels takes, when it takes whole channels only. */
function channelRange(n: Node, C: number): [number, number] | undefined {
  const starts = ints(n.attrs.starts), ends = ints(n.attrs.ends), axes = ints(n.attrs.axes) ?? starts?.map((_, k) => k), steps = ints(n.attrs.steps) ?? starts?.map(() => 1);
  if (!starts || !ends || !axes || !steps || starts.length !== 1 || ends.length !== 1 || axes.length !== 1 || steps.length !== 1) return undefined;
  if ((axes[0] !== 1 && axes[0] !== -3) || steps[0] !== 1) return undefined;
  const clamp = (v: number) => Math.min(C, Math.max(0, v < 0 ? v + C : v));
  const s = clamp(starts[0]), e = clamp(ends[0]);
  return e > s ? [s, e] : undefined;
}

export function foldChannelShuffles(g0: Graph): Graph {
  const readers = new Map<string, number[]>();
  g0.nodes.forEach((n, i) => { for (const x of new Set(n.inputs)) if (x) (readers.get(x) ?? readers.set(x, []).get(x)!).push(i); });
  const producer = new Map<string, number>();
  g0.nodes.forEach((n, i) => n.outputs.forEach((y) => y && producer.set(y, i)));
  const outputs = new Set(g0.outputs);
  const shape = (t: string) => { const x = g0.tensors.get(t); return x && !x.shapeUnknown ? x.shape : undefined; };
  const float = (t: string) => g0.tensors.get(t)?.dtype === 'float32';
  /** The one reader of `t`, when it has one and is no graph output. */
  const soleReader = (t: string) => { const r = readers.get(t) ?? []; return !outputs.has(t) && r.length === 1 ? r[0] : undefined; };
  const nodeOf = (i: number | undefined) => (i === undefined ? undefined : g0.nodes[i]);

  let g: Graph | undefined;
  const drop = new Set<number>();
  const place = new Map<number, Node>();
  g0.nodes.forEach((t, ti) => {
    if (!plain(t) || t.op !== 'Transpose' || !same(ints(t.attrs.perm), [0, 2, 1, 3, 4]) || t.outputs.length !== 1) return;
    const a = t.inputs[0], b = t.outputs[0];
    const ri = producer.get(a), r1 = nodeOf(ri);
    const r2i = soleReader(b), r2 = nodeOf(r2i);
    if (!r1 || !r2 || r1.op !== 'Reshape' || r2.op !== 'Reshape' || !plain(r1) || !plain(r2) || soleReader(a) !== ti) return;
    if (drop.has(ri!) || drop.has(ti) || drop.has(r2i!)) return;
    const x = r1.inputs[0], y = r2.outputs[0];
    const xs = shape(x), as = shape(a), bs = shape(b), ys = shape(y);
    if (!xs || !as || !bs || !ys || xs.length !== 4 || !same(ys, xs) || ![x, a, b, y].every(float)) return;
    const [N, C, H, W] = xs, G = as[1];
    if (!(G >= 1 && C % G === 0) || !same(as, [N, G, C / G, H, W]) || !same(bs, [N, C / G, G, H, W])) return;

    // Inputs: the Concat's when it folds, else x.
    let ins = [x];
    const ci = soleReader(x) === ri ? producer.get(x) : undefined, cat = nodeOf(ci);
    if (cat && plain(cat) && cat.op === 'Concat' && (cat.attrs.axis === 1 || cat.attrs.axis === -3) && !drop.has(ci!)) {
      const parts = cat.inputs.filter((s) => s);
      if (parts.every((s) => { const p = shape(s); return p && p.length === 4 && p[0] === N && p[2] === H && p[3] === W && float(s); })) ins = parts;
    }
    // Outputs: the Split's or the Slices' when they fold, else y.
    let outs = [y];
    const yr = outputs.has(y) ? [] : (readers.get(y) ?? []);
    const split = yr.length === 1 ? g0.nodes[yr[0]] : undefined;
    const channels = (s: string) => { const p = shape(s); return p && p.length === 4 && p[0] === N && p[2] === H && p[3] === W && float(s) ? p[1] : undefined; };
    if (split && plain(split) && split.op === 'Split' && (split.attrs.axis === 1 || split.attrs.axis === -3) && split.inputs[0] === y) {
      const sizes = split.outputs.map((s) => (s ? channels(s) : undefined));
      if (sizes.length > 0 && sizes.every((c) => c !== undefined) && sizes.reduce((q, c) => q + c!, 0) === C) outs = [...split.outputs];
    } else if (yr.length > 0 && yr.every((i) => { const n = g0.nodes[i]; return plain(n) && n.op === 'Slice' && n.inputs[0] === y && n.outputs.length === 1; })) {
      const ranges = yr.map((i) => ({ i, r: channelRange(g0.nodes[i], C) })).sort((p, q) => (p.r?.[0] ?? -1) - (q.r?.[0] ?? -1));
      let at = 0;
      const tiles = ranges.every(({ i, r }) => {
        if (!r || r[0] !== at || channels(g0.nodes[i].outputs[0]) !== r[1] - r[0]) return false;
        at = r[1];
        return true;
      });
      if (tiles && at === C) outs = ranges.map(({ i }) => g0.nodes[i].outputs[0]);
    }
    if (ins.length + outs.length > maxBindings) {
      if (ins.length > 1) ins = [x];
      if (ins.length + outs.length > maxBindings) outs = [y];
    }

    g ??= cloneGraph(g0);
    drop.add(ti);
    drop.add(ri!);
    drop.add(r2i!);
    g.tensors.delete(a);
    g.tensors.delete(b);
    if (ins[0] !== x) { drop.add(ci!); g.tensors.delete(x); }
    if (outs[0] !== y) { for (const i of yr) drop.add(i); g.tensors.delete(y); }
    place.set(r2i!, { name: `${t.name}/channel_shuffle`, op: 'ChannelShuffle', domain: '', inputs: ins, outputs: outs, attrs: newAttrs({ groups: G }) });
  });
  if (!g) return g0;
  const out = g;
  out.nodes = out.nodes.flatMap((n, i) => (place.has(i) ? [place.get(i)!] : drop.has(i) ? [] : [n]));
  return out;
}
