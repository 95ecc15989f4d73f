// Integer pointwise convolution on subgroup matrices (WGSL `chromium_experimental_subgroup_matrix` with 8-bit
// components: the integer tensor cores on NVIDIA): out[n, f, p] = requant(sum_c (w[f, c] - zw) (x[n, c, p] - zx) +
// bias[f]), bit-exact with the word kernel (pointwise.ts) and TFLite. The tensor cores take the raw bytes (i8 x i8 ->
// i32 for int8 models, u8 x u8 -> u32 for uint8) at M16 x N16 (or N8) x K32 and sum exactly (wrapping 32-bit, as the
// dot4 kernels); the zero points are folded as gemmlowp does: the input zero point's term zx sum_c w[f, c] (and C zx
// zw) into the bias on the host (pointwise.ts foldBias), and for uint8 weights with a zero point the term zw sum_c
// x[n, c, p], the column sums of the x tile, taken on the same tensor cores as a product with a matrix of ones. The
// requantization is the word kernel's (fixedPointWgsl, per-filter multiplier and shift, output zero point, clamp), as
// is the folded residual Add.
//
// The structure is the f16 kernel's (kernels/pointwise-subgroup-matrix.ts): NCHW, positions of all images flattened
// (M = N * P); a workgroup owns BF filters x BP positions, SGF x SGP subgroups each TM x TN blocks of 16 x NB results;
// per step of BK channels (a multiple of 32) the threads stage w (BF x BK bytes, row-major) and x (BK x BP bytes,
// row-major) in workgroup memory as words of 4 bytes, with zeros past C and M, and issue the next step's loads before
// this step's multiply-accumulates. Weights are packed on the host in rows of whole steps and whole tiles of filters
// (zero-padded), so weight loads need no guard. The results go through workgroup memory (i32) to the epilogue. Rows of
// whole words (P % 4 == 0): x staged and outputs stored as whole words; others: x gathered byte by byte and outputs
// stored as atomic bytes. Workgroups are a multiple of the subgroup size, which must be fixed on the device.

import { invalid, overLimit, unsupported } from '../../src/errors.js';
import { geomKey, isPointwise } from '../conv-common.js';
import { cacheKey, ceilDiv, constsI32, constsU32, layoutWorkgroups, threadCap, where } from '../shader.js';
import type { KernelLimits } from '../program.js';
import { type Int8KernelArgs, type Int8Program, type Int8SmxSupport, type QType, atomicByteStore, fixedPointWgsl, int8Bindings, residualAddWgsl } from './common.js';
import { channelParams, convQuant } from './conv-common.js';
import { foldBias } from './pointwise.js';

/** Dawn's feature for WGSL `chromium_experimental_subgroup_matrix` (offered under allow_unsafe_apis). */
const smxFeature = 'chromium-experimental-subgroup-matrix';

/** One entry of Dawn's adapter info `subgroupMatrixConfigs`. */
interface ConfigLike { componentType: string; resultComponentType: string; M: number; N: number; K: number }

export type { Int8SmxSupport };

/**
 * The integer subgroup matrices a device offers, from its features and adapter info (Dawn's subgroupMatrixConfigs,
 * subgroupMinSize / subgroupMaxSize); undefined where it has none this kernel can use (lavapipe, most GPUs).
 */
export function int8SubgroupMatrixSupport(features: { has(f: string): boolean }, info: { subgroupMatrixConfigs?: readonly ConfigLike[]; subgroupMinSize?: number; subgroupMaxSize?: number }): Int8SmxSupport | undefined {
  if (![smxFeature, 'subgroups'].every((f) => features.has(f))) return undefined;
  const s = info.subgroupMinSize;
  if (typeof s !== 'number' || !Number.isInteger(s) || s < 1 || s !== info.subgroupMaxSize) return undefined;
  const configs = Array.isArray(info.subgroupMatrixConfigs) ? info.subgroupMatrixConfigs : [];
  const n: Partial<Record<QType, 16 | 8>> = {};
  for (const [t, comp, result] of [['int8', 'i8', 'i32'], ['uint8', 'u8', 'u32']] as const) {
    const has = (N: number) => configs.some((c) => c.componentType === comp && c.resultComponentType === result && c.M === 16 && c.N === N && c.K === 32);
    if (has(16)) n[t] = 16;
    else if (has(8)) n[t] = 8;
  }
  return n.int8 || n.uint8 ? { subgroupSize: s, n } : undefined;
}

