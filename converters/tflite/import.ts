// TFLite importer: a verified .tflite file (verify.ts) into the graph IR (src/graph/ir.ts).
//
// Layout rule (NHWC -> NCHW):
// - Every rank-4 tensor, activation or constant, is NCHW in the IR (shape and data permuted by
//   [0, 3, 1, 2]; a per-channel quantization axis moves with its dimension). Tensors of other ranks keep
//   TFLite's layout. So CONV_2D weights [O,H,W,I] become [O,I,H,W] by the same rule, and DEPTHWISE weights
//   [1,H,W,C] become [1,C,H,W], reshaped (same memory order) to [C,1,H,W] with group C.
// - Ops whose meaning does not depend on layout (elementwise, activations, pools, convs, pad, concat,
//   softmax, quantize) work on the NCHW tensors directly with their axes converted (concat axis, pad
//   order, mean axes, softmax over C = axis 1). Lower-rank operands that TFLite broadcasts against a
//   rank-4 tensor (trailing dims, C last) are lifted to rank 4 and permuted, so they broadcast alike.
// - Layout-sensitive ops need NHWC memory order: RESHAPE, FULLY_CONNECTED on a rank-4 input, and every
//   opaque op get a Transpose to NHWC in front of each rank-4 input (a Reshape when only size-1 dims move,
//   which is the same memory order) and a Transpose back to NCHW after a rank-4 output. MEAN without
//   keep_dims and SQUEEZE of a rank-4 input reduce in NCHW and transpose the remaining dims back to
//   TFLite's order when the two orders differ.
// - Graph inputs and outputs of rank 4 are NCHW.
// Fused activations become separate nodes (Relu, Clip 0..6, Clip -1..1, Tanh) after a `<output>/preact`
// tensor with the output's dtype and quantization, as ONNX files spell them, so graph passes treat both
// alike. SAME/VALID padding becomes explicit pads (TFLite puts the odd pixel at the bottom/right).

import type * as flatbuffers from 'flatbuffers';
import { ByteBuffer, Encoding } from 'flatbuffers';
import { readFlex } from './flex.js';
import { decodeUtf8Lossless } from '../../src/text.js';
import { budgetFor, maxMessageBytes, readInputFile } from '../../src/input-file.js';
import { invalid, unsupported } from '../../src/errors.js';
import {
  newAttrs, type Attrs, type DType, type Graph, type Node, type Quantization, type Tensor, type TensorData,
} from '../../src/graph/ir.js';
import { halfValues, makeData } from '../../src/graph/util.js';
import { defaultMaxMemory, type ImportOptions } from '../options.js';
import {
  ActivationFunctionType, BuiltinOperator, BuiltinOptions, ConcatenationOptions, Conv2DOptions,
  DepthwiseConv2DOptions, FullyConnectedOptions, type Model, type Operator, Padding, Pool2DOptions,
  ReducerOptions, SoftmaxOptions, SqueezeOptions, type SubGraph, TensorType, AddOptions, SubOptions, MulOptions,
} from './schema_generated.js';
import { bufferBytes, openModel } from './verify.js';
import { densify, sparseLayout } from './densify.js';

// Strings of TFLite files (names) decode without losing invalid UTF-8 bytes (src/text.ts), as ONNX strings do:
// flatbuffers' TextDecoder would turn each into U+FFFD and make distinct names equal.
const flatString = ByteBuffer.prototype.__string;
ByteBuffer.prototype.__string = function lossless(this: ByteBuffer, offset: number, encoding?: Encoding) {
  const bytes = flatString.call(this, offset, Encoding.UTF8_BYTES) as Uint8Array;
  return encoding === Encoding.UTF8_BYTES ? bytes : decodeUtf8Lossless(bytes);
};

export const tfliteDomain = 'tflite';

/** Reads a model given as a path or as bytes; the source name is for error messages. */
export async function readTfliteInput(input: string | Uint8Array, opts: ImportOptions = {}): Promise<{ bytes: Uint8Array; source: string }> {
  if (typeof input !== 'string') return { bytes: input, source: opts.source ?? 'model.tflite' };
  const source = opts.source ?? input;
  // Regular files only, the size checked against the budget first (src/input-file.ts).
  return { bytes: await readInputFile(input, { source, ...budgetFor(opts.maxMemory ?? defaultMaxMemory, maxMessageBytes, 'TFLite (flatbuffer)') }), source };
}

/** The builtin code of an operator code: the larger of the int8 and int32 fields (schema 3a). */
export function builtinCodeOf(m: Model, opcodeIndex: number): number {
  const c = m.operatorCodes(opcodeIndex)!;
  return Math.max(c.deprecatedBuiltinCode(), c.builtinCode());
}

/** Lower-case builtin name (the FusePlanner reference's DAG `name`): 'conv_2d'; custom ops give their custom code. */
export function opNameOf(m: Model, opcodeIndex: number): string {
  const code = builtinCodeOf(m, opcodeIndex);
  if (code === BuiltinOperator.CUSTOM) return (m.operatorCodes(opcodeIndex)!.customCode() ?? 'custom').toLowerCase();
  return (BuiltinOperator[code] ?? `builtin_${code}`).toLowerCase();
}

const dtypeOf: Partial<Record<TensorType, DType>> = {
  [TensorType.FLOAT32]: 'float32', [TensorType.FLOAT16]: 'float16', [TensorType.FLOAT64]: 'float64',
  [TensorType.BFLOAT16]: 'bfloat16', [TensorType.INT8]: 'int8', [TensorType.UINT8]: 'uint8',
  [TensorType.INT16]: 'int16', [TensorType.UINT16]: 'uint16', [TensorType.INT32]: 'int32',
  [TensorType.UINT32]: 'uint32', [TensorType.INT64]: 'int64', [TensorType.UINT64]: 'uint64',
  [TensorType.BOOL]: 'bool', [TensorType.STRING]: 'string',
};

function typedView(dtype: DType, bytes: Uint8Array): TensorData {
  const ctor: { new (b: ArrayBufferLike, o: number, n: number): TensorData; BYTES_PER_ELEMENT: number } = {
    float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array,
    uint16: Uint16Array, float16: Uint16Array, bfloat16: Uint16Array, int32: Int32Array, uint32: Uint32Array,
    int64: BigInt64Array, uint64: BigUint64Array, bool: Uint8Array, string: Uint8Array,
  }[dtype] as never;
  const size = ctor.BYTES_PER_ELEMENT;
  // A view of the file where alignment allows; a copy otherwise.
  const src = (bytes.byteOffset % size === 0) ? bytes : bytes.slice();
  return new ctor(src.buffer, src.byteOffset, src.byteLength / size);
}

const nhwcToNchw = [0, 3, 1, 2];
const nchwToNhwc = [0, 2, 3, 1];
/** Position in NCHW of NHWC axis a. */
const nchwPos = [0, 2, 3, 1];

function permute<T>(xs: readonly T[], perm: readonly number[]): T[] {
  return perm.map((p) => xs[p]);
}

function transposeData(data: TensorData, shape: number[], perm: number[]): TensorData {
  const rank = shape.length;
  const outShape = permute(shape, perm);
  const inStrides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) inStrides[i] = inStrides[i + 1] * shape[i + 1];
  const out = new (data.constructor as { new (n: number): TensorData })(data.length);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < data.length; o++) {
    let src = 0;
    for (let d = 0; d < rank; d++) src += idx[d] * inStrides[perm[d]];
    (out as unknown as number[])[o] = (data as unknown as number[])[src];
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d] < outShape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** True when a transpose only moves size-1 dims: memory order is unchanged, a Reshape does it. */
function isTrivialPerm(shape: number[], perm: number[]): boolean {
  const order = perm.filter((p) => shape[p] !== 1);
  return order.every((p, i) => i === 0 || order[i - 1] < p);
}

class GraphBuilder {
  readonly tensors = new Map<string, Tensor>();
  readonly nodes: Node[] = [];
  /** IR name of each TFLite tensor (canonical: NCHW when rank 4). */
  readonly names: string[] = [];
  /** TFLite (NHWC) shapes. */
  readonly tfShapes: number[][] = [];
  private readonly nativeCache = new Map<string, string>();
  private readonly used = new Set<string>();

