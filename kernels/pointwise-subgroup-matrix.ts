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
// Two kinds of variant: this staged one (SmxTiles) and the direct one (SmxDirectTiles, at the end of the file: the
// operands read by subgroupMatrixLoad straight from the storage buffers, per image, register-blocked, only the
// accumulators through workgroup memory). chooseSmxTiles picks per layer shape (SmxRule). The staged variant may
// also take its x operand from a depthwise layer computed as it stages (SmxDepthwise: the DW-PW FCM,
// kernels/fused-dwpw-subgroup-matrix.ts).
//
// The staged variant uses only the f16 -> f32 16x16x16 configuration (what an NVIDIA adapter offers under Dawn's
// allow_unsafe_apis; src/runtime/device.ts subgroupMatrixSupport); direct variants may use 16 x 8 blocks or f16
// accumulators where the device offers them (SubgroupMatrixSupport n8, f16Acc). The WGSL assumes the device's
// subgroup size is fixed (subgroupMinSize == subgroupMaxSize): the workgroup has exactly SGF * SGP subgroups.

import type { KernelLimits, KernelProgram } from './program.js';
import type { DotGeom } from './pointwise.js';
import type { Conv2dGeom } from './conv-common.js';
import type { Epilogue } from './shader.js';
import { invalid, overLimit, unsupported } from '../src/errors.js';
import { cacheKey, ceilDiv, constsU32, layoutWorkgroups, plusResidual, threadCap } from './shader.js';

/** What a device offers for these kernels: f16 x f16 -> f32 16x16x16 subgroup matrices, at one subgroup size. */
export interface SubgroupMatrixSupport {
  subgroupSize: number;
  /** The f16 -> f32 M16 N8 K16 configuration too (16 x 8 blocks). */
  n8?: boolean;
  /** f16 -> f16 configurations with the same shapes as the f16 -> f32 ones (f16 accumulators). */
  f16Acc?: boolean;
  /** The chooser's rule takes direct variants (SmxRule; FCM_OPT_SUBGROUP_MATRIX=direct, src/runtime/device.ts). */
  direct?: boolean;
  /** f16 DW-PW FCMs run on subgroup matrices (kernels/fused-dwpw-subgroup-matrix.ts; FCM_OPT_SUBGROUP_MATRIX=fcm). */
  fcm?: boolean;
  /**
   * The staged tiles the rule takes, below 192 channels and from 192 on, in place of smxChosenStagedVariants' (for
   * timing other tiles in a whole pass; FCM_OPT_SMX_STAGED, src/runtime/device.ts). The device check covers them.
   */
  staged?: readonly [SmxTiles, SmxTiles];
  /**
   * The tiles of the rule's split step: staged tiles with K-groups (smxSplitVariants) for layers of fewer than
   * smxSplitMinWorkgroups tiles and at least smxSplitMinChannels channels (FCM_OPT_SMX_SPLIT, src/runtime/device.ts).
   */
  split?: SmxTiles;
}

/**
 * Tiles: SGF x SGP subgroups, each TM x TN blocks of 16 x 16 (BF = 16 TM SGF filters, BP = 16 TN SGP positions),
 * BK channels per staging step (a multiple of 16). `pad`: the rows of the staged tiles and of the results 16 bytes
 * longer than their data (x and w rows of BP + 8 and BK + 8 f16, result rows of BP + 4 f32), so that the 16 x 16
 * matrix loads and stores, which touch 16 rows of 32 (f16) or 64 (f32) bytes, do not meet the same banks of workgroup
 * memory on every second or fourth row (rows of 64 or 128 bytes do, at 32 or 64 positions).
 */
export interface SmxTiles {
  kind?: 'staged'; sgf: number; sgp: number; tm: number; tn: number; bk: number; pad?: boolean;
  /**
   * Two sets of x and w tiles: a step's products read one while the next step's operands are stored into the other,
   * one barrier a step instead of two (and twice the tiles' workgroup memory).
   */
  db?: boolean;
  /**
   * K-groups (default 1): ks groups of SGF x SGP subgroups share the workgroup's tile, each multiplying its own
   * BK / ks channels of every staged step, their sums added in the epilogue (ks result tiles in workgroup memory).
   * Layers with few tiles and long channel loops (7x7 maps) then get ks times the subgroups per SM to hide the
   * loads' latency, without a second dispatch to add partial sums.
   */
  ks?: number;
}

/** Row lengths of the staged variant's workgroup arrays: x (f16), w (f16) and results (f32). */
const stagedRows = (t: SmxTiles) => {
  const BF = 16 * t.tm * t.sgf, BP = 16 * t.tn * t.sgp;
  return { BF, BP, KS: t.ks ?? 1, XS: BP + (t.pad ? 8 : 0), WS: t.bk + (t.pad ? 8 : 0), RS: BP + (t.pad ? 4 : 0) };
};

/** A variant of the kernel: staged (SmxTiles) or direct loads (SmxDirectTiles, below). */
export type SmxVariant = SmxTiles | SmxDirectTiles;

export const isDirect = (t: SmxVariant): t is SmxDirectTiles => t.kind === 'direct';

export const smxTileKey = (t: SmxVariant) => (isDirect(t)
  ? `D${t.sgf}x${t.sgp}T${t.tm}x${t.tn}N${t.nb}${t.acc === 'f16' ? 'H' : ''}K${t.ku}${t.xs ? 'X' : ''}${t.pf ? 'P' : ''}`
  : `SG${t.sgf}x${t.sgp}T${t.tm}x${t.tn}BK${t.bk}${t.pad ? 'P' : ''}${t.db ? 'D' : ''}${(t.ks ?? 1) > 1 ? `K${t.ks}` : ''}`);

/** Bytes of workgroup memory: staged, x and w tiles (f16) and the result tiles (f32, one per K-group); direct, smxDirectStorage (C: the layer's channels, where known). */
export const smxStorage = (t: SmxVariant, C?: number) => {
  if (isDirect(t)) return smxDirectStorage(t, C);
  const r = stagedRows(t);
  return (t.db ? 2 : 1) * (2 * t.bk * r.XS + 2 * r.BF * r.WS) + 4 * r.KS * r.BF * r.RS;
};

/** Extra workgroup bytes of the emulated form: the staged variant keeps its accumulators there (direct: in private memory). */
export const smxEmulationStorage = (t: SmxVariant) => (isDirect(t) ? 0 : 1024 * smxSubgroups(t) * t.tm * t.tn);

/** Subgroups of a workgroup: SGF x SGP, times the K-groups of a staged variant. */
export const smxSubgroups = (t: SmxVariant) => t.sgf * t.sgp * (isDirect(t) ? 1 : t.ks ?? 1);

/**
 * Staged variants with rows as long as their data, largest first: what the chooser picked until the padded ones below
 * were measured; bench/subgroup-matrix.ts still times them.
 */
export const smxTileVariants: readonly SmxTiles[] = [
  { sgf: 2, sgp: 2, tm: 2, tn: 2, bk: 32 }, // 64 x 64
  { sgf: 2, sgp: 2, tm: 1, tn: 2, bk: 32 }, // 32 x 64
  { sgf: 2, sgp: 2, tm: 1, tn: 1, bk: 32 }, // 32 x 32
  { sgf: 1, sgp: 4, tm: 1, tn: 1, bk: 32 }, // 16 x 64: layers of <= 16 filters
];

/**
 * Staged variants with padded rows (SmxTiles.pad): the ones the chooser picks among and --tune times (and the device
 * check runs), measured 1.5-3x faster than the same tiles unpadded (chooseSmxTiles).
 */
export const smxPaddedVariants: readonly SmxTiles[] = [
  { sgf: 2, sgp: 2, tm: 2, tn: 2, bk: 32, pad: true }, // 64 x 64
  { sgf: 2, sgp: 2, tm: 1, tn: 1, bk: 32, pad: true }, // 32 x 32
  { sgf: 2, sgp: 2, tm: 1, tn: 1, bk: 64, pad: true }, // 32 x 32, 64 channels a step
  { sgf: 2, sgp: 2, tm: 1, tn: 2, bk: 32, pad: true }, // 32 x 64: each subgroup two blocks of positions
];