/**
 * Tiles: SGF x SGP subgroups, each TM x TN blocks of 16 x nb (the configuration's N), BK channels per staging step (a
 * multiple of 32, the configuration's K). `pad`: rows of the staged tiles 16 bytes longer than their data (x rows of
 * BP + 16 bytes, w rows of BK + 16) and of the results 4 words longer (BP + 4), so that the matrix loads and stores do
 * not meet the same banks of workgroup memory row after row (rows of 32, 64 or 128 bytes do); the f16 kernel's tiles
 * ran 1.5-3x faster so on an H100 (kernels/pointwise-subgroup-matrix.ts SmxTiles.pad).
 */
export interface Int8SmxTiles { sgf: number; sgp: number; tm: number; tn: number; bk: number; nb: 16 | 8; pad?: boolean }

export const int8SmxTileKey = (t: Int8SmxTiles) => `SG${t.sgf}x${t.sgp}T${t.tm}x${t.tn}N${t.nb}BK${t.bk}${t.pad ? 'P' : ''}`;

/** The tile variants for blocks of 16 x nb (bench/int8-subgroup-matrix.ts times them all). */
export function int8SmxTileVariants(nb: 16 | 8): Int8SmxTiles[] {
  const s = 16 / nb; // blocks per 16 positions
  return [
    { sgf: 2, sgp: 2, tm: 2, tn: 2 * s, bk: 32, nb }, // 64 x 64
    { sgf: 2, sgp: 2, tm: 1, tn: 2 * s, bk: 32, nb }, // 32 x 64
    { sgf: 2, sgp: 2, tm: 1, tn: s, bk: 64, nb }, // 32 x 32, 64 channels per step
    { sgf: 2, sgp: 2, tm: 1, tn: s, bk: 32, nb }, // 32 x 32
    { sgf: 1, sgp: 4, tm: 1, tn: s, bk: 32, nb }, // 16 x 64: layers of <= 16 filters
    { sgf: 2, sgp: 2, tm: 1, tn: s, bk: 128, nb }, // 32 x 32, 128 channels per step (fewer barriers per MMA)
    // Padded rows (Int8SmxTiles.pad): 32 x 32 with 32, 64 and 128 channels per step, 16 x 64.
    { sgf: 2, sgp: 2, tm: 1, tn: s, bk: 32, nb, pad: true },
    { sgf: 2, sgp: 2, tm: 1, tn: s, bk: 64, nb, pad: true },
    { sgf: 2, sgp: 2, tm: 1, tn: s, bk: 128, nb, pad: true },
    { sgf: 1, sgp: 4, tm: 1, tn: s, bk: 32, nb, pad: true },
  ];
}

/** Tile dimensions, and the row lengths of the workgroup arrays: x and w in bytes (XS, WS), results in words (RS). */
const dims = (t: Int8SmxTiles) => {
  const BF = 16 * t.tm * t.sgf, BP = t.nb * t.tn * t.sgp;
  return { BF, BP, NSG: t.sgf * t.sgp, XS: BP + (t.pad ? 16 : 0), WS: t.bk + (t.pad ? 16 : 0), RS: BP + (t.pad ? 4 : 0) };
};

/** Bytes of workgroup memory: x and w tiles (bytes), the result tile (i32), with `sums` the column sums (i32). */
export function int8SmxStorage(t: Int8SmxTiles, sums: boolean, emulate = false): number {
  const { BF, NSG, XS, WS, RS } = dims(t);
  const emu = emulate ? 4 * NSG * (t.tm + (sums ? 1 : 0)) * t.tn * 16 * t.nb : 0;
  return t.bk * XS + BF * WS + 4 * BF * RS + (sums ? 4 * t.sgf * 16 * RS : 0) + emu;
}

/** Workgroups of a layer with these tiles. */
export const int8SmxTileCount = (g: { N: number; P: number; F: number }, t: Int8SmxTiles) => {
  const { BF, BP } = dims(t);
  return ceilDiv(g.F, BF) * ceilDiv(g.N * g.P, BP);
};

