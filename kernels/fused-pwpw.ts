// FCM PW-PW (paper §3.3): two pointwise convolutions in one kernel.
//
// Node (src/graph/ir.ts): inputs [x, w1 [M,C,1,1], b1|'', w2 [F,M,1,1], b2|'', residual|'']; both stride 1.
//
// A workgroup owns P = TH*TW consecutive pixels (of the flattened H*W plane: a pointwise layer has no halo, so a
// run of pixels is the same tile without the waste of partial rows) and FB output filters of one image. It walks
// the intermediate channels in chunks of MB: computes the first layer's outputs for the chunk over the tile
// (input channels staged in chunks of CK: x tile CK x P, weights MB x CK; accumulated in registers), applies
// epilogue 1 into workgroup memory `mid` (MB x P), stages the second layer's weights (FB x MB) and accumulates
// the second layer's outputs in registers. Epilogue 2 and the residual follow. The intermediate never reaches
// global memory. When F > FB, filter blocks are split across workgroups, each recomputing the first layer.
//
// Tiles: MB = tileFilters1, FB = tileFilters2, P = tileH*tileW, first clamped to the tensor (MB <= M, FB <= F,
// P <= H*W). Clamping rule (clampTiles in fused-common.ts): while the arrays CK*P, MB*CK, MB*P, FB*MB (floats, each rounded
// up to 16 bytes) exceed
// maxComputeWorkgroupStorageSize, or a thread would hold more than maxRegsPerThread accumulators
// (MB*P/threads + FB*P/threads), halve CK down to 4, then the largest of MB, FB, P (ties in that order), then
// CK down to 1.

import type { KernelArgs, KernelProgram } from './program.js';
import { clampTiles, epilogue, maxRegsPerThread, tileAttr } from './fused-common.js';
import {
  bindings, ceilDiv, constsU32, expectInput, expectOutput, hasInput, inShape, layoutWorkgroups, pow2AtMost, threadCap, threadsFor,
  wgFloats, where,
  plusResidual,
} from './shader.js';
import { invalid, unsupported } from '../src/errors.js';