  /**
   * `batch`: the first dimension of the tensors in `batched` (the file's indices) where they have rank >= 2 and 1 there
   * in the file (TFLite files fix the batch, usually at 1), so that the model runs `batch` images at once; shape
   * inference (prepareGraph) then checks every op against it: a tensor whose first dimension is not the batch fails
   * there by name.
   */
  constructor(readonly m: Model, readonly bytes: Uint8Array, readonly source: string, readonly batch = 1, readonly batched: ReadonlySet<number> = new Set()) {}

  unique(base: string): string {
    let name = base, i = 1;
    while (this.used.has(name) || this.tensors.has(name)) name = `${base}_${i++}`;
    this.used.add(name);
    return name;
  }

  addTensor(t: Tensor): string {
    this.tensors.set(t.name, t);
    this.used.add(t.name);
    return t.name;
  }

  node(name: string, op: string, inputs: string[], outputs: string[], attrs: Attrs = newAttrs(), domain = ''): void {
    this.nodes.push({ name: this.unique(name), op, domain, inputs, outputs, attrs });
  }

  /** A new tensor shaped like `like`, with its dtype and quantization. */
  derived(base: string, like: string, shape?: number[], quant?: Quantization | null): string {
    const t = this.tensors.get(like)!;
    const name = this.unique(base);
    return this.addTensor({ name, dtype: t.dtype, shape: shape ?? [...t.shape], quant: quant === null ? undefined : quant ?? t.quant });
  }

  constant(base: string, dtype: DType, shape: number[], data: TensorData): string {
    return this.addTensor({ name: this.unique(base), dtype, shape, data });
  }

  loadTensors(sg: number): void {
    const g = this.m.subgraphs(sg)!;
    for (let i = 0; i < g.tensorsLength(); i++) {
      const t = g.tensors(i)!;
      const label = `tensor ${i}${t.name() ? ` '${t.name()}'` : ''}`;
      const dtype = dtypeOf[t.type()];
      // The schema's TensorType is a signed byte: show an unknown code as the file holds it (200, not -56).
      if (!dtype) throw unsupported(this.source, `${label} has type ${TensorType[t.type()] ?? t.type() & 0xff}, which fcm-opt does not support`);
      const shape: number[] = [];
      for (let d = 0; d < t.shapeLength(); d++) shape.push(t.shape(d)!);
      const raw = bufferBytes(this.m, t.buffer(), this.bytes);
      if (this.batch !== 1 && this.batched.has(i) && shape.length >= 2 && shape[0] === 1) shape[0] = this.batch;
      this.tfShapes.push(shape);
      const q = t.quantization();
      let quant: Quantization | undefined;
      if (q && q.scaleLength() > 0) {
        quant = { scale: [], zeroPoint: [] };
        for (let k = 0; k < q.scaleLength(); k++) { quant.scale.push(q.scale(k)!); quant.zeroPoint.push(Number(q.zeroPoint(k)!)); }
        if (q.scaleLength() > 1) quant.axis = shape.length === 4 ? nchwPos[q.quantizedDimension()] : q.quantizedDimension();
      }
      if ((dtype === 'int8' || dtype === 'uint8') && !quant) {
        throw invalid(this.source, `${label} is ${dtype} but has no quantization parameters (scale and zero point)`);
      }
      // Every integer kernel and (de)quantization reads the zero points as values of the tensor's type.
      const zpRange = quant ? zeroPointRange[dtype] : undefined;
      const badZp = zpRange && quant!.zeroPoint.find((z) => !Number.isSafeInteger(z) || z < zpRange[0] || z > zpRange[1]);
      if (badZp !== undefined) throw invalid(this.source, `zero point ${badZp} of tensor '${t.name() ?? i}' is outside the range of ${dtype} (tensor ${i})`);
      let data = raw.length > 0 && dtype !== 'string' ? typedView(dtype, raw) : undefined;
      const sparsity = t.sparsity();
      if (sparsity && data) {
        // A sparse constant (verify.ts checked its layout): expanded to its shape, as DENSIFY would.
        data = densify(data, sparseLayout(sparsity, shape, `${this.source}: ${label}`), shape.reduce((a, b) => a * b, 1));
      }
      let irShape = shape;
      if (shape.length === 4) {
        irShape = permute(shape, nhwcToNchw);
        if (data) data = transposeData(data, shape, nhwcToNchw);
      }
      const name = this.unique(t.name() || `tensor_${i}`);
      this.names.push(name);
      this.addTensor({ name, dtype, shape: irShape, data, quant });
    }
  }

  tensor(name: string): Tensor { return this.tensors.get(name)!; }

  /** The tensor in TFLite's (NHWC) memory order: a Transpose (or Reshape) in front of a rank-4 tensor. */
  toNative(name: string, at: string): string {
    const t = this.tensor(name);
    if (t.shape.length !== 4) return name;
    const cached = this.nativeCache.get(name);
    if (cached) return cached;
    const shape = permute(t.shape, nchwToNhwc);
    const quant = t.quant && t.quant.axis !== undefined ? { ...t.quant, axis: nchwToNhwc.indexOf(t.quant.axis) } : t.quant;
    const out = this.derived(`${name}/nhwc`, name, shape, quant ?? null);
    this.reorder(name, out, t.shape, nchwToNhwc, `${at}/to_nhwc`);
    this.nativeCache.set(name, out);
    return out;
  }

  /** Writes `target` (canonical, NCHW when rank 4) from a tensor in TFLite's order, or returns where to write. */
  nativeOutput(target: string): string {
    const t = this.tensor(target);
    if (t.shape.length !== 4) return target;
    const quant = t.quant && t.quant.axis !== undefined ? { ...t.quant, axis: nchwToNhwc.indexOf(t.quant.axis) } : t.quant;
    return this.derived(`${target}/nhwc`, target, permute(t.shape, nchwToNhwc), quant ?? null);
  }

  finishNative(native: string, target: string, at: string): void {
    if (native !== target) this.reorder(native, target, this.tensor(native).shape, nhwcToNchw, `${at}/to_nchw`);
  }

  reorder(from: string, to: string, shape: number[], perm: number[], name: string): void {
    if (isTrivialPerm(shape, perm)) this.reshape(from, to, name);
    else this.node(name, 'Transpose', [from], [to], newAttrs({ perm }));
  }

  reshape(from: string, to: string, name: string): void {
    const shape = this.tensor(to).shape;
    const s = this.constant(`${name}/shape`, 'int64', [shape.length], BigInt64Array.from(shape.map(BigInt)));
    this.node(name, 'Reshape', [from, s], [to], newAttrs({ shape }));
  }

  /** A lower-rank operand that TFLite broadcasts against rank-4 NHWC, as a rank-4 NCHW tensor. */
  broadcast4(name: string, at: string): string {
    const t = this.tensor(name);
    if (t.shape.length >= 4) return name;
    const nhwc = [...new Array<number>(4 - t.shape.length).fill(1), ...t.shape];
    const nchw = permute(nhwc, nhwcToNchw);
    if (t.data) {
      const data = transposeData(t.data, nhwc, nhwcToNchw);
      const quant = t.quant && t.quant.axis !== undefined ? { ...t.quant, axis: nchwPos[t.quant.axis + 4 - t.shape.length] } : t.quant;
      const out = this.unique(`${name}/nchw`);
      return this.addTensor({ name: out, dtype: t.dtype, shape: nchw, data, quant });
    }
    const lifted = this.derived(`${name}/rank4`, name, nhwc, t.quant?.axis !== undefined ? null : undefined);
    this.reshape(name, lifted, `${at}/lift`);
    const out = this.derived(`${name}/nchw`, name, nchw, t.quant?.axis !== undefined ? null : undefined);
    this.reorder(lifted, out, nhwc, nhwcToNchw, `${at}/lift_nchw`);
    return out;
  }

  /** Emits op -> out, with TFLite's fused activation as a separate node. */
  withActivation(name: string, op: string, inputs: string[], out: string, attrs: Attrs, act: ActivationFunctionType): void {
    if (act === ActivationFunctionType.NONE) { this.node(name, op, inputs, [out], attrs); return; }
    const pre = this.derived(`${out}/preact`, out);
    this.node(name, op, inputs, [pre], attrs);
    this.activation(`${name}/${ActivationFunctionType[act]?.toLowerCase() ?? act}`, act, pre, out);
  }

