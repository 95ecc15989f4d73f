// Depthwise KxK convolution (group = C = F, depth multiplier 1; any kernel, stride, pads, dilation). Each
// invocation computes RW neighbouring outputs of one row: it loads each input row's span once (RW outputs of a 3x3
// stride-1 window share 6 loads per row instead of 12) and the KxK weights once, so the kernel moves bytes instead
// of issuing loads. The window is unrolled in the generated WGSL. Rows and columns outside the image read as zero
// (padding); every load that can fall outside is guarded. With WO % RW == 0 and RW == 4 the outputs (and the
// residual) are stored as vec4.

import type { KernelArgs, KernelLimits, KernelProgram } from './program.js';
import { type ConvGeom, convBindings, convGeom, geomKey, isDepthwise } from './conv-common.js';
import { invalid, unsupported } from '../src/errors.js';
import { cacheKey, ceilDiv, constsI32, constsU32, flatDispatch, plusResidual, where } from './shader.js';

/**
 * Outputs per invocation, from bench/layer-kernels.ts on the H200 (MobileNetV2 at batch 1, 8, 32): stride 1 takes 4
 * (vec4 stores) where rows are a multiple of 4 or shorter than 8, else 2 (14x14: 20-25% faster than 4); stride 2
 * takes 2 on rows of 56 or more and 1 below (its spans barely overlap; wider ones ran up to 1.5x slower).
 */
export function depthwiseRowOutputs(g: Pick<ConvGeom, 'WO' | 'sw'>): number {
  const rw = g.sw > 1 ? (g.WO >= 56 ? 2 : 1) : g.WO % 4 === 0 || g.WO < 8 ? 4 : 2;
  return Math.min(rw, g.WO <= 1 ? 1 : g.WO <= 2 ? 2 : 4);
}

export function depthwise(args: KernelArgs, geom?: ConvGeom): KernelProgram {
  const g = geom ?? convGeom(args);
  const w = where(args);
  if (!isDepthwise(g)) throw invalid(w, `not a depthwise convolution (group ${g.group}, ${g.C} -> ${g.F} channels)`);
  if (g.hasScale) throw unsupported(w, 'a channel scale (folded squeeze-excite Mul) is only read by pointwise convolutions');
  return depthwiseRows(g, depthwiseRowOutputs(g), args.limits, w);
}

/**
 * RW outputs per invocation. Every loop is unrolled here: the RW sums and each input row's span are named variables,
 * the KH x KW window is straight-line code, and a row or column is bounds-checked only where some invocation's window
 * can leave the image. On the H200 this was 0-2% faster than WGSL loops over arrays (all four zoo models at batch 32
 * and 8, 2026-12-02): the driver had unrolled those too.
 */
export function depthwiseRows(g: ConvGeom, rw: number, limits: KernelLimits, w: string): KernelProgram {
  const WQ = ceilDiv(g.WO, rw);
  const total = g.N * g.C * g.HO * WQ;
  const d = flatDispatch(total, limits, w);
  const vec = rw === 4 && g.WO % 4 === 0;
  const b = convBindings(g);
  const vecOf = new Set(vec ? ['res', 'out'] : []);
  const decl = (n: string, k: number, access: string) => `@group(0) @binding(${k}) var<storage, ${access}> ${n}: ${vecOf.has(n) ? 'array<vec4<f32>>' : 'array<f32>'};`;
  const epi = (s: string, f: string) => `act(${s}${g.hasBias ? ` + b[${f}]` : ''})`;
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  // Span positions some output of the invocation reads, and whether any invocation's position k can fall outside
  // [0, W): ix0 runs from -PL to (WQ - 1) * RW * SW - PL.
  const used = [...new Set(range(rw).flatMap((j) => range(g.kw).map((kw) => j * g.sw + kw * g.dw)))].sort((a, b2) => a - b2);
  const ixMax = (WQ - 1) * rw * g.sw - g.pl;
  const colCheck = (k: number) => k - g.pl < 0 || ixMax + k >= g.W;
  const rowCheck = (kh: number) => kh * g.dh - g.pt < 0 || (g.HO - 1) * g.sh - g.pt + kh * g.dh >= g.H;
  const body = range(g.kh).map((kh) => {
    const loads = used.map((k) => colCheck(k)
      ? `      let r${k} = xAt(xr + ${k}i, ix0 + ${k}i);`
      : `      let r${k} = x[u32(xr + ${k}i)];`);
    const fmas = range(g.kw).flatMap((kw) => [
      `      let w${kw} = w[wb + ${kh * g.kw + kw}u];`,
      ...range(rw).map((j) => `      s${j} = fma(r${j * g.sw + kw * g.dw}, w${kw}, s${j});`),
    ]);
    const inner = [`      let xr = xrow + ${kh * g.dh}i * W;`, ...loads, ...fmas].join('\n');
    return rowCheck(kh)
      ? `  {\n    let iy = iy0 + ${kh * g.dh}i;\n    if (iy >= 0i && iy < H) {\n${inner}\n    }\n  }`
      : `  {\n    {\n${inner}\n    }\n  }`;
  }).join('\n');
  const withRes = (v: string, r: string, v4: boolean) => (g.hasRes ? plusResidual(g.act, v, r, v4) : v);
  const store = vec
    ? `let o = (nc * HO + oy) * (WO / 4u) + q;
  out[o] = ${withRes(`vec4<f32>(${range(4).map((j) => epi(`s${j}`, 'c')).join(', ')})`, 'res[o]', true)};`
    : `let o = (nc * HO + oy) * WO + ox0;
${range(rw).map((j) => `  ${g.WO % rw === 0 ? '' : `if (ox0 + ${j}u < WO) `}{ out[o + ${j}u] = ${withRes(epi(`s${j}`, 'c'), `res[o + ${j}u]`, false)}; }`).join('\n')}`;
  const wgsl = `
${b.names.map((n, k) => decl(n, k, 'read')).join('\n')}
${decl('out', b.names.length, 'read_write')}
${constsU32({ C: g.C, HO: g.HO, WO: g.WO, WQ, RW: rw, KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw })}
${constsI32({ H: g.H, W: g.W, PT: g.pt, PL: g.pl })}
${g.act.fn}

/** x at flat index i, 0 where column ix is outside the image (zero padding). */
fn xAt(i: i32, ix: i32) -> f32 {
  if (ix < 0i || ix >= W) { return 0.0; }
  return x[u32(i)];
}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  let q = i % WQ;
  let oy = (i / WQ) % HO;
  let nc = i / (WQ * HO);
  let c = nc % C;
  let ox0 = q * RW;
  let iy0 = i32(oy * SH) - PT;
  let ix0 = i32(ox0 * SW) - PL;
  // Row iy0's first span position; row kh adds kh * DH rows.
  let xrow = i32(nc) * H * W + iy0 * W + ix0;
  let wb = c * KH * KW;
${range(rw).map((j) => `  var s${j} = 0.0;`).join('\n')}
${body}
  ${store}
}
`;
  return {
    name: `Conv(dw ${g.kh}x${g.kw} s${g.sh})`,
    cacheKey: cacheKey('depthwise', geomKey(g), `RW${rw}`, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: b.inputs,
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}