/** Workgroups of a layer with these tiles (direct: tiles within one image). */
export const smxTileCount = (g: Pick<DotGeom, 'N' | 'P' | 'F'>, t: SmxVariant) => (isDirect(t)
  ? ceilDiv(g.F, 16 * t.tm * t.sgf) * g.N * ceilDiv(g.P, t.nb * t.tn * t.sgp)
  : ceilDiv(g.F, 16 * t.tm * t.sgf) * ceilDiv(g.N * g.P, 16 * t.tn * t.sgp));

/**
 * Whether the tiles fit the device: threads per workgroup, workgroup memory (with `C`, the tail arrays only where that
 * layer needs them) and, for direct variants, the configurations they use (16 x 8 blocks, f16 accumulators).
 */
export function smxFits(t: SmxVariant, support: SubgroupMatrixSupport, limits: KernelLimits, C?: number): boolean {
  if (isDirect(t) && ((t.nb === 8 && !support.n8) || (t.acc === 'f16' && !support.f16Acc))) return false;
  return smxSubgroups(t) * support.subgroupSize <= threadCap(limits) && smxStorage(t, C) <= limits.maxComputeWorkgroupStorageSize;
}

/**
 * Below this many workgroups the kernel, which does not split the channel loop, leaves most of an H100's 132 SMs idle:
 * with long channel loops (C > 256) the present f16 kernels (split-K) are faster there.
 */
export const smxMinWorkgroups = 66;

/**
 * The direct-load variants (kernels read w and x with subgroupMatrixLoad from the storage buffers; see
 * pointwiseSubgroupMatrixDirect below), every one within 32 KiB of workgroup memory (so that lavapipe runs each
 * emulated). bench/subgroup-matrix.ts times them all with the staged variants.
 */
export const smxDirectVariants: readonly SmxDirectTiles[] = [
  { kind: 'direct', sgf: 2, sgp: 2, tm: 2, tn: 2, nb: 16, acc: 'f32', ku: 1 }, // 64 x 64
  { kind: 'direct', sgf: 2, sgp: 2, tm: 1, tn: 4, nb: 16, acc: 'f32', ku: 1 }, // 32 x 128
  { kind: 'direct', sgf: 1, sgp: 4, tm: 1, tn: 4, nb: 16, acc: 'f32', ku: 1 }, // 16 x 256: layers of <= 16 filters
  { kind: 'direct', sgf: 2, sgp: 2, tm: 1, tn: 2, nb: 16, acc: 'f32', ku: 1 }, // 32 x 64: more workgroups on small layers
  { kind: 'direct', sgf: 2, sgp: 2, tm: 2, tn: 2, nb: 16, acc: 'f32', ku: 2 }, // 64 x 64, 32 channels per loop iteration
  { kind: 'direct', sgf: 2, sgp: 2, tm: 2, tn: 4, nb: 8, acc: 'f32', ku: 1 }, // 64 x 64 of 16 x 8 blocks
  { kind: 'direct', sgf: 2, sgp: 2, tm: 2, tn: 2, nb: 16, acc: 'f16', ku: 1 }, // 64 x 64, f16 accumulators
  { kind: 'direct', sgf: 2, sgp: 2, tm: 2, tn: 2, nb: 16, acc: 'f32', ku: 2, xs: true }, // 64 x 64, x through workgroup memory
  { kind: 'direct', sgf: 2, sgp: 2, tm: 1, tn: 2, nb: 16, acc: 'f32', ku: 2, xs: true }, // 32 x 64, x through workgroup memory
  { kind: 'direct', sgf: 2, sgp: 2, tm: 2, tn: 2, nb: 16, acc: 'f32', ku: 1, pf: true }, // 64 x 64, next operands prefetched
];

/**
 * Staged variants with K-groups (SmxTiles.ks): the candidates of the rule's split step (chooseSmxTiles) for layers
 * with few tiles and long channel loops.
 */
export const smxSplitVariants: readonly SmxTiles[] = [
  { sgf: 2, sgp: 2, tm: 1, tn: 1, bk: 64, pad: true, ks: 2 }, // 32 x 32, two K-groups of 4 subgroups, 32 channels each
  { sgf: 1, sgp: 1, tm: 2, tn: 2, bk: 64, pad: true, ks: 4 }, // 32 x 32, four K-groups of one subgroup, 16 channels each
  { sgf: 1, sgp: 2, tm: 2, tn: 1, bk: 64, pad: true, ks: 4 }, // 32 x 32, four K-groups of 2 subgroups, 16 channels each
  { sgf: 1, sgp: 2, tm: 2, tn: 2, bk: 64, pad: true, ks: 2 }, // 32 x 64, two K-groups of 2 subgroups, 32 channels each
  { sgf: 2, sgp: 2, tm: 1, tn: 2, bk: 64, pad: true, ks: 2 }, // 32 x 64, two K-groups of 4 subgroups
];

/**
 * Staged variants the chooser does not pick yet, timed by bench/subgroup-matrix.ts beside the rule's: two sets of
 * tiles (db), rectangular tiles, and eight subgroups a workgroup.
 */
export const smxTrialVariants: readonly SmxTiles[] = [
  { sgf: 2, sgp: 2, tm: 1, tn: 1, bk: 32, pad: true, db: true }, // 32 x 32
  { sgf: 2, sgp: 2, tm: 1, tn: 1, bk: 64, pad: true, db: true }, // 32 x 32, 64 channels a step
  { sgf: 2, sgp: 2, tm: 2, tn: 2, bk: 32, pad: true, db: true }, // 64 x 64
  { sgf: 2, sgp: 2, tm: 1, tn: 2, bk: 32, pad: true, db: true }, // 32 x 64
  { sgf: 2, sgp: 2, tm: 2, tn: 1, bk: 32, pad: true, db: true }, // 64 x 32
  { sgf: 2, sgp: 2, tm: 2, tn: 1, bk: 32, pad: true }, // 64 x 32
  { sgf: 2, sgp: 4, tm: 1, tn: 1, bk: 32, pad: true, db: true }, // 32 x 64, 8 subgroups
  { sgf: 4, sgp: 2, tm: 1, tn: 1, bk: 32, pad: true, db: true }, // 64 x 32, 8 subgroups
  { sgf: 2, sgp: 4, tm: 2, tn: 1, bk: 32, pad: true, db: true }, // 64 x 64, 8 subgroups
  ...smxSplitVariants,
];

/** Every variant the bench times: the staged ones, the trial ones, then the direct ones. */
export const smxAllVariants: readonly SmxVariant[] = [...smxTileVariants, ...smxPaddedVariants, ...smxTrialVariants, ...smxDirectVariants];

/**
 * How the chooser uses the direct variants. `direct` false (the default until bench/subgroup-matrix.ts has measured
 * them on a GPU; SubgroupMatrixSupport.direct turns it on for a device): the staged rule alone. `direct` true, on
 * layers with >= 16 filters and positions, no input scale and C % 8 == 0: where x's rows are aligned for direct loads
 * (P % 8 == 0), 16 x 256 tiles for <= 16 filters, 32 x 64 where 64 x 64 tiles would be fewer than smxMinWorkgroups,
 * else 64 x 64; where they are not (14x14, 7x7), the same with x through workgroup memory (xs), 32 x 64 only where
 * it gives smxMinWorkgroups tiles or C <= 256 (the staged rule's split-K exception); other layers as the staged rule.
 */
export interface SmxRule { direct: boolean }

/** The direct variants chooseSmxTiles may pick (what the device check must cover). */
export const smxChosenDirectVariants = (): SmxDirectTiles[] => [smxDirectVariants[0], smxDirectVariants[2], smxDirectVariants[3], smxDirectVariants[7], smxDirectVariants[8]];

