// TF.js graph models: a model.json whose `modelTopology` is a TensorFlow GraphDef in JSON (`"format":
// "graph-model"`, what tensorflowjs_converter writes for a SavedModel or frozen graph), with its constants in the
// weight shards of `weightsManifest` by node name. Read into the graph IR with the layout rule of the Keras and TFLite
// importers (converters/tf-layout.ts): every rank-4 tensor is NCHW in the IR, filters become ONNX's order, 'SAME'
// padding puts the odd pixel last; ops whose meaning depends on memory order (Reshape, Squeeze, ExpandDims) see the
// tensor in TensorFlow's order through a Transpose.
//
// The ops of the convolutional networks such models hold: Conv2D, DepthwiseConv2dNative and their fused forms
// (_FusedConv2D, FusedDepthwiseConv2dNative: BiasAdd then Relu, Relu6, Prelu, LeakyRelu, Sigmoid, Tanh), BiasAdd,
// elementwise Add/AddV2/AddN/Sub/Mul/RealDiv, Maximum/Minimum with a constant (as Clip), the activations, MaxPool,
// AvgPool, Pad/PadV2, Mean, Max/Min, Reshape, Squeeze, ExpandDims, ConcatV2, Softmax, MatMul/_FusedMatMul,
// ResizeBilinear, ResizeNearestNeighbor, DepthToSpace, Conv2DBackpropInput, StridedSlice, Abs, Identity, Cast to float.
// Shapes are static, so Shape, Pack and arithmetic on constants are computed here (Reshape targets built from them).
// Control flow, TensorList and post-processing ops (TopKV2, NonMaxSuppression, GatherNd, ...) are exit 3 naming the node.
import { invalid, unsupported } from '../../src/errors.js';
import { newAttrs, type Attrs, type Graph, type Node, type Tensor, type TensorData } from '../../src/graph/ir.js';
import type { ImportOptions } from '../options.js';
import { readWeights, type ShardLoader } from '../tfjs-weights.js';
import { nchwPos, nchwToNhwc, nhwcToNchw, permute, tfPads, transposeF32 } from '../tf-layout.js';

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether a parsed model.json is a TF.js graph model (a GraphDef's node list in modelTopology). */
export function isTfjsGraphModel(doc: unknown): boolean {
  return isObj(doc) && (doc.format === 'graph-model' || (isObj(doc.modelTopology) && Array.isArray(doc.modelTopology.node)));
}

interface GraphNode { name: string; op: string; input: string[]; attr: Json }

/** A TensorFlow value: its IR tensor, its TensorFlow (channels-last) shape, and its data where it is a constant. */
interface Value { ir: string; shape: number[]; data?: Float32Array }

// ---- attribute values (AttrValue in proto JSON: lists and ints as strings, strings base64) -------------------------

function decodeB64(s: string): string | undefined {
  let bin: string;
  try {
    bin = atob(s);
  } catch {
    return undefined;
  }
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

/** The node's attributes with their strings (base64 in the file) decoded; an undecodable one is exit 2 naming it. */
function decodeAttrs(attr: Json, source: string, node: string): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(attr)) {
    if (!isObj(v)) { out[k] = v; continue; }
    const bad = () => invalid(source, `node '${node}': attribute '${k}' holds a string that is not base64`);
    let d: Json = v;
    if (typeof v.s === 'string') {
      const t = decodeB64(v.s);
      if (t === undefined) throw bad();
      d = { ...v, s: t };
    }
    if (isObj(v.list) && Array.isArray(v.list.s)) {
      const ts = v.list.s.map((e) => decodeB64(String(e)));
      if (ts.some((t) => t === undefined)) throw bad();
      d = { ...d, list: { ...v.list, s: ts } };
    }
    out[k] = d;
  }
  return out;
}
const attrOf = (n: GraphNode, k: string): Json | undefined => (isObj(n.attr?.[k]) ? n.attr[k] as Json : undefined);
const ints = (n: GraphNode, k: string): number[] | undefined => {
  const l = attrOf(n, k)?.list;
  return isObj(l) && Array.isArray(l.i) ? l.i.map(Number) : undefined;
};
const str = (n: GraphNode, k: string): string | undefined => {
  const s = attrOf(n, k)?.s;
  return typeof s === 'string' ? s : undefined;
};
const strs = (n: GraphNode, k: string): string[] => {
  const l = attrOf(n, k)?.list;
  return isObj(l) && Array.isArray(l.s) ? l.s.map(String) : [];
};
const num = (n: GraphNode, k: string): number | undefined => {
  const a = attrOf(n, k);
  return a === undefined ? undefined : a.f !== undefined ? Number(a.f) : a.i !== undefined ? Number(a.i) : undefined;
};
const bool = (n: GraphNode, k: string): boolean => attrOf(n, k)?.b === true;
const typeOf = (n: GraphNode, k: string): string | undefined => {
  const t = attrOf(n, k)?.type;
  return typeof t === 'string' ? t : undefined;
};

/** The graph IR of a TF.js graph model given as its parsed model.json; shards through `loadShard`. */
export async function importTfjsGraph(doc: Json, loadShard: ShardLoader, source: string, opts: ImportOptions = {}): Promise<Graph> {
  const topo = doc.modelTopology as Json;
  if (!isObj(topo) || !Array.isArray(topo.node)) throw invalid(source, 'a TF.js graph model needs modelTopology.node (the GraphDef nodes)');
  if (isObj(topo.library) && Array.isArray(topo.library.function) && topo.library.function.length > 0) {
    throw unsupported(source, 'the graph defines functions (control flow); fcm-opt reads feed-forward graphs');
  }
  const weights = await readWeights(doc.weightsManifest, loadShard, source);
  const nodes = (topo.node as unknown[]).map((n, i): GraphNode => {
    if (!isObj(n) || typeof n.name !== 'string' || typeof n.op !== 'string') throw invalid(source, `node ${i} of modelTopology needs a name and an op`);
    const input = n.input === undefined ? [] : n.input;
    if (!Array.isArray(input) || input.some((x) => typeof x !== 'string')) throw invalid(source, `node '${n.name}': input must be a list of names`);
    return { name: n.name, op: n.op, input: input as string[], attr: isObj(n.attr) ? decodeAttrs(n.attr, source, n.name) : {} };
  });
  const b = new GraphModelBuilder(source, weights, opts);
  for (const n of topoOrder(nodes, source)) b.add(n);
  const outputs = b.outputNames(doc, nodes);
  return { name: 'tfjs-graph', inputs: b.inputs, outputs, tensors: b.tensors, nodes: b.nodes, source };
}

