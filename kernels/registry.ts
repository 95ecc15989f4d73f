// Which kernel runs a node, for each precision: one table from op to the kernel file's program builder per
// precision (fp32: the float kernels of kernels/; int8: the integer kernels of kernels/int8/). Reshape-like ops
// move no data: the runtime aliases their output to their input's buffer ('alias'). A precision that has no
// builder for an op refuses the node here, before any GPU work. A new precision adds a column (a builder type and
// an entry point below), not a registry of its own. fp16 is the fp32 column with half storage (kernels/f16.ts):
// `kernelFor(..., 'f16')`.

import type { Node, Tensor } from '../src/graph/ir.js';
import { fcmDomain } from '../src/graph/ir.js';
import { invalid, unsupported } from '../src/errors.js';
import type { KernelArgs, KernelLimits, KernelProgram } from './program.js';
import { where } from './shader.js';
import { convBindings, convGeom, isDepthwise, isPointwise } from './conv-common.js';
import { conv2d } from './conv2d.js';
import { groupedConv, usesGroupedKernel } from './grouped-conv.js';
import { depthwise, depthwiseHalf } from './depthwise.js';
import { type DotChoice, dotCandidates, dotChoiceKey, pointwise } from './pointwise.js';
import { binary, binaryOps } from './binary.js';
import { variadic, variadicOps } from './variadic.js';
import { unary, unaryOps } from './unary.js';
import { reduceMean, reduceOps } from './reduce.js';
import { pool } from './pool.js';
import { gemm } from './gemm.js';
import { concat } from './concat.js';
import { squeezeExcite } from './squeeze-excite.js';
import { pointwiseMean } from './pointwise-mean.js';
import { channelShuffle } from './channel-shuffle.js';
import { split } from './split.js';
import { slice } from './slice.js';
import { gather } from './gather.js';
import { transpose } from './transpose.js';
import { pad } from './pad.js';
import { softmax } from './softmax.js';
import { batchNorm } from './batchnorm.js';
import { resize } from './resize.js';
import { convTranspose } from './conv-transpose.js';
import { fusedPwDw } from './fused-pwdw.js';
import { fusedDwPw } from './fused-dwpw.js';
import { fusedPwPw } from './fused-pwpw.js';
import { type Int8KernelArgs, type Int8Program, shapeArgs } from './int8/common.js';
import { int8Conv } from './int8/conv.js';
import { int8Depthwise } from './int8/depthwise.js';
import { int8Pointwise } from './int8/pointwise.js';
import { chooseInt8SmxTiles, int8PointwiseSubgroupMatrix } from './int8/pointwise-subgroup-matrix.js';
import { int8FullyConnected } from './int8/fc.js';
import { int8Activation, int8Binary, int8Requantize } from './int8/elementwise.js';
import { int8Pool } from './int8/pool.js';
import { int8Mean } from './int8/mean.js';
import { int8Pad } from './int8/pad.js';
import { int8Concat } from './int8/concat.js';
import { int8Softmax } from './int8/softmax.js';
import { int8FusedDwPw, int8FusedPwDw, int8FusedPwPw } from './int8/fused.js';
import { type StorageType, withStorage } from './f16.js';

/** One storage type for every tensor, or each tensor's by name (kernelFor). */
export type TensorStorage = StorageType | ((tensor: string) => StorageType);
import { type SmxVariant, type SubgroupMatrixSupport, chooseSmxTiles, pointwiseSubgroupMatrix, smxCandidates, smxTileKey } from './pointwise-subgroup-matrix.js';
import { chooseSmxDwPwTiles, fusedDwPwSubgroupMatrix } from './fused-dwpw-subgroup-matrix.js';

/** Ops whose output is the input's data under another shape: no kernel, the buffer is shared. */
export const aliasOps: ReadonlySet<string> = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout']);

/**
 * A node's kernel. A pointwise Conv's also names its `variants` (pointwiseVariants' keys, the rule's first), the
 * `variant` that runs, and a `fallback` note where the node's kernelVariant attribute named none of them.
 */
export type NodeKernel = { kind: 'alias' } | { kind: 'programs'; programs: KernelProgram[]; variants?: string[]; variant?: string; fallback?: string };

/** What an integer kernel takes: the node, its IR tensors and, for an FCM, its intermediate tensor (quantization). */
export type Int8Args = Int8KernelArgs & { intermediate?: Tensor };