export function fusedPwPw(args: KernelArgs): KernelProgram {
  const w = where(args);
  const a = args.node.attrs;
  for (const key of ['strides', 'dilations']) {
    const v = a[key];
    if (v !== undefined && !(Array.isArray(v) && v.every((s) => s === 1))) throw unsupported(w, `FusedPwPw with ${key} ${JSON.stringify(v)}: only 1 is supported`);
  }
  const pads = a.pads;
  if (pads !== undefined && !(Array.isArray(pads) && pads.every((s) => s === 0))) throw unsupported(w, `FusedPwPw with pads ${JSON.stringify(pads)}`);
  const [N, C, H, W] = inShape(args, 0, 'input', 4);
  const w1 = inShape(args, 1, 'pointwise weights 1', 4);
  const M = w1[0];
  if (w1[1] !== C || w1[2] !== 1 || w1[3] !== 1) throw invalid(w, `pointwise weights 1 [${w1.join(',')}] do not match input channels ${C} (expected [M,${C},1,1])`);
  const w2 = inShape(args, 3, 'pointwise weights 2', 4);
  const F = w2[0];
  if (w2[1] !== M || w2[2] !== 1 || w2[3] !== 1) throw invalid(w, `pointwise weights 2 [${w2.join(',')}] do not match ${M} channels (expected [F,${M},1,1])`);
  expectOutput(args, [N, F, H, W]);
  const hasB1 = hasInput(args, 2), hasB2 = hasInput(args, 4), hasRes = hasInput(args, 5);
  if (hasB1) expectInput(args, 2, [M], 'bias 1');
  if (hasB2) expectInput(args, 4, [F], 'bias 2');
  if (hasRes) expectInput(args, 5, [N, F, H, W], 'residual');
  const act1 = epilogue(a, 1, w), act2 = epilogue(a, 2, w);
  if (act2.post && !hasRes) throw invalid(w, 'activationPost applies after a residual add, and the node has no residual');

  const HW = H * W;
  if (HW === 1) {
    const k = { N, C, M, F, hasB1, hasB2, hasRes, act1, act2 };
    return fusedPwPwVector(args, k);
  }
  const mb = { name: 'MB', value: Math.min(M, tileAttr(a, 'tileFilters1', 32, w)), min: 1 };
  const fb = { name: 'FB', value: Math.min(F, tileAttr(a, 'tileFilters2', 32, w)), min: 1 };
  const p = { name: 'P', value: Math.min(HW, tileAttr(a, 'tileH', 8, w) * tileAttr(a, 'tileW', 8, w)), min: 1 };
  const ck = { name: 'CK', value: Math.min(C, 16), min: 1 };
  const cap = threadCap(args.limits);
  const floats = () => wgFloats(ck.value * p.value, mb.value * ck.value, mb.value * p.value, fb.value * mb.value);
  clampTiles([ck], [mb, fb, p],
    () => floats() * 4 <= args.limits.maxComputeWorkgroupStorageSize &&
      ceilDiv(mb.value * p.value, cap) + ceilDiv(fb.value * p.value, cap) <= maxRegsPerThread,
    w, () => `MB=${mb.value} FB=${fb.value} P=${p.value} CK=${ck.value}, ${floats() * 4} bytes`);
  const MB = mb.value, FB = fb.value, P = p.value, CK = ck.value;
  const T = threadsFor(Math.max(MB * P, FB * P, CK * P), cap);
  const EPT1 = ceilDiv(MB * P, T), EPT2 = ceilDiv(FB * P, T);
  const tiles = ceilDiv(HW, P), blocks = ceilDiv(F, FB);
  const total = N * blocks * tiles;
  const d = layoutWorkgroups(total, args.limits, w);

  const used = [
    { index: 0, name: 'x' }, { index: 1, name: 'w1' }, ...(hasB1 ? [{ index: 2, name: 'b1' }] : []),
    { index: 3, name: 'w2' }, ...(hasB2 ? [{ index: 4, name: 'b2' }] : []), ...(hasRes ? [{ index: 5, name: 'res' }] : []),
  ];
  const wgsl = `
${bindings(used.map((u) => u.name))}
${constsU32({ N, C, HW, M, F, MB, FB, P, CK, T, EPT1, EPT2, TILES: tiles, BLOCKS: blocks, TOTAL: total, DISPATCH_X: d.dispatchX })}
${act1.fn}
${act2.fn}

var<workgroup> xs: array<f32, ${CK * P}>;
var<workgroup> w1s: array<f32, ${MB * CK}>;
var<workgroup> mid: array<f32, ${MB * P}>;
var<workgroup> w2s: array<f32, ${FB * MB}>;

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let g = wid.x + wid.y * DISPATCH_X;
  if (g >= TOTAL) { return; }
  let p0 = (g % TILES) * P;
  let f0 = ((g / TILES) % BLOCKS) * FB;
  let n = g / (TILES * BLOCKS);

  var acc2: array<f32, EPT2>;
  for (var m0 = 0u; m0 < M; m0 += MB) {
    // First layer for intermediate channels m0 .. m0+MB over the tile.
    // Zeroed explicitly: a declaration without initializer inside a loop is not reliably re-zeroed per
    // iteration by every backend (seen on Dawn + lavapipe).
    var acc1: array<f32, EPT1>;
    for (var i = 0u; i < EPT1; i++) { acc1[i] = 0.0; }
    for (var c0 = 0u; c0 < C; c0 += CK) {
      for (var e = li; e < CK * P; e += T) {
        let c = c0 + e / P;
        let px = p0 + e % P;
        var v = 0.0;
        if (c < C && px < HW) { v = x[(n * C + c) * HW + px]; }
        xs[e] = v;
      }
      for (var e = li; e < MB * CK; e += T) {
        let m = m0 + e / CK;
        let c = c0 + e % CK;
        var v = 0.0;
        if (m < M && c < C) { v = w1[m * C + c]; }
        w1s[e] = v;
      }
      workgroupBarrier();
      for (var i = 0u; i < EPT1; i++) {
        let e = li + i * T;
        if (e < MB * P) {
          let wrow = (e / P) * CK;
          let r = e % P;
          var s = acc1[i];
          for (var c = 0u; c < CK; c++) { s += w1s[wrow + c] * xs[c * P + r]; }
          acc1[i] = s;
        }
      }
      workgroupBarrier();
    }
    // Epilogue 1 into workgroup memory; channels past M are zero so they add nothing below.
    for (var i = 0u; i < EPT1; i++) {
      let e = li + i * T;
      if (e < MB * P) {
        let m = m0 + e / P;
        var v = 0.0;
        if (m < M) { v = act1(acc1[i]${hasB1 ? ' + b1[m]' : ''}); }
        mid[e] = v;
      }
    }
    for (var e = li; e < FB * MB; e += T) {
      let f = f0 + e / MB;
      let m = m0 + e % MB;
      var v = 0.0;
      if (f < F && m < M) { v = w2[f * M + m]; }
      w2s[e] = v;
    }
    workgroupBarrier();
    // Second layer: accumulate the chunk's contribution.
    for (var i = 0u; i < EPT2; i++) {
      let e = li + i * T;
      if (e < FB * P) {
        let wrow = (e / P) * MB;
        let r = e % P;
        var s = acc2[i];
        for (var m = 0u; m < MB; m++) { s += w2s[wrow + m] * mid[m * P + r]; }
        acc2[i] = s;
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < EPT2; i++) {
    let e = li + i * T;
    let f = f0 + e / P;
    let px = p0 + e % P;
    if (e < FB * P && f < F && px < HW) {
      let o = (n * F + f) * HW + px;
      var v = act2(acc2[i]${hasB2 ? ' + b2[f]' : ''});
      ${hasRes ? `v = ${plusResidual(act2, 'v', 'res[o]')};` : ''}
      out[o] = v;
    }
  }
}
`;
  const cacheKey = `FusedPwPw|x${N}x${C}x${H}x${W}|M${M}F${F}|b${+hasB1}${+hasB2}r${+hasRes}|${act1.key}|${act2.key}` +
    `|MB${MB}FB${FB}P${P}CK${CK}T${T}|dx${d.dispatchX}`;
  return {
    name: `FusedPwPw(${args.node.name})`,
    cacheKey,
    wgsl,
    workgroupSize: [T, 1, 1],
    dispatch: d.dispatch,
    inputs: used.map((u) => u.index),
    outputs: 1,
    workgroupStorageBytes: floats() * 4,
  };
}