/** The value name an input refers to: 'node' and 'node:0' alike; '^node' (a control input) is none. */
const valueKey = (ref: string): string | undefined => (ref.startsWith('^') ? undefined : ref.includes(':') ? ref : `${ref}:0`);
const nodeOfRef = (ref: string) => ref.replace(/^\^/, '').replace(/:\d+$/, '');

/** The nodes in an order where each comes after its inputs (Kahn's algorithm); a cycle is exit 2. */
function topoOrder(nodes: GraphNode[], source: string): GraphNode[] {
  const byName = new Map<string, GraphNode>();
  for (const n of nodes) {
    if (byName.has(n.name)) throw invalid(source, `node name '${n.name}' is repeated`);
    byName.set(n.name, n);
  }
  const pending = new Map<string, number>();
  const users = new Map<string, GraphNode[]>();
  for (const n of nodes) {
    const deps = new Set(n.input.map(nodeOfRef));
    for (const d of deps) {
      if (!byName.has(d)) throw invalid(source, `node '${n.name}' (${n.op}): input '${d}' is no node of the graph`);
      users.set(d, [...(users.get(d) ?? []), n]);
    }
    pending.set(n.name, deps.size);
  }
  const ready = nodes.filter((n) => pending.get(n.name) === 0);
  const out: GraphNode[] = [];
  while (ready.length) {
    const n = ready.shift()!;
    out.push(n);
    for (const u of users.get(n.name) ?? []) {
      const left = pending.get(u.name)! - 1;
      pending.set(u.name, left);
      if (left === 0) ready.push(u);
    }
  }
  if (out.length !== nodes.length) throw invalid(source, `the graph has a cycle (through node '${nodes.find((n) => pending.get(n.name)! > 0)!.name}')`);
  return out;
}

const product = (s: readonly number[]) => s.reduce((a, v) => a * v, 1);

class GraphModelBuilder {
  readonly tensors = new Map<string, Tensor>();
  readonly nodes: Node[] = [];
  readonly inputs: string[] = [];
  private readonly values = new Map<string, Value>();
  private readonly used = new Set<string>();
  private readonly nodeNames = new Set<string>();

  constructor(readonly source: string, readonly weights: Map<string, { shape: number[]; data: Float32Array }>, readonly opts: ImportOptions) {}

  private unique(base: string): string {
    let name = base, i = 1;
    while (this.used.has(name)) name = `${base}_${i++}`;
    this.used.add(name);
    return name;
  }

  /** A new float32 activation with the TensorFlow shape `tf` (stored NCHW when rank 4). */
  private act(base: string, tf: number[]): string {
    const name = this.unique(base);
    this.tensors.set(name, { name, dtype: 'float32', shape: tf.length === 4 ? permute(tf, nhwcToNchw) : [...tf] });
    return name;
  }

  private constant(base: string, shape: number[], data: TensorData, dtype: 'float32' | 'int64' = 'float32'): string {
    const name = this.unique(base);
    this.tensors.set(name, { name, dtype, shape, data });
    return name;
  }

  private node(name: string, op: string, inputs: string[], outputs: string[], attrs: Attrs = newAttrs()): void {
    // Node names are their own namespace: a node and its output tensor share the TensorFlow node's name.
    let n = name, i = 1;
    while (this.nodeNames.has(n)) n = `${name}_${i++}`;
    this.nodeNames.add(n);
    this.nodes.push({ name: n, op, domain: '', inputs, outputs, attrs });
  }

  private where(n: GraphNode): string { return `node '${n.name}' (${n.op})`; }

  private input(n: GraphNode, i: number): Value {
    const ref = n.input.filter((r) => !r.startsWith('^'))[i];
    if (ref === undefined) throw invalid(this.source, `${this.where(n)}: needs input ${i}`);
    const v = this.values.get(valueKey(ref)!);
    if (!v) throw unsupported(this.source, `${this.where(n)}: input '${ref}' is not a value fcm-opt computes`);
    return v;
  }

  private dataInputs(n: GraphNode): number { return n.input.filter((r) => !r.startsWith('^')).length; }

  private constInput(n: GraphNode, i: number, what: string): Float32Array {
    const v = this.input(n, i);
    if (!v.data) throw unsupported(this.source, `${this.where(n)}: ${what} must be a constant`);
    return v.data;
  }

  private set(n: GraphNode, v: Value, k = 0): void { this.values.set(`${n.name}:${k}`, v); }

  /** The IR tensor of `v` (a constant gets an IR tensor in the layout its rank gives, made once). */
  private irOf(v: Value): string {
    if (v.ir) return v.ir;
    const shape = v.shape.length === 4 ? permute(v.shape, nhwcToNchw) : v.shape;
    v.ir = this.constant('const', shape, v.shape.length === 4 ? transposeF32(v.data!, v.shape, nhwcToNchw) : v.data!);
    return v.ir;
  }

  /** A constant operand of an elementwise op with an operand of rank `rank`: broadcast as TensorFlow aligns it (from the right). */
  private broadcastConst(v: Value, rank: number, base: string): string {
    if (v.shape.length > rank) throw unsupported(this.source, `${base}: a constant of rank ${v.shape.length} against an operand of rank ${rank}`);
    if (rank !== 4) return this.constant(`${base}/const`, [...v.shape], v.data!);
    const tf = [...new Array<number>(4 - v.shape.length).fill(1), ...v.shape];
    return this.constant(`${base}/const`, permute(tf, nhwcToNchw), transposeF32(v.data!, tf, nhwcToNchw));
  }

  /** `t` (an IR tensor of TensorFlow shape `tf`) in TensorFlow's memory order: a Transpose, or a Reshape where only size-1 axes move. */
  private toNative(t: string, tf: number[], at: string): string {
    if (tf.length !== 4) return t;
    const name = this.unique(`${t}/nhwc`);
    this.tensors.set(name, { name, dtype: 'float32', shape: [...tf] });
    this.reorder(t, name, this.tensors.get(t)!.shape, nchwToNhwc, `${at}/to_nhwc`);
    return name;
  }

