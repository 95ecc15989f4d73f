// FCM PW-DW (paper §3.1): a pointwise convolution followed by a depthwise one, in one kernel.
//
// Node (src/graph/ir.ts): inputs [x, w1 [M,C,1,1], b1|'', w2 [M,1,KH,KW], b2|'', residual|''];
// strides/pads/kernel/dilations are the depthwise layer's (the pointwise layer has stride 1, no pad).
//
// A workgroup owns one output tile: TH x TW positions of FB channels of one image. It computes the pointwise
// outputs of the tile *and its halo* (IH x IW = the depthwise receptive field of the tile; the halo is recomputed
// by the neighbouring tiles: the paper's redundant computation) for its FB channels into workgroup memory `mid`,
// applies epilogue 1 (bias, activation; zero where the position is the depthwise layer's padding), then runs the
// depthwise convolution from `mid`, epilogue 2 and the residual. The intermediate never reaches global memory.
//
// Pointwise phase: input channels are staged in chunks of CK (x tile CK x IH x IW, weights FB x CK) and each
// thread accumulates ceil(FB*IH*IW / T) intermediate values in registers.
//
// Tiles: FB = tileFilters1 (falls back to tileFilters2), TH = tileH, TW = tileW, all clamped to the tensor first.
// Clamping rule (clampTiles in fused-common.ts): while 4*(CK*IH*IW + FB*CK + FB*IH*IW) bytes exceed
// maxComputeWorkgroupStorageSize, or a thread would hold more than maxRegsPerThread accumulators, halve CK down to
// 4, then halve the largest of FB, TH, TW (ties in that order), then CK down to 1.

import type { KernelProgram } from './program.js';
import {
  type FusedKernelArgs, bindings, ceilDiv, checkOutput, clampTiles, constsU32, convOut, dwGeometry, epilogue,
  expectShape, layoutDispatch, maxRegsPerThread, present, shape, threadCap, threadsFor, tileAttr, where,
} from './fused-common.js';
import { invalid } from '../src/errors.js';