/** Whether the tiles fit the device: threads per workgroup and workgroup memory. */
export function int8SmxFits(t: Int8SmxTiles, subgroupSize: number, limits: KernelLimits, sums: boolean, emulate = false): boolean {
  return dims(t).NSG * subgroupSize <= threadCap(limits) && int8SmxStorage(t, sums, emulate) <= limits.maxComputeWorkgroupStorageSize;
}

/** The variants chooseInt8SmxTiles picks among (what a session's device check must cover): padded 32 x 32 tiles with 32, 64 and 128 channels a step, padded 16 x 64. */
export function int8SmxChosenVariants(nb: 16 | 8): Int8SmxTiles[] {
  const v = int8SmxTileVariants(nb);
  return [v[6], v[7], v[8], v[9]];
}

/**
 * The tiles for a layer, or undefined where the word kernel should run it. Measured on an H100
 * (bench/int8-subgroup-matrix.ts, the int8 MobileNetV2's 19 pointwise shapes at batch 32 and 1, every variant,
 * 2026-12-07): rows padded 16 bytes won on 30 of the 38 shapes (e.g. batch 32 56x56 24 -> 144: 51 us against the
 * word kernel's 200; 14x14 384 -> 96: 64 against 86 unpadded); more channels a step as C grows (14x14 384 -> 96: 128
 * a step 64 us, 64 65, 32 72; 28x28 192 -> 32: 64 a step 45, 32 54). This rule sums to 1028 us over the batch-32 shapes
 * (the unpadded 32 x 32 rule before it 1388, the word kernel 1863, the best variant per shape 981) and 499 at batch 1
 * (585, 602, 461). Left to the word kernel: fewer than 16 positions, and the 7x7 maps of one image or with 512+
 * channels (batch 32 7x7 576 -> 160: word kernel 74 us, padded 93; batch 1 7x7 960 -> 320: 45 against 83).
 */
export function chooseInt8SmxTiles(g: { N: number; P: number; F: number; C: number }, type: QType, support: Int8SmxSupport, limits: KernelLimits, sums: boolean): Int8SmxTiles | undefined {
  const nb = support.n[type];
  if (!nb) return undefined;
  const [k32, k64, k128, narrow] = int8SmxChosenVariants(nb);
  const fits = (t: Int8SmxTiles) => int8SmxFits(t, support.subgroupSize, limits, sums, support.emulate);
  const M = g.N * g.P;
  if (M < 16) return undefined;
  if (g.P <= 49 && (M <= 64 || g.C >= 512)) return undefined;
  if (g.F <= 16 && fits(narrow)) return narrow;
  const t = g.C >= 384 && fits(k128) ? k128 : g.C >= 192 && fits(k64) ? k64 : k32;
  return fits(t) ? t : undefined;
}

/**
 * The integer pointwise program on subgroup matrices. `emulate`: the same program with each matrix load,
 * multiply-accumulate and store done in plain WGSL at the same byte offsets and strides, so that a device without
 * subgroup matrices (the tests' lavapipe) checks everything else bit-exactly: staging, edges, zero points, epilogue.
 */