/** The staged variants chooseSmxTiles may pick: 32 x 32 padded, 32 and 64 channels a step; 32 x 64 padded. */
export const smxChosenStagedVariants = (): SmxTiles[] => [smxPaddedVariants[1], smxPaddedVariants[2], smxPaddedVariants[3]];

/** Workgroups of 32 x 64 tiles from which they beat 32 x 32 ones (chooseSmxTiles). */
export const smxWideMinWorkgroups = 192;

/**
 * The tiles for a layer, or undefined where the present f16 kernel should run it. The staged rule, from
 * bench/subgroup-matrix.ts on an H100 (MobileNetV2's 18 pointwise shapes at batch 1 and 32, every variant once,
 * 2026-12-07): 32 x 32 tiles with padded rows were the fastest variant, or within 10% of it, on 28 of the 36 shapes,
 * 1.5-3x faster than the same tiles unpadded; this rule sums to 925 us over the batch-32 shapes (the unpadded rule
 * 1656, the best variant per shape 842) and 354 at batch 1 (430, 351). 64 channels a step from 192 channels on
 * (14x14 576 -> 96: 72 us, 32 channels 78, unpadded 141), 32 below (7x7 160 -> 960: 68 us, 64 channels 78; the one
 * exception seen, 14x14 96 -> 576: 23 us with 64, 66 with 32). 64 x 64 tiles, padded or not, lost everywhere. Left to the present
 * kernels: memory-bound layers (fewer than 32 channels or at most 16 filters) over 16384+ positions (112x112 16 -> 96
 * at batch 32: present 55 us, padded 104; at batch 1 the padded tiles win, 56x56 24 -> 144 14 us against 20), the
 * 7x7 maps of one image with long channel loops on few tiles (batch 1 7x7 960 -> 320: present split-K 42 us, padded 55;
 * at 14x14 the padded tiles win, 576 -> 96 30 us against 43) and layers of fewer than 16 positions in all. With
 * `rule.direct`, the direct variants first where SmxRule says.
 * 32 x 64 padded tiles (each subgroup two blocks of positions: two independent products per staged step) where they
 * make at least smxWideMinWorkgroups workgroups: on an H100 (layer-kernels, each layer alone, heated, batch 32,
 * 2026-12-07 22:00) they beat the 32 x 32 rule on 11 of the 14 shapes that have that many (56x56 96 -> 24: 11.9 us
 * against 15.1, 14x14 576 -> 96 13.7 against 15.8), tied on two and lost one (7x7 320 -> 1280: 30.5 against 28.7);
 * on fewer tiles they lost (7x7 960 -> 160, 125 tiles: 19.4 against 13.3). Batch-1 layers of MobileNetV2 make fewer
 * than 192 such tiles and keep the 32 x 32 ones. A device's `staged` tiles replace all three.
 */
export function chooseSmxTiles(g: Pick<DotGeom, 'N' | 'P' | 'F' | 'C'> & { hasScale?: boolean }, support: SubgroupMatrixSupport, limits: KernelLimits, rule: SmxRule = { direct: !!support.direct }): SmxVariant | undefined {
  if (rule.direct) {
    const [big, narrow, small, bigX, smallX] = smxChosenDirectVariants();
    const ok = (t: SmxDirectTiles) => smxDirectAligned(g, t) && smxDirectApplies(g, t) && smxFits(t, support, limits, g.C);
    if (g.P % 8 === 0) {
      if (g.F <= 16 && ok(narrow)) return narrow;
      if (ok(big) && smxTileCount(g, big) >= smxMinWorkgroups) return big;
      if (ok(small)) return small;
    } else {
      if (ok(bigX) && smxTileCount(g, bigX) >= smxMinWorkgroups) return bigX;
      if (ok(smallX) && (smxTileCount(g, smallX) >= smxMinWorkgroups || g.C <= 256)) return smallX;
    }
  }
  const [k32, k64, wide] = support.staged ? [...support.staged, undefined] : smxChosenStagedVariants();
  const M = g.N * g.P;
  if (M < 16) return undefined;
  if (g.C < 32 || g.F <= 16) return M < 16384 && smxFits(k32, support, limits) ? k32 : undefined;
  const isWide = !!wide && smxTileCount(g, wide) >= smxWideMinWorkgroups && smxFits(wide, support, limits);
  const t = isWide ? wide : g.C >= 192 && smxFits(k64, support, limits) ? k64 : k32;
  if (!smxFits(t, support, limits)) return undefined;
  if (smxTileCount(g, t) < smxMinWorkgroups && g.C > 256 && M <= 64) return undefined;
  const split = support.split;
  if (split && g.C >= smxSplitMinChannels && smxTileCount(g, t) < smxSplitMinWorkgroups && smxFits(split, support, limits)) return split;
  return t;
}

/** The split step (SubgroupMatrixSupport.split) takes layers of fewer tiles than this (two per SM of an H100)... */
export const smxSplitMinWorkgroups = 264;
/** ...and at least this many channels: loops long enough for K-groups to share. */
export const smxSplitMinChannels = 256;

/**
 * A depthwise layer computed in front of the pointwise one, as the staged variant's x operand (the DW-PW FCM,
 * kernels/fused-dwpw-subgroup-matrix.ts): x is then the depthwise layer's input [N, C, H, W] (binding x), its weights
 * [C, 1, KH, KW] binding w1 and bias binding b1; the pointwise layer's P is the depthwise output's HO * WO.
 */
export interface SmxDepthwise { H: number; W: number; HO: number; WO: number; geom: Conv2dGeom; hasBias: boolean; act: Epilogue }

/**
 * The subgroup-matrix pointwise program (f16 storage; `names`: the bindings x, w, b?, res?, sc? in order, `inputs`
 * their node input indices, as kernels/pointwise.ts dotProgram takes them). `emulate`: the same program with each
 * matrix load, multiply-accumulate and store done in plain WGSL at the same offsets and strides, so that a device
 * without subgroup matrices (the tests' lavapipe) checks everything else: staging, edges, epilogue, tile indexing.
 * `dw` (staged variants only): each x element of a step is a depthwise result computed from the layer's input as the
 * step stages it (names then also w1 and b1?): the intermediate never reaches memory, and each tile of BF filters
 * computes its positions' depthwise results again (ceil(F / BF) times in all).
 */