  private reorder(from: string, to: string, shape: number[], perm: number[], name: string): void {
    const order = perm.filter((p) => shape[p] !== 1);
    if (order.every((p, i) => i === 0 || order[i - 1] < p)) this.reshape(from, to, name);
    else this.node(name, 'Transpose', [from], [to], newAttrs({ perm }));
  }

  private reshape(from: string, to: string, name: string): void {
    const shape = this.tensors.get(to)!.shape;
    const s = this.constant(`${name}/shape`, [shape.length], BigInt64Array.from(shape.map(BigInt)), 'int64');
    this.node(name, 'Reshape', [from, s], [to], newAttrs({ shape }));
  }

  /** x reshaped to the TensorFlow shape `tf` in TensorFlow's memory order (Reshape, Squeeze, ExpandDims). */
  private reshapeTf(n: GraphNode, x: Value, tf: number[], native0 = false): Value {
    if (product(tf) !== product(x.shape)) throw invalid(this.source, `${this.where(n)}: cannot reshape [${x.shape.join(', ')}] to [${tf.join(', ')}]`);
    if (x.data) return { ir: '', shape: tf, data: x.data };
    // native0: x.ir already holds the values in TensorFlow's order.
    const native = native0 ? x.ir : this.toNative(x.ir, x.shape, n.name);
    const y = this.act(n.name, tf);
    if (tf.length !== 4) { this.reshape(native, y, n.name); return { ir: y, shape: tf }; }
    const mid = this.unique(`${n.name}/nhwc`);
    this.tensors.set(mid, { name: mid, dtype: 'float32', shape: [...tf] });
    this.reshape(native, mid, n.name);
    this.reorder(mid, y, tf, nhwcToNchw, `${n.name}/to_nchw`);
    return { ir: y, shape: tf };
  }

  /** The activation `a` of a fused op (or a standalone one) from x into a new tensor; the Value of the result. */
  private activation(n: GraphNode, a: string, x: Value, base: string, alpha?: Value): Value {
    const y = this.act(base, x.shape);
    switch (a) {
      case 'Relu': this.node(base, 'Relu', [this.irOf(x)], [y]); break;
      case 'Relu6': this.node(base, 'Clip', [this.irOf(x)], [y], newAttrs({ min: 0, max: 6 })); break;
      case 'Sigmoid': this.node(base, 'Sigmoid', [this.irOf(x)], [y]); break;
      case 'Tanh': this.node(base, 'Tanh', [this.irOf(x)], [y]); break;
      case 'LeakyRelu': this.node(base, 'LeakyRelu', [this.irOf(x)], [y], newAttrs({ alpha: num(n, n.op === 'LeakyRelu' ? 'alpha' : 'leakyrelu_alpha') ?? 0.2 })); break;
      case 'Prelu': {
        if (!alpha?.data) throw unsupported(this.source, `${this.where(n)}: the Prelu slope must be a constant`);
        const c = x.shape[x.shape.length - 1];
        if (alpha.data.length !== c) throw unsupported(this.source, `${this.where(n)}: a Prelu slope of ${alpha.data.length} values for ${c} channels`);
        const slope = this.constant(`${base}/slope`, x.shape.length === 4 ? [c, 1, 1] : [c], alpha.data);
        this.node(base, 'PRelu', [this.irOf(x), slope], [y]);
        break;
      }
      default: throw unsupported(this.source, `${this.where(n)}: activation '${a}' is not supported`);
    }
    return { ir: y, shape: x.shape };
  }

  /** The op's fused tail (BiasAdd then an activation) after `pre`: fused_ops and the extra inputs from index `first`. */
  private fusedTail(n: GraphNode, first: number): { bias?: Float32Array; act?: string; alpha?: Value } {
    const ops = strs(n, 'fused_ops');
    if (ops.length === 0) return {};
    if (ops[0] !== 'BiasAdd') throw unsupported(this.source, `${this.where(n)}: fused ops [${ops.join(', ')}] (BiasAdd first is supported)`);
    if (ops.length > 2) throw unsupported(this.source, `${this.where(n)}: fused ops [${ops.join(', ')}]`);
    const bias = this.constInput(n, first, 'the bias');
    return { bias, act: ops[1], alpha: ops[1] === 'Prelu' ? this.input(n, first + 1) : undefined };
  }

  private conv(n: GraphNode, depthwise: boolean): void {
    const x = this.input(n, 0);
    if (x.shape.length !== 4) throw invalid(this.source, `${this.where(n)}: input has rank ${x.shape.length}, expected 4 (NHWC)`);
    const format = str(n, 'data_format') ?? 'NHWC';
    if (format !== 'NHWC') throw unsupported(this.source, `${this.where(n)}: data_format ${format} (NHWC is supported)`);
    const f = this.input(n, 1);
    if (!f.data || f.shape.length !== 4) throw unsupported(this.source, `${this.where(n)}: the filter must be a constant of rank 4`);
    const [kh, kw, fc, fo] = f.shape;
    const [nb, h, w, c] = x.shape;
    const s4 = ints(n, 'strides') ?? [1, 1, 1, 1], d4 = ints(n, 'dilations') ?? [1, 1, 1, 1];
    const s: [number, number] = [s4[1], s4[2]], d: [number, number] = [d4[1], d4[2]];
    if ([...s, ...d, kh, kw].some((v) => !Number.isSafeInteger(v) || v < 1)) throw invalid(this.source, `${this.where(n)}: strides ${s}, dilations ${d} and kernel ${kh}x${kw} must be positive`);
    const padding = str(n, 'padding') ?? 'VALID';
    let pads: number[], oh: number, ow: number;
    if (padding === 'EXPLICIT') {
      const e = ints(n, 'explicit_paddings') ?? [];
      if (e.length !== 8) throw invalid(this.source, `${this.where(n)}: explicit_paddings needs 8 values`);
      pads = [e[2], e[4], e[3], e[5]];
      oh = Math.floor((h + e[2] + e[3] - ((kh - 1) * d[0] + 1)) / s[0]) + 1;
      ow = Math.floor((w + e[4] + e[5] - ((kw - 1) * d[1] + 1)) / s[1]) + 1;
    } else if (padding === 'SAME' || padding === 'VALID') {
      ({ pads, out: [oh, ow] } = tfPads(padding.toLowerCase(), h, w, [kh, kw], s, d));
    } else throw unsupported(this.source, `${this.where(n)}: padding '${padding}'`);
    if (oh < 1 || ow < 1) throw invalid(this.source, `${this.where(n)}: input ${h}x${w} is smaller than the kernel`);
    let wIr: string, group: number, filters: number;
    if (depthwise) {
      if (fc !== c) throw invalid(this.source, `${this.where(n)}: a depthwise filter of ${fc} channels on ${c}`);
      filters = c * fo;
      group = c;
      wIr = this.constant(`${n.name}/filter`, [filters, 1, kh, kw], transposeF32(f.data, f.shape, [2, 3, 0, 1]));
    } else {
      if (c % fc !== 0) throw invalid(this.source, `${this.where(n)}: ${c} channels do not split into groups of ${fc}`);
      filters = fo;
      group = c / fc;
      wIr = this.constant(`${n.name}/filter`, [fo, fc, kh, kw], transposeF32(f.data, f.shape, [3, 2, 0, 1]));
    }
    const tail = this.fusedTail(n, 2);
    const inputs = [this.irOf(x), wIr];
    if (tail.bias) {
      if (tail.bias.length !== filters) throw invalid(this.source, `${this.where(n)}: a bias of ${tail.bias.length} values for ${filters} filters`);
      inputs.push(this.constant(`${n.name}/bias`, [filters], tail.bias));
    }
    const tf = [nb, oh, ow, filters];
    const attrs = newAttrs({ kernel: [kh, kw], strides: s, pads, dilations: d, group });
    const y = this.act(tail.act ? `${n.name}/preact` : n.name, tf);
    this.node(n.name, 'Conv', inputs, [y], attrs);
    this.set(n, tail.act ? this.activation(n, tail.act, { ir: y, shape: tf }, n.name, tail.alpha) : { ir: y, shape: tf });
  }

