// PointwiseMean, an op of the executor's graph (src/rewrite/pointwise-mean.ts makes it; src/graph/ir.ts): a pointwise
// Conv with its activation and the global average pool that was its only reader, in one program:
//   out[n, f] = (1 / P) sum_p act(sum_c w[f, c] x[n, c, p] + b[f])        (P = H * W positions; output [N,F,1,1] or [N,F])
// The Conv's output never reaches global memory. Made for the heads of compact CNNs (P = 49, C 160..960,
// F 960..1280, N 1..32), correct for any shape.
//
// One workgroup per (filter block of BF = rf * tf filters, image n): every position of the image is its, so the mean
// needs no second pass. Its threads are tp position lanes x tf filter lanes x ks channel slices; each thread holds
// rp positions x rf filters of sums in registers (positions tp + TP j, filters tf + TF r: neighbouring lanes read
// neighbouring words of workgroup memory). Per step, BK channels of x (all positions of a chunk of PC = rp * tp) and
// of w are staged in workgroup memory, and slice s sums channels s, s + KS, ... of the step: at batch 1 the few
// filter blocks get ks times the threads and each thread a ks times shorter chain of FMAs. After the channels: the
// slices' sums are added in workgroup memory, slice 0 adds the bias, applies the activation (before the mean) and sums
// its positions, and the tp lanes' sums are added in workgroup memory per filter. Positions beyond PC loop in chunks.
// choosePointwiseMeanTiles picks the tiles from the shape only (the cache key names them).

import type { KernelArgs, KernelLimits, KernelProgram } from './program.js';
import { invalid, overLimit } from '../src/errors.js';
import {
  bindings, cacheKey, ceilDiv, hasInput, inShape, nodeEpilogue, outShape, pow2AtLeast, pow2AtMost, sameShape, threadCap, u32,
  wgFloats, where,
} from './shader.js';

export interface PointwiseMeanTiles {
  /** Positions per thread and position lanes: a chunk of rp * tp positions per pass over the channels. */
  rp: number; tp: number;
  /** Filters per thread and filter lanes: BF = rf * tf filters per workgroup. */
  rf: number; tf: number;
  /** Channel slices: ks groups of tp * tf threads, each summing every ks-th channel of a staged step. */
  ks: number;
  /** Channels staged per step. */
  bk: number;
}

export interface PointwiseMeanShape { N: number; C: number; F: number; P: number }

/** Bytes of workgroup memory the tiles take: x and w tiles, the slices' sums, the lanes' per-filter sums. */
export function pointwiseMeanStorage(t: PointwiseMeanTiles): number {
  const slices = t.ks > 1 ? (t.ks - 1) * t.tp * t.tf * t.rp * t.rf : 0;
  return 4 * wgFloats(t.bk * t.rp * t.tp, t.bk * t.rf * t.tf, slices, t.tp * t.rf * t.tf);
}

/** Workgroups that fill an H100-class GPU: two per SM of 132. */
const targetWorkgroups = 264;

/**
 * Tiles for a shape. Positions: 4 per thread (2 on maps under 16 positions, 1 under 4), lanes enough for the whole
 * map up to 256 positions (49 -> 13 lanes, 52 computed), else chunks of 256. Filters: 4 per thread, as many filter
 * lanes as the workgroup takes, halved while there are fewer than two workgroups per SM of a 132-SM GPU (batch 1,
 * F 1280: one lane, 320 workgroups; batch 32: 16 lanes, 640). Then channel slices double while the workgroup has
 * room and each slice keeps 16+ channels, and the staging step takes up to 64 channels within workgroup memory.
 */
