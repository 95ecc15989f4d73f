// General 2-D convolution (standard convs such as stems and strided 1x1s; grouped ones where kernels/grouped-conv.ts
// does not take them, e.g. a depth multiplier over single-channel groups): one invocation per output
// element, looping over its group's input channels and the kernel window with every input coordinate
// checked against the image (the padding reads as zero). Epilogue: bias, activation, + residual.

import type { KernelArgs, KernelProgram } from './program.js';
import { type ConvGeom, convBindings, convGeom, convStore, geomKey } from './conv-common.js';
import { unsupported } from '../src/errors.js';
import { bindings, cacheKey, constsI32, constsU32, flatDispatch, where } from './shader.js';

export function conv2d(args: KernelArgs, geom?: ConvGeom): KernelProgram {
  const g = geom ?? convGeom(args);
  const w = where(args);
  if (g.hasScale) throw unsupported(w, 'a channel scale (folded squeeze-excite Mul) is only read by pointwise convolutions');
  const total = g.N * g.F * g.HO * g.WO;
  const d = flatDispatch(total, args.limits, w);
  const b = convBindings(g);
  const CG = g.C / g.group, FG = g.F / g.group;
  const wgsl = `
${bindings(b.names)}
${constsU32({ C: g.C, F: g.F, HO: g.HO, WO: g.WO, CG, FG, KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw, DH: g.dh, DW: g.dw })}
${constsI32({ H: g.H, W: g.W, PT: g.pt, PL: g.pl })}
${g.act.fn}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  let ox = i % WO;
  let oy = (i / WO) % HO;
  let f = (i / (WO * HO)) % F;
  let n = i / (WO * HO * F);
  let c0 = (f / FG) * CG;
  var s = 0.0;
  for (var c = 0u; c < CG; c++) {
    let xc = (n * C + c0 + c) * u32(H);
    let wc = (f * CG + c) * KH;
    for (var kh = 0u; kh < KH; kh++) {
      let iy = i32(oy * SH + kh * DH) - PT;
      if (iy < 0i || iy >= H) { continue; }
      for (var kw = 0u; kw < KW; kw++) {
        let ix = i32(ox * SW + kw * DW) - PL;
        if (ix < 0i || ix >= W) { continue; }
        s += x[(xc + u32(iy)) * u32(W) + u32(ix)] * w[(wc + kh) * KW + kw];
      }
    }
  }
  ${convStore(g, 's', 'i', 'f')}
}
`;
  return {
    name: `Conv(${g.kh}x${g.kw} s${g.sh} g${g.group})`,
    cacheKey: cacheKey('conv2d', geomKey(g), d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: b.inputs,
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}
