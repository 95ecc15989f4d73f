// fcm-opt's own cost models for the optimal planner: global memory accesses (GMA) of layer-by-layer (LBL)
// convolutions and of the Fused Convolutional Modules PW-DW, DW-PW and PW-PW, their tile searches, and a
// roofline time estimate when the GPU description gives bandwidth, throughput and dispatch overhead.
//
// Derived from the FusePlanner reference's models (estimator_v2.py: dw_gma, pw_gma, pw_dw_gma, dw_pw_gma, pw_pw_gma,
// is_viable_tile and the *_estimate_min_dm_v2 tile searches; the paper's FusePlanner cost models of LBL and
// FCM global memory accesses) with these changes, each explained in docs/planner.md:
// - every layer's own stride, padding and dilation (the FusePlanner reference reads the DW stride from the PW layer and
//   assumes SAME-like padding through a real-valued overlap term);
// - whole tile counts (ceil) and integer tile sizes; input reads summed exactly over the tiles, halos
//   (the FusePlanner reference's `2 * overlap`) included, clipped at the borders;
// - weights re-read per filter tile where the kernel must (DW weights in DW-PW);
// - tile memory in bytes (data width) against min(shared memory, WebGPU workgroup storage);
// - standard and fully-connected layers estimated too, so totals cover the model's whole conv part.
// GMA is counted in elements, as in the FusePlanner reference; bytes = GMA * data width.

import { dilationHW, fcWeightsShape, strideHW, type ConvType, type DagLayer } from './dag.js';
import type { HwConfig } from './hw-config.js';
import type { ModuleKind, Tiles } from './plan.js';
import { invalid } from '../errors.js';

/** One spatial axis of a convolution: input/output sizes, kernel, stride, dilation, leading pad. */
export interface Axis {
  in: number;
  out: number;
  k: number;
  s: number;
  d: number;
  /** Padding before the first element (top or left). */
  p: number;
}

/** A conv layer as the cost models read it. */
export interface ConvSpec {
  id: number;
  name: string;
  type: ConvType;
  /** Input channels, output channels (filters), input channels per filter (C / group). */
  c: number;
  f: number;
  cPerFilter: number;
  h: Axis;
  w: Axis;
  /** Weight elements. */
  weights: number;
  /** True when the DAG gave no padding and it was derived SAME-like from the shapes. */
  padsDerived: boolean;
}

/** What a cost evaluation needs besides the layers. */
export interface CostContext {
  hw: HwConfig;
  /** Bytes per element of activations and weights in global memory (GMA, time): 4 fp32, 2 fp16, 1 int8. */
  dtypeBytes: number;
  /** Bytes per element of a tile in shared memory (default dtypeBytes): the fp16 kernels stage their tiles in f32. */
  tileBytes?: number;
  /** 'time' needs hw.dramGBps, fp32Gflops and dispatchOverheadUs. */
  objective: 'gma' | 'time';
  /**
   * Images per inference (default 1). The layer DAG describes one image; the kernels launch one set of tiles per
   * image, so in the time objective's roofline bytes, flops and workgroups scale with the batch and the dispatch
   * overhead does not (at batch 8 the per-image estimate sat on the dispatch term and ranked the modules
   * badly). GMA figures and the GMA objective stay per image.
   */
  batch?: number;
}

/** The best tiles of one module and what they cost. */
export interface ModuleCost {
  kind: ModuleKind;
  tiles: Tiles;
  /** Global memory accesses in elements. */
  gma: number;
  /** Floating-point operations, redundant (recomputed) work of FCMs included. */
  flops: number;
  /** Flops an FCM recomputes beyond its two layers run LBL (halo of PW-DW, DW per filter tile of DW-PW...). */
  redundantFlops: number;
  /** Workgroups (tiles) one dispatch launches. */
  workgroups: number;
  dispatches: number;
  /** Output elements per image (of the module's last layer): the parallelism the executor's kernels have. */
  outputs: number;
  /** Roofline estimate in microseconds (objective 'time' only). */
  timeUs?: number;
}

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

/** True when the description allows the roofline time model. */
export function hasTimeModel(hw: HwConfig): boolean {
  return (hw.dramGBps ?? 0) > 0 && (hw.fp32Gflops ?? 0) > 0 && hw.dispatchOverheadUs !== undefined;
}

