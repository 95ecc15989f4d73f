// Shared by the FCM kernel tests and the benchmark: build a fused node and its inputs from a small case
// description, run the fused kernel, and compute the reference as the two convolutions done separately
// (test/kernels/reference.ts) with their epilogues and the residual.

import { newAttrs, type Node } from '../../src/graph/ir.js';
import type { KernelArgs, KernelLimits, KernelProgram } from '../../kernels/program.js';
import { fusedPwDw } from '../../kernels/fused-pwdw.js';
import { fusedDwPw } from '../../kernels/fused-dwpw.js';
import { fusedPwPw } from '../../kernels/fused-pwpw.js';
import { conv2d, epilogue, randomF32, type Tensor4 } from './reference.js';

export type FusedKind = 'pwdw' | 'dwpw' | 'pwpw';

export interface FusedCase {
  kind: FusedKind;
  n: number; c: number; h: number; w: number;
  /** Channels of the intermediate (pwdw, pwpw; dwpw: = c). */
  m?: number;
  /** Output channels of the second layer (dwpw, pwpw; pwdw: = m). */
  f?: number;
  /** Depthwise layer (pwdw, dwpw). */
  k?: number; stride?: number; pads?: [number, number, number, number]; dilation?: number;
  act1?: string; params1?: number[]; act2?: string; params2?: number[];
  bias1?: boolean; bias2?: boolean; residual?: boolean;
  tiles?: { tileFilters1?: number; tileFilters2?: number; tileH?: number; tileW?: number; dwRow?: number; splitK1?: number; xUnroll?: number; haloPerThread?: number };
  /** Override (only lower) the device's limits to force clamping. */
  limits?: Partial<KernelLimits>;
  seed?: number;
}

export const describeCase = (c: FusedCase) =>
  `${c.kind} n${c.n} c${c.c} ${c.h}x${c.w} m${c.m ?? '-'} f${c.f ?? '-'} k${c.k ?? '-'} s${c.stride ?? 1} ` +
  `p${(c.pads ?? []).join(',')} d${c.dilation ?? 1} ${c.act1 ?? ''}/${c.act2 ?? ''} b${+!!c.bias1}${+!!c.bias2}r${+!!c.residual} ` +
  `tiles ${JSON.stringify(c.tiles ?? {})} limits ${JSON.stringify(c.limits ?? {})}`;

export interface Built {
  program: KernelProgram;
  /** The program's inputs in binding order. */
  inputs: Float32Array[];
  outputShape: [number, number, number, number];
  /** Reference output (float64). */
  expected: Float64Array;
  /** The separate layers' shapes, for LBL comparisons. */
  layers: { x: Tensor4; w1: Tensor4; b1?: Float32Array; w2: Tensor4; b2?: Float32Array; res?: Float32Array; mid: Tensor4 };
}

/** The output of conv2d(x, w, p) with the shape only (zeros). */
function shapeOnly(x: Tensor4, w: Tensor4, p: { strides?: [number, number]; pads?: [number, number, number, number]; dilations?: [number, number] }): Tensor4 {
  const [sh, sw] = p.strides ?? [1, 1];
  const [pt, pl, pb, pr] = p.pads ?? [0, 0, 0, 0];
  const [dh, dw] = p.dilations ?? [1, 1];
  const ho = Math.floor((x.shape[2] + pt + pb - ((w.shape[2] - 1) * dh + 1)) / sh) + 1;
  const wo = Math.floor((x.shape[3] + pl + pr - ((w.shape[3] - 1) * dw + 1)) / sw) + 1;
  const shape: [number, number, number, number] = [x.shape[0], w.shape[0], ho, wo];
  return { data: new Float64Array(shape[0] * shape[1] * ho * wo), shape };
}

const kernels = { pwdw: fusedPwDw, dwpw: fusedDwPw, pwpw: fusedPwPw };
const ops = { pwdw: 'FusedPwDw', dwpw: 'FusedDwPw', pwpw: 'FusedPwPw' };

