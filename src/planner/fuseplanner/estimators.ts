// FusePlanner's cost models, ported as they are (faithful mode, `--mode fuseplanner`).
//
// Source: the FusePlanner reference's estimator_v2.py (paper arXiv 2404.19331, Section 5 "FusePlanner":
// GMA of layer-by-layer (LBL) DW and PW kernels and of the PW-DW, DW-PW and PW-PW FCMs, and the tile
// search that minimises it). Each function names the reference function it ports. The FusePlanner reference's quirks are kept
// on purpose (see test/planner/fuseplanner-reference/README.md and hw_configs/README.md); the
// default "optimal" mode (src/planner/optimal.ts) is where they are fixed. Do not "clean up" the
// arithmetic here: operation order and Python's int/float/floor semantics decide the exact numbers the
// reference estimates record, and test/planner/fuseplanner.test.ts compares against them.
//
// Units: sizes are elements (the FusePlanner reference's models are int8, so elements = bytes and it compares element
// counts with L1/shared-memory byte sizes directly; we keep that).
import { strideHW, type DagLayer } from '../dag.js';
import type { HwConfig } from '../hw-config.js';

/** The FusePlanner reference's `Splitting_and_fusion_info` dataclass (tiling_and_dm_info.py); -1 = unset. */
export interface SplittingAndFusionInfo {
  fused_with: number;
  l1_tile_h: number;
  l1_tile_w: number;
  l1_tile_d: number;
  l1_tile_filters: number;
  l2_tile_h: number;
  l2_tile_w: number;
  l2_tile_d: number;
  l2_tile_filters: number;
  total_dm: number;
  saved_dm: number;
  redundant_comp: number;
  redundant_comp_ratio: number;
}

function newInfo(): SplittingAndFusionInfo {
  return {
    fused_with: -1,
    l1_tile_h: -1, l1_tile_w: -1, l1_tile_d: -1, l1_tile_filters: -1,
    l2_tile_h: -1, l2_tile_w: -1, l2_tile_d: -1, l2_tile_filters: -1,
    total_dm: -1, saved_dm: -1, redundant_comp: -1, redundant_comp_ratio: 0,
  };
}

/** The FusePlanner reference's hardware parameters as its estimators read them: `int(hw['sms'])`, `int(hw['l1']) * 1024`. */
interface SeedHw { sms: number; l1: number; shmem: number }
const seedHw = (hw: HwConfig): SeedHw => ({ sms: hw.sms, l1: hw.l1BytesPerSm, shmem: hw.shmemBytesPerSm });

/** The FusePlanner reference's initial `min_gma` for fused and PW searches; a candidate with no viable tile keeps it. */
export const NO_VIABLE_TILE_GMA = 1000000000000;

// ---- Python semantics -------------------------------------------------------------------------------
/** Python `a // b` (floor division). */
const floorDiv = (a: number, b: number) => Math.floor(a / b);
/** Python `int(x)`: truncation toward zero. */
const pyInt = (x: number) => Math.trunc(x);
/** Python `math.log(x, 2)` is log(x) / log(2), not log2(x). */
const pyLog2 = (x: number) => Math.log(x) / Math.log(2);

/** builder_utils.least_pow_of_2_geq / utils.least_pow_of_2_geq. */
const leastPow2Geq = (n: number) => pyInt(Math.pow(2, Math.ceil(pyLog2(n))));
/** utils.pow_of_2_leq. */
const pow2Leq = (n: number) => pyInt(Math.pow(2, Math.floor(pyLog2(n))));
/** utils.is_pow_of_2 (on integers). */
const isPow2 = (n: number) => n !== 0 && (n & (n - 1)) === 0;

/** First number of filters per tile tried by the PW and FCM searches (seed: identical code in each). */
function firstFiltersPerTile(numFilters: number): number {
  return isPow2(numFilters) ? 1 : pyInt(numFilters / pow2Leq(numFilters));
}

// ---- Shared equations -------------------------------------------------------------------------------
/** estimator_v2.calculate_overlap: elements read twice at tile borders (halo), per channel. */
function calculateOverlap(ifmsH: number, ifmsW: number, filterDim: number, tileH: number, tileW: number, strides: number): number {
  if (filterDim <= strides || tileH > ifmsH) return 0;
  return (Math.ceil(ifmsH / tileH) - 1) * (filterDim - strides) * ifmsW
    + (Math.ceil(ifmsW / tileW) - 1) * (filterDim - strides) * ifmsH;
}

