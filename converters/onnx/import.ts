// ONNX model -> graph IR (src/graph/ir.ts).
//
// - Opsets 9 to 21 of the default domain. Attributes of the known ops are normalized (see ir.ts); the
//   attribute forms of old opsets (Clip min/max, Slice starts/ends/axes, Pad pads/mode/value, ReduceMean,
//   Squeeze/Unsqueeze axes, Split split) map to the same canonical attrs, the input forms of newer opsets
//   stay inputs (a later pass moves constant inputs into attrs).
// - Constant nodes become constant tensors; initializers keep their raw_data bytes as typed-array views of
//   the file where alignment allows.
// - Symbolic dims: a symbolic first dim is the batch (opts.batch, default 1); others need opts.inputShapes.
// - Activation shapes that the file does not state statically are [] with shapeUnknown set, for shape inference.
// - Errors name the file and the node or tensor (FcmError; exit 2 invalid, 3 unsupported, 4 over a limit).

import { closeSync, fstatSync, lstatSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, sep } from 'node:path';
import { budgetFor, maxMessageBytes, readInputFile } from '../../src/input-file.js';
import { FcmError, checkedProduct, invalid, overLimit, unsupported } from '../../src/errors.js';
import {
  dtypeSize, executorOnlyOps, newAttrs, isKnownOp,
  type Attrs, type KnownOp, type AttrValue, type DType, type Graph, type Node, type Tensor, type TensorData,
} from '../../src/graph/ir.js';
import { defaultMaxMemory, type ImportOptions } from '../options.js';
import { decodeModel, dtypeFromOnnx, estimateDecodedBytes, onnx, onnxDataTypeName, toBigInt, toClampedNumber, toSafeNumber, type Int64 } from './codec.js';

/** Most elements of any one tensor: kernels index with 32-bit integers (WGSL i32/u32), so 2^31 and beyond
 *  are refused (exit 4) at import rather than overflowing an index later. */
export const maxElements = 2 ** 31 - 1;

export const minOpset = 9;
export const maxOpset = 21;

/** The NodeProto each imported node came from (for export of opaque nodes with their raw attributes). */
export const onnxNodeOf = new WeakMap<Node, onnx.NodeProto>();

const AT = onnx.AttributeProto.AttributeType;
const DT = onnx.TensorProto.DataType;

/** Tracks bytes held (file + copies) against opts.maxMemory. */
class Budget {
  used = 0;
  constructor(readonly limit: number, readonly source: string) {}
  charge(bytes: number, what: string): void {
    this.used += bytes;
    if (this.used > this.limit) {
      throw overLimit(this.source, `${what} needs ${bytes} bytes; total ${this.used} exceeds the memory budget of ${this.limit} bytes`);
    }
  }
}

interface Ctx {
  source: string;
  /** Folder of the model file; null when imported from bytes (then external data is refused). */
  dir: string | null;
  budget: Budget;
  opset: number;
  externalFiles: Map<string, { fd: number; size: number }>;
  /** Shape of a tensor known so far (initializers, Constants, inputs, value_info), for Conv without kernel_shape. */
  weightShape: (name: string) => number[] | null;
}

export async function importOnnx(input: string | Uint8Array, opts: ImportOptions = {}): Promise<Graph> {
  const maxMemory = opts.maxMemory ?? defaultMaxMemory;
  let bytes: Uint8Array;
  let source: string;
  let dir: string | null = null;
  if (typeof input === 'string') {
    source = opts.source ?? input;
    bytes = await readInputFile(input, { source, ...budgetFor(maxMemory, maxMessageBytes, 'ONNX (protobuf)') });
    dir = dirname(input);
  } else {
    source = opts.source ?? '<bytes>';
    bytes = input;
  }
  const budget = new Budget(maxMemory, source);
  budget.charge(bytes.byteLength, 'the model file');
  // Before decoding: protobufjs allocates an object per int64 value and per message.
  budget.charge(estimateDecodedBytes(bytes), 'decoding the model (its message tree)');
  const model = decodeModel(bytes, source);
  const ctx: Ctx = { source, dir, budget, opset: defaultOpset(model, source), externalFiles: new Map(), weightShape: () => null };
  try {
    return buildGraph(model, ctx, opts);
  } finally {
    for (const f of ctx.externalFiles.values()) closeSync(f.fd);
  }
}

function defaultOpset(model: onnx.ModelProto, source: string): number {
  let v: number | null = null;
  for (const o of model.opsetImport) {
    if (!o.domain || o.domain === 'ai.onnx') v = toSafeNumber(o.version, source);
  }
  if (v === null) {
    // A model of custom ops only: the default-domain rules never apply.
    if (model.graph!.node.every((n) => n.domain && n.domain !== 'ai.onnx')) return maxOpset;
    throw invalid(source, 'opset_import has no entry for the default ONNX domain');
  }
  if (v < minOpset || v > maxOpset) {
    throw unsupported(source, `default-domain opset ${v} is outside the supported range ${minOpset}-${maxOpset}`);
  }
  return v;
}