  activation(name: string, act: ActivationFunctionType, x: string, out: string): void {
    switch (act) {
      case ActivationFunctionType.RELU: this.node(name, 'Relu', [x], [out]); return;
      case ActivationFunctionType.RELU6: this.node(name, 'Clip', [x], [out], newAttrs({ min: 0, max: 6 })); return;
      case ActivationFunctionType.RELU_N1_TO_1: this.node(name, 'Clip', [x], [out], newAttrs({ min: -1, max: 1 })); return;
      case ActivationFunctionType.TANH: this.node(name, 'Tanh', [x], [out]); return;
      default: throw unsupported(this.source, `${name}: fused activation ${ActivationFunctionType[act] ?? act} is not supported`);
    }
  }

  /** int constants of an operator input (pads, axes), or null when it is not a constant. */
  intConst(t: number): number[] | null {
    if (t < 0) return null;
    const x = this.tensor(this.names[t]);
    if (!x.data) return null;
    // Axes, paddings, sizes and shapes are integer tensors; a float one (another op's weights) is no such list.
    if (!/^u?int(8|16|32|64)$/.test(x.dtype)) throw invalid(this.source, `tensor '${this.names[t]}' is ${x.dtype} where an integer tensor (axes, sizes, paddings) is expected`);
    return Array.from(x.data as ArrayLike<number | bigint>, (v) => Number(v));
  }

  /** Explicit pads [top, left, bottom, right] for SAME/VALID, TFLite's way (extra pixel at the end). */
  pads(padding: Padding, inH: number, inW: number, k: [number, number], s: [number, number], d: [number, number]): { pads: number[]; out: [number, number] } {
    const one = (i: number, kk: number, ss: number, dd: number): [number, number, number] => {
      const eff = (kk - 1) * dd + 1;
      if (padding === Padding.VALID) return [0, 0, Math.floor((i - eff) / ss) + 1];
      const o = Math.ceil(i / ss);
      const total = Math.max((o - 1) * ss + eff - i, 0);
      return [Math.floor(total / 2), total - Math.floor(total / 2), o];
    };
    const [t, b, oh] = one(inH, k[0], s[0], d[0]);
    const [l, r, ow] = one(inW, k[1], s[1], d[1]);
    return { pads: [t, l, b, r], out: [oh, ow] };
  }
}

/** Fields of a builtin options table the generated schema (trimmed to the ops fcm-opt used first) has no
 *  class for, read by field index from the flatbuffer. */
class RawOptions {
  bb: flatbuffers.ByteBuffer | null = null;
  bb_pos = 0;
  private at(field: number): number { return this.bb!.__offset(this.bb_pos, 4 + 2 * field); }
  float(field: number, dflt: number): number { const o = this.at(field); return o ? this.bb!.readFloat32(this.bb_pos + o) : dflt; }
  int(field: number, dflt: number): number { const o = this.at(field); return o ? this.bb!.readInt32(this.bb_pos + o) : dflt; }
  int8(field: number, dflt: number): number { const o = this.at(field); return o ? this.bb!.readInt8(this.bb_pos + o) : dflt; }
  bool(field: number): boolean { const o = this.at(field); return o ? this.bb!.readInt8(this.bb_pos + o) !== 0 : false; }
}

/** Elementwise TFLite ops and their ONNX names (binary ones broadcast like ADD). */
const unaryOps: Partial<Record<number, string>> = {
  [BuiltinOperator.NEG]: 'Neg', [BuiltinOperator.EXP]: 'Exp', [BuiltinOperator.SQRT]: 'Sqrt', [BuiltinOperator.LOG]: 'Log',
};
const binaryOps: Partial<Record<number, string>> = {
  [BuiltinOperator.DIV]: 'Div', [BuiltinOperator.MAXIMUM]: 'Max', [BuiltinOperator.MINIMUM]: 'Min', [BuiltinOperator.POW]: 'Pow',
  [BuiltinOperator.LESS]: 'Less', [BuiltinOperator.GREATER]: 'Greater', [BuiltinOperator.GREATER_EQUAL]: 'GreaterOrEqual',
  [BuiltinOperator.EQUAL]: 'Equal',
};
const reduceOps: Partial<Record<number, 'ReduceMax' | 'ReduceSum' | 'ReduceMin'>> = {
  [BuiltinOperator.REDUCE_MAX]: 'ReduceMax', [BuiltinOperator.SUM]: 'ReduceSum', [BuiltinOperator.REDUCE_MIN]: 'ReduceMin',
};

/** Imports a TFLite model (path or bytes) into the IR; verifies the file first (verify.ts). */
export async function importTflite(input: string | Uint8Array, opts: ImportOptions = {}): Promise<Graph> {
  const { bytes, source } = await readTfliteInput(input, opts);
  const m = openModel(bytes, source, opts.maxMemory ?? defaultMaxMemory);
  return graphFromModel(m, bytes, source, batchOf(m, source, opts.batch));
}

/**
 * The batch to import at: `batch` where every input of rank >= 2 has batch 1 in the file, else the file's (an input of
 * another batch is refused with `batch` > 1: its first dimension may not be the batch).
 */
function batchOf(m: Model, source: string, batch = 1): number {
  if (!Number.isInteger(batch) || batch < 1) throw invalid(source, `batch must be a whole number >= 1, got ${batch}`);
  if (batch === 1) return 1;
  const sg = m.subgraphs(0)!;
  for (let i = 0; i < sg.inputsLength(); i++) {
    const t = sg.tensors(sg.inputs(i)!)!;
    const shape = Array.from({ length: t.shapeLength() }, (_, d) => t.shape(d)!);
    if (shape.length >= 2 && shape[0] !== 1) throw invalid(source, `input '${t.name() ?? i}' has a fixed first dimension of ${shape[0]} [${shape.join(',')}]: a batch of ${batch} needs inputs of batch 1`);
  }
  return batch;
}

export function graphFromModel(m: Model, bytes: Uint8Array, source: string, batch = 1): Graph {
  const sg = m.subgraphs(0)!;
  const g = new GraphBuilder(m, bytes, source, batch, batch === 1 ? new Set() : inputDependent(sg));
  g.loadTensors(0);
  for (let o = 0; o < sg.operatorsLength(); o++) convertOperator(g, sg.operators(o)!, o);
  const inputs: string[] = [], outputs: string[] = [];
  for (let i = 0; i < sg.inputsLength(); i++) inputs.push(g.names[sg.inputs(i)!]);
  for (let i = 0; i < sg.outputsLength(); i++) outputs.push(g.names[sg.outputs(i)!]);
  const nodes = removeDeadNodes(g.nodes, outputs);
  // A TFLite op the importer keeps as it is (custom ops: detection post-processing, MediaPipe's landmark transforms)
  // works on the file's shapes, which may hold one image: refused at another batch rather than run on a wrong layout.
  const opaque = batch === 1 ? undefined : nodes.find((n) => n.domain !== '');
  if (opaque) throw unsupported(source, `node '${opaque.name}' (${opaque.op}) is a TFLite op run as saved, on the file's shapes: the model runs at the batch it was saved with, not ${batch}`);
  return { name: sg.name() ?? 'main', inputs, outputs, tensors: g.tensors, nodes, source };
}

/**
 * The tensors (file indices) computed from the subgraph's inputs: the inputs and every output of an operator that reads
 * one of them (operators are stored in execution order). Tensors computed from constants alone (DEQUANTIZE of f16
 * weights, shape arithmetic) keep their shapes at another batch: a depthwise kernel of shape [1, KH, KW, C] is no batch.
 */
function inputDependent(sg: SubGraph): Set<number> {
  const dep = new Set<number>();
  for (let i = 0; i < sg.inputsLength(); i++) dep.add(sg.inputs(i)!);
  for (let o = 0; o < sg.operatorsLength(); o++) {
    const op = sg.operators(o)!;
    let reads = false;
    for (let i = 0; i < op.inputsLength() && !reads; i++) reads = dep.has(op.inputs(i)!);
    if (reads) for (let i = 0; i < op.outputsLength(); i++) dep.add(op.outputs(i)!);
  }
  return dep;
}

/** Drops nodes whose outputs nothing reads: the shape arithmetic a static RESHAPE no longer needs. */
function removeDeadNodes(nodes: Node[], outputs: string[]): Node[] {
  const live = new Set(outputs);
  const keep: boolean[] = new Array<boolean>(nodes.length).fill(false);
  for (let i = nodes.length - 1; i >= 0; i--) {
    if (nodes[i].outputs.some((y) => live.has(y))) {
      keep[i] = true;
      for (const x of nodes[i].inputs) if (x) live.add(x);
    }
  }
  return nodes.filter((_, i) => keep[i]);
}