const enum Dim { none, height, width }

/** estimator_v2.adjust_tile_and_calculate_overlap: double the tile along one dimension; whole tile counts here. */
function adjustTile(ifmH: number, ifmW: number, filterDim: number, tileH: number, tileW: number, strides: number, dim: Dim) {
  if (dim === Dim.height) tileH *= 2;
  else if (dim === Dim.width) tileW *= 2;
  const tilesH = 1 + floorDiv(ifmH, tileH);
  const tilesW = 1 + floorDiv(ifmW, tileW);
  const overlap = filterDim > 1 ? calculateOverlap(ifmH, ifmW, filterDim, tileH, tileW, strides) : 0;
  return { tileH, tileW, tilesH, tilesW, overlap };
}

/** estimator_v2.dw_gma: LBL depthwise GMA (paper Sec. 5, DW cost). */
function dwGma(ifms: number, ofms: number, weights: number, weightTilesHw: number, overlap: number, tilesH: number, tilesW: number): number {
  return weightTilesHw * ifms + ofms + 2 * overlap + weights * (tilesH * tilesW);
}

/** estimator_v2.pw_gma: LBL pointwise GMA (paper Sec. 5, PW cost). */
function pwGma(ifms: number, ofms: number, weights: number, weightTiles: number, tilesH: number, tilesW: number): number {
  return weightTiles * ifms + ofms + weights * (tilesH * tilesW);
}

/** estimator_v2.pw_dw_gma: PW-DW FCM GMA (paper Sec. 5, FCM costs). */
function pwDwGma(ifms: number, ofms: number, pwWeights: number, dwWeights: number, pwWeightTiles: number, dwWeightTiles: number,
  overlap: number, tilesH: number, tilesW: number, pwIfmsD: number): number {
  return Math.max(pwWeightTiles, dwWeightTiles) * ifms + ofms + 2 * overlap * pwIfmsD
    + (pwWeights + dwWeights) * (tilesH * tilesW);
}

/** estimator_v2.dw_pw_gma: DW-PW FCM GMA (same form as PW-DW, overlap on the DW input depth). */
function dwPwGma(ifms: number, ofms: number, pwWeights: number, dwWeights: number, pwWeightTiles: number, dwWeightTiles: number,
  overlap: number, tilesH: number, tilesW: number, dwIfmsD: number): number {
  return Math.max(pwWeightTiles, dwWeightTiles) * ifms + ofms + 2 * overlap * dwIfmsD
    + (pwWeights + dwWeights) * (tilesH * tilesW);
}

/** estimator_v2.pw_pw_gma: PW-PW FCM GMA; the first layer's weights are re-read per second-layer filter tile. */
function pwPwGma(ifms: number, ofms: number, pw1Weights: number, pw2Weights: number, pw1WeightTiles: number, pw2WeightTiles: number,
  tilesH: number, tilesW: number): number {
  return Math.max(pw1WeightTiles, pw2WeightTiles) * ifms + ofms
    + (pw1Weights * pw2WeightTiles + pw2Weights) * (tilesH * tilesW);
}

/** estimator_v2.is_viable_tile: the tile fits shared memory and L1, and there are enough tiles for all SMs. */
function isViableTile(ifmsH: number, ifmsW: number, tileH: number, tileW: number, numTiles: number,
  weightsTile: number, ifmsTile: number, ofmsTile: number, hw: SeedHw): boolean {
  return tileH > 0 && tileW > 0
    && tileH <= leastPow2Geq(ifmsH) && tileW <= leastPow2Geq(ifmsW)
    && numTiles >= hw.sms
    && weightsTile + ifmsTile <= hw.shmem
    && weightsTile + ifmsTile + ofmsTile <= hw.l1;
}

const chw = (s: number[] | undefined) => s as [number, number, number];

/**
 * The one stride the FusePlanner reference's equations take. Its extractor records int(ifms W / ofms W), so a layer
 * with strides [sH, sW] (fcm-opt's per-axis form) counts with its W stride here, as the reference would have seen it.
 */
const seedStride = (l: DagLayer): number => strideHW(l)[1];

