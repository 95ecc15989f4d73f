// Grouped KxK convolution, 1 < group < C (RegNet's 3x3 convs of 16-channel groups, ResNeXt): out[n, f] sums only the
// CG = C / group input channels of f's group. A workgroup computes a tile of TH x TW output positions x TF output
// channels, all within one group of one image. Per step it stages BC of the group's input channels over the tile's
// receptive field (the padded patch, zeros outside the image) and those channels' weights of the TF filters in
// workgroup memory; every staged input value is then read by all TF filters' threads and every weight by all
// positions' threads (the general kernel, conv2d.ts, loads both from global memory once per output). Each thread
// accumulates RP neighbouring outputs of one row (their input spans overlap: a 3x3 stride-1 row of 2 outputs reads
// 4 values per tap row instead of 6) x RF filters; with RF a multiple of 4 the weights are staged as vec4s over
// filters and each tap is one vec4 load and RP vec4 FMAs. Where a step holds all of a group's channels, the tile's
// weights (consecutive in memory) are read from global memory as vec4s. The window is unrolled in the generated WGSL.
//
// Tiles come from groupedTiles (the rule is stated there); the cache key names them. The f16 form is the generic
// half-storage rewrite (kernels/f16.ts): the staged tiles and the sums stay f32.

import type { KernelArgs, KernelLimits, KernelProgram } from './program.js';
import { type ConvGeom, convBindings, convGeom, convStore, geomKey } from './conv-common.js';
import { invalid, overLimit, unsupported } from '../src/errors.js';
import { cacheKey, ceilDiv, constsI32, constsU32, layoutWorkgroups, threadCap, wgFloats, where } from './shader.js';

/** Whether the grouped kernel takes a convolution: more than one group, fewer groups than input channels. */
export const isGrouped = (g: Pick<ConvGeom, 'group' | 'C'>) => g.group > 1 && g.group < g.C;

/**
 * Whether the registry runs a grouped conv on this kernel (else on the general conv2d kernel). Measured on an H100 on
 * regnet_x_400mf's grouped layers (bench/grouped-conv.ts --auto-only, 2026-12-06): stride 1 1.23-1.31x faster than the
 * general kernel at batch 1 and 1.72-1.87x at batch 32; stride 2 0.87x and 0.49-0.73x (the rule's tiles stage an input
 * window twice as wide for the same outputs): those stay on the general kernel.
 */
export const usesGroupedKernel = (g: Pick<ConvGeom, 'group' | 'C' | 'sh' | 'sw'>) => isGrouped(g) && g.sh === 1 && g.sw === 1;

export interface GroupedTiles {
  /** Output rows and columns of a workgroup's tile. */
  th: number; tw: number;
  /** Output channels of a workgroup's tile, all in one group (the group's last tile may be partial). */
  tf: number;
  /** Neighbouring outputs of one row per thread, and output channels per thread (tf a multiple of rf). */
  rp: number; rf: number;
  /** Input channels staged per step (the group's last step may be partial: zeros). */
  bc: number;
}

/** Input rows and columns the tile reads: its receptive field, its width rounded up to whole threads' rows. */
function patchOf(g: ConvGeom, t: Pick<GroupedTiles, 'th' | 'tw' | 'rp'>): { ih: number; iw: number } {
  return {
    ih: (t.th - 1) * g.sh + (g.kh - 1) * g.dh + 1,
    iw: (ceilDiv(t.tw, t.rp) * t.rp - 1) * g.sw + (g.kw - 1) * g.dw + 1,
  };
}

/** Bytes of workgroup memory: the staged input patch and weights of bc channels. */
export function groupedStorage(g: ConvGeom, t: GroupedTiles): number {
  const { ih, iw } = patchOf(g, t);
  return 4 * wgFloats(t.bc * ih * iw, t.bc * g.kh * g.kw * t.tf);
}

export const groupedThreads = (t: Pick<GroupedTiles, 'th' | 'tw' | 'rp' | 'tf' | 'rf'>) => ceilDiv(t.tw, t.rp) * t.th * (t.tf / t.rf);

export const groupedWorkgroups = (g: ConvGeom, t: Pick<GroupedTiles, 'th' | 'tw' | 'tf'>) =>
  g.N * g.group * ceilDiv(g.F / g.group, t.tf) * ceilDiv(g.HO, t.th) * ceilDiv(g.WO, t.tw);