function convertOperator(g: GraphBuilder, op: Operator, index: number): void {
  const m = g.m;
  const code = builtinCodeOf(m, op.opcodeIndex());
  const lower = opNameOf(m, op.opcodeIndex());
  const name = `${lower}_${index}`;
  const where = `operator ${index} (${lower})`;
  const ins: number[] = [], outs: number[] = [];
  for (let i = 0; i < op.inputsLength(); i++) ins.push(op.inputs(i)!);
  for (let i = 0; i < op.outputsLength(); i++) outs.push(op.outputs(i)!);
  const x = (i: number) => (ins[i] !== undefined && ins[i] >= 0 ? g.names[ins[i]] : '');
  const need = (n: number) => {
    for (let i = 0; i < n; i++) if (!x(i)) throw invalid(g.source, `${where}: input ${i} is missing`);
    if (outs.length < 1) throw invalid(g.source, `${where}: has no output`);
  };
  const out = () => g.names[outs[0]];
  const opts = op.builtinOptionsType();
  const act = (a: number | undefined) => (a ?? ActivationFunctionType.NONE) as ActivationFunctionType;
  const tfShape = (t: number) => g.tfShapes[t];

  switch (code) {
    case BuiltinOperator.CONV_2D:
    case BuiltinOperator.DEPTHWISE_CONV_2D: {
      need(2);
      const dw = code === BuiltinOperator.DEPTHWISE_CONV_2D;
      const o = dw
        ? (opts === BuiltinOptions.DepthwiseConv2DOptions ? op.builtinOptions(new DepthwiseConv2DOptions()) as DepthwiseConv2DOptions : null)
        : (opts === BuiltinOptions.Conv2DOptions ? op.builtinOptions(new Conv2DOptions()) as Conv2DOptions : null);
      if (!o) throw invalid(g.source, `${where}: missing its options`);
      const xs = tfShape(ins[0]), ws = tfShape(ins[1]), ys = tfShape(outs[0]);
      if (xs.length !== 4 || ws.length !== 4 || ys.length !== 4) throw invalid(g.source, `${where}: expects rank-4 input, weights and output`);
      const [, h, w, c] = xs;
      const k: [number, number] = [ws[1], ws[2]];
      const s: [number, number] = [o.strideH(), o.strideW()];
      const d: [number, number] = [o.dilationHFactor(), o.dilationWFactor()];
      if (s.some((v) => v < 1) || d.some((v) => v < 1)) throw invalid(g.source, `${where}: strides ${s} and dilations ${d} must be positive`);
      let group = 1, wName = x(1);
      if (dw) {
        // TFLite derives the multiplier from the weights; a recorded one that disagrees marks a broken file.
        const m = o instanceof DepthwiseConv2DOptions ? o.depthMultiplier() : 1;
        if (c > 0 && m !== ws[3] / c) throw invalid(g.source, `${where}: depth_multiplier ${m} does not match weights [${ws.join(', ')}] for ${c} input channels`);
        if (ws[0] !== 1 || ws[3] !== c) {
          throw unsupported(g.source, `${where}: depthwise weights [${ws.join(', ')}] for ${c} channels (depth multiplier ${ws[3] / c}); only multiplier 1 is supported`);
        }
        group = c;
        const wt = g.tensor(wName);
        const quant = wt.quant && wt.quant.axis !== undefined ? { ...wt.quant, axis: 0 } : wt.quant;
        wName = g.unique(`${wName}/oihw`);
        // [1, C, KH, KW] and [C, 1, KH, KW] share one memory order.
        g.addTensor({ ...wt, name: wName, shape: [c, 1, k[0], k[1]], quant });
      } else {
        if (ws[3] < 1 || c % ws[3] !== 0) throw invalid(g.source, `${where}: weights [${ws.join(', ')}] do not fit ${c} input channels`);
        group = c / ws[3];
      }
      const { pads, out: [oh, ow] } = g.pads(o.padding(), h, w, k, s, d);
      if (ys[1] !== oh || ys[2] !== ow || ys[3] !== (dw ? c : ws[0])) {
        throw invalid(g.source, `${where}: output shape [${ys.join(', ')}] does not match the computed [${xs[0]}, ${oh}, ${ow}, ${dw ? c : ws[0]}]`);
      }
      const attrs = newAttrs({ kernel: k, strides: s, pads, dilations: d, group });
      const inputs = [x(0), wName];
      if (x(2)) inputs.push(x(2));
      g.withActivation(name, 'Conv', inputs, out(), attrs, act(o.fusedActivationFunction()));
      return;
    }
    case BuiltinOperator.AVERAGE_POOL_2D:
    case BuiltinOperator.MAX_POOL_2D: {
      need(1);
      const o = opts === BuiltinOptions.Pool2DOptions ? op.builtinOptions(new Pool2DOptions()) as Pool2DOptions : null;
      if (!o) throw invalid(g.source, `${where}: missing its options`);
      const xs = tfShape(ins[0]), ys = tfShape(outs[0]);
      const k: [number, number] = [o.filterHeight(), o.filterWidth()];
      const s: [number, number] = [o.strideH(), o.strideW()];
      if ([...k, ...s].some((v) => v < 1)) throw invalid(g.source, `${where}: filter ${k} and strides ${s} must be positive`);
      const { pads, out: [oh, ow] } = g.pads(o.padding(), xs[1], xs[2], k, s, [1, 1]);
      if (ys[1] !== oh || ys[2] !== ow) throw invalid(g.source, `${where}: output shape [${ys.join(', ')}] does not match the computed ${oh}x${ow}`);
      const avg = code === BuiltinOperator.AVERAGE_POOL_2D;
      const attrs = newAttrs(avg
        ? { kernel: k, strides: s, pads, countIncludePad: 0, ceilMode: 0 }
        : { kernel: k, strides: s, pads, dilations: [1, 1], ceilMode: 0 });
      g.withActivation(name, avg ? 'AveragePool' : 'MaxPool', [x(0)], out(), attrs, act(o.fusedActivationFunction()));
      return;
    }
    case BuiltinOperator.FULLY_CONNECTED: {
      need(2);
      const o = opts === BuiltinOptions.FullyConnectedOptions ? op.builtinOptions(new FullyConnectedOptions()) as FullyConnectedOptions : null;
      if (o && o.weightsFormat() !== 0) throw unsupported(g.source, `${where}: shuffled weights format is not supported`);
      const ws = tfShape(ins[1]);
      if (ws.length !== 2) throw invalid(g.source, `${where}: weights must be rank 2, got [${ws.join(', ')}]`);
      const [units, depth] = ws;
      let a = x(0);
      const xs = tfShape(ins[0]);
      const rows = xs.reduce((p, q) => p * q, 1) / depth;
      if (!Number.isInteger(rows)) throw invalid(g.source, `${where}: input [${xs.join(', ')}] is not a multiple of ${depth}`);
      if (xs.length !== 2 || xs[1] !== depth) {
        const native = g.toNative(a, name);
        const flat = g.derived(`${out()}/input2d`, a, [rows, depth], g.tensor(a).quant?.axis !== undefined ? null : undefined);
        g.reshape(native, flat, `${name}/flatten`);
        a = flat;
      }
      const y = out();
      const ys = g.tensor(y).shape;
      const direct = ys.length === 2 && ys[0] === rows && ys[1] === units;
      const gemmOut = direct ? y : g.derived(`${y}/2d`, y, [rows, units]);
      const inputs = [a, x(1)];
      if (x(2)) inputs.push(x(2));
      g.withActivation(name, 'Gemm', inputs, gemmOut, newAttrs({ alpha: 1, beta: 1, transA: 0, transB: 1 }), act(o?.fusedActivationFunction()));
      if (!direct) {
        const native = g.nativeOutput(y);
        g.reshape(gemmOut, native, `${name}/unflatten`);
        g.finishNative(native, y, name);
      }
      return;
    }
    case BuiltinOperator.ADD:
    case BuiltinOperator.SUB:
    case BuiltinOperator.MUL: {
      need(2);
      const a = code === BuiltinOperator.ADD
        ? (opts === BuiltinOptions.AddOptions ? (op.builtinOptions(new AddOptions()) as AddOptions | null)?.fusedActivationFunction() ?? 0 : 0)
        : code === BuiltinOperator.SUB
          ? (opts === BuiltinOptions.SubOptions ? (op.builtinOptions(new SubOptions()) as SubOptions | null)?.fusedActivationFunction() ?? 0 : 0)
          : (opts === BuiltinOptions.MulOptions ? (op.builtinOptions(new MulOptions()) as MulOptions | null)?.fusedActivationFunction() ?? 0 : 0);
      const rank4 = tfShape(outs[0]).length === 4;
      const operands = [x(0), x(1)].map((t) => (rank4 ? g.broadcast4(t, name) : t));
      const irOp = code === BuiltinOperator.ADD ? 'Add' : code === BuiltinOperator.SUB ? 'Sub' : 'Mul';
      g.withActivation(name, irOp, operands, out(), newAttrs(), act(a));
      return;
    }
    case BuiltinOperator.PRELU: {
      need(2);
      const alpha = tfShape(outs[0]).length === 4 ? g.broadcast4(x(1), name) : x(1);
      g.node(name, 'PRelu', [x(0), alpha], [out()]);
      return;
    }
    case BuiltinOperator.PAD: {
      need(2);
      const p = g.intConst(ins[1]);
      const rank = tfShape(ins[0]).length;
      if (!p || p.length !== 2 * rank) throw unsupported(g.source, `${where}: paddings must be a constant [${rank}, 2] tensor`);
      let begin = p.filter((_, i) => i % 2 === 0), end = p.filter((_, i) => i % 2 === 1);
      if (rank === 4) { begin = permute(begin, nhwcToNchw); end = permute(end, nhwcToNchw); }
      g.node(name, 'Pad', [x(0)], [out()], newAttrs({ pads: [...begin, ...end], mode: 'constant', value: 0 }));
      return;
    }
    case BuiltinOperator.MEAN: {
      need(2);
      const axesRaw = g.intConst(ins[1]);
      if (!axesRaw) throw unsupported(g.source, `${where}: reduction axes must be a constant`);
      const keep = opts === BuiltinOptions.ReducerOptions ? (op.builtinOptions(new ReducerOptions()) as ReducerOptions | null)?.keepDims() ?? false : false;
      reduceLike(g, name, 'ReduceMean', x(0), tfShape(ins[0]), axesRaw, keep, out());
      return;
    }
    case BuiltinOperator.SQUEEZE: {
      need(1);
      const xs = tfShape(ins[0]);
      const so = opts === BuiltinOptions.SqueezeOptions ? op.builtinOptions(new SqueezeOptions()) as SqueezeOptions : null;
      let dims: number[] = [];
      if (so) for (let i = 0; i < so.squeezeDimsLength(); i++) dims.push(so.squeezeDims(i)!);
      if (dims.length === 0) dims = xs.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
      reduceLike(g, name, 'Squeeze', x(0), xs, dims, false, out());
      return;
    }
    case BuiltinOperator.RESHAPE: {
      need(1);
      // Shapes are static: the output tensor's shape is the target, whatever computes the shape input.
      const native = g.toNative(x(0), name);
      const y = out();
      const target = g.nativeOutput(y);
      g.reshape(native, target, name);
      g.finishNative(target, y, name);
      return;
    }
    case BuiltinOperator.CONCATENATION: {
      need(1);
      const o = opts === BuiltinOptions.ConcatenationOptions ? op.builtinOptions(new ConcatenationOptions()) as ConcatenationOptions : null;
      const rank = tfShape(outs[0]).length;
      let axis = o ? o.axis() : 0;
      if (axis < 0) axis += rank;
      if (axis < 0 || axis >= rank) throw invalid(g.source, `${where}: axis ${o?.axis()} is outside rank ${rank}`);
      if (rank === 4) axis = nchwPos[axis];
      const inputs = ins.filter((t) => t >= 0).map((t) => g.names[t]);
      g.withActivation(name, 'Concat', inputs, out(), newAttrs({ axis }), act(o?.fusedActivationFunction()));
      return;
    }
    case BuiltinOperator.SOFTMAX: {
      need(1);
      const beta = opts === BuiltinOptions.SoftmaxOptions ? (op.builtinOptions(new SoftmaxOptions()) as SoftmaxOptions | null)?.beta() ?? 1 : 1;
      const rank = tfShape(ins[0]).length;
      let a = x(0);
      if (beta !== 1) {
        const b = g.constant(`${name}/beta`, 'float32', [], Float32Array.of(beta));
        const scaled = g.derived(`${a}/scaled`, a);
        g.node(`${name}/beta`, 'Mul', [a, b], [scaled]);
        a = scaled;
      }
      g.node(name, 'Softmax', [a], [out()], newAttrs({ axis: rank === 4 ? 1 : rank - 1 }));
      return;
    }
    case BuiltinOperator.LEAKY_RELU: {
      need(1);
      const alpha = opts === BuiltinOptions.NONE ? 0.2 : (op.builtinOptions(new RawOptions()) as RawOptions | null)?.float(0, 0.2) ?? 0.2;
      g.node(name, 'LeakyRelu', [x(0)], [out()], newAttrs({ alpha }));
      return;
    }
    case BuiltinOperator.STRIDED_SLICE: {
      need(4);
      stridedSlice(g, op, name, where, ins, outs);
      return;
    }
    case BuiltinOperator.CAST: {
      need(1);
      g.node(name, 'Cast', [x(0)], [out()], newAttrs({ to: g.tensor(out()).dtype }));
      return;
    }
    case BuiltinOperator.RSQRT: {
      need(1);
      const root = g.derived(`${out()}/sqrt`, out());
      g.node(`${name}/sqrt`, 'Sqrt', [x(0)], [root]);
      g.node(name, 'Reciprocal', [root], [out()]);
      return;
    }
    case BuiltinOperator.REDUCE_MAX:
    case BuiltinOperator.REDUCE_MIN:
    case BuiltinOperator.SUM: {
      need(2);
      const axesRaw = g.intConst(ins[1]);
      if (!axesRaw) throw unsupported(g.source, `${where}: reduction axes must be a constant`);
      const keep = opts === BuiltinOptions.ReducerOptions ? (op.builtinOptions(new ReducerOptions()) as ReducerOptions | null)?.keepDims() ?? false : false;
      reduceLike(g, name, reduceOps[code]!, x(0), tfShape(ins[0]), axesRaw, keep, out());
      return;
    }
    case BuiltinOperator.RESIZE_BILINEAR:
    case BuiltinOperator.RESIZE_NEAREST_NEIGHBOR: {
      // As ONNX Resize with the output size (NCHW): TF's align_corners, half_pixel_centers and legacy
      // (asymmetric) coordinates; nearest rounds half up with align_corners (roundf) and floors otherwise.
      need(1);
      const bilinear = code === BuiltinOperator.RESIZE_BILINEAR;
      const o = opts === BuiltinOptions.NONE ? null : op.builtinOptions(new RawOptions()) as RawOptions | null;
      // ResizeBilinearOptions: new_height, new_width (deprecated), align_corners, half_pixel_centers;
      // ResizeNearestNeighborOptions: align_corners, half_pixel_centers.
      const alignCorners = o?.bool(bilinear ? 2 : 0) ?? false, halfPixel = o?.bool(bilinear ? 3 : 1) ?? false;
      if (alignCorners && halfPixel) throw invalid(g.source, `${where}: align_corners and half_pixel_centers are both set`);
      const ys = g.tensor(out()).shape;
      if (ys.length !== 4 || tfShape(ins[0]).length !== 4) throw invalid(g.source, `${where}: expects rank-4 input and output`);
      const ctm = alignCorners ? 'align_corners' : halfPixel ? (bilinear ? 'half_pixel' : 'tf_half_pixel_for_nn') : 'asymmetric';
      const attrs = newAttrs({ mode: bilinear ? 'linear' : 'nearest', coordinate_transformation_mode: ctm });
      if (!bilinear) attrs.nearest_mode = alignCorners ? 'round_prefer_ceil' : 'floor';
      const sizes = g.constant(`${name}/sizes`, 'int64', [4], BigInt64Array.from(ys.map(BigInt)));
      g.node(name, 'Resize', [x(0), '', '', sizes], [out()], attrs);
      return;
    }
    case BuiltinOperator.TRANSPOSE_CONV: {
      // Inputs: output shape, weights [O, KH, KW, I], input, bias?; TransposeConvOptions: padding, stride_w,
      // stride_h, fused_activation_function.
      need(3);
      const o = opts === BuiltinOptions.NONE ? null : op.builtinOptions(new RawOptions()) as RawOptions | null;
      if (!o) throw invalid(g.source, `${where}: missing its options`);
      transposeConv(g, name, where, x(2), x(1), x(3), out(), o.int8(0, Padding.SAME) as Padding, [o.int(2, 1), o.int(1, 1)], act(o.int8(3, 0)));
      return;
    }
    case BuiltinOperator.LOGISTIC: need(1); g.node(name, 'Sigmoid', [x(0)], [out()]); return;
    case BuiltinOperator.HARD_SWISH: need(1); g.node(name, 'HardSwish', [x(0)], [out()]); return;
    case BuiltinOperator.ABS: need(1); g.node(name, 'Abs', [x(0)], [out()]); return;
    case BuiltinOperator.RELU: need(1); g.activation(name, ActivationFunctionType.RELU, x(0), out()); return;
    case BuiltinOperator.RELU6: need(1); g.activation(name, ActivationFunctionType.RELU6, x(0), out()); return;
    case BuiltinOperator.RELU_N1_TO_1: need(1); g.activation(name, ActivationFunctionType.RELU_N1_TO_1, x(0), out()); return;
    case BuiltinOperator.TANH: need(1); g.activation(name, ActivationFunctionType.TANH, x(0), out()); return;
    case BuiltinOperator.DEPTH_TO_SPACE: {
      // out[n, h*bs + i, w*bs + j, c] = in[n, h, w, (i*bs + j)*C' + c] (NHWC): on the IR's NCHW tensors that is
      // ONNX's DepthToSpace in DCR mode, spelled Reshape [N, bs, bs, C', H, W] -> Transpose -> Reshape.
      need(1);
      const bs = opts === BuiltinOptions.NONE ? 0 : (op.builtinOptions(new RawOptions()) as RawOptions | null)?.int(0, 0) ?? 0;
      const xs = tfShape(ins[0]), ys = tfShape(outs[0]);
      if (xs.length !== 4 || ys.length !== 4) throw invalid(g.source, `${where}: expects rank-4 input and output`);
      const [n, h, w, c] = xs;
      if (!(bs >= 1) || c % (bs * bs) !== 0) throw invalid(g.source, `${where}: block size ${bs} does not divide ${c} channels into blocks of ${bs}x${bs}`);
      const co = c / (bs * bs);
      const want = [n, h * bs, w * bs, co];
      if (ys.join(',') !== want.join(',')) throw invalid(g.source, `${where}: output [${ys.join(', ')}] should be [${want.join(', ')}] for input [${xs.join(', ')}], block size ${bs}`);
      const split = g.derived(`${out()}/blocks`, x(0), [n, bs, bs, co, h, w]);
      g.reshape(x(0), split, `${name}/split`);
      const moved = g.derived(`${out()}/moved`, x(0), [n, co, h, bs, w, bs]);
      g.node(`${name}/transpose`, 'Transpose', [split], [moved], newAttrs({ perm: [0, 3, 4, 1, 5, 2] }));
      g.reshape(moved, out(), name);
      return;
    }
    case BuiltinOperator.DENSIFY: {
      // Its input is a sparse constant, already expanded at load (densify.ts): the output is that constant.
      need(1);
      const src = g.tensor(x(0)), dst = g.tensor(out());
      if (!src.data) throw unsupported(g.source, `${where}: densifies '${x(0)}', which is not a constant`);
      if (tfShape(ins[0]).join(',') !== tfShape(outs[0]).join(',') || src.dtype !== dst.dtype) {
        throw invalid(g.source, `${where}: output ${dst.dtype} [${tfShape(outs[0]).join(', ')}] differs from input ${src.dtype} [${tfShape(ins[0]).join(', ')}]`);
      }
      if (dst.data) throw invalid(g.source, `${where}: writes tensor '${out()}', which is a constant`);
      dst.data = src.data;
      return;
    }
    case BuiltinOperator.QUANTIZE:
    case BuiltinOperator.DEQUANTIZE: {
      need(1);
      const src = g.tensor(x(0)), dst = g.tensor(out());
      let a = x(0);
      const constantWeights = src.dtype === 'float16' || src.dtype === 'bfloat16' || src.dtype === 'int8';
      if (code === BuiltinOperator.DEQUANTIZE && src.data && constantWeights && isFloat(dst.dtype)) {
        // Weights stored as float16 or int8 (MediaPipe-style fp16 models, weight-only quantization): the
        // float32 constant they stand for, so that the layers reading them see constant weights. (Other
        // integer constants, such as int32 biases, keep their DequantizeLinear for the int8 paths.)
        if (src.dtype === 'int8') checkZeroPoints(g, x(0), name);
        // The folded values become the output's data, so the output must be the input's shape, and not a
        // tensor that something else already defines.
        if (tfShape(ins[0]).join(',') !== tfShape(outs[0]).join(',')) {
          throw invalid(g.source, `${where}: output shape [${tfShape(outs[0]).join(', ')}] differs from input shape [${tfShape(ins[0]).join(', ')}]`);
        }
        if (dst.data) throw invalid(g.source, `${where}: writes tensor '${out()}', which is a constant`);
        dst.data = dequantizeConstant(g, src, where);
        dst.dtype = 'float32';
        delete dst.quant;
        return;
      }
      if (src.dtype === 'float16' && dst.dtype === 'float32') { g.node(name, 'Cast', [a], [out()], newAttrs({ to: 'float32' })); return; }
      if (src.quant && !isFloat(src.dtype)) {
        // Dequantize (alone, or as the first half of a requantization).
        const target = dst.quant && !isFloat(dst.dtype) ? g.addTensor({ name: g.unique(`${out()}/float`), dtype: 'float32', shape: [...dst.shape] }) : out();
        g.node(code === BuiltinOperator.QUANTIZE ? `${name}/dequantize` : name, 'DequantizeLinear', [a, ...qParams(g, a, name)], [target], axisAttrs(src.quant));
        a = target;
        if (a === out()) return;
      }
      if (!dst.quant || isFloat(dst.dtype)) throw invalid(g.source, `${where}: output ${out()} is not a quantized tensor`);
      g.node(name, 'QuantizeLinear', [a, ...qParams(g, out(), name)], [out()], axisAttrs(dst.quant));
      return;
    }
    default: {
      if (unaryOps[code]) { need(1); g.node(name, unaryOps[code]!, [x(0)], [out()]); return; }
      if (binaryOps[code]) {
        need(2);
        const rank4 = tfShape(outs[0]).length === 4;
        g.node(name, binaryOps[code]!, [x(0), x(1)].map((t) => (rank4 ? g.broadcast4(t, name) : t)), [out()]);
        return;
      }
      if (code === BuiltinOperator.CUSTOM && lower === 'convolution2dtransposebias') {
        // MediaPipe's transposed convolution: inputs, weights [O, KH, KW, I], bias; its custom options are the
        // raw struct TfLiteTransposeConvParams { padding, stride_width, stride_height } (int32 each, MediaPipe's
        // transpose_conv_bias.cc reads it as the node's custom data).
        need(3);
        const raw = op.customOptionsArray();
        if (!raw || raw.length < 12) throw invalid(g.source, `${where}: custom options must hold padding and strides (12 bytes), got ${raw?.length ?? 0}`);
        const v = new DataView(raw.buffer, raw.byteOffset, 12);
        const [padding, sw, sh] = [v.getInt32(0, true), v.getInt32(4, true), v.getInt32(8, true)];
        // TfLitePadding (C API): 1 same, 2 valid.
        if (padding !== 1 && padding !== 2) throw invalid(g.source, `${where}: padding ${padding} is neither same (1) nor valid (2)`);
        transposeConv(g, name, where, x(0), x(1), x(2), out(), padding === 1 ? Padding.SAME : Padding.VALID, [sh, sw], ActivationFunctionType.NONE);
        return;
      }
      // Opaque: keep the op, in TFLite's layout (its semantics are NHWC).
      const custom = code === BuiltinOperator.CUSTOM;
      const attrs = newAttrs({ builtinCode: code });
      if (custom && lower === 'tflite_detection_postprocess') {
        Object.assign(attrs, detectionOptions(op.customOptionsArray(), g.source, where));
        // TFLite sizes the four outputs in the op's Prepare from its options, whatever the file says; files of
        // older converters store them as [] (unknown), which would stop shape inference here.
        const shapes = detectionOutputShapes(attrs, outs.length);
        if (shapes) outs.forEach((t, i) => { g.tensors.set(g.names[t], { ...g.tensor(g.names[t]), shape: shapes[i], shapeUnknown: false }); });
      }
      if (custom && mediapipeOps.has(lower)) {
        // MediaPipe's landmark ops (src/runtime/mediapipe-ops.ts): their flexbuffer options, and the operator code's
        // version (versions 1 and 2 differ in meaning).
        Object.assign(attrs, flexAttrs(op.customOptionsArray(), g.source, where));
        attrs.version = m.operatorCodes(op.opcodeIndex())!.version();
      }
      const inputs = ins.map((t) => (t >= 0 ? g.toNative(g.names[t], name) : ''));
      const outputs = outs.map((t) => g.nativeOutput(g.names[t]));
      g.node(name, custom ? lower : (BuiltinOperator[code] ?? `BUILTIN_${code}`), inputs, outputs, attrs, custom ? `${tfliteDomain}.custom` : tfliteDomain);
      outs.forEach((t, i) => g.finishNative(outputs[i], g.names[t], name));
    }
  }
}

