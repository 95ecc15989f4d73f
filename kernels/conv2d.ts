// General 2-D convolution (standard convs such as stems and strided 1x1s; grouped ones where kernels/grouped-conv.ts
// does not take them, e.g. a depth multiplier over single-channel groups): one invocation per output
// element, looping over its group's input channels and the kernel window with every input coordinate
// checked against the image (the padding reads as zero). Epilogue: bias, activation, + residual.
//
// Ungrouped convolutions with a small window over few channels (the stems: 3x3 over 3 channels) take a filter-blocked
// form instead (conv2dFilterBlock): one invocation per output position and FB filters, each input value of the window
// read once for all FB filters (the per-element form reads it again for every filter: MobileNetV2's stem at batch 32
// moved 384 GB/s on an H200, 184 us, 12% of the pass). Where FB is a multiple of 4, the staged form (conv2dStaged)
// runs them: the filter block's weights go to workgroup memory once per workgroup, tap-major as vec4s of 4 filters,
// so a tap costs one vec4 load per 4 filters shared by PT positions. The filter-blocked form loads every weight from
// the storage buffer for every position (432 loads a position at 16 filters x 27 taps): at batch 32 those load
// instructions, not the bytes, bound MobileNetV2's stem (86 us for 70 MB on an H100, 822 GB/s; 99 us in f16).

import type { KernelArgs, KernelLimits, KernelProgram } from './program.js';
import { type ConvGeom, convBindings, convGeom, convStore, geomKey } from './conv-common.js';
import { unsupported } from '../src/errors.js';
import { bindings, cacheKey, ceilDiv, constsI32, constsU32, flatDispatch, layoutWorkgroups, plusResidual, threadCap, where } from './shader.js';