/** A float kernel: shapes in, one or more programs out. */
type Fp32Builder = (args: KernelArgs) => KernelProgram | KernelProgram[];
/** An integer kernel: tensors (quantization, constant data) in, one program with host-prepared constants out. */
type Int8Builder = (args: Int8Args) => Int8Program;

interface KernelEntry { fp32?: Fp32Builder; int8?: Int8Builder }

const fp32Conv: Fp32Builder = (args) => {
  const g = convGeom(args);
  if (isPointwise(g)) return pointwise(args, g);
  if (g.shuffleOuts) throw unsupported(where(args), 'a shuffled store (shuffleGroups) needs a pointwise convolution');
  if (g.channelsLast) throw unsupported(where(args), 'a channels-last store (channelsLast) needs a pointwise convolution');
  if (g.resSampler) throw unsupported(where(args), 'a resized residual (residualResize) needs a pointwise convolution');
  if (isDepthwise(g)) return depthwise(args, g);
  return usesGroupedKernel(g) ? groupedConv(args, g) : conv2d(args, g);
};
const int8ConvAny: Int8Builder = (args) => {
  // The shuffled store is a float rewrite (src/pipeline/pipeline.ts applies it to float graphs only).
  if (args.node.attrs.shuffleGroups !== undefined) throw unsupported(where(args), 'no integer kernel takes a shuffled store (shuffleGroups)');
  const g = convGeom(shapeArgs(args));
  if (!isPointwise(g)) return isDepthwise(g) ? int8Depthwise(args) : int8Conv(args);
  return int8PointwiseSmx(args) ?? int8Pointwise(args);
};

/**
 * The pointwise Conv on integer subgroup matrices where the device offers them (args.subgroupMatrix) and
 * chooseInt8SmxTiles gives the layer tiles; undefined where the word kernel runs it. int8 weights are symmetric; a
 * uint8 weight zero point takes the column sums.
 */
function int8PointwiseSmx(args: Int8Args): Int8Program | undefined {
  const s = args.subgroupMatrix;
  const x = args.inputs[0], w = args.inputs[1];
  if (!s || args.flippedInput || args.requantizedOutput || !x || !w || (x.dtype !== 'int8' && x.dtype !== 'uint8')) return undefined;
  const [N, C, H, W] = x.shape, F = w.shape[0];
  const sums = x.dtype === 'uint8' && (w.quant?.zeroPoint[0] ?? 0) !== 0;
  const t = chooseInt8SmxTiles({ N, C, F, P: H * W }, x.dtype, s, args.limits, sums);
  return t ? int8PointwiseSubgroupMatrix(args, t, s.subgroupSize, !!s.emulate) : undefined;
}

/** An integer FCM needs its intermediate tensor's quantization to requantize between its two layers. */
const int8Fused = (k: (a: Int8Args & { intermediate: Tensor }) => Int8Program): Int8Builder => (args) => {
  if (!args.intermediate) throw unsupported(where(args), 'an integer FCM needs its intermediate tensor (for its quantization)');
  return k({ ...args, intermediate: args.intermediate });
};

/** Default-domain ops. */
const byOp: Record<string, KernelEntry> = {
  Conv: { fp32: fp32Conv, int8: int8ConvAny },
  Add: { fp32: binary, int8: int8Binary }, Sub: { fp32: binary, int8: int8Binary }, Mul: { fp32: binary, int8: int8Binary },
  Div: { fp32: binary }, PRelu: { fp32: binary },
  GlobalAveragePool: { fp32: reduceMean, int8: int8Mean }, ReduceMean: { fp32: reduceMean, int8: int8Mean },
  MaxPool: { fp32: pool, int8: int8Pool }, AveragePool: { fp32: pool, int8: int8Pool },
  Gemm: { fp32: gemm, int8: int8FullyConnected }, MatMul: { fp32: gemm },
  Concat: { fp32: concat, int8: int8Concat }, Split: { fp32: split }, Slice: { fp32: slice }, Gather: { fp32: gather }, Transpose: { fp32: transpose },
  Pad: { fp32: pad, int8: int8Pad }, ChannelShuffle: { fp32: channelShuffle }, SqueezeExcite: { fp32: squeezeExcite }, PointwiseMean: { fp32: (a) => pointwiseMean(a) }, Softmax: { fp32: softmax, int8: int8Softmax },
  BatchNormalization: { fp32: batchNorm },
  Resize: { fp32: resize }, ConvTranspose: { fp32: convTranspose },
  // The integer clamp of Relu / Clip; a float QuantizeLinear between two 8-bit tensors is a requantization.
  Relu: { int8: int8Activation }, Clip: { int8: int8Activation }, QuantizeLinear: { int8: int8Requantize },
};
for (const op of unaryOps) byOp[op] = { ...byOp[op], fp32: unary };
for (const op of reduceOps) byOp[op] = { ...byOp[op], fp32: reduceMean };
for (const op of binaryOps) byOp[op] = { ...byOp[op], fp32: binary };
for (const op of variadicOps) byOp[op] = { ...byOp[op], fp32: variadic };