// ---- Layer-by-layer ----------------------------------------------------------------------------------
/** estimator_v2.dw_estimate_min_dm_v2. */
export function estimateDw(layer: DagLayer, hwConfig: HwConfig): SplittingAndFusionInfo {
  const hw = seedHw(hwConfig);
  const info = newInfo();
  const [ifmsD, ifmsH, ifmsW] = chw(layer.ifms_shape);
  const [ofmsD, ofmsH, ofmsW] = chw(layer.ofms_shape);
  const ws = layer.weights_shape!;
  const filterDim = ws[ws.length - 1];
  const weightsSize = ws[0] * ws[1] * ws[2];
  const strides = seedStride(layer);
  const ifmsSize = ifmsD * (ifmsH * ifmsW);
  const ofmsSize = ofmsD * ofmsH * ofmsW;

  const weightTilesHw = 1; // output-stationary dataflow
  const weightsTileSize = filterDim * filterDim;
  let tileH = leastPow2Geq(filterDim);
  let tilesH = ifmsH / tileH; // real-valued tile count (reference quirk)
  let tileW = leastPow2Geq(filterDim);
  let tilesW = ifmsW / tileW;
  const tileD = 1;
  info.l1_tile_d = tileD;
  // Reference quirk: the tile area is computed once; the loop never updates it.
  const tileHw = tileH * tileW;
  let ifmsTileSize = tileHw * tileD;
  let ofmsTileSize = ifmsTileSize / (strides * strides);
  let tilesHw = tilesH * tilesW;
  let overlap = calculateOverlap(ifmsH, ifmsW, filterDim, tileH, tileW, strides);
  const gma = dwGma(ifmsSize, ofmsSize, weightsSize, weightTilesHw, overlap, tilesH, tilesW);

  let iter = 0;
  let minGma = gma;
  info.l1_tile_h = tileH / strides;
  info.l1_tile_w = tileW / strides;
  info.l1_tile_filters = 1;
  info.total_dm = gma;
  while (isViableTile(ifmsH, ifmsW, tileH, tileW, tilesHw * ifmsD, weightsTileSize, ifmsTileSize, ofmsTileSize, hw)) {
    const a = adjustTile(ifmsH, ifmsW, filterDim, tileH, tileW, strides, iter % 2 === 0 ? Dim.width : Dim.height);
    ({ tileH, tileW, tilesH, tilesW, overlap } = a);
    const currentGma = dwGma(ifmsSize, ofmsSize, weightsSize, weightTilesHw, overlap, tilesH, tilesW);
    tilesHw = tilesH * tilesW;
    ifmsTileSize = tileHw * tileD;
    ofmsTileSize = ifmsTileSize / (strides * strides);
    if (currentGma < minGma) {
      minGma = currentGma;
      info.l1_tile_h = pyInt(tileH / strides);
      info.l1_tile_w = pyInt(tileW / strides);
      info.l1_tile_filters = 1;
      info.total_dm = currentGma;
    }
    iter += 1;
  }
  return info;
}

