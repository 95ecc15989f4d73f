// FCM DW-PW (paper §3.2): a depthwise convolution followed by a pointwise one, in one kernel.
//
// Node (src/graph/ir.ts): inputs [x, w1 [C,1,KH,KW], b1|'', w2 [F,C,1,1], b2|'', residual|''];
// strides/pads/kernel/dilations are the depthwise layer's (the pointwise layer has stride 1, no pad).
//
// A workgroup owns one output tile: TH x TW positions of FB output filters of one image. It walks the input
// channels in chunks of CB: computes the depthwise result of the chunk for the tile into workgroup memory `mid`
// (epilogue 1 applied; x read from global memory, the overlapping windows of neighbouring threads hit L1), then
// each thread accumulates, for its RP = ceil(TH*TW / threads) positions, the FB pointwise outputs in vec4
// registers (the chunk's weights staged channel-major as vec4: one broadcast load feeds 4*RP FMAs). Epilogue 2
// and the residual follow. The intermediate never reaches global memory. When F > FB the filter blocks are split across workgroups, each recomputing the depthwise
// tile (the redundancy the planner's tileFilters2 trades).
//
// Tiles: CB = tileFilters1 (channels of the depthwise layer per step), FB = tileFilters2, TH = tileH, TW = tileW,
// each first clamped to the tensor. Clamping rule (clampTiles in fused-common.ts): while 4*CB*(TH*TW + 4*ceil(FB/4)) bytes (each array rounded up to 16) exceed
// maxComputeWorkgroupStorageSize, or a thread would hold more than maxRegsPerThread accumulators (RP*4*ceil(FB/4)), halve the
// largest of CB, FB, TH, TW (ties in that order). No further split for parallelism (see below): filter groups
// (FG threads per position) fill the workgroup instead, and on small maps channel slices (KS, dwpwSlices)
// multiply its threads.

import type { KernelArgs, KernelProgram } from './program.js';
import { clampTiles, dwpwShapes, epilogue, maxRegsPerThread, tileAttr } from './fused-common.js';
import { bindings, ceilDiv, constsU32, layoutWorkgroups, plusResidual, threadCap, threadsFor, wgFloats } from './shader.js';
import { invalid, overLimit } from '../src/errors.js';

