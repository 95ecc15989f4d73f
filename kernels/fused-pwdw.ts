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
// Pointwise phase: each thread owns RP halo positions (li + q*T) and all FB filters in registers, walks
// every input channel reading x straight from global memory (one load feeds FB FMAs; neighbouring threads read
// neighbouring columns) and the weights from workgroup memory, staged CK channels at a time channel-major as vec4
// (one broadcast load feeds 4*RP FMAs); with 3+ positions per thread, four channels' x loads go out together (XU).
// The generator unrolls the positions and filters into named variables. RP is 1 or 2 (haloPerThread
// below), T = ceil(halo / RP) in whole warps. Depthwise phase: the FB channels' depthwise
// weights staged in workgroup memory, RW outputs of a row per invocation.
//
// No channel slices (split K among groups of threads, as fused-dwpw.ts has on small maps): tried on the H100
// (2026-12-07, batch 1), two slices made MobileNetV2's 7x7 160-channel modules 2x slower (28 us against 14.5) and
// ShuffleNetV2's 14x14 ones 1.6x: each staged chunk's staging and barriers stay while each slice's share halves.
// No x staged in workgroup memory beside the weights (each channel chunk's x over the halo, so that the channel loop
// reads workgroup memory instead of a global load per channel): tried on the H100 (2026-12-07, batch 1), every
// MobileNetV2 module it took got 2-4x slower (14x14 576-channel 14.4 -> 56.5 us, 56x56 18.7 -> 39.6; the pass 0.298 ->
// 0.669 ms, MnasNet 0.314 -> 0.858): x reads from global memory hit L1 across neighbouring threads already, and the
// staging adds a barrier pair per chunk and halves the workgroups an SM holds.
//
// Tiles: FB = tileFilters1 (falls back to tileFilters2), TH = tileH, TW = tileW, all clamped to the tensor first.
// Then TH, TW halved (the larger first) until the halo IH*IW fits 2 positions per thread of the device's cap.
// Clamping rule (clampTiles in fused-common.ts): while the workgroup arrays (FB*IH*IW, CK*4*ceil(FB/4), FB*KH*KW floats, each
// rounded up to 16 bytes) exceed maxComputeWorkgroupStorageSize, or a
// thread would hold more than maxAccPwDw accumulators (RP*4*ceil(FB/4), RP = 2 here), halve the largest of FB, TH, TW (ties in that
// order). Then, while there are fewer than minWorkgroups workgroups, halve FB down to 4, then TH and TW down to 4
// (splitForParallelism).

import type { KernelArgs, KernelProgram } from './program.js';
import { convOut } from './conv-common.js';
import { clampTiles, dwGeometry, epilogue, splitForParallelism, tileAttr } from './fused-common.js';
import {
  bindings, ceilDiv, constsU32, expectInput, expectOutput, hasInput, inShape, layoutWorkgroups, threadCap, wgFloats, where,
  plusResidual,
} from './shader.js';
import { invalid } from '../src/errors.js';

