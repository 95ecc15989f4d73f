// The graph IR: plain data that every importer produces and every pass, planner and executor reads.
//
// Conventions (all importers normalize to these, whatever the file format or opset):
// - Layout is NCHW for 4-D activations; conv weights are [F, C/group, KH, KW].
// - Every tensor has a static shape (symbolic dims are resolved at import: --batch, --input-shape).
// - Nodes are in topological order; `inputs` may hold '' for an absent optional input.
// - Attributes are normalized per op (see OpAttrs below); ops outside the known list keep the file's
//   attributes as they were and are "opaque": planning passes over them, the executor refuses them.

import { invalid } from '../errors.js';

export type DType =
  | 'float32' | 'float16' | 'float64' | 'bfloat16'
  | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64'
  | 'bool' | 'string';

export type TensorData =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array
  | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

/** Affine quantization (TFLite / ONNX QDQ): real = scale * (q - zeroPoint); per-channel when axis is set. */
export interface Quantization {
  scale: number[];
  zeroPoint: number[];
  axis?: number;
}

export interface Tensor {
  name: string;
  dtype: DType;
  shape: number[];
  /** Set by shape inference (src/graph/shape.ts) where the IR cannot know the shape (past opaque ops);
   *  `shape` must not be read then. onnxruntime fills these in at load (src/graph/ort-shapes.ts). */
  shapeUnknown?: boolean;
  /** Constant data (weights, folded shapes). A view of the file's bytes where alignment allows. */
  data?: TensorData;
  quant?: Quantization;
}

export type AttrValue = number | string | number[] | string[] | Tensor | { graph: unknown };
/** Null-prototype record: attribute names come from files and may be anything, `__proto__` included. */
export type Attrs = Record<string, AttrValue>;

export interface Node {
  name: string;
  op: string;
  /** '' for the default ONNX domain; opaque nodes keep their own. */
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Attrs;
}

export interface Graph {
  name: string;
  /** Graph inputs that are fed at run time (not constants). */
  inputs: string[];
  outputs: string[];
  /** Every tensor by name: activations, constants, inputs, outputs. A Map so any name is safe. */
  tensors: Map<string, Tensor>;
  nodes: Node[];
  /** Where the graph came from, for error messages ("model.onnx"). */
  source: string;
}

/** The ops the IR knows, with their normalized attributes. Anything else is opaque. */
export const knownOps = [
  'Conv', 'Gemm', 'MatMul', 'Add', 'Sub', 'Mul', 'Div',
  'Relu', 'LeakyRelu', 'Clip', 'HardSigmoid', 'HardSwish', 'Sigmoid', 'Tanh', 'SiLU', 'PRelu', 'Abs',
  'GlobalAveragePool', 'ReduceMean', 'MaxPool', 'AveragePool',
  'Flatten', 'Reshape', 'Transpose', 'Concat', 'Split', 'Slice', 'Pad', 'Softmax',
  'BatchNormalization', 'Identity', 'Dropout', 'Constant', 'Shape', 'Gather', 'Unsqueeze', 'Squeeze', 'Cast',
  'QuantizeLinear', 'DequantizeLinear',
] as const;
export type KnownOp = (typeof knownOps)[number];

const knownSet: ReadonlySet<string> = new Set(knownOps);

/**
 * Default-domain ops that only the executor's graph holds (src/rewrite makes them; below): no ONNX operator, so no
 * importer takes them from a file, where the name would otherwise reach the executor's kernel for it.
 */
export const executorOnlyOps: readonly string[] = ['ChannelShuffle', 'SqueezeExcite', 'PointwiseMean'];

/**
 * Whether the executor's rewrite gave node `n` an output layout or a residual read of its own (attrs channelsLast,
 * residualResize, shuffleGroups, below): the folds that take over a node's output, activation or residual leave such
 * a node alone, also when a graph is rewritten a second time (a check session of a rewritten graph).
 */
export const hasExecutorLayout = (n: Pick<Node, 'attrs'>): boolean =>
  n.attrs.channelsLast !== undefined || n.attrs.residualResize !== undefined || n.attrs.shuffleGroups !== undefined;
export const isKnownOp = (n: Node) => n.domain === '' && knownSet.has(n.op);

// Normalized attributes of the known ops (what passes may rely on after import):
// Conv:       kernel [kh,kw], strides [sh,sw], pads [top,left,bottom,right], dilations [dh,dw], group;
//             inputs [x, w, bias?]. An optional `activation` (see Activation) and `alpha`/`beta`/`min`/`max`
//             appear once an activation is fused into it.
// MaxPool/AveragePool: kernel, strides, pads, dilations (MaxPool), countIncludePad (Average), ceilMode.
// Gemm:       alpha, beta, transA, transB.
// Clip:       min, max (numbers; ±Infinity when absent).   LeakyRelu: alpha.   HardSigmoid: alpha, beta.
// ReduceMean: axes (number[], [] = all), keepdims.   Softmax: axis.   Flatten: axis.   Concat: axis.
// Split:      axis, split (sizes).   Slice: starts, ends, axes, steps (numbers).
// Pad:        pads [x1_begin, x2_begin, ..., x1_end, ...], mode ('constant'|'reflect'|'edge'), value.
// Transpose:  perm.   Reshape: shape (from the constant input once folded).   Squeeze/Unsqueeze: axes.
// Gather:     axis.   Cast: to (DType).   BatchNormalization: epsilon.