/** estimator_v2.pw_estimate_min_dm_v2. */
export function estimatePw(layer: DagLayer, hwConfig: HwConfig): SplittingAndFusionInfo {
  const hw = seedHw(hwConfig);
  const info = newInfo();
  const [ifmsD, ifmsH, ifmsW] = chw(layer.ifms_shape);
  const [ofmsD, ofmsH, ofmsW] = chw(layer.ofms_shape);
  const [numFilters, filterD] = layer.weights_shape!;
  const weightsSize = numFilters * filterD;
  const strides = seedStride(layer);
  const ifmsSize = ifmsD * (ifmsH * ifmsW);
  const ofmsSize = ofmsD * ofmsH * ofmsW;

  let minGma = NO_VIABLE_TILE_GMA;
  info.total_dm = minGma;
  let filtersPerTile = firstFiltersPerTile(numFilters);
  while (filtersPerTile < numFilters) {
    const weightsTileSize = filtersPerTile * filterD;
    const weightTiles = numFilters / filtersPerTile;
    let tileH = 1;
    let tilesH = ifmsH / tileH;
    let tileW = 1;
    let tilesW = ifmsW / tileW;
    const tileD = filterD;
    info.l1_tile_d = tileD;
    let tileHw = tileH * tileW;
    let ifmsTileSize = tileHw * tileD;
    let ofmsTileSize = tileHw * filtersPerTile / (strides * strides);
    let tilesHw = tilesH * tilesW;
    let allTiles = tilesHw * weightTiles;
    let iter = 0;
    if (isViableTile(ifmsH, ifmsW, tileH, tileW, allTiles, weightsTileSize, ifmsTileSize, ofmsTileSize, hw)) {
      const currentGma = pwGma(ifmsSize, ofmsSize, weightsSize, weightTiles, tilesH, tilesW);
      if (currentGma < minGma) {
        minGma = currentGma;
        info.l1_tile_h = tileH / strides;
        info.l1_tile_w = tileW / strides;
        info.l1_tile_filters = filtersPerTile;
        info.total_dm = currentGma;
      }
    }
    while (isViableTile(ifmsH, ifmsW, tileH, tileW, allTiles, weightsTileSize, ifmsTileSize, ofmsTileSize, hw)) {
      const a = adjustTile(ifmsH, ifmsW, 1, tileH, tileW, strides, iter % 2 === 0 ? Dim.width : Dim.height);
      ({ tileH, tileW, tilesH, tilesW } = a);
      const currentGma = pwGma(ifmsSize, ofmsSize, weightsSize, weightTiles, tilesH, tilesW);
      tilesHw = tilesH * tilesW;
      allTiles = tilesHw * weightTiles;
      tileHw = tileH * tileW;
      ifmsTileSize = tileHw * tileD;
      ofmsTileSize = tileHw * filtersPerTile / (strides * strides);
      if (currentGma < minGma) {
        minGma = currentGma;
        info.l1_tile_h = pyInt(tileH / strides);
        info.l1_tile_w = pyInt(tileW / strides);
        info.l1_tile_filters = filtersPerTile;
        info.total_dm = currentGma;
      }
      iter += 1;
    }
    filtersPerTile *= 2;
  }
  return info;
}

