// Shared pieces of the three Fused Convolutional Module kernels (fused-pwdw.ts, fused-dwpw.ts, fused-pwpw.ts):
// reading the fused node's attributes (src/graph/ir.ts convention), validating shapes, clamping the planner's
// tiles to the device's limits and laying out the dispatch.
//
// Every FCM kernel keeps the intermediate tensor in workgroup memory (paper §3: the FCM's "commTile") and bakes
// shapes and tiles into the WGSL as constants, so a program is specific to one node; the cache key names all of it.

import { type Epilogue, nodeEpilogue } from './shader.js';
import type { Attrs, AttrValue, Node } from '../src/graph/ir.js';
import { checkedProduct, invalid, overLimit, unsupported } from '../src/errors.js';

/** The device limits a kernel needs (a subset of GPUSupportedLimits). */
export interface KernelLimits {
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX?: number;
  maxComputeWorkgroupsPerDimension?: number;
}

/** What every fused kernel takes: the node, the shape of each of node.inputs (undefined for ''), the output shape. */
export interface FusedKernelArgs {
  node: Pick<Node, 'name' | 'op' | 'inputs' | 'attrs'>;
  inputShapes: readonly (readonly number[] | undefined)[];
  outputShape: readonly number[];
  limits: KernelLimits;
}

/**
 * Per-thread register accumulators (private arrays) are capped: beyond this the array spills to local memory
 * on real GPUs and the compiler's unrolling explodes. Tiles whose work per thread exceeds it are clamped.
 */
export const maxRegsPerThread = 32;
/** Workgroup size cap: 256 is what the planner and the runtime assume, and what every WebGPU device allows. */
export const maxThreads = 256;

export function where(args: FusedKernelArgs): string {
  return `node '${args.node.name}' (${args.node.op})`;
}

function numAttr(a: Attrs, key: string, def: number): number {
  const v: AttrValue | undefined = a[key];
  if (v === undefined) return def;
  if (typeof v === 'number') return v;
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'number') return v[0];
  return NaN;
}

function pairAttr(a: Attrs, key: string, def: number[], len: number, w: string): number[] {
  const v = a[key];
  if (v === undefined) return def;
  if (!Array.isArray(v) || v.length !== len || !v.every((x) => typeof x === 'number' && Number.isInteger(x))) {
    throw invalid(w, `attribute ${key} must be ${len} integers, got ${JSON.stringify(v)}`);
  }
  return v as number[];
}

/** Positive integer tile from the planner (which may hand fractional tiles, as the FusePlanner reference does): floor, at least 1. */
export function tileAttr(a: Attrs, key: string, def: number, w: string): number {
  const v = numAttr(a, key, def);
  if (!Number.isFinite(v) || v <= 0) throw invalid(w, `tile attribute ${key} must be a positive number, got ${String(a[key])}`);
  return Math.max(1, Math.floor(v));
}

export type { Epilogue };

/** Epilogue `index` (1: after the first layer, 2: after the second) of a fused node, as WGSL `act1`/`act2`. */
export const epilogue = (a: Attrs, index: 1 | 2, w: string): Epilogue => nodeEpilogue(a, w, String(index), `act${index}`);

export interface Conv2dGeom {
  kh: number; kw: number; sh: number; sw: number;
  pt: number; pl: number; pb: number; pr: number;
  dh: number; dw: number;
}