export function pointwiseSubgroupMatrix(g: DotGeom, t: SmxVariant, support: SubgroupMatrixSupport, names: string[], inputs: number[], limits: KernelLimits, w: string, label = 'Conv(pw smx)', emulate = false, dw?: SmxDepthwise): KernelProgram {
  // No shuffled or channels-last store and no resized residual here: kernels/registry.ts gives such a conv the f16
  // form of kernels/pointwise.ts.
  if (g.shuffleOuts) throw unsupported(w, 'the subgroup-matrix pointwise kernel has no shuffled store');
  if (g.channelsLast) throw unsupported(w, 'the subgroup-matrix pointwise kernel has no channels-last store');
  if (g.resSampler) throw unsupported(w, 'the subgroup-matrix pointwise kernel reads no resized residual');
  if (dw && (isDirect(t) || g.hasScale)) throw invalid(w, 'a depthwise layer in front runs only on the staged subgroup-matrix variants, without an input scale');
  if (dw && dw.HO * dw.WO !== g.P) throw invalid(w, `depthwise output ${dw.HO}x${dw.WO} does not match the pointwise layer's ${g.P} positions`);
  if (isDirect(t)) return pointwiseSubgroupMatrixDirect(g, t, support, names, inputs, limits, w, label, emulate);
  const S = support.subgroupSize;
  for (const [k, v] of Object.entries(t)) if (k !== 'kind' && k !== 'pad' && k !== 'db' && (!Number.isInteger(v) || (v as number) < 1)) throw invalid(w, `subgroup-matrix tile ${k} must be a positive integer, got ${v}`);
  if (t.bk % 16 !== 0) throw invalid(w, `subgroup-matrix tiles need a multiple of 16 channels per step, got ${t.bk}`);
  if ((t.bk / 16) % (t.ks ?? 1) !== 0) throw invalid(w, `subgroup-matrix tiles of ${t.ks} K-groups need a multiple of ${16 * (t.ks ?? 1)} channels per step, got ${t.bk}`);
  if (!Number.isInteger(S) || S < 1) throw invalid(w, `subgroup size must be a positive integer, got ${S}`);
  // NSG subgroups in all (KS K-groups of SGF x SGP), T threads.
  const NSG = smxSubgroups(t), T = NSG * S;
  if (T > threadCap(limits)) throw overLimit(w, `subgroup-matrix tiles need ${T} threads per workgroup, the device allows ${threadCap(limits)}`);
  const bytes = smxStorage(t) + (emulate ? 4 * NSG * t.tm * t.tn * 256 : 0);
  if (bytes > limits.maxComputeWorkgroupStorageSize) {
    throw overLimit(w, `subgroup-matrix tiles need ${bytes} bytes of workgroup storage, the device allows ${limits.maxComputeWorkgroupStorageSize}`);
  }
  const BK = t.bk, { BF, BP, KS, XS, WS, RS } = stagedRows(t);
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
      if (dw) {
        // The depthwise results at the item's positions (vec: 4 of one image), rounded to f16 as the layer's output.
        const at = (q: number) => `dwAt(xn${i}, ${c} + xk${i}, xm${i} - xn${i} * P${q ? ` + ${q}u` : ''})`;
        out.push(`    xr${i} = ${xT}(0.0);`);
        out.push(`    if (${ok}) { xr${i} = ${vec ? `vec4<f16>(${range(4).map(at).join(', ')})` : at(0)}; }`);
        continue;
      }
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
  // Registers to workgroup memory: xs[k * XS + p], ws[f * WS + k] (row-major, as the matrix loads read them).
  const stage = (buf = '') => {
    const out: string[] = [];
    const xo = buf ? `${buf} * ${BK * XS}u + ` : '', wo = buf ? `${buf} * ${BF * WS}u + ` : '';
    for (const i of range(XL)) {
      const s = vec ? range(4).map((q) => `xs[${xo}xk${i} * XS + xp${i} + ${q}u] = xr${i}[${q}];`).join(' ') : `xs[${xo}xk${i} * XS + xp${i}] = xr${i};`;
      out.push((i + 1) * T > XN ? `    if (xe${i} < ${XN}u) { ${s} }` : `    ${s}`);
    }
    for (const i of range(WL)) {
      const s = wVec ? range(4).map((q) => `ws[${wo}wf${i} * WS + wk${i} + ${q}u] = wr${i}[${q}];`).join(' ') : `ws[${wo}wf${i} * WS + wk${i}] = wr${i};`;
      out.push((i + 1) * T > WN ? `    if (we${i} < ${WN}u) { ${s} }` : `    ${s}`);
    }
    return out.join('\n');
  };
  // The matrix operations, on subgroup matrices or (emulate) in plain WGSL with the same offsets and strides.
  // With two sets of tiles (db), the step's set starts at xsb / wsb.
  // With K-groups (KS > 1) each subgroup's channels of the step start at kb.
  const kOff = (kk: number) => (KS > 1 ? `kb + ${16 * kk}u` : `${16 * kk}u`);
  const aOff = (i: number, kk: number) => `${t.db ? 'wsb + ' : ''}(sf + ${16 * i}u) * WS + ${kOff(kk)}`;
  const bOff = (j: number, kk: number) => `${t.db ? 'xsb + ' : ''}(${kOff(kk)}) * XS + sp + ${16 * j}u`;
  const rOff = (i: number, j: number) => `${KS > 1 ? 'rk + ' : ''}(sf + ${16 * i}u) * RS + sp + ${16 * j}u`;
  const accBase = (i: number, j: number) => `(sg * ${t.tm * t.tn}u + ${i * t.tn + j}u) * 256u`;
  const L = 'subgroup_matrix_left<f16, 16, 16>', R = 'subgroup_matrix_right<f16, 16, 16>';
  const mma: string[] = [];
  for (const kk of range(BK / 16 / KS)) {
    mma.push('    {');
    if (emulate) {
      for (const i of range(t.tm)) for (const j of range(t.tn)) mma.push(`      emuMma(${accBase(i, j)}, ${aOff(i, kk)}, ${bOff(j, kk)});`);
    } else {
      for (const i of range(t.tm)) mma.push(`      let a${i} = subgroupMatrixLoad<${L}, row_major>(&ws, ${aOff(i, kk)}, WS);`);
      for (const j of range(t.tn)) mma.push(`      let b${j} = subgroupMatrixLoad<${R}, row_major>(&xs, ${bOff(j, kk)}, XS);`);
      for (const i of range(t.tm)) for (const j of range(t.tn)) mma.push(`      acc${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, acc${i}_${j});`);
    }
    mma.push('    }');
  }
  const accs = range(t.tm).flatMap((i) => range(t.tn).map((j) => [i, j] as const));
  const bias = (f: string) => (g.hasBias ? ` + f32(b[${f}])` : '');
  // Epilogue: EL items per thread over the BF x BP tile (vec: 4 positions each).
  const EN = vec ? BF * BP / 4 : BF * BP, EL = ceilDiv(EN, T), ePer = vec ? BP / 4 : BP;
  // The K-groups' sums, added in order.
  const sums = (r: string) => range(KS).map((k) => r.replaceAll('@', k ? ` + ${k * BF * RS}u` : '')).join(' + ');
  const epilogue = vec ? `
    let r = fl * RS + pl;
    let y = ${sums('vec4<f32>(rs[r@], rs[r@ + 1u], rs[r@ + 2u], rs[r@ + 3u])')}${g.hasBias ? ` + vec4<f32>(f32(b[f]))` : ''};
    let n = m / P;
    let o = ((n * F + f) * P + m - n * P) / 4u;
    let v = ${g.hasRes ? plusResidual(g.act, 'vec4<f32>(act(y.x), act(y.y), act(y.z), act(y.w))', 'vec4<f32>(res[o])', true) : 'vec4<f32>(act(y.x), act(y.y), act(y.z), act(y.w))'};
    out[o] = vec4<f16>(v);` : `
    let y = ${sums('rs[fl * RS + pl@]')}${bias('f')};
    let n = m / P;
    let o = (n * F + f) * P + m - n * P;
    out[o] = f16(${g.hasRes ? plusResidual(g.act, 'act(y)', 'f32(res[o])') : 'act(y)'});`;
  const vecOf = new Set([...(vec ? [...(dw ? [] : ['x']), 'res', 'out'] : []), ...(wVec ? ['w'] : [])]);
  // The depthwise layer in front (dw): its result at (image n, channel c, output position p), with its epilogue.
  const dwFn = dw ? `
const KH: u32 = ${dw.geom.kh}u;
const KW: u32 = ${dw.geom.kw}u;
const IH: i32 = ${dw.H};
const IW: i32 = ${dw.W};
const WO: u32 = ${dw.WO}u;
${dw.act.fn}

fn dwAt(n: u32, c: u32, p: u32) -> f16 {
  let ya = i32((p / WO) * ${dw.geom.sh}u) - ${dw.geom.pt};
  let xa = i32((p % WO) * ${dw.geom.sw}u) - ${dw.geom.pl};
  let xc = (n * C + c) * u32(IH);
  var s = 0.0;
  for (var kh = 0u; kh < KH; kh++) {
    let iy = ya + i32(kh * ${dw.geom.dh}u);
    if (iy < 0 || iy >= IH) { continue; }
    for (var kw = 0u; kw < KW; kw++) {
      let ix = xa + i32(kw * ${dw.geom.dw}u);
      if (ix >= 0 && ix < IW) { s += f32(x[(xc + u32(iy)) * u32(IW) + u32(ix)]) * f32(w1[(c * KH + kh) * KW + kw]); }
    }
  }
  return f16(act1(s${dw.hasBias ? ' + f32(b1[c])' : ''}));
}` : '';
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
    for (var k = 0u; k < 16u; k++) { s += f32(ws[a + r * WS + k]) * f32(xs[b + k * XS + c]); }
    eacc[acc + e] = s;
  }
}

