// A tiny float64 interpreter of the graph IR for rewrite tests: it runs a graph before and after a rewrite
// (fuseEpilogues, foldPads, foldChannelScales, applyPlan) so that a test can check the rewrite did not change
// the function. It reads the IR's conventions (src/graph/ir.ts) directly, shares no code with the rewrite and
// uses the plain-loop references of test/kernels/reference.ts for convolutions and activations.
// Nodes run in list order: a node that reads a tensor not computed yet (or deleted) throws, so a rewrite that
// breaks the topological order or drops a tensor still read fails too.

import type { Graph, Node } from '../../src/graph/ir.js';
import { fcmDomain } from '../../src/graph/ir.js';
import { activation, conv2d, type Tensor4 } from '../kernels/reference.js';

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const ints = (n: Node, k: string): number[] | undefined => (Array.isArray(n.attrs[k]) ? (n.attrs[k] as number[]) : undefined);

/** y = act(conv(x * scale) + bias) + residual, the IR's Conv epilogue order (bias, activation, residual). */
function convLayer(x: Tensor4, w: Tensor4, bias: Float64Array | undefined, geometry: { strides?: number[]; pads?: number[]; dilations?: number[]; group: number },
  act: string | undefined, params: readonly number[] | undefined, residual?: Float64Array, scale?: Float64Array): { data: Float64Array; shape: [number, number, number, number] } {
  let input = x;
  if (scale) {
    const [N, C, H, W] = x.shape;
    const d = new Float64Array(x.data.length);
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) d[(n * C + c) * H * W + i] = x.data[(n * C + c) * H * W + i] * scale[n * C + c];
    input = { data: d, shape: x.shape };
  }
  const y = conv2d(input, w, bias, {
    strides: (geometry.strides ?? [1, 1]) as [number, number],
    pads: (geometry.pads ?? [0, 0, 0, 0]) as [number, number, number, number],
    dilations: (geometry.dilations ?? [1, 1]) as [number, number],
    group: geometry.group,
  });
  const f = activation(act ?? '', params ?? []);
  const out = Float64Array.from(y.data, (v, i) => f(v) + (residual ? residual[i] : 0));
  return { data: out, shape: y.shape };
}

function pad(x: Float64Array, xs: number[], pads: number[], mode: string, value: number): { data: Float64Array; shape: number[] } {
  const r = xs.length;
  const os = xs.map((d, i) => d + pads[i] + pads[i + r]);
  const y = new Float64Array(numel(os));
  const idx = new Array<number>(r).fill(0);
  for (let o = 0; o < y.length; o++) {
    let rem = o;
    for (let d = r - 1; d >= 0; d--) { idx[d] = rem % os[d]; rem = Math.floor(rem / os[d]); }
    let src = 0;
    let inside = true;
    for (let d = 0; d < r; d++) {
      let i = idx[d] - pads[d];
      if (i < 0 || i >= xs[d]) {
        if (mode === 'constant') { inside = false; break; }
        if (mode === 'edge') i = Math.min(xs[d] - 1, Math.max(0, i));
        else if (mode === 'reflect') i = i < 0 ? -i : 2 * (xs[d] - 1) - i;
        else throw new Error(`interp: Pad mode ${mode}`);
      }
      src = src * xs[d] + i;
    }
    y[o] = inside ? x[src] : value;
  }
  return { data: y, shape: os };
}

function broadcast(a: Float64Array, as: number[], b: Float64Array, bs: number[], f: (p: number, q: number) => number): { data: Float64Array; shape: number[] } {
  const r = Math.max(as.length, bs.length);
  const pa = [...new Array(r - as.length).fill(1), ...as], pb = [...new Array(r - bs.length).fill(1), ...bs];
  const os = pa.map((d, i) => {
    if (d !== pb[i] && d !== 1 && pb[i] !== 1) throw new Error(`interp: shapes [${as}] and [${bs}] do not broadcast`);
    return Math.max(d, pb[i]);
  });
  const y = new Float64Array(numel(os));
  for (let o = 0; o < y.length; o++) {
    let rem = o, ia = 0, ib = 0, sa = 1, sb = 1;
    for (let d = r - 1; d >= 0; d--) {
      const i = rem % os[d];
      rem = Math.floor(rem / os[d]);
      if (pa[d] !== 1) ia += i * sa;
      if (pb[d] !== 1) ib += i * sb;
      sa *= pa[d];
      sb *= pb[d];
    }
    y[o] = f(a[ia], b[ib]);
  }
  return { data: y, shape: os };
}

