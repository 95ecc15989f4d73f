// What the three convolution kernels (conv2d.ts, depthwise.ts, pointwise.ts) share: the Conv node's geometry
// from its normalized attributes (src/graph/ir.ts), shape checks, and the epilogue (bias, activation,
// + residual, in that order, then the activation after the residual where the node has one).

import { invalid, unsupported } from '../src/errors.js';
import type { KernelArgs } from './program.js';
import { type ResidualSampler, residualSampler } from './resize.js';
import {
  type Epilogue, expectOutput, hasInput, inShape, intAttr, intsAttr, nodeEpilogue, plusResidual, sameShape, where,
  withPostActivation,
} from './shader.js';

/** A convolution window: kernel, strides, pads (top, left, bottom, right) and dilations. */
export interface Conv2dGeom {
  kh: number; kw: number; sh: number; sw: number;
  pt: number; pl: number; pb: number; pr: number;
  dh: number; dw: number;
}

/** The output height and width of a convolution window over an h x w input. */
export function convOut(h: number, w: number, g: Conv2dGeom): [number, number] {
  return [
    Math.floor((h + g.pt + g.pb - ((g.kh - 1) * g.dh + 1)) / g.sh) + 1,
    Math.floor((w + g.pl + g.pr - ((g.kw - 1) * g.dw + 1)) / g.sw) + 1,
  ];
}

export interface ConvGeom {
  N: number; C: number; H: number; W: number;
  F: number; HO: number; WO: number;
  kh: number; kw: number; sh: number; sw: number;
  pt: number; pl: number; pb: number; pr: number;
  dh: number; dw: number; group: number;
  hasBias: boolean; hasRes: boolean;
  /** Input 4: a per-channel scale [N, C, 1, 1] applied to x as it is read (a squeeze-excite Mul folded in). */
  hasScale: boolean;
  /**
   * Attr `shuffleGroups` (src/graph/ir.ts; src/rewrite/shuffle-conv.ts): input 5 is a tensor of the output's shape,
   * and the node's outputs are ChannelShuffle{groups 2}(input 5, this conv's output) split along channels; these are
   * the outputs' channel counts, in order (summing to 2F). Only the pointwise kernels store this way.
   */
  shuffleOuts?: number[];
  /**
   * Attr `channelsLast` (1; src/graph/ir.ts; src/rewrite/channels-last-store.ts): the output is stored [N, HO, WO, F],
   * a Transpose [0, 2, 3, 1] folded in. Only the pointwise kernels store this way; no residual, no shuffled store.
   */
  channelsLast?: boolean;
  /**
   * Attr `residualResize` (src/graph/ir.ts; src/rewrite/resized-residual.ts): the residual is given at a lower
   * resolution and read through this resize (kernels/resize.ts residualSampler). Only the pointwise kernels take it.
   */
  resSampler?: ResidualSampler;
  act: Epilogue;
}

export function convGeom(args: KernelArgs): ConvGeom {
  const w = where(args);
  const a = args.node.attrs;
  const [N, C, H, W] = inShape(args, 0, 'input', 4);
  const ws = inShape(args, 1, 'weights', 4);
  const [kh, kw] = intsAttr(a, 'kernel', [ws[2], ws[3]], w, 2);
  const [sh, sw] = intsAttr(a, 'strides', [1, 1], w, 2);
  const [pt, pl, pb, pr] = intsAttr(a, 'pads', [0, 0, 0, 0], w, 4);
  const [dh, dw] = intsAttr(a, 'dilations', [1, 1], w, 2);
  const group = intAttr(a, 'group', 1, w);
  if (kh !== ws[2] || kw !== ws[3]) throw invalid(w, `kernel [${kh},${kw}] does not match weights [${ws.join(',')}]`);
  if ([kh, kw, sh, sw, dh, dw, group].some((v) => v < 1)) throw invalid(w, 'kernel, strides, dilations and group must be >= 1');
  if ([pt, pl, pb, pr].some((v) => v < 0)) throw invalid(w, 'pads must be >= 0');
  const F = ws[0];
  if (C % group !== 0 || F % group !== 0 || ws[1] !== C / group) {
    throw invalid(w, `weights [${ws.join(',')}] do not match ${C} input channels in ${group} groups`);
  }
  const [HO, WO] = convOut(H, W, { kh, kw, sh, sw, pt, pl, pb, pr, dh, dw });
  if (HO < 1 || WO < 1) throw invalid(w, `output ${HO}x${WO} is empty`);
  const shuffleOuts = a.shuffleGroups === undefined ? undefined : shuffledOutputs(args, [N, F, HO, WO]);
  const channelsLast = a.channelsLast !== undefined && intAttr(a, 'channelsLast', 0, w) === 1;
  if (a.channelsLast !== undefined && !channelsLast) throw invalid(w, 'channelsLast must be 1 where it is given');
  if (channelsLast && shuffleOuts) throw unsupported(w, 'a channels-last store and a shuffled store together');
  if (!shuffleOuts) expectOutput(args, channelsLast ? [N, HO, WO, F] : [N, F, HO, WO]);
  const hasBias = hasInput(args, 2);
  if (hasBias && !sameShape(inShape(args, 2, 'bias'), [F])) throw invalid(w, `bias '${args.node.inputs[2]}' must have shape [${F}]`);
  const hasRes = hasInput(args, 3);
  if (hasRes && channelsLast) throw unsupported(w, 'a channels-last store takes no residual');
  if (a.residualResize !== undefined && !hasRes) throw invalid(w, 'residualResize needs a residual (input 3)');
  const resSampler = hasRes ? residualSampler(a, inShape(args, 3, 'residual', 4), [N, F, HO, WO], w) : undefined;
  if (hasRes && !resSampler && !sameShape(inShape(args, 3, 'residual'), [N, F, HO, WO])) {
    throw invalid(w, `residual '${args.node.inputs[3]}' must have the output's shape [${[N, F, HO, WO].join(',')}]`);
  }
  const hasScale = hasInput(args, 4);
  if (hasScale && !sameShape(inShape(args, 4, 'channel scale'), [N, C, 1, 1])) {
    throw invalid(w, `channel scale '${args.node.inputs[4]}' must have shape [${N},${C},1,1]`);
  }
  const act = withPostActivation(nodeEpilogue(a, w), a, w);
  if (act.post && !hasRes) throw invalid(w, 'activationPost applies after a residual add, and the node has no residual');
  return { N, C, H, W, F, HO, WO, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, group, hasBias, hasRes, hasScale, ...(shuffleOuts ? { shuffleOuts } : {}), ...(channelsLast ? { channelsLast } : {}), ...(resSampler ? { resSampler } : {}), act };
}

