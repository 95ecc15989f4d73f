// Pointwise (1x1, stride 1, no padding, group 1) convolution as a tiled matrix product per image:
// out[f, p] = sum_c w[f, c] * x[c, p] over the P = H*W positions. A workgroup owns TF filters x TP positions;
// input channels are staged CK at a time: the weight tile (TF x CK) and the input tile (CK x TP) sit in
// workgroup memory, so each weight is read from global memory once per workgroup instead of once per output.
// Threads form a TFT x TPT grid; each accumulates RF x RP outputs in registers (filters strided by TFT,
// positions by TPT, so neighbouring threads touch neighbouring positions: coalesced loads and stores).
// Tiles are chosen from the shape: TPT follows P (1x1 spatial squeeze-excite convs get TPT = 1), and CK
// halves until the two tiles fit maxComputeWorkgroupStorageSize.

import type { KernelProgram } from './program.js';
import { type ConvGeom, convBindings, convGeom, convStore, geomKey, isPointwise } from './conv-common.js';
import { invalid, overLimit } from '../src/errors.js';
import { type KernelArgs, bindings, cacheKey, ceilDiv, constsU32, layoutWorkgroups, threadCap, where } from './shader.js';

const pow2AtLeast = (n: number) => { let p = 1; while (p < n) p *= 2; return p; };
const pow2AtMost = (n: number) => { let p = 1; while (p * 2 <= n) p *= 2; return p; };

export interface PointwiseTiles { tpt: number; tft: number; rp: number; rf: number; ck: number }

export function pointwiseTiles(g: Pick<ConvGeom, 'C' | 'F' | 'H' | 'W'>, threads: number, storageBytes: number): PointwiseTiles {
  const P = g.H * g.W;
  const T = pow2AtMost(threads);
  const tpt = Math.min(16, pow2AtLeast(P), T);
  const tft = T / tpt;
  const rp = P >= 4 * tpt ? 4 : P >= 2 * tpt ? 2 : 1;
  const rf = g.F >= 2 * tft ? 2 : 1;
  let ck = Math.min(16, pow2AtLeast(g.C));
  while (ck > 1 && 4 * ck * (tft * rf + tpt * rp) > storageBytes) ck /= 2;
  return { tpt, tft, rp, rf, ck };
}

export function pointwise(args: KernelArgs, geom?: ConvGeom): KernelProgram {
  const g = geom ?? convGeom(args);
  const w = where(args);
  if (!isPointwise(g)) throw invalid(w, 'not a pointwise convolution (1x1, stride 1, no padding, group 1)');
  const t = pointwiseTiles(g, threadCap(args.limits), args.limits.maxComputeWorkgroupStorageSize);
  const T = t.tpt * t.tft, TF = t.tft * t.rf, TP = t.tpt * t.rp, CK = t.ck;
  const bytes = 4 * CK * (TF + TP);
  if (bytes > args.limits.maxComputeWorkgroupStorageSize) {
    throw overLimit(w, `pointwise tiles need ${bytes} bytes of workgroup storage, the device allows ${args.limits.maxComputeWorkgroupStorageSize}`);
  }
  const P = g.H * g.W;
  const pTiles = ceilDiv(P, TP), fTiles = ceilDiv(g.F, TF);
  const total = g.N * pTiles * fTiles;
  const d = layoutWorkgroups(total, args.limits, w);
  const b = convBindings(g);
  const wgsl = `
${bindings(b.names)}
${constsU32({ C: g.C, F: g.F, P, T, TF, TP, CK, TFT: t.tft, TPT: t.tpt, RF: t.rf, RP: t.rp, PTILES: pTiles, FTILES: fTiles, TOTAL: total, DISPATCH_X: d.dispatchX })}
${g.act.fn}

var<workgroup> ws: array<f32, ${TF * CK}>;
var<workgroup> xs: array<f32, ${CK * TP}>;

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  // Uniform per workgroup: returning here cannot split a barrier.
  let g = wid.x + wid.y * DISPATCH_X;
  if (g >= TOTAL) { return; }
  let p0 = (g % PTILES) * TP;
  let f0 = ((g / PTILES) % FTILES) * TF;
  let n = g / (PTILES * FTILES);
  let tf = li / TPT;
  let tp = li % TPT;
  var acc: array<f32, ${t.rf * t.rp}>;
  for (var c0 = 0u; c0 < C; c0 += CK) {
    for (var e = li; e < TF * CK; e += T) {
      let f = f0 + e / CK;
      let c = c0 + e % CK;
      var v = 0.0;
      if (f < F && c < C) { v = w[f * C + c]; }
      ws[e] = v;
    }
    for (var e = li; e < CK * TP; e += T) {
      let c = c0 + e / TP;
      let p = p0 + e % TP;
      var v = 0.0;
      if (c < C && p < P) { v = x[(n * C + c) * P + p]; }
      xs[e] = v;
    }
    workgroupBarrier();
    for (var c = 0u; c < CK; c++) {
      for (var r = 0u; r < RF; r++) {
        let wv = ws[(tf + r * TFT) * CK + c];
        for (var q = 0u; q < RP; q++) {
          acc[r * RP + q] += wv * xs[c * TP + tp + q * TPT];
        }
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < RF; r++) {
    let f = f0 + tf + r * TFT;
    for (var q = 0u; q < RP; q++) {
      let p = p0 + tp + q * TPT;
      if (f < F && p < P) {
        let o = (n * F + f) * P + p;
        ${convStore(g, 'acc[r * RP + q]', 'o', 'f')}
      }
    }
  }
}
`;
  return {
    name: 'Conv(pw)',
    cacheKey: cacheKey('pointwise', geomKey(g), `T${T}TF${TF}TP${TP}CK${CK}RF${t.rf}RP${t.rp}`, `dx${d.dispatchX}`),
    wgsl,
    workgroupSize: [T, 1, 1],
    dispatch: d.dispatch,
    inputs: b.inputs,
    outputs: 1,
    uniforms: [],
    workgroupStorageBytes: bytes,
  };
}