/** Shared memory one workgroup may use, in bytes: the SM's, and WebGPU's workgroup storage when known. */
export function tileMemoryLimit(hw: HwConfig): number {
  return hw.workgroupStorageBytes !== undefined ? Math.min(hw.shmemBytesPerSm, hw.workgroupStorageBytes) : hw.shmemBytesPerSm;
}

// ---------------------------------------------------------------------------------------------------------
// Layers

/**
 * Reads a conv layer of the DAG. `extraPads` [t, l, b, r] is a zero Pad layer folded in front of it
 * (TFLite writes pad layers before stride-2 depthwise convolutions); `inputHW` is then the unpadded size.
 */
export function convSpec(layer: DagLayer, where: string, extraPads?: number[], inputHW?: [number, number]): ConvSpec {
  const at = `${where}: layer ${layer.id} ('${layer.name}')`;
  const type = layer.type;
  if (type !== 's' && type !== 'dw' && type !== 'pw' && type !== 'fc') throw invalid(at, 'is not a conv layer');
  // fc layers of the FusePlanner reference's extractor have no weights_shape: [F, C] from their shapes.
  const ws = type === 'fc' ? fcWeightsShape(layer) : layer.weights_shape;
  if (!ws) throw invalid(at, `'${type}' layer has no weights_shape`);
  const weights = ws.reduce((a, b) => a * b, 1);
  if (type === 'fc') {
    // [F, C] applied to `rows` vectors (ONNX DAGs record [C, rows, 1]; the FusePlanner reference's none): a 1x1 conv.
    const [f, c] = ws;
    const rows = layer.ifms_shape?.length === 3 ? layer.ifms_shape[1] * layer.ifms_shape[2] : 1;
    const h: Axis = { in: rows, out: rows, k: 1, s: 1, d: 1, p: 0 };
    const one: Axis = { in: 1, out: 1, k: 1, s: 1, d: 1, p: 0 };
    return { id: layer.id, name: layer.name, type, c, f, cPerFilter: c, h, w: one, weights, padsDerived: false };
  }
  const [c, ih, iw] = need3(layer.ifms_shape, at, 'ifms_shape');
  const [f, oh, ow] = need3(layer.ofms_shape, at, 'ofms_shape');
  const kh = type === 'pw' ? 1 : ws[ws.length - 2];
  const kw = type === 'pw' ? 1 : ws[ws.length - 1];
  const cPerFilter = type === 'dw' ? 1 : ws[1];
  // Per axis: the DAG's stride and dilation are one number (the FusePlanner reference's form) or [H, W].
  let [sh, sw] = strideHW(layer);
  const [dh, dw] = dilationHW(layer);
  const h = inputHW ? inputHW[0] : ih;
  const w = inputHW ? inputHW[1] : iw;
  const expect = (n: number, k: number, p: number, s: number, d: number) => Math.floor((n + p - (k - 1) * d - 1) / s) + 1;
  let pads: number[];
  let padsDerived = false;
  if (Array.isArray(layer.pads) && layer.pads.length === 4) {
    pads = layer.pads;
  } else if (layer.padding_top !== undefined || layer.padding_left !== undefined) {
    pads = [layer.padding_top ?? 0, layer.padding_left ?? 0, layer.padding_bottom ?? 0, layer.padding_right ?? 0];
  } else {
    // No padding recorded (the FusePlanner reference's DAGs): the smallest padding that yields the recorded output size,
    // split SAME-like (the extra row/column at the end). The FusePlanner reference's extractor records stride 1 for some
    // strided 1x1 convolutions (Xception's shortcuts): when the shapes need a larger stride, take the
    // smallest stride that gives the recorded output size with SAME padding.
    if (Math.ceil(ih / sh) !== oh && expect(ih, kh, 0, sh, dh) !== oh) {
      for (let t = 1; t <= Math.max(ih, iw); t++) {
        if (Math.ceil(ih / t) === oh && Math.ceil(iw / t) === ow) {
          sh = sw = t;
          break;
        }
      }
    }
    const ph = Math.max(0, (oh - 1) * sh + (kh - 1) * dh + 1 - ih);
    const pw = Math.max(0, (ow - 1) * sw + (kw - 1) * dw + 1 - iw);
    pads = [Math.floor(ph / 2), Math.floor(pw / 2), ph - Math.floor(ph / 2), pw - Math.floor(pw / 2)];
    padsDerived = true;
  }
  if (extraPads) pads = pads.map((p, i) => p + extraPads[i]);
  // A single recorded stride is one axis's: the FusePlanner reference's extractor records int(ifms W / ofms W), older
  // fcm-opt DAGs kept the H stride of strides [2, 1]. When it holds along one axis but not the other, the other axis
  // takes the whole stride that gives its output, if one does; when it holds along neither, the layer is inconsistent.
  if (!Array.isArray(layer.strides)) {
    const hOk = expect(h, kh, pads[0] + pads[2], sh, dh) === oh, wOk = expect(w, kw, pads[1] + pads[3], sw, dw) === ow;
    if (hOk && !wOk) sw = axisStride(w, kw, pads[1] + pads[3], dw, ow) ?? sw;
    if (wOk && !hOk) sh = axisStride(h, kh, pads[0] + pads[2], dh, oh) ?? sh;
  }
  // The recorded output size must follow from the geometry; otherwise the DAG is inconsistent.
  if (expect(h, kh, pads[0] + pads[2], sh, dh) !== oh || expect(w, kw, pads[1] + pads[3], sw, dw) !== ow) {
    const st = sh === sw ? `${sh}` : `[${sh}, ${sw}]`, dl = dh === dw ? `${dh}` : `[${dh}, ${dw}]`;
    throw invalid(at, `output [${oh}, ${ow}] does not follow from input [${h}, ${w}], kernel ${kh}x${kw}, stride ${st}, dilation ${dl}, pads [${pads.join(', ')}]`);
  }
  return {
    id: layer.id, name: layer.name, type, c, f, cPerFilter,
    h: { in: h, out: oh, k: kh, s: sh, d: dh, p: pads[0] },
    w: { in: w, out: ow, k: kw, s: sw, d: dw, p: pads[1] },
    weights, padsDerived,
  };
}