/** Options of TFLite_Detection_PostProcess: a flexbuffer map (TFLite's detection_postprocess.cc Init), numbers by
 *  their TFLite names; detections_per_class defaults to 100 and use_regular_nms to false as there. None when the
 *  op has no options (the executor refuses it then, naming the node). */
function detectionOptions(raw: Uint8Array | null, source: string, where: string): Record<string, number> {
  if (!raw || raw.length === 0) return {};
  let m: unknown;
  try {
    m = readFlex(raw);
  } catch (e) {
    throw invalid(source, `${where}: custom options are not a flexbuffer map (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!m || typeof m !== 'object' || Array.isArray(m)) throw invalid(source, `${where}: custom options are not a flexbuffer map`);
  const o = m as Record<string, unknown>;
  const out: Record<string, number> = { detections_per_class: 100, use_regular_nms: 0 };
  for (const k of ['max_detections', 'max_classes_per_detection', 'detections_per_class', 'use_regular_nms', 'nms_score_threshold',
    'nms_iou_threshold', 'num_classes', 'y_scale', 'x_scale', 'h_scale', 'w_scale']) {
    const v = o[k];
    if (v === undefined || v === null) continue;
    if (typeof v === 'boolean') out[k] = v ? 1 : 0;
    else if (typeof v === 'number' || typeof v === 'bigint') out[k] = Number(v);
    else throw invalid(source, `${where}: custom option '${k}' is not a number`);
  }
  return out;
}

const mediapipeOps = new Set(['landmarks2transformmatrix', 'transformtensorbilinear', 'transformlandmarks']);

/** A custom op's flexbuffer map options as attributes: numbers (booleans as 0/1), strings, lists of numbers. */
function flexAttrs(raw: Uint8Array | null, source: string, where: string): Attrs {
  const out = newAttrs();
  if (!raw || raw.length === 0) return out;
  let m: unknown;
  try {
    m = readFlex(raw);
  } catch (e) {
    throw invalid(source, `${where}: custom options are not a flexbuffer map (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!m || typeof m !== 'object' || Array.isArray(m) || m instanceof Uint8Array) throw invalid(source, `${where}: custom options are not a flexbuffer map`);
  for (const [k, v] of Object.entries(m)) {
    if (typeof v === 'number' || typeof v === 'string') out[k] = v;
    else if (typeof v === 'boolean') out[k] = v ? 1 : 0;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'number')) out[k] = v as number[];
    else throw invalid(source, `${where}: custom option '${k}' is neither a number, a string nor a list of numbers`);
  }
  return out;
}