export function choosePointwiseMeanTiles(s: PointwiseMeanShape, limits: KernelLimits): PointwiseMeanTiles {
  const cap = threadCap(limits);
  let rp: number, tp: number;
  if (s.P <= 256) {
    rp = s.P >= 16 ? 4 : s.P >= 4 ? 2 : 1;
    tp = ceilDiv(s.P, rp);
  } else { rp = 4; tp = 64; }
  tp = Math.min(tp, cap);
  const rf = s.F >= 4 ? 4 : s.F >= 2 ? 2 : 1;
  let tf = pow2AtMost(Math.max(1, Math.floor(cap / tp)));
  while (tf > 1 && (tf * rf) / 2 >= pow2AtLeast(s.F)) tf /= 2;
  while (tf > 1 && s.N * ceilDiv(s.F, rf * tf) < targetWorkgroups) tf /= 2;
  let ks = 1;
  while (tp * tf * ks * 2 <= cap && s.C / (ks * 2) >= 16) ks *= 2;
  for (; ks >= 1; ks /= 2) {
    for (let bk = Math.min(64, Math.max(4, pow2AtLeast(s.C))); bk >= Math.max(ks, 4); bk /= 2) {
      const t = { rp, tp, rf, tf, ks, bk };
      if (pointwiseMeanStorage(t) <= limits.maxComputeWorkgroupStorageSize) return t;
    }
  }
  // The smallest tiles: one channel a step, no slices.
  return { rp, tp, rf, tf, ks: 1, bk: 1 };
}