/**
 * The stride along one axis that gives `out` outputs from `n` inputs (padding p in all, kernel k, dilation d): the
 * recorded-stride check's fallback. The smallest such stride; undefined when none does.
 */
function axisStride(n: number, k: number, p: number, d: number, out: number): number | undefined {
  const span = n + p - (k - 1) * d - 1;
  if (span < 0 || out < 1) return undefined;
  // floor(span / s) + 1 === out  <=>  span / out < s <= span / (out - 1)
  const lo = Math.floor(span / out) + 1;
  const hi = out > 1 ? Math.floor(span / (out - 1)) : Math.max(lo, span + 1);
  return lo <= hi ? lo : undefined;
}

function need3(v: number[] | undefined, at: string, field: string): number[] {
  if (!v || v.length !== 3) throw invalid(at, `'${field}' must be [C, H, W]`);
  return v;
}

/** MACs of one layer run LBL, x2 = flops. */
export function layerFlops(l: ConvSpec): number {
  return 2 * l.f * l.cPerFilter * l.h.k * l.w.k * l.h.out * l.w.out;
}

// ---------------------------------------------------------------------------------------------------------
// Tile geometry along one axis

/** A set of indices inside [lo, hi]: all of them (mark undefined) or those whose mark[i - lo] is 1. */
interface IndexSet {
  lo: number;
  hi: number;
  mark?: Uint8Array;
}

/**
 * The input indices (inside [0, in)) that the outputs in `src` read. Marks only the window the set can
 * read, in a typed array: a mark array of the whole axis per tile, or JS lists, made tiling wide layers
 * take seconds (fuzz crash E, RELIABILITY.md).
 */
function readSet(src: IndexSet, a: Axis): IndexSet {
  // No outputs (a tile whose window lay wholly in the padding of the layer after) read nothing.
  if (src.hi < src.lo) return { lo: 0, hi: -1 };
  const lo = Math.max(0, src.lo * a.s - a.p);
  const hi = Math.min(a.in - 1, src.hi * a.s - a.p + (a.k - 1) * a.d);
  if (hi < lo) return { lo: 0, hi: -1 };
  if (!src.mark && a.d === 1 && (a.s <= a.k || src.lo === src.hi)) return { lo, hi };
  const mark = new Uint8Array(hi - lo + 1);
  for (let o = src.lo; o <= src.hi; o++) {
    if (src.mark && !src.mark[o - src.lo]) continue;
    const base = o * a.s - a.p - lo;
    for (let j = 0; j < a.k; j++) {
      const i = base + j * a.d;
      if (i >= 0 && i < mark.length) mark[i] = 1;
    }
  }
  // Trim to the first and last index read, so that lo and hi are members.
  let b = 0, e = mark.length - 1;
  while (b <= e && !mark[b]) b++;
  while (e >= b && !mark[e]) e--;
  if (b > e) return { lo: 0, hi: -1 };
  return { lo: lo + b, hi: lo + e, mark: mark.subarray(b, e + 1) };
}