export function fusedDwPw(args: KernelArgs): KernelProgram {
  const a = args.node.attrs;
  const { w, N, C, H, W, F, HO, WO, g, hasB1, hasB2, hasRes, channelsLast, resSampler } = dwpwShapes(args);
  const act1 = epilogue(a, 1, w), act2 = epilogue(a, 2, w);
  if (act2.post && !hasRes) throw invalid(w, 'activationPost applies after a residual add, and the node has no residual');

  const cb = { name: 'CB', value: Math.min(C, tileAttr(a, 'tileFilters1', 16, w)), min: 1 };
  const fb = { name: 'FB', value: Math.min(F, tileAttr(a, 'tileFilters2', 32, w)), min: 1 };
  const th = { name: 'TH', value: Math.min(HO, tileAttr(a, 'tileH', 8, w)), min: 1 };
  const tw = { name: 'TW', value: Math.min(WO, tileAttr(a, 'tileW', 8, w)), min: 1 };
  const cap = threadCap(args.limits);
  const ih = () => (th.value - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  const iw = () => (tw.value - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  const fb4 = () => ceilDiv(fb.value, 4);
  const floats = () => wgFloats(cb.value * th.value * tw.value, cb.value * fb4() * 4);
  // Threads: one per output position (at most the cap); each owns RP positions x FB filters (padded to a multiple
  // of 4) of accumulators.
  const regs = () => ceilDiv(th.value * tw.value, cap) * fb4() * 4;
  clampTiles([], [cb, fb, th, tw],
    () => floats() * 4 <= args.limits.maxComputeWorkgroupStorageSize && regs() <= maxRegsPerThread,
    w, () => `CB=${cb.value} FB=${fb.value} TH=${th.value} TW=${tw.value}, ${floats() * 4} bytes`);
  // No splitting for parallelism here (unlike PW-DW): splitting the filters recomputes the depthwise tile once
  // per block, and with filter groups a small tile already fills its workgroup. On the H200 the
  // planner's tiles as they are ran the FusePlanner reference's MobileNetV1 fp32 in 0.88 ms against 2.53 ms with the filters
  // split down to 8 for 264 workgroups, and the zoo models no slower.
  const CB = cb.value, FB = fb.value, TH = th.value, TW = tw.value, IH = ih(), IW = iw();
  const FB4 = ceilDiv(FB, 4);
  // Filter groups: FG threads share each position, each accumulating every FG-th vec4 of filters, so that a small
  // spatial tile still fills its workgroup (one thread per position left 32-64 threads per workgroup and
  // DW-PW modules at 56x56 ran 3-4x slower than their two layers at batch 8). The depthwise tile in workgroup memory
  // is shared by the groups: no recomputation.
  const FG = Math.max(1, Math.min(FB4, Math.floor(cap / (TH * TW))));
  const tilesY = ceilDiv(HO, TH), tilesX = ceilDiv(WO, TW), blocks = ceilDiv(F, FB);
  const total = N * blocks * tilesY * tilesX;
  // Channel slices (attribute splitK1; dwpwSlices below): with filter groups, KS times the threads, each slice
  // summing every KS-th channel of a chunk for its position and filters; the slices add up in workgroup memory `red`.
  const ksAttr = a.splitK1 === undefined ? undefined : tileAttr(a, 'splitK1', 1, w);
  if (ksAttr !== undefined && (ksAttr & (ksAttr - 1)) !== 0) throw invalid(w, `splitK1 must be a power of two, got ${ksAttr}`);
  if (ksAttr !== undefined && ksAttr > 1 && FG === 1) throw invalid(w, `splitK1 ${ksAttr}: channel slices need filter groups, and a ${TH}x${TW} tile leaves none`);
  const naOf = (fg: number) => (fg > 1 ? ceilDiv(FB4, fg) : 0);
  const storageFits = (ks: number) => ks === 1 || floats() * 4 + 16 * TH * TW * FG * naOf(FG) <= args.limits.maxComputeWorkgroupStorageSize;
  const KS = ksAttr ?? (FG > 1 ? dwpwSlices(total, threadsFor(TH * TW * FG, cap), CB, cap, storageFits) : 1);
  if (KS > 1 && threadsFor(TH * TW * FG * KS, cap) < TH * TW * FG * KS) throw overLimit(w, `splitK1 ${KS}: ${TH * TW * FG * KS} threads exceed the device's ${cap}`);
  // One slice: a tile larger than the workgroup (FG 1) takes RP positions per thread.
  const T = threadsFor(TH * TW * FG * KS, cap);
  const RP = FG > 1 ? 1 : ceilDiv(TH * TW, T);
  const NA = FG > 1 ? ceilDiv(FB4, FG) : RP * FB4;
  const redBytes = KS > 1 ? 16 * TH * TW * FG * NA : 0;
  if (floats() * 4 + redBytes > args.limits.maxComputeWorkgroupStorageSize) throw overLimit(w, `splitK1 ${KS}: ${floats() * 4 + redBytes} bytes of workgroup memory, the device allows ${args.limits.maxComputeWorkgroupStorageSize}`);
  const d = layoutWorkgroups(total, args.limits, w);

  const used = [
    { index: 0, name: 'x' }, { index: 1, name: 'w1' }, ...(hasB1 ? [{ index: 2, name: 'b1' }] : []),
    { index: 3, name: 'w2' }, ...(hasB2 ? [{ index: 4, name: 'b2' }] : []), ...(hasRes ? [{ index: 5, name: 'res' }] : []),
  ];
  const wgsl = `
${bindings(used.map((u) => u.name))}
${constsU32({
    N, C, H, W, F, HO, WO, KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw, DH: g.dh, DW: g.dw,
    CB, FB, FB4, FG, KS, TH, TW, IH, IW, T, RP, TILES_X: tilesX, TILES_Y: tilesY, BLOCKS: blocks, TOTAL: total, DISPATCH_X: d.dispatchX,
  })}
const PT: i32 = ${g.pt};
const PL: i32 = ${g.pl};
const IHW: u32 = IH * IW;
const THW: u32 = TH * TW;
${act1.fn}
${act2.fn}
${resSampler?.wgsl ?? ''}

var<workgroup> mid: array<f32, ${CB * TH * TW}>;
// The chunk's pointwise weights, channel-major, 4 filters per vec4: one broadcast load feeds 4*RP FMAs.
var<workgroup> wsT: array<vec4<f32>, ${CB * FB4}>;
${KS > 1 ? `// The slices' sums: position r, group fg, accumulator k at (k * FG + fg) * THW + r.
var<workgroup> red: array<vec4<f32>, ${TH * TW * FG * NA}>;` : ''}

/** Epilogue 2 and residual of output filter f (local fl) at output offset ob + f * HO * WO${channelsLast ? ', stored channels-last at (n * HO * WO + p) * F + f (ob = n * F * HO * WO + p)' : ''}. */
fn ep2(a: f32, f: u32, fl: u32, ob: u32) {
  if (fl >= FB || f >= F) { return; }
  let o = ob + f * HO * WO;
  var v = act2(a${hasB2 ? ' + b2[f]' : ''});
  ${hasRes ? `v = ${plusResidual(act2, 'v', resSampler ? 'resAt(o)' : 'res[o]')};` : ''}
  ${channelsLast ? 'out[((ob / (F * HO * WO)) * HO * WO + ob % (F * HO * WO)) * F + f] = v;' : 'out[o] = v;'}
}

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let g = wid.x + wid.y * DISPATCH_X;
  if (g >= TOTAL) { return; }
  let tx = g % TILES_X;
  let ty = (g / TILES_X) % TILES_Y;
  let f0 = ((g / (TILES_X * TILES_Y)) % BLOCKS) * FB;
  let n = g / (TILES_X * TILES_Y * BLOCKS);
  let oy0 = ty * TH;
  let ox0 = tx * TW;
  let iy0 = i32(oy0 * SH) - PT;
  let ix0 = i32(ox0 * SW) - PL;

  var acc: array<vec4<f32>, ${NA}>;
  for (var c0 = 0u; c0 < C; c0 += CB) {
    for (var e = li; e < CB * FB4; e += T) {
      let c = c0 + e / FB4;
      let fq = f0 + (e % FB4) * 4u;
      var v = vec4<f32>(0.0);
      if (c < C) {
        for (var j = 0u; j < 4u; j++) { if (fq + j < F) { v[j] = w2[(fq + j) * C + c]; } }
      }
      wsT[e] = v;
    }
    // Depthwise layer for the chunk (x read from global memory: the KHxKW windows of neighbouring threads
    // overlap in L1), epilogue 1, into workgroup memory. Zero outside the image: the depthwise padding.
    for (var e = li; e < CB * THW; e += T) {
      let c = c0 + e / THW;
      let oy = (e % THW) / TW;
      let ox = e % TW;
      var v = 0.0;
      if (c < C && oy0 + oy < HO && ox0 + ox < WO) {
        var s = 0.0;
        let xc = (n * C + c) * H;
        let ya = iy0 + i32(oy * SH);
        let xa = ix0 + i32(ox * SW);
        for (var kh = 0u; kh < KH; kh++) {
          let iy = ya + i32(kh * DH);
          if (iy < 0 || iy >= i32(H)) { continue; }
          for (var kw = 0u; kw < KW; kw++) {
            let ix = xa + i32(kw * DW);
            if (ix >= 0 && ix < i32(W)) { s += x[(xc + u32(iy)) * W + u32(ix)] * w1[(c * KH + kh) * KW + kw]; }
          }
        }
        v = act1(s${hasB1 ? ' + b1[c]' : ''});
      }
      mid[e] = v;
    }
    workgroupBarrier();
${FG > 1 ? `    // Pointwise layer: thread (position r, group fg) accumulates filter vec4s fg, fg + FG, ... of its position.
    let r = li % THW;
    let fg = (li / THW) % FG;
    let sl = li / (THW * FG);
    if (sl < KS) {
      for (var c = sl; c < CB; c += KS) {
        let mv = mid[c * THW + r];
        for (var k = 0u; k < ${NA}u; k++) {
          let f4 = fg + k * FG;
          if (f4 < FB4) { acc[k] += wsT[c * FB4 + f4] * mv; }
        }
      }
    }
    workgroupBarrier();
  }` : `    // Pointwise layer: each thread owns RP positions x FB filters (channels past C have zero weights).
    for (var q = 0u; q < RP; q++) {
      let r = min(li + q * T, THW - 1u);
      for (var c = 0u; c < CB; c++) {
        let mv = mid[c * THW + r];
        for (var f4 = 0u; f4 < FB4; f4++) { acc[q * FB4 + f4] += wsT[c * FB4 + f4] * mv; }
      }
    }
    workgroupBarrier();
  }`}
${FG > 1 ? `  // Accumulators read by constant component (.x .. .w) so that the compiler keeps them in registers.
  let r = li % THW;
  let fg = (li / THW) % FG;
  let sl = li / (THW * FG);${KS > 1 ? `
  // The slices add their sums in turn; the last one stores.
  for (var s = 0u; s + 1u < KS; s++) {
    if (sl == s) {
      for (var k = 0u; k < ${NA}u; k++) {
        let i = (k * FG + fg) * THW + r;
        red[i] = select(red[i], vec4<f32>(0.0), s == 0u) + acc[k];
      }
    }
    workgroupBarrier();
  }
  if (sl == KS - 1u) {
    for (var k = 0u; k < ${NA}u; k++) { acc[k] += red[(k * FG + fg) * THW + r]; }
  }` : ''}
  let y = oy0 + r / TW;
  let xo = ox0 + r % TW;
  if (sl == KS - 1u && y < HO && xo < WO) {
    let ob = (n * F * HO + y) * WO + xo;
    for (var k = 0u; k < ${NA}u; k++) {
      let f4 = fg + k * FG;
      if (f4 < FB4) {
        let a = acc[k];
        let f = f0 + f4 * 4u;
        ep2(a.x, f, f4 * 4u, ob);
        ep2(a.y, f + 1u, f4 * 4u + 1u, ob);
        ep2(a.z, f + 2u, f4 * 4u + 2u, ob);
        ep2(a.w, f + 3u, f4 * 4u + 3u, ob);
      }
    }
  }
}` : `  // Accumulators read by constant component (.x .. .w) so that the compiler keeps them in registers.
  for (var q = 0u; q < RP; q++) {
    let r = li + q * T;
    let y = oy0 + r / TW;
    let xo = ox0 + r % TW;
    if (r < THW && y < HO && xo < WO) {
      let ob = (n * F * HO + y) * WO + xo;
      for (var f4 = 0u; f4 < FB4; f4++) {
        let a = acc[q * FB4 + f4];
        let f = f0 + f4 * 4u;
        ep2(a.x, f, f4 * 4u, ob);
        ep2(a.y, f + 1u, f4 * 4u + 1u, ob);
        ep2(a.z, f + 2u, f4 * 4u + 2u, ob);
        ep2(a.w, f + 3u, f4 * 4u + 3u, ob);
      }
    }
  }
}
`}`;
  const cacheKey = `FusedDwPw|x${N}x${C}x${H}x${W}|F${F}|k${g.kh}x${g.kw}s${g.sh}x${g.sw}p${g.pt},${g.pl},${g.pb},${g.pr}d${g.dh}x${g.dw}` +
    `|b${+hasB1}${+hasB2}r${+hasRes}|${act1.key}|${act2.key}|CB${CB}FB${FB}TH${TH}TW${TW}RP${RP}T${T}FG${FG}${KS > 1 ? `KS${KS}` : ''}|dx${d.dispatchX}${channelsLast ? '|nhwc' : ''}${resSampler ? `|${resSampler.key}` : ''}`;
  return {
    name: `FusedDwPw(${args.node.name})`,
    cacheKey,
    wgsl,
    workgroupSize: [T, 1, 1],
    dispatch: d.dispatch,
    inputs: used.map((u) => u.index),
    outputs: 1,
    workgroupStorageBytes: floats() * 4 + redBytes,
  };
}

/**
 * Channel slices for a DW-PW module with filter groups: at small maps (batch 1, 28x28 and below) its tiles give a
 * hundred or so workgroups of 64 threads, each walking every channel of the depthwise chunk and then the pointwise
 * sum serially: a mostly idle GPU. Slices multiply the threads (the depthwise chunk spreads over them too) up to 256
 * a workgroup, while the module stays under 65536 threads and each slice keeps 8+ channels of a chunk.
 */
export function dwpwSlices(workgroups: number, threads: number, CB: number, cap: number, fits: (ks: number) => boolean = () => true): number {
  let ks = 1;
  while (ks < 8 && threads * ks * 2 <= Math.min(256, cap) && workgroups * threads * ks * 2 <= 65536 && CB >= 8 * ks * 2 && fits(ks * 2)) ks *= 2;
  return ks;
}