  private matmul(n: GraphNode): void {
    const a = this.input(n, 0), bv = this.input(n, 1);
    if (bool(n, 'transpose_a')) throw unsupported(this.source, `${this.where(n)}: transpose_a`);
    if (a.shape.length !== 2 || !bv.data || bv.shape.length !== 2) throw unsupported(this.source, `${this.where(n)}: a [N, K] activation times a constant [K, M] matrix is supported`);
    const tb = bool(n, 'transpose_b');
    const [k, m] = tb ? [bv.shape[1], bv.shape[0]] : bv.shape;
    if (k !== a.shape[1]) throw invalid(this.source, `${this.where(n)}: [${a.shape.join(', ')}] times [${bv.shape.join(', ')}]`);
    // Gemm with B as [M, K] (transB 1), as TFLite's FULLY_CONNECTED.
    const wIr = this.constant(`${n.name}/weights`, [m, k], tb ? bv.data : transposeF32(bv.data, bv.shape, [1, 0]));
    const tail = this.fusedTail(n, 2);
    const inputs = [this.irOf(a), wIr];
    if (tail.bias) inputs.push(this.constant(`${n.name}/bias`, [m], tail.bias));
    const tf = [a.shape[0], m];
    const y = this.act(tail.act ? `${n.name}/preact` : n.name, tf);
    this.node(n.name, 'Gemm', inputs, [y], newAttrs({ alpha: 1, beta: 1, transA: 0, transB: 1 }));
    this.set(n, tail.act ? this.activation(n, tail.act, { ir: y, shape: tf }, n.name, tail.alpha) : { ir: y, shape: tf });
  }

  private binary(n: GraphNode, op: 'Add' | 'Sub' | 'Mul' | 'Div', x: Value, yv: Value, base = n.name): Value {
    const rank = Math.max(x.shape.length, yv.shape.length);
    const shape = broadcastShape(x.shape, yv.shape);
    if (!shape) throw invalid(this.source, `${this.where(n)}: shapes [${x.shape.join(', ')}] and [${yv.shape.join(', ')}] do not broadcast`);
    // Two constants (shape arithmetic, folded scales): computed here.
    if (x.data && yv.data) return { ir: '', shape, data: foldBinary(op, x, yv, shape) };
    const operand = (v: Value) => {
      if (v.data) return this.broadcastConst(v, rank, base);
      if (v.shape.length !== rank && (rank === 4 || v.shape.length === 4)) throw unsupported(this.source, `${this.where(n)}: operands of rank ${v.shape.length} and ${rank}`);
      return v.ir;
    };
    const y = this.act(base, shape);
    this.node(base, op, [operand(x), operand(yv)], [y]);
    return { ir: y, shape };
  }

  /** Maximum / Minimum with a constant of one value: Clip (ReLU-like bounds, as converters write ReLU6 as two ops). */
  private clipBound(n: GraphNode, max: boolean): void {
    const a = this.input(n, 0), b = this.input(n, 1);
    const [x, c] = a.data ? [b, a] : [a, b];
    const v = c.data?.[0];
    if (!c.data || x.data || v === undefined || c.data.some((e) => e !== v)) throw unsupported(this.source, `${this.where(n)}: only against a constant of one value`);
    const y = this.act(n.name, x.shape);
    this.node(n.name, 'Clip', [this.irOf(x)], [y], newAttrs(max ? { min: v, max: 3.4028234663852886e38 } : { min: -3.4028234663852886e38, max: v }));
    this.set(n, { ir: y, shape: x.shape });
  }

  private pool(n: GraphNode, avg: boolean): void {
    const x = this.input(n, 0);
    if (x.shape.length !== 4) throw invalid(this.source, `${this.where(n)}: input has rank ${x.shape.length}, expected 4`);
    const k4 = ints(n, 'ksize') ?? [], s4 = ints(n, 'strides') ?? [];
    if (k4.length !== 4 || s4.length !== 4 || k4[0] !== 1 || k4[3] !== 1) throw unsupported(this.source, `${this.where(n)}: ksize [${k4.join(', ')}] (pooling over H and W is supported)`);
    const k: [number, number] = [k4[1], k4[2]], s: [number, number] = [s4[1], s4[2]];
    if ([...k, ...s].some((v) => !Number.isSafeInteger(v) || v < 1)) throw invalid(this.source, `${this.where(n)}: ksize and strides must be positive`);
    const padding = (str(n, 'padding') ?? 'VALID').toLowerCase();
    if (padding !== 'same' && padding !== 'valid') throw unsupported(this.source, `${this.where(n)}: padding '${padding}'`);
    const { pads, out: [oh, ow] } = tfPads(padding, x.shape[1], x.shape[2], k, s, [1, 1]);
    if (oh < 1 || ow < 1) throw invalid(this.source, `${this.where(n)}: input is smaller than the window`);
    const tf = [x.shape[0], oh, ow, x.shape[3]];
    const y = this.act(n.name, tf);
    this.node(n.name, avg ? 'AveragePool' : 'MaxPool', [this.irOf(x)], [y], newAttrs(avg
      ? { kernel: k, strides: s, pads, countIncludePad: 0, ceilMode: 0 }
      : { kernel: k, strides: s, pads, dilations: [1, 1], ceilMode: 0 }));
    this.set(n, { ir: y, shape: tf });
  }