function setSize(x: IndexSet): number {
  if (x.hi < x.lo) return 0;
  if (!x.mark) return x.hi - x.lo + 1;
  let n = 0;
  for (let i = 0; i < x.mark.length; i++) n += x.mark[i];
  return n;
}

/** Input indices (sorted, distinct, inside [0, in)) that the outputs `outIdx` (sorted) read. */
export function readIndices(outIdx: readonly number[], a: Axis): number[] {
  if (outIdx.length === 0) return [];
  const lo = outIdx[0], hi = outIdx[outIdx.length - 1];
  const mark = new Uint8Array(hi - lo + 1);
  for (const o of outIdx) mark[o - lo] = 1;
  const r = readSet({ lo, hi, mark }, a);
  const out: number[] = [];
  for (let i = r.lo; i <= r.hi; i++) if (!r.mark || r.mark[i - r.lo]) out.push(i);
  return out;
}

/**
 * Tiling of one axis with output tile size `t`, through a chain of layers (last layer first): the number
 * of tiles, and for each level the sum over tiles and the maximum per tile of the indices read
 * (level 0 = the input of the last layer, level 1 = the input of the layer before it).
 */
export interface AxisTiling {
  tiles: number;
  sum: number[];
  max: number[];
}

const axisCache = new Map<string, AxisTiling>();

export function tileAxis(t: number, axes: readonly Axis[]): AxisTiling {
  const key = `${t}|${axes.map((a) => `${a.in},${a.out},${a.k},${a.s},${a.d},${a.p}`).join('|')}`;
  const hit = axisCache.get(key);
  if (hit) return hit;
  if (axisCache.size > 100_000) axisCache.clear();
  const r = computeTileAxis(t, axes);
  axisCache.set(key, r);
  return r;
}

function computeTileAxis(t: number, axes: readonly Axis[]): AxisTiling {
  const out = axes[0].out;
  const tiles = ceilDiv(out, t);
  const sum = axes.map(() => 0);
  const max = axes.map(() => 0);
  const add = (c: TileCount, times: number) => c.n.forEach((n, level) => { sum[level] += n * times; max[level] = Math.max(max[level], n); });
  // A full tile that no level clips at a border reads the same counts as any other such tile (its index
  // sets are the first one's, shifted), and clipping only happens in a prefix and a suffix of the tiles.
  // So only the border tiles are walked one by one and the interior is counted once: the cost is bounded
  // by the halo, not by the dims (a 2^24-wide layer took seconds per tiling, fuzz crash E).
  const full = Math.floor(out / t);
  let first = 0;
  let interior: TileCount | undefined;
  for (; first < tiles; first++) {
    const c = countTile(first, t, axes);
    if (first < full && !c.clipped) { interior = c; break; }
    add(c, 1);
  }
  if (!interior) return { tiles, sum, max };
  let last = tiles - 1;
  for (; last > first; last--) {
    const c = countTile(last, t, axes);
    if (last < full && !c.clipped) break;
    add(c, 1);
  }
  // Tiles first..last are full and unclipped: first's counts, (last - first + 1) times.
  add(interior, last - first + 1);
  return { tiles, sum, max };
}

interface TileCount {
  /** Input indices read per level. */
  n: number[];
  /** True when some level's window crossed a border (reads clipped at 0 or at the input size). */
  clipped: boolean;
}

/** The indices tile i (output size t) reads at each level of the chain. */
function countTile(i: number, t: number, axes: readonly Axis[]): TileCount {
  let set: IndexSet = { lo: i * t, hi: Math.min(axes[0].out, (i + 1) * t) - 1 };
  let clipped = false;
  const n = axes.map((a) => {
    if (set.hi >= set.lo && (set.lo * a.s - a.p < 0 || set.hi * a.s - a.p + (a.k - 1) * a.d > a.in - 1)) clipped = true;
    set = readSet(set, a);
    return setSize(set);
  });
  return { n, clipped };
}

/**
 * Most tiles along one axis a tile size may give. tileAxis walks every tile, so this bounds the search by
 * the dims (a DAG with a 2^24-wide layer would otherwise walk millions of 1-wide tiles, fuzz crash E);
 * real layers (under 4,096 per axis) never reach it, so their searches are unchanged.
 */