fn emuStore(acc: u32, o: u32) {
  for (var e = lane; e < 256u; e += ${S}u) { rs[o + (e / 16u) * RS + e % 16u] = eacc[acc + e]; }
}`;
  const wgsl = `enable f16;
${emulate ? '' : 'enable subgroups;\nenable chromium_experimental_subgroup_matrix;\n'}${names.map((n, k) => decl(n, k, 'read')).join('\n')}
${decl('out', names.length, 'read_write')}
${constsU32({ C: g.C, F: g.F, P: g.P, ...(vec ? { P4: g.P / 4 } : {}), M, BF, BP, BK, XS, WS, RS, FT, TOTAL: total, DISPATCH_X: d.dispatchX })}
${g.act.fn}${dwFn}
// xs[k * XS + p]: channel k, position p of the step's x tile; ws[f * WS + k]: filter f, channel k of its w tile;
// rs[f * RS + p]: the tile's sums (rows of XS >= BP, WS >= BK, RS >= BP: see SmxTiles.pad).
var<workgroup> xs: array<f16, ${(t.db ? 2 : 1) * BK * XS}>;
var<workgroup> ws: array<f16, ${(t.db ? 2 : 1) * BF * WS}>;
var<workgroup> rs: array<f32, ${KS * BF * RS}>;
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
  // This subgroup's blocks: filters sf.., positions sp.. of the tile${KS > 1 ? `; its K-group's channels kb.. of each step, its sums at rk` : ''}.
  let sf = (${KS > 1 ? `(sg % ${t.sgf * t.sgp}u)` : 'sg'} / ${t.sgp}u) * ${16 * t.tm}u;
  let sp = (sg % ${t.sgp}u) * ${16 * t.tn}u;${KS > 1 ? `
  let kb = (sg / ${t.sgf * t.sgp}u) * ${BK / KS}u;
  let rk = (sg / ${t.sgf * t.sgp}u) * ${BF * RS}u;` : ''}
${prologue.join('\n')}
${range(XL).map((i) => `  var xr${i} = ${xT}(0.0);`).join('\n')}
${range(WL).map((i) => `  var wr${i} = ${wT}(0.0);`).join('\n')}
  {
${load('0u')}
  }
${emulate
    ? `  for (var e = li; e < ${NSG * t.tm * t.tn * 256}u; e += ${T}u) { eacc[e] = 0.0; }`
    : accs.map(([i, j]) => `  var acc${i}_${j} = subgroup_matrix_result<f32, 16, 16>();`).join('\n')}
${t.db ? `${stage('0u')}
  workgroupBarrier();
  for (var c0 = 0u; c0 < C; c0 += BK) {
    // Step c0's tiles are set cur; the next step's operands, loaded before this step's products, go to the other set,
    // which every thread finished reading before the last barrier (c0 is uniform).
    let cur = (c0 / BK) % 2u;
    let xsb = cur * ${BK * XS}u;
    let wsb = cur * ${BF * WS}u;
    let more = c0 + BK < C;
    if (more) {
      let c1 = c0 + BK;
${load('c1')}
    }
${mma.join('\n')}
    if (more) {
${stage('(1u - cur)')}
    }
    workgroupBarrier();
  }` : `  for (var c0 = 0u; c0 < C; c0 += BK) {
${stage()}
    workgroupBarrier();
    // The next step's loads go out before this step's products (c0 is uniform).
    if (c0 + BK < C) {
      let c1 = c0 + BK;
${load('c1')}
    }
${mma.join('\n')}
    workgroupBarrier();
  }`}
${accs.map(([i, j]) => (emulate ? `  emuStore(${accBase(i, j)}, ${rOff(i, j)});` : `  subgroupMatrixStore<row_major>(&rs, ${rOff(i, j)}, acc${i}_${j}, RS);`)).join('\n')}
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
    cacheKey: cacheKey(emulate ? 'pointwise-smx-emulated' : 'pointwise-smx', g.N, g.C, g.F, g.P, +g.hasBias, +g.hasRes, +!!g.hasScale, g.act.key, smxTileKey(t), `S${S}`, `dx${d.dispatchX}`,
      ...(dw ? [`dw${dw.H}x${dw.W}k${dw.geom.kh}x${dw.geom.kw}s${dw.geom.sh}x${dw.geom.sw}p${dw.geom.pt},${dw.geom.pl}d${dw.geom.dh}x${dw.geom.dw}b${+dw.hasBias}${dw.act.key}`] : [])),
    wgsl, workgroupSize: [T, 1, 1], dispatch: d.dispatch, inputs, outputs: 1, workgroupStorageBytes: bytes,
  };
}

// ---- Direct variant: operands loaded by subgroupMatrixLoad straight from the storage buffers -----------------------
//
// Per image n, x is a C x P row-major matrix (stride P) and w an F x C one (stride C): out[n] = w . x[n]. A workgroup
// owns BF filters x BP positions of one image (tiles never span images: the stride of x is P), SGF x SGP subgroups,
// each TM x TN blocks of 16 x NB results (register blocking: per step of 16 channels a subgroup loads TM blocks of w
// and TN of x and takes TM * TN products, each w block reused over TN x blocks and each x block over TM w blocks).
// Nothing is staged in workgroup memory on the way in (but x in the xs variants, for unaligned rows; see Alignment).
// `pf`: the next iteration's operands are loaded before this iteration's products; `ku` 2: two steps of 16 channels
// per iteration, all their loads first.
//
// Edges. A block never reads past its image's row end or past w's last row: a block whose nominal start lies within
// NB positions (16 filters) of the end starts at P - NB (F - 16) instead, overlapping its neighbour, and the epilogue
// stores only the results at or after the nominal start, so every output is written once. This matters for more than
// tidiness: Dawn's robustness (Tint's core IR Robustness transform, PredicateSubgroupMatrixCall) predicates a
// subgroupMatrixLoad on the whole matrix lying inside the array (offset + (rows - 1) * stride + columns <= arrayLength)
// and returns a zero matrix otherwise, so a block crossing the end of x's buffer (the last image's last channel) would
// lose its valid columns too; and columns read across a row end into the next channel would be harmless only because
// a product's output column depends on that column of x alone. Clamped starts need P >= NB and F >= 16 (smaller layers
// keep the staged variant or the present kernel). The channel tail (C % 16 != 0) cannot be clamped (overlapping
// channels would be summed twice): its last partial step is staged in workgroup memory with zeros past C in both
// operands (zeros in one alone would not do: 0 x inf is NaN), once per tile.
//
// Alignment: Vulkan's cooperative-matrix loads (what Dawn emits for these on NVIDIA) need the pointer and the stride
// aligned to the lesser of 16 bytes and a row's bytes (VUID-RuntimeSpirv-OpCooperativeMatrixLoadKHR-08986; Dawn does
// not check it), 16 bytes here: rows of x start at multiples of P and rows of w at multiples of C, so direct loads of x
// are legal only where P % 8 == 0 and of w where C % 8 == 0 (smxDirectAligned). Where P % 8 != 0 (14x14, 7x7) the xs
// variants copy x through workgroup memory in rows of BP. The generator produces the other shapes too
// (bench/subgroup-matrix.ts --unaligned times them, at the driver's mercy); the chooser never picks them.
//
// Results: each subgroup stores its accumulators into workgroup memory (subgroupMatrixStore), one barrier, then every
// thread applies the epilogue to its share of the workgroup's tile, row by row (consecutive threads, consecutive
// positions of one output row): bias, activation, residual, and stores of V = 4, 2 or 1 f16 (V the largest of those
// dividing P: block starts are multiples of V, so a vector never straddles the nominal-start mask or a row end).
// `acc` 'f16': the f16 -> f16 configuration (accumulators rounded to f16 after each step of 16 channels; for short
// channel loops, where that costs little accuracy).