// ---- FCMs --------------------------------------------------------------------------------------------
/** estimator_v2.pw_dw_estimate_min_dm_v2 (PW-DW FCM). */
export function estimatePwDw(pw: DagLayer, dw: DagLayer, hwConfig: HwConfig): SplittingAndFusionInfo {
  const hw = seedHw(hwConfig);
  const info = newInfo();
  const [ifmsD, ifmsH, ifmsW] = chw(pw.ifms_shape);
  const [, dwIfmsH, dwIfmsW] = chw(dw.ifms_shape);
  const [ofmsD, ofmsH, ofmsW] = chw(dw.ofms_shape);
  const [pwFilters, pwFilterD] = pw.weights_shape!;
  const pwWeightsSize = pwFilters * pwFilterD;
  const dwWs = dw.weights_shape!;
  const dwWeightsSize = dwWs[0] * dwWs[1] * dwWs[2];
  const pwStrides = seedStride(pw);
  const dwFilterDim = dwWs[dwWs.length - 1];
  const dwStrides = seedStride(pw); // reference quirk: the DW stride is read from the PW layer
  const ifmsSize = ifmsD * (ifmsH * ifmsW);
  const ofmsSize = ofmsD * ofmsH * ofmsW;

  let minGma = NO_VIABLE_TILE_GMA;
  info.fused_with = dw.id;
  info.total_dm = minGma;
  // Reference: redundant computation of the halo recomputed by neighbouring tiles, relative to the module's work
  // (its `dw_ifms_w * dw_ifms_h * dw_ifms_w` term is kept as written).
  const redundantComp = (overlap: number) => overlap * ifmsD * pwFilters
    / ((ifmsSize * pwFilters) + (dwIfmsW * dwIfmsH * dwIfmsW) * dwFilterDim * dwFilterDim);
  let filtersPerTile = firstFiltersPerTile(pwFilters);
  while (filtersPerTile < pwFilters) {
    const pwWeightsTileSize = filtersPerTile * pwFilterD;
    const dwWeightsTileSize = filtersPerTile * dwFilterDim;
    const weightTiles = pwFilters / filtersPerTile;
    let commTileH = leastPow2Geq(dwFilterDim);
    let tileH = commTileH * pwStrides;
    let tilesH = ifmsH / tileH;
    let commTileW = leastPow2Geq(dwFilterDim);
    let tileW = commTileW * pwStrides;
    let tilesW = ifmsW / tileW;
    const dwTileD = filtersPerTile;
    const pwTileD = pwFilterD;
    info.l1_tile_d = pwTileD;
    info.l2_tile_d = dwTileD;
    let tileHw = tileH * tileW;
    let ifmsTileSize = Math.min(tileHw * pwTileD, tileH * ifmsW * pwTileD);
    let commTileSize = Math.min(commTileH * commTileW * dwTileD, commTileH * (ifmsW / pwStrides) * dwTileD);
    let ofmsTileSize = commTileSize / (dwStrides * dwStrides);
    let tilesHw = tilesH * tilesW;
    let allTiles = tilesHw * weightTiles;
    // Reference: the first overlap uses the width tile for both dimensions.
    let overlap = adjustTile(dwIfmsH, dwIfmsW, dwFilterDim, commTileW, commTileW, dwStrides, Dim.none).overlap;

    const viable = () => isViableTile(ifmsH, ifmsW, tileH, tileW, allTiles, pwWeightsTileSize + dwWeightsTileSize,
      ifmsTileSize + commTileSize, ofmsTileSize, hw);
    if (viable()) {
      const currentGma = pwDwGma(ifmsSize, ofmsSize, pwWeightsSize, dwWeightsSize, weightTiles, weightTiles, overlap,
        tilesH, tilesW, pwFilterD);
      if (currentGma <= minGma) {
        minGma = currentGma;
        info.l1_tile_h = tileH / pwStrides;
        info.l1_tile_w = tileW / pwStrides;
        info.l1_tile_filters = filtersPerTile;
        info.l2_tile_h = tileH / (dwStrides * pwStrides);
        info.l2_tile_w = tileW / (dwStrides * pwStrides);
        info.l2_tile_filters = filtersPerTile;
        info.total_dm = currentGma;
        info.redundant_comp = redundantComp(overlap);
      }
    }
    let iter = 0;
    while (viable()) {
      const a = adjustTile(dwIfmsH, dwIfmsW, dwFilterDim, commTileH, commTileW, dwStrides, iter % 2 === 0 ? Dim.width : Dim.height);
      commTileH = a.tileH; commTileW = a.tileW; tilesH = a.tilesH; tilesW = a.tilesW; overlap = a.overlap;
      const currentGma = pwDwGma(ifmsSize, ofmsSize, pwWeightsSize, dwWeightsSize, weightTiles, weightTiles, overlap,
        tilesH, tilesW, pwFilterD);
      tileH = commTileH * pwStrides;
      tileW = commTileW * pwStrides;
      tileHw = tileH * tileW;
      ifmsTileSize = Math.min(tileHw * pwTileD, tileH * ifmsW * pwTileD);
      commTileSize = Math.min(commTileH * commTileW * dwTileD, commTileH * (ifmsW / pwStrides) * dwTileD);
      ofmsTileSize = commTileSize / (dwStrides * dwStrides);
      tilesHw = tilesH * tilesW;
      allTiles = tilesHw * weightTiles;
      if (currentGma <= minGma) {
        minGma = currentGma;
        info.l1_tile_h = tileH;
        info.l1_tile_w = tileW;
        info.l1_tile_filters = filtersPerTile;
        info.l2_tile_h = tileH / (dwStrides * pwStrides);
        info.l2_tile_w = tileW / (dwStrides * pwStrides);
        info.l2_tile_filters = weightTiles; // reference quirk: the number of filter tiles, not their size
        info.total_dm = currentGma;
        info.redundant_comp = redundantComp(overlap);
      }
      iter += 1;
    }
    filtersPerTile *= 2;
  }
  return info;
}