export const maxTilesPerAxis = 4096;

/** Tile sizes tried along a dimension of size n: powers of two below n giving at most maxTilesPerAxis
 *  tiles, and n itself. */
export function tileSizes(n: number): number[] {
  const sizes: number[] = [];
  for (let t = 1; t < n; t *= 2) if (ceilDiv(n, t) <= maxTilesPerAxis) sizes.push(t);
  sizes.push(n);
  return sizes;
}

// ---------------------------------------------------------------------------------------------------------
// Modules: the GMA of given tiles

/** One tile choice evaluated: what the search compares. */
interface Evaluated {
  tiles: Tiles;
  gma: number;
  flops: number;
  redundantFlops: number;
  workgroups: number;
  /**
   * Shared-memory elements of one workgroup for a depth step d (input channels per step):
   * smemFixed + smemPerDepth * d + smemCapped * min(d, smemCap). Plain numbers, no closure per tile.
   */
  smemFixed: number;
  smemPerDepth: number;
  smemCapped: number;
  smemCap: number;
  /** L1 elements (shared + the output tile kept in registers/L1), as in the FusePlanner reference's is_viable_tile. */
  outTile: number;
  depth: number;
}

type Evaluator = (tf: number, ah: AxisTiling, aw: AxisTiling, th: number, tw: number) => Evaluated;

/**
 * LBL DW (seed: dw_gma, dw_estimate_min_dm_v2): one channel per tile (output-stationary), spatial output
 * tile th x tw. GMA = input read over tiles (halo included) + output + the k x k weights per (channel, tile).
 */
function dwEvaluator(l: ConvSpec): Evaluator {
  const kk = l.h.k * l.w.k;
  return (_tf, ah, aw, th, tw) => {
    const spatial = ah.tiles * aw.tiles;
    return {
      tiles: { l1Filters: 1, h: th, w: tw, d: 1 },
      gma: l.c * ah.sum[0] * aw.sum[0] + l.c * l.h.out * l.w.out + l.c * kk * spatial,
      flops: layerFlops(l),
      redundantFlops: 0,
      workgroups: l.c * spatial,
      smemFixed: ah.max[0] * aw.max[0] + kk, smemPerDepth: 0, smemCapped: 0, smemCap: 0,
      outTile: th * tw,
      depth: 1,
    };
  };
}

/**
 * LBL PW, standard conv and FC (reference: pw_gma, pw_estimate_min_dm_v2; the FusePlanner reference makes no estimate for s and
 * fc): tf filters per tile, spatial output tile th x tw. Each filter tile reads its input (all channels of
 * its groups); the weights are read once per spatial tile.
 */
function convEvaluator(l: ConvSpec): Evaluator {
  const kk = l.h.k * l.w.k;
  const groups = l.c / l.cPerFilter;
  const filtersPerGroup = l.f / groups;
  return (tf, ah, aw, th, tw) => {
    const spatial = ah.tiles * aw.tiles;
    const filterTiles = ceilDiv(l.f, tf);
    // Channels a filter tile reads: its groups' (all of them for group 1).
    const channels = Math.min(l.c, ceilDiv(tf, filtersPerGroup) * l.cPerFilter);
    const depth = Math.min(l.cPerFilter * ceilDiv(tf, filtersPerGroup), l.c);
    return {
      tiles: { l1Filters: tf, h: th, w: tw, d: depth },
      gma: filterTiles * channels * ah.sum[0] * aw.sum[0] + l.f * l.h.out * l.w.out + l.weights * spatial,
      flops: layerFlops(l),
      redundantFlops: 0,
      workgroups: filterTiles * spatial,
      smemFixed: 0, smemPerDepth: ah.max[0] * aw.max[0], smemCapped: tf * kk, smemCap: l.cPerFilter,
      outTile: tf * th * tw,
      depth,
    };
  };
}

/**
 * PW-DW FCM (seed: pw_dw_gma, pw_dw_estimate_min_dm_v2): tf PW filters = DW channels per tile; the PW
 * outputs of the DW tile's halo are computed on chip (redundantly where tiles overlap). GMA = PW input per
 * filter tile (full depth, over the halo region) + output + both layers' weights per spatial tile.
 */