/** Fused ops (domain ai.fcm.opt). */
const fused: Record<string, KernelEntry> = {
  FusedPwDw: { fp32: fusedPwDw, int8: int8Fused(int8FusedPwDw) },
  FusedDwPw: { fp32: fusedDwPw, int8: int8Fused(int8FusedDwPw) },
  FusedPwPw: { fp32: fusedPwPw, int8: int8Fused(int8FusedPwPw) },
};

/** The op name an unsupported-op report lists: the domain is shown for non-default domains. */
export const opLabel = (n: Pick<Node, 'op' | 'domain'>) => (n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.op}` : n.op);

/** Device features that select kernels of their own (absent: the kernels every device runs). */
export interface KernelFeatures {
  /** f16 x f16 -> f32 subgroup matrices: f16 pointwise convolutions run on them (kernels/pointwise-subgroup-matrix.ts). */
  subgroupMatrix?: SubgroupMatrixSupport;
}

/**
 * The float kernel of one node. `inputShapes[i]` is the shape of node.inputs[i] (undefined for ''), `outputShapes[i]`
 * of node.outputs[i]. Throws FcmError unsupported when no kernel can run it. `storage` 'f16': the same programs with
 * f16 tensors in memory and f32 arithmetic (kernels/f16.ts), except a pointwise convolution on a device with
 * subgroup matrices (`features.subgroupMatrix`), which takes its own f16 kernel where chooseSmxTiles gives it tiles,
 * and a depthwise convolution, which takes its f16 split with vector loads (kernels/depthwise.ts depthwiseHalf).
 * `storage` a function: the storage type of each tensor by name (a mixed fp16 schedule); each program's bindings
 * take their tensors' types, and the subgroup-matrix and f16 depthwise kernels only a node whose tensors are all f16.
 * A pointwise Conv's result names its variants (pointwiseVariants, the rule's first) and the one that runs: the node's
 * `kernelVariant` attribute where it names one of them, else the rule's (`fallback` says why it was not taken).
 */
export function kernelFor(node: Node, inputShapes: (number[] | undefined)[], outputShapes: number[][], limits: KernelLimits, storage: TensorStorage = 'f32', features: KernelFeatures = {}): NodeKernel {
  const of = typeof storage === 'string' ? () => storage : storage;
  const allHalf = [...node.inputs, ...node.outputs].every((t) => !t || of(t) === 'f16');
  const args = { node, inputShapes, outputShapes, limits };
  const smx = allHalf ? features.subgroupMatrix : undefined;
  const vs = isDefaultConv(node) ? pointwiseVariants(args, smx) : undefined;
  const asked = node.attrs.kernelVariant;
  if (!vs) {
    const k = ruleKernel(node, inputShapes, outputShapes, limits, storage, features);
    if (asked === undefined || k.kind === 'alias') return k;
    return { ...k, fallback: `node '${node.name}' (${node.op}): kernel variant '${String(asked)}' asked for, but only pointwise Convs have variants; its rule's kernel runs it` };
  }
  const v = typeof asked === 'string' ? vs.find((x) => x.key === asked) : undefined;
  const variants = vs.map((x) => x.key);
  if (v?.smx) return { kind: 'programs', programs: [smxProgram(args, v.smx, smx!)], variants, variant: v.key };
  if (v?.dot) return { ...nodeStorage(node, [pointwise(args, undefined, v.dot)], storage), variants, variant: v.key };
  const k = ruleKernel(node, inputShapes, outputShapes, limits, storage, features) as Extract<NodeKernel, { kind: 'programs' }>;
  const fallback = asked === undefined ? undefined
    : `node '${node.name}': kernel variant '${String(asked)}' is not one this layer can run on this device (${variants.join(', ')}); the rule's ${variants[0]} runs it`;
  return { ...k, variants, variant: variants[0], ...(fallback ? { fallback } : {}) };
}

const isDefaultConv = (n: Pick<Node, 'op' | 'domain' | 'inputs'>) => n.op === 'Conv' && (n.domain === '' || n.domain === 'ai.onnx') && n.inputs.length >= 2;