/** Shapes of TFLite_Detection_PostProcess's outputs as its Prepare sets them (detection_postprocess.cc): boxes
 *  [1, n, 4], classes [1, n], scores [1, n], count [1], n = max_detections * max_classes_per_detection; null when
 *  the options lack them or the op does not have its four outputs (the executor names the node then). */
function detectionOutputShapes(attrs: Record<string, unknown>, outputs: number): number[][] | null {
  const maxDet = attrs.max_detections, perDet = attrs.max_classes_per_detection;
  if (outputs !== 4 || typeof maxDet !== 'number' || typeof perDet !== 'number') return null;
  if (!Number.isSafeInteger(maxDet) || !Number.isSafeInteger(perDet) || maxDet < 1 || perDet < 1) return null;
  const n = maxDet * perDet;
  return [[1, n, 4], [1, n], [1, n], [1]];
}

/**
 * A TFLite transposed convolution (TRANSPOSE_CONV, MediaPipe's Convolution2DTransposeBias) as ONNX ConvTranspose:
 * weights [O, I, KH, KW] in the IR (OHWI as imported) transposed to ONNX's [I, O, KH, KW], and TFLite's padding
 * (SAME: total = (in - 1) * stride + k - out, floor(total / 2) at the start; VALID: none) as explicit pads, any
 * output rows past the computed ones as output_padding.
 */