/** estimator_v2.dw_pw_estimate_min_dm_v2 (DW-PW FCM). */
export function estimateDwPw(dw: DagLayer, pw: DagLayer, hwConfig: HwConfig): SplittingAndFusionInfo {
  const hw = seedHw(hwConfig);
  const info = newInfo();
  const [ifmsD, ifmsH, ifmsW] = chw(pw.ifms_shape); // seed: the module's input size is taken from the PW layer
  const [dwIfmsD, dwIfmsH, dwIfmsW] = chw(dw.ifms_shape);
  const [ofmsD, ofmsH, ofmsW] = chw(dw.ofms_shape); // seed: and its output size from the DW layer
  const [pwFilters, pwFilterD] = pw.weights_shape!;
  const pwWeightsSize = pwFilters * pwFilterD;
  const dwWs = dw.weights_shape!;
  const dwWeightsSize = dwWs[0] * dwWs[1] * dwWs[2];
  const pwStrides = seedStride(pw);
  const dwFilterDim = dwWs[dwWs.length - 1];
  const dwStrides = seedStride(pw); // reference quirk: the DW stride is read from the PW layer
  const ifmsSize = ifmsD * (ifmsH * ifmsW);
  const ofmsSize = ofmsD * ofmsH * ofmsW;

  let minGma = NO_VIABLE_TILE_GMA;
  info.total_dm = minGma;
  info.fused_with = pw.id;
  let filtersPerTile = firstFiltersPerTile(pwFilters);
  while (filtersPerTile < pwFilters) {
    const pwWeightsTileSize = filtersPerTile * pwFilterD;
    const dwWeightsTileSize = filtersPerTile * dwFilterDim;
    const weightTiles = pwFilters / filtersPerTile;
    let commTileH = 1;
    let tileH = commTileH * dwStrides + dwFilterDim - dwStrides;
    let tilesH = ifmsH / tileH;
    let commTileW = 1;
    let tileW = commTileW * dwStrides + dwFilterDim - dwStrides;
    let tilesW = ifmsW / tileW;
    const dwTileD = dwIfmsD;
    const pwTileD = pwFilterD;
    info.l1_tile_d = dwTileD;
    info.l2_tile_d = pwTileD;
    let tileHw = tileH * tileW;
    let ifmsTileSize = Math.min(tileHw * dwTileD, tileH * ifmsW * dwTileD);
    let commTileSize = Math.min(commTileH * commTileW * pwTileD, commTileH * (ifmsW / pwStrides) * pwTileD);
    let ofmsTileSize = commTileSize / (pwStrides * pwStrides);
    let tilesHw = tilesH * tilesW;
    let allTiles = tilesHw * weightTiles;
    let overlap = adjustTile(dwIfmsH, dwIfmsW, 1, tileH, tileW, dwStrides, Dim.none).overlap;

    const viable = () => isViableTile(ifmsH, ifmsW, tileH, tileW, allTiles, pwWeightsTileSize + dwWeightsTileSize,
      ifmsTileSize + commTileSize, ofmsTileSize, hw);
    const record = (gma: number) => {
      info.l1_tile_h = tileH;
      info.l1_tile_w = tileW;
      info.l1_tile_filters = filtersPerTile;
      info.l2_tile_h = tileH / (dwStrides * pwStrides);
      info.l2_tile_w = tileW / (dwStrides * pwStrides);
      info.l2_tile_filters = filtersPerTile;
      info.total_dm = gma;
    };
    if (viable()) {
      const currentGma = dwPwGma(ifmsSize, ofmsSize, pwWeightsSize, dwWeightsSize, weightTiles, 1, overlap, tilesH, tilesW, dwIfmsD);
      if (currentGma <= minGma) {
        minGma = currentGma;
        record(currentGma);
      }
    }
    let iter = 0;
    while (viable()) {
      // Reference quirk: it doubles the *input* tile and stores the result as the intermediate tile, which it
      // then multiplies by the stride again, so tiles grow by 2 x stride per step.
      const a = adjustTile(dwIfmsH, dwIfmsW, 1, tileH, tileW, dwStrides, iter % 2 === 0 ? Dim.width : Dim.height);
      commTileH = a.tileH; commTileW = a.tileW; tilesH = a.tilesH; tilesW = a.tilesW; overlap = a.overlap;
      const currentGma = dwPwGma(ifmsSize, ofmsSize, pwWeightsSize, dwWeightsSize, weightTiles, 1, overlap, tilesH, tilesW, dwIfmsD);
      tileH = commTileH * dwStrides;
      tileW = commTileW * dwStrides;
      tileHw = tileH * tileW;
      ifmsTileSize = Math.min(tileHw * dwTileD, tileH * ifmsW * dwTileD);
      commTileSize = Math.min(commTileH * commTileW * dwTileD, commTileH * (ifmsW / dwStrides) * dwTileD);
      ofmsTileSize = commTileSize / (dwStrides * dwStrides);
      tilesHw = tilesH * tilesW;
      allTiles = tilesHw * weightTiles;
      if (currentGma <= minGma) {
        minGma = currentGma;
        record(currentGma);
      }
      iter += 1;
    }
    filtersPerTile *= 2;
  }
  return info;
}

