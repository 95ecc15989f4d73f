// foldSqueezeExcites: a squeeze-excite block's small work, GlobalAveragePool -> 1x1 conv + act -> 1x1 conv + gate, ran
// as three dispatches (two when the planner fused the 1x1 convs into a FusedPwPw) on tensors of C values per image;
// it becomes one SqueezeExcite node (kernels/squeeze-excite.ts): one workgroup per image pools, then computes both
// matrix-vector products through workgroup memory. MobileNetV3 and EfficientNet have one per block.
//   GlobalAveragePool(x) -> Conv{act1}(p, w1, b1?) -> Conv{act2}(h, w2, b2?)    =>  SqueezeExcite{act1, act2}(x, w1, b1, w2, b2)
//   GlobalAveragePool(x) -> FusedPwPw{act1, act2}(p, w1, b1?, w2, b2?)          =>  the same
// or, where the choice leaves the pool alone, the two convs alone: Conv -> Conv on [N, C, 1, 1] => SqueezeExcite(p, ...).
// The Mul by the gate stays (foldChannelScales then folds it into the next pointwise conv).
//
// Legality (matchAt, listed by squeezeExciteMatches): the pool is plain ONNX with one output, a 4-D float32 input, read only by the first
// conv (as its data input) and no graph output; each conv is plain ONNX pointwise (1x1, stride 1, no padding,
// dilation 1, group 1) with no residual, no channel scale and no activation after a residual; a FusedPwPw has no
// residual and no activationPost; the activations are any the epilogues take (Relu, SiLU, HardSwish, ... inside;
// Sigmoid, HardSigmoid gates); the hidden tensor is read only by the second conv and no graph output; every tensor
// float32 and the pooled vector, the hidden one and the kernel's partial sums (1024) fit WebGPU's guaranteed 16 KiB
// of workgroup memory. No cycle can arise: the node reads what the pool and the convs read, all computed before them.
// Choice (chooseSqueezeExcite), separate: the pool runs in the node when one workgroup can read the map cheaply
// (C*H*W at most squeezeExcitePoolMax elements per image); otherwise it stays its own dispatch (C workgroups) and only
// two plain convs fold (a FusedPwPw is already one dispatch).
// Arithmetic: the sums run in another order than the separate kernels' (partial sums over lanes), so the results
// agree within rounding, not bit for bit (test/rewrite/squeeze-excite.test.ts compares with onnxruntime).

import { type AttrValue, type Graph, type Node, fcmDomain, hasExecutorLayout, newAttrs } from '../graph/ir.js';
import { cloneGraph } from '../graph/util.js';

const plain = (n: Node) => n.domain === '' || n.domain === 'ai.onnx';
const intsOf = (v: AttrValue | undefined): number[] | undefined => (Array.isArray(v) ? (v as number[]) : undefined);

/**
 * The most invocations the kernel's workgroup takes (kernels/squeeze-excite.ts squeezeExciteMaxThreads), each with a
 * partial sum in workgroup memory.
 */
export const squeezeExciteThreads = 1024;
/** WebGPU's guaranteed workgroup memory: the node must run on every device. */
const workgroupBytes = 16384;
/**
 * Most elements per image (C*H*W) a single workgroup pools in the node. One workgroup reads the map from L2 (the
 * layer before just wrote it): 14x14x672 (EfficientNet-B0, MobileNetV3's 14x14 blocks) is 527 KB, estimated at 5-10 us
 * on one H100 SM at 50-100 GB/s, against a dispatch's 10-15 us of host and GPU time at batch 1; 56x56x144 (1.8 MB) is
 * left to the pool kernel's C workgroups. Measured on an H100 at batch 1 with this bound (torchvision's models, GPU
 * pass): MobileNetV3-Large 0.343 -> 0.562 ms, EfficientNet-B0 0.507 -> 0.625 ms: the one-workgroup node loses to the
 * separate kernels, so sessions fold only when asked (SessionOptions.squeezeExcite). docs/dispatch-folds.md says how
 * to measure it.
 */
export const squeezeExcitePoolMax = 160_000;

