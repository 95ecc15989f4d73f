// Pointwise convolution with f16 tensors on subgroup matrices (WGSL `chromium_experimental_subgroup_matrix`, the
// tensor cores on NVIDIA): out[n, f, p] = act(sum_c w[f, c] x[n, c, p] + b[f]) (+ res), f16 operands, f32
// accumulation, f16 result. The layout is the f16 pointwise's (kernels/pointwise.ts through kernels/f16.ts): NCHW,
// positions of all images flattened (M = N * P), so a tile may span images at small maps.
//
// A workgroup owns BF filters x BP positions: SGF x SGP subgroups, each TM x TN blocks of 16 x 16 results. Per step
// of BK channels the threads stage w (BF x BK, row-major) and x (BK x BP, row-major) in workgroup memory, with zeros
// past F, C and M (edges of any size are padded there, so no shape is refused for being ragged); the next step's global
// loads are issued before this step's multiply-accumulates. The results go through workgroup memory (f32) to the
// epilogue, which every thread applies to its share of the tile: bias, activation, residual (and the activation after
// it, where the node has one), rounding to f16.
//
// Only the f16 -> f32 16x16x16 configuration is used (what an NVIDIA adapter offers under Dawn's
// allow_unsafe_apis; src/runtime/device.ts subgroupMatrixSupport). The WGSL assumes the device's subgroup size is
// fixed (subgroupMinSize == subgroupMaxSize): the workgroup has exactly SGF * SGP subgroups.

import type { KernelLimits, KernelProgram } from './program.js';
import type { DotGeom } from './pointwise.js';
import { invalid, overLimit } from '../src/errors.js';
import { cacheKey, ceilDiv, constsU32, layoutWorkgroups, plusResidual, threadCap } from './shader.js';

/** What a device offers for these kernels: f16 x f16 -> f32 16x16x16 subgroup matrices, at one subgroup size. */
export interface SubgroupMatrixSupport {
  subgroupSize: number;
}

/**
 * Tiles: SGF x SGP subgroups, each TM x TN blocks of 16 x 16 (BF = 16 TM SGF filters, BP = 16 TN SGP positions),
 * BK channels per staging step (a multiple of 16).
 */
export interface SmxTiles { sgf: number; sgp: number; tm: number; tn: number; bk: number }

export const smxTileKey = (t: SmxTiles) => `SG${t.sgf}x${t.sgp}T${t.tm}x${t.tn}BK${t.bk}`;

/** Bytes of workgroup memory: x and w tiles (f16) and the result tile (f32). */
export const smxStorage = (t: SmxTiles) => {
  const BF = 16 * t.tm * t.sgf, BP = 16 * t.tn * t.sgp;
  return 2 * t.bk * BP + 2 * BF * t.bk + 4 * BF * BP;
};

/** The tile variants the chooser picks among, largest first (bench/subgroup-matrix.ts times them all). */
export const smxTileVariants: readonly SmxTiles[] = [
  { sgf: 2, sgp: 2, tm: 2, tn: 2, bk: 32 }, // 64 x 64
  { sgf: 2, sgp: 2, tm: 1, tn: 2, bk: 32 }, // 32 x 64
  { sgf: 2, sgp: 2, tm: 1, tn: 1, bk: 32 }, // 32 x 32
  { sgf: 1, sgp: 4, tm: 1, tn: 1, bk: 32 }, // 16 x 64: layers of <= 16 filters
];

/** Workgroups of a layer with these tiles. */
export const smxTileCount = (g: Pick<DotGeom, 'N' | 'P' | 'F'>, t: SmxTiles) => ceilDiv(g.F, 16 * t.tm * t.sgf) * ceilDiv(g.N * g.P, 16 * t.tn * t.sgp);

/** Whether the tiles fit the device: threads per workgroup and workgroup memory. */
export function smxFits(t: SmxTiles, subgroupSize: number, limits: KernelLimits): boolean {
  return t.sgf * t.sgp * subgroupSize <= threadCap(limits) && smxStorage(t) <= limits.maxComputeWorkgroupStorageSize;
}

/**
 * Below this many workgroups the kernel, which does not split the channel loop, leaves most of an H100's 132 SMs idle:
 * with long channel loops (C > 256) the present f16 kernels (split-K) are faster there.
 */