  /** StridedSlice with constant begin, end and strides (begin, end and shrink masks): constants here, activations as Slice. */
  private stridedSlice(n: GraphNode): void {
    const x = this.input(n, 0);
    const r = x.shape.length;
    const begin = Array.from(this.constInput(n, 1, 'begin')), end = Array.from(this.constInput(n, 2, 'end')), steps = Array.from(this.constInput(n, 3, 'strides'));
    const [bm, em, sm] = ['begin_mask', 'end_mask', 'shrink_axis_mask'].map((k) => num(n, k) ?? 0);
    if ((num(n, 'ellipsis_mask') ?? 0) || (num(n, 'new_axis_mask') ?? 0)) throw unsupported(this.source, `${this.where(n)}: ellipsis and new-axis masks`);
    if (begin.length !== r || end.length !== r || steps.length !== r || steps.some((s) => !Number.isSafeInteger(s) || s === 0)) throw invalid(this.source, `${this.where(n)}: begin, end and strides must have ${r} values, strides non-zero`);
    // The range of each axis, as TensorFlow resolves it (negative indices from the end, clamped).
    const ranges = x.shape.map((d, i) => {
      const s = steps[i];
      const norm = (v: number) => (v < 0 ? v + d : v);
      let a = (bm >> i) & 1 ? (s > 0 ? 0 : d - 1) : norm(begin[i]);
      let b = (em >> i) & 1 ? (s > 0 ? d : -1) : norm(end[i]);
      if ((sm >> i) & 1) { a = norm(begin[i]); b = a + 1; }
      a = s > 0 ? Math.max(0, Math.min(d, a)) : Math.max(-1, Math.min(d - 1, a));
      b = s > 0 ? Math.max(0, Math.min(d, b)) : Math.max(-1, Math.min(d - 1, b));
      return { a, b, s, n: Math.max(0, Math.ceil((b - a) / s)) };
    });
    const full = ranges.map((q) => q.n);
    const tf = full.filter((_, i) => !((sm >> i) & 1));
    if (full.some((v) => v === 0)) throw unsupported(this.source, `${this.where(n)}: an empty slice`);
    if (x.data) {
      const strides = x.shape.map((_, i) => product(x.shape.slice(i + 1)));
      const out = new Float32Array(product(full));
      const idx = new Array<number>(r).fill(0);
      for (let o = 0; o < out.length; o++) {
        let src = 0;
        for (let i = 0; i < r; i++) src += (ranges[i].a + idx[i] * ranges[i].s) * strides[i];
        out[o] = x.data[src];
        for (let i = r - 1; i >= 0; i--) { if (++idx[i] < full[i]) break; idx[i] = 0; }
      }
      this.set(n, { ir: '', shape: tf, data: out });
      return;
    }
    // Slice's end for a negative step past the start of the axis: far below it.
    const ends = ranges.map((q) => (q.b === -1 ? -(2 ** 31 - 1) : q.b));
    const starts = ranges.map((q) => q.a), axes = x.shape.map((_, i) => i);
    if (r === 4 && sm === 0) {
      const y = this.act(n.name, tf);
      this.node(n.name, 'Slice', [x.ir], [y], newAttrs({ starts: nhwcToNchw.map((a) => starts[a]), ends: nhwcToNchw.map((a) => ends[a]), axes, steps: nhwcToNchw.map((a) => steps[a]) }));
      this.set(n, { ir: y, shape: tf });
      return;
    }
    // In TensorFlow's order: Slice, then the shrunk axes dropped by the reshape.
    const native = this.toNative(x.ir, x.shape, n.name);
    const sliced = this.unique(`${n.name}/sliced`);
    this.tensors.set(sliced, { name: sliced, dtype: 'float32', shape: full });
    this.node(n.name, 'Slice', [native], [sliced], newAttrs({ starts, ends, axes, steps }));
    this.set(n, this.reshapeTf(n, { ir: sliced, shape: full }, tf, true));
  }

  /** Conv2DBackpropInput: the transposed convolution to the output size its first input gives (filter [KH, KW, O, I]). */
  private transposeConv(n: GraphNode): void {
    const size = Array.from(this.constInput(n, 0, 'the output size'));
    const f = this.input(n, 1), x = this.input(n, 2);
    if (!f.data || f.shape.length !== 4 || x.shape.length !== 4 || size.length !== 4) throw unsupported(this.source, `${this.where(n)}: a constant rank-4 filter and output size on a rank-4 input`);
    if ((str(n, 'data_format') ?? 'NHWC') !== 'NHWC') throw unsupported(this.source, `${this.where(n)}: data_format ${str(n, 'data_format')}`);
    const [kh, kw, co, ci] = f.shape;
    if (ci !== x.shape[3] || size[3] !== co || size[0] !== x.shape[0]) throw invalid(this.source, `${this.where(n)}: filter [${f.shape.join(', ')}] does not map [${x.shape.join(', ')}] to [${size.join(', ')}]`);
    const d4 = ints(n, 'dilations') ?? [1, 1, 1, 1];
    if (d4.some((v) => v !== 1)) throw unsupported(this.source, `${this.where(n)}: dilations [${d4.join(', ')}]`);
    const s4 = ints(n, 'strides') ?? [1, 1, 1, 1];
    const s = [s4[1], s4[2]];
    if (s.some((v) => !Number.isSafeInteger(v) || v < 1)) throw invalid(this.source, `${this.where(n)}: strides [${s4.join(', ')}]`);
    const padding = str(n, 'padding') ?? 'VALID';
    if (padding !== 'SAME' && padding !== 'VALID') throw unsupported(this.source, `${this.where(n)}: padding '${padding}'`);
    const k = [kh, kw];
    const begin: number[] = [], end: number[] = [], extra: number[] = [];
    for (let a = 0; a < 2; a++) {
      const total = (x.shape[1 + a] - 1) * s[a] + k[a] - size[1 + a];
      const b = padding === 'SAME' ? Math.max(0, Math.floor(total / 2)) : 0;
      begin.push(b); end.push(Math.max(0, total - b)); extra.push(Math.max(0, b - total));
    }
    // ONNX ConvTranspose weights [I, O, KH, KW].
    const w = this.constant(`${n.name}/filter`, [ci, co, kh, kw], transposeF32(f.data, f.shape, [3, 2, 0, 1]));
    const tf = [size[0], size[1], size[2], co];
    const y = this.act(n.name, tf);
    this.node(n.name, 'ConvTranspose', [x.ir, w], [y], newAttrs({ kernel_shape: k, strides: s, pads: [...begin, ...end], dilations: [1, 1], group: 1, output_padding: extra }));
    this.set(n, { ir: y, shape: tf });
  }