function isPlainPointwise(g: Graph, n: Node): boolean {
  if (n.op !== 'Conv' || !plain(n) || n.outputs.length !== 1) return false;
  if ((n.inputs[3] ?? '') !== '' || (n.inputs[4] ?? '') !== '' || n.attrs.activationPost !== undefined || hasExecutorLayout(n)) return false;
  const w = g.tensors.get(n.inputs[1])?.shape;
  if (!w || w.length !== 4 || w[2] !== 1 || w[3] !== 1) return false;
  const ones = (k: string, len: number, v: number) => { const a = intsOf(n.attrs[k]); return a === undefined || (a.length === len && a.every((x) => x === v)); };
  return ones('strides', 2, 1) && ones('pads', 4, 0) && ones('dilations', 2, 1) && (n.attrs.group === undefined || n.attrs.group === 1);
}

export interface SqueezeExciteMatch {
  /** The GlobalAveragePool, when the pattern starts at one. */
  pool?: Node;
  /** The two convs (plain Conv nodes) or one FusedPwPw. */
  convs: [Node, Node] | [Node];
  /** [N, C, H, W] of the pool's input (H = W = 1 without the pool), hidden channels R, output channels F. */
  N: number; C: number; H: number; W: number; R: number; F: number;
}

/** The node computing tensor name -> node, the readers of each tensor. */
function index(g: Graph) {
  const producer = new Map<string, Node>();
  const readers = new Map<string, Node[]>();
  for (const n of g.nodes) {
    for (const y of n.outputs) if (y) producer.set(y, n);
    for (const x of new Set(n.inputs)) if (x) (readers.get(x) ?? readers.set(x, []).get(x)!).push(n);
  }
  return { producer, readers, outputs: new Set(g.outputs) };
}

type Index = ReturnType<typeof index>;

/** The single reader of `t` that reads it as its data input (input 0) only, when `t` is no graph output. */
function soleDataReader(ix: Index, t: string): Node | undefined {
  const rs = ix.readers.get(t) ?? [];
  if (ix.outputs.has(t) || rs.length !== 1) return undefined;
  const r = rs[0];
  return r.inputs[0] === t && r.inputs.indexOf(t, 1) < 0 ? r : undefined;
}

/**
 * The legal squeeze-excite pattern whose first conv (or FusedPwPw) is `first`, with its pool when `withPool` and
 * legal; undefined when the convs themselves do not qualify.
 */
function matchAt(g: Graph, ix: Index, first: Node, withPool: boolean): SqueezeExciteMatch | undefined {
  const f32 = (name: string | undefined) => !name || g.tensors.get(name)?.dtype === 'float32';
  let convs: [Node, Node] | [Node];
  let w1: string, w2: string;
  if (first.domain === fcmDomain && first.op === 'FusedPwPw') {
    if (first.outputs.length !== 1 || (first.inputs[5] ?? '') !== '' || first.attrs.activationPost !== undefined || hasExecutorLayout(first)) return undefined;
    convs = [first];
    w1 = first.inputs[1]; w2 = first.inputs[3];
  } else if (isPlainPointwise(g, first)) {
    const second = soleDataReader(ix, first.outputs[0]);
    if (!second || !isPlainPointwise(g, second)) return undefined;
    convs = [first, second];
    w1 = first.inputs[1]; w2 = second.inputs[1];
  } else return undefined;
  const last = convs[convs.length - 1];
  const ws1 = g.tensors.get(w1)?.shape, ws2 = g.tensors.get(w2)?.shape;
  const p = g.tensors.get(first.inputs[0])?.shape, s = g.tensors.get(last.outputs[0])?.shape;
  if (!ws1 || !ws2 || !p || !s || ws1.length !== 4 || ws2.length !== 4 || p.length !== 4 || s.length !== 4) return undefined;
  const [N, C] = p, R = ws1[0], F = ws2[0];
  if (p[2] !== 1 || p[3] !== 1 || ws1[1] !== C || ws2[1] !== R || ws2[2] !== 1 || ws2[3] !== 1) return undefined;
  if (s[0] !== N || s[1] !== F || s[2] !== 1 || s[3] !== 1) return undefined;
  if (![...first.inputs, ...last.inputs, ...convs.flatMap((c) => c.outputs)].every(f32)) return undefined;
  if ((C + R + squeezeExciteThreads) * 4 > workgroupBytes) return undefined;
  const m: SqueezeExciteMatch = { convs, N, C, H: 1, W: 1, R, F };
  const pool = ix.producer.get(first.inputs[0]);
  if (!withPool || !pool || pool.op !== 'GlobalAveragePool' || !plain(pool) || pool.outputs.length !== 1) return m;
  const x = g.tensors.get(pool.inputs[0]);
  if (!x || x.dtype !== 'float32' || x.shape.length !== 4 || x.shape[0] !== N || x.shape[1] !== C) return m;
  if (soleDataReader(ix, pool.outputs[0]) !== first) return m;
  return { ...m, pool, H: x.shape[2], W: x.shape[3] };
}