function buildGraph(model: onnx.ModelProto, ctx: Ctx, opts: ImportOptions): Graph {
  const gp = model.graph!;
  const { source } = ctx;
  const tensors = new Map<string, Tensor>();
  const initializerNames = new Set<string>();

  for (const t of gp.initializer) {
    const name = t.name ?? '';
    if (!name) throw invalid(source, 'an initializer has no name');
    if (tensors.has(name)) throw invalid(source, `initializer '${name}' is defined twice`);
    tensors.set(name, tensorFromProto(t, ctx, `initializer '${name}'`));
    initializerNames.add(name);
  }
  for (const s of gp.sparseInitializer) {
    throw unsupported(source, `sparse initializer '${s.values?.name ?? ''}' (sparse tensors are not supported)`);
  }

  // Runtime inputs: graph inputs that are not initializers (IR < 4 lists initializers as inputs too).
  const symbols = new Map<string, number>();
  const inputs: string[] = [];
  const inputShapes = opts.inputShapes ?? {};
  const graphInputNames = new Set(gp.input.map((v) => v.name ?? ''));
  for (const k of Object.keys(inputShapes)) {
    if (!graphInputNames.has(k) || initializerNames.has(k)) {
      const names = gp.input.map((v) => v.name ?? '').filter((n) => !initializerNames.has(n));
      throw invalid(source, `--input-shape names '${k}', which is not an input of the model (inputs: ${names.join(', ')})`);
    }
  }
  for (const vi of gp.input) {
    const name = vi.name ?? '';
    if (initializerNames.has(name)) continue;
    if (!name) throw invalid(source, 'a graph input has no name');
    if (tensors.has(name)) throw invalid(source, `graph input '${name}' is listed twice`);
    const tt = vi.type?.tensorType;
    if (!tt) throw unsupported(source, `graph input '${name}' is not a tensor`);
    const dtype = dtypeOrThrow(tt.elemType ?? 0, ctx, `graph input '${name}'`);
    const shape = resolveInputShape(name, tt.shape, opts, symbols, source);
    tensors.set(name, { name, dtype, shape });
    inputs.push(name);
  }

  // Shapes the file states (value_info, outputs): used where static after substituting resolved symbols.
  const declared = new Map<string, { dtype: DType | null; shape: number[] | null }>();
  for (const vi of [...gp.valueInfo, ...gp.output]) {
    const tt = vi.type?.tensorType;
    if (!vi.name || !tt) continue;
    const shape = declaredShape(tt.shape, symbols);
    if (shape) checkedProduct(shape, `${source}: tensor '${vi.name}' (declared shape)`, maxElements);
    declared.set(vi.name, { dtype: dtypeFromOnnx(tt.elemType ?? 0), shape });
  }

  ctx.weightShape = (name) => {
    const t = tensors.get(name);
    if (t && (t.data || inputs.includes(name))) return t.shape;
    return declared.get(name)?.shape ?? null;
  };

  // Nodes: constants become tensors, the rest IR nodes; every output written once.
  const writer = new Map<string, string>(); // tensor -> node name
  for (const name of tensors.keys()) writer.set(name, initializerNames.has(name) ? `initializer '${name}'` : `graph input '${name}'`);
  const nodes = convertNodes(gp.node, ctx, tensors, writer, declared);

  // Every read tensor must exist (subgraphs may read outer-scope tensors: checked as dependencies too).
  const deps = nodes.map((n) => {
    const reads = n.inputs.filter((x) => x !== '');
    for (const x of reads) {
      if (!writer.has(x)) throw invalid(source, `node '${n.name}' (${n.op}) reads tensor '${x}', which no node, initializer or graph input defines`);
    }
    const np = onnxNodeOf.get(n)!;
    for (const x of outerReads(np)) if (writer.has(x)) reads.push(x);
    return reads;
  });
  const outputs: string[] = [];
  for (const vi of gp.output) {
    const y = vi.name ?? '';
    if (!writer.has(y)) throw invalid(source, `graph output '${y}' is not produced by any node, initializer or input`);
    outputs.push(y);
  }

  const g: Graph = { name: gp.name || basename(source), inputs, outputs, tensors, nodes: topoSort(nodes, deps, source), source };
  checkConvWeights(g, ctx);
  checkQuantizeScales(g, ctx);
  return g;
}

/**
 * The most inputs and outputs each known operator takes in ONNX's schemas (over the opsets fcm-opt reads: opset 7-9
 * BatchNormalization has five outputs; `Infinity`: variadic). The IR gives positions past them meanings of its own (a Conv's 4th input is its residual, its 5th a
 * channel scale: src/graph/ir.ts), so a file's extra operand is refused here rather than read as one.
 */
const onnxOperands: Readonly<Record<KnownOp, readonly [inputs: number, outputs: number]>> = {
  Conv: [3, 1], Gemm: [3, 1], MatMul: [2, 1], Add: [2, 1], Sub: [2, 1], Mul: [2, 1], Div: [2, 1],
  Relu: [1, 1], LeakyRelu: [1, 1], Clip: [3, 1], HardSigmoid: [1, 1], HardSwish: [1, 1], Sigmoid: [1, 1], Tanh: [1, 1],
  SiLU: [1, 1], PRelu: [2, 1], Abs: [1, 1],
  GlobalAveragePool: [1, 1], ReduceMean: [2, 1], MaxPool: [1, 2], AveragePool: [1, 1],
  Flatten: [1, 1], Reshape: [2, 1], Transpose: [1, 1], Concat: [Infinity, 1], Split: [2, Infinity], Slice: [5, 1],
  Pad: [4, 1], Softmax: [1, 1],
  BatchNormalization: [5, 5], Identity: [1, 1], Dropout: [3, 2], Constant: [0, 1], Shape: [1, 1], Gather: [2, 1],
  Unsqueeze: [2, 1], Squeeze: [2, 1], Cast: [1, 1],
  QuantizeLinear: [3, 1], DequantizeLinear: [3, 1],
};