function pwdwEvaluator(pw: ConvSpec, dw: ConvSpec): Evaluator {
  const kk = dw.h.k * dw.w.k;
  const mid = dw.c;
  return (tf, ah, aw, th, tw) => {
    const spatial = ah.tiles * aw.tiles;
    const filterTiles = ceilDiv(mid, tf);
    const midComputed = ah.sum[0] * aw.sum[0];
    const pwFlops = 2 * pw.c * mid * midComputed;
    return {
      tiles: { l1Filters: tf, l2Filters: tf, h: th, w: tw, d: pw.c },
      gma: filterTiles * pw.c * ah.sum[1] * aw.sum[1] + dw.f * dw.h.out * dw.w.out + (pw.weights + dw.weights) * spatial,
      flops: pwFlops + layerFlops(dw),
      redundantFlops: pwFlops - layerFlops(pw),
      workgroups: filterTiles * spatial,
      smemFixed: tf * ah.max[0] * aw.max[0] + tf * kk, smemPerDepth: ah.max[1] * aw.max[1] + tf, smemCapped: 0, smemCap: 0,
      outTile: tf * th * tw,
      depth: pw.c,
    };
  };
}

/**
 * DW-PW FCM (seed: dw_pw_gma, dw_pw_estimate_min_dm_v2): the PW needs every channel of the DW output tile,
 * so each tile computes the DW on all channels and tf PW filters; with several filter tiles the DW input
 * and weights are re-read and the DW recomputed per filter tile.
 */
function dwpwEvaluator(dw: ConvSpec, pw: ConvSpec): Evaluator {
  const kk = dw.h.k * dw.w.k;
  const c = dw.c;
  return (tf, ah, aw, th, tw) => {
    const spatial = ah.tiles * aw.tiles;
    const filterTiles = ceilDiv(pw.f, tf);
    const dwFlops = 2 * c * kk * ah.sum[0] * aw.sum[0] * filterTiles;
    return {
      tiles: { l1Filters: c, l2Filters: tf, h: th, w: tw, d: c },
      gma: filterTiles * c * ah.sum[1] * aw.sum[1] + pw.f * pw.h.out * pw.w.out + (filterTiles * dw.weights + pw.weights) * spatial,
      flops: dwFlops + layerFlops(pw),
      redundantFlops: dwFlops - layerFlops(dw),
      workgroups: filterTiles * spatial,
      smemFixed: c * ah.max[0] * aw.max[0], smemPerDepth: ah.max[1] * aw.max[1] + kk + tf, smemCapped: 0, smemCap: 0,
      outTile: tf * th * tw,
      depth: c,
    };
  };
}

/**
 * PW-PW FCM (seed: pw_pw_gma, pw_pw_estimate_min_dm_v2): tf filters of the second PW per tile; the first
 * PW computes all its filters on chip, once per filter tile of the second, reading its weights each time.
 */
function pwpwEvaluator(pw1: ConvSpec, pw2: ConvSpec): Evaluator {
  const mid = pw1.f;
  return (tf, ah, aw, th, tw) => {
    const spatial = ah.tiles * aw.tiles;
    const filterTiles = ceilDiv(pw2.f, tf);
    const pw1Flops = 2 * pw1.c * mid * ah.sum[0] * aw.sum[0] * filterTiles;
    return {
      tiles: { l1Filters: mid, l2Filters: tf, h: th, w: tw, d: pw1.c },
      gma: filterTiles * pw1.c * ah.sum[1] * aw.sum[1] + pw2.f * pw2.h.out * pw2.w.out + (filterTiles * pw1.weights + pw2.weights) * spatial,
      flops: pw1Flops + layerFlops(pw2),
      redundantFlops: pw1Flops - layerFlops(pw1),
      workgroups: filterTiles * spatial,
      smemFixed: mid * ah.max[0] * aw.max[0], smemPerDepth: ah.max[1] * aw.max[1] + mid, smemCapped: tf, smemCap: mid,
      outTile: tf * th * tw,
      depth: pw1.c,
    };
  };
}

// ---------------------------------------------------------------------------------------------------------
// Time

/**
 * Roofline per module: max(bytes / bandwidth, flops / throughput), slowed down when the dispatch has fewer
 * workgroups than SMs (it cannot use the whole GPU) and, for an FCM, by its kind's time factor (how far the fused
 * kernel is from the roofline the layer kernels reach), plus the dispatch overhead. With hw.parallelOutputs, a
 * layer's throughput term also scales by sqrt(outputs / parallelOutputs) below that many outputs: a layer with few outputs
 * and long reductions (a 7x7 960 -> 160 projection) keeps too few threads busy to reach fp32_GFLOPS, which large
 * layers do (on the H200 the conv kernels ran 12 TFLOP/s on 10^7 outputs, 3 on 6*10^4). Two floors under the
 * roofline term: hw.kernelFloorUs per dispatch, and for a PW-DW or DW-PW module hw.fcmChannelNs per channel of its
 * `depth` (its threads walk them one by one; hw_configs/h100.cfg has the measurements).
 */
