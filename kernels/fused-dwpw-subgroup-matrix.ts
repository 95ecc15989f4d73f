// FCM DW-PW (paper §3.2) in f16 with its pointwise phase on subgroup matrices: the staged subgroup-matrix pointwise
// kernel (kernels/pointwise-subgroup-matrix.ts) whose x operand is the depthwise layer's result, computed as each
// channel step is staged (SmxDepthwise). A workgroup owns BF filters x BP output positions (flattened over the batch,
// as the pointwise kernel's tiles); per step of BK channels its threads compute the BK x BP depthwise results (epilogue
// 1, rounded to f16 as the unfused layer's output would be) into workgroup memory, and the subgroups multiply them with
// the step's BF x BK pointwise weights. The intermediate tensor never reaches global memory; each of the ceil(F / BF)
// filter tiles of a position block computes that block's depthwise results again (the planner's FB redundancy, here
// at the tile's BF).
//
// Node (src/graph/ir.ts): inputs [x, w1 [C,1,KH,KW], b1|'', w2 [F,C,1,1], b2|'', residual|''], every tensor f16.

import type { KernelArgs, KernelProgram } from './program.js';
import { dwpwShapes } from './fused-common.js';
import {
  type SmxTiles, type SubgroupMatrixSupport, chooseSmxTiles, isDirect, pointwiseSubgroupMatrix,
} from './pointwise-subgroup-matrix.js';
import { nodeEpilogue, withPostActivation } from './shader.js';
import { invalid, unsupported } from '../src/errors.js';

/** The DW-PW node's shapes (checked as kernels/fused-dwpw.ts checks them) and its two epilogues. */
function dwpwGeom(args: KernelArgs) {
  const a = args.node.attrs;
  const { w, N, C, H, W, F, HO, WO, g: geom, hasB1, hasB2, hasRes, channelsLast, resSampler } = dwpwShapes(args);
  // kernels/registry.ts gives such nodes the f16 form of kernels/fused-dwpw.ts.
  if (channelsLast) throw unsupported(w, 'the subgroup-matrix DW-PW kernel has no channels-last store');
  if (resSampler) throw unsupported(w, 'the subgroup-matrix DW-PW kernel reads no resized residual');
  // The pointwise kernel calls its epilogue `act` (and `ract` after the residual); the depthwise one is `act1`.
  const act2 = withPostActivation(nodeEpilogue(a, w, '2', 'act'), a, w);
  if (act2.post && !hasRes) throw invalid(w, 'activationPost applies after a residual add, and the node has no residual');
  const act1 = nodeEpilogue(a, w, '1', 'act1');
  return { w, N, C, H, W, F, HO, WO, geom, hasB1, hasB2, hasRes, act1, act2 };
}

/**
 * The tiles for a DW-PW node: the pointwise rule's staged tiles for its pointwise layer (chooseSmxTiles without direct
 * variants), or undefined where that rule leaves the layer to the other f16 kernels.
 */
export function chooseSmxDwPwTiles(args: KernelArgs, support: SubgroupMatrixSupport): SmxTiles | undefined {
  const g = dwpwGeom(args);
  const t = chooseSmxTiles({ N: g.N, C: g.C, F: g.F, P: g.HO * g.WO }, support, args.limits, { direct: false });
  return t && !isDirect(t) ? t : undefined;
}

/** The DW-PW program on subgroup matrices with tiles `t` (`emulate`: as pointwiseSubgroupMatrix's). */
export function fusedDwPwSubgroupMatrix(args: KernelArgs, t: SmxTiles, support: SubgroupMatrixSupport, emulate = false): KernelProgram {
  const g = dwpwGeom(args);
  const names = ['x', 'w1', ...(g.hasB1 ? ['b1'] : []), 'w', ...(g.hasB2 ? ['b'] : []), ...(g.hasRes ? ['res'] : [])];
  const inputs = [0, 1, ...(g.hasB1 ? [2] : []), 3, ...(g.hasB2 ? [4] : []), ...(g.hasRes ? [5] : [])];
  const dot = { N: g.N, C: g.C, F: g.F, P: g.HO * g.WO, hasBias: g.hasB2, hasRes: g.hasRes, act: g.act2 };
  const dw = { H: g.H, W: g.W, HO: g.HO, WO: g.WO, geom: g.geom, hasBias: g.hasB1, act: g.act1 };
  return pointwiseSubgroupMatrix(dot, t, support, names, inputs, args.limits, g.w, `FusedDwPw(${args.node.name}, smx)`, emulate, dw);
}