  add(n: GraphNode): void {
    const where = this.where(n);
    switch (n.op) {
      case 'Placeholder': {
        if ((typeOf(n, 'dtype') ?? 'DT_FLOAT') !== 'DT_FLOAT') throw unsupported(this.source, `${where}: input of type ${typeOf(n, 'dtype')} (float32 inputs are supported)`);
        const dims = attrOf(n, 'shape')?.shape;
        // A dim without a size is unknown (-1); one that is not an object is no shape at all.
        const dimList = isObj(dims) && Array.isArray(dims.dim) ? dims.dim.map((d) => (isObj(d) ? Number(d.size ?? -1) : NaN)) : undefined;
        const given = this.opts.inputShapes?.[n.name];
        let tf: number[];
        if (given) tf = given.length === 4 ? permute(given, nchwToNhwc) : [...given];
        else {
          if (!dimList) throw invalid(this.source, `${where}: input of unknown rank; give --input-shape ${n.name}:...`);
          tf = dimList.map((v, i) => (v < 0 && i === 0 ? this.opts.batch ?? 1 : v));
          if (tf.some((v) => !Number.isSafeInteger(v) || v < 1)) throw invalid(this.source, `${where}: input shape [${dimList.join(', ')}] has unknown dimensions; give --input-shape ${n.name}:...`);
        }
        const name = this.act(n.name, tf);
        this.inputs.push(name);
        this.set(n, { ir: name, shape: tf });
        return;
      }
      case 'Const': {
        const w = this.weights.get(n.name);
        if (!w) throw invalid(this.source, `${where}: no values in the weights manifest`);
        this.set(n, { ir: '', shape: w.shape, data: w.data });
        return;
      }
      case 'Identity': case 'StopGradient': case 'Snapshot': case 'NoOp':
        if (n.op !== 'NoOp') this.set(n, this.input(n, 0));
        return;
      case 'Cast': {
        if ((typeOf(n, 'DstT') ?? 'DT_FLOAT') !== 'DT_FLOAT') throw unsupported(this.source, `${where}: a cast to ${typeOf(n, 'DstT')} (float32 is supported)`);
        this.set(n, this.input(n, 0));
        return;
      }
      case 'Conv2D': case '_FusedConv2D': this.conv(n, false); return;
      case 'DepthwiseConv2dNative': case 'FusedDepthwiseConv2dNative': this.conv(n, true); return;
      case 'MatMul': case '_FusedMatMul': this.matmul(n); return;
      case 'BiasAdd': case 'Add': case 'AddV2': case 'Sub': case 'Mul': case 'RealDiv': {
        const op = n.op === 'Sub' ? 'Sub' : n.op === 'Mul' ? 'Mul' : n.op === 'RealDiv' ? 'Div' : 'Add';
        this.set(n, this.binary(n, op, this.input(n, 0), this.input(n, 1)));
        return;
      }
      case 'AddN': {
        const k = this.dataInputs(n);
        let acc = this.input(n, 0);
        for (let i = 1; i < k; i++) acc = this.binary(n, 'Add', acc, this.input(n, i), i === k - 1 ? n.name : `${n.name}/${i}`);
        this.set(n, acc);
        return;
      }
      case 'Maximum': this.clipBound(n, true); return;
      case 'Minimum': this.clipBound(n, false); return;
      case 'Relu': case 'Relu6': case 'Sigmoid': case 'Tanh': case 'LeakyRelu':
        this.set(n, this.activation(n, n.op, this.input(n, 0), n.name));
        return;
      case 'Prelu': this.set(n, this.activation(n, 'Prelu', this.input(n, 0), n.name, this.input(n, 1))); return;
      case 'MaxPool': this.pool(n, false); return;
      case 'AvgPool': this.pool(n, true); return;
      case 'Pad': case 'PadV2': {
        const x = this.input(n, 0);
        const p = this.constInput(n, 1, 'the paddings');
        const r = x.shape.length;
        if (p.length !== 2 * r) throw invalid(this.source, `${where}: paddings of ${p.length} values for rank ${r}`);
        const value = n.op === 'PadV2' ? this.constInput(n, 2, 'the value')[0] : 0;
        const begin = Array.from({ length: r }, (_, i) => p[2 * i]), end = Array.from({ length: r }, (_, i) => p[2 * i + 1]);
        if ([...begin, ...end].some((v) => !Number.isSafeInteger(v) || v < 0)) throw unsupported(this.source, `${where}: paddings must be non-negative integers`);
        const tf = x.shape.map((v, i) => v + begin[i] + end[i]);
        const order = r === 4 ? nhwcToNchw : [...Array(r).keys()];
        const y = this.act(n.name, tf);
        this.node(n.name, 'Pad', [this.irOf(x)], [y], newAttrs({ pads: [...order.map((a) => begin[a]), ...order.map((a) => end[a])], mode: 'constant', value }));
        this.set(n, { ir: y, shape: tf });
        return;
      }
      case 'Mean': {
        const x = this.input(n, 0);
        const r = x.shape.length;
        const axes = [...new Set(Array.from(this.constInput(n, 1, 'the axes'), (a) => (a < 0 ? a + r : a)))].sort((a, b) => a - b);
        if (axes.some((a) => !Number.isSafeInteger(a) || a < 0 || a >= r)) throw invalid(this.source, `${where}: axes outside rank ${r}`);
        const keep = bool(n, 'keep_dims');
        const tf = keep ? x.shape.map((v, i) => (axes.includes(i) ? 1 : v)) : x.shape.filter((_, i) => !axes.includes(i));
        // Over H and W (the NCHW axes 2, 3) the NCHW result is TensorFlow's order with or without the kept axes.
        if (r === 4 && !(axes.length === 2 && axes[0] === 1 && axes[1] === 2) && !keep) throw unsupported(this.source, `${where}: a mean over axes [${axes.join(', ')}] of a rank-4 tensor without keep_dims`);
        const y = this.act(n.name, tf);
        this.node(n.name, 'ReduceMean', [this.irOf(x)], [y], newAttrs({ axes: r === 4 ? axes.map((a) => nchwPos[a]).sort((a, b) => a - b) : axes, keepdims: keep ? 1 : 0 }));
        this.set(n, { ir: y, shape: tf });
        return;
      }
      case 'Reshape': {
        const x = this.input(n, 0);
        const want = Array.from(this.constInput(n, 1, 'the shape'));
        const known = product(want.filter((v) => v !== -1));
        const tf = want.map((v) => (v === -1 ? product(x.shape) / known : v));
        if (want.filter((v) => v === -1).length > 1 || tf.some((v) => !Number.isSafeInteger(v) || v < 0)) throw invalid(this.source, `${where}: shape [${want.join(', ')}] for [${x.shape.join(', ')}]`);
        this.set(n, this.reshapeTf(n, x, tf));
        return;
      }
      case 'Squeeze': {
        const x = this.input(n, 0);
        const r = x.shape.length;
        const dims = (ints(n, 'squeeze_dims') ?? []).map((a) => (a < 0 ? a + r : a));
        const tf = x.shape.filter((v, i) => (dims.length ? !dims.includes(i) : v !== 1));
        this.set(n, this.reshapeTf(n, x, tf));
        return;
      }
      case 'ExpandDims': {
        const x = this.input(n, 0);
        const a0 = this.constInput(n, 1, 'the axis')[0];
        const a = a0 < 0 ? a0 + x.shape.length + 1 : a0;
        if (!Number.isSafeInteger(a) || a < 0 || a > x.shape.length) throw invalid(this.source, `${where}: axis ${a0}`);
        this.set(n, this.reshapeTf(n, x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]));
        return;
      }
      case 'ConcatV2': {
        const k = this.dataInputs(n) - 1;
        if (k < 1) throw invalid(this.source, `${where}: needs its inputs and then the axis, got ${k + 1} input${k === 0 ? '' : 's'}`);
        const xs = Array.from({ length: k }, (_, i) => this.input(n, i));
        const r = xs[0].shape.length;
        const a0 = this.constInput(n, k, 'the axis')[0];
        const a = a0 < 0 ? a0 + r : a0;
        if (!Number.isSafeInteger(a) || a < 0 || a >= r || xs.some((x) => x.shape.length !== r || x.shape.some((v, i) => i !== a && v !== xs[0].shape[i]))) {
          throw invalid(this.source, `${where}: inputs [${xs.map((x) => x.shape.join('x')).join(', ')}] do not concatenate along axis ${a0}`);
        }
        const tf = xs[0].shape.map((v, i) => (i === a ? xs.reduce((s, x) => s + x.shape[a], 0) : v));
        const y = this.act(n.name, tf);
        this.node(n.name, 'Concat', xs.map((x) => this.irOf(x)), [y], newAttrs({ axis: r === 4 ? nchwPos[a] : a }));
        this.set(n, { ir: y, shape: tf });
        return;
      }
      case 'Softmax': {
        const x = this.input(n, 0);
        const y = this.act(n.name, x.shape);
        this.node(n.name, 'Softmax', [this.irOf(x)], [y], newAttrs({ axis: x.shape.length === 4 ? 1 : x.shape.length - 1 }));
        this.set(n, { ir: y, shape: x.shape });
        return;
      }
      case 'ResizeBilinear': case 'ResizeNearestNeighbor': {
        const x = this.input(n, 0);
        if (x.shape.length !== 4) throw invalid(this.source, `${where}: input has rank ${x.shape.length}, expected 4`);
        const size = Array.from(this.constInput(n, 1, 'the size'));
        if (size.length !== 2 || size.some((v) => !Number.isSafeInteger(v) || v < 1)) throw invalid(this.source, `${where}: size [${size.join(', ')}]`);
        const bilinear = n.op === 'ResizeBilinear';
        const alignCorners = bool(n, 'align_corners'), halfPixel = bool(n, 'half_pixel_centers');
        if (alignCorners && halfPixel) throw invalid(this.source, `${where}: align_corners and half_pixel_centers are both set`);
        const tf = [x.shape[0], size[0], size[1], x.shape[3]];
        const y = this.act(n.name, tf);
        const ctm = alignCorners ? 'align_corners' : halfPixel ? (bilinear ? 'half_pixel' : 'tf_half_pixel_for_nn') : 'asymmetric';
        const attrs = newAttrs({ mode: bilinear ? 'linear' : 'nearest', coordinate_transformation_mode: ctm });
        if (!bilinear) attrs.nearest_mode = alignCorners ? 'round_prefer_ceil' : 'floor';
        const sizes = this.constant(`${n.name}/sizes`, [4], BigInt64Array.from(permute(tf, nhwcToNchw).map(BigInt)), 'int64');
        this.node(n.name, 'Resize', [this.irOf(x), '', '', sizes], [y], attrs);
        this.set(n, { ir: y, shape: tf });
        return;
      }
      case 'Abs': {
        const x = this.input(n, 0);
        if (x.data) { this.set(n, { ir: '', shape: x.shape, data: x.data.map(Math.abs) }); return; }
        const y = this.act(n.name, x.shape);
        this.node(n.name, 'Abs', [x.ir], [y]);
        this.set(n, { ir: y, shape: x.shape });
        return;
      }
      case 'Max': case 'Min': {
        const x = this.input(n, 0);
        const r = x.shape.length;
        const axes = [...new Set(Array.from(this.constInput(n, 1, 'the axes'), (a) => (a < 0 ? a + r : a)))].sort((a, b) => a - b);
        if (axes.some((a) => !Number.isSafeInteger(a) || a < 0 || a >= r)) throw invalid(this.source, `${where}: axes outside rank ${r}`);
        const keep = bool(n, 'keep_dims');
        if (r === 4 && !(axes.length === 2 && axes[0] === 1 && axes[1] === 2) && !keep) throw unsupported(this.source, `${where}: a reduction over axes [${axes.join(', ')}] of a rank-4 tensor without keep_dims`);
        const tf = keep ? x.shape.map((v, i) => (axes.includes(i) ? 1 : v)) : x.shape.filter((_, i) => !axes.includes(i));
        const y = this.act(n.name, tf);
        this.node(n.name, n.op === 'Max' ? 'ReduceMax' : 'ReduceMin', [this.irOf(x)], [y], newAttrs({ axes: r === 4 ? axes.map((a) => nchwPos[a]).sort((a, b) => a - b) : axes, keepdims: keep ? 1 : 0 }));
        this.set(n, { ir: y, shape: tf });
        return;
      }
      case 'Shape': {
        // Shapes are static here: the shape is a constant (its uses, Reshape targets, fold).
        const x = this.input(n, 0);
        this.set(n, { ir: '', shape: [x.shape.length], data: Float32Array.from(x.shape) });
        return;
      }
      case 'Pack': {
        const k = this.dataInputs(n);
        const xs = Array.from({ length: k }, (_, i) => this.input(n, i));
        if (xs.some((x) => !x.data || x.shape.length > 1 || x.data.length !== 1) || (num(n, 'axis') ?? 0) !== 0) throw unsupported(this.source, `${where}: only scalars (constants) packed into a vector`);
        this.set(n, { ir: '', shape: [k], data: Float32Array.from(xs, (x) => x.data![0]) });
        return;
      }
      case 'StridedSlice': this.stridedSlice(n); return;
      case 'DepthToSpace': {
        const x = this.input(n, 0);
        const bs = num(n, 'block_size') ?? 0;
        if ((str(n, 'data_format') ?? 'NHWC') !== 'NHWC') throw unsupported(this.source, `${where}: data_format ${str(n, 'data_format')}`);
        if (x.shape.length !== 4) throw invalid(this.source, `${where}: input has rank ${x.shape.length}, expected 4`);
        const [nb, h, w, c] = x.shape;
        if (!Number.isSafeInteger(bs) || bs < 1 || c % (bs * bs) !== 0) throw invalid(this.source, `${where}: block size ${bs} does not divide ${c} channels into blocks of ${bs}x${bs}`);
        const co = c / (bs * bs);
        // out[n, h*bs + i, w*bs + j, c] = in[n, h, w, (i*bs + j)*C' + c]: on NCHW, Reshape [N, bs, bs, C', H, W] ->
        // Transpose -> Reshape (ONNX's DepthToSpace, DCR), as the TFLite importer spells it.
        const tf = [nb, h * bs, w * bs, co];
        const y = this.act(n.name, tf);
        const split = this.unique(`${n.name}/blocks`), moved = this.unique(`${n.name}/moved`);
        this.tensors.set(split, { name: split, dtype: 'float32', shape: [nb, bs, bs, co, h, w] });
        this.tensors.set(moved, { name: moved, dtype: 'float32', shape: [nb, co, h, bs, w, bs] });
        this.reshape(this.irOf(x), split, `${n.name}/split`);
        this.node(`${n.name}/transpose`, 'Transpose', [split], [moved], newAttrs({ perm: [0, 3, 4, 1, 5, 2] }));
        this.reshape(moved, y, n.name);
        this.set(n, { ir: y, shape: tf });
        return;
      }
      case 'Conv2DBackpropInput': this.transposeConv(n); return;
      default:
        throw unsupported(this.source, `${where}: op '${n.op}' is not supported`);
    }
  }

  /** The graph's outputs: the signature's, else every computed value no node reads. */
  outputNames(doc: Json, nodes: GraphNode[]): string[] {
    const sig = isObj(doc.signature) && isObj(doc.signature.outputs) ? doc.signature.outputs : isObj(doc.userDefinedMetadata) && isObj(doc.userDefinedMetadata.signature) && isObj(doc.userDefinedMetadata.signature.outputs) ? doc.userDefinedMetadata.signature.outputs : undefined;
    let refs: string[];
    if (sig) {
      refs = Object.entries(sig).map(([k, o]) => {
        if (!isObj(o) || typeof o.name !== 'string') throw invalid(this.source, `signature output '${k}' needs a name`);
        return o.name;
      });
    }
    else {
      const read = new Set(nodes.flatMap((n) => n.input.map(nodeOfRef)));
      refs = nodes.filter((n) => !read.has(n.name) && n.op !== 'Const' && n.op !== 'NoOp').map((n) => n.name);
    }
    if (refs.length === 0) throw invalid(this.source, 'the graph has no outputs');
    return refs.map((r) => {
      const v = this.values.get(valueKey(r)!);
      if (!v) throw invalid(this.source, `output '${r}' is no value of the graph`);
      if (v.data) throw unsupported(this.source, `output '${r}' is a constant`);
      // Name the output after its node (Identity, Identity_1, ...) where the IR tensor has another name.
      const want = nodeOfRef(r);
      if (v.ir === want || this.tensors.has(want)) return v.ir;
      const t = this.tensors.get(v.ir)!;
      this.tensors.set(want, { ...t, name: want });
      this.node(`${want}/identity`, 'Identity', [v.ir], [want]);
      return want;
    });
  }
}

/** NumPy broadcasting of two shapes (from the right); undefined where they do not broadcast. */
function broadcastShape(a: readonly number[], b: readonly number[]): number[] | undefined {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1, y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return undefined;
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** An elementwise op on two constants, broadcast to `shape` (TensorFlow's alignment from the right). */
function foldBinary(op: 'Add' | 'Sub' | 'Mul' | 'Div', x: Value, y: Value, shape: number[]): Float32Array {
  const r = shape.length;
  const at = (v: Value, idx: number[]) => {
    let o = 0;
    const s = v.shape, off = r - s.length;
    for (let i = 0; i < s.length; i++) o = o * s[i] + (s[i] === 1 ? 0 : idx[off + i]);
    return v.data![o];
  };
  const out = new Float32Array(product(shape));
  const idx = new Array<number>(r).fill(0);
  for (let o = 0; o < out.length; o++) {
    const a = at(x, idx), b = at(y, idx);
    out[o] = op === 'Add' ? a + b : op === 'Sub' ? a - b : op === 'Mul' ? a * b : a / b;
    for (let i = r - 1; i >= 0; i--) { if (++idx[i] < shape[i]) break; idx[i] = 0; }
  }
  return out;
}