// Epilogues: a Conv (or fused module) may carry `activation` (an Activation name) with its parameters in
// `activationParams` (Clip: [min, max]; LeakyRelu: [alpha]; HardSigmoid: [alpha, beta]) and a residual
// tensor as its 4th input (inputs [x, w, bias|'', residual]). Order: bias, then activation, then + residual, then
// `activationPost` / `activationParamsPost` (an activation after the residual add, ResNet's relu(x + f(x)): only with a
// residual; FCMs take it after their residual too). src/rewrite/residual-activation.ts folds it.
//
// Kernel choice: a pointwise Conv of the executor's graph may carry `kernelVariant` (string), a variant key of
// kernels/registry.ts pointwiseVariants ('smx:...', 'gemm:...', 'vec4:...', 'splitK:...'), set from a plan's `kernels`
// by src/rewrite/kernel-choices.ts; the registry runs that variant where it is legal for the shape and device, else the
// rule's. Never imported, never exported.
//
// ChannelShuffle (default domain; made by src/rewrite/channel-shuffle.ts for the executor, never imported): inputs
// [N, C_k, H, W] concatenated along channels, shuffled in attr `groups` (ShuffleNet's Reshape -> Transpose [0,2,1,3,4]
// -> Reshape), split along channels into its outputs [N, D_m, H, W] in order. kernels/channel-shuffle.ts.
//
// Conv with a shuffled store (made by src/rewrite/shuffle-conv.ts for the executor, never imported; pointwise only):
// attr `shuffleGroups` (2) and inputs [x, w, b|'', residual|'', scale|'', a] with a [N, F, H, W], the conv output's
// shape. The conv's output y (bias, activation, residual as usual) is never stored as such: the node's outputs are
// ChannelShuffle{groups 2}(a, y) split along channels, [N, D_m, H, W] in order (sum of D_m = 2F): y[n, f, p] lands
// at shuffled channel 2f + 1, a[n, f, p] at 2f. kernels/pointwise.ts (DotGeom.shuffleOuts).
//
// Conv with a channels-last store (made by src/rewrite/channels-last-store.ts for the float executor, never imported;
// pointwise only, no residual, no shuffled store): attr `channelsLast` (1); the output is [N, H, W, F], the conv's
// [N, F, H, W] output transposed by perm [0, 2, 3, 1]. kernels/pointwise.ts (DotGeom.channelsLast). A FusedDwPw
// without a residual takes the same attribute (kernels/fused-dwpw.ts).
//
// SqueezeExcite (default domain; made by src/rewrite/squeeze-excite.ts for the executor, never imported): inputs
// [x [N,C,H,W], w1 [R,C,1,1], b1|'', w2 [F,R,1,1], b2|''], output [N,F,1,1] = act2(w2 act1(w1 mean_HW(x) + b1) + b2),
// attrs activation1/activationParams1, activation2/activationParams2 (H = W = 1: no pooling). kernels/squeeze-excite.ts.
//
// PointwiseMean (default domain; made by src/rewrite/pointwise-mean.ts for the float executor, never imported): inputs
// [x [N,C,H,W], w [F,C,1,1], b [F] | ''], output [N,F,1,1] or [N,F] (the pool's shape) =
// mean over H, W of act(w x + b): a pointwise Conv with its activation (attrs activation/activationParams, as a Conv's)
// and the GlobalAveragePool or ReduceMean over H, W that was its only reader. kernels/pointwise-mean.ts.
//
// Fused Convolutional Modules (domain 'ai.fcm.opt', op FusedPwDw | FusedDwPw | FusedPwPw):
//   inputs  [x, w1, b1|'', w2, b2|'', residual|'']
//   attrs   strides, pads, kernel, dilations (of the depthwise layer; absent for FusedPwPw),
//           activation1/activationParams1, activation2/activationParams2 (epilogues of each layer),
//           tileFilters1, tileFilters2, tileH, tileW (the planner's tiles),
//           layer1, layer2 (names of the original Conv nodes, for error messages and export),
//           intermediateScale, intermediateZeroPoint (quantized graphs: the intermediate's per-tensor quantization).
//   The intermediate tensor between the two convolutions never exists in global memory.
export const fcmDomain = 'ai.fcm.opt';
export type FcmOp = 'FusedPwDw' | 'FusedDwPw' | 'FusedPwPw';

export type Activation = 'Relu' | 'Clip' | 'HardSwish' | 'HardSigmoid' | 'Sigmoid' | 'SiLU' | 'LeakyRelu' | 'Tanh';

export function newAttrs(init?: Record<string, AttrValue>): Attrs {
  const a: Attrs = Object.create(null);
  if (init) for (const k of Object.keys(init)) a[k] = init[k];
  return a;
}

export function getTensor(g: Graph, name: string, where = g.source): Tensor {
  const t = g.tensors.get(name);
  if (!t) throw invalid(where, `tensor '${name}' is not defined`);
  return t;
}

/** Element size in bytes (strings: 0, they have no fixed size). */
export function dtypeSize(d: DType): number {
  switch (d) {
    case 'float64': case 'int64': case 'uint64': return 8;
    case 'float32': case 'int32': case 'uint32': return 4;
    case 'float16': case 'bfloat16': case 'int16': case 'uint16': return 2;
    case 'int8': case 'uint8': case 'bool': return 1;
    case 'string': return 0;
  }
}

export const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Consumers of each tensor name: node indices in order. */
export function consumers(g: Graph): Map<string, number[]> {
  const m = new Map<string, number[]>();
  g.nodes.forEach((n, i) => {
    for (const x of n.inputs) if (x) (m.get(x) ?? m.set(x, []).get(x)!).push(i);
  });
  return m;
}

/** The node producing each tensor name. */
export function producers(g: Graph): Map<string, number> {
  const m = new Map<string, number>();
  g.nodes.forEach((n, i) => { for (const y of n.outputs) if (y) m.set(y, i); });
  return m;
}
