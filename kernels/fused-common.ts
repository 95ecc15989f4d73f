// What the Fused Convolutional Module kernels (fused-pwdw.ts, fused-dwpw.ts, fused-pwpw.ts and the integer
// int8/fused.ts) share beyond the shader helpers (shader.ts): the planner's tiles and the depthwise layer's geometry
// from the fused node's attributes (src/graph/ir.ts convention), the two epilogues, and the rules that clamp the
// tiles to the device's limits and split them for parallelism.
//
// Every FCM kernel keeps the intermediate tensor in workgroup memory (paper §3: the FCM's "commTile") and bakes
// shapes and tiles into the WGSL as constants, so a program is specific to one node; the cache key names all of it.

import { type Conv2dGeom, convOut } from './conv-common.js';
import { residualSampler } from './resize.js';
import type { KernelArgs } from './program.js';
import { type Epilogue, expectInput, expectOutput, hasInput, inShape, intAttr, intsAttr, nodeEpilogue, numAttr, where, withPostActivation } from './shader.js';
import type { Attrs } from '../src/graph/ir.js';
import { invalid, overLimit, unsupported } from '../src/errors.js';

/**
 * Per-thread register accumulators (private arrays) are capped: beyond this the array spills to local memory
 * on real GPUs and the compiler's unrolling explodes. Tiles whose work per thread exceeds it are clamped.
 */
export const maxRegsPerThread = 32;

/** Positive integer tile from the planner (which may hand fractional tiles, as the FusePlanner reference does): floor, at least 1. */
export function tileAttr(a: Attrs, key: string, def: number, w: string): number {
  const v = numAttr(a, key, def, w);
  if (!Number.isFinite(v) || v <= 0) throw invalid(w, `tile attribute ${key} must be a positive number, got ${String(a[key])}`);
  return Math.max(1, Math.floor(v));
}

export type { Epilogue };

/** Epilogue `index` (1: after the first layer, 2: after the second) of a fused node, as WGSL `act1`/`act2`. */
/** Epilogue `index` of an FCM; the second carries the activation after the residual, if any (withPostActivation). */
export const epilogue = (a: Attrs, index: 1 | 2, w: string): Epilogue => {
  const e = nodeEpilogue(a, w, String(index), `act${index}`);
  return index === 2 ? withPostActivation(e, a, w) : e;
};

/** The depthwise layer's geometry from the node attributes, with the kernel taken from the weights when absent. */
export function dwGeometry(a: Attrs, wShape: readonly number[], w: string): Conv2dGeom {
  const [kh, kw] = intsAttr(a, 'kernel', [wShape[2], wShape[3]], w, 2);
  const [sh, sw] = intsAttr(a, 'strides', [1, 1], w, 2);
  const [pt, pl, pb, pr] = intsAttr(a, 'pads', [0, 0, 0, 0], w, 4);
  const [dh, dw] = intsAttr(a, 'dilations', [1, 1], w, 2);
  if (kh !== wShape[2] || kw !== wShape[3]) throw invalid(w, `kernel [${kh},${kw}] does not match depthwise weights [${wShape.join(',')}]`);
  if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || dh < 1 || dw < 1) throw invalid(w, 'kernel, strides and dilations must be >= 1');
  if (pt < 0 || pl < 0 || pb < 0 || pr < 0) throw invalid(w, 'pads must be >= 0');
  if (pt >= (kh - 1) * dh + 1 || pb >= (kh - 1) * dh + 1 || pl >= (kw - 1) * dw + 1 || pr >= (kw - 1) * dw + 1) {
    // A pad as large as the kernel's extent makes output rows that see no input; the kernels could run them,
    // but no converter produces them and the tile origin arithmetic assumes otherwise.
    throw unsupported(w, `pads [${pt},${pl},${pb},${pr}] reach past the kernel extent`);
  }
  return { kh, kw, sh, sw, pt, pl, pb, pr, dh, dw };
}

/**
 * A DW-PW node's shapes, checked (kernels/fused-dwpw.ts and fused-dwpw-subgroup-matrix.ts): inputs [x, w1 [C,1,KH,KW],
 * b1|'', w2 [F,C,1,1], b2|'', residual|''], output [N, F, HO, WO].
 */