/** Whether the pool runs in the node (the choice; legality is matchAt's). */
export function chooseSqueezeExcite(m: SqueezeExciteMatch): 'pool' | 'convs' | 'none' {
  if (m.pool && m.C * m.H * m.W <= squeezeExcitePoolMax) return 'pool';
  return m.convs.length === 2 ? 'convs' : 'none';
}

/** Every legal pattern of `g`, pool included where legal (for the tests and the bench). */
export function squeezeExciteMatches(g: Graph): SqueezeExciteMatch[] {
  const ix = index(g);
  const out: SqueezeExciteMatch[] = [];
  for (const n of g.nodes) {
    // A conv that is the second of a pair starts no pattern of its own.
    const prev = ix.producer.get(n.inputs[0] ?? '');
    if (prev && isPlainPointwise(g, prev) && soleDataReader(ix, prev.outputs[0]) === n && matchAt(g, ix, prev, false)) continue;
    const m = matchAt(g, ix, n, true);
    if (m) out.push(m);
  }
  return out;
}

export function foldSqueezeExcites(g0: Graph, choose: (m: SqueezeExciteMatch) => 'pool' | 'convs' | 'none' = chooseSqueezeExcite): Graph {
  const ms = squeezeExciteMatches(g0).map((m) => ({ m, how: choose(m) })).filter((c) => c.how !== 'none');
  if (!ms.length) return g0;
  const g = cloneGraph(g0);
  const at = new Map(g0.nodes.map((n, i) => [n, i]));
  const replace = new Map<number, Node>();
  const drop = new Set<number>();
  for (const { m, how } of ms) {
    const [c1, c2] = m.convs.length === 2 ? m.convs : [m.convs[0], m.convs[0]];
    const fused = m.convs.length === 1;
    const attrs = newAttrs();
    const copy = (from: Node, suffix: string, to: string) => {
      const a = from.attrs[`activation${suffix}`], p = from.attrs[`activationParams${suffix}`];
      if (a !== undefined) attrs[`activation${to}`] = a;
      if (p !== undefined) attrs[`activationParams${to}`] = Array.isArray(p) ? ([...p] as AttrValue) : p;
    };
    copy(c1, fused ? '1' : '', '1');
    copy(c2, fused ? '2' : '', '2');
    const pool = how === 'pool' ? m.pool! : undefined;
    const x = pool ? pool.inputs[0] : c1.inputs[0];
    const inputs = fused ? [x, c1.inputs[1], c1.inputs[2] ?? '', c1.inputs[3], c1.inputs[4] ?? ''] : [x, c1.inputs[1], c1.inputs[2] ?? '', c2.inputs[1], c2.inputs[2] ?? ''];
    const names = [pool, ...m.convs].filter((n): n is Node => !!n);
    const node: Node = { name: names.map((n) => n.name).join('+'), op: 'SqueezeExcite', domain: '', inputs, outputs: [c2.outputs[0]], attrs };
    // The node takes the last conv's place: everything it reads is computed before the pool.
    for (const n of names) drop.add(at.get(n)!);
    drop.delete(at.get(c2)!);
    replace.set(at.get(c2)!, node);
    if (pool) g.tensors.delete(pool.outputs[0]);
    if (!fused) g.tensors.delete(c1.outputs[0]);
  }
  g.nodes = g.nodes.flatMap((n, i) => (drop.has(i) ? [] : [replace.get(i) ?? n]));
  return g;
}