/** Workgroups that give every SM of an H100-class GPU (132) two: below it the rule shrinks the spatial tile. */
const fillWorkgroups = 264;

/**
 * The tile rule (a first rule from the shapes, not yet fitted to GPU timings: bench/grouped-conv.ts times it
 * against other tiles and the general kernel on regnet_x_400mf's layers):
 * - filters: the whole group (tf = FG) up to 32 filters, else 32 (a group's input is staged once per filter tile);
 *   rf = 4 where tf is a multiple of 4 (vec4 weights), else 2 or 1;
 * - positions: up to 8 x 8 (th = min(HO, 8), tw = min(WO, 8)), rp = 2 outputs per thread where rows have 4 or more;
 * - while there are fewer than 264 workgroups and a smaller tile still has 64 threads, halve the longer side of the
 *   spatial tile (small maps at batch 1: more, smaller workgroups over one long loop; the halo re-read is cheap);
 * - bc: the fewest equal steps over the group's CG channels whose patch and weights fit the workgroup storage.
 */
export function groupedTiles(g: ConvGeom, limits: KernelLimits): GroupedTiles {
  const FG = g.F / g.group, CG = g.C / g.group;
  const tf = Math.min(FG, 32);
  const rf = tf % 4 === 0 ? 4 : tf % 2 === 0 ? 2 : 1;
  const rp = g.WO >= 4 ? 2 : 1;
  let th = Math.min(g.HO, 8), tw = Math.min(g.WO, 8);
  const cap = threadCap(limits);
  const threads = (h: number, w: number) => groupedThreads({ th: h, tw: w, rp, tf, rf });
  while (threads(th, tw) > cap && th > 1) th = ceilDiv(th, 2);
  for (;;) {
    if (groupedWorkgroups(g, { th, tw, tf }) >= fillWorkgroups) break;
    const [h, w] = th >= tw ? [ceilDiv(th, 2), tw] : [th, ceilDiv(tw, 2)];
    if ((h === th && w === tw) || threads(h, w) < 64) break;
    th = h; tw = w;
  }
  let steps = 1;
  const t = (s: number): GroupedTiles => ({ th, tw, tf, rp, rf, bc: ceilDiv(CG, s) });
  while (steps < CG && groupedStorage(g, t(steps)) > limits.maxComputeWorkgroupStorageSize) steps++;
  return t(steps);
}

export function groupedConv(args: KernelArgs, geom?: ConvGeom, tiles?: GroupedTiles): KernelProgram {
  const g = geom ?? convGeom(args);
  const w = where(args);
  if (!isGrouped(g)) throw invalid(w, `not a grouped convolution (group ${g.group}, ${g.C} input channels)`);
  if (g.hasScale) throw unsupported(w, 'a channel scale (folded squeeze-excite Mul) is only read by pointwise convolutions');
  return groupedConvProgram(g, tiles ?? groupedTiles(g, args.limits), args.limits, w);
}