/** `reference: false` skips the (slow, float64) reference convolutions: `expected` is then empty (benchmarks). */
export function buildCase(c: FusedCase, deviceLimits: KernelLimits, opts: { reference?: boolean } = {}): Built {
  const withRef = opts.reference ?? true;
  const seed = c.seed ?? 1234;
  const k = c.k ?? 3, s = c.stride ?? 1, dil = c.dilation ?? 1;
  const pads = c.pads ?? [0, 0, 0, 0];
  const dwp = { strides: [s, s] as [number, number], pads, dilations: [dil, dil] as [number, number] };
  const x: Tensor4 = { data: randomF32(c.n * c.c * c.h * c.w, seed), shape: [c.n, c.c, c.h, c.w] };
  let w1: Tensor4, w2: Tensor4, midC: number, outC: number;
  switch (c.kind) {
    case 'pwdw': midC = c.m!; outC = midC; w1 = { data: randomF32(midC * c.c, seed + 1, -0.5, 0.5), shape: [midC, c.c, 1, 1] };
      w2 = { data: randomF32(midC * k * k, seed + 2), shape: [midC, 1, k, k] }; break;
    case 'dwpw': midC = c.c; outC = c.f!; w1 = { data: randomF32(c.c * k * k, seed + 1), shape: [c.c, 1, k, k] };
      w2 = { data: randomF32(outC * midC, seed + 2, -0.5, 0.5), shape: [outC, midC, 1, 1] }; break;
    case 'pwpw': midC = c.m!; outC = c.f!; w1 = { data: randomF32(midC * c.c, seed + 1, -0.5, 0.5), shape: [midC, c.c, 1, 1] };
      w2 = { data: randomF32(outC * midC, seed + 2, -0.5, 0.5), shape: [outC, midC, 1, 1] }; break;
  }
  const b1 = c.bias1 ? randomF32(midC, seed + 3) : undefined;
  const b2 = c.bias2 ? randomF32(outC, seed + 4) : undefined;

  const l1 = c.kind === 'dwpw' ? { ...dwp, group: midC } : {};
  const l2 = c.kind === 'pwdw' ? { ...dwp, group: midC } : {};
  const mid = withRef ? epilogue(conv2d(x, w1, b1, l1), c.act1 ?? '', c.params1) : shapeOnly(x, w1, l1);
  const y = withRef ? conv2d(mid, w2, b2, l2) : shapeOnly(mid, w2, l2);
  const res = c.residual ? randomF32(y.data.length, seed + 5) : undefined;
  epilogue(y, c.act2 ?? '', c.params2, res);

  const attrs = newAttrs({ ...(c.tiles ?? {}) });
  if (c.kind !== 'pwpw') Object.assign(attrs, { kernel: [k, k], strides: [s, s], pads, dilations: [dil, dil] });
  if (c.act1) { attrs.activation1 = c.act1; if (c.params1) attrs.activationParams1 = c.params1; }
  if (c.act2) { attrs.activation2 = c.act2; if (c.params2) attrs.activationParams2 = c.params2; }
  const node: Node = {
    name: `${c.kind}_test`, op: ops[c.kind], domain: 'ai.fcm.opt',
    inputs: ['x', 'w1', b1 ? 'b1' : '', 'w2', b2 ? 'b2' : '', res ? 'res' : ''], outputs: ['y'], attrs,
  };
  const all = [x.data as Float32Array, w1.data as Float32Array, b1, w2.data as Float32Array, b2, res];
  const shapes = [x.shape, w1.shape, b1 && [midC], w2.shape, b2 && [outC], res && y.shape];
  const limits: KernelLimits = { ...deviceLimits };
  for (const [key, v] of Object.entries(c.limits ?? {}) as [keyof KernelLimits, number][]) limits[key] = Math.min(v, deviceLimits[key] ?? v);
  const args: KernelArgs = { node, inputShapes: shapes, outputShapes: [y.shape], limits };
  const program = kernels[c.kind](args);
  return {
    program,
    inputs: program.inputs.map((i) => all[i]!),
    outputShape: y.shape,
    expected: withRef ? y.data as Float64Array : new Float64Array(0),
    layers: { x, w1, b1, w2, b2, res, mid },
  };
}