function transposeConv(g: GraphBuilder, name: string, where: string, x: string, w: string, bias: string, y: string, padding: Padding, s: number[], act: ActivationFunctionType): void {
  const xs = g.tensor(x).shape, ws = g.tensor(w).shape, ys = g.tensor(y).shape;
  if (xs.length !== 4 || ws.length !== 4 || ys.length !== 4) throw invalid(g.source, `${where}: expects rank-4 input, weights and output`);
  if (ws[1] !== xs[1] || ys[1] !== ws[0]) throw invalid(g.source, `${where}: weights [${ws.join(', ')}] (OIHW) do not map ${xs[1]} to ${ys[1]} channels`);
  if (s.some((v) => !Number.isInteger(v) || v < 1)) throw invalid(g.source, `${where}: strides [${s.join(', ')}] must be positive`);
  if (padding !== Padding.SAME && padding !== Padding.VALID) throw invalid(g.source, `${where}: padding ${padding} is neither SAME nor VALID`);
  const k = [ws[2], ws[3]];
  const begin: number[] = [], end: number[] = [], extra: number[] = [];
  for (let a = 0; a < 2; a++) {
    const total = (xs[2 + a] - 1) * s[a] + k[a] - ys[2 + a];
    const b = padding === Padding.SAME ? Math.max(0, Math.floor(total / 2)) : 0;
    begin.push(b); end.push(Math.max(0, total - b)); extra.push(Math.max(0, b - total));
  }
  const wt = g.derived(`${w}/iohw`, w, [ws[1], ws[0], ws[2], ws[3]], null);
  g.node(`${name}/weights_iohw`, 'Transpose', [w], [wt], newAttrs({ perm: [1, 0, 2, 3] }));
  const attrs = newAttrs({ kernel_shape: k, strides: s, pads: [...begin, ...end], dilations: [1, 1], group: 1, output_padding: extra });
  g.withActivation(name, 'ConvTranspose', bias ? [x, wt, bias] : [x, wt], y, attrs, act);
}

/** float32 values of a constant DEQUANTIZE input: float16 bits decoded, or (q - zeroPoint) * scale. */
function dequantizeConstant(g: GraphBuilder, src: Tensor, where: string): Float32Array {
  const data = src.data!;
  if (src.dtype === 'float16' || src.dtype === 'bfloat16') return halfValues(src.dtype, data as Uint16Array);
  if (src.dtype === 'float32') return Float32Array.from(data as Float32Array);
  const q = src.quant;
  if (!q || !(src.dtype === 'int8' || src.dtype === 'uint8' || src.dtype === 'int16' || src.dtype === 'int32')) {
    throw unsupported(g.source, `${where}: dequantizing a constant of type ${src.dtype} is not supported`);
  }
  const values = data as Int8Array | Uint8Array | Int16Array | Int32Array;
  const out = new Float32Array(values.length);
  const shape = src.shape;
  const axis = q.axis;
  if (axis !== undefined && (axis < 0 || axis >= shape.length || q.scale.length !== shape[axis] || q.zeroPoint.length !== shape[axis])) {
    throw invalid(g.source, `${where}: ${q.scale.length} scales for axis ${axis} of a tensor of shape [${shape.join(', ')}]`);
  }
  const inner = axis === undefined ? 1 : shape.slice(axis + 1).reduce((p, d) => p * d, 1);
  const channels = axis === undefined ? 1 : shape[axis];
  for (let i = 0; i < values.length; i++) {
    const c = axis === undefined ? 0 : Math.floor(i / inner) % channels;
    out[i] = (values[i] - (q.zeroPoint[c] ?? 0)) * q.scale[c];
  }
  return out;
}

