// FCM DW-PW (paper §3.2): a depthwise convolution followed by a pointwise one, in one kernel.
//
// Node (src/graph/ir.ts): inputs [x, w1 [C,1,KH,KW], b1|'', w2 [F,C,1,1], b2|'', residual|''];
// strides/pads/kernel/dilations are the depthwise layer's (the pointwise layer has stride 1, no pad).
//
// A workgroup owns one output tile: TH x TW positions of FB output filters of one image. It walks the input
// channels in chunks of CB: stages the chunk's input tile (CB x IH x IW, the depthwise receptive field) and the
// pointwise weights (FB x CB) in workgroup memory, computes the depthwise result of the chunk for the tile into
// workgroup memory `mid` (epilogue 1 applied), and accumulates the pointwise outputs in registers. Epilogue 2
// and the residual follow. The intermediate never reaches global memory. When F > FB the filter blocks are split
// across workgroups, each recomputing the depthwise tile (the redundancy the planner's tileFilters2 trades).
//
// Tiles: CB = tileFilters1 (channels of the depthwise layer per step), FB = tileFilters2, TH = tileH, TW = tileW,
// each first clamped to the tensor. Clamping rule (clampTiles in fused-common.ts): while
// 4*(CB*IH*IW + CB*TH*TW + FB*CB) bytes exceed maxComputeWorkgroupStorageSize, or a thread would hold more than
// maxRegsPerThread accumulators (FB*TH*TW / threads), halve the largest of CB, FB, TH, TW (ties in that order).
// CB is one of the planner's tiles here (it sets how much of the intermediate is on chip), so it is not a
// staging chunk.

import type { KernelProgram } from './program.js';
import {
  type FusedKernelArgs, bindings, ceilDiv, checkOutput, clampTiles, constsU32, convOut, dwGeometry, epilogue,
  expectShape, layoutDispatch, maxRegsPerThread, present, shape, threadCap, threadsFor, tileAttr, where,
} from './fused-common.js';
import { invalid } from '../src/errors.js';

