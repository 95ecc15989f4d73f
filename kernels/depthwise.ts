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
 * The depthwise program for f16 storage (before kernels/f16.ts's rewrite; the registry takes it where every tensor of
 * the node is f16): depthwiseVecRows with depthwiseHalfTiles.
 */
export function depthwiseHalf(args: KernelArgs, geom?: ConvGeom): KernelProgram {
  const g = geom ?? convGeom(args);
  const w = where(args);
  if (!isDepthwise(g)) throw invalid(w, `not a depthwise convolution (group ${g.group}, ${g.C} -> ${g.F} channels)`);
  if (g.hasScale) throw unsupported(w, 'a channel scale (folded squeeze-excite Mul) is only read by pointwise convolutions');
  return depthwiseVecRows(g, depthwiseHalfTiles(g), args.limits, w);
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

/**
 * A depthwise kernel's work split with vector loads: `rw` outputs of one row per invocation (`rh` rows of them,
 * default 1), the input read as vectors of `vx` elements (1, 2 or 4; needs W % vx == 0 and rw * stride % vx == 0,
 * depthwiseVecFits).
 */
export interface DepthwiseVecTiles { rw: number; vx: number; rh?: number }

/** Whether depthwiseVecRows can take `t`: rows of whole vectors, and every invocation's span at the same offset in its first vector. */
export function depthwiseVecFits(g: Pick<ConvGeom, 'W' | 'sw'>, t: DepthwiseVecTiles): boolean {
  return [1, 2, 4].includes(t.vx) && [1, 2, 4, 8].includes(t.rw) && [1, 2, 4].includes(t.rh ?? 1) && g.W % t.vx === 0 && (t.rw * g.sw) % t.vx === 0;
}

/**
 * The f16 depthwise kernel's split (the registry's choice where every tensor of the node is f16): the first of these
 * that fits (depthwiseVecFits), measured on the H200 at batch 32 on MobileNetV2's ten depthwise layers (BENCHMARKS.md,
 * "fp16 layers at batch 32"), each the fastest of 4-9 splits on its layer:
 * - stride 1: 4 outputs x 2 rows per invocation on vec4 loads (112/56/28-wide rows: 20.0 / 23.4 / 9.0 us against
 *   24.6 / 27.8 / 10.4 with one row); 8 outputs on vec2 loads where rows are even but not a multiple of 4 (14 wide:
 *   6.7 and 8.3 us against 8.9 and 12.2 with 2); else 4 on scalar loads (7 wide).
 * - stride 2: 4 outputs x 2 rows on vec4 loads to rows of 56 and more (112 -> 56: 26.8 against 34.4 us), 2 x 2 rows
 *   below (56 -> 28: 10.3 against 18.9; 28 -> 14: 5.4 against 7.8); 4 outputs on vec2 loads where the input row is
 *   not a multiple of 4 (14 -> 7: 5.7 against 6.5).
 * Layers no candidate fits keep the fp32 rule's outputs per invocation with the widest load that fits.
 */
export function depthwiseHalfTiles(g: Pick<ConvGeom, 'W' | 'WO' | 'sw'>): DepthwiseVecTiles {
  const candidates: DepthwiseVecTiles[] = g.sw === 1
    ? [{ rw: 4, vx: 4, rh: 2 }, { rw: 8, vx: 2 }, { rw: 4, vx: 1 }]
    : g.sw === 2 ? [{ rw: g.WO >= 56 ? 4 : 2, vx: 4, rh: 2 }, { rw: 4, vx: 2 }] : [];
  const fit = candidates.find((t) => t.rw <= Math.max(1, g.WO) && depthwiseVecFits(g, t));
  if (fit) return fit;
  const rw = depthwiseRowOutputs(g);
  const vx = [4, 2].find((v) => depthwiseVecFits(g, { rw, vx: v })) ?? 1;
  return { rw, vx };
}

/**
 * Depthwise KxK convolution with vector loads along W: each invocation computes `rw` neighbouring outputs of one row
 * and reads each input row's span as aligned vectors of `vx` elements. Rows hold whole vectors (W % vx == 0) and
 * every invocation's first output column times the stride is a multiple of vx, so the span starts at the same
 * offset `lead` in its first vector for every invocation and each vector lies wholly inside or wholly outside the
 * image (padding reads as a zero vector). Outputs (and the residual) are stored as vectors of the widest of 4, 2, 1
 * that divides both rw and WO. With rh > 1 an invocation computes rh rows of rw outputs and loads each input row it
 * needs once for all of them (3x3 stride 1: 4 rows for 2 output rows instead of 6). The KH x KW weights are read
 * once into registers. Sums, bias and activation in f32, as depthwiseRows (the layer is memory-bound, so f16 sums
 * would save no time and add error); with f16 storage (kernels/f16.ts) only the loads and stores change type. Loops
 * unrolled in the generator, as depthwiseRows.
 */
export function depthwiseVecRows(g: ConvGeom, t: DepthwiseVecTiles, limits: KernelLimits, w: string): KernelProgram {
  const { rw, vx } = t;
  const rh = t.rh ?? 1;
  if (!depthwiseVecFits(g, t)) throw new Error(`internal: ${w}: depthwise tiles rw ${rw} vx ${vx} rh ${rh} do not fit W ${g.W} stride ${g.sw}`);
  const WQ = ceilDiv(g.WO, rw), HQ = ceilDiv(g.HO, rh);
  const total = g.N * g.C * HQ * WQ;
  const d = flatDispatch(total, limits, w);
  const vo = [4, 2, 1].find((v) => rw % v === 0 && g.WO % v === 0)!;
  const vt = (n: number) => (n === 1 ? 'f32' : `vec${n}<f32>`);
  const comp = (n: number, k: number) => (n === 1 ? '' : `.${'xyzw'[k]}`);
  const b = convBindings(g);
  const typeOf: Record<string, string> = { x: vt(vx), res: vt(vo), out: vt(vo) };
  const decl = (n: string, k: number, access: string) => `@group(0) @binding(${k}) var<storage, ${access}> ${n}: array<${typeOf[n] ?? 'f32'}>;`;
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  // Span element e (0: the first column some output of the invocation reads) lies at lead + e from the vector-aligned
  // base; vector m of the span is the input's vector column vc0 + m, vc0 = q * STEP - BASE0.
  const lead = (vx - (g.pl % vx)) % vx;
  const base0 = (g.pl + lead) / vx, step = (rw * g.sw) / vx, WV = g.W / vx;
  const at = (j: number, kw: number) => lead + j * g.sw + kw * g.dw;
  const used = [...new Set(range(rw).flatMap((j) => range(g.kw).map((kw) => Math.floor(at(j, kw) / vx))))].sort((a, b2) => a - b2);
  const colCheck = (m: number) => m - base0 < 0 || (WQ - 1) * step + m - base0 >= WV;
  // Input row r (from the invocation's first, iy0) feeds output row i through window row kh where r = i * SH + kh * DH.
  const feeds = (r: number) => range(rh).flatMap((i) => range(g.kh).filter((kh) => i * g.sh + kh * g.dh === r).map((kh) => ({ i, kh })));
  const rows = range((rh - 1) * g.sh + (g.kh - 1) * g.dh + 1).filter((r) => feeds(r).length);
  const rowCheck = (r: number) => r - g.pt < 0 || (HQ - 1) * rh * g.sh - g.pt + r >= g.H;
  const tap = (j: number, kw: number) => `r${Math.floor(at(j, kw) / vx)}${comp(vx, at(j, kw) % vx)}`;
  const body = rows.map((r) => {
    const loads = used.map((m) => (colCheck(m)
      ? `      let r${m} = xAt(xr + ${m}i, vc0 + ${m}i);`
      : `      let r${m} = x[u32(xr + ${m}i)];`));
    const fmas = feeds(r).flatMap(({ i, kh }) => range(g.kw).flatMap((kw) =>
      range(rw).map((j) => `      s${i}_${j} = fma(${tap(j, kw)}, w${kh * g.kw + kw}, s${i}_${j});`)));
    const inner = [`      let xr = xrow + ${r * WV}i;`, ...loads, ...fmas].join('\n');
    return rowCheck(r)
      ? `  {\n    let iy = iy0 + ${r}i;\n    if (iy >= 0i && iy < H) {\n${inner}\n    }\n  }`
      : `  {\n    {\n${inner}\n    }\n  }`;
  }).join('\n');
  const epi = (i: number, j: number) => `act(s${i}_${j}${g.hasBias ? ' + bias' : ''})`;
  const stores = range(rh).map((i) => {
    const rowStores = range(rw / vo).map((m) => {
      const value = (k: number) => {
        const v = epi(i, m * vo + k);
        return g.hasRes ? plusResidual(g.act, v, `rv${comp(vo, k)}`, false) : v;
      };
      const vec = vo === 1 ? value(0) : `${vt(vo)}(${range(vo).map(value).join(', ')})`;
      const inner = `${g.hasRes ? `let rv = res[o + ${m}u]; ` : ''}out[o + ${m}u] = ${vec};`;
      // With WO % rw != 0 the last invocation of a row has vectors past its end (whole vectors: WO % vo == 0).
      return `    ${g.WO % rw === 0 ? '' : `if (ox0 + ${m * vo}u < WO) `}{ ${inner} }`;
    }).join('\n');
    // With HO % rh != 0 the last invocation of a column has rows past the bottom.
    const guard = i > 0 && g.HO % rh !== 0 ? `if (oy0 + ${i}u < HO) ` : '';
    return `  ${guard}{\n    let o = ((nc * HO + oy0 + ${i}u) * WO + ox0) / ${vo}u;\n${rowStores}\n  }`;
  }).join('\n');
  const wgsl = `
${b.names.map((n, k) => decl(n, k, 'read')).join('\n')}
${decl('out', b.names.length, 'read_write')}
${constsU32({ C: g.C, HO: g.HO, WO: g.WO, WQ, HQ, RW: rw, RH: rh, KH: g.kh, KW: g.kw, SH: g.sh, STEP: step })}
${constsI32({ H: g.H, WV, PT: g.pt, BASE0: base0 })}
${g.act.fn}

/** Input vector at flat vector index i, zeros where vector column vc is outside the image (zero padding). */
fn xAt(i: i32, vc: i32) -> ${vt(vx)} {
  if (vc < 0i || vc >= WV) { return ${vt(vx)}(0.0); }
  return x[u32(i)];
}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  let q = i % WQ;
  let oy0 = ((i / WQ) % HQ) * RH;
  let nc = i / (WQ * HQ);
  let c = nc % C;
  let ox0 = q * RW;
  let iy0 = i32(oy0 * SH) - PT;
  let vc0 = i32(q * STEP) - BASE0;
  // Row iy0's first span vector; input row r of the invocation adds r rows of WV vectors.
  let xrow = (i32(nc) * H + iy0) * WV + vc0;
  let wb = c * KH * KW;
${range(g.kh * g.kw).map((k) => `  let w${k} = w[wb + ${k}u];`).join('\n')}
${g.hasBias ? '  let bias = b[c];\n' : ''}${range(rh).flatMap((i) => range(rw).map((j) => `  var s${i}_${j} = 0.0;`)).join('\n')}
${body}
${stores}
}
`;
  return {
    name: `Conv(dw ${g.kh}x${g.kw} s${g.sh})`,
    cacheKey: cacheKey('depthwise', geomKey(g), `RW${rw}V${vx}${rh > 1 ? `H${rh}` : ''}`, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: b.inputs,
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}