const isFloat = (d: DType) => d === 'float32' || d === 'float16' || d === 'float64' || d === 'bfloat16';

function axisAttrs(q: Quantization): Attrs {
  return newAttrs(q.axis !== undefined ? { axis: q.axis } : {});
}

/** Integer types ONNX QuantizeLinear/DequantizeLinear take, with the range of their zero points. */
const zeroPointRange: Partial<Record<DType, [number, number]>> = {
  int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535], int32: [-(2 ** 31), 2 ** 31 - 1],
};

/** The zero points of a quantized tensor must be integers of its type (which must be one ONNX dequantizes). */
function checkZeroPoints(g: GraphBuilder, tensor: string, at: string): void {
  const t = g.tensor(tensor);
  const range = zeroPointRange[t.dtype];
  if (!range) throw unsupported(g.source, `${at}: quantized tensor '${tensor}' has type ${t.dtype}, which (de)quantization does not support`);
  const bad = t.quant!.zeroPoint.find((z) => !Number.isInteger(z) || z < range[0] || z > range[1]);
  if (bad !== undefined) throw invalid(g.source, `${at}: zero point ${bad} of tensor '${tensor}' is outside the range of ${t.dtype}`);
}

/** Scale and zero-point constants of a quantized tensor, as QuantizeLinear/DequantizeLinear take them. */
function qParams(g: GraphBuilder, tensor: string, at: string): [string, string] {
  const t = g.tensor(tensor);
  const q = t.quant!;
  const shape = q.axis !== undefined ? [q.scale.length] : [];
  const scale = g.constant(`${at}/${tensor}/scale`, 'float32', shape, Float32Array.from(q.scale));
  // The zero point has the tensor's own dtype (ONNX Q/DQ), so its typed array must match it: an int32
  // bias read by a DEQUANTIZE gets an Int32Array, not int8 bytes (fuzz crash C, RELIABILITY.md).
  checkZeroPoints(g, tensor, at);
  const zp = g.constant(`${at}/${tensor}/zero_point`, t.dtype, shape, makeData(t.dtype, q.zeroPoint));
  return [scale, zp];
}

/**
 * MEAN/SQUEEZE: removes (or keeps as 1) the NHWC axes `axesRaw` of x. A rank-4 input reduces in NCHW; when
 * dims are dropped and the remaining NCHW order differs from TFLite's, a Transpose restores it.
 */
function reduceLike(g: GraphBuilder, name: string, op: 'ReduceMean' | 'ReduceMax' | 'ReduceMin' | 'ReduceSum' | 'Squeeze', x: string, xs: number[], axesRaw: number[], keep: boolean, y: string): void {
  const rank = xs.length;
  const axes = [...new Set(axesRaw.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
  if (axes.some((a) => a < 0 || a >= rank)) throw invalid(g.source, `${name}: axes [${axesRaw.join(', ')}] are outside rank ${rank}`);
  const attrs = (ax: number[]) => newAttrs(op !== 'Squeeze' ? { axes: ax, keepdims: keep ? 1 : 0 } : { axes: ax });
  if (rank !== 4 || (keep && op !== 'Squeeze')) {
    const irAxes = rank === 4 ? axes.map((a) => nchwPos[a]).sort((a, b) => a - b) : axes;
    g.node(name, op, [x], [y], attrs(irAxes));
    return;
  }
  const irAxes = axes.map((a) => nchwPos[a]).sort((a, b) => a - b);
  // Remaining NHWC axes, in TFLite's order and in the order the NCHW reduction leaves them.
  const keptTf = [0, 1, 2, 3].filter((a) => !axes.includes(a));
  const keptIr = [...keptTf].sort((a, b) => nchwPos[a] - nchwPos[b]);
  const yShape = g.tensor(y).shape;
  if (keptTf.length === 4) { g.node(name, op, [x], [y], attrs(irAxes)); return; }
  const same = keptTf.every((a, i) => a === keptIr[i]);
  if (same) { g.node(name, op, [x], [y], attrs(irAxes)); return; }
  const tmpShape = keptIr.map((a) => xs[a]);
  const tmp = g.derived(`${y}/nchw_order`, y, tmpShape, g.tensor(y).quant?.axis !== undefined ? null : undefined);
  g.node(name, op, [x], [tmp], attrs(irAxes));
  const perm = keptTf.map((a) => keptIr.indexOf(a));
  if (yShape.length !== perm.length) throw invalid(g.source, `${name}: output rank ${yShape.length} does not match the reduced rank ${perm.length}`);
  g.reorder(tmp, y, tmpShape, perm, `${name}/tflite_order`);
}


/**
 * STRIDED_SLICE with constant begin/end/strides as a Slice (begin/end masks give the full range). A rank-4
 * input slices in NCHW with its axes converted; with shrink_axis_mask the slice runs in TFLite's order and a
 * Reshape drops the shrunk axes. Ellipsis and new-axis masks are refused (exit 3).
 */
function stridedSlice(g: GraphBuilder, op: Operator, name: string, where: string, ins: number[], outs: number[]): void {
  const o = op.builtinOptionsType() === BuiltinOptions.NONE ? null : op.builtinOptions(new RawOptions()) as RawOptions | null;
  const [beginMask, endMask, ellipsisMask, newAxisMask, shrinkMask] = [0, 1, 2, 3, 4].map((f) => o?.int(f, 0) ?? 0);
  if (ellipsisMask || newAxisMask || o?.bool(5)) {
    throw unsupported(g.source, `${where}: STRIDED_SLICE with ellipsis, new-axis masks or offset is not supported`);
  }
  const begin = g.intConst(ins[1]), end = g.intConst(ins[2]), steps = g.intConst(ins[3]);
  const xs = g.tfShapes[ins[0]];
  const rank = xs.length;
  if (!begin || !end || !steps || begin.length !== rank || end.length !== rank || steps.length !== rank) {
    throw unsupported(g.source, `${where}: STRIDED_SLICE needs constant begin, end and strides of length ${rank}`);
  }
  const big = 2 ** 31 - 1;
  const starts = begin.map((b, i) => ((beginMask >> i) & 1 ? (steps[i] > 0 ? 0 : big) : b));
  const ends = end.map((e, i) => {
    if ((shrinkMask >> i) & 1) return starts[i] === -1 ? big : starts[i] + 1;
    return (endMask >> i) & 1 ? (steps[i] > 0 ? big : -big) : e;
  });
  const axes = xs.map((_, i) => i);
  const y = g.names[outs[0]];
  const x = g.names[ins[0]];
  if (rank === 4 && shrinkMask === 0) {
    const perm = [0, 3, 1, 2];
    g.node(name, 'Slice', [x], [y], newAttrs({ starts: perm.map((a) => starts[a]), ends: perm.map((a) => ends[a]), axes, steps: perm.map((a) => steps[a]) }));
    return;
  }
  const native = g.toNative(x, name);
  const sliced = xs.map((d, i) => {
    const s = steps[i];
    const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));
    let a = starts[i] < 0 ? starts[i] + d : starts[i], b = ends[i] < 0 && ends[i] > -big ? ends[i] + d : ends[i];
    if (s > 0) { a = clamp(a, 0, d); b = clamp(b, 0, d); return Math.max(0, Math.ceil((b - a) / s)); }
    a = clamp(a, -1, d - 1); b = clamp(b, -1, d - 1);
    return Math.max(0, Math.ceil((b - a) / s));
  });
  const tmp = shrinkMask === 0 ? g.nativeOutput(y) : g.derived(`${y}/unshrunk`, y, sliced, null);
  g.node(name, 'Slice', [native], [tmp], newAttrs({ starts, ends, axes, steps }));
  if (shrinkMask === 0) { g.finishNative(tmp, y, name); return; }
  const target = g.nativeOutput(y);
  g.reshape(tmp, target, `${name}/shrink`);
  g.finishNative(target, y, name);
}