/** Operands a default-domain node may have (trailing empty names are absent optional ones), and no executor-only op. */
function checkOperands(op: string, np: onnx.NodeProto, source: string, where: string): void {
  if (executorOnlyOps.includes(op)) throw unsupported(source, `${where}: '${op}' is no ONNX operator (fcm-opt's executor makes an op of that name; a file cannot hold it)`);
  const limits = onnxOperands[op as KnownOp];
  if (!limits) return;
  const count = (names: readonly string[]) => { let k = names.length; while (k > 0 && !names[k - 1]) k--; return k; };
  const [maxIn, maxOut] = limits;
  const ins = count(np.input), outs = count(np.output);
  if (ins > maxIn) throw invalid(source, `${where} has ${ins} inputs; ${op} takes at most ${maxIn}`);
  if (outs > maxOut) throw invalid(source, `${where} has ${outs} outputs; ${op} gives at most ${maxOut}`);
}

/** A graph's nodes to IR nodes (Constants become tensors in `tensors`); `writer` records who writes each tensor. */
function convertNodes(
  list: onnx.NodeProto[], ctx: Ctx, tensors: Map<string, Tensor>, writer: Map<string, string>,
  declared: Map<string, { dtype: DType | null; shape: number[] | null }>,
): Node[] {
  const { source } = ctx;
  const nodes: Node[] = [];
  // Node names are the IR's keys (plans, errors, the rewrite): a name the file leaves empty or repeats gets a suffix.
  const names = new Set<string>();
  list.forEach((np, index) => {
    const domain = !np.domain || np.domain === 'ai.onnx' ? '' : np.domain;
    const op = np.opType ?? '';
    let name = np.name || `${op || 'node'}_${index}`;
    for (let k = 1; names.has(name); k++) name = `${np.name || `${op || 'node'}_${index}`}_${k}`;
    names.add(name);
    // Messages name the node as the file does (a repeated name: the file's name and its position).
    const where = name === (np.name || name) ? `node '${name}' (${op})` : `node '${np.name}' (${op}, node ${index} of the graph; the name is repeated)`;
    if (!op) throw invalid(source, `node '${name}' has no op_type`);
    // Every ONNX operator gives at least one output; a node with none computes nothing anyone can read.
    if (!np.output.some((y) => y)) throw invalid(source, `${where} has no outputs`);
    if (domain === '') checkOperands(op, np, source, where);
    for (const y of np.output) {
      if (!y) continue;
      const prev = writer.get(y);
      if (prev !== undefined) throw invalid(source, `${where} writes tensor '${y}', which ${prev} already writes`);
      writer.set(y, `node '${name}'`);
    }
    if (domain === '' && op === 'Constant') {
      const t = constantNodeTensor(np, ctx, where);
      if (t !== null) {
        tensors.set(t.name, t);
        return;
      }
    }
    const attrs = normalizeAttrs(op, domain, np, ctx, where);
    const node: Node = { name, op, domain, inputs: [...np.input], outputs: [...np.output], attrs };
    if (domain === '' && op === 'If') {
      // Both branches as IR graphs: a later pass inlines the one a constant condition takes (src/graph/passes/inline-if.ts).
      // A branch holding what fcm-opt does not support (string tensors, say) leaves the If opaque, saying why.
      for (const k of ['then_branch', 'else_branch']) {
        const sub = np.attribute.find((a) => a.name === k)?.g;
        if (!sub) throw invalid(source, `${where} has no graph attribute '${k}'`);
        try {
          attrs[k] = { graph: branchGraph(sub, ctx, `${where} ${k}`) };
        } catch (e) {
          if (!(e instanceof FcmError) || e.kind !== 'unsupported') throw e;
          attrs.notInlined = e.message.replace(`${source}: `, '');
        }
      }
    }
    onnxNodeOf.set(node, np);
    nodes.push(node);
    for (const y of np.output) {
      if (!y || tensors.has(y)) continue;
      const d = declared.get(y);
      const t: Tensor = { name: y, dtype: d?.dtype ?? outputDType(node, tensors), shape: d?.shape ?? [] };
      if (!d?.shape) t.shapeUnknown = true;
      tensors.set(y, t);
    }
  });
  return nodes;
}

/** An If branch as an IR graph: no inputs, its own initializers and constants, nodes in topological order that
 *  may read tensors of the enclosing graphs, its outputs. Shapes are left to inference once inlined (a branch
 *  not taken may not even have valid shapes for the model's inputs). */
function branchGraph(gp: onnx.GraphProto, ctx: Ctx, where: string): Graph {
  const { source } = ctx;
  if (gp.input.length > 0) throw invalid(source, `${where} has ${gp.input.length} inputs; an If branch takes none`);
  const tensors = new Map<string, Tensor>();
  const writer = new Map<string, string>();
  for (const t of gp.initializer) {
    const name = t.name ?? '';
    if (!name) throw invalid(source, `${where}: an initializer has no name`);
    if (tensors.has(name)) throw invalid(source, `${where}: initializer '${name}' is defined twice`);
    tensors.set(name, tensorFromProto(t, ctx, `${where} initializer '${name}'`));
    writer.set(name, `initializer '${name}'`);
  }
  const outer = ctx.weightShape;
  ctx.weightShape = (name) => (tensors.get(name)?.data ? tensors.get(name)!.shape : outer(name));
  let nodes: Node[];
  try {
    nodes = convertNodes(gp.node, ctx, tensors, writer, new Map());
  } finally {
    ctx.weightShape = outer;
  }
  // Order by the branch's own tensors; reads of enclosing scopes are defined before the If node.
  const deps = nodes.map((n) => {
    const reads = n.inputs.filter((x) => x !== '' && writer.has(x));
    for (const x of outerReads(onnxNodeOf.get(n)!)) if (writer.has(x)) reads.push(x);
    return reads;
  });
  const outputs = gp.output.map((v) => v.name ?? '');
  if (outputs.some((y) => !y)) throw invalid(source, `${where}: an output has no name`);
  return { name: gp.name || where, inputs: [], outputs, tensors, nodes: topoSort(nodes, deps, source), source };
}