/** The depthwise layer's geometry from the node attributes, with the kernel taken from the weights when absent. */
export function dwGeometry(a: Attrs, wShape: readonly number[], w: string): Conv2dGeom {
  const [kh, kw] = pairAttr(a, 'kernel', [wShape[2], wShape[3]], 2, w);
  const [sh, sw] = pairAttr(a, 'strides', [1, 1], 2, w);
  const [pt, pl, pb, pr] = pairAttr(a, 'pads', [0, 0, 0, 0], 4, w);
  const [dh, dw] = pairAttr(a, 'dilations', [1, 1], 2, w);
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

export function convOut(h: number, w: number, g: Conv2dGeom): [number, number] {
  return [
    Math.floor((h + g.pt + g.pb - ((g.kh - 1) * g.dh + 1)) / g.sh) + 1,
    Math.floor((w + g.pl + g.pr - ((g.kw - 1) * g.dw + 1)) / g.sw) + 1,
  ];
}

export function shape(args: FusedKernelArgs, i: number, rank: number, what: string): readonly number[] {
  const s = args.inputShapes[i];
  const w = where(args);
  if (!s || !args.node.inputs[i]) throw invalid(w, `input ${i} (${what}) is missing`);
  if (s.length !== rank) throw invalid(w, `${what} '${args.node.inputs[i]}' must have rank ${rank}, got [${s.join(',')}]`);
  // Element indices are u32 in WGSL: refuse tensors past that before any GPU work.
  checkedProduct(s, `${w}: ${what} '${args.node.inputs[i]}'`, 2 ** 32 - 1);
  return s;
}

/** Which optional inputs (b1 = 2, b2 = 4, residual = 5) are present. */
export function present(args: FusedKernelArgs, i: number): boolean {
  return !!args.node.inputs[i] && args.inputShapes[i] !== undefined;
}

export function expectShape(args: FusedKernelArgs, i: number, expected: readonly number[], what: string): void {
  const s = args.inputShapes[i];
  if (!s || s.length !== expected.length || s.some((d, k) => d !== expected[k])) {
    throw invalid(where(args), `${what} '${args.node.inputs[i]}' has shape [${s?.join(',')}], expected [${expected.join(',')}]`);
  }
}

export function checkOutput(args: FusedKernelArgs, expected: readonly number[]): void {
  const s = args.outputShape;
  if (s.length !== 4 || s.some((d, k) => d !== expected[k])) {
    throw invalid(where(args), `output shape [${s.join(',')}] does not match the computed [${expected.join(',')}]`);
  }
}

/** Workgroup size cap for this device. */
export function threadCap(l: KernelLimits): number {
  return Math.min(maxThreads, l.maxComputeInvocationsPerWorkgroup, l.maxComputeWorkgroupSizeX ?? maxThreads);
}

/** The smallest power of two >= n, at least 32 (one warp), at most `cap`. */
export function threadsFor(items: number, cap: number): number {
  let t = 32;
  while (t < items && t < cap) t *= 2;
  return Math.min(t, cap);
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

export interface Dispatch { dispatch: [number, number, number]; dispatchX: number }

/** Lay `total` workgroups out in x (then y) within maxComputeWorkgroupsPerDimension; the shader recombines them. */
export function layoutDispatch(total: number, l: KernelLimits, w: string): Dispatch {
  const maxDim = l.maxComputeWorkgroupsPerDimension ?? 65535;
  const x = Math.max(1, Math.min(total, maxDim));
  const y = Math.ceil(total / x);
  if (y > maxDim) throw overLimit(w, `${total} workgroups exceed ${maxDim}^2`);
  return { dispatch: [x, y, 1], dispatchX: x };
}

/** Binding declarations in KernelProgram order: used inputs, then the output. */
export function bindings(inputs: { index: number; name: string }[]): string {
  const lines = inputs.map((b, k) => `@group(0) @binding(${k}) var<storage, read> ${b.name}: array<f32>;`);
  lines.push(`@group(0) @binding(${inputs.length}) var<storage, read_write> out: array<f32>;`);
  return lines.join('\n');
}

export const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

/**
 * 4-byte words of workgroup storage that arrays of these lengths (f32, i32 or u32) take: Dawn rounds each
 * workgroup variable up to 16 bytes, so an odd tile that summed to exactly the limit failed pipeline creation (32784 > 32768 bytes).
 */
export const wgFloats = (...lengths: number[]) => lengths.reduce((a, n) => a + ceilDiv(n, 4) * 4, 0);

/** WGSL `const` lines for integer parameters (all u32). */
export function constsU32(c: Record<string, number>): string {
  return Object.entries(c).map(([k, v]) => {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`internal: constant ${k}=${v} is not a u32`);
    return `const ${k}: u32 = ${v}u;`;
  }).join('\n');
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