export function rooflineUs(gma: number, flops: number, workgroups: number, dispatches: number, ctx: CostContext, kind?: ModuleKind, outputs?: number, depth?: number): number {
  const hw = ctx.hw, batch = ctx.batch ?? 1;
  const memUs = (batch * gma * ctx.dtypeBytes) / (hw.dramGBps! * 1e3);
  // Layers only: an FCM's parallelism is its tiles' halo (an SE PW-PW module has a few hundred outputs and runs 4 us).
  const fcm = kind === 'pwdw' || kind === 'dwpw' || kind === 'pwpw';
  const parallel = !fcm && hw.parallelOutputs && outputs ? Math.min(1, Math.sqrt((batch * outputs) / hw.parallelOutputs)) : 1;
  const compUs = (batch * flops) / (hw.fp32Gflops! * 1e3 * parallel);
  const utilization = Math.min(1, (batch * workgroups) / hw.sms);
  const kindFactor = (kind === 'pwdw' ? hw.pwdwTimeFactor : kind === 'dwpw' ? hw.dwpwTimeFactor : kind === 'pwpw' ? hw.pwpwTimeFactor : 1) ?? 1;
  // The integer FCMs are bound by their arithmetic (requantizing every recomputed intermediate), not by the bytes the
  // roofline counts: their own factor on top.
  const factor = kindFactor * (fcm && ctx.dtypeBytes === 1 ? hw.int8TimeFactor ?? 1 : 1);
  // Floors under the roofline: every kernel's least time, and a PW-DW or DW-PW kernel's walk over its depth in one
  // thread (the PW-PW kernel splits its first layer's channels among threads: kernels/fused-pwpw.ts KS1).
  const floorUs = dispatches * (hw.kernelFloorUs ?? 0);
  const chainUs = (kind === 'pwdw' || kind === 'dwpw') && hw.fcmChannelNs && depth ? (hw.fcmChannelNs * depth) / 1e3 : 0;
  return Math.max(factor * Math.max(memUs, compUs) / utilization, floorUs, chainUs) + dispatches * hw.dispatchOverheadUs!;
}

// ---------------------------------------------------------------------------------------------------------
// Tile search

/**
 * Tries every filter tile and spatial tile (powers of two and the full size), keeps those whose tile fits
 * the shared memory (with the largest depth step that fits) and L1, and returns the best: by time when the
 * objective is 'time'; otherwise by GMA among tiles that give every SM work (the FusePlanner reference's
 * `num_of_tiles >= num_of_sms`), or, when none does, the tile with the most workgroups.
 * Returns undefined when no tile fits.
 */
function search(kind: ModuleKind, filters: number, axesH: Axis[], axesW: Axis[], evaluate: Evaluator, ctx: CostContext, outputs: number): ModuleCost | undefined {
  const tileBytes = ctx.tileBytes ?? ctx.dtypeBytes;
  const smemLimit = tileMemoryLimit(ctx.hw) / tileBytes;
  const l1Limit = Math.max(ctx.hw.l1BytesPerSm, tileMemoryLimit(ctx.hw)) / tileBytes;
  const hTilings = tileSizes(axesH[0].out).map((t) => ({ t, a: tileAxis(t, axesH) }));
  const wTilings = tileSizes(axesW[0].out).map((t) => ({ t, a: tileAxis(t, axesW) }));
  let best: { cost: ModuleCost; key: number[] } | undefined;
  for (const tf of tileSizes(filters)) {
    for (const { t: th, a: ah } of hTilings) {
      for (const { t: tw, a: aw } of wTilings) {
        if (kind === 'pwdw' && ctx.hw.pwdwMaxHalo && haloExtent(th, axesH[0]) * haloExtent(tw, axesW[0]) > ctx.hw.pwdwMaxHalo) continue;
        const e = evaluate(tf, ah, aw, th, tw);
        const dStep = depthStep(e, smemLimit, l1Limit);
        if (dStep === 0) continue;
        const cost: ModuleCost = {
          kind,
          tiles: { ...e.tiles, d: dStep },
          gma: e.gma,
          flops: e.flops,
          redundantFlops: e.redundantFlops,
          workgroups: e.workgroups,
          dispatches: 1,
          outputs,
        };
        let key: number[];
        if (ctx.objective === 'time') {
          cost.timeUs = rooflineUs(e.gma, e.flops, e.workgroups, 1, ctx, kind, outputs, e.depth);
          key = [cost.timeUs, e.gma, -e.workgroups];
        } else {
          const occupied = e.workgroups >= ctx.hw.sms;
          key = occupied ? [0, e.gma, -e.workgroups] : [1, -e.workgroups, e.gma];
        }
        if (!best || lexLess(key, best.key)) best = { cost, key };
      }
    }
  }
  return best?.cost;
}

