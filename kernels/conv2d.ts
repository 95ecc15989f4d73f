// General 2-D convolution (standard convs such as stems and strided 1x1s; grouped ones where kernels/grouped-conv.ts
// does not take them, e.g. a depth multiplier over single-channel groups): one invocation per output
// element, looping over its group's input channels and the kernel window with every input coordinate
// checked against the image (the padding reads as zero). Epilogue: bias, activation, + residual.
//
// Ungrouped convolutions with a small window over few channels (the stems: 3x3 over 3 channels) take a filter-blocked
// form instead (conv2dFilterBlock): one invocation per output position and FB filters, each input value of the window
// read once for all FB filters (the per-element form reads it again for every filter: MobileNetV2's stem at batch 32
// moved 384 GB/s on an H200, 184 us, 12% of the pass).

import type { KernelArgs, KernelProgram } from './program.js';
import { type ConvGeom, convBindings, convGeom, convStore, geomKey } from './conv-common.js';
import { plusResidual } from './shader.js';
import { unsupported } from '../src/errors.js';
import { bindings, cacheKey, constsI32, constsU32, flatDispatch, where } from './shader.js';

export function conv2d(args: KernelArgs, geom?: ConvGeom): KernelProgram {
  const g = geom ?? convGeom(args);
  const w = where(args);
  if (g.hasScale) throw unsupported(w, 'a channel scale (folded squeeze-excite Mul) is only read by pointwise convolutions');
  const fb = filterBlock(g);
  if (fb > 1) return conv2dFilterBlock(args, g, fb);
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

/** Window values (channels x kernel taps) at most this many for the filter-blocked form: the stems' 3 x 3 x 3 = 27 and
 *  7 x 7 x 3 = 147; each invocation walks them all once. */
const maxBlockWindow = 160;

/**
 * Filters per invocation of the filter-blocked form (1: the per-element form): ungrouped convolutions with a window
 * of at most maxBlockWindow values. The largest of 16, 8, 4, 2 dividing F that leaves at least 65536 invocations (what
 * fills an H100-class GPU; a stem at batch 1, 112 x 112 positions, gets 4 filters per invocation, 100k invocations),
 * else the smallest that divides F.
 */
export function filterBlock(g: ConvGeom): number {
  if (g.group !== 1 || g.C * g.kh * g.kw > maxBlockWindow) return 1;
  const positions = g.N * g.HO * g.WO;
  const fits = [16, 8, 4, 2].filter((b) => g.F % b === 0);
  if (!fits.length) return 1;
  return fits.find((b) => positions * (g.F / b) >= 65536) ?? fits[fits.length - 1];
}

/**
 * The filter-blocked form: invocation i owns output positions (n, oy, ox) of filters fb*FB .. fb*FB+FB-1, the FB
 * accumulators named variables (no array indexed by a loop variable). Consecutive invocations take consecutive
 * positions of one filter block (loads and stores of a row are contiguous); the weights of a block are the same for
 * every invocation of a workgroup that stays inside the block, so their loads are broadcasts.
 */
export function conv2dFilterBlock(args: KernelArgs, g: ConvGeom, FB: number): KernelProgram {
  const w = where(args);
  if (g.group !== 1 || g.F % FB !== 0) throw unsupported(w, `filter-blocked convolution needs group 1 and ${FB} | F = ${g.F}`);
  const HWO = g.HO * g.WO, FBK = g.F / FB, KK = g.C * g.kh * g.kw;
  const total = g.N * FBK * HWO;
  const d = flatDispatch(total, args.limits, w);
  const b = convBindings(g);
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const acc = range(FB).map((j) => `  var a${j} = 0.0;`).join('\n');
  const fma = range(FB).map((j) => `        a${j} += v * w[wb + ${j * KK}u];`).join('\n');
  const store = (j: number) => {
    const y = `act(a${j}${g.hasBias ? ` + b[f0 + ${j}u]` : ''})`;
    const o = `o0 + ${j * HWO}u`;
    return `  out[${o}] = ${g.hasRes ? plusResidual(g.act, y, `res[${o}]`) : y};`;
  };
  const wgsl = `
${bindings(b.names)}
${constsU32({ C: g.C, HO: g.HO, WO: g.WO, HWO, F: g.F, FBK, KK, KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw, DH: g.dh, DW: g.dw })}
${constsI32({ H: g.H, W: g.W, PT: g.pt, PL: g.pl })}
${g.act.fn}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  let q = i % HWO;
  let ox = q % WO;
  let oy = q / WO;
  let fb = (i / HWO) % FBK;
  let n = i / (HWO * FBK);
  let f0 = fb * ${FB}u;
${acc}
  for (var c = 0u; c < C; c++) {
    let xc = (n * C + c) * u32(H);
    for (var kh = 0u; kh < KH; kh++) {
      let iy = i32(oy * SH + kh * DH) - PT;
      if (iy < 0i || iy >= H) { continue; }
      for (var kw = 0u; kw < KW; kw++) {
        let ix = i32(ox * SW + kw * DW) - PL;
        if (ix < 0i || ix >= W) { continue; }
        let v = x[(xc + u32(iy)) * u32(W) + u32(ix)];
        // w[f, c, kh, kw] of filter f0 + j at f0 * KK + j * KK + (c * KH + kh) * KW + kw.
        let wb = f0 * KK + (c * KH + kh) * KW + kw;
${fma}
      }
    }
  }
  let o0 = (n * F + f0) * HWO + q;
${range(FB).map(store).join('\n')}
}
`;
  return {
    name: `Conv(${g.kh}x${g.kw} s${g.sh} g${g.group} fb${FB})`,
    cacheKey: cacheKey('conv2d-fb', geomKey(g), FB, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: b.inputs,
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}