/** Direct-load tiles: SGF x SGP subgroups of TM x TN blocks of 16 x NB, KU steps of 16 channels per loop iteration. */
export interface SmxDirectTiles {
  kind: 'direct'; sgf: number; sgp: number; tm: number; tn: number; nb: 16 | 8; acc: 'f32' | 'f16'; ku: 1 | 2;
  /**
   * x through workgroup memory (w still direct): per iteration the workgroup copies its 16 KU x BP tile of x (the
   * clamped blocks' columns) into xs, rows of BP f16, and the right operands load from there. For layers whose x rows
   * are not aligned for direct loads (P % 8 != 0: 14x14, 7x7) while w's are (C % 8 == 0).
   */
  xs?: boolean;
  /**
   * Prefetch (direct loads of x and w only): the next iteration's operands are loaded into a second set of matrices
   * before this iteration's products, so the loads of one overlap the products of the other.
   */
  pf?: boolean;
}

/** Whether a layer's rows meet the 16-byte alignment of cooperative-matrix loads (see above). */
export const smxDirectAligned = (g: Pick<DotGeom, 'C' | 'P'>, t?: Pick<SmxDirectTiles, 'xs'>) => (t?.xs || g.P % 8 === 0) && g.C % 8 === 0;

/** Whether the direct variant can run a layer at all (clamped block starts; x read as it lies). */
export const smxDirectApplies = (g: Pick<DotGeom, 'P' | 'F' | 'hasScale'>, t: SmxDirectTiles) => g.P >= t.nb && g.F >= 16 && !g.hasScale;

const directDims = (t: SmxDirectTiles) => ({ BF: 16 * t.tm * t.sgf, BP: t.nb * t.tn * t.sgp, NSG: t.sgf * t.sgp });

/** Bytes of workgroup memory of the direct variant: the accumulators, and the tail step's operands where C % 16 != 0. */
export function smxDirectStorage(t: SmxDirectTiles, C?: number): number {
  const { NSG } = directDims(t);
  const acc = NSG * t.tm * t.tn * 16 * t.nb * (t.acc === 'f32' ? 4 : 2);
  const tail = C === undefined || C % 16 !== 0 ? 2 * NSG * (t.tm * 256 + t.tn * 16 * t.nb) : 0;
  return acc + tail + (t.xs ? 2 * 16 * t.ku * directDims(t).BP : 0);
}

