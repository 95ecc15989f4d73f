// ChannelShuffle, an op of the executor's graph (src/rewrite/channel-shuffle.ts makes it; src/graph/ir.ts): its
// inputs [N, C_k, H, W] concatenated along channels (C in all), shuffled in `groups` g as ShuffleNet's Reshape
// [N, g, C/g, H, W] -> Transpose [0, 2, 1, 3, 4] -> Reshape [N, C, H, W] does (shuffled channel j * g + i is channel
// i * (C/g) + j), then split along channels into its outputs [N, D_m, H, W], in order. One dispatch for what was a
// Concat (one copy per input), a Transpose and a Split (one copy per output); one invocation per element of the
// shuffled tensor. Pure data movement: the values are copied, never computed.

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid } from '../src/errors.js';
import { bindings, cacheKey, flatDispatch, inShape, intAttr, u32, where } from './shader.js';

/** The branches `if (c < end_0) { body_0 } else if ...` over consecutive channel ranges of the given sizes. */
function chain(sizes: readonly number[], c: string, body: (k: number, at: number) => string): string {
  let at = 0;
  return sizes.map((s, k) => {
    const b = body(k, at);
    at += s;
    return k === sizes.length - 1 ? `{ ${b} }` : `if (${c} < ${u32(at)}) { ${b} }`;
  }).join(' else ');
}

export function channelShuffle(args: KernelArgs): KernelProgram {
  const w = where(args);
  const ins = args.node.inputs.map((_, k) => inShape(args, k, `input ${k}`, 4));
  const outs = args.outputShapes;
  const [N, , H, W] = ins[0];
  const fits = (s: readonly number[]) => s.length === 4 && s[0] === N && s[2] === H && s[3] === W;
  if (!ins.every(fits) || !outs.every(fits)) throw invalid(w, `inputs and outputs must be [${N},C,${H},${W}]`);
  const C = ins.reduce((a, s) => a + s[1], 0);
  const D = outs.reduce((a, s) => a + s[1], 0);
  if (D !== C) throw invalid(w, `outputs hold ${D} channels, the inputs ${C}`);
  const G = intAttr(args.node.attrs, 'groups', 0, w);
  if (G < 1 || C % G !== 0) throw invalid(w, `groups ${G} does not divide ${C} channels`);
  const HW = H * W;
  const total = N * C * HW;
  const d = flatDispatch(total, args.limits, w);
  const xs = ins.map((_, k) => `x${k}`), ys = outs.map((_, k) => `y${k}`);
  const read = chain(ins.map((s) => s[1]), 'c', (k, at) => `v = ${xs[k]}[(n * ${u32(ins[k][1])} + c - ${u32(at)}) * ${u32(HW)} + p];`);
  const write = chain(outs.map((s) => s[1]), 'q', (k, at) => `${ys[k]}[(n * ${u32(outs[k][1])} + q - ${u32(at)}) * ${u32(HW)} + p] = v;`);
  const wgsl = `
${bindings(xs, ys)}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  let p = i % ${u32(HW)};
  let q = (i / ${u32(HW)}) % ${u32(C)};
  let n = i / ${u32(C * HW)};
  let c = (q % ${u32(G)}) * ${u32(C / G)} + q / ${u32(G)};
  var v: f32;
  ${read}
  ${write}
}
`;
  return {
    name: 'ChannelShuffle',
    cacheKey: cacheKey('channelShuffle', N, H, W, G, ins.map((s) => s[1]), outs.map((s) => s[1]), d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: ins.map((_, k) => k),
    outputs: outs.length,
    workgroupStorageBytes: 0,
  };
}