export function dwpwShapes(args: KernelArgs) {
  const w = where(args);
  const [N, C, H, W] = inShape(args, 0, 'input', 4);
  const w1 = inShape(args, 1, 'depthwise weights', 4);
  if (w1[0] !== C || w1[1] !== 1) throw invalid(w, `depthwise weights [${w1.join(',')}] must be [${C},1,KH,KW] (depth multiplier 1)`);
  const g = dwGeometry(args.node.attrs, w1, w);
  const w2 = inShape(args, 3, 'pointwise weights', 4);
  const F = w2[0];
  if (w2[1] !== C || w2[2] !== 1 || w2[3] !== 1) throw invalid(w, `pointwise weights [${w2.join(',')}] do not match ${C} channels (expected [F,${C},1,1])`);
  const [HO, WO] = convOut(H, W, g);
  if (HO < 1 || WO < 1) throw invalid(w, `depthwise output ${HO}x${WO} is empty`);
  // Attr channelsLast (1; src/rewrite/channels-last-store.ts): the output stored [N, HO, WO, F], no residual.
  const channelsLast = args.node.attrs.channelsLast !== undefined && intAttr(args.node.attrs, 'channelsLast', 0, w) === 1;
  if (args.node.attrs.channelsLast !== undefined && !channelsLast) throw invalid(w, 'channelsLast must be 1 where it is given');
  expectOutput(args, channelsLast ? [N, HO, WO, F] : [N, F, HO, WO]);
  const hasB1 = hasInput(args, 2), hasB2 = hasInput(args, 4), hasRes = hasInput(args, 5);
  if (hasRes && channelsLast) throw unsupported(w, 'a channels-last store takes no residual');
  // Attr residualResize (src/rewrite/resized-residual.ts): the residual [N, F, h, w], read through a resize.
  if (args.node.attrs.residualResize !== undefined && !hasRes) throw invalid(w, 'residualResize needs a residual (input 5)');
  const resSampler = hasRes ? residualSampler(args.node.attrs, inShape(args, 5, 'residual', 4), [N, F, HO, WO], w) : undefined;
  if (hasB1) expectInput(args, 2, [C], 'bias 1');
  if (hasB2) expectInput(args, 4, [F], 'bias 2');
  if (hasRes && !resSampler) expectInput(args, 5, [N, F, HO, WO], 'residual');
  return { w, N, C, H, W, F, HO, WO, g, hasB1, hasB2, hasRes, channelsLast, resSampler };
}

export interface TileDim { name: string; value: number; min: number }

/**
 * The clamping rule shared by the FCM kernels. `dims` are in priority order: first the staging chunk that only
 * changes how often the workgroup synchronizes (never the GMA), then the planner's tiles. While the tile does not
 * fit (`fits` false: workgroup storage or per-thread registers), halve (rounding up) the first dim, if it is a
 * staging chunk above 4, else the largest of the planner's tiles above its minimum (ties: the first listed),
 * and finally the staging chunk down to 1. Deterministic, so the planner can reproduce it.
 */
export function clampTiles(
  staging: TileDim[], tiles: TileDim[], fits: () => boolean, w: string, describe: () => string,
): void {
  const halve = (d: TileDim) => { d.value = Math.max(d.min, Math.ceil(d.value / 2)); };
  for (let guard = 0; guard < 256 && !fits(); guard++) {
    const st = staging.find((d) => d.value > Math.max(4, d.min));
    if (st) { halve(st); continue; }
    let big: TileDim | undefined;
    for (const d of tiles) if (d.value > d.min && (!big || d.value > big.value)) big = d;
    if (big) { halve(big); continue; }
    const st1 = staging.find((d) => d.value > d.min);
    if (st1) { halve(st1); continue; }
    break;
  }
  if (!fits()) throw overLimit(w, `no tile fits the device's workgroup limits (${describe()})`);
}

/**
 * Workgroups that keep a large GPU busy (132 SMs on the H100, two workgroups each). The planner's tiles
 * minimize global memory traffic; at batch 1 on the 7x7..28x28 layers they leave most SMs idle, so the FCM
 * kernels split the tile further (filters first: no extra traffic for PW-DW), down to the given minimums.
 */
export const minWorkgroups = 264;

/** Halve `dims` in order (each down to its min) while `count()` is below minWorkgroups. Deterministic. */
export function splitForParallelism(dims: TileDim[], count: () => number): void {
  for (const d of dims) {
    while (count() < minWorkgroups && d.value > d.min) d.value = Math.max(d.min, Math.ceil(d.value / 2));
  }
}