/**
 * Intermediate positions along one axis of a PW-DW tile of t outputs, as the executor's kernel allocates them:
 * the depthwise receptive field, padding included (kernels/fused-pwdw.ts ih/iw), not the clipped read set.
 */
export function haloExtent(t: number, dw: Axis): number {
  return (Math.min(t, dw.out) - 1) * dw.s + (dw.k - 1) * dw.d + 1;
}

/** The largest depth step (all channels, or a power of two below) whose tile fits; 0 when none fits. */
function depthStep(e: Evaluated, smemLimit: number, l1Limit: number): number {
  const fits = (d: number) => {
    const m = e.smemFixed + e.smemPerDepth * d + e.smemCapped * Math.min(d, e.smemCap);
    return m <= smemLimit && m + e.outTile <= l1Limit;
  };
  if (fits(e.depth)) return e.depth;
  let d = 1;
  while (d * 2 < e.depth) d *= 2;
  for (; d >= 1; d /= 2) if (fits(d)) return d;
  return 0;
}

function lexLess(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return false;
}

const outputsOf = (l: ConvSpec) => l.f * l.h.out * l.w.out;

/** Best tiles of a conv layer run alone (LBL). Throws when no tile fits the shared memory. */
export function costLayer(l: ConvSpec, ctx: CostContext, where: string): ModuleCost {
  const kind: ModuleKind = l.type;
  const r = l.type === 'dw'
    ? search(kind, 1, [l.h], [l.w], dwEvaluator(l), ctx, outputsOf(l))
    : search(kind, l.f, [l.h], [l.w], convEvaluator(l), ctx, outputsOf(l));
  if (!r) {
    throw invalid(`${where}: layer ${l.id} ('${l.name}')`, `no tile of this ${l.type} layer fits ${tileMemoryLimit(ctx.hw)} bytes of shared memory`);
  }
  return r;
}

/** Best tiles of an FCM, or undefined when no tile fits (the pair then cannot be fused). */
export function costFcm(kind: 'pwdw' | 'dwpw' | 'pwpw', first: ConvSpec, second: ConvSpec, ctx: CostContext): ModuleCost | undefined {
  const axesH = [second.h, first.h];
  const axesW = [second.w, first.w];
  switch (kind) {
    case 'pwdw': return search(kind, second.c, axesH, axesW, pwdwEvaluator(first, second), ctx, outputsOf(second));
    case 'dwpw': return search(kind, second.f, axesH, axesW, dwpwEvaluator(first, second), ctx, outputsOf(second));
    case 'pwpw': return search(kind, second.f, axesH, axesW, pwpwEvaluator(first, second), ctx, outputsOf(second));
  }
}

/** Exposed for tests: the GMA of one tile choice, without the search. */
export function gmaOf(kind: ModuleKind, layers: ConvSpec[], tf: number, th: number, tw: number): { gma: number; flops: number; redundantFlops: number; workgroups: number } {
  const [a, b] = layers;
  const evaluate: Evaluator = kind === 'dw' ? dwEvaluator(a)
    : kind === 'pwdw' ? pwdwEvaluator(a, b)
    : kind === 'dwpw' ? dwpwEvaluator(a, b)
    : kind === 'pwpw' ? pwpwEvaluator(a, b)
    : convEvaluator(a);
  const axesH = layers.length === 2 ? [b.h, a.h] : [a.h];
  const axesW = layers.length === 2 ? [b.w, a.w] : [a.w];
  const e = evaluate(tf, tileAxis(th, axesH), tileAxis(tw, axesW), th, tw);
  return { gma: e.gma, flops: e.flops, redundantFlops: e.redundantFlops, workgroups: e.workgroups };
}