export const smxMinWorkgroups = 66;

/**
 * The tiles for a layer, or undefined where the present f16 kernel should run it. From bench/subgroup-matrix.ts on
 * the H100 (MobileNetV2, batch 1 and 32, 2026-12-06): 32 x 32 tiles were the fastest variant or within 10% of it on
 * most layers (1.2-1.7x faster than the present f16 kernel on the 14x14 and 7x7 layers at batch 32); 16 x 64 on
 * layers of 16 filters; 64 x 64 only on wide layers (F >= 320, C >= 64) with 100+ such tiles (7x7 960 -> 320 at
 * batch 32: 144 us, 32 x 32 164, present 234), and 2-5x slower than 32 x 32 on early layers. Left to the present
 * kernels: fewer than smxMinWorkgroups tiles with C > 256 (7x7 960 -> 160 at batch 1: 103 us, present 41), layers
 * of fewer than 32 channels but more than 16 filters (memory-bound: 56x56 24 -> 144 at batch 32 took 170-190 us, the
 * present kernel 93-104; 112x112 16 -> 96 lost in 3 of 4 measurements) and layers of fewer than 16 positions in all.
 */
export function chooseSmxTiles(g: Pick<DotGeom, 'N' | 'P' | 'F' | 'C'>, support: SubgroupMatrixSupport, limits: KernelLimits): SmxTiles | undefined {
  const [big, , small, narrow] = smxTileVariants;
  const fits = (t: SmxTiles) => smxFits(t, support.subgroupSize, limits);
  if (g.N * g.P < 16) return undefined;
  if (g.F <= 16 && fits(narrow)) return narrow;
  if (g.C < 32) return undefined;
  if (!fits(small)) return undefined;
  if (smxTileCount(g, small) < smxMinWorkgroups && g.C > 256) return undefined;
  if (g.C >= 64 && g.F >= 320 && fits(big) && smxTileCount(g, big) >= 100) return big;
  return small;
}

/**
 * The subgroup-matrix pointwise program (f16 storage; `names`: the bindings x, w, b?, res?, sc? in order, `inputs`
 * their node input indices, as kernels/pointwise.ts dotProgram takes them). `emulate`: the same program with each
 * matrix load, multiply-accumulate and store done in plain WGSL at the same offsets and strides, so that a device
 * without subgroup matrices (the tests' lavapipe) checks everything else: staging, edges, epilogue, tile indexing.
 */
