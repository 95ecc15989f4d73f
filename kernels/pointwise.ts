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
import { invalid, overLimit, unsupported } from '../src/errors.js';
import { type Epilogue, type KernelArgs, type KernelLimits, bindings, cacheKey, ceilDiv, constsU32, layoutWorkgroups, threadCap, where } from './shader.js';

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
  const b = convBindings(g);
  const dot: DotGeom = { N: g.N, C: g.C, F: g.F, P: g.H * g.W, hasBias: g.hasBias, hasRes: g.hasRes, hasScale: g.hasScale, act: g.act };
  const choice = chooseDot(dot, args.limits);
  if (choice.kind === 'vec4') return dotVec4(dot, choice.rf, choice.threads, b.names, b.inputs, args.limits, w, 'Conv(pw)', 'pointwise');
  return dotSplitK(dot, choice.ks, b.names, b.inputs, args.limits, w, 'Conv(pw)', 'pointwise');
}

/** The shared-memory tiled product (kept for reference and tests of the tile rule; chooseDot no longer picks it). */
export function pointwiseTiled(args: KernelArgs, geom?: ConvGeom): KernelProgram {
  const g = geom ?? convGeom(args);
  const w = where(args);
  if (!isPointwise(g)) throw invalid(w, 'not a pointwise convolution (1x1, stride 1, no padding, group 1)');
  if (g.hasScale) throw unsupported(w, 'the tiled pointwise kernel takes no channel scale');
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

// ---------------------------------------------------------------------------------------------------------
// Issue 8 (H100): a pointwise layer is out[n, f, p] = act(sum_c w[f, c] * x[n, c, p] + b[f]) (+ res), a
// batched product of a small weight matrix and a tall-skinny activation. On a 132-SM GPU at batch 1 the
// shared-memory tiled kernel above launches a handful of workgroups for the 7x7 and 14x14 layers (each walking
// all C channels serially) and is bound by shared-memory traffic at large batch. Two kernels replace it:
//   vec4     each thread owns RF filters x 4 consecutive positions: one 16-byte load of x per channel feeds
//            4*RF FMAs; weights are read at addresses uniform across the workgroup (broadcast, L1-cached).
//            Needs P % 4 == 0 and enough threads to fill the GPU.
//   split-K  for little output (late layers, squeeze-excite, classifier GEMV): KS threads share one output,
//            each summing every KS-th channel, then a tree reduction in workgroup memory; enough workgroups
//            for the GPU even when N*F*P is a few thousand.
// chooseDot picks between them from the shape only (deterministic; the cache key names the choice).

export interface DotGeom {
  N: number; C: number; F: number; P: number; hasBias: boolean; hasRes: boolean;
  /** x[n, c, :] is multiplied by sc[n * C + c] as it is read (squeeze-excite folded in; conv-common.ts). */
  hasScale?: boolean;
  act: Epilogue;
}

/** Threads in flight that keep an H100-class GPU busy (132 SMs x ~512); fewer than 1/4 of it: split K. */
const fillThreads = 65536;
const splitKThreads = 256;

export type DotChoice = { kind: 'vec4'; rf: number; threads: number } | { kind: 'splitK'; ks: number };

export function chooseDot(g: DotGeom, limits: KernelLimits): DotChoice {
  const cap = threadCap(limits);
  const P4 = g.P / 4;
  if (g.P % 4 === 0) {
    for (const rf of [8, 4, 2, 1]) {
      if (g.F % rf !== 0) continue;
      const threads = g.N * (g.F / rf) * P4;
      if (threads >= fillThreads / 2 || (rf === 1 && threads >= fillThreads / 4)) {
        let t = 32;
        while (t < P4 && t < Math.min(128, cap)) t *= 2;
        return { kind: 'vec4', rf, threads: t };
      }
    }
  }
  // Split K so that about 4 workgroups of 256 threads land on each of ~132 SMs (half of what an SM holds: a
  // thread's loads are its only latency hiding), each thread summing >= 8 channels.
  const outputs = g.N * g.F * g.P;
  let ks = 1;
  while (ks < 64 && ks * 2 <= splitKThreads && outputs * ks < 528 * splitKThreads && g.C / (ks * 2) >= 8) ks *= 2;
  return { kind: 'splitK', ks };
}

function dotStore(g: DotGeom, v: string, o: string, f: string, vec: boolean): string {
  const biased = g.hasBias ? `${v} + ${vec ? `vec4<f32>(b[${f}])` : `b[${f}]`}` : v;
  const act = vec ? `vec4<f32>(act(y.x), act(y.y), act(y.z), act(y.w))` : 'act(y)';
  return `let y = ${biased};\n    out[${o}] = ${act}${g.hasRes ? ` + res[${o}]` : ''};`;
}

function dotBindings(names: string[], vec: boolean): string {
  const vecOf = new Set(vec ? ['x', 'res', 'out'] : []);
  const t = (n: string) => (vecOf.has(n) ? 'array<vec4<f32>>' : 'array<f32>');
  const lines = names.map((n, k) => `@group(0) @binding(${k}) var<storage, read> ${n}: ${t(n)};`);
  lines.push(`@group(0) @binding(${names.length}) var<storage, read_write> out: ${t('out')};`);
  return lines.join('\n');
}

/** vec4 kernel: `names` are the bindings (x, w, b?, res?) in order, `inputs` their node input indices. */
export function dotVec4(g: DotGeom, rf: number, T: number, names: string[], inputs: number[], limits: KernelLimits, w: string, label: string, keyPrefix: string): KernelProgram {
  const P4 = g.P / 4, FBLK = g.F / rf, PB = ceilDiv(P4, T);
  const total = g.N * FBLK * PB;
  const d = layoutWorkgroups(total, limits, w);
  // RF >= 4: the weights of CK channels are staged in workgroup memory as vec4 (4 filters each), so a thread
  // issues one 16-byte x load and RF/4 broadcast loads per channel for 4*RF FMAs.
  const staged = rf >= 4;
  const CK = Math.min(g.C, 32), RF4 = rf / 4;
  const wgsl = staged ? `
${dotBindings(names, true)}
${constsU32({ C: g.C, F: g.F, P4, RF: rf, RF4, CK, PB, FBLK, TOTAL: total, DISPATCH_X: d.dispatchX })}
${g.act.fn}
var<workgroup> wsT: array<vec4<f32>, ${CK * RF4}>;

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let g = wid.x + wid.y * DISPATCH_X;
  // Uniform per workgroup: returning here cannot split a barrier.
  if (g >= TOTAL) { return; }
  let p4 = (g % PB) * ${T}u + li;
  let pl = min(p4, P4 - 1u);
  let f0 = ((g / PB) % FBLK) * RF;
  let n = g / (PB * FBLK);
  var acc: array<vec4<f32>, RF>;
  for (var c0 = 0u; c0 < C; c0 += CK) {
    for (var e = li; e < CK * RF4; e += ${T}u) {
      let c = min(c0 + e / RF4, C - 1u);
      let fq = f0 + (e % RF4) * 4u;
      var v = vec4<f32>(w[fq * C + c], w[(fq + 1u) * C + c], w[(fq + 2u) * C + c], w[(fq + 3u) * C + c]);
      if (c0 + e / RF4 >= C) { v = vec4<f32>(0.0); }
      wsT[e] = v;
    }
    workgroupBarrier();
    var xi = (n * C + c0) * P4 + pl;
    for (var cl = 0u; cl < CK; cl++) {
      let xv = x[min(xi, (n * C + C - 1u) * P4 + pl)]${g.hasScale ? ' * sc[n * C + min(c0 + cl, C - 1u)]' : ''};
      xi += P4;
      for (var r4 = 0u; r4 < RF4; r4++) {
        let wv = wsT[cl * RF4 + r4];
        acc[4u * r4] += wv.x * xv;
        acc[4u * r4 + 1u] += wv.y * xv;
        acc[4u * r4 + 2u] += wv.z * xv;
        acc[4u * r4 + 3u] += wv.w * xv;
      }
    }
    workgroupBarrier();
  }
  if (p4 >= P4) { return; }
  for (var r = 0u; r < RF; r++) {
    let f = f0 + r;
    let o = (n * F + f) * P4 + p4;
    let v = acc[r];
    ${dotStore(g, 'v', 'o', 'f', true)}
  }
}
` : `
${dotBindings(names, true)}
${constsU32({ C: g.C, F: g.F, P4, RF: rf, PB, FBLK, TOTAL: total, DISPATCH_X: d.dispatchX })}
${g.act.fn}

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let g = wid.x + wid.y * DISPATCH_X;
  if (g >= TOTAL) { return; }
  let p4 = (g % PB) * ${T}u + li;
  if (p4 >= P4) { return; }
  let f0 = ((g / PB) % FBLK) * RF;
  let n = g / (PB * FBLK);
  var acc: array<vec4<f32>, RF>;
  var xi = n * C * P4 + p4;
  for (var c = 0u; c < C; c++) {
    let xv = x[xi]${g.hasScale ? ' * sc[n * C + c]' : ''};
    xi += P4;
    for (var r = 0u; r < RF; r++) { acc[r] += w[(f0 + r) * C + c] * xv; }
  }
  for (var r = 0u; r < RF; r++) {
    let f = f0 + r;
    let o = (n * F + f) * P4 + p4;
    let v = acc[r];
    ${dotStore(g, 'v', 'o', 'f', true)}
  }
}
`;
  return {
    name: label,
    cacheKey: cacheKey(`${keyPrefix}-vec4`, g.N, g.C, g.F, g.P, +g.hasBias, +g.hasRes, +!!g.hasScale, g.act.key, `RF${rf}T${T}`, staged ? `CK${CK}` : 'global', `dx${d.dispatchX}`),
    wgsl, workgroupSize: [T, 1, 1], dispatch: d.dispatch, inputs, outputs: 1, uniforms: [], workgroupStorageBytes: staged ? 16 * CK * RF4 : 0,
  };
}

/** Split-K kernel; positions-major thread layout when P is large enough to coalesce x, channel-major otherwise. */
export function dotSplitK(g: DotGeom, ks: number, names: string[], inputs: number[], limits: KernelLimits, w: string, label: string, keyPrefix: string): KernelProgram {
  const T = splitKThreads, OT = T / ks;
  const outputs = g.N * g.F * g.P;
  const total = ceilDiv(outputs, OT);
  const d = layoutWorkgroups(total, limits, w);
  // Positions-major: consecutive threads read consecutive positions of one channel. Channel-major (P small, e.g.
  // 1x1 squeeze-excite maps and GEMV): consecutive threads read consecutive channels of x and of a weight row.
  const posMajor = g.P >= 16 || ks === 1;
  const wgsl = `
${dotBindings(names, false)}
${constsU32({ C: g.C, F: g.F, P: g.P, KS: ks, OT, OUTPUTS: outputs, TOTAL: total, DISPATCH_X: d.dispatchX })}
${g.act.fn}
${ks > 1 ? `var<workgroup> part: array<f32, ${T}>;` : ''}

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let g = wid.x + wid.y * DISPATCH_X;
  ${ks === 1 ? 'if (g >= TOTAL) { return; }' : '// No early return: every thread reaches the barriers.'}
  let ol = ${posMajor ? 'li % OT' : 'li / KS'};
  let ks = ${posMajor ? 'li / OT' : 'li % KS'};
  let o = g * OT + ol;
  let p = o % P;
  let f = (o / P) % F;
  let n = o / (P * F);
  var s = 0.0;
  if (o < OUTPUTS) {
    let xb = n * C * P + p;
    let wb = f * C;
    // Four independent partial sums: four loads of each in flight instead of one (the loop is latency-bound).
    var s4 = vec4<f32>(0.0);
    var c = ks;
    for (; c + 3u * KS < C; c += 4u * KS) {
      s4 += vec4<f32>(w[wb + c], w[wb + c + KS], w[wb + c + 2u * KS], w[wb + c + 3u * KS])
        * vec4<f32>(x[xb + c * P], x[xb + (c + KS) * P], x[xb + (c + 2u * KS) * P], x[xb + (c + 3u * KS) * P])${g.hasScale ? `
        * vec4<f32>(sc[n * C + c], sc[n * C + c + KS], sc[n * C + c + 2u * KS], sc[n * C + c + 3u * KS])` : ''};
    }
    for (; c < C; c += KS) { s4.x += w[wb + c] * x[xb + c * P]${g.hasScale ? ' * sc[n * C + c]' : ''}; }
    s = (s4.x + s4.y) + (s4.z + s4.w);
  }
${ks === 1 ? '' : `  part[li] = s;
  workgroupBarrier();
  for (var h = KS / 2u; h > 0u; h /= 2u) {
    if (ks < h) { part[li] += part[li + h${posMajor ? ' * OT' : ''}]; }
    workgroupBarrier();
  }
  s = part[li];`}
  if (${ks === 1 ? '' : 'ks == 0u && '}o < OUTPUTS) {
    ${dotStore(g, 's', 'o', 'f', false)}
  }
}
`;
  return {
    name: label,
    cacheKey: cacheKey(`${keyPrefix}-splitk`, g.N, g.C, g.F, g.P, +g.hasBias, +g.hasRes, +!!g.hasScale, g.act.key, `KS${ks}`, +posMajor, `dx${d.dispatchX}`),
    wgsl, workgroupSize: [T, 1, 1], dispatch: d.dispatch, inputs, outputs: 1, uniforms: [], workgroupStorageBytes: ks > 1 ? 4 * T : 0,
  };
}
