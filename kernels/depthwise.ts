// Depthwise KxK convolution (group = C = F, depth multiplier 1; any kernel, stride, pads, dilation): one
// invocation per output element with the window's bounds as constants, so the compiler unrolls the KxK loop.
// Rows and columns outside the image are skipped (zero padding); every load is guarded.

import type { KernelProgram } from './program.js';
import { type ConvGeom, convBindings, convGeom, convStore, geomKey, isDepthwise } from './conv-common.js';
import { invalid, unsupported } from '../src/errors.js';
import { type KernelArgs, bindings, cacheKey, constsI32, constsU32, flatDispatch, where } from './shader.js';

export function depthwise(args: KernelArgs, geom?: ConvGeom): KernelProgram {
  const g = geom ?? convGeom(args);
  const w = where(args);
  if (!isDepthwise(g)) throw invalid(w, `not a depthwise convolution (group ${g.group}, ${g.C} -> ${g.F} channels)`);
  if (g.hasScale) throw unsupported(w, 'a channel scale (folded squeeze-excite Mul) is only read by pointwise convolutions');
  const total = g.N * g.C * g.HO * g.WO;
  const d = flatDispatch(total, args.limits, w);
  const b = convBindings(g);
  const wgsl = `
${bindings(b.names)}
${constsU32({ C: g.C, HO: g.HO, WO: g.WO, KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw, DH: g.dh, DW: g.dw })}
${constsI32({ H: g.H, W: g.W, PT: g.pt, PL: g.pl })}
${g.act.fn}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  let ox = i % WO;
  let oy = (i / WO) % HO;
  let nc = i / (WO * HO);
  let c = nc % C;
  let xb = nc * u32(H);
  let iy0 = i32(oy * SH) - PT;
  let ix0 = i32(ox * SW) - PL;
  var s = 0.0;
  for (var kh = 0u; kh < KH; kh++) {
    let iy = iy0 + i32(kh * DH);
    if (iy < 0i || iy >= H) { continue; }
    let xr = (xb + u32(iy)) * u32(W);
    for (var kw = 0u; kw < KW; kw++) {
      let ix = ix0 + i32(kw * DW);
      if (ix >= 0i && ix < W) {
        s += x[xr + u32(ix)] * w[(c * KH + kh) * KW + kw];
      }
    }
  }
  ${convStore(g, 's', 'i', 'c')}
}
`;
  return {
    name: `Conv(dw ${g.kh}x${g.kw} s${g.sh})`,
    cacheKey: cacheKey('depthwise', geomKey(g), d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: b.inputs,
    outputs: 1,
    uniforms: [],
    workgroupStorageBytes: 0,
  };
}