export function fusedDwPw(args: FusedKernelArgs): KernelProgram {
  const w = where(args);
  const a = args.node.attrs;
  const [N, C, H, W] = shape(args, 0, 4, 'input');
  const w1 = shape(args, 1, 4, 'depthwise weights');
  if (w1[0] !== C || w1[1] !== 1) throw invalid(w, `depthwise weights [${w1.join(',')}] must be [${C},1,KH,KW] (depth multiplier 1)`);
  const g = dwGeometry(a, w1, w);
  const w2 = shape(args, 3, 4, 'pointwise weights');
  const F = w2[0];
  if (w2[1] !== C || w2[2] !== 1 || w2[3] !== 1) throw invalid(w, `pointwise weights [${w2.join(',')}] do not match ${C} channels (expected [F,${C},1,1])`);
  const [HO, WO] = convOut(H, W, g);
  if (HO < 1 || WO < 1) throw invalid(w, `depthwise output ${HO}x${WO} is empty`);
  checkOutput(args, [N, F, HO, WO]);
  const hasB1 = present(args, 2), hasB2 = present(args, 4), hasRes = present(args, 5);
  if (hasB1) expectShape(args, 2, [C], 'bias 1');
  if (hasB2) expectShape(args, 4, [F], 'bias 2');
  if (hasRes) expectShape(args, 5, [N, F, HO, WO], 'residual');
  const act1 = epilogue(a, 1, w), act2 = epilogue(a, 2, w);

  const cb = { name: 'CB', value: Math.min(C, tileAttr(a, 'tileFilters1', 16, w)), min: 1 };
  const fb = { name: 'FB', value: Math.min(F, tileAttr(a, 'tileFilters2', 32, w)), min: 1 };
  const th = { name: 'TH', value: Math.min(HO, tileAttr(a, 'tileH', 8, w)), min: 1 };
  const tw = { name: 'TW', value: Math.min(WO, tileAttr(a, 'tileW', 8, w)), min: 1 };
  const cap = threadCap(args.limits);
  const ih = () => (th.value - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  const iw = () => (tw.value - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  const floats = () => cb.value * ih() * iw() + cb.value * th.value * tw.value + fb.value * cb.value;
  clampTiles([], [cb, fb, th, tw],
    () => floats() * 4 <= args.limits.maxComputeWorkgroupStorageSize && ceilDiv(fb.value * th.value * tw.value, cap) <= maxRegsPerThread,
    w, () => `CB=${cb.value} FB=${fb.value} TH=${th.value} TW=${tw.value}, ${floats() * 4} bytes`);
  const CB = cb.value, FB = fb.value, TH = th.value, TW = tw.value, IH = ih(), IW = iw();
  const T = threadsFor(Math.max(FB * TH * TW, CB * TH * TW, CB * IH * IW), cap);
  const OPT = ceilDiv(FB * TH * TW, T);
  const tilesY = ceilDiv(HO, TH), tilesX = ceilDiv(WO, TW), blocks = ceilDiv(F, FB);
  const total = N * blocks * tilesY * tilesX;
  const d = layoutDispatch(total, args.limits, w);

  const used = [
    { index: 0, name: 'x' }, { index: 1, name: 'w1' }, ...(hasB1 ? [{ index: 2, name: 'b1' }] : []),
    { index: 3, name: 'w2' }, ...(hasB2 ? [{ index: 4, name: 'b2' }] : []), ...(hasRes ? [{ index: 5, name: 'res' }] : []),
  ];
  const wgsl = `
${bindings(used)}
${constsU32({
    N, C, H, W, F, HO, WO, KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw, DH: g.dh, DW: g.dw,
    CB, FB, TH, TW, IH, IW, T, OPT, TILES_X: tilesX, TILES_Y: tilesY, BLOCKS: blocks, TOTAL: total, DISPATCH_X: d.dispatchX,
  })}
const PT: i32 = ${g.pt};
const PL: i32 = ${g.pl};
const IHW: u32 = IH * IW;
const THW: u32 = TH * TW;
${act1.fn}
${act2.fn}

var<workgroup> xs: array<f32, ${CB * IH * IW}>;
var<workgroup> mid: array<f32, ${CB * TH * TW}>;
var<workgroup> ws: array<f32, ${FB * CB}>;

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

  var acc: array<f32, OPT>;
  for (var c0 = 0u; c0 < C; c0 += CB) {
    // Stage the input tile of this channel chunk (zero outside the image: the depthwise padding).
    for (var e = li; e < CB * IHW; e += T) {
      let c = c0 + e / IHW;
      let iy = iy0 + i32((e % IHW) / IW);
      let ix = ix0 + i32(e % IW);
      var v = 0.0;
      if (c < C && iy >= 0 && iy < i32(H) && ix >= 0 && ix < i32(W)) {
        v = x[((n * C + c) * H + u32(iy)) * W + u32(ix)];
      }
      xs[e] = v;
    }
    for (var e = li; e < FB * CB; e += T) {
      let f = f0 + e / CB;
      let c = c0 + e % CB;
      var v = 0.0;
      if (f < F && c < C) { v = w2[f * C + c]; }
      ws[e] = v;
    }
    workgroupBarrier();
    // Depthwise layer for the chunk, epilogue 1, into workgroup memory.
    for (var e = li; e < CB * THW; e += T) {
      let cl = e / THW;
      let c = c0 + cl;
      let oy = (e % THW) / TW;
      let ox = e % TW;
      var v = 0.0;
      if (c < C) {
        var s = 0.0;
        let base = cl * IHW + oy * SH * IW + ox * SW;
        for (var kh = 0u; kh < KH; kh++) {
          for (var kw = 0u; kw < KW; kw++) {
            s += xs[base + kh * DH * IW + kw * DW] * w1[(c * KH + kh) * KW + kw];
          }
        }
        v = act1(s${hasB1 ? ' + b1[c]' : ''});
      }
      mid[e] = v;
    }
    workgroupBarrier();
    // Pointwise layer: accumulate this chunk's contribution.
    for (var i = 0u; i < OPT; i++) {
      let e = li + i * T;
      if (e < FB * THW) {
        let wrow = (e / THW) * CB;
        let r = e % THW;
        var s = acc[i];
        for (var c = 0u; c < CB; c++) { s += ws[wrow + c] * mid[c * THW + r]; }
        acc[i] = s;
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < OPT; i++) {
    let e = li + i * T;
    let f = f0 + e / THW;
    let y = oy0 + (e % THW) / TW;
    let xo = ox0 + e % TW;
    if (e < FB * THW && f < F && y < HO && xo < WO) {
      let o = ((n * F + f) * HO + y) * WO + xo;
      var v = act2(acc[i]${hasB2 ? ' + b2[f]' : ''});
      ${hasRes ? 'v += res[o];' : ''}
      out[o] = v;
    }
  }
}
`;
  const cacheKey = `FusedDwPw|x${N}x${C}x${H}x${W}|F${F}|k${g.kh}x${g.kw}s${g.sh}x${g.sw}p${g.pt},${g.pl},${g.pb},${g.pr}d${g.dh}x${g.dw}` +
    `|b${+hasB1}${+hasB2}r${+hasRes}|${act1.key}|${act2.key}|CB${CB}FB${FB}TH${TH}TW${TW}T${T}|dx${d.dispatchX}`;
  return {
    name: `FusedDwPw(${args.node.name})`,
    cacheKey,
    wgsl,
    workgroupSize: [T, 1, 1],
    dispatch: d.dispatch,
    inputs: used.map((u) => u.index),
    outputs: 1,
    uniforms: [],
    workgroupStorageBytes: floats() * 4,
  };
}
