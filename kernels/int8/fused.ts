// Integer FCMs (paper §3.1-3.3): PW-DW, DW-PW and PW-PW in int8 / uint8, each equal bit for bit to the two layers
// run separately with TFLite's arithmetic: the intermediate is requantized to the intermediate tensor's 8-bit grid
// (its multiplier, zero point and the first layer's activation clamp) exactly as the first layer would store it,
// and kept in workgroup memory; the second layer reads it as TFLite would read the stored tensor.
//
// Node (src/graph/ir.ts): inputs [x, w1, b1|'', w2, b2|'', residual|''] (a residual only as a folded ADD,
// Int8KernelArgs.residual: DW-PW takes it);
// attrs as the fp32 FCMs (geometry of the depthwise layer, activation1/2, tileFilters1/2, tileH, tileW). The
// fused node does not name the intermediate tensor: the caller passes it (`intermediate`, with its quantization).
//
// Pointwise phases use packed dot products (dot4) on words of 4 channels, the zero points folded into the bias
// on the host (pointwise.ts foldBias; uint8 also subtracts zw * sum of the input bytes, one more dot4 per word).
// The intermediate is stored as raw 8-bit values packed 4 channels per word where a pointwise layer reads it
// (DW-PW, PW-PW), and as (value - zero point) per element where the depthwise layer reads it (PW-DW: padding
// positions then hold 0, a skipped tap). PW-DW and PW-PW store words of 4 consecutive outputs: whole where the word
// lies inside the tile's segment of a row, with the atomic byte store where a neighbouring tile shares it (tiles need
// not start on words); DW-PW owns whole words of positions and stores them directly where rows start on words.
//
// Constants, in order: w1 (pointwise rows [*, ceil(C/4)] words; depthwise flat, or for DW-PW `wd`, rows of taps as
// conv-common.ts dwWeights packs them), q1 (4 words per intermediate channel: bias or folded bias, multiplier, shift, 0), w2
// (DW-PW: `wp`, rows padded to whole filter blocks), q2 (per output channel).

import type { Tensor } from '../../src/graph/ir.js';
import { invalid, unsupported } from '../../src/errors.js';
import { convMultipliers } from '../../src/quant/reference.js';
import { convOut } from '../conv-common.js';
import { type TileDim, clampTiles, dwGeometry, maxRegsPerThread, splitForParallelism, tileAttr } from '../fused-common.js';
import { cacheKey, ceilDiv, constsI32, constsU32, layoutWorkgroups, threadCap, threadsFor, wgFloats, where } from '../shader.js';
import {
  type Int8KernelArgs, type Int8Program, type QInfo, activationClamp, atomicByteStore, dot4Requires, dot4Wgsl,
  declareAccs, dot4TileStep, fixedPointWgsl, int8Bindings, loader, pack8, qBias, qTensor, qWeights, residualAddWgsl, unroll,
} from './common.js';
import { channelParams, dwWeights } from './conv-common.js';
import { foldBias, gatherWord, packRows, rowStoreWgsl, wordsTargetThreads } from './pointwise.js';
import { dwSumWgsl } from './depthwise.js';

export interface Int8FusedArgs extends Int8KernelArgs {
  /** The tensor between the two layers (as the importer made it), for its quantization. */
  intermediate: Tensor;
}

interface LayerQ { w: Int8Array | Uint8Array; zw: number; bias: Int32Array; m: Int32Array; s: Int32Array; clamp: [number, number] }

function layer(args: Int8FusedArgs, wi: number, bi: number, inq: QInfo, outq: QInfo, suffix: string, channels: number): LayerQ {
  const w = where(args);
  const wt = qWeights(args.inputs[wi], `weights ${suffix}`, w, inq.type);
  if (inq.type === 'uint8' && wt.scales.length !== 1) throw unsupported(w, 'uint8 convolutions take per-tensor weights');
  if (wt.scales.length !== 1 && wt.scales.length !== channels) throw invalid(w, `weights ${suffix} have ${wt.scales.length} scales for ${channels} channels`);
  const { m, s } = convMultipliers(inq.type, inq.scale, wt.scales, outq.scale, channels);
  return {
    w: wt.data, zw: wt.zeroPoint, bias: qBias(args.node.inputs[bi] ? args.inputs[bi] : undefined, channels, w), m, s,
    clamp: activationClamp(args.node.attrs, suffix, outq, w),
  };
}

function common(args: Int8FusedArgs) {
  const w = where(args);
  if (args.node.inputs[5] && args.residual?.index !== 5) throw unsupported(w, 'a fused residual has no integer kernel (TFLite adds it with ADD)');
  const xs = args.inputs[0]?.shape;
  if (!xs || xs.length !== 4) throw invalid(w, 'input must have rank 4');
  const xq = qTensor(args.inputs[0], 'input', w), mq = qTensor(args.intermediate, 'intermediate', w), yq = qTensor(args.outputs[0], 'output', w);
  if (mq.type !== xq.type || yq.type !== xq.type) throw unsupported(w, 'input, intermediate and output must share one 8-bit type');
  const ws1 = args.inputs[1]?.shape, ws2 = args.inputs[3]?.shape;
  if (!ws1 || ws1.length !== 4 || !ws2 || ws2.length !== 4) throw invalid(w, 'weights must have rank 4');
  return { w, xs, xq, mq, yq, ws1, ws2, t: xq.type, cap: threadCap(args.limits), storage: args.limits.maxComputeWorkgroupStorageSize };
}