export function pointwiseMean(args: KernelArgs, tiles?: PointwiseMeanTiles): KernelProgram {
  const w = where(args);
  const [N, C, H, W] = inShape(args, 0, 'input', 4);
  const ws = inShape(args, 1, 'weights', 4);
  const F = ws[0];
  if (ws[1] !== C || ws[2] !== 1 || ws[3] !== 1) throw invalid(w, `weights must be [F,${C},1,1], got [${ws.join(',')}]`);
  const hasBias = hasInput(args, 2);
  if (hasBias && !sameShape(inShape(args, 2, 'bias'), [F])) throw invalid(w, `bias '${args.node.inputs[2]}' must have shape [${F}]`);
  const o = outShape(args);
  if (!sameShape(o, [N, F, 1, 1]) && !sameShape(o, [N, F])) throw invalid(w, `output must be [${N},${F},1,1] or [${N},${F}], got [${o.join(',')}]`);
  const P = H * W;
  if (P < 1 || C < 1) throw invalid(w, `input [${[N, C, H, W].join(',')}] is empty`);
  const act = nodeEpilogue(args.node.attrs, w);
  const t = tiles ?? choosePointwiseMeanTiles({ N, C, F, P }, args.limits);
  for (const [k, v] of Object.entries(t)) if (!Number.isInteger(v) || v < 1) throw invalid(w, `tile ${k} must be a positive integer, got ${v}`);
  const { rp: RP, tp: TP, rf: RF, tf: TF, ks: KS, bk: BK } = t;
  const T = TP * TF * KS, PC = RP * TP, BF = RF * TF;
  if (T > threadCap(args.limits)) throw overLimit(w, `tiles need ${T} threads per workgroup, the device allows ${threadCap(args.limits)}`);
  const bytes = pointwiseMeanStorage(t);
  if (bytes > args.limits.maxComputeWorkgroupStorageSize) {
    throw overLimit(w, `tiles need ${bytes} bytes of workgroup memory, the device allows ${args.limits.maxComputeWorkgroupStorageSize}`);
  }
  const FB = ceilDiv(F, BF), maxDim = args.limits.maxComputeWorkgroupsPerDimension ?? 65535;
  if (FB > maxDim || N > maxDim) throw overLimit(w, `${FB} filter blocks x ${N} images exceed ${maxDim} workgroups per dimension`);
  const js = [...Array(RP).keys()], rs = [...Array(RF).keys()];
  const each = (f: (j: number, r: number) => string, sep = '\n      ') => js.flatMap((j) => rs.map((r) => f(j, r))).join(sep);
  const SL = (KS - 1) * TP * TF * RP * RF;
  // The slices' sums: slice s > 0 stores, slice 0 adds them up.
  const slices = KS === 1 ? '' : `
    if (sl > 0u) {
      let base = ((sl - 1u) * ${u32(TP * TF)} + tp + ${u32(TP)} * tf) * ${u32(RP * RF)};
      ${each((j, r) => `red[base + ${u32(j * RF + r)}] = a${j}_${r};`)}
    }
    workgroupBarrier();
    if (sl == 0u) {
      for (var s = 1u; s < ${u32(KS)}; s++) {
        let base = ((s - 1u) * ${u32(TP * TF)} + tp + ${u32(TP)} * tf) * ${u32(RP * RF)};
        ${each((j, r) => `a${j}_${r} += red[base + ${u32(j * RF + r)}];`, '\n        ')}
      }
    }
    workgroupBarrier();`;
  const wgsl = `
${bindings(['x', 'w', ...(hasBias ? ['b'] : [])])}
${act.fn}
var<workgroup> xs: array<f32, ${BK * PC}>;
var<workgroup> wt: array<f32, ${BK * BF}>;
${KS > 1 ? `var<workgroup> red: array<f32, ${SL}>;` : ''}
var<workgroup> msum: array<f32, ${TP * BF}>;

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let f0 = wid.x * ${u32(BF)};
  let n = wid.y;
  let tp = li % ${u32(TP)};
  let tf = (li / ${u32(TP)}) % ${u32(TF)};
  let sl = li / ${u32(TP * TF)};
  ${rs.map((r) => `var t${r} = 0.0;`).join(' ')}
  // Bias of the thread's filters (those past F are computed on zero weights and never stored).
  ${rs.map((r) => `let bias${r} = ${hasBias ? `b[min(f0 + tf + ${u32(TF * r)}, ${u32(F - 1)})]` : '0.0'};`).join('\n  ')}
  for (var p0 = 0u; p0 < ${u32(P)}; p0 += ${u32(PC)}) {
    ${each((j, r) => `var a${j}_${r} = 0.0;`, ' ')}
    for (var c0 = 0u; c0 < ${u32(C)}; c0 += ${u32(BK)}) {
      for (var e = li; e < ${u32(BK * PC)}; e += ${u32(T)}) {
        let c = c0 + e / ${u32(PC)};
        let p = p0 + e % ${u32(PC)};
        var v = 0.0;
        if (c < ${u32(C)} && p < ${u32(P)}) { v = x[(n * ${u32(C)} + c) * ${u32(P)} + p]; }
        xs[e] = v;
      }
      for (var e = li; e < ${u32(BK * BF)}; e += ${u32(T)}) {
        let f = f0 + e / ${u32(BK)};
        let k = e % ${u32(BK)};
        let c = c0 + k;
        var v = 0.0;
        if (c < ${u32(C)} && f < ${u32(F)}) { v = w[f * ${u32(C)} + c]; }
        wt[k * ${u32(BF)} + e / ${u32(BK)}] = v;
      }
      workgroupBarrier();
      for (var k = sl; k < ${u32(BK)}; k += ${u32(KS)}) {
        ${js.map((j) => `let x${j} = xs[k * ${u32(PC)} + tp + ${u32(TP * j)}];`).join('\n        ')}
        ${rs.map((r) => `let w${r} = wt[k * ${u32(BF)} + tf + ${u32(TF * r)}];`).join('\n        ')}
        ${each((j, r) => `a${j}_${r} += x${j} * w${r};`, '\n        ')}
      }
      workgroupBarrier();
    }${slices}
    if (sl == 0u) {
      ${js.map((j) => `if (p0 + tp + ${u32(TP * j)} < ${u32(P)}) { ${rs.map((r) => `t${r} += act(a${j}_${r} + bias${r});`).join(' ')} }`).join('\n      ')}
    }
  }
  if (sl == 0u) {
    ${rs.map((r) => `msum[(tf + ${u32(TF * r)}) * ${u32(TP)} + tp] = t${r};`).join('\n    ')}
  }
  workgroupBarrier();
  for (var ff = li; ff < ${u32(BF)}; ff += ${u32(T)}) {
    let f = f0 + ff;
    if (f < ${u32(F)}) {
      var s = 0.0;
      for (var q = 0u; q < ${u32(TP)}; q++) { s += msum[ff * ${u32(TP)} + q]; }
      out[n * ${u32(F)} + f] = s / ${P}.0;
    }
  }
}
`;
  return {
    name: 'PointwiseMean',
    cacheKey: cacheKey('pointwiseMean', N, C, P, F, hasBias, act.key, RP, TP, RF, TF, KS, BK),
    wgsl,
    workgroupSize: [T, 1, 1],
    dispatch: [FB, N, 1],
    inputs: hasBias ? [0, 1, 2] : [0, 1],
    outputs: 1,
    workgroupStorageBytes: bytes,
  };
}