function dtypeOrThrow(t: number, ctx: Ctx, where: string): DType {
  const d = dtypeFromOnnx(t);
  if (d === null) {
    if (t === 0) throw invalid(ctx.source, `${where} has no element type`);
    throw unsupported(ctx.source, `${where} has element type ${onnxDataTypeName(t)}, which fcm-opt does not support`);
  }
  return d;
}

function resolveInputShape(
  name: string, shape: onnx.TensorShapeProto | null | undefined, opts: ImportOptions,
  symbols: Map<string, number>, source: string,
): number[] {
  const given = opts.inputShapes?.[name];
  const dims = shape?.dim ?? [];
  if (!shape && !given) throw invalid(source, `graph input '${name}' has no shape; give it with --input-shape ${name}:1x3x224x224`);
  if (given) {
    if (shape && given.length !== dims.length) {
      throw invalid(source, `--input-shape for '${name}' has rank ${given.length}, the model's input has rank ${dims.length}`);
    }
    for (const v of given) if (!Number.isSafeInteger(v) || v <= 0) throw invalid(source, `--input-shape for '${name}': dimension ${v} is not a positive integer`);
  }
  const batch = opts.batch ?? 1;
  if (!Number.isSafeInteger(batch) || batch <= 0) throw invalid(source, `--batch ${batch} is not a positive integer`);
  const out: number[] = [];
  const symbolic: string[] = [];
  dims.forEach((d, i) => {
    const isStatic = d.dimValue !== null && d.dimValue !== undefined;
    const value = isStatic ? toSafeNumber(d.dimValue, `${source}: input '${name}'`) : null;
    if (given) {
      if (value !== null && value !== given[i]) {
        throw invalid(source, `--input-shape for '${name}' gives ${given[i]} for dim ${i}, the model fixes it to ${value}`);
      }
      if (d.dimParam) symbols.set(d.dimParam, given[i]);
      out.push(given[i]);
    } else if (value !== null) {
      if (value < 0) throw invalid(source, `graph input '${name}' has negative dimension ${value}`);
      out.push(value);
    } else if (i === 0) {
      if (d.dimParam) symbols.set(d.dimParam, batch);
      out.push(batch);
    } else {
      symbolic.push(`${d.dimParam || '?'} (dim ${i})`);
      out.push(-1);
    }
  });
  if (symbolic.length > 0) {
    const example = out.map((v) => (v >= 0 ? String(v) : '640')).join('x');
    throw invalid(source, `graph input '${name}' has symbolic dims ${symbolic.join(', ')}; give a static shape with --input-shape, e.g. --input-shape ${name}:${example}`);
  }
  checkedProduct(out, `${source}: graph input '${name}'`, maxElements);
  return out;
}

function declaredShape(shape: onnx.TensorShapeProto | null | undefined, symbols: Map<string, number>): number[] | null {
  if (!shape) return null;
  const out: number[] = [];
  for (const d of shape.dim) {
    if (d.dimValue !== null && d.dimValue !== undefined) {
      const v = toClampedNumber(d.dimValue);
      if (!Number.isSafeInteger(v) || v < 0) return null;
      out.push(v);
    } else if (d.dimParam && symbols.has(d.dimParam)) out.push(symbols.get(d.dimParam)!);
    else return null;
  }
  return out;
}

/** Best-effort output dtype where the file does not state it (shape inference refines it). */
function outputDType(n: Node, tensors: Map<string, Tensor>): DType {
  if (n.domain === '') {
    if (n.op === 'Shape') return 'int64';
    if (n.op === 'Cast' && typeof n.attrs.to === 'string') return n.attrs.to as DType;
  }
  const first = n.inputs.find((x) => x !== '');
  return (first !== undefined && tensors.get(first)?.dtype) || 'float32';
}

// ---------------------------------------------------------------------------------------------------
// Tensors

const arrayCtor: Partial<Record<DType, new (b: ArrayBuffer, off: number, len: number) => TensorData>> = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array, bool: Uint8Array,
  int16: Int16Array, uint16: Uint16Array, float16: Uint16Array, bfloat16: Uint16Array,
  int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array,
};

function viewBytes(bytes: Uint8Array, dtype: DType, n: number, ctx: Ctx, what: string): TensorData {
  const Ctor = arrayCtor[dtype]!;
  const size = dtypeSize(dtype);
  if (bytes.byteOffset % size === 0) return new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, n);
  ctx.budget.charge(bytes.byteLength, `copying unaligned ${what}`);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Ctor(copy.buffer, 0, n);
}