export function conv2d(args: KernelArgs, geom?: ConvGeom): KernelProgram {
  const g = geom ?? convGeom(args);
  const w = where(args);
  if (g.hasScale) throw unsupported(w, 'a channel scale (folded squeeze-excite Mul) is only read by pointwise convolutions');
  const st = stagedTiles(g, args.limits);
  if (st) return conv2dStaged(args, g, st);
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

/**
 * Tiles of the staged form: FB filters (a multiple of 4) x PT positions per invocation, WG invocations a workgroup
 * (consecutive positions of one image and one filter block; position q of a workgroup's chunk of WG x PT is invocation
 * q % WG's (q / WG)-th).
 */
export interface StagedTiles { fb: number; pt: number; wg: number }

export const stagedTileKey = (t: StagedTiles) => `FB${t.fb}PT${t.pt}WG${t.wg}`;

/** Bytes of workgroup memory of the staged form: the filter block's weights, f32. */
export const stagedStorage = (g: Pick<ConvGeom, 'C' | 'kh' | 'kw'>, t: Pick<StagedTiles, 'fb'>) => 4 * g.C * g.kh * g.kw * t.fb;

/**
 * The staged form's tiles for a layer the filter-blocked form would take (filterBlock > 1), or undefined where no
 * multiple of 4 divides F (the filter-blocked form runs it). The largest block (16, 8, 4) and then 2 positions per
 * invocation, as long as 65536 invocations remain (what fills an H100-class GPU), else the block the filter-blocked
 * rule picks and one position; within the device's workgroup memory. From bench/stem-conv.ts on an H100 (every tile
 * of 4-32 filters x 1-4 positions x 64-256 invocations on the zoo's stems, batch 1 and 32, fp32 and f16): at batch 32
 * 16 x 2 was the fastest or within 5% on MobileNetV2's, MobileNetV3's and ResNet's stems (MobileNetV2 fp32 38.2 us
 * against the filter-blocked form's 81.4; ResNet's 7x7 262 against 749), 32 filters 3-30% slower; at batch 1, 4 x 1
 * (MobileNetV2 4.7 us against 7.0) within 5% of the best.
 */
export function stagedTiles(g: ConvGeom, limits: KernelLimits): StagedTiles | undefined {
  if (filterBlock(g) === 1) return undefined;
  const positions = g.N * g.HO * g.WO;
  const wg = Math.min(128, threadCap(limits));
  const fits = (fb: number) => g.F % fb === 0 && stagedStorage(g, { fb }) <= limits.maxComputeWorkgroupStorageSize;
  for (const fb of [16, 8, 4]) {
    if (!fits(fb)) continue;
    for (const pt of [2, 1]) if (positions * (g.F / fb) / pt >= 65536) return { fb, pt, wg };
  }
  const fb = [16, 8, 4].find((b) => b <= filterBlock(g) && fits(b)) ?? [4, 8, 16].find(fits);
  return fb ? { fb, pt: 1, wg } : undefined;
}

/**
 * The staged form: workgroup w owns image n, filters f0..f0+FB-1 and a chunk of WG x PT output positions. Its
 * invocations first copy the block's weights into workgroup memory, ws[tap * FB/4 + j] = filters f0+4j..f0+4j+3 at
 * window tap (c, kh, kw); then each walks the window once for its PT positions, one x load per position and tap and
 * one vec4 of weights per 4 filters for all PT of them. Out-of-image taps read as zero (padding).
 */
export function conv2dStaged(args: KernelArgs, g: ConvGeom, t: StagedTiles): KernelProgram {
  const w = where(args);
  if (g.group !== 1 || t.fb % 4 !== 0 || g.F % t.fb !== 0) throw unsupported(w, `the staged convolution needs group 1 and a multiple of 4 filters per block dividing F = ${g.F}, got ${t.fb}`);
  if (!Number.isInteger(t.pt) || t.pt < 1 || !Number.isInteger(t.wg) || t.wg < 1 || t.wg > threadCap(args.limits)) throw unsupported(w, `staged convolution tiles ${stagedTileKey(t)} do not fit the device`);
  const bytes = stagedStorage(g, t);
  if (bytes > args.limits.maxComputeWorkgroupStorageSize) throw unsupported(w, `the staged convolution needs ${bytes} bytes of workgroup memory, the device allows ${args.limits.maxComputeWorkgroupStorageSize}`);
  const HWO = g.HO * g.WO, FBK = g.F / t.fb, KK = g.C * g.kh * g.kw, FB4 = t.fb / 4, CH = t.wg * t.pt;
  const chunks = ceilDiv(HWO, CH), total = g.N * FBK * chunks;
  const d = layoutWorkgroups(total, args.limits, w);
  const b = convBindings(g);
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const P = range(t.pt), J = range(FB4);
  const store = (p: number) => {
    const lines = [`  if (q${p} < HWO) {`, `    let o = (n * F + f0) * HWO + q${p};`];
    for (const j of J) {
      for (const k of range(4)) {
        const f = 4 * j + k;
        const y = `act(a${p}_${j}[${k}]${g.hasBias ? ` + b[f0 + ${f}u]` : ''})`;
        const o = `o + ${f * HWO}u`;
        lines.push(`    out[${o}] = ${g.hasRes ? plusResidual(g.act, y, `res[${o}]`) : y};`);
      }
    }
    lines.push('  }');
    return lines.join('\n');
  };
  const wgsl = `
${bindings(b.names)}
${constsU32({ C: g.C, HO: g.HO, WO: g.WO, HWO, F: g.F, FBK, KK, FB: t.fb, FB4, KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw, DH: g.dh, DW: g.dw, CHUNKS: chunks, TOTAL: total, DISPATCH_X: d.dispatchX })}
${constsI32({ H: g.H, W: g.W, PT: g.pt, PL: g.pl })}
${g.act.fn}
var<workgroup> ws: array<vec4<f32>, ${KK * FB4}>;

@compute @workgroup_size(${t.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let g = wid.x + wid.y * DISPATCH_X;
  // Uniform per workgroup: returning here splits no barrier.
  if (g >= TOTAL) { return; }
  let chunk = g % CHUNKS;
  let fb = (g / CHUNKS) % FBK;
  let n = g / (CHUNKS * FBK);
  let f0 = fb * FB;
  // w[f, c, kh, kw] = w[f * KK + tap]; ws holds the block's filters tap-major.
  for (var e = li; e < KK * FB; e += ${t.wg}u) {
    let j = e % FB;
    let tap = e / FB;
    ws[tap * FB4 + j / 4u][j % 4u] = w[(f0 + j) * KK + tap];
  }
  workgroupBarrier();
${P.map((p) => `  let q${p} = chunk * ${CH}u + li + ${p * t.wg}u;
  let oy${p} = i32((q${p} / WO) * SH) - PT;
  let ox${p} = i32((q${p} % WO) * SW) - PL;
  let in${p} = q${p} < HWO;`).join('\n')}
${P.flatMap((p) => J.map((j) => `  var a${p}_${j} = vec4<f32>(0.0);`)).join('\n')}
  for (var c = 0u; c < C; c++) {
    let xc = (n * C + c) * u32(H);
    for (var kh = 0u; kh < KH; kh++) {
      for (var kw = 0u; kw < KW; kw++) {
        let tap = (c * KH + kh) * KW + kw;
${P.map((p) => `        let iy${p} = oy${p} + i32(kh * DH);
        let ix${p} = ox${p} + i32(kw * DW);
        var v${p} = 0.0;
        if (in${p} && iy${p} >= 0i && iy${p} < H && ix${p} >= 0i && ix${p} < W) { v${p} = x[(xc + u32(iy${p})) * u32(W) + u32(ix${p})]; }`).join('\n')}
${J.map((j) => `        let w${j} = ws[tap * FB4 + ${j}u];\n${P.map((p) => `        a${p}_${j} += v${p} * w${j};`).join('\n')}`).join('\n')}
      }
    }
  }
${P.map(store).join('\n')}
}
`;
  return {
    name: `Conv(${g.kh}x${g.kw} s${g.sh} g${g.group} staged fb${t.fb}${t.pt > 1 ? ` pt${t.pt}` : ''})`,
    cacheKey: cacheKey('conv2d-staged', geomKey(g), stagedTileKey(t), `dx${d.dispatchX}`),
    wgsl,
    workgroupSize: [t.wg, 1, 1],
    dispatch: d.dispatch,
    inputs: b.inputs,
    outputs: 1,
    workgroupStorageBytes: bytes,
  };
}
