// PointwiseMean, an op of the executor's graph (src/rewrite/pointwise-mean.ts makes it; src/graph/ir.ts): a pointwise
// Conv with its activation and the global average pool that was its only reader, in one program:
//   out[n, f] = (1 / P) sum_p act(sum_c w[f, c] x[n, c, p] + b[f])        (P = H * W positions; output [N,F,1,1] or [N,F])
// The Conv's output never reaches global memory. Made for the heads of compact CNNs (P = 49, C 160..960,
// F 960..1280, N 1..32), correct for any shape.
//
// One workgroup per (filter block, image): every position of the image is its, so the mean needs no second pass.
// Its threads are tp position lanes x tf filter lanes x ks channel slices. As in the pointwise gemm
// (kernels/pointwise.ts), a thread holds px vec4s of 4 consecutive positions x rf4 groups of 4 consecutive filters
// (4 px x 4 rf4 sums, vec4 FMAs), positions 4 (tp + TP j) and filters 4 (tf + TF r): neighbouring lanes read
// neighbouring vec4s of workgroup memory. Per step, BK channels of x (a chunk of PC = 4 px tp positions) and of w are
// staged in workgroup memory as vec4s, the next step's global loads issued before this step's FMAs; slice s takes
// channels s, s + KS, ... of the step, so at batch 1 the few filter blocks get ks times the threads and each thread a
// ks times shorter chain of FMAs. After the channels the other slices store their sums in workgroup memory and
// slice 0 adds them up, adds the bias, applies the activation (before the mean) to each position and sums its
// positions; then the tp lanes' sums are added per filter in workgroup memory. Maps over PC positions loop in
// chunks. choosePointwiseMeanTiles picks the tiles from the shape only (the cache key names them).

import type { KernelArgs, KernelLimits, KernelProgram } from './program.js';
import { invalid, overLimit } from '../src/errors.js';
import {
  bindings, cacheKey, ceilDiv, hasInput, inShape, nodeEpilogue, outShape, pow2AtLeast, pow2AtMost, sameShape, threadCap, u32,
  wgFloats, where,
} from './shader.js';

export interface PointwiseMeanTiles {
  /** Position lanes and vec4s of positions per thread: a chunk of PC = 4 px tp positions per pass over the channels. */
  tp: number; px: number;
  /** Filter lanes and groups of 4 filters per thread: BF = 4 rf4 tf filters per workgroup. */
  tf: number; rf4: number;
  /** Channel slices: ks groups of tp * tf threads, each summing every ks-th channel of a staged step. */
  ks: number;
  /** Channels staged per step. */
  bk: number;
}

export interface PointwiseMeanShape { N: number; C: number; F: number; P: number }

/** Bytes of workgroup memory: x and w tiles (w rows padded by a vec4 against bank conflicts), the slices' sums, the lanes' sums. */
export function pointwiseMeanStorage(t: PointwiseMeanTiles): number {
  const PC4 = t.px * t.tp, BF4 = t.rf4 * t.tf;
  const red = (t.ks - 1) * t.tp * t.tf * t.px * t.rf4 * 4;
  return 16 * (t.bk * PC4 + t.bk * (BF4 + 1) + red) + 4 * wgFloats(t.tp * 4 * BF4);
}

/** Workgroups that fill an H100-class GPU: two per SM of 132. */
const targetWorkgroups = 264;

/**
 * Tiles for a shape. Positions: one vec4 per thread, lanes enough for the whole map up to 256 positions (49 -> 13
 * lanes, 52 computed), else chunks of 256. Filters: 4 per thread, as many filter lanes as the workgroup takes (up to
 * what F needs), halved while there are fewer than two workgroups per SM of a 132-SM GPU (batch 1, F 1280: one lane,
 * 320 workgroups; batch 32: 16 lanes, 640). Then channel slices double while the workgroup has room and each slice
 * keeps 16+ channels, and the staging step takes up to 64 channels within workgroup memory.
 */