/** The program of one tile choice (bench/grouped-conv.ts and the tests build other tiles than the rule's). */
export function groupedConvProgram(g: ConvGeom, t: GroupedTiles, limits: KernelLimits, w: string): KernelProgram {
  const CG = g.C / g.group, FG = g.F / g.group;
  const { th: TH, tw: TW, tf: TF, rp: RP, rf: RF, bc: BC } = t;
  for (const [k, v] of Object.entries(t)) {
    if (!Number.isInteger(v) || v < 1) throw invalid(w, `grouped conv tile ${k} must be a positive integer, got ${v}`);
  }
  if (TF % RF !== 0) throw invalid(w, `grouped conv tiles: ${TF} filters per tile are not a multiple of ${RF} per thread`);
  const T = groupedThreads(t);
  if (T > threadCap(limits)) throw overLimit(w, `grouped conv tiles need ${T} threads per workgroup, the device allows ${threadCap(limits)}`);
  const bytes = groupedStorage(g, t);
  if (bytes > limits.maxComputeWorkgroupStorageSize) {
    throw overLimit(w, `grouped conv tiles need ${bytes} bytes of workgroup storage, the device allows ${limits.maxComputeWorkgroupStorageSize}`);
  }
  const { ih: IH, iw: IW } = patchOf(g, t);
  const KK = g.kh * g.kw, TXN = ceilDiv(TW, RP);
  const vec = RF % 4 === 0;
  const RF4 = RF / 4;
  const total = groupedWorkgroups(g, t);
  const d = layoutWorkgroups(total, limits, w);
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const b = convBindings(g);

  // Weights staged at ws[(cl * KK + tap) * TF + fl] (vec4: [(cl * KK + tap) * TF/4 + fl/4]), read by filter slice.
  // With all of a group's channels in one step, a tile's weights are TF x CG x KK consecutive floats: with CG * KK a
  // multiple of 4 they are read as vec4s (none straddles two filters) and scattered into ws.
  const wGlobalVec = BC === CG && (CG * KK) % 4 === 0;
  const wsAt = (r: string, fl: string) => (vec ? `ws[(${r}) * (TF / 4u) + (${fl}) / 4u][(${fl}) % 4u]` : `ws[(${r}) * TF + ${fl}]`);
  const stageW = wGlobalVec
    ? `  for (var e = li; e < TF * (CG * KK / 4u); e += NT) {
    let fl = e / (CG * KK / 4u);
    var v = vec4<f32>(0.0);
    if (fg0 + fl < FG) { v = w[gf0 * (CG * KK / 4u) + e]; }
    let r = (e % (CG * KK / 4u)) * 4u;
${range(4).map((k) => `    ${wsAt(`r + ${k}u`, 'fl')} = v[${k}];`).join('\n')}
  }`
    : vec
    ? `  for (var e = li; e < BC * KK * (TF / 4u); e += NT) {
    let tap = e % KK;
    let cl = (e / KK) % BC;
    let fq = e / (KK * BC);
    var v = vec4<f32>(0.0);
    if (c0 + cl < CG) {
${range(4).map((k) => `      if (fg0 + fq * 4u + ${k}u < FG) { v[${k}] = w[((gf0 + fq * 4u + ${k}u) * CG + c0 + cl) * KK + tap]; }`).join('\n')}
    }
    ws[(cl * KK + tap) * (TF / 4u) + fq] = v;
  }`
    : `  for (var e = li; e < BC * KK * TF; e += NT) {
    let tap = e % KK;
    let cl = (e / KK) % BC;
    let fl = e / (KK * BC);
    var v = 0.0;
    if (c0 + cl < CG && fg0 + fl < FG) { v = w[((gf0 + fl) * CG + c0 + cl) * KK + tap]; }
    ws[(cl * KK + tap) * TF + fl] = v;
  }`;

  // One input channel's contribution: per kernel row, the span positions some output of the thread reads, then per
  // tap the filters' weights and RP x RF FMAs.
  const used = [...new Set(range(RP).flatMap((j) => range(g.kw).map((kw) => j * g.sw + kw * g.dw)))].sort((a, c) => a - c);
  const accs = vec
    ? range(RP).flatMap((j) => range(RF4).map((q) => `  var a${j}_${q} = vec4<f32>(0.0);`))
    : range(RP).flatMap((j) => range(RF).map((k) => `  var a${j}_${k} = 0.0;`));
  const step = range(g.kh).map((kh) => {
    const loads = used.map((p) => `      let r${p} = xs[xr + ${kh * g.dh * IW + p}u];`);
    const fmas = range(g.kw).flatMap((kw) => {
      const tap = kh * g.kw + kw;
      if (vec) {
        return [
          ...range(RF4).map((q) => `      let w${tap}_${q} = ws[wb + ${tap}u * (TF / 4u) + ${q}u];`),
          ...range(RP).flatMap((j) => range(RF4).map((q) => `      a${j}_${q} = fma(vec4<f32>(r${j * g.sw + kw * g.dw}), w${tap}_${q}, a${j}_${q});`)),
        ];
      }
      return [
        ...range(RF).map((k) => `      let w${tap}_${k} = ws[wb + ${tap}u * TF + ${k}u];`),
        ...range(RP).flatMap((j) => range(RF).map((k) => `      a${j}_${k} = fma(r${j * g.sw + kw * g.dw}, w${tap}_${k}, a${j}_${k});`)),
      ];
    });
    return `      {\n${[...loads, ...fmas].map((l) => `  ${l}`).join('\n')}\n      }`;
  }).join('\n');
  const acc = (j: number, k: number) => (vec ? `a${j}_${Math.floor(k / 4)}[${k % 4}]` : `a${j}_${k}`);
  const stores = range(RP).flatMap((j) => range(RF).map((k) => `  if (oy < HO && ox0 + ${j}u < WO && fl0 + ${k}u < FG) {
    let f = grp * FG + fl0 + ${k}u;
    let o = ((n * F + f) * HO + oy) * WO + ox0 + ${j}u;
    ${convStore(g, acc(j, k), 'o', 'f')}
  }`)).join('\n');

  const wgsl = `
${b.names.map((n, k) => `@group(0) @binding(${k}) var<storage, read> ${n}: ${n === 'w' && wGlobalVec ? 'array<vec4<f32>>' : 'array<f32>'};`).join('\n')}
@group(0) @binding(${b.names.length}) var<storage, read_write> out: array<f32>;
${constsU32({
    C: g.C, F: g.F, HO: g.HO, WO: g.WO, CG, FG, KK, BC, TF, TH, TW, IH, IW, TXN, NT: T,
    NCH: ceilDiv(CG, BC), FT: ceilDiv(FG, TF), TY: ceilDiv(g.HO, TH), TXT: ceilDiv(g.WO, TW), G: g.group,
    TOTAL: total, DISPATCH_X: d.dispatchX,
  })}
${constsI32({ H: g.H, W: g.W, PT: g.pt, PL: g.pl, SH: g.sh, SW: g.sw })}
${g.act.fn}

var<workgroup> xs: array<f32, ${BC * IH * IW}>;
var<workgroup> ws: array<${vec ? 'vec4<f32>' : 'f32'}, ${vec ? BC * KK * TF / 4 : BC * KK * TF}>;

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let wg = wid.x + wid.y * DISPATCH_X;
  // Uniform per workgroup: returning here cannot split a barrier.
  if (wg >= TOTAL) { return; }
  // Filter tiles innermost: neighbouring workgroups stage the same input patch (L2 hits).
  let ft = wg % FT;
  let tx0 = (wg / FT) % TXT;
  let ty0 = (wg / (FT * TXT)) % TY;
  let grp = (wg / (FT * TXT * TY)) % G;
  let n = wg / (FT * TXT * TY * G);
  let fg0 = ft * TF;
  let gf0 = grp * FG + fg0;
  let oy0 = ty0 * TH;
  let ox00 = tx0 * TW;
  let iy0 = i32(oy0) * SH - PT;
  let ix0 = i32(ox00) * SW - PL;
  let xn = n * C + grp * CG;
  // This thread: row ty of the tile, outputs tx * RP.. of it, filters tz * RF.. of the tile.
  let tx = li % TXN;
  let ty = (li / TXN) % TH;
  let tz = li / (TXN * TH);
  let oy = oy0 + ty;
  let ox0 = ox00 + tx * ${RP}u;
  let fl0 = fg0 + tz * ${RF}u;
${accs.join('\n')}
  for (var ch = 0u; ch < NCH; ch++) {
    let c0 = ch * BC;
    // The patch of BC channels, zeros outside the image (padding) and past the group's channels.
    for (var e = li; e < BC * IH * IW; e += NT) {
      let ix = e % IW;
      let iy = (e / IW) % IH;
      let cl = e / (IW * IH);
      let gy = iy0 + i32(iy);
      let gx = ix0 + i32(ix);
      var v = 0.0;
      if (c0 + cl < CG && gy >= 0i && gy < H && gx >= 0i && gx < W) { v = x[((xn + c0 + cl) * u32(H) + u32(gy)) * u32(W) + u32(gx)]; }
      xs[e] = v;
    }
${stageW.split('\n').map((l) => `  ${l}`).join('\n')}
    workgroupBarrier();
    for (var cl = 0u; cl < BC; cl++) {
      let xr = (cl * IH + ty * ${g.sh}u) * IW + tx * ${RP * g.sw}u;
      let wb = cl * KK * ${vec ? '(TF / 4u)' : 'TF'} + tz * ${vec ? RF4 : RF}u;
${step}
    }
    workgroupBarrier();
  }
${stores}
}
`;
  return {
    name: `Conv(grouped ${g.kh}x${g.kw} s${g.sh} g${g.group})`,
    cacheKey: cacheKey('grouped', geomKey(g), `th${TH}tw${TW}tf${TF}rp${RP}rf${RF}bc${BC}`, `dx${d.dispatchX}`),
    wgsl,
    workgroupSize: [T, 1, 1],
    dispatch: d.dispatch,
    inputs: b.inputs,
    outputs: 1,
    workgroupStorageBytes: bytes,
  };
}