/** One kernel variant of a pointwise Conv: a subgroup-matrix variant or a DotChoice, named by its key. */
export interface PointwiseVariant { key: string; smx?: SmxVariant; dot?: DotChoice }

/**
 * The kernel variants of a pointwise Conv (default domain), the rule's first (chooseSmxTiles' where `smx` is given and
 * it gives tiles, else chooseDot's), then the others --tune times: smxCandidates' (with `smx`: the node is all f16 on
 * a device whose subgroup matrices passed their check) and dotCandidates'. Undefined for any other node. Keys:
 * 'smx:' + smxTileKey, or dotChoiceKey ('gemm:...', 'vec4:...', 'splitK:...'; with f16 storage, the plain f16 kernel).
 */
export function pointwiseVariants(args: KernelArgs, smx?: SubgroupMatrixSupport): PointwiseVariant[] | undefined {
  if (!isDefaultConv(args.node as Node)) return undefined;
  const g = convGeom(args);
  if (!isPointwise(g)) return undefined;
  const dot = { N: g.N, C: g.C, F: g.F, P: g.H * g.W, hasBias: g.hasBias, hasRes: g.hasRes, hasScale: g.hasScale, act: g.act };
  const dots: PointwiseVariant[] = dotCandidates(dot, args.limits).map((c) => ({ key: dotChoiceKey(c), dot: c }));
  // A shuffled or channels-last store and a resized residual are kernels/pointwise.ts's alone: no subgroup-matrix variant.
  if (!smx || g.shuffleOuts || g.channelsLast || g.resSampler) return dots;
  const smxKey = (t: SmxVariant) => `smx:${smxTileKey(t)}`;
  const rule = chooseSmxTiles(dot, smx, args.limits);
  const all: PointwiseVariant[] = [...(rule ? [{ key: smxKey(rule), smx: rule }] : []), ...smxCandidates(dot, smx, args.limits).map((t) => ({ key: smxKey(t), smx: t })), ...dots];
  const first = rule ? smxKey(rule) : dots[0].key;
  const out = [all.find((x) => x.key === first)!];
  for (const x of all) if (!out.some((o) => o.key === x.key)) out.push(x);
  return out;
}

function smxProgram(args: KernelArgs, t: SmxVariant, support: SubgroupMatrixSupport): KernelProgram {
  const g = convGeom(args);
  const dot = { N: g.N, C: g.C, F: g.F, P: g.H * g.W, hasBias: g.hasBias, hasRes: g.hasRes, hasScale: g.hasScale, act: g.act };
  const b = convBindings(g);
  return pointwiseSubgroupMatrix(dot, t, support, b.names, b.inputs, args.limits, where(args));
}

/** The float programs of one node with its tensors' storage types (kernels/f16.ts). */
function nodeStorage(node: Node, programs: KernelProgram[], storage: TensorStorage): Extract<NodeKernel, { kind: 'programs' }> {
  if (storage === 'f32') return { kind: 'programs', programs };
  if (typeof storage === 'string') return { kind: 'programs', programs: programs.map((p) => withStorage(p, storage)) };
  return {
    kind: 'programs',
    programs: programs.map((p) => {
      const outs = p.outputIndices ?? [...Array(p.outputs).keys()];
      return withStorage(p, [...p.inputs.map((i) => storage(node.inputs[i])), ...outs.map((i) => storage(node.outputs[i]))]);
    }),
  };
}

/** kernelFor's choice by the rules alone. */
function ruleKernel(node: Node, inputShapes: (number[] | undefined)[], outputShapes: number[][], limits: KernelLimits, storage: TensorStorage, features: KernelFeatures): NodeKernel {
  const of = typeof storage === 'string' ? () => storage : storage;
  const allHalf = [...node.inputs, ...node.outputs].every((t) => !t || of(t) === 'f16');
  if (allHalf && features.subgroupMatrix) {
    const p = f16SubgroupMatrixKernel({ node, inputShapes, outputShapes, limits }, features.subgroupMatrix)
      ?? f16SubgroupMatrixFcm({ node, inputShapes, outputShapes, limits }, features.subgroupMatrix);
    if (p) return { kind: 'programs', programs: [p] };
  }
  if (allHalf) {
    const p = f16DepthwiseKernel({ node, inputShapes, outputShapes, limits });
    if (p) return { kind: 'programs', programs: [withStorage(p, 'f16')] };
  }
  const k = fp32KernelFor(node, inputShapes, outputShapes, limits);
  if (k.kind === 'alias') return k;
  return nodeStorage(node, k.programs, storage);
}