export function pointwiseSubgroupMatrix(g: DotGeom, t: SmxTiles, support: SubgroupMatrixSupport, names: string[], inputs: number[], limits: KernelLimits, w: string, label = 'Conv(pw smx)', emulate = false): KernelProgram {
  const S = support.subgroupSize;
  for (const [k, v] of Object.entries(t)) if (!Number.isInteger(v) || v < 1) throw invalid(w, `subgroup-matrix tile ${k} must be a positive integer, got ${v}`);
  if (t.bk % 16 !== 0) throw invalid(w, `subgroup-matrix tiles need a multiple of 16 channels per step, got ${t.bk}`);
  if (!Number.isInteger(S) || S < 1) throw invalid(w, `subgroup size must be a positive integer, got ${S}`);
  const NSG = t.sgf * t.sgp, T = NSG * S;
  if (T > threadCap(limits)) throw overLimit(w, `subgroup-matrix tiles need ${T} threads per workgroup, the device allows ${threadCap(limits)}`);
  const bytes = smxStorage(t) + (emulate ? 4 * NSG * t.tm * t.tn * 256 : 0);
  if (bytes > limits.maxComputeWorkgroupStorageSize) {
    throw overLimit(w, `subgroup-matrix tiles need ${bytes} bytes of workgroup storage, the device allows ${limits.maxComputeWorkgroupStorageSize}`);
  }
  const BK = t.bk, BF = 16 * t.tm * t.sgf, BP = 16 * t.tn * t.sgp;
  const M = g.N * g.P, FT = ceilDiv(g.F, BF), total = FT * ceilDiv(M, BP);
  const d = layoutWorkgroups(total, limits, w);
  // P % 4 == 0: 4 consecutive positions of a tile lie in one image and one aligned vec4 of x, res and out.
  const vec = g.P % 4 === 0;
  // C % 4 == 0: 4 consecutive channels of a filter are one aligned vec4 of w.
  const wVec = g.C % 4 === 0;
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const and = (...c: string[]) => c.filter((s) => s).join(' && ') || 'true';
  const needM = M % BP !== 0, needF = g.F % BF !== 0, needC = g.C % BK !== 0;
  const scale = (n: string, c: string) => (g.hasScale ? ` * f32(sc[${n} * C + ${c}])` : '');

  // Staged loads per thread and step: x as XN items (vec4 of 4 positions, or single positions), w as WN items.
  const XN = vec ? BK * BP / 4 : BK * BP, WN = wVec ? BF * BK / 4 : BF * BK;
  const XL = ceilDiv(XN, T), WL = ceilDiv(WN, T);
  const xPer = vec ? BP / 4 : BP, wPer = wVec ? BK / 4 : BK;
  const prologue: string[] = [];
  for (const i of range(XL)) {
    prologue.push(`  let xe${i} = li + ${i * T}u;`);
    prologue.push(`  let xk${i} = xe${i} / ${xPer}u;`);
    prologue.push(`  let xp${i} = ${vec ? '4u * ' : ''}(xe${i} % ${xPer}u);`);
    prologue.push(`  let xm${i} = m0 + xp${i};`);
    prologue.push(`  let xn${i} = min(xm${i}, M - 1u) / P;`);
    prologue.push(`  let xo${i} = ${and((i + 1) * T > XN ? `xe${i} < ${XN}u` : '', needM ? `xm${i} < M` : '')};`);
    // Element index of x[n, 0, p] (vec: in vec4s).
    prologue.push(`  let xb${i} = ${vec ? `(xn${i} * C * P + xm${i} - xn${i} * P) / 4u` : `xn${i} * C * P + xm${i} - xn${i} * P`};`);
  }
  for (const i of range(WL)) {
    prologue.push(`  let we${i} = li + ${i * T}u;`);
    prologue.push(`  let wf${i} = we${i} / ${wPer}u;`);
    prologue.push(`  let wk${i} = ${wVec ? '4u * ' : ''}(we${i} % ${wPer}u);`);
    prologue.push(`  let wo${i} = ${and((i + 1) * T > WN ? `we${i} < ${WN}u` : '', needF ? `f0 + wf${i} < F` : '')};`);
    prologue.push(`  let wb${i} = (f0 + wf${i}) * C + wk${i};`);
  }
  const xT = vec ? 'vec4<f16>' : 'f16', wT = wVec ? 'vec4<f16>' : 'f16';
  // Loads of the step starting at channel `c`.
  const load = (c: string) => {
    const out: string[] = [];
    for (const i of range(XL)) {
      const ok = and(`xo${i}`, needC ? `${c} + xk${i} < C` : '');
      const v = vec ? `x[xb${i} + (${c} + xk${i}) * P4]` : `x[xb${i} + (${c} + xk${i}) * P]`;
      const sv = g.hasScale ? `${xT}(${vec ? 'vec4<f32>' : 'f32'}(${v})${scale(`xn${i}`, `${c} + xk${i}`)})` : v;
      out.push(`    xr${i} = ${xT}(0.0);`);
      out.push(`    if (${ok}) { xr${i} = ${sv}; }`);
    }
    for (const i of range(WL)) {
      const ok = and(`wo${i}`, needC ? `${c} + wk${i} < C` : '');
      out.push(`    wr${i} = ${wT}(0.0);`);
      out.push(`    if (${ok}) { wr${i} = ${wVec ? `w[(wb${i} + ${c}) / 4u]` : `w[wb${i} + ${c}]`}; }`);
    }
    return out.join('\n');
  };
  // Registers to workgroup memory: xs[k * BP + p], ws[f * BK + k] (row-major, as the matrix loads read them).
  const stage = () => {
    const out: string[] = [];
    for (const i of range(XL)) {
      const s = vec ? range(4).map((q) => `xs[xk${i} * BP + xp${i} + ${q}u] = xr${i}[${q}];`).join(' ') : `xs[xk${i} * BP + xp${i}] = xr${i};`;
      out.push((i + 1) * T > XN ? `    if (xe${i} < ${XN}u) { ${s} }` : `    ${s}`);
    }
    for (const i of range(WL)) {
      const s = wVec ? range(4).map((q) => `ws[wf${i} * BK + wk${i} + ${q}u] = wr${i}[${q}];`).join(' ') : `ws[wf${i} * BK + wk${i}] = wr${i};`;
      out.push((i + 1) * T > WN ? `    if (we${i} < ${WN}u) { ${s} }` : `    ${s}`);
    }
    return out.join('\n');
  };
  // The matrix operations, on subgroup matrices or (emulate) in plain WGSL with the same offsets and strides.
  const aOff = (i: number, kk: number) => `(sf + ${16 * i}u) * BK + ${16 * kk}u`;
  const bOff = (j: number, kk: number) => `${16 * kk}u * BP + sp + ${16 * j}u`;
  const rOff = (i: number, j: number) => `(sf + ${16 * i}u) * BP + sp + ${16 * j}u`;
  const accBase = (i: number, j: number) => `(sg * ${t.tm * t.tn}u + ${i * t.tn + j}u) * 256u`;
  const L = 'subgroup_matrix_left<f16, 16, 16>', R = 'subgroup_matrix_right<f16, 16, 16>';
  const mma: string[] = [];
  for (const kk of range(BK / 16)) {
    mma.push('    {');
    if (emulate) {
      for (const i of range(t.tm)) for (const j of range(t.tn)) mma.push(`      emuMma(${accBase(i, j)}, ${aOff(i, kk)}, ${bOff(j, kk)});`);
    } else {
      for (const i of range(t.tm)) mma.push(`      let a${i} = subgroupMatrixLoad<${L}, row_major>(&ws, ${aOff(i, kk)}, BK);`);
      for (const j of range(t.tn)) mma.push(`      let b${j} = subgroupMatrixLoad<${R}, row_major>(&xs, ${bOff(j, kk)}, BP);`);
      for (const i of range(t.tm)) for (const j of range(t.tn)) mma.push(`      acc${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, acc${i}_${j});`);
    }
    mma.push('    }');
  }
  const accs = range(t.tm).flatMap((i) => range(t.tn).map((j) => [i, j] as const));
  const bias = (f: string) => (g.hasBias ? ` + f32(b[${f}])` : '');
  // Epilogue: EL items per thread over the BF x BP tile (vec: 4 positions each).
  const EN = vec ? BF * BP / 4 : BF * BP, EL = ceilDiv(EN, T), ePer = vec ? BP / 4 : BP;
  const epilogue = vec ? `
    let r = fl * BP + pl;
    let y = vec4<f32>(rs[r], rs[r + 1u], rs[r + 2u], rs[r + 3u])${g.hasBias ? ` + vec4<f32>(f32(b[f]))` : ''};
    let n = m / P;
    let o = ((n * F + f) * P + m - n * P) / 4u;
    let v = ${g.hasRes ? plusResidual(g.act, 'vec4<f32>(act(y.x), act(y.y), act(y.z), act(y.w))', 'vec4<f32>(res[o])', true) : 'vec4<f32>(act(y.x), act(y.y), act(y.z), act(y.w))'};
    out[o] = vec4<f16>(v);` : `
    let y = rs[fl * BP + pl]${bias('f')};
    let n = m / P;
    let o = (n * F + f) * P + m - n * P;
    out[o] = f16(${g.hasRes ? plusResidual(g.act, 'act(y)', 'f32(res[o])') : 'act(y)'});`;
  const vecOf = new Set([...(vec ? ['x', 'res', 'out'] : []), ...(wVec ? ['w'] : [])]);
  const decl = (n: string, k: number, access: string) => `@group(0) @binding(${k}) var<storage, ${access}> ${n}: array<${vecOf.has(n) ? 'vec4<f16>' : 'f16'}>;`;
  // Emulation: each subgroup's accumulators in workgroup memory, lane l of a subgroup owning elements l, l + S, ...
  // of each of its 16 x 16 blocks (no lane reads another's), the products from the same staged tiles.
  const emuFns = `
var<workgroup> eacc: array<f32, ${NSG * t.tm * t.tn * 256}>;

fn emuMma(acc: u32, a: u32, b: u32) {
  for (var e = lane; e < 256u; e += ${S}u) {
    let r = e / 16u;
    let c = e % 16u;
    var s = eacc[acc + e];
    for (var k = 0u; k < 16u; k++) { s += f32(ws[a + r * BK + k]) * f32(xs[b + k * BP + c]); }
    eacc[acc + e] = s;
  }
}

fn emuStore(acc: u32, o: u32) {
  for (var e = lane; e < 256u; e += ${S}u) { rs[o + (e / 16u) * BP + e % 16u] = eacc[acc + e]; }
}`;
  const wgsl = `enable f16;
${emulate ? '' : 'enable subgroups;\nenable chromium_experimental_subgroup_matrix;\n'}${names.map((n, k) => decl(n, k, 'read')).join('\n')}
${decl('out', names.length, 'read_write')}
${constsU32({ C: g.C, F: g.F, P: g.P, ...(vec ? { P4: g.P / 4 } : {}), M, BF, BP, BK, FT, TOTAL: total, DISPATCH_X: d.dispatchX })}
${g.act.fn}
// xs[k * BP + p]: channel k, position p of the step's x tile; ws[f * BK + k]: filter f, channel k of its w tile;
// rs[f * BP + p]: the tile's sums.
var<workgroup> xs: array<f16, ${BK * BP}>;
var<workgroup> ws: array<f16, ${BF * BK}>;
var<workgroup> rs: array<f32, ${BF * BP}>;
${emulate ? `var<private> lane: u32;\n${emuFns}` : ''}

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32${emulate ? '' : ', @builtin(subgroup_id) sg: u32'}) {
  let g = wid.x + wid.y * DISPATCH_X;
  // Uniform per workgroup: returning here splits no barrier and no subgroup matrix operation.
  if (g >= TOTAL) { return; }
  let f0 = (g % FT) * BF;
  let m0 = (g / FT) * BP;${emulate ? `
  let sg = li / ${S}u;
  lane = li % ${S}u;` : ''}
  // This subgroup's blocks: filters sf.., positions sp.. of the tile.
  let sf = (sg / ${t.sgp}u) * ${16 * t.tm}u;
  let sp = (sg % ${t.sgp}u) * ${16 * t.tn}u;
${prologue.join('\n')}
${range(XL).map((i) => `  var xr${i} = ${xT}(0.0);`).join('\n')}
${range(WL).map((i) => `  var wr${i} = ${wT}(0.0);`).join('\n')}
  {
${load('0u')}
  }
${emulate
    ? `  for (var e = li; e < ${NSG * t.tm * t.tn * 256}u; e += ${T}u) { eacc[e] = 0.0; }`
    : accs.map(([i, j]) => `  var acc${i}_${j} = subgroup_matrix_result<f32, 16, 16>();`).join('\n')}
  for (var c0 = 0u; c0 < C; c0 += BK) {
${stage()}
    workgroupBarrier();
    // The next step's loads go out before this step's products (c0 is uniform).
    if (c0 + BK < C) {
      let c1 = c0 + BK;
${load('c1')}
    }
${mma.join('\n')}
    workgroupBarrier();
  }
${accs.map(([i, j]) => (emulate ? `  emuStore(${accBase(i, j)}, ${rOff(i, j)});` : `  subgroupMatrixStore<row_major>(&rs, ${rOff(i, j)}, acc${i}_${j}, BP);`)).join('\n')}
  workgroupBarrier();
  for (var i = 0u; i < ${EL}u; i++) {
    let e = li + i * ${T}u;
    ${EL * T > EN ? `if (e >= ${EN}u) { break; }` : ''}
    let fl = e / ${ePer}u;
    let pl = ${vec ? '4u * ' : ''}(e % ${ePer}u);
    let f = f0 + fl;
    let m = m0 + pl;
    if (${and(needF ? 'f < F' : '', needM ? 'm < M' : '')}) {${epilogue}
    }
  }
}
`;
  return {
    name: label,
    cacheKey: cacheKey(emulate ? 'pointwise-smx-emulated' : 'pointwise-smx', g.N, g.C, g.F, g.P, +g.hasBias, +g.hasRes, +!!g.hasScale, g.act.key, smxTileKey(t), `S${S}`, `dx${d.dispatchX}`),
    wgsl, workgroupSize: [T, 1, 1], dispatch: d.dispatch, inputs, outputs: 1, workgroupStorageBytes: bytes,
  };
}
