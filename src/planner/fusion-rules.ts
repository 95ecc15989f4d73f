// What an FCM may contain, stated once for the two representations that apply it: the planner on FusePlanner's
// layer DAG (candidates.ts; src/planner/to-dag.ts writes the DAG of a graph) and the rewrite on the graph IR
// (src/rewrite/epilogues.ts, apply-plan.ts). Both call these functions, so a module the planner proposes is
// one the rewrite builds (test/rewrite/plan-agreement.test.ts checks it on random graphs).
//
// 1. Epilogue activation (foldedActivation): which activation node folds into the conv before it. The DAG
//    writer absorbs exactly these into the conv layer (`activation`); fuseEpilogues folds exactly these into
//    the Conv node (`activation` attribute). A conv takes at most one: the FCM kernels apply one activation
//    per layer.
// 2. Between the two convolutions (mayStandBetween): at most one zero spatial Pad, and only before a DW (it
//    is folded into the DW's padding). Nothing else. A standalone activation there is a second activation of
//    the first layer (Conv -> Relu -> Sigmoid: the Relu is folded, the Sigmoid is left) or one that rule 1
//    cannot fold (a Clip with computed bounds); an FCM's first layer applies only its own activation.
// 3. Kinds (convType, fcmKind): PW->DW, DW->PW, PW->PW; a conv with one filter per channel is a DW before it
//    is a PW (a 1x1 conv of one channel is both).

import type { Graph, Node } from '../graph/ir.js';
import { getTensor, isKnownOp } from '../graph/ir.js';
import { attrFloat, attrInts, attrString, constNumbers, isConstant } from '../graph/util.js';

export const epilogueActivationOps: ReadonlySet<string> = new Set(['Relu', 'Clip', 'HardSwish', 'HardSigmoid', 'Sigmoid', 'SiLU', 'LeakyRelu', 'Tanh']);

/** The activation's parameters as the IR's epilogue convention wants them; undefined when not foldable. */
export function activationParams(g: Graph, n: Node): number[] | undefined {
  switch (n.op) {
    case 'Clip': {
      // Normalized Clip carries min/max attributes; an unnormalized one may still read constant inputs.
      let min = attrFloat(g, n, 'min', -Infinity);
      let max = attrFloat(g, n, 'max', Infinity);
      for (const [i, set] of [[1, (v: number) => (min = v)], [2, (v: number) => (max = v)]] as const) {
        const x = n.inputs[i];
        if (!x) continue;
        if (!isConstant(g, x)) return undefined;
        const v = constNumbers(getTensor(g, x), `${g.source}: node '${n.name}'`);
        if (v.length !== 1) return undefined;
        set(v[0]);
      }
      return [min, max];
    }
    case 'LeakyRelu': return [attrFloat(g, n, 'alpha', 0.01)];
    case 'HardSigmoid': return [attrFloat(g, n, 'alpha', 0.2), attrFloat(g, n, 'beta', 0.5)];
    default: return [];
  }
}

/**
 * Rule 1: the epilogue parameters when activation node `act` folds into `producer` (a conv) as its activation;
 * undefined when it does not. The producer has one output, no activation and no residual yet; that output is
 * no graph output, has `readers` = 1 reader, `act`, which takes it as its data input only.
 */
export function foldedActivation(g: Graph, producer: Node, act: Node, readers: number, outputs: ReadonlySet<string>): number[] | undefined {
  if (producer.outputs.length !== 1 || producer.attrs.activation !== undefined || (producer.inputs[3] ?? '') !== '') return undefined;
  const y = producer.outputs[0];
  if (outputs.has(y) || readers !== 1) return undefined;
  if (!isKnownOp(act) || !epilogueActivationOps.has(act.op) || act.outputs.length !== 1) return undefined;
  if (act.inputs[0] !== y || act.inputs.slice(1).includes(y)) return undefined;
  return activationParams(g, act);
}

/**
 * Rule 2's Pad: zero padding of a Pad node on H and W only, as [t, l, b, r]; undefined otherwise. The DAG writer
 * records it on the Pad's layer (padding_* and `spatial_zero_pad`); the rewrite reads it from the node.
 */
export function spatialZeroPads(g: Graph, n: Node): number[] | undefined {
  if (n.op !== 'Pad' || n.domain !== '') return undefined;
  if (attrString(g, n, 'mode', 'constant') !== 'constant') return undefined;
  const value = n.attrs.value;
  if (value !== undefined && value !== 0) return undefined;
  if (n.inputs.slice(1).some((x) => x && !isConstant(g, x))) return undefined;
  if (n.inputs[2] && constNumbers(g.tensors.get(n.inputs[2])!, g.source).some((v) => v !== 0)) return undefined;
  const pads = attrInts(g, n, 'pads') ?? (n.inputs[1] ? constNumbers(g.tensors.get(n.inputs[1])!, g.source) : undefined);
  if (!pads || pads.length !== 8) return undefined;
  const [n0, c0, t, l, n1, c1, b, r] = pads;
  if (n0 !== 0 || c0 !== 0 || n1 !== 0 || c1 !== 0 || [t, l, b, r].some((p) => p < 0)) return undefined;
  return [t, l, b, r];
}

/** A node (layer) on the way from the first conv of a module to the second. */
export type ChainLink =
  | { kind: 'pad'; /** Zero spatial padding [t, l, b, r]; undefined for any other Pad. */ pads: number[] | undefined }
  | { kind: 'other' };

/**
 * Rule 2: whether `link` may stand between the convolutions of an FCM whose second layer is `second`, after
 * the links `before` it. Only one zero spatial Pad before a DW may.
 */
export function mayStandBetween(before: readonly ChainLink[], link: ChainLink, second: ConvType): boolean {
  return before.length === 0 && link.kind === 'pad' && link.pads !== undefined && second === 'dw';
}

export type ConvType = 'dw' | 'pw' | 's';

/**
 * Rule 3: a 2-D convolution of `channels` inputs, `filters` outputs, `group` groups and a kh x kw kernel is a
 * DW (one filter per channel), else a PW (1x1, one group), else a standard conv ('s'). A PW fuses only with
 * stride 1 and no padding (pointwiseFusable).
 */
export function convType(group: number, channels: number, filters: number, kh: number, kw: number): ConvType {
  if (group === channels && filters === channels) return 'dw';
  if (group === 1 && kh === 1 && kw === 1) return 'pw';
  return 's';
}

/** A PW layer can be part of an FCM: its output has its input's positions (stride 1, no padding). */
export const pointwiseFusable = (strides: readonly number[], pads: readonly number[]) => strides.every((s) => s === 1) && pads.every((p) => p === 0);

export type FcmKind = 'pwdw' | 'dwpw' | 'pwpw';

export function fcmKind(a: string | undefined, b: string | undefined): FcmKind | undefined {
  if (a === 'pw' && b === 'dw') return 'pwdw';
  if (a === 'dw' && b === 'pw') return 'dwpw';
  if (a === 'pw' && b === 'pw') return 'pwpw';
  return undefined;
}