/**
 * PW-PW on 1x1 maps (squeeze-excite: pool -> conv -> act -> conv -> gate). The tiled kernel above gives
 * one pixel per workgroup and leaves almost every thread idle while each walks long dot products. Here a workgroup
 * owns one image and FB output filters (FB = ceil(F / 32): ~32 workgroups per image; with 4 * R2 EfficientNet-B0's
 * 480- and 672-channel gates ran on 2-3 workgroups, 38 us against 18 us LBL on the H200). Workgroups of the same
 * image recompute the M*C intermediate: the paper's redundant computation, small next to a second dispatch here.
 * Every global load is issued before the first wait: each thread loads its slices of both weight rows
 * into registers (vec4 where the row length is a multiple of 4) while x is staged, so the chain is one round of
 * loads, the FMAs and two reductions. The kernel before it waited on x, then on the first layer's weights, then on
 * the second's (strided scalar loads): 1.5-1.8x slower on the zoo's gates at batch 1 and 8 on the H200
 * (2026-12-02). KS1 threads per first-layer product (all M at once where T / M allows:
 * with 32 per product the 480 -> 20 gate took three rounds; attribute splitK1 sets the starting split), KS2 per
 * output; both are doubled while a thread would hold more than 16 vectors of a row per round (up to T threads per
 * product, past which the 16 is exceeded: rows longer than 16 * T vectors).
 */