/** The subgroup-matrix program of a pointwise Conv (default domain) that chooseSmxTiles covers, else undefined. */
export function f16SubgroupMatrixKernel(args: KernelArgs, support: SubgroupMatrixSupport): KernelProgram | undefined {
  const n = args.node as Node;
  if (n.op !== 'Conv' || (n.domain !== '' && n.domain !== 'ai.onnx')) return undefined;
  if (args.node.inputs.length < 2) return undefined;
  const g = convGeom(args);
  // The subgroup-matrix kernel has no shuffled or channels-last store and reads no resized residual: the registry
  // falls back to the f16 form of kernels/pointwise.ts.
  if (!isPointwise(g) || g.shuffleOuts || g.channelsLast || g.resSampler) return undefined;
  const dot = { N: g.N, C: g.C, F: g.F, P: g.H * g.W, hasBias: g.hasBias, hasRes: g.hasRes, hasScale: g.hasScale, act: g.act };
  const t = chooseSmxTiles(dot, support, args.limits);
  if (!t) return undefined;
  const b = convBindings(g);
  return pointwiseSubgroupMatrix(dot, t, support, b.names, b.inputs, args.limits, where(args));
}

/**
 * The subgroup-matrix program of a DW-PW FCM (kernels/fused-dwpw-subgroup-matrix.ts) where the device's support
 * takes them (SubgroupMatrixSupport.fcm) and the pointwise rule gives its pointwise layer tiles, else undefined.
 */
export function f16SubgroupMatrixFcm(args: KernelArgs, support: SubgroupMatrixSupport): KernelProgram | undefined {
  const n = args.node as Node;
  // No channels-last store and no resized residual there: the f16 form of kernels/fused-dwpw.ts runs such a node.
  if (!support.fcm || n.op !== 'FusedDwPw' || n.domain !== fcmDomain || n.attrs.channelsLast !== undefined || n.attrs.residualResize !== undefined) return undefined;
  const t = chooseSmxDwPwTiles(args, support);
  return t ? fusedDwPwSubgroupMatrix(args, t, support) : undefined;
}

/** The f16 depthwise program (kernels/depthwise.ts depthwiseHalf) of a depthwise Conv (default domain), else undefined. */
export function f16DepthwiseKernel(args: KernelArgs): KernelProgram | undefined {
  const n = args.node as Node;
  if (n.op !== 'Conv' || (n.domain !== '' && n.domain !== 'ai.onnx') || args.node.inputs.length < 2) return undefined;
  const g = convGeom(args);
  // A 1x1 conv of one channel to one is depthwise too; with a store or a residual read of its own it is the
  // pointwise kernels' (depthwiseHalf has neither).
  return isDepthwise(g) && !g.channelsLast && !g.resSampler && !g.shuffleOuts ? depthwiseHalf(args, g) : undefined;
}

function fp32KernelFor(node: Node, inputShapes: (number[] | undefined)[], outputShapes: number[][], limits: KernelLimits): NodeKernel {
  const w = where({ node, inputShapes, outputShapes, limits });
  const args = { node, inputShapes, outputShapes, limits };
  if (node.domain === fcmDomain) {
    const k = fused[node.op]?.fp32;
    if (!k) throw unsupported(w, `no kernel for fused op '${node.op}'`);
    if (node.attrs.channelsLast !== undefined && node.op !== 'FusedDwPw') throw unsupported(w, `${node.op} has no channels-last store`);
    if (node.attrs.residualResize !== undefined && node.op !== 'FusedDwPw') throw unsupported(w, `${node.op} reads no resized residual`);
    return { kind: 'programs', programs: [k(args) as KernelProgram] };
  }
  if (node.domain !== '' && node.domain !== 'ai.onnx') throw unsupported(w, `no kernel for op '${opLabel(node)}'`);
  if (aliasOps.has(node.op)) {
    if (node.outputs.slice(1).some((y) => y)) throw unsupported(w, `${node.op} with a second output (mask) is not supported`);
    return { kind: 'alias' };
  }
  const k = byOp[node.op]?.fp32;
  if (!k) throw unsupported(w, `no kernel for op '${node.op}'`);
  const multi = node.op === 'Split' || node.op === 'ChannelShuffle' || (node.op === 'Conv' && node.attrs.shuffleGroups !== undefined);
  if (!multi && node.outputs.slice(1).some((y) => y)) throw unsupported(w, `${node.op} with more than one output is not supported`);
  if (node.op !== 'Conv' && node.attrs.channelsLast !== undefined) return { kind: 'programs', programs: channelsLastFlat(args, k) };
  const p = k(args);
  return { kind: 'programs', programs: Array.isArray(p) ? p : [p] };
}