export function tensorFromProto(t: onnx.TensorProto, ctx: Ctx, what: string): Tensor {
  const { source } = ctx;
  const name = t.name ?? '';
  const dtype = dtypeOrThrow(t.dataType ?? 0, ctx, what);
  const shape = t.dims.map((d) => {
    const v = toSafeNumber(d, `${source}: ${what}`);
    if (v < 0) throw invalid(source, `${what} has negative dimension ${v}`);
    return v;
  });
  if (t.segment) throw unsupported(source, `${what} is a segment of a tensor`);
  if (dtype === 'string') throw unsupported(source, `${what} holds strings`);
  const n = checkedProduct(shape, `${source}: ${what}`, maxElements);
  const size = dtypeSize(dtype);
  const nbytes = checkedProduct([n, size], `${source}: ${what}`);
  const mismatch = (have: string) => invalid(source, `${what} has ${have}, but its shape [${shape.join(', ')}] of ${dtype} needs ${n} elements (${nbytes} bytes)`);

  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const bytes = readExternal(t, nbytes, ctx, what);
    return { name, dtype, shape, data: viewBytes(bytes, dtype, n, ctx, what) };
  }
  if (t.rawData !== null && t.rawData !== undefined && (t.rawData.byteLength > 0 || n === 0)) {
    if (t.rawData.byteLength !== nbytes) throw mismatch(`${t.rawData.byteLength} bytes of raw_data`);
    return { name, dtype, shape, data: viewBytes(t.rawData, dtype, n, ctx, what) };
  }
  const typed = (count: number, field: string) => {
    if (count !== n) throw mismatch(`${count} values in ${field}`);
    ctx.budget.charge(nbytes, what);
  };
  switch (dtype) {
    case 'float32': typed(t.floatData.length, 'float_data'); return { name, dtype, shape, data: Float32Array.from(t.floatData) };
    case 'float64': typed(t.doubleData.length, 'double_data'); return { name, dtype, shape, data: Float64Array.from(t.doubleData) };
    case 'int64': {
      typed(t.int64Data.length, 'int64_data');
      const a = new BigInt64Array(n);
      for (let i = 0; i < n; i++) a[i] = toBigInt(t.int64Data[i] as Int64);
      return { name, dtype, shape, data: a };
    }
    case 'uint32': case 'uint64': {
      typed(t.uint64Data.length, 'uint64_data');
      if (dtype === 'uint32') return { name, dtype, shape, data: Uint32Array.from(t.uint64Data, (v) => toClampedNumber(v as Int64)) };
      const a = new BigUint64Array(n);
      for (let i = 0; i < n; i++) a[i] = BigInt.asUintN(64, toBigInt(t.uint64Data[i] as Int64));
      return { name, dtype, shape, data: a };
    }
    default: {
      // int32, int16/8, uint16/8, bool, float16/bfloat16 (bit patterns) all live in int32_data.
      typed(t.int32Data.length, 'int32_data');
      const Ctor = arrayCtor[dtype]!;
      const a = new Ctor(new ArrayBuffer(nbytes), 0, n) as Exclude<TensorData, BigInt64Array | BigUint64Array>;
      for (let i = 0; i < n; i++) a[i] = t.int32Data[i];
      return { name, dtype, shape, data: a };
    }
  }
}