function checkOut(args: Int8FusedArgs, expected: number[], w: string): void {
  const s = args.outputs[0].shape;
  if (s.length !== 4 || s.some((d, k) => d !== expected[k])) throw invalid(w, `output shape [${s}] does not match the computed [${expected}]`);
}

function program(name: string, key: unknown[], wgsl: string, T: number, d: { dispatch: [number, number, number] }, bytes: number,
  constants: Int8Program['constants'], inputs = [0]): Int8Program {
  return {
    name, cacheKey: cacheKey(...(key as string[])), wgsl, workgroupSize: [T, 1, 1], dispatch: d.dispatch, inputs, outputs: 1,
    workgroupStorageBytes: bytes, constants,
  };
}

/** [rows][C4] words as [C4][rows]: consecutive threads of different filter blocks read consecutive words. */
function channelMajor(rows: Uint32Array, n: number, c4: number): Uint32Array {
  const out = new Uint32Array(Math.max(1, n * c4));
  for (let r = 0; r < n; r++) for (let c = 0; c < c4; c++) out[c * n + r] = rows[r * c4 + c];
  return out;
}

const requant = (acc: string, q: string, ch: string, z: string, lo: string, hi: string) =>
  `clamp(mbqm(${acc}, bitcast<i32>(${q}[4u * ${ch} + 1u]), bitcast<i32>(${q}[4u * ${ch} + 2u])) + ${z}, ${lo}, ${hi})`;

// ---- PW-DW ----------------------------------------------------------------------------------------------------