/** The output channel counts of a Conv with `shuffleGroups` whose own output would be `y` [N, F, H, W], checked. */
function shuffledOutputs(args: KernelArgs, y: readonly number[]): number[] {
  const w = where(args);
  const groups = intAttr(args.node.attrs, 'shuffleGroups', 0, w);
  if (groups !== 2) throw unsupported(w, `shuffleGroups ${groups}: only 2 is supported`);
  if (!sameShape(inShape(args, 5, 'shuffle partner'), y)) throw invalid(w, `shuffle partner '${args.node.inputs[5]}' must have the conv output's shape [${y.join(',')}]`);
  const [N, F, H, W] = y;
  const outs = args.outputShapes.map((s) => {
    if (s.length !== 4 || s[0] !== N || s[2] !== H || s[3] !== W || s[1] < 1) throw invalid(w, `shuffled output [${s.join(',')}] must be [${N},C,${H},${W}]`);
    return s[1];
  });
  const total = outs.reduce((q, c) => q + c, 0);
  if (outs.length === 0 || total !== 2 * F) throw invalid(w, `shuffled outputs hold ${total} channels, the shuffle ${2 * F}`);
  return outs;
}

export const isPointwise = (g: ConvGeom) =>
  g.group === 1 && g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && g.pt + g.pl + g.pb + g.pr === 0;

export const isDepthwise = (g: ConvGeom) => g.group === g.C && g.F === g.C;

/** Binding names in KernelProgram order (x, w, bias?, residual?, channel scale?, shuffle partner?) and their node input indices. */
export function convBindings(g: ConvGeom): { names: string[]; inputs: number[] } {
  const names = ['x', 'w'], inputs = [0, 1];
  if (g.hasBias) { names.push('b'); inputs.push(2); }
  if (g.hasRes) { names.push('res'); inputs.push(3); }
  if (g.hasScale) { names.push('sc'); inputs.push(4); }
  if (g.shuffleOuts) { names.push('sh'); inputs.push(5); }
  return { names, inputs };
}

/** WGSL statements storing accumulator `s` for output element `o` (channel `f`): bias, activation, residual (and the
 *  activation after it). */
export function convStore(g: ConvGeom, s: string, o: string, f: string): string {
  const y = `act(${s}${g.hasBias ? ` + b[${f}]` : ''})`;
  return `out[${o}] = ${g.hasRes ? plusResidual(g.act, y, `res[${o}]`) : y};`;
}

export const geomKey = (g: ConvGeom) =>
  `x${g.N}x${g.C}x${g.H}x${g.W}|F${g.F}|k${g.kh}x${g.kw}s${g.sh}x${g.sw}p${g.pt},${g.pl},${g.pb},${g.pr}d${g.dh}x${g.dw}g${g.group}` +
  `|b${+g.hasBias}r${+g.hasRes}s${+g.hasScale}|${g.act.key}${g.channelsLast ? '|nhwc' : ''}${g.resSampler ? `|${g.resSampler.key}` : ''}`;