/** estimator_v2.pw_pw_estimate_min_dm_v2 (PW-PW FCM). */
export function estimatePwPw(pw1: DagLayer, pw2: DagLayer, hwConfig: HwConfig): SplittingAndFusionInfo {
  const hw = seedHw(hwConfig);
  const info = newInfo();
  const [ifmsD1, ifmsH1, ifmsW1] = chw(pw1.ifms_shape);
  const [ofmsD, ofmsH, ofmsW] = chw(pw2.ofms_shape);
  const [pw1Filters, pw1FilterD] = pw1.weights_shape!;
  const [pw2Filters, pw2FilterD] = pw2.weights_shape!;
  const pw1WeightsSize = pw1Filters * pw1FilterD;
  const pw2WeightsSize = pw2Filters * pw2FilterD;
  const pw1WeightsTileSize = pw1WeightsSize; // the whole first layer's weights stay on chip
  const pw1Strides = seedStride(pw1);
  const pw2Strides = seedStride(pw2);
  const ifmsSize = ifmsD1 * (ifmsH1 * ifmsW1);
  const ofmsSize = ofmsD * ofmsH * ofmsW;

  let minGma = NO_VIABLE_TILE_GMA;
  info.fused_with = pw2.id;
  info.l1_tile_filters = pw1Filters;
  info.total_dm = minGma;
  let filtersPerTile = firstFiltersPerTile(pw2Filters);
  while (filtersPerTile < pw2Filters) {
    const pw2WeightsTileSize = filtersPerTile * pw2FilterD;
    const weightTiles = pw2Filters / filtersPerTile;
    let commTileH = 1;
    let tileH = commTileH * pw1Strides;
    let tilesH = ifmsH1 / tileH;
    let commTileW = 1;
    let tileW = commTileW * pw1Strides;
    let tilesW = ifmsW1 / tileW;
    const pw2TileD = pw2FilterD;
    const pw1TileD = pw1FilterD;
    info.l1_tile_d = pw1TileD;
    info.l2_tile_d = pw2TileD;
    let tileHw = tileH * tileW;
    let ifmsTileSize = Math.min(tileHw * pw1TileD, tileH * ifmsW1 * pw1TileD);
    let commTileSize = Math.min(commTileH * commTileW * pw2TileD, commTileH * (ifmsW1 / pw1Strides) * pw2TileD);
    let ofmsTileSize = commTileSize / (pw2Strides * pw2Strides);
    let tilesHw = tilesH * tilesW;
    let allTiles = tilesHw * weightTiles;

    const viable = () => isViableTile(ifmsH1, ifmsW1, tileH, tileW, allTiles, pw2WeightsTileSize + pw1WeightsTileSize,
      ifmsTileSize + commTileSize, ofmsTileSize, hw);
    const record = (gma: number) => {
      info.l1_tile_h = tileH;
      info.l1_tile_w = tileW;
      info.l2_tile_h = tileH / (pw1Strides * pw2Strides);
      info.l2_tile_w = tileW / (pw1Strides * pw2Strides);
      info.l2_tile_filters = filtersPerTile;
      info.total_dm = gma;
    };
    if (viable()) {
      const currentGma = pwPwGma(ifmsSize, ofmsSize, pw1WeightsSize, pw2WeightsSize, 1, weightTiles, tilesH, tilesW);
      if (currentGma <= minGma) {
        minGma = currentGma;
        record(currentGma);
      }
    }
    let iter = 0;
    while (viable()) {
      const a = adjustTile(ifmsH1, ifmsW1, 1, tileH, tileW, pw1Strides, iter % 2 === 0 ? Dim.width : Dim.height);
      commTileH = a.tileH; commTileW = a.tileW; tilesH = a.tilesH; tilesW = a.tilesW;
      const currentGma = pwPwGma(ifmsSize, ofmsSize, pw1WeightsSize, pw2WeightsSize, 1, weightTiles, tilesH, tilesW);
      tileH = commTileH * pw1Strides;
      tileW = commTileW * pw1Strides;
      tileHw = tileH * tileW;
      ifmsTileSize = Math.min(tileHw * pw1TileD, tileH * ifmsW1 * pw1TileD);
      commTileSize = Math.min(commTileH * commTileW * pw2TileD, commTileH * (ifmsW1 / pw1Strides) * pw2TileD);
      ofmsTileSize = commTileSize / (pw1Strides * pw1Strides);
      tilesHw = tilesH * tilesW;
      allTiles = tilesHw * weightTiles;
      if (currentGma <= minGma) {
        minGma = currentGma;
        record(currentGma);
      }
      iter += 1;
    }
    filtersPerTile *= 2;
  }
  return info;
}