export function int8FusedPwDw(args: Int8FusedArgs): Int8Program {
  const { w, xs, xq, mq, yq, ws1, ws2, t, cap, storage } = common(args);
  const a = args.node.attrs;
  const [N, C, H, W] = xs;
  const M = ws1[0];
  if (ws1[1] !== C || ws1[2] !== 1 || ws1[3] !== 1) throw invalid(w, `pointwise weights [${ws1}] do not match ${C} input channels`);
  if (ws2[0] !== M || ws2[1] !== 1) throw invalid(w, `depthwise weights [${ws2}] must be [${M},1,KH,KW]`);
  const g = dwGeometry(a, ws2, w);
  const [HO, WO] = convOut(H, W, g);
  checkOut(args, [N, M, HO, WO], w);
  const l1 = layer(args, 1, 2, xq, mq, '1', M), l2 = layer(args, 3, 4, mq, yq, '2', M);
  const C4 = Math.ceil(C / 4);
  const wz = l1.zw !== 0;
  const fb: TileDim = { name: 'FB', value: Math.min(M, tileAttr(a, 'tileFilters1', tileAttr(a, 'tileFilters2', 16, w), w)), min: 1 };
  const th: TileDim = { name: 'TH', value: Math.min(HO, tileAttr(a, 'tileH', 8, w)), min: 1 };
  const tw: TileDim = { name: 'TW', value: Math.min(WO, tileAttr(a, 'tileW', 8, w)), min: 1 };
  const ck: TileDim = { name: 'CK4', value: Math.min(C4, 8), min: 1 };
  const ih = () => (th.value - 1) * g.sh + (g.kh - 1) * g.dh + 1, iw = () => (tw.value - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  // As the fp32 PW-DW (kernels/fused-pwdw.ts): a thread owns RP halo positions x all FB filters in registers.
  const rp = () => ceilDiv(ih() * iw(), cap);
  const bytes = () => 4 * wgFloats(ck.value * fb.value, fb.value * ih() * iw());
  clampTiles([ck], [fb, th, tw], () => bytes() <= storage && rp() * (fb.value + (wz ? 1 : 0)) <= maxRegsPerThread,
    w, () => `FB=${fb.value} TH=${th.value} TW=${tw.value} CK4=${ck.value}, ${bytes()} bytes`);
  // As the fp32 FCMs (fused-common.ts splitForParallelism): enough workgroups for a large GPU, fewer channels per
  // tile first (no recomputation in PW-DW), then smaller spatial tiles.
  const count = () => N * ceilDiv(M, fb.value) * ceilDiv(HO, th.value) * ceilDiv(WO, tw.value);
  splitForParallelism([Object.assign(fb, { min: Math.min(fb.value, 4) })], count);
  splitForParallelism([Object.assign(th, { min: Math.min(th.value, 4) }), Object.assign(tw, { min: Math.min(tw.value, 4) })], count);
  const FB = fb.value, TH = th.value, TW = tw.value, CK4 = ck.value, IH = ih(), IW = iw(), IHW = IH * IW;
  // Threads for the pointwise phase, the heavy one: RP halo positions each, as few idle as whole warps allow (a
  // power of two sized for the output tile left up to 44% of them idle there, e.g. 144 halo positions in 256
  // threads); the output phase loops over its words.
  const RP = ceilDiv(IHW, cap);
  const T = Math.min(cap, 32 * ceilDiv(ceilDiv(IHW, RP), 32));
  const acc = (q: number, f: number) => `a${q * FB + f}`;
  const sum = (q: number) => `a${RP * FB + q}`;
  const tilesY = ceilDiv(HO, TH), tilesX = ceilDiv(WO, TW), blocks = ceilDiv(M, FB);
  const total = N * blocks * tilesY * tilesX;
  const d = layoutWorkgroups(total, args.limits, w);
  const wgsl = `${dot4Requires(args.dot4)}
${int8Bindings(['x'], ['w1', 'q1', 'w2', 'q2'], ['out'], true)}
${constsU32({ C, M, HO, WO, KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw, DH: g.dh, DW: g.dw, FB, TH, TW, NW: Math.floor((TW + 2) / 4) + 1, CK4, C4, IH, IW, IHW, T, RP, TILES_X: tilesX, TILES_Y: tilesY, BLOCKS: blocks, TOTAL: total, DISPATCH_X: d.dispatchX })}
${constsI32({ H, W, PT: g.pt, PL: g.pl, ZW1: l1.zw, ZM: mq.zeroPoint, W2OFF: -l2.zw, ZO: yq.zeroPoint, LO1: l1.clamp[0], HI1: l1.clamp[1], LO2: l2.clamp[0], HI2: l2.clamp[1] })}
${loader('x', t)}
${loader('w2', t)}
${dot4Wgsl(t, args.dot4)}
${fixedPointWgsl}
${atomicByteStore}
// The chunk's first-layer weights, channel word-major: ws[c4 * FB + f] is read at a workgroup-uniform address.
var<workgroup> ws: array<u32, ${CK4 * FB}>;
var<workgroup> mid: array<i32, ${FB * IHW}>;

/** x's channels c..c+3 (< C) at flat position o of image n's planes, as one word. */
fn xword(n: u32, c: u32, o: u32) -> u32 {
  let b = (n * C + c) * u32(H * W) + o;
  var v = u32(ld_x(b)) & 0xffu;
  ${[1, 2, 3].map((k) => (C % 4 === 0 ? `v |= (u32(ld_x(b + ${k}u * u32(H * W))) & 0xffu) << ${8 * k}u;` : `if (c + ${k}u < C) { v |= (u32(ld_x(b + ${k}u * u32(H * W))) & 0xffu) << ${8 * k}u; }`)).join('\n  ')}
  return v;
}

/** The depthwise layer's stored 8-bit output for filter f (tile filter fl) at tile position (oy, ox), from mid. */
fn outAt(fl: u32, f: u32, oy: u32, ox: u32) -> i32 {
  var s = 0i;
  let base = fl * IHW + oy * SH * IW + ox * SW;
  for (var kh = 0u; kh < KH; kh++) {
    for (var kw = 0u; kw < KW; kw++) {
      s += (ld_w2((f * KH + kh) * KW + kw) + W2OFF) * mid[base + kh * DH * IW + kw * DW];
    }
  }
  return ${requant('s + bitcast<i32>(q2[4u * f])', 'q2', 'f', 'ZO', 'LO2', 'HI2')};
}

/** Epilogue 1: intermediate channel f0 + fl at halo position r as the first layer stores it, minus its zero point; 0 in the depthwise padding. */
fn ep1(f0: u32, fl: u32, r: u32, inside: bool, s: i32) {
  if (r >= IHW) { return; }
  let f = f0 + fl;
  var v = 0i;
  if (f < M && inside) { v = ${requant('s + bitcast<i32>(q1[4u * f])', 'q1', 'f', 'ZM', 'LO1', 'HI1')} - ZM; }
  mid[fl * IHW + r] = v;
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
  // Pointwise layer over the tile and its halo: thread li owns halo positions li + q * T, all FB filters in
  // scalar registers; one word of 4 channels built from x feeds FB dot4.
  ${unroll(RP, (q) => `let r${q} = li + ${q * T}u;
  let py${q} = iy0 + i32(r${q} / IW);
  let px${q} = ix0 + i32(r${q} % IW);
  let in${q} = r${q} < IHW && py${q} >= 0i && py${q} < H && px${q} >= 0i && px${q} < W;
  let o${q} = select(0u, u32(py${q}) * u32(W) + u32(px${q}), in${q});`, '\n  ')}
  ${declareAccs(RP * FB + (wz ? RP : 0))}
  for (var c40 = 0u; c40 < C4; c40 += CK4) {
    for (var e = li; e < CK4 * FB; e += T) {
      let f = f0 + e % FB;
      let c4 = c40 + e / FB;
      var v = 0u;
      if (f < M && c4 < C4) { v = w1[f * C4 + c4]; }
      ws[e] = v;
    }
    workgroupBarrier();
    for (var c4l = 0u; c4l < CK4; c4l++) {
      let c = (c40 + c4l) * 4u;
      if (c < C) {
        ${unroll(RP, (q) => `let x${q} = xword(n, c, o${q});`, ' ')}
        ${unroll(FB, (f) => `{ let wv = ws[c4l * FB + ${f}u]; ${unroll(RP, (q) => `${acc(q, f)} += dot4(wv, x${q});`, ' ')} }`, '\n        ')}
        ${wz ? unroll(RP, (q) => `${sum(q)} += dot4(x${q}, 0x01010101u);`, ' ') : ''}
      }
    }
    workgroupBarrier();
  }
  ${unroll(RP, (q) => unroll(FB, (f) => `ep1(f0, ${f}u, r${q}, in${q}, ${acc(q, f)}${wz ? ` - ZW1 * ${sum(q)}` : ''});`, ' '), '\n  ')}
  workgroupBarrier();
  // Output: words of 4 consecutive flat outputs of a filter's row segment. A word wholly inside the segment is
  // this workgroup's alone and is stored whole; a word the segment shares with a neighbouring tile (at most one at
  // each end) is stored a byte at a time (atomic). (A byte per thread, two atomics each, made every output an
  // atomic read-modify-write of a word four threads contend for.)
  for (var e = li; e < FB * TH * NW; e += T) {
    let fl = e / (TH * NW);
    let oy = (e % (TH * NW)) / NW;
    let f = f0 + fl;
    let y = oy0 + oy;
    if (f < M && y < HO) {
      let row = ((n * M + f) * HO + y) * WO;
      let b0 = row + ox0;
      let b1 = row + min(ox0 + TW, WO);
      let wj = (b0 >> 2u) + e % NW;
      if (wj * 4u < b1) {
        var word = 0u;
        for (var k = 0u; k < 4u; k++) {
          let o = wj * 4u + k;
          if (o >= b0 && o < b1) { word |= (u32(outAt(fl, f, oy, o - b0)) & 0xffu) << (k * 8u); }
        }
        if (wj * 4u >= b0 && wj * 4u + 3u < b1) {
          st_word(wj, word);
        } else {
          for (var k = 0u; k < 4u; k++) {
            let o = wj * 4u + k;
            if (o >= b0 && o < b1) { st_out(o, i32(extractBits(word, k * 8u, 8u))); }
          }
        }
      }
    }
  }
}
`;
  const folded1 = foldBias(l1.bias, l1.w, M, C, xq.zeroPoint, l1.zw);
  return program(`FusedPwDw${t === 'int8' ? 'I8' : 'U8'}(${args.node.name})`,
    ['int8-FusedPwDw', t, args.dot4 ? 'dot4' : 'unpack', [N, C, H, W], M, [g.kh, g.kw, g.sh, g.sw, g.pt, g.pl, g.pb, g.pr, g.dh, g.dw],
      [l1.zw, mq.zeroPoint, l2.zw, yq.zeroPoint], [...l1.clamp, ...l2.clamp], [FB, TH, TW, CK4, T, RP], d.dispatch],
    wgsl, T, d, bytes(), [
      { name: 'w1', data: packRows(l1.w, M, C) }, { name: 'q1', data: channelParams(folded1, l1.m, l1.s) },
      { name: 'w2', data: pack8(l2.w) }, { name: 'q2', data: channelParams(l2.bias, l2.m, l2.s) },
    ]);
}

// ---- DW-PW ----------------------------------------------------------------------------------------------------

/**
 * WGSL: the accumulators a0..a{n-1} of KS K-groups (`kg`, lane `l` of GT) summed into K-group 0's, in log2(KS)
 * rounds through `red` ((KS / 2) * n * GT i32): groups [h, 2h) store, barrier, groups [0, h) add, barrier.
 */
function reduceTree(n: number, KS: number): string {
  const rounds: string[] = [];
  for (let h = KS >> 1; h >= 1; h >>= 1) {
    rounds.push(`  if (kg >= ${h}u && kg < ${2 * h}u) { let rb = (kg - ${h}u) * ${n}u; ${unroll(n, (e) => `red[(rb + ${e}u) * GT + l] = a${e};`, ' ')} }
  workgroupBarrier();
  if (kg < ${h}u) { let rb = kg * ${n}u; ${unroll(n, (e) => `a${e} += red[(rb + ${e}u) * GT + l];`, ' ')} }
  workgroupBarrier();`);
  }
  return rounds.join('\n');
}


/**
 * DW-PW with the pointwise word kernel's structure (pointwise.ts int8PointwiseWords). A workgroup owns TP = 4 * PW4
 * consecutive flat output positions of one image and FB = 4 * FQ output filters. Per chunk of CK4 words of
 * channels: the depthwise phase computes the chunk's channels at the TP positions (one invocation per word of 4
 * channels at one position, each channel a dwSum of one dot4 per kernel row: depthwise.ts) and stores them as
 * words of 4 channels, the operand the pointwise dot4 takes with no transpose; the pointwise phase has each
 * thread own 4 filters x one word of 4 positions (16 scalar accumulators), K-group kg of KS walking every KS-th
 * channel word of the chunk, and KS K-groups add their partial sums in workgroup memory at the end. The
 * depthwise tile is recomputed per block of filters (its dot4 per row makes that cheap; the earlier kernel, one
 * dot4 per two workgroup loads and accumulators in a private array, ran the 14x14 modules 2x slower than their
 * two layers on the H200).
 * Tiles: tileH * tileW positions (rounded up to words) and tileFilters2 filters (to quads), clamped to the
 * workgroup's limits and split for enough workgroups; the channels are chunked only by the workgroup memory.
 */
export function int8FusedDwPw(args: Int8FusedArgs): Int8Program {
  const { w, xs, xq, mq, yq, ws1, ws2, t, cap, storage } = common(args);
  const a = args.node.attrs;
  const [N, C, H, W] = xs;
  if (ws1[0] !== C || ws1[1] !== 1) throw invalid(w, `depthwise weights [${ws1}] must be [${C},1,KH,KW]`);
  const M = ws2[0];
  if (ws2[1] !== C || ws2[2] !== 1 || ws2[3] !== 1) throw invalid(w, `pointwise weights [${ws2}] do not match ${C} channels`);
  const g = dwGeometry(a, ws1, w);
  const [HO, WO] = convOut(H, W, g);
  checkOut(args, [N, M, HO, WO], w);
  const l1 = layer(args, 1, 2, xq, mq, '1', C), l2 = layer(args, 3, 4, mq, yq, '2', M);
  const P = HO * WO, P4 = ceilDiv(P, 4), C4 = ceilDiv(C, 4), M4 = ceilDiv(M, 4);
  const aligned = P % 4 === 0;
  const wz = l2.zw !== 0;
  const nacc = 16 + (wz ? 4 : 0);
  const pw4: TileDim = { name: 'TP/4', value: Math.min(P4, Math.max(1, ceilDiv(tileAttr(a, 'tileH', 2, w) * tileAttr(a, 'tileW', 4, w), 4))), min: 1 };
  const fq: TileDim = { name: 'FB/4', value: Math.min(M4, Math.max(1, ceilDiv(tileAttr(a, 'tileFilters2', 64, w), 4))), min: 1 };
  // Every channel in one chunk where the workgroup memory holds it: the planner's depth step (tileFilters1) sizes
  // CUDA-style shared-memory tiles, and each further chunk is one more serial depthwise phase and barrier (on the
  // H200 four chunks ran the 14x14 modules 1.4x slower than one).
  const ck: TileDim = { name: 'CK4', value: C4, min: 1 };
  const G = () => pw4.value * fq.value;
  // The K-groups' partial sums meet in a tree (reduceTree): half of them store at a time.
  const bytesFor = (ks: number) => 4 * wgFloats(ck.value * 4 * pw4.value, Math.max(1, ks >> 1) * nacc * G());
  clampTiles([ck], [fq, pw4], () => G() <= cap && bytesFor(1) <= storage, w,
    () => `TP=${4 * pw4.value} FB=${4 * fq.value} CK4=${ck.value}, ${bytesFor(1)} bytes`);
  // A workgroup per SM of a large GPU (132): halve the filter block while the workgroup keeps 32 tasks or more
  // (256 threads with 8 K-groups). Smaller blocks make smaller workgroups (K-groups are capped), not more threads
  // in all, and recompute the depthwise tile more often: on the H200, splitting to 264 workgroups ran the 14x14
  // and 7x7 modules 1.2-2x slower, and 98 workgroups of 256 filters at 14x14 1.5x slower than 196 of 128.
  // Then fewer positions per workgroup while the GPU would have too few threads.
  const count = () => N * ceilDiv(P4, pw4.value) * ceilDiv(M4, fq.value);
  while (count() < 132 && G() >= 64 && fq.value > 1) fq.value = Math.ceil(fq.value / 2);
  while (pw4.value > 1 && count() * G() * 8 < wordsTargetThreads) pw4.value = Math.ceil(pw4.value / 2);
  // K split inside the workgroup until the GPU has about wordsTargetThreads threads, each group at least 2 words deep,
  // up to the workgroup's thread cap. (At 8 K-groups at most, MobileNetV2's 7x7 960-channel modules ran as 65
  // workgroups of 64 threads, each thread computing 60 depthwise outputs in turn: 64 us on the H100.)
  let ks = 1;
  while (ks * 2 <= 32 && G() * ks * 2 <= cap && count() * G() * ks < wordsTargetThreads && ck.value >= ks * 4 && bytesFor(ks * 2) <= storage) ks *= 2;
  const PW4 = pw4.value, TP = 4 * PW4, FQ = fq.value, FB = 4 * FQ, CK4 = ck.value, GT = G(), T = GT * ks;
  const pTiles = ceilDiv(P4, PW4), blocks = ceilDiv(M4, FQ);
  const total = N * pTiles * blocks;
  const d = layoutWorkgroups(total, args.limits, w);
  const xWords = Math.max(1, ceilDiv(N * C * H * W, 4));
  // A folded residual Add: each output word plus the residual's word at the same place (residualAddWgsl).
  const ra = residualAddWgsl(args, yq, Math.max(1, ceilDiv(N * M * P, 4)));
  const wgsl = `${dot4Requires(args.dot4)}
${int8Bindings(ra ? ['x', 'res'] : ['x'], ['wd', 'q1', 'wp', 'q2'], ['out'], !aligned)}
${constsU32({ C, F: M, P, P4, HO, WO, SH: g.sh, SW: g.sw, DH: g.dh, C4, CK4, TP, PW4, FB, MP: blocks * FB, GT, KS: ks, T, PTILES: pTiles, BLOCKS: blocks, TOTAL: total, DISPATCH_X: d.dispatchX })}
${constsI32({ H, W, PT: g.pt, PL: g.pl, ZM: mq.zeroPoint, ZW2: l2.zw, ZO: yq.zeroPoint, LO1: l1.clamp[0], HI1: l1.clamp[1], LO2: l2.clamp[0], HI2: l2.clamp[1] })}
${dot4Wgsl(t, args.dot4)}
${fixedPointWgsl}
${dwSumWgsl(g, t, xq.zeroPoint, l1.zw, xWords)}
${aligned ? '' : `${atomicByteStore}\n${rowStoreWgsl}`}
${ra?.wgsl ?? ''}
var<workgroup> midw: array<u32, ${CK4 * TP}>;
var<workgroup> red: array<i32, ${Math.max(1, ks >> 1) * nacc * GT}>;

/** The depthwise layer's stored 8-bit output (as raw bits) for channel c at output (oy, ox). */
fn dwOut(n: u32, c: u32, oy: u32, ox: u32) -> u32 {
  let s = dwSum(n, c, oy, ox) + bitcast<i32>(q1[4u * c]);
  return u32(${requant('s', 'q1', 'c', 'ZM', 'LO1', 'HI1')}) & 0xffu;
}

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  // No early return: every thread reaches the barriers.
  let g = wid.x + wid.y * DISPATCH_X;
  let valid = g < TOTAL;
  let kg = li / GT;
  let l = li % GT;
  let p0 = (g % PTILES) * TP;
  let f0 = ((g / PTILES) % BLOCKS) * FB;
  let n = g / (PTILES * BLOCKS);
  let jw = l % PW4;
  let fbase = f0 + (l / PW4) * 4u;
  ${declareAccs(nacc)}
  for (var c40 = 0u; c40 < C4; c40 += CK4) {
    for (var e = li; e < CK4 * TP; e += T) {
      let c = (c40 + e / TP) * 4u;
      let p = p0 + e % TP;
      var v = 0u;
      if (valid && p < P && c < C) {
        let oy = p / WO;
        let ox = p % WO;
        v = dwOut(n, c, oy, ox);
        ${[1, 2, 3].map((k) => (C % 4 === 0 ? `v |= dwOut(n, c + ${k}u, oy, ox) << ${8 * k}u;` : `if (c + ${k}u < C) { v |= dwOut(n, c + ${k}u, oy, ox) << ${8 * k}u; }`)).join('\n        ')}
      }
      midw[e] = v;
    }
    workgroupBarrier();
    for (var c4l = kg; c4l < CK4; c4l += KS) {
      let c4 = c40 + c4l;
      if (c4 < C4) {
        let mb = c4l * TP + jw * 4u;
        let x0 = midw[mb]; let x1 = midw[mb + 1u]; let x2 = midw[mb + 2u]; let x3 = midw[mb + 3u];
        ${dot4TileStep(4, (r) => `wp[c4 * MP + fbase + ${r}u]`, wz, '        ')}
      }
    }
    workgroupBarrier();
  }
  // The K-groups' partial sums are added in a tree (half the groups store, the other half add, log2(KS) rounds),
  // then K-group 0 stores the totals and the words of outputs (4 positions of one filter) are shared by all threads
  // (K-group 0 alone, 16 requantizations per thread, made a long serial tail). Wrapping int32 addition: the order
  // does not change a bit.
${reduceTree(nacc, ks)}
  if (kg == 0u) { ${unroll(nacc, (e) => `red[${e}u * GT + l] = a${e};`, ' ')} }
  workgroupBarrier();
  for (var e = li; e < 4u * GT; e += T) {
    let l2 = e % GT;
    let r = e / GT;
    let f = f0 + (l2 / PW4) * 4u + r;
    let j = p0 / 4u + l2 % PW4;
    if (valid && f < F && j < P4) {
      let bias = bitcast<i32>(q2[4u * f]);
      let m = bitcast<i32>(q2[4u * f + 1u]);
      let s = bitcast<i32>(q2[4u * f + 2u]);
      var word = 0u;
      ${unroll(4, (k) => `{
        let acc = red[(r * 4u + ${k}u) * GT + l2];${wz ? `
        let sx = red[${16 + k}u * GT + l2];` : ''}
        word |= (u32(clamp(mbqm(acc + bias${wz ? ' - ZW2 * sx' : ''}, m, s) + ZO, LO2, HI2)) & 0xffu) << ${8 * k}u;
      }`, '\n      ')}
      ${ra ? 'word = addRes(word, ldw_res((n * F + f) * P + j * 4u));' : ''}
      ${aligned ? 'out[(n * F + f) * P4 + j] = word;' : 'store(n, f, j, word);'}
    }
  }
}
`;
  const folded2 = foldBias(l2.bias, l2.w, M, C, mq.zeroPoint, l2.zw);
  return program(`FusedDwPw${t === 'int8' ? 'I8' : 'U8'}(${args.node.name}${ra ? ' + add' : ''})`,
    ['int8-FusedDwPw-words', t, args.dot4 ? 'dot4' : 'unpack', [N, C, H, W], M, [g.kh, g.kw, g.sh, g.sw, g.pt, g.pl, g.pb, g.pr, g.dh, g.dw],
      [xq.zeroPoint, l1.zw, mq.zeroPoint, l2.zw, yq.zeroPoint], [...l1.clamp, ...l2.clamp], [TP, FB, CK4, ks], d.dispatch, ra?.key ?? ''],
    wgsl, T, d, bytesFor(ks), [
      { name: 'wd', data: dwWeights({ C, kh: g.kh, kw: g.kw, dw: g.dw }, l1.w) }, { name: 'q1', data: channelParams(l1.bias, l1.m, l1.s) },
      { name: 'wp', data: channelMajor(packRows(l2.w, blocks * FB, C), blocks * FB, C4) }, { name: 'q2', data: channelParams(folded2, l2.m, l2.s) },
    ], [0, ...(ra?.inputs ?? [])]);
}

// ---- PW-PW ----------------------------------------------------------------------------------------------------

export function int8FusedPwPw(args: Int8FusedArgs): Int8Program {
  const { w, xs, xq, mq, yq, ws1, ws2, t, cap, storage } = common(args);
  const a = args.node.attrs;
  for (const key of ['strides', 'dilations']) {
    const v = a[key];
    if (v !== undefined && !(Array.isArray(v) && v.every((s) => s === 1))) throw unsupported(w, `FusedPwPw with ${key} ${JSON.stringify(v)}`);
  }
  const [N, C, H, W] = xs;
  const M = ws1[0], F = ws2[0];
  if (ws1[1] !== C || ws1[2] !== 1 || ws1[3] !== 1) throw invalid(w, `pointwise weights 1 [${ws1}] do not match ${C} channels`);
  if (ws2[1] !== M || ws2[2] !== 1 || ws2[3] !== 1) throw invalid(w, `pointwise weights 2 [${ws2}] do not match ${M} channels`);
  checkOut(args, [N, F, H, W], w);
  const l1 = layer(args, 1, 2, xq, mq, '1', M), l2 = layer(args, 3, 4, mq, yq, '2', F);
  const P = H * W, C4 = Math.ceil(C / 4), M4 = Math.ceil(M / 4);
  const wz1 = l1.zw !== 0, wz2 = l2.zw !== 0;
  const mk: TileDim = { name: 'MK4', value: Math.min(M4, Math.ceil(tileAttr(a, 'tileFilters1', 16, w) / 4)), min: 1 };
  const fb: TileDim = { name: 'FB', value: Math.min(F, tileAttr(a, 'tileFilters2', 16, w)), min: 1 };
  const tp: TileDim = { name: 'TP', value: Math.min(P, tileAttr(a, 'tileH', 4, w) * tileAttr(a, 'tileW', 4, w)), min: 1 };
  const bytes = () => 4 * wgFloats(C4 * tp.value, mk.value * tp.value, fb.value * mk.value, fb.value * tp.value);
  clampTiles([], [mk, fb, tp], () => bytes() <= storage && ceilDiv(fb.value * tp.value, cap) * (wz2 ? 2 : 1) <= maxRegsPerThread,
    w, () => `MK4=${mk.value} FB=${fb.value} TP=${tp.value}, ${bytes()} bytes`);
  // Enough workgroups: fewer output filters first (each split recomputes the first layer's tile), then positions.
  const count = () => N * ceilDiv(F, fb.value) * ceilDiv(P, tp.value);
  splitForParallelism([Object.assign(fb, { min: Math.min(fb.value, 8) }), Object.assign(tp, { min: Math.min(tp.value, 16) })], count);
  const MK4 = mk.value, FB = fb.value, TP = tp.value;
  const T = threadsFor(Math.max(FB * TP, MK4 * TP, C4 * TP), cap);
  const EPT = ceilDiv(FB * TP, T);
  const pTiles = ceilDiv(P, TP), blocks = ceilDiv(F, FB);
  const total = N * blocks * pTiles;
  const d = layoutWorkgroups(total, args.limits, w);
  const wgsl = `${dot4Requires(args.dot4)}
${int8Bindings(['x'], ['w1', 'q1', 'w2', 'q2'], ['out'], true)}
${constsU32({ C, M, F, P, C4, M4, MK4, FB, TP, NW: Math.floor((TP + 2) / 4) + 1, T, EPT, PTILES: pTiles, BLOCKS: blocks, TOTAL: total, DISPATCH_X: d.dispatchX })}
${constsI32({ ZW1: l1.zw, ZM: mq.zeroPoint, ZW2: l2.zw, ZO: yq.zeroPoint, LO1: l1.clamp[0], HI1: l1.clamp[1], LO2: l2.clamp[0], HI2: l2.clamp[1] })}
${loader('x', t)}
${dot4Wgsl(t, args.dot4)}
${fixedPointWgsl}
${atomicByteStore}
var<workgroup> xs: array<u32, ${C4 * TP}>;
var<workgroup> midw: array<u32, ${MK4 * TP}>;
var<workgroup> ws: array<u32, ${FB * MK4}>;
var<workgroup> fin: array<u32, ${FB * TP}>;

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let g = wid.x + wid.y * DISPATCH_X;
  if (g >= TOTAL) { return; }
  let p0 = (g % PTILES) * TP;
  let f0 = ((g / PTILES) % BLOCKS) * FB;
  let n = g / (PTILES * BLOCKS);
  for (var e = li; e < C4 * TP; e += T) {
    let c = (e / TP) * 4u;
    let p = p0 + e % TP;
    var WORD_OUT = 0u;
    if (p < P) ${gatherWord('ld_x', '(n * C + c) * P + p', 'P', 'c', 'C')}
    xs[e] = WORD_OUT;
  }
  workgroupBarrier();
  // The EPT outputs of a thread (and their byte sums) in unrolled scalars: indexed in a loop, a private array
  // spilled to local memory (common.ts declareAccs).
  ${unroll(EPT, (i) => `var acc${i} = 0i;${wz2 ? ` var sx${i} = 0i;` : ''}`, ' ')}
  for (var m40 = 0u; m40 < M4; m40 += MK4) {
    // First layer for 4 intermediate channels of one position per word, stored as the second layer reads them.
    for (var e = li; e < MK4 * TP; e += T) {
      let m0 = (m40 + e / TP) * 4u;
      let p = e % TP;
      var s0 = 0i; var s1 = 0i; var s2 = 0i; var s3 = 0i;
      var sxx = 0i;
      for (var c4 = 0u; c4 < C4; c4++) {
        let xv = xs[c4 * TP + p];
        ${unroll(4, (k) => `if (m0 + ${k}u < M) { s${k} += dot4(w1[(m0 + ${k}u) * C4 + c4], xv); }`, '\n        ')}
        ${wz1 ? 'sxx += dot4(xv, 0x01010101u);' : ''}
      }
      var word = 0u;
      ${unroll(4, (k) => `if (m0 + ${k}u < M) {
        let m = m0 + ${k}u;
        let v = ${requant(`s${k} + bitcast<i32>(q1[4u * m])${wz1 ? ' - ZW1 * sxx' : ''}`, 'q1', 'm', 'ZM', 'LO1', 'HI1')};
        word |= (u32(v) & 0xffu) << ${8 * k}u;
      }`, '\n      ')}
      midw[e] = word;
    }
    for (var e = li; e < FB * MK4; e += T) {
      let f = f0 + e / MK4;
      let m4 = m40 + e % MK4;
      var v = 0u;
      if (f < F && m4 < M4) { v = w2[f * M4 + m4]; }
      ws[e] = v;
    }
    workgroupBarrier();
    ${unroll(EPT, (i) => `if (li + ${i * T}u < FB * TP) {
      let e = li + ${i * T}u;
      let wrow = (e / TP) * MK4;
      let p = e % TP;
      for (var m4 = 0u; m4 < MK4; m4++) {
        let mv = midw[m4 * TP + p];
        acc${i} += dot4(ws[wrow + m4], mv);
        ${wz2 ? `sx${i} += dot4(mv, 0x01010101u);` : ''}
      }
    }`, '\n    ')}
    workgroupBarrier();
  }
  // The outputs go through workgroup memory so that a thread stores a word of 4 consecutive positions: whole where
  // the word lies inside this tile's segment of the filter's row (no other workgroup writes it), a byte at a time
  // (atomic) where the segment shares it with a neighbouring tile.
  ${unroll(EPT, (i) => `if (li + ${i * T}u < FB * TP) {
    let e = li + ${i * T}u;
    let f = f0 + e / TP;
    let p = p0 + e % TP;
    if (f < F && p < P) {
      fin[e] = u32(${requant(`acc${i} + bitcast<i32>(q2[4u * f])${wz2 ? ` - ZW2 * sx${i}` : ''}`, 'q2', 'f', 'ZO', 'LO2', 'HI2')}) & 0xffu;
    }
  }`, '\n  ')}
  workgroupBarrier();
  for (var e = li; e < FB * NW; e += T) {
    let fl = e / NW;
    let f = f0 + fl;
    if (f < F) {
      let b0 = (n * F + f) * P + p0;
      let b1 = (n * F + f) * P + min(p0 + TP, P);
      let wj = (b0 >> 2u) + e % NW;
      if (wj * 4u < b1) {
        var word = 0u;
        for (var k = 0u; k < 4u; k++) {
          let o = wj * 4u + k;
          if (o >= b0 && o < b1) { word |= fin[fl * TP + o - b0] << (k * 8u); }
        }
        if (wj * 4u >= b0 && wj * 4u + 3u < b1) {
          st_word(wj, word);
        } else {
          for (var k = 0u; k < 4u; k++) {
            let o = wj * 4u + k;
            if (o >= b0 && o < b1) { st_out(o, i32(extractBits(word, k * 8u, 8u))); }
          }
        }
      }
    }
  }
}
`;
  const folded1 = foldBias(l1.bias, l1.w, M, C, xq.zeroPoint, l1.zw);
  const folded2 = foldBias(l2.bias, l2.w, F, M, mq.zeroPoint, l2.zw);
  return program(`FusedPwPw${t === 'int8' ? 'I8' : 'U8'}(${args.node.name})`,
    ['int8-FusedPwPw', t, args.dot4 ? 'dot4' : 'unpack', [N, C, H, W], M, F, [l1.zw, mq.zeroPoint, l2.zw, yq.zeroPoint],
      [...l1.clamp, ...l2.clamp], [MK4, FB, TP, T], d.dispatch],
    wgsl, T, d, bytes(), [
      { name: 'w1', data: packRows(l1.w, M, C) }, { name: 'q1', data: channelParams(folded1, l1.m, l1.s) },
      { name: 'w2', data: packRows(l2.w, F, M) }, { name: 'q2', data: channelParams(folded2, l2.m, l2.s) },
    ]);
}