/** Runs `g` on `inputs` (by input name) and returns every graph output, in order. */
export function runFloat(g: Graph, inputs: Record<string, ArrayLike<number>>): Float64Array[] {
  const values = new Map<string, { data: Float64Array; shape: number[] }>();
  for (const name of g.inputs) values.set(name, { data: Float64Array.from(inputs[name]), shape: [...g.tensors.get(name)!.shape] });
  const get = (name: string, who: string) => {
    const v = values.get(name);
    if (v) return v;
    const t = g.tensors.get(name);
    if (!t?.data) throw new Error(`interp: node '${who}' reads '${name}', which has no value (not computed yet, or deleted)`);
    const c = { data: Float64Array.from(t.data as ArrayLike<number>), shape: [...t.shape] };
    values.set(name, c);
    return c;
  };
  const t4 = (v: { data: Float64Array; shape: number[] }): Tensor4 => ({ data: v.data, shape: v.shape as [number, number, number, number] });
  const opt = (n: Node, i: number) => (n.inputs[i] ? get(n.inputs[i], n.name).data : undefined);
  for (const n of g.nodes) {
    const x = get(n.inputs[0], n.name);
    let y: { data: Float64Array; shape: number[] };
    const fcm = n.domain === fcmDomain;
    if (!fcm && n.domain !== '' && n.domain !== 'ai.onnx') throw new Error(`interp: op ${n.domain}.${n.op}`);
    switch (fcm ? `fcm.${n.op}` : n.op) {
      case 'Conv': {
        const w = get(n.inputs[1], n.name);
        y = convLayer(t4(x), t4(w), opt(n, 2), { strides: ints(n, 'strides'), pads: ints(n, 'pads'), dilations: ints(n, 'dilations'), group: (n.attrs.group as number | undefined) ?? 1 },
          n.attrs.activation as string | undefined, n.attrs.activationParams as number[] | undefined, opt(n, 3), opt(n, 4));
        break;
      }
      case 'fcm.FusedPwDw': case 'fcm.FusedDwPw': case 'fcm.FusedPwPw': {
        const w1 = t4(get(n.inputs[1], n.name)), w2 = t4(get(n.inputs[3], n.name));
        const dwGeometry = { strides: ints(n, 'strides'), pads: ints(n, 'pads'), dilations: ints(n, 'dilations') };
        const first = n.op === 'FusedDwPw' ? { ...dwGeometry, group: x.shape[1] } : { group: 1 };
        const mid = convLayer(t4(x), w1, opt(n, 2), first, n.attrs.activation1 as string | undefined, n.attrs.activationParams1 as number[] | undefined);
        const second = n.op === 'FusedPwDw' ? { ...dwGeometry, group: mid.shape[1] } : { group: 1 };
        y = convLayer(mid, w2, opt(n, 4), second, n.attrs.activation2 as string | undefined, n.attrs.activationParams2 as number[] | undefined, opt(n, 5));
        break;
      }
      case 'Pad':
        y = pad(x.data, x.shape, n.attrs.pads as number[], (n.attrs.mode as string | undefined) ?? 'constant', (n.attrs.value as number | undefined) ?? 0);
        break;
      case 'Add': case 'Mul': case 'Sub': {
        const b = get(n.inputs[1], n.name);
        y = broadcast(x.data, x.shape, b.data, b.shape, n.op === 'Add' ? (p, q) => p + q : n.op === 'Mul' ? (p, q) => p * q : (p, q) => p - q);
        break;
      }
      case 'GlobalAveragePool': {
        const [N, C, H, W] = x.shape;
        const d = new Float64Array(N * C);
        for (let i = 0; i < N * C; i++) { let s = 0; for (let k = 0; k < H * W; k++) s += x.data[i * H * W + k]; d[i] = s / (H * W); }
        y = { data: d, shape: [N, C, 1, 1] };
        break;
      }
      case 'Clip': {
        // Bounds from attributes (normalized) or from inputs (computed bounds).
        const lo = n.inputs[1] ? get(n.inputs[1], n.name).data[0] : (n.attrs.min as number | undefined) ?? -Infinity;
        const hi = n.inputs[2] ? get(n.inputs[2], n.name).data[0] : (n.attrs.max as number | undefined) ?? Infinity;
        y = { data: x.data.map((v) => Math.min(Math.max(v, lo), hi)), shape: x.shape };
        break;
      }
      case 'Relu': case 'Sigmoid': case 'HardSwish': case 'SiLU': case 'Tanh':
        y = { data: x.data.map(activation(n.op)), shape: x.shape };
        break;
      case 'LeakyRelu':
        y = { data: x.data.map(activation(n.op, [(n.attrs.alpha as number | undefined) ?? 0.01])), shape: x.shape };
        break;
      case 'HardSigmoid':
        y = { data: x.data.map(activation(n.op, [(n.attrs.alpha as number | undefined) ?? 0.2, (n.attrs.beta as number | undefined) ?? 0.5])), shape: x.shape };
        break;
      default:
        throw new Error(`interp: op ${n.op}`);
    }
    const declared = g.tensors.get(n.outputs[0])?.shape;
    if (!declared || declared.join() !== y.shape.join()) throw new Error(`interp: node '${n.name}' computes [${y.shape}], its output '${n.outputs[0]}' is declared [${declared}]`);
    values.set(n.outputs[0], y);
  }
  return g.outputs.map((o) => {
    const v = values.get(o);
    if (!v) throw new Error(`interp: graph output '${o}' is not computed`);
    return v.data;
  });
}
