// MaxPool and AveragePool over NCHW (2-D windows; kernel, strides, pads, dilations for MaxPool,
// countIncludePad for AveragePool; ceil mode is in the output shape). One invocation per output element.
// AveragePool's divisor follows onnxruntime: with countIncludePad the window clipped to the padded image,
// without it the number of positions inside the image.

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid, unsupported } from '../src/errors.js';
import {
  bindings, cacheKey, constsI32, constsU32, expectOutput, flatDispatch, inShape, intAttr, intsAttr, outShape, where,
} from './shader.js';

export function pool(args: KernelArgs): KernelProgram {
  const w = where(args);
  const op = args.node.op;
  if (op !== 'MaxPool' && op !== 'AveragePool') throw unsupported(w, `no pooling kernel for '${op}'`);
  const a = args.node.attrs;
  const [N, C, H, W] = inShape(args, 0, 'input', 4);
  const [kh, kw] = intsAttr(a, 'kernel', undefined, w, 2);
  const [sh, sw] = intsAttr(a, 'strides', [1, 1], w, 2);
  const [pt, pl, pb, pr] = intsAttr(a, 'pads', [0, 0, 0, 0], w, 4);
  const [dh, dw] = op === 'MaxPool' ? intsAttr(a, 'dilations', [1, 1], w, 2) : [1, 1];
  const includePad = op === 'AveragePool' ? intAttr(a, 'countIncludePad', 0, w) : 0;
  if ([kh, kw, sh, sw, dh, dw].some((v) => v < 1) || [pt, pl, pb, pr].some((v) => v < 0)) {
    throw invalid(w, 'kernel, strides and dilations must be >= 1 and pads >= 0');
  }
  const o = outShape(args);
  const [HO, WO] = [o[2], o[3]];
  expectOutput(args, [N, C, HO, WO]);
  const total = N * C * HO * WO;
  const d = flatDispatch(total, args.limits, w);
  const body = op === 'MaxPool'
    ? `var s = -0x1.fffffep+127f;
  for (var kh = 0u; kh < KH; kh++) {
    let iy = iy0 + i32(kh * DH);
    if (iy < 0i || iy >= H) { continue; }
    for (var kw = 0u; kw < KW; kw++) {
      let ix = ix0 + i32(kw * DW);
      if (ix >= 0i && ix < W) { s = max(s, x[(nc * u32(H) + u32(iy)) * u32(W) + u32(ix)]); }
    }
  }
  out[i] = s;`
    : `var s = 0.0;
  var cnt = 0i;
  for (var kh = 0u; kh < KH; kh++) {
    let iy = iy0 + i32(kh);
    if (iy < 0i || iy >= H) { continue; }
    for (var kw = 0u; kw < KW; kw++) {
      let ix = ix0 + i32(kw);
      if (ix >= 0i && ix < W) { s += x[(nc * u32(H) + u32(iy)) * u32(W) + u32(ix)]; cnt += 1i; }
    }
  }
  ${includePad
    ? 'let hs = min(iy0 + i32(KH), H + PB) - iy0;\n  let ws = min(ix0 + i32(KW), W + PR) - ix0;\n  cnt = hs * ws;'
    : ''}
  out[i] = s / f32(max(cnt, 1i));`;
  const wgsl = `
${bindings(['x'])}
${constsU32({ C, HO, WO, KH: kh, KW: kw, SH: sh, SW: sw, DH: dh, DW: dw })}
${constsI32({ H, W, PT: pt, PL: pl, PB: pb, PR: pr })}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  let ox = i % WO;
  let oy = (i / WO) % HO;
  let nc = i / (WO * HO);
  let iy0 = i32(oy * SH) - PT;
  let ix0 = i32(ox * SW) - PL;
  ${body}
}
`;
  return {
    name: `${op}(${kh}x${kw} s${sh})`,
    cacheKey: cacheKey(op, [N, C, H, W], [HO, WO], [kh, kw], [sh, sw], [pt, pl, pb, pr], [dh, dw], includePad, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: [0],
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}