export function fusedPwDw(args: FusedKernelArgs): KernelProgram {
  const w = where(args);
  const a = args.node.attrs;
  const [N, C, H, W] = shape(args, 0, 4, 'input');
  const w1 = shape(args, 1, 4, 'pointwise weights');
  const M = w1[0];
  if (w1[1] !== C || w1[2] !== 1 || w1[3] !== 1) throw invalid(w, `pointwise weights [${w1.join(',')}] do not match input channels ${C} (expected [M,${C},1,1])`);
  const w2 = shape(args, 3, 4, 'depthwise weights');
  if (w2[0] !== M || w2[1] !== 1) throw invalid(w, `depthwise weights [${w2.join(',')}] must be [${M},1,KH,KW] (depth multiplier 1)`);
  const g = dwGeometry(a, w2, w);
  const [HO, WO] = convOut(H, W, g);
  if (HO < 1 || WO < 1) throw invalid(w, `depthwise output ${HO}x${WO} is empty`);
  checkOutput(args, [N, M, HO, WO]);
  const hasB1 = present(args, 2), hasB2 = present(args, 4), hasRes = present(args, 5);
  if (hasB1) expectShape(args, 2, [M], 'bias 1');
  if (hasB2) expectShape(args, 4, [M], 'bias 2');
  if (hasRes) expectShape(args, 5, [N, M, HO, WO], 'residual');
  const act1 = epilogue(a, 1, w), act2 = epilogue(a, 2, w);

  const fb = { name: 'FB', value: Math.min(M, tileAttr(a, 'tileFilters1', tileAttr(a, 'tileFilters2', 16, w), w)), min: 1 };
  const th = { name: 'TH', value: Math.min(HO, tileAttr(a, 'tileH', 8, w)), min: 1 };
  const tw = { name: 'TW', value: Math.min(WO, tileAttr(a, 'tileW', 8, w)), min: 1 };
  const ck = { name: 'CK', value: Math.min(C, 16), min: 1 };
  const cap = threadCap(args.limits);
  const ih = () => (th.value - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  const iw = () => (tw.value - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  const floats = () => ck.value * ih() * iw() + fb.value * ck.value + fb.value * ih() * iw();
  clampTiles([ck], [fb, th, tw],
    () => floats() * 4 <= args.limits.maxComputeWorkgroupStorageSize && ceilDiv(fb.value * ih() * iw(), cap) <= maxRegsPerThread,
    w, () => `FB=${fb.value} TH=${th.value} TW=${tw.value} CK=${ck.value}, ${floats() * 4} bytes`);
  const FB = fb.value, TH = th.value, TW = tw.value, CK = ck.value, IH = ih(), IW = iw();
  const T = threadsFor(Math.max(FB * IH * IW, FB * TH * TW, CK * IH * IW), cap);
  const EPT = ceilDiv(FB * IH * IW, T);
  const tilesY = ceilDiv(HO, TH), tilesX = ceilDiv(WO, TW), blocks = ceilDiv(M, FB);
  const total = N * blocks * tilesY * tilesX;
  const d = layoutDispatch(total, args.limits, w);

  const used = [
    { index: 0, name: 'x' }, { index: 1, name: 'w1' }, ...(hasB1 ? [{ index: 2, name: 'b1' }] : []),
    { index: 3, name: 'w2' }, ...(hasB2 ? [{ index: 4, name: 'b2' }] : []), ...(hasRes ? [{ index: 5, name: 'res' }] : []),
  ];
  const wgsl = `
${bindings(used)}
${constsU32({
    N, C, H, W, M, HO, WO, KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw, DH: g.dh, DW: g.dw,
    FB, TH, TW, CK, IH, IW, T, EPT, TILES_X: tilesX, TILES_Y: tilesY, BLOCKS: blocks, TOTAL: total, DISPATCH_X: d.dispatchX,
  })}
const PT: i32 = ${g.pt};
const PL: i32 = ${g.pl};
const IHW: u32 = IH * IW;
${act1.fn}
${act2.fn}

var<workgroup> xs: array<f32, ${CK * IH * IW}>;
var<workgroup> ws: array<f32, ${FB * CK}>;
var<workgroup> mid: array<f32, ${FB * IH * IW}>;

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
  // Top-left of the tile's receptive field in the intermediate (= x's spatial grid); negative inside the padding.
  let iy0 = i32(oy0 * SH) - PT;
  let ix0 = i32(ox0 * SW) - PL;

  // Pointwise layer over the tile and its halo, input channels in chunks of CK.
  var acc: array<f32, EPT>;
  for (var c0 = 0u; c0 < C; c0 += CK) {
    for (var e = li; e < CK * IHW; e += T) {
      let c = c0 + e / IHW;
      let iy = iy0 + i32((e % IHW) / IW);
      let ix = ix0 + i32(e % IW);
      var v = 0.0;
      if (c < C && iy >= 0 && iy < i32(H) && ix >= 0 && ix < i32(W)) {
        v = x[((n * C + c) * H + u32(iy)) * W + u32(ix)];
      }
      xs[e] = v;
    }
    for (var e = li; e < FB * CK; e += T) {
      let f = f0 + e / CK;
      let c = c0 + e % CK;
      var v = 0.0;
      if (f < M && c < C) { v = w1[f * C + c]; }
      ws[e] = v;
    }
    workgroupBarrier();
    for (var i = 0u; i < EPT; i++) {
      let e = li + i * T;
      if (e < FB * IHW) {
        let wrow = (e / IHW) * CK;
        let r = e % IHW;
        var s = acc[i];
        for (var c = 0u; c < CK; c++) { s += ws[wrow + c] * xs[c * IHW + r]; }
        acc[i] = s;
      }
    }
    workgroupBarrier();
  }
  // Epilogue 1. Positions outside the image are the depthwise layer's zero padding, not act(bias).
  for (var i = 0u; i < EPT; i++) {
    let e = li + i * T;
    if (e < FB * IHW) {
      let f = f0 + e / IHW;
      let iy = iy0 + i32((e % IHW) / IW);
      let ix = ix0 + i32(e % IW);
      var v = 0.0;
      if (f < M && iy >= 0 && iy < i32(H) && ix >= 0 && ix < i32(W)) {
        v = act1(acc[i]${hasB1 ? ' + b1[f]' : ''});
      }
      mid[e] = v;
    }
  }
  workgroupBarrier();

  // Depthwise layer from workgroup memory, epilogue 2, residual.
  for (var e = li; e < FB * TH * TW; e += T) {
    let fl = e / (TH * TW);
    let oy = (e % (TH * TW)) / TW;
    let ox = e % TW;
    let f = f0 + fl;
    let y = oy0 + oy;
    let xo = ox0 + ox;
    if (f < M && y < HO && xo < WO) {
      var s = 0.0;
      let base = fl * IHW + oy * SH * IW + ox * SW;
      for (var kh = 0u; kh < KH; kh++) {
        for (var kw = 0u; kw < KW; kw++) {
          s += mid[base + kh * DH * IW + kw * DW] * w2[(f * KH + kh) * KW + kw];
        }
      }
      let o = ((n * M + f) * HO + y) * WO + xo;
      var v = act2(s${hasB2 ? ' + b2[f]' : ''});
      ${hasRes ? 'v += res[o];' : ''}
      out[o] = v;
    }
  }
}
`;
  const cacheKey = `FusedPwDw|x${N}x${C}x${H}x${W}|M${M}|k${g.kh}x${g.kw}s${g.sh}x${g.sw}p${g.pt},${g.pl},${g.pb},${g.pr}d${g.dh}x${g.dw}` +
    `|b${+hasB1}${+hasB2}r${+hasRes}|${act1.key}|${act2.key}|FB${FB}TH${TH}TW${TW}CK${CK}T${T}|dx${d.dispatchX}`;
  return {
    name: `FusedPwDw(${args.node.name})`,
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