/**
 * The programs of a flat-index kernel (element-wise, pooling, Slice: one invocation per output element i of the NCHW
 * output, each storing `out[i] = ...` once) storing that output channels-last instead (attr channelsLast; a Transpose
 * [0, 2, 3, 1] folded in by src/rewrite/channels-last-store.ts): the kernel is built for the logical [N, C, H, W]
 * output and its stores go to [n, h, w, c]. Any other store form is refused, so a kernel written otherwise never
 * stores in the wrong layout.
 */
function channelsLastFlat(args: KernelArgs, build: Fp32Builder): KernelProgram[] {
  const w = where(args);
  const y = args.outputShapes[0];
  if (args.node.attrs.channelsLast !== 1) throw invalid(w, 'channelsLast must be 1 where it is given');
  if (!y || y.length !== 4) throw unsupported(w, 'a channels-last store needs a 4-D output');
  const [N, H, W, C] = y;
  const built = build({ ...args, outputShapes: [[N, C, H, W]] });
  return (Array.isArray(built) ? built : [built]).map((p) => {
    const stores = p.wgsl.split('out[i] = ').length - 1;
    const accesses = (p.wgsl.match(/\bout\[/g) ?? []).length;
    if (p.outputs !== 1 || stores < 1 || accesses !== stores) throw unsupported(w, `${args.node.op} has no channels-last store`);
    const fn = `
// The channels-last offset of NCHW element i of [${N}, ${C}, ${H}, ${W}].
fn channelsLast(i: u32) -> u32 {
  let cl_w = i % ${W}u;
  let cl_h = (i / ${W}u) % ${H}u;
  let cl_c = (i / ${W * H}u) % ${C}u;
  let cl_n = i / ${W * H * C}u;
  return ((cl_n * ${H}u + cl_h) * ${W}u + cl_w) * ${C}u + cl_c;
}`;
    // The key names the shape: the kernel's own key may name only the element count (element-wise ops).
    return { ...p, cacheKey: `nhwc[${N}x${C}x${H}x${W}]|${p.cacheKey}`, wgsl: `${p.wgsl.replaceAll('out[i] = ', 'out[channelsLast(i)] = ')}${fn}\n` };
  });
}

/**
 * The integer kernel of one node of an int8 / uint8 graph: `args` holds the node, the IR tensors of its inputs and
 * outputs (quantization and constant data), the device limits, whether WGSL offers packed_4x8_integer_dot_product,
 * and for FCMs the intermediate tensor. Reshape-like ops stay aliases (aliasOps, decided by the caller); anything
 * else without an integer kernel is refused (FcmError unsupported).
 */
export function int8KernelFor(args: Int8Args, domain = ''): Int8Program {
  const w = where(args);
  // The channels-last store is a float rewrite (src/pipeline/pipeline.ts applies it to float graphs only).
  if (args.node.attrs.channelsLast !== undefined) throw unsupported(w, 'no integer kernel takes a channels-last store (channelsLast)');
  if (args.node.attrs.residualResize !== undefined) throw unsupported(w, 'no integer kernel reads a resized residual (residualResize)');
  let k: Int8Builder | undefined;
  if (domain === fcmDomain) {
    k = fused[args.node.op]?.int8;
    if (!k) throw unsupported(w, `no integer kernel for fused op '${args.node.op}'`);
  } else {
    if (domain !== '' && domain !== 'ai.onnx') throw unsupported(w, `no integer kernel for op '${domain}.${args.node.op}'`);
    k = byOp[args.node.op]?.int8;
    if (!k) throw unsupported(w, `no integer kernel for ${args.node.op}`);
  }
  if (args.requantizedOutput && (domain !== '' || args.node.op !== 'Softmax')) throw unsupported(w, `no integer kernel for ${args.node.op} takes a folded QUANTIZE`);
  const p = k(args);
  // A folded residual Add is taken by the kernels that bind the residual; the others would drop it.
  if (args.residual && !p.inputs.includes(args.residual.index)) throw unsupported(w, `${p.name} takes no folded residual Add`);
  if (args.flippedInput && !p.inputFlipped) throw unsupported(w, `${p.name} takes no folded input QUANTIZE`);
  return p;
}