export function fusedPwDw(args: KernelArgs): KernelProgram {
  const w = where(args);
  const a = args.node.attrs;
  const [N, C, H, W] = inShape(args, 0, 'input', 4);
  const w1 = inShape(args, 1, 'pointwise weights', 4);
  const M = w1[0];
  if (w1[1] !== C || w1[2] !== 1 || w1[3] !== 1) throw invalid(w, `pointwise weights [${w1.join(',')}] do not match input channels ${C} (expected [M,${C},1,1])`);
  const w2 = inShape(args, 3, 'depthwise weights', 4);
  if (w2[0] !== M || w2[1] !== 1) throw invalid(w, `depthwise weights [${w2.join(',')}] must be [${M},1,KH,KW] (depth multiplier 1)`);
  const g = dwGeometry(a, w2, w);
  const [HO, WO] = convOut(H, W, g);
  if (HO < 1 || WO < 1) throw invalid(w, `depthwise output ${HO}x${WO} is empty`);
  expectOutput(args, [N, M, HO, WO]);
  const hasB1 = hasInput(args, 2), hasB2 = hasInput(args, 4), hasRes = hasInput(args, 5);
  if (hasB1) expectInput(args, 2, [M], 'bias 1');
  if (hasB2) expectInput(args, 4, [M], 'bias 2');
  if (hasRes) expectInput(args, 5, [N, M, HO, WO], 'residual');
  const act1 = epilogue(a, 1, w), act2 = epilogue(a, 2, w);
  if (act2.post && !hasRes) throw invalid(w, 'activationPost applies after a residual add, and the node has no residual');

  const fb = { name: 'FB', value: Math.min(M, tileAttr(a, 'tileFilters1', tileAttr(a, 'tileFilters2', 16, w), w)), min: 1 };
  const th = { name: 'TH', value: Math.min(HO, tileAttr(a, 'tileH', 8, w)), min: 1 };
  const tw = { name: 'TW', value: Math.min(WO, tileAttr(a, 'tileW', 8, w)), min: 1 };
  const cap = threadCap(args.limits);
  const ih = () => (th.value - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  const iw = () => (tw.value - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  if (C < 1) throw invalid(w, `input '${args.node.inputs[0]}' has no channels`);
  // At most 32 channels per step, spread evenly over the steps (40 channels as 32 + 8 ran 64 channel iterations:
  // MobileNetV3's 40 -> 240 module lost 1.4x where MobileNetV2's 32 -> 192 won); a multiple of 4 where the channel
  // loop takes 4 at a time (XU below; weights past C are staged as zeros). Storage is sized for the multiple of 4.
  const CKE = ceilDiv(C, ceilDiv(C, 32)), CK4 = ceilDiv(CKE, 4) * 4;
  const fb4 = () => ceilDiv(fb.value, 4);
  // Depthwise outputs per invocation along a row: each row of the receptive field is read from mid once for
  // RW outputs (the rule of the LBL kernel's rows: 4 at stride 1, 2 at stride 2; attribute dwRow overrides it).
  const rwOf = () => Math.min(tw.value, tileAttr(a, 'dwRow', g.sw === 1 ? 4 : 2, w));
  const floats = () => wgFloats(fb.value * ih() * iw(), CK4 * fb4() * 4, fb.value * g.kh * g.kw);
  // Halo positions per thread (attribute haloPerThread overrides): at most two, the spatial tile halved until its
  // halo fits; two where the halo has 128+ positions and one per thread would launch 96k+ threads, else one
  // (H200, every tile of the zoo's PW-DW modules: at batch 8 two positions on T = halo/2 threads beat one on twice
  // the threads by 5-15%, and 3-5 positions by 15-40%; halos of 250-500 positions beat larger ones despite their
  // redundancy: 16->64 at 112x112 stride 2 ran 28 us with 8x8 tiles, 46 us with 16x16. At batch 1, with the tiles
  // split for parallelism, one position was 5-10% faster).
  const haloAttr = a.haloPerThread === undefined ? undefined : tileAttr(a, 'haloPerThread', 1, w);
  // No more positions per thread than one warp can hold (a larger attribute would only shrink FB).
  const rpOf = () => Math.max(Math.min(haloAttr ?? 2, ceilDiv(ih() * iw(), 32)), ceilDiv(ih() * iw(), cap));
  const maxHalo = Math.max(2, haloAttr ?? 2) * cap;
  clampTiles([], [th, tw], () => ih() * iw() <= maxHalo || (th.value === 1 && tw.value === 1), w, () => `TH=${th.value} TW=${tw.value}`);
  // Each thread owns RP halo positions x FB filters (padded to a multiple of 4) of accumulators.
  clampTiles([], [fb, th, tw],
    () => floats() * 4 <= args.limits.maxComputeWorkgroupStorageSize && rpOf() * fb4() * 4 <= maxAccPwDw,
    w, () => `FB=${fb.value} TH=${th.value} TW=${tw.value}, ${floats() * 4} bytes`);
  const count = () => N * ceilDiv(M, fb.value) * ceilDiv(HO, th.value) * ceilDiv(WO, tw.value);
  // Enough workgroups for the GPU: fewer filters per tile first (no redundant work), then smaller spatial tiles.
  splitForParallelism([Object.assign(fb, { min: Math.min(fb.value, 4) })], count);
  splitForParallelism([Object.assign(th, { min: Math.min(th.value, 4) }), Object.assign(tw, { min: Math.min(tw.value, 4) })], count);
  const FB = fb.value, TH = th.value, TW = tw.value, IH = ih(), IW = iw();
  // As few threads as cover the halo with RP positions each, in whole warps (a power of two left up to 27% of
  // the slots idle: 561 positions on 3 x 256).
  const warps = (n: number) => Math.max(32, ceilDiv(n, 32) * 32);
  const rpWant = haloAttr ?? (IH * IW >= 128 && count() * warps(IH * IW) >= 98304 ? 2 : 1);
  const T = Math.min(cap, warps(ceilDiv(IH * IW, Math.max(rpWant, ceilDiv(IH * IW, cap)))));
  const RP = ceilDiv(IH * IW, T);
  const RW = rwOf();
  const TWR = ceilDiv(TW, RW), SPAN = (RW - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  const MIDN = FB * IH * IW;
  // Channels whose x loads are issued together in the pointwise phase (attribute xUnroll: 1 or 4). Four where a
  // thread owns 3+ halo positions (H200, batch 8: 5-10% faster); with one position, four made the loop 1.2-1.45x
  // slower.
  const XU = tileAttr(a, 'xUnroll', RP >= 3 ? 4 : 1, w);
  if (XU !== 1 && XU !== 4) throw invalid(w, `xUnroll must be 1 or 4, got ${XU}`);
  const CK = XU === 4 ? CK4 : CKE;
  const FB4 = ceilDiv(FB, 4);
  const pwLoop = pointwisePhase(RP, FB4, XU, C % CK !== 0);
  const ep1 = epilogue1(RP, FB, T, IH * IW, hasB1, M % FB !== 0);
  const tilesY = ceilDiv(HO, TH), tilesX = ceilDiv(WO, TW), blocks = ceilDiv(M, FB);
  const total = N * blocks * tilesY * tilesX;
  const d = layoutWorkgroups(total, args.limits, w);

  const used = [
    { index: 0, name: 'x' }, { index: 1, name: 'w1' }, ...(hasB1 ? [{ index: 2, name: 'b1' }] : []),
    { index: 3, name: 'w2' }, ...(hasB2 ? [{ index: 4, name: 'b2' }] : []), ...(hasRes ? [{ index: 5, name: 'res' }] : []),
  ];
  const wgsl = `
${bindings(used.map((u) => u.name))}
${constsU32({
    N, C, H, W, M, HO, WO, KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw, DH: g.dh, DW: g.dw,
    FB, FB4, CK, TH, TW, IH, IW, T, RP, RW, TWR, SPAN, MIDN, TILES_X: tilesX, TILES_Y: tilesY, BLOCKS: blocks, TOTAL: total, DISPATCH_X: d.dispatchX,
  })}
const PT: i32 = ${g.pt};
const PL: i32 = ${g.pl};
const IHW: u32 = IH * IW;
const HW: u32 = H * W;
${act1.fn}
${act2.fn}

var<workgroup> mid: array<f32, ${FB * IH * IW}>;
// The depthwise weights of the FB channels, staged once.
var<workgroup> w2s: array<f32, ${FB * g.kh * g.kw}>;
// The chunk's first-layer weights, channel-major, 4 filters per vec4: one broadcast load feeds 4*RP FMAs.
var<workgroup> wsT: array<vec4<f32>, ${CK4 * FB4}>;

var<private> f0: u32;

/** First-layer weight of filter f, channel c (0 past M). */
fn w1At(f: u32, c: u32) -> f32 {
  if (f >= M) { return 0.0; }
  return w1[f * C + c];
}

/** x of image n at channel c, position o (0 past C: its weights are staged as zeros, and 0 * inf would not be). */
fn xAt(n: u32, c: u32, o: u32) -> f32 {
  if (c >= C) { return 0.0; }
  return x[(n * C + c) * H * W + o];
}

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let g = wid.x + wid.y * DISPATCH_X;
  if (g >= TOTAL) { return; }
  let tx = g % TILES_X;
  let ty = (g / TILES_X) % TILES_Y;
  f0 = ((g / (TILES_X * TILES_Y)) % BLOCKS) * FB;
  let n = g / (TILES_X * TILES_Y * BLOCKS);
  let oy0 = ty * TH;
  let ox0 = tx * TW;
  // Top-left of the tile's receptive field in the intermediate (= x's spatial grid); negative inside the padding.
  let iy0 = i32(oy0 * SH) - PT;
  let ix0 = i32(ox0 * SW) - PL;

  // Pointwise layer over the tile and its halo: each thread owns RP halo positions and all FB filters, reads x
  // straight from global memory (one load feeds FB FMAs) and the weights at workgroup-uniform addresses.
${haloPositions(RP)}
  // Ordered before their use by the first barrier below.
  for (var e = li; e < FB * KH * KW; e += T) { w2s[e] = w2[min(f0 * KH * KW + e, M * KH * KW - 1u)]; }
${accumulators(RP, FB4)}
  for (var c0 = 0u; c0 < C; c0 += CK) {
    for (var e = li; e < CK * FB4; e += T) {
      let cl = e / FB4;
      let c = min(c0 + cl, C - 1u);
      let fq = f0 + (e % FB4) * 4u;
      var v = vec4<f32>(0.0);
      if (c0 + cl < C) {
        // Constant components only (a loop index into v sends it to local memory).
        v = vec4<f32>(w1At(fq, c), w1At(fq + 1u, c), w1At(fq + 2u, c), w1At(fq + 3u, c));
      }
      wsT[e] = v;
    }
    workgroupBarrier();
${pwLoop}
    workgroupBarrier();
  }
  // Epilogue 1. Positions outside the image are the depthwise layer's zero padding, not act(bias).
${ep1}
  workgroupBarrier();

  // Depthwise layer from workgroup memory, RW outputs of a row per invocation, epilogue 2, residual.
  for (var e = li; e < FB * TH * TWR; e += T) {
    let fl = e / (TH * TWR);
    let oy = (e % (TH * TWR)) / TWR;
    let ox = (e % TWR) * RW;
    let f = f0 + fl;
    let y = oy0 + oy;
    if (f < M && y < HO) {
      // Zeroed explicitly: a declaration inside a loop is not reliably re-zeroed per iteration (Dawn + lavapipe).
      var s: array<f32, RW>;
      for (var r = 0u; r < RW; r++) { s[r] = 0.0; }
      let base = fl * IHW + oy * SH * IW + ox * SW;
      for (var kh = 0u; kh < KH; kh++) {
        // Past the tile's last column the span reads neighbouring values (clamped to mid): those outputs are not stored.
        var row: array<f32, SPAN>;
        for (var j = 0u; j < SPAN; j++) { row[j] = mid[min(base + kh * DH * IW + j, MIDN - 1u)]; }
        for (var kw = 0u; kw < KW; kw++) {
          let wk = w2s[(fl * KH + kh) * KW + kw];
          for (var r = 0u; r < RW; r++) { s[r] += row[r * SW + kw * DW] * wk; }
        }
      }
      for (var r = 0u; r < RW; r++) {
        let xo = ox0 + ox + r;
        if (ox + r < TW && xo < WO) {
          let o = ((n * M + f) * HO + y) * WO + xo;
          var v = act2(s[r]${hasB2 ? ' + b2[f]' : ''});
          ${hasRes ? `v = ${plusResidual(act2, 'v', 'res[o]')};` : ''}
          out[o] = v;
        }
      }
    }
  }
}
`;
  const cacheKey = `FusedPwDw|x${N}x${C}x${H}x${W}|M${M}|k${g.kh}x${g.kw}s${g.sh}x${g.sw}p${g.pt},${g.pl},${g.pb},${g.pr}d${g.dh}x${g.dw}` +
    `|b${+hasB1}${+hasB2}r${+hasRes}|${act1.key}|${act2.key}|FB${FB}TH${TH}TW${TW}RP${RP}CK${CK}T${T}RW${RW}XU${XU}|dx${d.dispatchX}`;
  return {
    name: `FusedPwDw(${args.node.name})`,
    cacheKey,
    wgsl,
    workgroupSize: [T, 1, 1],
    dispatch: d.dispatch,
    inputs: used.map((u) => u.index),
    outputs: 1,
    workgroupStorageBytes: floats() * 4,
  };
}

// ---- the pointwise phase, unrolled in the generator ----------------------------------------------------------
// Every accumulator, halo offset and x value is a named WGSL variable (a${q}_${f}, o${q}, x${q}): private arrays
// indexed in loops depend on the driver's unrolling to stay in registers, and Tint's SPIR-V does not always get
// there (on the H200 an array indexed by a loop component went to local memory).

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const lane = ['x', 'y', 'z', 'w'];

/** Accumulators: 4*FB4 per position, so the per-thread cap counts RP*FB4*4 of them (registers). */
export const maxAccPwDw = 64;

/** o{q}: the offset of halo position li + q*T in x's image plane (0 when outside it), k{q}: inside the image. */
function haloPositions(RP: number): string {
  return range(RP).map((q) => `  let r${q} = li + ${q}u * T;
  let py${q} = iy0 + i32(r${q} / IW);
  let px${q} = ix0 + i32(r${q} % IW);
  let k${q} = r${q} < IHW && py${q} >= 0 && py${q} < i32(H) && px${q} >= 0 && px${q} < i32(W);
  let o${q} = select(0u, u32(py${q}) * W + u32(px${q}), k${q});`).join('\n');
}

function accumulators(RP: number, FB4: number): string {
  return range(RP).map((q) => range(FB4).map((f) => `var a${q}_${f} = vec4<f32>(0.0);`).join(' ')).map((l) => `  ${l}`).join('\n');
}

/**
 * The channel loop of one staged chunk: XU channels' x loads of all RP positions go out before their FMAs (one
 * channel at a time, the loop waited on a load per channel: the 112x112 stride-2 modules ran 1.5x slower than
 * their layers); then per channel the FB4 weight vec4s (broadcast loads) feed RP*FB4 vec4 FMAs. `guardC`: the
 * chunk may run past C (x read as 0 there).
 */
function pointwisePhase(RP: number, FB4: number, XU: number, guardC: boolean): string {
  const load = (q: number, k: number) => guardC ? `xAt(n, c + ${k}u, o${q})` : `x[xb + ${k === 0 ? '' : `${k}u * HW + `}o${q}]`;
  const loads = range(RP).map((q) => XU === 1
    ? `      let x${q} = ${load(q, 0)};`
    : `      let x${q} = vec4<f32>(${range(4).map((k) => load(q, k)).join(', ')});`).join('\n');
  const channel = (k: number) => {
    const wv = range(FB4).map((f) => `let u${f} = wsT[(cl + ${k}u) * FB4 + ${f}u];`).join(' ');
    const fmas = range(RP).map((q) => range(FB4).map((f) => `a${q}_${f} += u${f} * x${q}${XU === 1 ? '' : `.${lane[k]}`};`).join(' '));
    return `      {\n        ${wv}\n${fmas.map((l) => `        ${l}`).join('\n')}\n      }`;
  };
  return `    for (var cl = 0u; cl < CK; cl += ${XU}u) {
      let c = c0 + cl;
      ${guardC ? '' : 'let xb = (n * C + c) * HW;'}
${loads}
${range(XU).map(channel).join('\n')}
    }`;
}

/**
 * Epilogue 1 into mid: act1(acc + b1) for the FB channels of every owned position; 0 in the depthwise padding
 * (k{q} false) and, with `guardM`, past M (the last filter block). Filters past FB (the last vec4's padding) are
 * not stored.
 */
function epilogue1(RP: number, FB: number, T: number, IHW: number, hasB1: boolean, guardM: boolean): string {
  const FB4 = ceilDiv(FB, 4);
  const bias = hasB1 ? range(FB).map((fl) => `  let bq${fl} = b1[${guardM ? `min(f0 + ${fl}u, M - 1u)` : `f0 + ${fl}u`}];`).join('\n') : '';
  const blocks = range(RP).map((q) => {
    const stores = range(FB4).flatMap((f) => range(4).map((j) => f * 4 + j).filter((fl) => fl < FB).map((fl) => {
      const v = `act1(a${q}_${f}.${lane[fl % 4]}${hasB1 ? ` + bq${fl}` : ''})`;
      const ok = guardM ? `k${q} && f0 + ${fl}u < M` : `k${q}`;
      return `mid[${fl}u * IHW + r${q}] = select(0.0, ${v}, ${ok});`;
    }));
    const body = stores.map((s) => `    ${s}`).join('\n');
    // Only the positions of the last round can run past the halo.
    return (q + 1) * T > IHW ? `  if (r${q} < IHW) {\n${body}\n  }` : `  {\n${body}\n  }`;
  });
  return [bias, ...blocks].filter((s) => s).join('\n');
}