function pointwiseSubgroupMatrixDirect(g: DotGeom, t: SmxDirectTiles, support: SubgroupMatrixSupport, names: string[], inputs: number[], limits: KernelLimits, w: string, label: string, emulate: boolean): KernelProgram {
  const S = support.subgroupSize;
  for (const k of ['sgf', 'sgp', 'tm', 'tn'] as const) if (!Number.isInteger(t[k]) || t[k] < 1) throw invalid(w, `subgroup-matrix tile ${k} must be a positive integer, got ${t[k]}`);
  if (t.nb !== 16 && t.nb !== 8) throw invalid(w, `subgroup-matrix blocks are 16 x 16 or 16 x 8, got 16 x ${t.nb}`);
  if (t.ku !== 1 && t.ku !== 2) throw invalid(w, `subgroup-matrix channel steps per iteration must be 1 or 2, got ${t.ku}`);
  if (!Number.isInteger(S) || S < 1) throw invalid(w, `subgroup size must be a positive integer, got ${S}`);
  if (g.hasScale) throw invalid(w, 'the direct subgroup-matrix variant reads x as it lies: no per-channel input scale');
  if (g.P < t.nb || g.F < 16) throw invalid(w, `the direct subgroup-matrix variant needs >= ${t.nb} positions and >= 16 filters, got ${g.P} and ${g.F}`);
  const { BF, BP, NSG } = directDims(t);
  const T = NSG * S;
  if (T > threadCap(limits)) throw overLimit(w, `subgroup-matrix tiles need ${T} threads per workgroup, the device allows ${threadCap(limits)}`);
  const NB = t.nb, QB = (16 * NB) / S;
  if (emulate && !Number.isInteger(QB)) throw invalid(w, `the emulated form needs the subgroup size to divide ${16 * NB}, got ${S}`);
  const bytes = smxDirectStorage(t, g.C);
  if (bytes > limits.maxComputeWorkgroupStorageSize) {
    throw overLimit(w, `subgroup-matrix tiles need ${bytes} bytes of workgroup storage, the device allows ${limits.maxComputeWorkgroupStorageSize}`);
  }
  const FT = ceilDiv(g.F, BF), PT = ceilDiv(g.P, BP), total = g.N * PT * FT;
  const d = layoutWorkgroups(total, limits, w);
  const KF = Math.floor(g.C / 16) * 16, tail = g.C % 16 !== 0;
  const V = g.P % 4 === 0 ? 4 : g.P % 2 === 0 ? 2 : 1;
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const accT = t.acc === 'f32' ? 'f32' : 'f16';
  const L = 'subgroup_matrix_left<f16, 16, 16>', R = `subgroup_matrix_right<f16, ${NB}, 16>`, RES = `subgroup_matrix_result<${accT}, ${NB}, 16>`;
  const blk = (i: number, j: number) => i * t.tn + j;
  // Block starts (clamped) of this subgroup: rows fa_i of w, positions pb_j of x.
  const starts = [
    ...range(t.tm).map((i) => `  let fa${i} = min(f0 + sf + ${16 * i}u, F - 16u);`),
    ...range(t.tn).map((j) => `  let pb${j} = min(p0 + sp + ${NB * j}u, P - NB);`),
  ];
  // One step of 16 channels at channel `k` (a WGSL expression) from the storage buffers.
  // With xs: x's rows of the iteration are in xs (row u of 16: offset 16 u BP), the block at column sp + NB j.
  const xsOff = (u: number, j: number) => `${16 * u * BP}u + sp + ${NB * j}u`;
  const step = (k: string, u: number) => {
    const out: string[] = [];
    if (emulate) {
      for (const i of range(t.tm)) for (const j of range(t.tn)) {
        out.push(t.xs ? `    emuMmaX(${blk(i, j)}u, fa${i} * C + ${k}, ${xsOff(u, j)});` : `    emuMmaG(${blk(i, j)}u, fa${i} * C + ${k}, xb + (${k}) * P + pb${j});`);
      }
      return out;
    }
    for (const i of range(t.tm)) out.push(`    let a${i}_${u} = subgroupMatrixLoad<${L}, row_major>(&w, fa${i} * C + ${k}, C);`);
    for (const j of range(t.tn)) {
      out.push(t.xs ? `    let b${j}_${u} = subgroupMatrixLoad<${R}, row_major>(&xs, ${xsOff(u, j)}, ${BP}u);` : `    let b${j}_${u} = subgroupMatrixLoad<${R}, row_major>(&x, xb + (${k}) * P + pb${j}, P);`);
    }
    return out;
  };
  // xs: each thread's items of the 16 KU x BP copy (item q: element li + q T, row kk, column col), their offsets in
  // x from the iteration's first channel row computed once; all loads of an iteration issued before its stores.
  const XI = t.xs ? (16 * t.ku * BP) / T : 0;
  if (t.xs && !Number.isInteger(XI)) throw invalid(w, `x staging needs ${T} threads to divide a ${16 * t.ku} x ${BP} tile`);
  const xsPrologue = range(XI).map((q) => `  let xo${q} = ((li + ${q * T}u) / ${BP}u) * P + min(p0 + (((li + ${q * T}u) % ${BP}u) / NB) * NB, P - NB) + (li + ${q * T}u) % NB;`);
  const copyX = (k: string, rows: number) => {
    const n = (rows * BP) / T;
    return [
      ...range(n).map((q) => `    let u${q} = x[xb + (${k}) * P + xo${q}];`),
      ...range(n).map((q) => `    xs[li + ${q * T}u] = u${q};`),
      '    workgroupBarrier();',
    ];
  };
  const mmas = (u: number) => (emulate ? [] : range(t.tm).flatMap((i) => range(t.tn).map((j) => `    acc${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}_${u}, b${j}_${u}, acc${i}_${j});`)));
  const body: string[] = [];
  const loopEnd = Math.floor(KF / (16 * t.ku)) * 16 * t.ku;
  if (t.pf && t.xs) throw invalid(w, 'subgroup-matrix prefetch is for direct loads of x, not with x through workgroup memory');
  if (loopEnd > 0 && t.pf) {
    // Operands of iteration k in a / b (emulated: their offsets), copied to ca / cb before the next iteration's loads.
    const aOff = (k: string, u: number, i: number) => `fa${i} * C + ${k} + ${16 * u}u`;
    const bOff = (k: string, u: number, j: number) => `xb + (${k} + ${16 * u}u) * P + pb${j}`;
    const loadA = (k: string, u: number, i: number) => (emulate ? aOff(k, u, i) : `subgroupMatrixLoad<${L}, row_major>(&w, ${aOff(k, u, i)}, C)`);
    const loadB = (k: string, u: number, j: number) => (emulate ? bOff(k, u, j) : `subgroupMatrixLoad<${R}, row_major>(&x, ${bOff(k, u, j)}, P)`);
    for (const u of range(t.ku)) {
      body.push(...range(t.tm).map((i) => `  var a${i}_${u} = ${loadA('0u', u, i)};`), ...range(t.tn).map((j) => `  var b${j}_${u} = ${loadB('0u', u, j)};`));
    }
    body.push(`  for (var k = 0u; k < ${loopEnd}u; k += ${16 * t.ku}u) {`);
    for (const u of range(t.ku)) {
      body.push(...range(t.tm).map((i) => `    let ca${i}_${u} = a${i}_${u};`), ...range(t.tn).map((j) => `    let cb${j}_${u} = b${j}_${u};`));
    }
    const next = `k + ${16 * t.ku}u`;
    body.push(`    if (${next} < ${loopEnd}u) {`);
    for (const u of range(t.ku)) {
      body.push(...range(t.tm).map((i) => `      a${i}_${u} = ${loadA(next, u, i)};`), ...range(t.tn).map((j) => `      b${j}_${u} = ${loadB(next, u, j)};`));
    }
    body.push('    }');
    for (const u of range(t.ku)) {
      for (const i of range(t.tm)) for (const j of range(t.tn)) {
        body.push(emulate ? `    emuMmaG(${blk(i, j)}u, ca${i}_${u}, cb${j}_${u});` : `    acc${i}_${j} = subgroupMatrixMultiplyAccumulate(ca${i}_${u}, cb${j}_${u}, acc${i}_${j});`);
      }
    }
    body.push('  }');
  } else if (loopEnd > 0) {
    if (t.xs) {
      // The first iteration's x in registers; each iteration stores them, then loads the next one's before its products.
      body.push(...range(XI).map((q) => `  var v${q} = x[xb + xo${q}];`));
    }
    body.push(`  for (var k = 0u; k < ${loopEnd}u; k += ${16 * t.ku}u) {`);
    if (t.xs) {
      body.push(...range(XI).map((q) => `    xs[li + ${q * T}u] = v${q};`), '    workgroupBarrier();');
      body.push(`    if (k + ${16 * t.ku}u < ${loopEnd}u) {`, ...range(XI).map((q) => `      v${q} = x[xb + (k + ${16 * t.ku}u) * P + xo${q}];`), '    }');
    }
    // All loads of the iteration before its products (loads in flight).
    for (const u of range(t.ku)) body.push(...step(u ? `k + ${16 * u}u` : 'k', u));
    for (const u of range(t.ku)) body.push(...mmas(u));
    if (t.xs) body.push('    workgroupBarrier();');
    body.push('  }');
  }
  for (let k = loopEnd; k < KF; k += 16) body.push('  {', ...(t.xs ? copyX(`${k}u`, 16) : []), ...step(`${k}u`, 0), ...mmas(0), ...(t.xs ? ['    workgroupBarrier();'] : []), '  }');
  if (tail) {
    // The last partial step through workgroup memory, zeros past C: ta[(sg TM + i) 256 + r 16 + k] (block i of w's
    // rows), tb[(sg TN + j) 16 NB + k NB + c] (block j of x's positions), for every subgroup's blocks.
    const NA = NSG * t.tm * 256, NBt = NSG * t.tn * 16 * NB;
    body.push(`  for (var e = li; e < ${NA + NBt}u; e += ${T}u) {`);
    body.push(`    if (e < ${NA}u) {`);
    body.push(`      let s = e / ${t.tm * 256}u; let i = (e / 256u) % ${t.tm}u; let r = (e / 16u) % 16u; let k = ${KF}u + e % 16u;`);
    body.push(`      let f = min(f0 + (s / ${t.sgp}u) * ${16 * t.tm}u + 16u * i, F - 16u) + r;`);
    body.push('      ta[e] = select(f16(0.0), w[f * C + k], k < C);');
    body.push('    } else {');
    body.push(`      let e2 = e - ${NA}u;`);
    body.push(`      let s = e2 / ${t.tn * 16 * NB}u; let j = (e2 / ${16 * NB}u) % ${t.tn}u; let k = ${KF}u + (e2 / NB) % 16u; let c = e2 % NB;`);
    body.push(`      let p = min(p0 + (s % ${t.sgp}u) * ${NB * t.tn}u + NB * j, P - NB) + c;`);
    body.push('      tb[e2] = select(f16(0.0), x[xb + k * P + p], k < C);');
    body.push('    }');
    body.push('  }');
    body.push('  workgroupBarrier();');
    body.push('  {');
    if (emulate) {
      for (const i of range(t.tm)) for (const j of range(t.tn)) body.push(`    emuMmaT(${blk(i, j)}u, (sg * ${t.tm}u + ${i}u) * 256u, (sg * ${t.tn}u + ${j}u) * ${16 * NB}u);`);
    } else {
      for (const i of range(t.tm)) body.push(`    let a${i}_0 = subgroupMatrixLoad<${L}, row_major>(&ta, (sg * ${t.tm}u + ${i}u) * 256u, 16u);`);
      for (const j of range(t.tn)) body.push(`    let b${j}_0 = subgroupMatrixLoad<${R}, row_major>(&tb, (sg * ${t.tn}u + ${j}u) * ${16 * NB}u, NB);`);
      body.push(...mmas(0));
    }
    body.push('  }');
  }
  // Accumulators to rs[((sg TM + i) TN + j) 16 NB + r NB + c].
  const rsOff = (i: number, j: number) => `(sg * ${t.tm * t.tn}u + ${blk(i, j)}u) * ${16 * NB}u`;
  for (const i of range(t.tm)) for (const j of range(t.tn)) {
    body.push(emulate ? `  emuStore(${blk(i, j)}u, ${rsOff(i, j)});` : `  subgroupMatrixStore<row_major>(&rs, ${rsOff(i, j)}, acc${i}_${j}, NB);`);
  }
  body.push('  workgroupBarrier();');

  // Epilogue over the workgroup's BF x BP tile, row-major, V positions per item.
  const EN = (BF * BP) / V, EL = ceilDiv(EN, T);
  const vt = V === 1 ? 'f16' : `vec${V}<f16>`;
  const comp = (v: string, q: number) => (V === 1 ? v : `${v}[${q}]`);
  const lanes = range(V).map((q) => {
    const y = `act(f32(rs[ri + ${q}u])${g.hasBias ? ' + bf' : ''})`;
    return g.hasRes ? plusResidual(g.act, y, `f32(${comp('rv', q)})`) : y;
  });
  const epi = `
  for (var q = 0u; q < ${EL}u; q++) {
    let e = li + q * ${T}u;${EL * T > EN ? `\n    if (e >= ${EN}u) { break; }` : ''}
    let row = e / ${BP / V}u;
    let col = (e % ${BP / V}u) * ${V}u;
    let i = (row / 16u) % ${t.tm}u;
    let j = (col / NB) % ${t.tn}u;
    let s = (row / ${16 * t.tm}u) * ${t.sgp}u + col / ${NB * t.tn}u;
    let fn0 = f0 + (row / 16u) * 16u;
    let pn0 = p0 + (col / NB) * NB;
    let f = min(fn0, F - 16u) + row % 16u;
    let p = min(pn0, P - NB) + col % NB;
    // Only results at or after the block's nominal start: each output once (clamped blocks overlap).
    if (f >= fn0 && p >= pn0) {
      let ri = ((s * ${t.tm}u + i) * ${t.tn}u + j) * ${16 * NB}u + (row % 16u) * NB + col % NB;${g.hasBias ? '\n      let bf = f32(b[f]);' : ''}
      let o = ((n * F + f) * P + p)${V > 1 ? ` / ${V}u` : ''};${g.hasRes ? '\n      let rv = res[o];' : ''}
      out[o] = ${V === 1 ? `f16(${lanes[0]})` : `${vt}(vec${V}<f32>(${lanes.join(', ')}))`};
    }
  }`;

  const vecOf = new Set(V > 1 ? ['res', 'out'] : []);
  const decl = (nm: string, k: number, access: string) => `@group(0) @binding(${k}) var<storage, ${access}> ${nm}: array<${vecOf.has(nm) ? vt : 'f16'}>;`;
  const emuFns = `
// Emulation: lane l of a subgroup owns elements l, l + S, ... of each of its blocks (no lane reads another's), the
// sums in private memory; loads follow Dawn's robustness (a zero matrix where the whole matrix is not in the array).
var<private> lane: u32;
var<private> eacc: array<f32, ${t.tm * t.tn * QB}>;

fn emuAdd(blk: u32, q: u32, s: f32) {
  eacc[blk * ${QB}u + q] = ${t.acc === 'f32' ? 'eacc[blk * ' + QB + 'u + q] + s' : `f32(f16(eacc[blk * ${QB}u + q] + s))`};
}

fn emuMmaG(blk: u32, a: u32, bo: u32) {
  let aok = a + 15u * C + 16u <= arrayLength(&w);
  let bok = bo + 15u * P + NB <= arrayLength(&x);
  for (var q = 0u; q < ${QB}u; q++) {
    let e = lane + q * ${S}u;
    let r = e / NB;
    let c = e % NB;
    var s = 0.0;
    for (var k = 0u; k < 16u; k++) { s += select(0.0, f32(w[a + r * C + k]), aok) * select(0.0, f32(x[bo + k * P + c]), bok); }
    emuAdd(blk, q, s);
  }
}

${t.xs ? `fn emuMmaX(blk: u32, a: u32, bo: u32) {
  let aok = a + 15u * C + 16u <= arrayLength(&w);
  for (var q = 0u; q < ${QB}u; q++) {
    let e = lane + q * ${S}u;
    let r = e / NB;
    let c = e % NB;
    var s = 0.0;
    for (var k = 0u; k < 16u; k++) { s += select(0.0, f32(w[a + r * C + k]), aok) * f32(xs[bo + k * ${BP}u + c]); }
    emuAdd(blk, q, s);
  }
}

` : ''}${tail ? `fn emuMmaT(blk: u32, a: u32, bo: u32) {
  for (var q = 0u; q < ${QB}u; q++) {
    let e = lane + q * ${S}u;
    let r = e / NB;
    let c = e % NB;
    var s = 0.0;
    for (var k = 0u; k < 16u; k++) { s += f32(ta[a + r * 16u + k]) * f32(tb[bo + k * NB + c]); }
    emuAdd(blk, q, s);
  }
}

` : ''}fn emuStore(blk: u32, o: u32) {
  for (var q = 0u; q < ${QB}u; q++) {
    let e = lane + q * ${S}u;
    rs[o + e] = ${accT}(eacc[blk * ${QB}u + q]);
  }
}`;
  const wgsl = `enable f16;
${emulate ? '' : 'enable subgroups;\nenable chromium_experimental_subgroup_matrix;\n'}${names.map((n, k) => decl(n, k, 'read')).join('\n')}
${decl('out', names.length, 'read_write')}
${constsU32({ C: g.C, F: g.F, P: g.P, NB, FT, PT, TOTAL: total, DISPATCH_X: d.dispatchX })}
${g.act.fn}
// rs: each subgroup's accumulator blocks (16 x NB, row-major), for the epilogue.
var<workgroup> rs: array<${accT}, ${NSG * t.tm * t.tn * 16 * NB}>;
${tail ? `var<workgroup> ta: array<f16, ${NSG * t.tm * 256}>;\nvar<workgroup> tb: array<f16, ${NSG * t.tn * 16 * NB}>;` : ''}
${t.xs ? `// xs[r BP + c]: channel row r of the iteration, column c of the tile (the clamped blocks' positions).\nvar<workgroup> xs: array<f16, ${16 * t.ku * BP}>;` : ''}
${emulate ? emuFns : ''}

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32${emulate ? '' : ', @builtin(subgroup_id) sg: u32'}) {
  let g = wid.x + wid.y * DISPATCH_X;
  // Uniform per workgroup: returning here splits no barrier and no subgroup matrix operation.
  if (g >= TOTAL) { return; }
  let f0 = (g % FT) * ${BF}u;
  let p0 = ((g / FT) % PT) * ${BP}u;
  let n = g / (FT * PT);
  let xb = n * C * P;${emulate ? `
  let sg = li / ${S}u;
  lane = li % ${S}u;
  for (var e = 0u; e < ${t.tm * t.tn * QB}u; e++) { eacc[e] = 0.0; }` : ''}
  // This subgroup's blocks: filters sf.., positions sp.. of the tile.
  let sf = (sg / ${t.sgp}u) * ${16 * t.tm}u;
  let sp = (sg % ${t.sgp}u) * ${NB * t.tn}u;
${starts.join('\n')}
${xsPrologue.join('\n')}
${emulate ? '' : range(t.tm).flatMap((i) => range(t.tn).map((j) => `  var acc${i}_${j} = ${RES}();`)).join('\n')}
${body.join('\n')}
${epi}
}
`;
  return {
    name: label,
    cacheKey: cacheKey(emulate ? 'pointwise-smx-direct-emulated' : 'pointwise-smx-direct', g.N, g.C, g.F, g.P, +g.hasBias, +g.hasRes, g.act.key, smxTileKey(t), `S${S}`, `dx${d.dispatchX}`),
    wgsl, workgroupSize: [T, 1, 1], dispatch: d.dispatch, inputs, outputs: 1, workgroupStorageBytes: bytes,
  };
}

/**
 * The variants --tune may time on a layer (src/tune/tune.ts): every padded staged variant the device fits, and the direct
 * variants chooseSmxTiles may pick where the device's rule takes them (the device check, src/runtime/subgroup-matrix-check.ts,
 * runs exactly these; a variant it did not run is never offered), each where it applies to the layer.
 */
export function smxCandidates(g: Pick<DotGeom, 'N' | 'P' | 'F' | 'C'> & { hasScale?: boolean }, support: SubgroupMatrixSupport, limits: KernelLimits): SmxVariant[] {
  const staged = smxPaddedVariants.filter((t) => smxFits(t, support, limits));
  const direct = support.direct ? smxChosenDirectVariants().filter((t) => smxDirectAligned(g, t) && smxDirectApplies(g, t) && smxFits(t, support, limits, g.C)) : [];
  return [...staged, ...direct];
}