/** External data: only regular files inside the model's folder, read in range. */
function readExternal(t: onnx.TensorProto, nbytes: number, ctx: Ctx, what: string): Uint8Array {
  const { source } = ctx;
  const kv = new Map<string, string>();
  for (const e of t.externalData) kv.set(e.key ?? '', e.value ?? '');
  const location = kv.get('location');
  if (!location) throw invalid(source, `${what} has external data without a location`);
  const refuse = (why: string) => invalid(source, `${what}: external data '${location}' ${why}; only files inside the model's folder are read`);
  if (ctx.dir === null) throw invalid(source, `${what} has external data '${location}', which needs the model's path (imported from bytes)`);
  if (isAbsolute(location) || /^[a-zA-Z]:/.test(location) || location.startsWith('\\')) throw refuse('is an absolute path');
  if (location.split(/[\\/]/).some((p) => p === '..')) throw refuse("contains '..'");
  if (location.includes('\0')) throw refuse('contains a NUL byte');
  const parseInt64 = (key: string): number | null => {
    const s = kv.get(key);
    if (s === undefined || s === '') return null;
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw invalid(source, `${what}: external data ${key} '${s}' is not a non-negative integer`);
    return Number(s);
  };
  const offset = parseInt64('offset') ?? 0;
  const lengthKey = parseInt64('length');

  let file = ctx.externalFiles.get(location);
  if (!file) {
    const path = join(ctx.dir, location);
    let real: string;
    let realDir: string;
    try {
      realDir = realpathSync(ctx.dir);
      real = realpathSync(path);
    } catch {
      throw refuse('does not exist');
    }
    if (!real.startsWith(realDir + sep)) throw refuse('resolves (through a symlink) outside the folder');
    const st = lstatSync(real);
    if (!st.isFile()) throw refuse('is not a regular file');
    // A second hard link may live anywhere: refuse rather than guess.
    if (st.nlink > 1) throw refuse('has more than one hard link');
    let fd: number;
    try {
      fd = openSync(real, 'r');
    } catch (e) {
      throw refuse(`cannot be opened (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    const fst = fstatSync(fd);
    if (fst.ino !== st.ino || fst.dev !== st.dev) {
      closeSync(fd);
      throw refuse('changed while being opened');
    }
    file = { fd, size: fst.size };
    ctx.externalFiles.set(location, file);
  }
  const length = lengthKey ?? file.size - offset;
  if (offset > file.size || offset + length > file.size) {
    throw invalid(source, `${what}: external data range ${offset}+${length} is outside '${location}' (${file.size} bytes)`);
  }
  if (length !== nbytes) {
    throw invalid(source, `${what} has ${length} bytes of external data, but its shape of ${onnxDataTypeName(t.dataType ?? 0)} needs ${nbytes} bytes`);
  }
  ctx.budget.charge(length, `${what} (external data)`);
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const r = readSync(file.fd, buf, done, length - done, offset + done);
    if (r === 0) throw invalid(source, `${what}: external data '${location}' ended early`);
    done += r;
  }
  return buf;
}

/** A Constant node's value as a tensor named after its output; null for forms kept as a node (strings, sparse). */
function constantNodeTensor(np: onnx.NodeProto, ctx: Ctx, where: string): Tensor | null {
  const out = np.output[0];
  if (np.output.length !== 1 || !out) throw invalid(ctx.source, `${where} must have exactly one output`);
  if (np.attribute.length !== 1) throw invalid(ctx.source, `${where} must have exactly one value attribute`);
  const a = np.attribute[0];
  const w = `${where} value`;
  switch (a.name) {
    case 'value': {
      if (!a.t) throw invalid(ctx.source, `${where} has no tensor in 'value'`);
      const t = tensorFromProto(a.t, ctx, w);
      return { ...t, name: out };
    }
    case 'value_float': return { name: out, dtype: 'float32', shape: [], data: Float32Array.of(a.f ?? 0) };
    case 'value_floats': return { name: out, dtype: 'float32', shape: [a.floats.length], data: Float32Array.from(a.floats) };
    case 'value_int': return { name: out, dtype: 'int64', shape: [], data: BigInt64Array.of(toBigInt(a.i ?? 0)) };
    case 'value_ints':
      return { name: out, dtype: 'int64', shape: [a.ints.length], data: BigInt64Array.from(a.ints, (v) => toBigInt(v as Int64)) };
    case 'value_string': case 'value_strings': case 'sparse_value': return null;
    default: throw invalid(ctx.source, `${where} has unknown attribute '${a.name}'`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Attributes

/** An attribute's value in the IR's plain form (opaque nodes keep all of theirs this way). */
function rawAttrValue(a: onnx.AttributeProto, ctx: Ctx, where: string): AttrValue | undefined {
  const type = a.type ?? inferAttrType(a);
  switch (type) {
    case AT.FLOAT: return a.f ?? 0;
    case AT.INT: return toClampedNumber(a.i);
    case AT.STRING: return new TextDecoder().decode(a.s ?? new Uint8Array());
    case AT.TENSOR: return a.t ? tensorFromProto(a.t, ctx, `${where} attribute '${a.name}'`) : undefined;
    case AT.GRAPH: return { graph: a.g };
    case AT.GRAPHS: return { graph: a.graphs };
    case AT.FLOATS: return [...a.floats];
    case AT.INTS: return a.ints.map((v) => toClampedNumber(v as Int64));
    case AT.STRINGS: return a.strings.map((s) => new TextDecoder().decode(s));
    // TENSORS, SPARSE_TENSOR(S), TYPE_PROTO(S): kept only in the NodeProto (onnxNodeOf) for export.
    default: return undefined;
  }
}

/** IR 1 attributes have no type field: the value field that is set says it. */
function inferAttrType(a: onnx.AttributeProto): number {
  if (a.f !== null && a.f !== undefined) return AT.FLOAT;
  if (a.i !== null && a.i !== undefined) return AT.INT;
  if (a.s !== null && a.s !== undefined) return AT.STRING;
  if (a.t) return AT.TENSOR;
  if (a.g) return AT.GRAPH;
  if (a.floats.length) return AT.FLOATS;
  if (a.ints.length) return AT.INTS;
  if (a.strings.length) return AT.STRINGS;
  if (a.graphs.length) return AT.GRAPHS;
  return AT.UNDEFINED;
}

function normalizeAttrs(op: string, domain: string, np: onnx.NodeProto, ctx: Ctx, where: string): Attrs {
  const raw = new Map<string, AttrValue>();
  for (const a of np.attribute) {
    const name = a.name ?? '';
    if (a.refAttrName) throw invalid(ctx.source, `${where} attribute '${name}' refers to a function attribute outside a function`);
    const v = rawAttrValue(a, ctx, where);
    if (v !== undefined) raw.set(name, v);
  }
  const node = { op, domain } as Node;
  if (!isKnownOp(node)) {
    const attrs = newAttrs();
    for (const [k, v] of raw) attrs[k] = v;
    return attrs;
  }
  return canonicalAttrs(op, raw, np, ctx, where);
}

function canonicalAttrs(op: string, raw: Map<string, AttrValue>, np: onnx.NodeProto, ctx: Ctx, where: string): Attrs {
  const { source, opset } = ctx;
  const a = newAttrs();
  const num = (k: string, dflt: number) => {
    const v = raw.get(k);
    if (v === undefined) return dflt;
    if (typeof v !== 'number') throw invalid(source, `${where} attribute '${k}' must be a number`);
    return v;
  };
  const ints = (k: string): number[] | undefined => {
    const v = raw.get(k);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) throw invalid(source, `${where} attribute '${k}' must be a list of numbers`);
    return v as number[];
  };
  const str = (k: string, dflt: string) => {
    const v = raw.get(k);
    if (v === undefined) return dflt;
    if (typeof v !== 'string') throw invalid(source, `${where} attribute '${k}' must be a string`);
    return v;
  };
  const positive = (k: string, v: number[]) => {
    const bad = v.findIndex((x) => !Number.isSafeInteger(x) || x <= 0);
    if (bad >= 0) throw invalid(source, `${where} has ${k} ${v[bad]} (must be a positive integer)`);
  };
  // Conv and pooling share kernel/strides/pads/dilations/autoPad.
  const window = (kernel: number[] | undefined, withDilations: boolean) => {
    if (!kernel) throw invalid(source, `${where} has no kernel_shape and its kernel size is unknown`);
    positive('kernel size', kernel);
    const rank = kernel.length;
    const strides = ints('strides') ?? new Array(rank).fill(1);
    const pads = ints('pads') ?? new Array(2 * rank).fill(0);
    const dilations = ints('dilations') ?? new Array(rank).fill(1);
    if (strides.length !== rank) throw invalid(source, `${where} has ${strides.length} strides for a ${rank}-D kernel`);
    if (pads.length !== 2 * rank) throw invalid(source, `${where} has ${pads.length} pads for a ${rank}-D kernel (needs ${2 * rank})`);
    if (dilations.length !== rank) throw invalid(source, `${where} has ${dilations.length} dilations for a ${rank}-D kernel`);
    positive('stride', strides);
    if (withDilations) positive('dilation', dilations);
    if (pads.some((p) => !Number.isSafeInteger(p) || p < 0)) throw invalid(source, `${where} has negative pads [${pads.join(', ')}]`);
    a.kernel = kernel;
    a.strides = strides;
    a.pads = pads;
    if (withDilations) a.dilations = dilations;
    const autoPad = str('auto_pad', 'NOTSET');
    if (!['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'].includes(autoPad)) throw invalid(source, `${where} has unknown auto_pad '${autoPad}'`);
    if (autoPad !== 'NOTSET') {
      a.autoPad = autoPad;
      if (ints('pads')?.some((p) => p !== 0)) throw invalid(source, `${where} sets both auto_pad ${autoPad} and pads`);
    }
  };
  switch (op) {
    case 'Conv': {
      let kernel = ints('kernel_shape');
      if (!kernel) {
        // From the weight [F, C/group, kh, kw] when its shape is known (initializer, Constant or input).
        const w = ctx.weightShape(np.input[1] ?? '');
        if (w && w.length >= 3) kernel = w.slice(2);
      }
      window(kernel, true);
      a.group = num('group', 1);
      positive('group', [a.group]);
      break;
    }
    case 'MaxPool':
      window(ints('kernel_shape'), true);
      a.ceilMode = num('ceil_mode', 0);
      if (np.output.length > 1 && np.output[1]) a.storageOrder = num('storage_order', 0);
      break;
    case 'AveragePool':
      window(ints('kernel_shape'), false);
      a.countIncludePad = num('count_include_pad', 0);
      a.ceilMode = num('ceil_mode', 0);
      if (raw.has('dilations')) { a.dilations = ints('dilations')!; positive('dilation', a.dilations); }
      break;
    case 'Gemm':
      a.alpha = num('alpha', 1); a.beta = num('beta', 1); a.transA = num('transA', 0); a.transB = num('transB', 0);
      break;
    case 'Clip':
      if (opset < 11) {
        // Opset 6-10: bounds are attributes (defaulting to the float range).
        a.min = num('min', -Infinity); a.max = num('max', Infinity);
      }
      break;
    case 'LeakyRelu': a.alpha = num('alpha', 0.01); break;
    case 'HardSigmoid': a.alpha = num('alpha', 0.2); a.beta = num('beta', 0.5); break;
    case 'ReduceMean':
      a.keepdims = num('keepdims', 1);
      if (opset < 18) a.axes = ints('axes') ?? [];
      else if (raw.has('noop_with_empty_axes')) a.noopWithEmptyAxes = num('noop_with_empty_axes', 0);
      break;
    case 'Softmax': a.axis = num('axis', opset < 13 ? 1 : -1); break;
    case 'Flatten': a.axis = num('axis', 1); break;
    case 'Concat':
      if (!raw.has('axis')) throw invalid(source, `${where} has no axis`);
      a.axis = num('axis', 0);
      break;
    case 'Split':
      a.axis = num('axis', 0);
      if (opset < 13 && raw.has('split')) a.split = ints('split')!;
      if (raw.has('num_outputs')) a.numOutputs = num('num_outputs', 0);
      break;
    case 'Slice':
      if (opset < 10) {
        const starts = ints('starts'), ends = ints('ends');
        if (!starts || !ends) throw invalid(source, `${where} has no starts/ends`);
        a.starts = starts; a.ends = ends;
        a.axes = ints('axes') ?? starts.map((_, i) => i);
        a.steps = starts.map(() => 1);
      }
      break;
    case 'Pad':
      a.mode = str('mode', 'constant');
      if (!['constant', 'reflect', 'edge', 'wrap'].includes(a.mode)) throw invalid(source, `${where} has unknown mode '${a.mode}'`);
      if (opset < 11) {
        const pads = ints('pads') ?? ints('paddings');
        if (!pads) throw invalid(source, `${where} has no pads`);
        a.pads = pads; a.value = num('value', 0);
      }
      break;
    case 'Transpose': { const perm = ints('perm'); if (perm) a.perm = perm; break; }
    case 'Reshape': if (raw.has('allowzero')) a.allowzero = num('allowzero', 0); break;
    case 'Squeeze': case 'Unsqueeze':
      if (opset < 13) {
        const axes = ints('axes');
        if (axes) a.axes = axes;
        else if (op === 'Unsqueeze') throw invalid(source, `${where} has no axes`);
      }
      break;
    case 'Gather': a.axis = num('axis', 0); break;
    case 'Cast': {
      const to = num('to', 0);
      const d = dtypeFromOnnx(to);
      if (d === null) throw unsupported(source, `${where} casts to ${onnxDataTypeName(to)}`);
      a.to = d;
      if (raw.has('saturate')) a.saturate = num('saturate', 1);
      break;
    }
    case 'BatchNormalization':
      a.epsilon = num('epsilon', 1e-5);
      if (num('training_mode', 0) !== 0) throw unsupported(source, `${where} is in training mode`);
      break;
    case 'Shape':
      if (raw.has('start')) a.start = num('start', 0);
      if (raw.has('end')) a.end = num('end', 0);
      break;
    case 'QuantizeLinear': case 'DequantizeLinear':
      a.axis = num('axis', 1);
      if (raw.has('saturate')) a.saturate = num('saturate', 1);
      if (raw.has('block_size')) a.blockSize = num('block_size', 0);
      if (raw.has('output_dtype')) a.outputDtype = num('output_dtype', 0);
      break;
    default:
      // Add, Sub, Mul, Div, MatMul, Relu, Sigmoid, Tanh, HardSwish, PRelu, Abs, GlobalAveragePool,
      // Identity, Dropout, SiLU: nothing to normalize (Dropout's ratio only matters in training).
      break;
  }
  return a;
}

// ---------------------------------------------------------------------------------------------------
// Graph checks

/** Names a node's subgraphs read from enclosing scopes (implicit inputs of If/Loop/Scan). */
function outerReads(np: onnx.NodeProto): string[] {
  const out = new Set<string>();
  // Explicit stack: subgraph depth is bounded by the decoder, but keep this iterative anyway.
  const stack: { g: onnx.GraphProto; outer: Set<string> }[] = [];
  const push = (n: onnx.NodeProto, defined: Set<string>) => {
    for (const a of n.attribute) for (const g of [...(a.g ? [a.g] : []), ...a.graphs]) stack.push({ g, outer: defined });
  };
  push(np, new Set());
  while (stack.length > 0) {
    const { g, outer } = stack.pop()!;
    const defined = new Set<string>(outer);
    for (const t of g.initializer) if (t.name) defined.add(t.name);
    for (const v of g.input) if (v.name) defined.add(v.name);
    for (const n of g.node) for (const y of n.output) if (y) defined.add(y);
    for (const n of g.node) {
      for (const x of n.input) if (x && !defined.has(x)) out.add(x);
      push(n, defined);
    }
    for (const v of g.output) if (v.name && !defined.has(v.name)) out.add(v.name);
  }
  return [...out];
}

/** Kahn's algorithm, keeping file order among ready nodes; a cycle names its nodes. */
function topoSort(nodes: Node[], deps: string[][], source: string): Node[] {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => { for (const y of n.outputs) if (y) producer.set(y, i); });
  const indeg = new Array<number>(nodes.length).fill(0);
  const users: number[][] = nodes.map(() => []);
  deps.forEach((reads, i) => {
    for (const x of new Set(reads)) {
      const p = producer.get(x);
      if (p === undefined) continue;
      if (p === i) throw invalid(source, `node '${nodes[i].name}' (${nodes[i].op}) reads its own output '${x}' (a cycle)`);
      indeg[i]++;
      users[p].push(i);
    }
  });
  // A min-heap would keep strict file order; ready nodes are taken in index order from a sorted queue.
  const ready: number[] = [];
  indeg.forEach((d, i) => { if (d === 0) ready.push(i); });
  const order: Node[] = [];
  const queue = new MinHeap(ready);
  while (queue.size > 0) {
    const i = queue.pop();
    order.push(nodes[i]);
    for (const u of users[i]) if (--indeg[u] === 0) queue.push(u);
  }
  if (order.length !== nodes.length) {
    const stuck = nodes.filter((_, i) => indeg[i] > 0).slice(0, 5).map((n) => `'${n.name}'`);
    throw invalid(source, `the graph has a cycle (not topologically sortable) through nodes ${stuck.join(', ')}`);
  }
  return order;
}

class MinHeap {
  private h: number[] = [];
  constructor(init: number[]) { for (const v of init) this.push(v); }
  get size() { return this.h.length; }
  push(v: number) {
    const h = this.h;
    h.push(v);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p] <= h[i]) break;
      [h[p], h[i]] = [h[i], h[p]];
      i = p;
    }
  }
  pop(): number {
    const h = this.h;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < h.length && h[l] < h[m]) m = l;
        if (r < h.length && h[r] < h[m]) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i], h[m]];
        i = m;
      }
    }
    return top;
  }
}

/** Conv weight vs input channels/group where both shapes are known at import (shape inference checks the rest). */
function checkConvWeights(g: Graph, ctx: Ctx): void {
  for (const n of g.nodes) {
    if (n.domain !== '' || n.op !== 'Conv') continue;
    const x = g.tensors.get(n.inputs[0]);
    const w = g.tensors.get(n.inputs[1] ?? '');
    const where = `node '${n.name}' (Conv)`;
    if (!w || w.shape.length === 0) continue;
    const group = n.attrs.group as number;
    const kernel = n.attrs.kernel as number[];
    if (w.shape.length !== kernel.length + 2) {
      if (w.data) throw invalid(ctx.source, `${where}: weight '${w.name}' has shape [${w.shape.join(', ')}], not [F, C/group, ${kernel.join(', ')}]`);
      continue;
    }
    if (w.data && w.shape.slice(2).some((k, i) => k !== kernel[i])) {
      throw invalid(ctx.source, `${where}: weight '${w.name}' has kernel ${w.shape.slice(2).join('x')}, kernel_shape says ${kernel.join('x')}`);
    }
    if (w.shape[0] % group !== 0) {
      throw invalid(ctx.source, `${where}: weight '${w.name}' has ${w.shape[0]} filters, not a multiple of group ${group}`);
    }
    if (x && x.shape.length === kernel.length + 2) {
      const c = x.shape[1];
      if (c % group !== 0 || c / group !== w.shape[1]) {
        throw invalid(ctx.source, `${where}: input '${x.name}' has ${c} channels; with group ${group} the weight '${w.name}' needs ${c / group} input channels per filter but has ${w.shape[1]}`);
      }
    }
  }
}

/** QuantizeLinear divides by its scale: a constant scale that is zero, negative or not finite is refused. */
function checkQuantizeScales(g: Graph, ctx: Ctx): void {
  for (const n of g.nodes) {
    if (n.domain !== '' || n.op !== 'QuantizeLinear') continue;
    const s = g.tensors.get(n.inputs[1] ?? '');
    if (!s?.data || (s.dtype !== 'float32' && s.dtype !== 'float64')) continue;
    for (const v of s.data as Float32Array | Float64Array) {
      if (!(v > 0) || !Number.isFinite(v)) {
        throw invalid(ctx.source, `node '${n.name}' (QuantizeLinear): scale '${s.name}' holds ${v}; a quantization scale must be a positive finite number`);
      }
    }
  }
}