export function choosePointwiseMeanTiles(s: PointwiseMeanShape, limits: KernelLimits): PointwiseMeanTiles {
  const cap = threadCap(limits);
  const tp = Math.min(ceilDiv(s.P, 4), 64, cap);
  let tf = pow2AtMost(Math.max(1, Math.floor(cap / tp)));
  while (tf > 1 && 4 * tf / 2 >= pow2AtLeast(s.F)) tf /= 2;
  while (tf > 1 && s.N * ceilDiv(s.F, 4 * tf) < targetWorkgroups) tf /= 2;
  let ks = 1;
  while (tp * tf * ks * 2 <= cap && s.C / (ks * 2) >= 16) ks *= 2;
  for (; ks >= 1; ks /= 2) {
    for (let bk = Math.min(64, Math.max(4, pow2AtLeast(s.C))); bk >= Math.max(ks, 4); bk /= 2) {
      const t = { tp, px: 1, tf, rf4: 1, ks, bk };
      if (pointwiseMeanStorage(t) <= limits.maxComputeWorkgroupStorageSize) return t;
    }
  }
  return { tp, px: 1, tf, rf4: 1, ks: 1, bk: 1 };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const q4 = ['x', 'y', 'z', 'w'];

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
  if (P < 1 || C < 1 || F < 1 || N < 1) throw invalid(w, `input [${[N, C, H, W].join(',')}] or weights [${ws.join(',')}] are empty`);
  const act = nodeEpilogue(args.node.attrs, w);
  const t = tiles ?? choosePointwiseMeanTiles({ N, C, F, P }, args.limits);
  for (const [k, v] of Object.entries(t)) if (!Number.isInteger(v) || v < 1) throw invalid(w, `tile ${k} must be a positive integer, got ${v}`);
  const { tp: TP, px: PX, tf: TF, rf4: RF4, ks: KS, bk: BK } = t;
  const TT = TP * TF, T = TT * KS, PC4 = PX * TP, PC = 4 * PC4, BF4 = RF4 * TF, BF = 4 * BF4, WR = BF4 + 1;
  if (T > threadCap(args.limits)) throw overLimit(w, `tiles need ${T} threads per workgroup, the device allows ${threadCap(args.limits)}`);
  const bytes = pointwiseMeanStorage(t);
  if (bytes > args.limits.maxComputeWorkgroupStorageSize) {
    throw overLimit(w, `tiles need ${bytes} bytes of workgroup memory, the device allows ${args.limits.maxComputeWorkgroupStorageSize}`);
  }
  const FB = ceilDiv(F, BF), maxDim = args.limits.maxComputeWorkgroupsPerDimension ?? 65535;
  if (FB > maxDim || N > maxDim) throw overLimit(w, `${FB} filter blocks x ${N} images exceed ${maxDim} workgroups per dimension`);
  // Staged loads per thread and step: XN vec4s of x (channel-major), WN vec4s of w (channel fastest: coalesced rows).
  const XN = BK * PC4, WN = BK * BF4, XL = ceilDiv(XN, T), WL = ceilDiv(WN, T);
  const needC = C % BK !== 0, needP = P % PC !== 0, needF = F % BF !== 0;
  const and = (...c: string[]) => c.filter((s) => s).join(' && ') || 'true';
  const accs = range(PX).flatMap((j) => range(RF4 * 4).map((r) => `a${j}_${r}`));
  const lines: string[] = [];
  const L = (s: string) => lines.push(s);
  // Per-thread bases of each staged load, fixed over the channel steps (the position chunk's start p0 added later).
  for (const i of range(XL)) {
    L(`  let xe${i} = li + ${u32(i * T)};`);
    L(`  let xk${i} = xe${i} / ${u32(PC4)};`);
    L(`  let xq${i} = 4u * (xe${i} % ${u32(PC4)});`);
  }
  for (const i of range(WL)) {
    L(`  let we${i} = li + ${u32(i * T)};`);
    L(`  let wk${i} = we${i} % ${u32(BK)};`);
    L(`  let wg${i} = we${i} / ${u32(BK)};`);
    L(`  let wf${i} = f0 + 4u * wg${i};`);
  }
  const prologue = lines.splice(0).join('\n');
  const xOk = (i: number) => ((i + 1) * T > XN ? `xe${i} < ${u32(XN)}` : '');
  const wOk = (i: number) => ((i + 1) * T > WN ? `we${i} < ${u32(WN)}` : '');
  // The loads of the step whose first channel is `cb`, into registers.
  const load = (cb: string) => {
    const out: string[] = [];
    for (const i of range(XL)) {
      const c = `${cb} + xk${i}`;
      const ok = and(xOk(i), needC ? `${c} < ${u32(C)}` : '');
      out.push(`    xr${i} = vec4<f32>(${range(4).map((q) => `xAt(${c}, p0 + xq${i} + ${q}u, ${ok})`).join(', ')});`);
    }
    for (const i of range(WL)) {
      const c = `${cb} + wk${i}`;
      const ok = and(wOk(i), needC ? `${c} < ${u32(C)}` : '');
      out.push(`    wr${i} = vec4<f32>(${range(4).map((q) => `wAt(wf${i} + ${q}u, ${c}, ${ok})`).join(', ')});`);
    }
    return out.join('\n');
  };
  const store = range(XL).map((i) => (xOk(i) ? `    if (${xOk(i)}) { xs[xe${i}] = xr${i}; }` : `    xs[xe${i}] = xr${i};`))
    .concat(range(WL).map((i) => { const s = `wt[wk${i} * ${u32(WR)} + wg${i}] = wr${i};`; return wOk(i) ? `    if (${wOk(i)}) { ${s} }` : `    ${s}`; }))
    .join('\n');
  const fmas = range(PX).flatMap((j) => range(RF4).flatMap((r4) => range(4).map((q) => {
    const a = `a${j}_${4 * r4 + q}`;
    return `        ${a} = fma(vec4<f32>(w${r4}.${q4[q]}), x${j}, ${a});`;
  }))).join('\n');
  // Slices 1.. store their sums in `red` ((KS - 1) * TT * PX * RF4 * 4 vec4s) at once; slice 0 adds them up.
  const NA = accs.length;
  const reduce = KS === 1 ? '' : `
    if (sl > 0u) {
      let rb = (sl - 1u) * ${u32(NA * TT)} + lt;
${accs.map((a, r) => `      red[rb + ${u32(r * TT)}] = ${a};`).join('\n')}
    }
    workgroupBarrier();
    if (sl == 0u) {
      for (var s1 = 0u; s1 < ${u32(KS - 1)}; s1++) {
        let rb = s1 * ${u32(NA * TT)} + lt;
${accs.map((a, r) => `        ${a} += red[rb + ${u32(r * TT)}];`).join('\n')}
      }
    }
    workgroupBarrier();`;
  // Slice 0: bias, activation per position, positions past P masked, summed into the thread's per-filter totals.
  const finish = range(PX).map((j) => {
    const pj = `p0 + 4u * (tp + ${u32(TP * j)})`;
    const mask = needP ? `vec4<f32>(${range(4).map((q) => `select(0.0, 1.0, ${pj} + ${q}u < ${u32(P)})`).join(', ')})` : '';
    return range(RF4 * 4).map((r) => {
      const v = `a${j}_${r} + vec4<f32>(bias${r})`;
      const y = `vec4<f32>(${q4.map((c) => `act(v.${c})`).join(', ')})`;
      return `      { let v = ${v}; let y = ${y}${mask ? ` * m${j}` : ''}; t${r} += (y.x + y.y) + (y.z + y.w); }`;
    }).join('\n').replace(/^/, mask ? `      let m${j} = ${mask};\n` : '');
  }).join('\n');
  const filterOf = (r: number) => `f0 + 4u * (tf + ${u32(TF * (r >> 2))}) + ${u32(r & 3)}`;
  const wgsl = `
${bindings(['x', 'w', ...(hasBias ? ['b'] : [])])}
${act.fn}
// xs[k * PC4 + q]: positions p0 + 4q .. + 3 at the step's channel k; wt[k * (BF4 + 1) + g]: filters f0 + 4g .. + 3 at channel k.
var<workgroup> xs: array<vec4<f32>, ${XN}>;
var<workgroup> wt: array<vec4<f32>, ${BK * WR}>;
${KS > 1 ? `var<workgroup> red: array<vec4<f32>, ${(KS - 1) * TT * PX * RF4 * 4}>;` : ''}
var<workgroup> msum: array<f32, ${TP * BF}>;

/** x of image base nc = n * C at channel c, position p (0 where !ok or past P). */
fn xAt(c: u32, p: u32, ok: bool) -> f32 {
  if (!ok || p >= ${u32(P)}) { return 0.0; }
  return x[(nc + c) * ${u32(P)} + p];
}

/** w of filter f at channel c (0 where !ok or past F). */
fn wAt(f: u32, c: u32, ok: bool) -> f32 {
  if (!ok || f >= ${u32(F)}) { return 0.0; }
  return w[f * ${u32(C)} + c];
}

var<private> nc: u32;

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let f0 = wid.x * ${u32(BF)};
  let n = wid.y;
  nc = n * ${u32(C)};
  let lt = li % ${u32(TT)};
  let tp = lt % ${u32(TP)};
  let tf = lt / ${u32(TP)};
  let sl = li / ${u32(TT)};
${prologue}
  ${range(RF4 * 4).map((r) => `var t${r} = 0.0;`).join(' ')}
  // Bias of the thread's filters (those past F are computed on zero weights and never stored).
  ${range(RF4 * 4).map((r) => `let bias${r} = ${hasBias ? `b[min(${filterOf(r)}, ${u32(F - 1)})]` : '0.0'};`).join('\n  ')}
  ${range(XL).map((i) => `var xr${i}: vec4<f32>;`).join(' ')} ${range(WL).map((i) => `var wr${i}: vec4<f32>;`).join(' ')}
  for (var p0 = 0u; p0 < ${u32(P)}; p0 += ${u32(PC)}) {
    ${accs.map((a) => `var ${a} = vec4<f32>(0.0);`).join(' ')}
${load('0u')}
    for (var c0 = 0u; c0 < ${u32(C)}; c0 += ${u32(BK)}) {
${store}
      workgroupBarrier();
      // The next step's loads go out before this step's FMAs (c0 is uniform: no divergence).
      if (c0 + ${u32(BK)} < ${u32(C)}) {
        let c1 = c0 + ${u32(BK)};
${load('c1').replace(/^ {4}/gm, '        ')}
      }
      for (var k = ${KS === 1 ? '0u' : 'sl'}; k < ${u32(BK)}; k += ${u32(KS)}) {
${range(PX).map((j) => `        let x${j} = xs[k * ${u32(PC4)} + tp + ${u32(TP * j)}];`).join('\n')}
${range(RF4).map((r4) => `        let w${r4} = wt[k * ${u32(WR)} + tf + ${u32(TF * r4)}];`).join('\n')}
${fmas}
      }
      workgroupBarrier();
    }${reduce}
    if (sl == 0u) {
${finish}
    }
  }
  if (sl == 0u) {
    ${range(RF4 * 4).map((r) => `msum[(4u * (tf + ${u32(TF * (r >> 2))}) + ${u32(r & 3)}) * ${u32(TP)} + tp] = t${r};`).join('\n    ')}
  }
  workgroupBarrier();
  for (var ff = li; ff < ${u32(BF)}; ff += ${u32(T)}) {
    let f = f0 + ff;
    if (${needF ? `f < ${u32(F)}` : 'true'}) {
      var s = 0.0;
      for (var q = 0u; q < ${u32(TP)}; q++) { s += msum[ff * ${u32(TP)} + q]; }
      out[n * ${u32(F)} + f] = s / ${P}.0;
    }
  }
}
`;
  return {
    name: 'PointwiseMean',
    cacheKey: cacheKey('pointwiseMean', N, C, P, F, hasBias, act.key, `TP${TP}PX${PX}TF${TF}RF4${RF4}KS${KS}BK${BK}`),
    wgsl,
    workgroupSize: [T, 1, 1],
    dispatch: [FB, N, 1],
    inputs: hasBias ? [0, 1, 2] : [0, 1],
    outputs: 1,
    workgroupStorageBytes: bytes,
  };
}