function fusedPwPwVector(args: KernelArgs, k: {
  N: number; C: number; M: number; F: number; hasB1: boolean; hasB2: boolean; hasRes: boolean;
  act1: { fn: string; key: string }; act2: { fn: string; key: string };
}): KernelProgram {
  const w = where(args);
  const { N, C, M, F, hasB1, hasB2, hasRes, act1, act2 } = k;
  const T = pow2AtMost(Math.min(256, threadCap(args.limits)));
  const V1 = C % 4 === 0 ? 4 : 1, C1 = C / V1, V2 = M % 4 === 0 ? 4 : 1, M1 = M / V2;
  const maxVecs = 16;
  let KS1 = pow2AtMost(Math.min(T, tileAttr(args.node.attrs, 'splitK1', Math.max(1, Math.min(Math.floor(T / M), C1)), w)));
  while (ceilDiv(C1, KS1) > maxVecs && KS1 < T) KS1 *= 2;
  const FB = Math.min(F, Math.max(1, Math.ceil(F / 32)));
  let KS2 = pow2AtMost(Math.max(1, Math.min(Math.floor(T / FB), M1)));
  while (ceilDiv(M1, KS2) > maxVecs && KS2 < T) KS2 *= 2;
  const R1 = T / KS1, R2 = T / KS2, L1 = ceilDiv(C1, KS1), L2 = ceilDiv(M1, KS2);
  const blocks = ceilDiv(F, FB);
  const total = N * blocks;
  const d = layoutWorkgroups(total, args.limits, w);
  const bytes = 4 * wgFloats(T, C1 * V1, M1 * V2);
  if (bytes > args.limits.maxComputeWorkgroupStorageSize) throw unsupported(w, `FusedPwPw on a 1x1 map needs ${bytes} bytes of workgroup storage`);
  const vt = (v: number) => (v === 4 ? 'vec4<f32>' : 'f32');
  // This thread's slice of row base + r0 + li / KS of `wb` (rows of `len` vectors): entries k, k + KS, .. (k = li % KS),
  // zeros past the row, past `limit` rows from base or past `rows`.
  const rowSlice = (name: string, wb: string, t: string, L: string, KS: string, len: string, limit: string, rows: string) => `
fn ${name}(base: u32, r0: u32, li: u32) -> array<${t}, ${L}> {
  var r: array<${t}, ${L}>;
  let il = r0 + li / ${KS};
  let k = li % ${KS};
  for (var j = 0u; j < ${L}; j++) {
    let c = k + j * ${KS};
    r[j] = ${t}(0.0);
    if (il < ${limit} && base + il < ${rows} && c < ${len}) { r[j] = ${wb}[(base + il) * ${len} + c]; }
  }
  return r;
}`;
  const mul = (v: number, a: string, b: string) => (v === 4 ? `dot(${a}, ${b})` : `${a} * ${b}`);
  const used = [
    { index: 0, name: 'x', type: vt(V1) }, { index: 1, name: 'w1', type: vt(V1) }, ...(hasB1 ? [{ index: 2, name: 'b1', type: 'f32' }] : []),
    { index: 3, name: 'w2', type: vt(V2) }, ...(hasB2 ? [{ index: 4, name: 'b2', type: 'f32' }] : []), ...(hasRes ? [{ index: 5, name: 'res', type: 'f32' }] : []),
  ];
  const decl = [...used.map((u, i) => `@group(0) @binding(${i}) var<storage, read> ${u.name}: array<${u.type}>;`),
    `@group(0) @binding(${used.length}) var<storage, read_write> out: array<f32>;`].join('\n');
  const wgsl = `
${decl}
${constsU32({ C1, M, M1, F, T, KS1, KS2, R1, R2, L1, L2, FB, BLOCKS: blocks, TOTAL: total, DISPATCH_X: d.dispatchX })}
${act1.fn}
${act2.fn}

var<workgroup> part: array<f32, ${T}>;
var<workgroup> xsh: array<${vt(V1)}, ${C1}>;
var<workgroup> mid: array<${vt(V2)}, ${M1}>;

${rowSlice('load1', 'w1', vt(V1), 'L1', 'KS1', 'C1', 'M', 'M')}
${rowSlice('load2', 'w2', vt(V2), 'L2', 'KS2', 'M1', 'FB', 'F')}

/** Tree sum of part over groups of ks threads (ks a power of two); every thread reaches each barrier. */
fn reduce(li: u32, ks: u32) {
  workgroupBarrier();
  for (var h = ks / 2u; h > 0u; h /= 2u) {
    if (li % ks < h) { part[li] += part[li + h]; }
    workgroupBarrier();
  }
}

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  // No early return before the barriers: every thread reaches them; out-of-range work is masked.
  let g = min(wid.x + wid.y * DISPATCH_X, TOTAL - 1u);
  let f0 = (g % BLOCKS) * FB;
  let n = g / BLOCKS;
  var w2r = load2(f0, 0u, li);
  var w1r = load1(0u, 0u, li);
  for (var c = li; c < C1; c += T) { xsh[c] = x[n * C1 + c]; }
  workgroupBarrier();
  for (var m0 = 0u; m0 < M; m0 += R1) {
    let m = m0 + li / KS1;
    let k = li % KS1;
    var s = 0.0;
    // Past the row the weight is 0 and the input is skipped, not clamped: 0 * inf would be NaN.
    for (var j = 0u; j < L1; j++) { let c = k + j * KS1; if (c < C1) { s += ${mul(V1, 'w1r[j]', 'xsh[c]')}; } }
    // The next round's loads go out before this round's reduction.
    if (m0 + R1 < M) { w1r = load1(0u, m0 + R1, li); }
    part[li] = s;
    reduce(li, KS1);
    if (k == 0u && m < M) { mid[${V2 === 4 ? 'm / 4u][m % 4u' : 'm'}] = act1(part[li]${hasB1 ? ' + b1[m]' : ''}); }
    workgroupBarrier();
  }
  for (var r0 = 0u; r0 < FB; r0 += R2) {
    let fl = r0 + li / KS2;
    let k = li % KS2;
    var s = 0.0;
    for (var j = 0u; j < L2; j++) { let c = k + j * KS2; if (c < M1) { s += ${mul(V2, 'w2r[j]', 'mid[c]')}; } }
    if (r0 + R2 < FB) { w2r = load2(f0, r0 + R2, li); }
    part[li] = s;
    reduce(li, KS2);
    let f = f0 + fl;
    if (k == 0u && fl < FB && f < F && wid.x + wid.y * DISPATCH_X < TOTAL) {
      let o = n * F + f;
      var v = act2(part[li]${hasB2 ? ' + b2[f]' : ''});
      ${hasRes ? `v = ${plusResidual(act2, 'v', 'res[o]')};` : ''}
      out[o] = v;
    }
    workgroupBarrier();
  }
}
`;
  return {
    name: `FusedPwPw(${args.node.name})`,
    cacheKey: `FusedPwPw1x1pf|N${N}C${C}M${M}F${F}|b${+hasB1}${+hasB2}r${+hasRes}|${act1.key}|${act2.key}|T${T}KS${KS1},${KS2}FB${FB}V${V1}${V2}|dx${d.dispatchX}`,
    wgsl,
    workgroupSize: [T, 1, 1],
    dispatch: d.dispatch,
    inputs: used.map((u) => u.index),
    outputs: 1,
    workgroupStorageBytes: bytes,
  };
}
