// ONNX ConvTranspose in 2-D (any group, stride, dilation, pads, output_padding; output_shape and auto_pad
// resolved into pads as the ONNX definition says): one invocation per output element, gathering the input
// pixels whose scattered window covers it. Output (oy, ox) takes input iy where oy + pad_top - ky * dh = iy * sh
// for a tap ky, so each tap is one divisibility test. Weights [C, M / group, KH, KW] (ONNX layout); optional bias
// [M]; the node keeps the file's attribute names (the op is opaque to the IR).

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid, unsupported } from '../src/errors.js';
import {
  bindings, cacheKey, constsI32, constsU32, expectOutput, flatDispatch, hasInput, inShape, intAttr, intsAttr,
  nodeEpilogue, sameShape, strAttr, where,
} from './shader.js';

export function convTranspose(args: KernelArgs): KernelProgram {
  const w = where(args);
  const a = args.node.attrs;
  const xs = inShape(args, 0, 'input');
  if (xs.length !== 4) throw unsupported(w, `only 2-D ConvTranspose is supported, input is [${xs.join(',')}]`);
  const [N, C, H, W] = xs;
  const ws = inShape(args, 1, 'weights', 4);
  const group = intAttr(a, 'group', 1, w);
  if (group < 1 || C % group !== 0 || ws[0] !== C) throw invalid(w, `weights [${ws.join(',')}] do not match ${C} input channels in ${group} groups`);
  const MG = ws[1], M = MG * group, CG = C / group;
  const [kh, kw] = intsAttr(a, 'kernel_shape', [ws[2], ws[3]], w, 2);
  if (kh !== ws[2] || kw !== ws[3]) throw invalid(w, `kernel_shape [${kh},${kw}] does not match weights [${ws.join(',')}]`);
  const [sh, sw] = intsAttr(a, 'strides', [1, 1], w, 2);
  const [dh, dw] = intsAttr(a, 'dilations', [1, 1], w, 2);
  const [oph, opw] = intsAttr(a, 'output_padding', [0, 0], w, 2);
  if ([sh, sw, dh, dw].some((v) => v < 1)) throw invalid(w, 'strides and dilations must be >= 1');
  if ([oph, opw].some((v) => v < 0)) throw invalid(w, 'output_padding must be >= 0');
  const autoPad = strAttr(a, 'auto_pad', 'NOTSET', w);
  const outShapeAttr = a.output_shape !== undefined ? intsAttr(a, 'output_shape', undefined, w) : undefined;
  // The full (unpadded) output length of each axis.
  const full = [sh * (H - 1) + oph + (kh - 1) * dh + 1, sw * (W - 1) + opw + (kw - 1) * dw + 1];
  let pads: number[];
  if (outShapeAttr || autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    // ONNX: total = full - output; SAME_UPPER puts the odd pixel at the end, otherwise at the start.
    const target = outShapeAttr ? outShapeAttr.slice(-2) : [H * sh, W * sw];
    if (target.length !== 2) throw invalid(w, `output_shape [${outShapeAttr!.join(',')}] must give 2 spatial sizes`);
    const total = full.map((f, k) => f - target[k]);
    if (total.some((t) => t < 0)) throw unsupported(w, `output_shape [${target.join(',')}] is larger than the full output [${full.join(',')}]`);
    const half = total.map((t) => Math.floor(t / 2));
    pads = autoPad === 'SAME_UPPER' ? [half[0], half[1], total[0] - half[0], total[1] - half[1]] : [total[0] - half[0], total[1] - half[1], half[0], half[1]];
  } else if (autoPad === 'NOTSET' || autoPad === 'VALID') {
    pads = autoPad === 'VALID' ? [0, 0, 0, 0] : intsAttr(a, 'pads', [0, 0, 0, 0], w, 4);
  } else throw invalid(w, `auto_pad '${autoPad}' is not an ONNX value`);
  if (pads.some((p) => p < 0)) throw invalid(w, 'pads must be >= 0');
  const [pt, pl, pb, pr] = pads;
  const HO = full[0] - pt - pb, WO = full[1] - pl - pr;
  if (HO < 1 || WO < 1) throw invalid(w, `output ${HO}x${WO} is empty`);
  expectOutput(args, [N, M, HO, WO]);
  const hasBias = hasInput(args, 2);
  if (hasBias && !sameShape(inShape(args, 2, 'bias'), [M])) throw invalid(w, `bias '${args.node.inputs[2]}' must have shape [${M}]`);
  const act = nodeEpilogue(a, w);

  const total = N * M * HO * WO;
  const d = flatDispatch(total, args.limits, w);
  const wgsl = `
${bindings(hasBias ? ['x', 'wt', 'bias'] : ['x', 'wt'])}
${constsU32({ C, M, MG, CG, HO, WO, KH: kh, KW: kw, UH: H, UW: W })}
${constsI32({ SH: sh, SW: sw, DH: dh, DW: dw, PT: pt, PL: pl, H, W })}
${act.fn}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  let ox = i % WO;
  let oy = (i / WO) % HO;
  let m = (i / (WO * HO)) % M;
  let n = i / (WO * HO * M);
  let g = m / MG;
  let mg = m % MG;
  var s = 0.0;
  for (var ky = 0u; ky < KH; ky++) {
    let ty = i32(oy) + PT - i32(ky) * DH;
    if (ty < 0i || ty % SH != 0i) { continue; }
    let iy = ty / SH;
    if (iy >= H) { continue; }
    for (var kx = 0u; kx < KW; kx++) {
      let tx = i32(ox) + PL - i32(kx) * DW;
      if (tx < 0i || tx % SW != 0i) { continue; }
      let ix = tx / SW;
      if (ix >= W) { continue; }
      for (var c = 0u; c < CG; c++) {
        let ci = g * CG + c;
        s += x[((n * C + ci) * UH + u32(iy)) * UW + u32(ix)] * wt[((ci * MG + mg) * KH + ky) * KW + kx];
      }
    }
  }
  out[i] = act(s${hasBias ? ' + bias[m]' : ''});
}
`;
  return {
    name: `ConvTranspose(${kh}x${kw} s${sh})`,
    cacheKey: cacheKey('convTranspose', xs, ws, [sh, sw, dh, dw], pads, [HO, WO], group, hasBias, act.key, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: hasBias ? [0, 1, 2] : [0, 1],
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}