export function int8PointwiseSubgroupMatrix(args: Int8KernelArgs, t: Int8SmxTiles, subgroupSize: number, emulate = false): Int8Program {
  const w = where(args);
  const q = convQuant(args);
  const g = q.g;
  if (!isPointwise(g)) throw invalid(w, 'not a pointwise convolution (1x1, stride 1, no padding, group 1)');
  if (args.flippedInput || args.requantizedOutput) throw unsupported(w, 'the subgroup-matrix pointwise kernel takes neither a flipped input nor a requantized output');
  const type = q.xq.type as QType;
  const S = subgroupSize;
  for (const [k, v] of Object.entries(t)) if (k !== 'pad' && (!Number.isInteger(v) || v < 1)) throw invalid(w, `subgroup-matrix tile ${k} must be a positive integer, got ${v}`);
  if (t.bk % 32 !== 0) throw invalid(w, `integer subgroup-matrix tiles need a multiple of 32 channels per step, got ${t.bk}`);
  if (t.nb !== 16 && t.nb !== 8) throw invalid(w, `integer subgroup-matrix blocks are 16 x 16 or 16 x 8, got 16 x ${t.nb}`);
  if (!Number.isInteger(S) || S < 1) throw invalid(w, `subgroup size must be a positive integer, got ${S}`);
  const { BF, BP, NSG, XS, WS, RS } = dims(t);
  const T = NSG * S;
  if (T > threadCap(args.limits)) throw overLimit(w, `subgroup-matrix tiles need ${T} threads per workgroup, the device allows ${threadCap(args.limits)}`);
  const hasWzp = q.wZeroPoint !== 0;
  const bytes = int8SmxStorage(t, hasWzp, emulate);
  if (bytes > args.limits.maxComputeWorkgroupStorageSize) {
    throw overLimit(w, `subgroup-matrix tiles need ${bytes} bytes of workgroup storage, the device allows ${args.limits.maxComputeWorkgroupStorageSize}`);
  }
  const BK = t.bk, NB = t.nb;
  const P = g.H * g.W, M = g.N * P, FT = ceilDiv(g.F, BF), total = FT * ceilDiv(M, BP);
  const CK = ceilDiv(g.C, BK) * BK;
  const d = layoutWorkgroups(total, args.limits, w);
  const aligned = P % 4 === 0;
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const and = (...c: string[]) => c.filter((s) => s).join(' && ') || 'true';
  const needM = M % BP !== 0, needC = g.C % BK !== 0;
  // The 8-bit component, its shader scalar type (the workgroup arrays' element), and the result's.
  const comp = type === 'int8' ? 'i8' : 'u8', ST = type === 'int8' ? 'i32' : 'u32';
  const asS = (v: string) => (ST === 'i32' ? `bitcast<i32>(${v})` : v);
  const asI = (v: string) => (ST === 'i32' ? v : `bitcast<i32>(${v})`);
  const ra = residualAddWgsl(args, q.yq, Math.max(1, ceilDiv(g.N * g.F * P, 4)));

  // Staged loads per thread and step: x as XN words (4 positions of one channel), w as WN words (4 channels of one filter).
  const XN = BK * BP / 4, WN = BF * BK / 4;
  const XL = ceilDiv(XN, T), WL = ceilDiv(WN, T);
  const prologue: string[] = [];
  for (const i of range(XL)) {
    prologue.push(`  let xe${i} = li + ${i * T}u;`);
    prologue.push(`  let xk${i} = xe${i} / ${BP / 4}u;`);
    prologue.push(`  let xp${i} = 4u * (xe${i} % ${BP / 4}u);`);
    prologue.push(`  let xm${i} = m0 + xp${i};`);
    prologue.push(`  let xo${i} = ${and((i + 1) * T > XN ? `xe${i} < ${XN}u` : '', aligned && needM ? `xm${i} < M` : '')};`);
    if (aligned) {
      // Byte offset of x[n, 0, p] for the word's first position (4 positions of one image: P % 4 == 0).
      prologue.push(`  let xn${i} = min(xm${i}, M - 1u) / P;`);
      prologue.push(`  let xb${i} = xn${i} * C * P + xm${i} - xn${i} * P;`);
    }
  }
  for (const i of range(WL)) {
    prologue.push(`  let we${i} = li + ${i * T}u;`);
    prologue.push(`  let wf${i} = we${i} / ${BK / 4}u;`);
    prologue.push(`  let wk${i} = we${i} % ${BK / 4}u;`);
    prologue.push(`  let wo${i} = ${and((i + 1) * T > WN ? `we${i} < ${WN}u` : '')};`);
    prologue.push(`  let wb${i} = (f0 + wf${i}) * CK4 + wk${i};`);
  }
  // Loads of the step starting at channel `c` (a multiple of BK).
  const load = (c: string) => {
    const out: string[] = [];
    for (const i of range(XL)) {
      const ok = and(`xo${i}`, needC ? `${c} + xk${i} < C` : '');
      out.push(`    xr${i} = 0u;`);
      if (aligned) out.push(`    if (${ok}) { xr${i} = x[(xb${i} + (${c} + xk${i}) * P) >> 2u]; }`);
      else out.push(`    if (${ok}) { xr${i} = gatherX(xm${i}, ${c} + xk${i}); }`);
    }
    for (const i of range(WL)) out.push(`    wr${i} = ${WL * T > WN ? `select(0u, wp[wb${i} + ${c} / 4u], wo${i})` : `wp[wb${i} + ${c} / 4u]`};`);
    return out.join('\n');
  };
  // Registers to workgroup memory: xs holds bytes [k * XS + p], ws bytes [f * WS + k], both as words (XS = BP and
  // WS = BK unless padded).
  const xAt = (i: number) => (t.pad ? `xk${i} * ${XS / 4}u + xp${i} / 4u` : `xe${i}`);
  const wAt = (i: number) => (t.pad ? `wf${i} * ${WS / 4}u + wk${i}` : `we${i}`);
  const stage = () => {
    const out: string[] = [];
    for (const i of range(XL)) out.push((i + 1) * T > XN ? `    if (xe${i} < ${XN}u) { xs[${xAt(i)}] = ${asS(`xr${i}`)}; }` : `    xs[${xAt(i)}] = ${asS(`xr${i}`)};`);
    for (const i of range(WL)) out.push((i + 1) * T > WN ? `    if (we${i} < ${WN}u) { ws[${wAt(i)}] = ${asS(`wr${i}`)}; }` : `    ws[${wAt(i)}] = ${asS(`wr${i}`)};`);
    return out.join('\n');
  };
  // The matrix operations. Offsets and strides below are in bytes of the 8-bit tiles and in elements of the 32-bit
  // results; with the majorness as a template argument, subgroupMatrixLoad / Store count both in elements of the
  // array (Dawn's SubgroupMatrixTests: "offset in terms of ArrayType"), so the 8-bit ones are divided by 4 (every
  // one is a multiple of 4: BK, BP, 16 x BK and the block offsets are).
  const aOff = (i: number, kk: number) => `(sf + ${16 * i}u) * WS + ${32 * kk}u`;
  const bOff = (j: number, kk: number) => `${32 * kk}u * XS + sp + ${NB * j}u`;
  const rOff = (i: number, j: number) => `(sf + ${16 * i}u) * RS + sp + ${NB * j}u`;
  const sOff = (j: number) => `(sg / ${t.sgp}u) * ${16 * RS}u + sp + ${NB * j}u`;
  const blk = 16 * NB;
  const accBase = (i: number, j: number) => `(sg * ${t.tm * t.tn}u + ${i * t.tn + j}u) * ${blk}u`;
  const sumBase = (j: number) => `${NSG * t.tm * t.tn * blk}u + (sg * ${t.tn}u + ${j}u) * ${blk}u`;
  const L = `subgroup_matrix_left<${comp}, 32, 16>`, R = `subgroup_matrix_right<${comp}, ${NB}, 32>`, RT = `subgroup_matrix_result<${ST}, ${NB}, 16>`;
  const mma: string[] = [];
  for (const kk of range(BK / 32)) {
    mma.push('    {');
    if (emulate) {
      for (const i of range(t.tm)) for (const j of range(t.tn)) mma.push(`      emuMma(${accBase(i, j)}, ${aOff(i, kk)}, ${bOff(j, kk)});`);
      if (hasWzp) for (const j of range(t.tn)) mma.push(`      emuSums(${sumBase(j)}, ${bOff(j, kk)});`);
    } else {
      for (const i of range(t.tm)) mma.push(`      let a${i} = subgroupMatrixLoad<${L}, row_major>(&ws, (${aOff(i, kk)}) / 4u, WS / 4u);`);
      for (const j of range(t.tn)) mma.push(`      let b${j} = subgroupMatrixLoad<${R}, row_major>(&xs, (${bOff(j, kk)}) / 4u, XS / 4u);`);
      for (const i of range(t.tm)) for (const j of range(t.tn)) mma.push(`      acc${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, acc${i}_${j});`);
      if (hasWzp) for (const j of range(t.tn)) mma.push(`      sums${j} = subgroupMatrixMultiplyAccumulate(ones, b${j}, sums${j});`);
    }
    mma.push('    }');
  }
  const accs = range(t.tm).flatMap((i) => range(t.tn).map((j) => [i, j] as const));
  const stores = [
    ...accs.map(([i, j]) => (emulate ? `  emuStore(${accBase(i, j)}, ${rOff(i, j)}, false);` : `  subgroupMatrixStore<row_major>(&rs, ${rOff(i, j)}, acc${i}_${j}, RS);`)),
    ...(hasWzp ? range(t.tn).map((j) => (emulate ? `  emuStore(${sumBase(j)}, ${sOff(j)}, true);` : `  subgroupMatrixStore<row_major>(&ss, ${sOff(j)}, sums${j}, RS);`)) : []),
  ];
  // One output value: the sum of filter f (tile row fl) at tile position pl, requantized.
  const value = (pl: string) => `clamp(mbqm(${asI(`rs[fl * RS + ${pl}]`)} + bias${hasWzp ? ` - ZW * ${asI(`ss[${pl}]`)}` : ''}, mul, sh) + ZO, LO, HI)`;
  // Epilogue: whole output words (aligned rows; 4 positions of one image) or single bytes.
  const EN = aligned ? BF * BP / 4 : BF * BP, EL = ceilDiv(EN, T), ePer = aligned ? BP / 4 : BP;
  const epilogue = aligned ? `
      var word = 0u;
      ${range(4).map((k) => `word |= (u32(${value(`pl + ${k}u`)}) & 0xffu) << ${8 * k}u;`).join('\n      ')}
      let n = m / P;
      let o = (n * F + f) * P + m - n * P;
      out[o >> 2u] = ${ra ? 'addRes(word, ldw_res(o))' : 'word'};` : `
      let v = u32(${value('pl')}) & 0xffu;
      let n = m / P;
      let o = (n * F + f) * P + m - n * P;
      st_out(o, i32(${ra ? 'addRes(v, ldw_res(o)) & 0xffu' : 'v'}));`;
  const byteOf = (arr: string, o: string) => (type === 'int8'
    ? `extractBits(${arr}[(${o}) >> 2u], ((${o}) & 3u) * 8u, 8u)`
    : `i32(extractBits(${arr}[(${o}) >> 2u], ((${o}) & 3u) * 8u, 8u))`);
  // Emulation: each subgroup's blocks in workgroup memory, lane l of a subgroup owning elements l, l + S, ... of each
  // (no lane reads another's), the products from the same staged tiles at the same offsets.
  const emuFns = `
var<workgroup> eacc: array<i32, ${NSG * (t.tm + (hasWzp ? 1 : 0)) * t.tn * blk}>;

fn emuMma(acc: u32, a: u32, b: u32) {
  for (var e = lane; e < ${blk}u; e += ${S}u) {
    let r = e / ${NB}u;
    let c = e % ${NB}u;
    var s = eacc[acc + e];
    for (var k = 0u; k < 32u; k++) { s += ${byteOf('ws', 'a + r * WS + k')} * ${byteOf('xs', 'b + k * XS + c')}; }
    eacc[acc + e] = s;
  }
}
${hasWzp ? `
fn emuSums(acc: u32, b: u32) {
  for (var e = lane; e < ${blk}u; e += ${S}u) {
    let c = e % ${NB}u;
    var s = eacc[acc + e];
    for (var k = 0u; k < 32u; k++) { s += ${byteOf('xs', 'b + k * XS + c')}; }
    eacc[acc + e] = s;
  }
}` : ''}

fn emuStore(acc: u32, o: u32, toSums: bool) {
  for (var e = lane; e < ${blk}u; e += ${S}u) {
    let i = o + (e / ${NB}u) * RS + e % ${NB}u;
    ${hasWzp ? `if (toSums) { ss[i] = ${ST}(eacc[acc + e]); } else { rs[i] = ${ST}(eacc[acc + e]); }` : `rs[i] = ${ST}(eacc[acc + e]);`}
  }
}`;
  const xWords = Math.max(1, ceilDiv(g.N * g.C * P, 4));
  const wgsl = `${emulate ? '' : 'enable subgroups;\nenable chromium_experimental_subgroup_matrix;\n'}${int8Bindings(ra ? ['x', 'res'] : ['x'], ['wp', 'qp'], ['out'], !aligned)}
${constsU32({ C: g.C, CK4: CK / 4, F: g.F, P, M, BF, BP, BK, XS, WS, RS, FT, TOTAL: total, DISPATCH_X: d.dispatchX })}
${constsI32({ ZW: q.wZeroPoint, ZO: q.yq.zeroPoint, LO: q.clamp[0], HI: q.clamp[1] })}
${fixedPointWgsl}
${aligned ? '' : atomicByteStore}
${ra?.wgsl ?? ''}
${aligned ? '' : `// The word of 4 positions m.. of channel c (bytes past M are 0): positions of a word may lie in two images.
fn gatherX(m: u32, c: u32) -> u32 {
  var word = 0u;
  for (var k = 0u; k < 4u; k++) {
    let mk = m + k;
    if (mk < M) {
      let n = mk / P;
      let i = (n * C + c) * P + mk - n * P;
      word |= extractBits(x[min(i >> 2u, ${xWords - 1}u)], (i & 3u) * 8u, 8u) << (8u * k);
    }
  }
  return word;
}`}
// xs: bytes [k * XS + p], channel k and position p of the step's x tile; ws: bytes [f * WS + k], filter f and
// channel k of its w tile (both 4 bytes a word, as the ${comp} matrix loads read them); rs[f * RS + p]: the tile's sums;
// ss[p]: the column sums of x at position p (rows 0 of each filter row of subgroups).
var<workgroup> xs: array<${ST}, ${BK * XS / 4}>;
var<workgroup> ws: array<${ST}, ${BF * WS / 4}>;
var<workgroup> rs: array<${ST}, ${BF * RS}>;
${hasWzp ? `var<workgroup> ss: array<${ST}, ${t.sgf * 16 * RS}>;` : ''}
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
  let sp = (sg % ${t.sgp}u) * ${NB * t.tn}u;
${prologue.join('\n')}
${range(XL).map((i) => `  var xr${i} = 0u;`).join('\n')}
${range(WL).map((i) => `  var wr${i} = 0u;`).join('\n')}
  {
${load('0u')}
  }
${emulate
    ? `  for (var e = li; e < ${NSG * (t.tm + (hasWzp ? 1 : 0)) * t.tn * blk}u; e += ${T}u) { eacc[e] = 0i; }`
    : [...accs.map(([i, j]) => `  var acc${i}_${j} = ${RT}();`), ...(hasWzp ? [`  let ones = ${L}(${ST}(1));`, ...range(t.tn).map((j) => `  var sums${j} = ${RT}();`)] : [])].join('\n')}
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
${stores.join('\n')}
  workgroupBarrier();
  for (var i = 0u; i < ${EL}u; i++) {
    let e = li + i * ${T}u;
    ${EL * T > EN ? `if (e >= ${EN}u) { break; }` : ''}
    let fl = e / ${ePer}u;
    let pl = ${aligned ? '4u * ' : ''}(e % ${ePer}u);
    let f = f0 + fl;
    let m = m0 + pl;
    if (${and('f < F', needM ? 'm < M' : '')}) {
      let bias = bitcast<i32>(qp[4u * f]);
      let mul = bitcast<i32>(qp[4u * f + 1u]);
      let sh = bitcast<i32>(qp[4u * f + 2u]);${epilogue}
    }
  }
}
`;
  const folded = foldBias(q.bias, q.w, g.F, g.C, q.xq.zeroPoint, q.wZeroPoint);
  return {
    name: `Conv${type === 'int8' ? 'I8' : 'U8'}(pw smx${ra ? ' + add' : ''})`,
    cacheKey: cacheKey(emulate ? 'int8-pointwise-smx-emulated' : 'int8-pointwise-smx', type, geomKey(g), `zw${q.wZeroPoint}zo${q.yq.zeroPoint}`, q.clamp,
      int8SmxTileKey(t), `S${S}`, `dx${d.dispatchX}`, ra?.key ?? ''),
    wgsl, workgroupSize: [T, 1, 1], dispatch: d.dispatch, inputs: [0, ...(ra?.inputs ?? [])], outputs: 1, workgroupStorageBytes: bytes,
    constants: [{ name: 'wp', data: packPadded(q.w, g.F, g.C, FT * BF, CK) }, { name: 'qp', data: channelParams(folded, q.multipliers, q.shifts) }],
  };
}

/** rows x len 8-bit values as `padRows` rows of `padLen` bytes (zeros past the data), four per word. */
export function packPadded(w: ArrayLike<number>, rows: number, len: number, padRows: number, padLen: number): Uint32Array {
  const bytes = new Uint8Array(Math.max(4, padRows * padLen));
  for (let r = 0; r < rows; r++) for (let c = 0; c < len; c++) bytes[r * padLen + c] = w[r * len + c] & 0xff;
  return new Uint32Array(bytes.buffer);
}
