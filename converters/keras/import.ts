// Keras importer: a TF.js Layers model (`model.json`: the Keras topology in `modelTopology`, the weights in binary
// shards listed by `weightsManifest`) into the graph IR (src/graph/ir.ts).
//
// Layout rule, as for TFLite (converters/tflite/import.ts): Keras is channels-last; every rank-4 tensor is NCHW in
// the IR. Conv kernels [KH, KW, I, O] become [O, I, KH, KW]; depthwise kernels [KH, KW, C, M] become
// [C*M, 1, KH, KW] with group C; Dense kernels [I, O] become [O, I] (Gemm transB 1, as TFLite's FULLY_CONNECTED).
// Layers whose meaning depends on memory order (Flatten, Reshape) see the tensor in NHWC order through a
// Transpose (a Reshape when only size-1 dims move). 'same' padding is TensorFlow's: the odd pixel at the
// bottom/right. Activations are separate nodes after a `<output>/preact` tensor, as ONNX files spell them.
// Sequential and functional models, nested ones too (a model used as a layer).

import { dirname, join, normalize, isAbsolute } from 'node:path';
import { invalid, unsupported } from '../../src/errors.js';
import { readInputFile } from '../../src/input-file.js';
import { newAttrs, type Attrs, type Graph, type Node, type Tensor, type TensorData } from '../../src/graph/ir.js';
import { defaultMaxMemory, type ImportOptions } from '../options.js';

import { readWeights, type ShardLoader } from '../tfjs-weights.js';
import { importTfjsGraph, isTfjsGraphModel } from '../tfjs-graph/import.js';
import { nchwPos, nchwToNhwc, nhwcToNchw, permute, tfPads, transposeF32 } from '../tf-layout.js';

export type { ShardLoader } from '../tfjs-weights.js';

export interface KerasImportOptions extends ImportOptions {
  /** Where shards come from when the model is given as bytes (with a path: files next to model.json). */
  loadShard?: ShardLoader;
}

export type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** True when `text` parses to a TF.js Layers model (not a FusePlanner layer DAG or other JSON). */
export function isTfjsLayersModel(doc: unknown): boolean {
  if (!isObj(doc) || !isObj(doc.modelTopology)) return false;
  const topo = doc.modelTopology;
  const cfg = isObj(topo.model_config) ? topo.model_config : topo;
  return typeof cfg.class_name === 'string';
}

/** The first bytes of a file look like a TF.js Layers model.json. */
export function looksLikeTfjsJson(bytes: Uint8Array): boolean {
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  if (bytes[i] !== 0x7b) return false; // '{'
  const head = new TextDecoder().decode(bytes.subarray(0, Math.min(bytes.length, 1 << 20)));
  return head.includes('"modelTopology"');
}

/** Imports a model.json given as a path (shards read next to it) or as bytes with `loadShard`. */
export async function importKeras(input: string | Uint8Array, opts: KerasImportOptions = {}): Promise<Graph> {
  const source = opts.source ?? (typeof input === 'string' ? input : 'model.json');
  const maxMemory = opts.maxMemory ?? defaultMaxMemory;
  let budget = maxMemory;
  const bytes = typeof input === 'string' ? await readInputFile(input, { source, maxBytes: maxMemory }) : input;
  budget -= bytes.length;
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8').decode(bytes));
  } catch (e) {
    throw invalid(source, `is not valid JSON (${(e as Error).message})`);
  }
  const loadShard: ShardLoader = opts.loadShard ?? (typeof input === 'string'
    ? async (p) => {
      if (isAbsolute(p) || normalize(p).startsWith('..')) throw invalid(source, `weight shard '${p}' lies outside the model's folder`);
      const b = await readInputFile(join(dirname(input), p), { source: `${source}: shard '${p}'`, maxBytes: Math.max(budget, 0) });
      budget -= b.length;
      return b;
    }
    : async (p) => { throw invalid(source, `weight shard '${p}' is needed but no shard loader was given`); });
  // A TF.js graph model (a TensorFlow GraphDef): its own importer, the same shards.
  if (isTfjsGraphModel(doc)) return importTfjsGraph(doc as Json, loadShard, source, opts);
  if (!isTfjsLayersModel(doc)) throw invalid(source, 'is not a TF.js Layers model (no modelTopology with a Keras model config)');
  const d = doc as Json;
  const weights = await readWeights(d.weightsManifest, loadShard, source);
  const topo = d.modelTopology as Json;
  const cfg = (isObj(topo.model_config) ? topo.model_config : topo) as Json;
  return graphFromKerasConfig(cfg, weights, String(topo.keras_version ?? ''), source, opts);
}

/** The graph of a Keras model config ({class_name, config}) with its weights by `layer/weight` name. */
export function graphFromKerasConfig(cfg: Json, weights: Map<string, { shape: number[]; data: Float32Array }>, kerasVersion: string, source: string, opts: ImportOptions = {}): Graph {
  const b = new KerasBuilder(source, weights, opts, kerasVersion.startsWith('3'));
  const { inputs, outputs } = b.model(cfg, null, '');
  return { name: String((cfg.config as Json | undefined)?.name ?? 'keras'), inputs, outputs: outputs.map((o) => b.resolve(o)), tensors: b.tensors, nodes: b.nodes, source };
}

/** A Keras tensor reference: layer name, node index, tensor index (with the scope of a nested model). */
type Ref = string;

/** Inbound tensors of a layer's call, Keras 2 (`[[name, node, tensor, kwargs], ...]`) or Keras 3 (`{args: [...]}`). */
function inboundRefs(nodes: unknown, scope: string, source: string, layer: string): Ref[][] {
  if (nodes === undefined) return [];
  if (!Array.isArray(nodes)) throw invalid(source, `layer '${layer}': inbound_nodes must be a list`);
  return nodes.map((call) => {
    if (Array.isArray(call)) return call.map((r) => refOf(r, scope, source, layer));
    if (isObj(call) && Array.isArray(call.args)) {
      const found: Ref[] = [];
      const walk = (v: unknown) => {
        if (Array.isArray(v)) { v.forEach(walk); return; }
        if (isObj(v) && v.class_name === '__keras_tensor__' && isObj(v.config) && Array.isArray(v.config.keras_history)) {
          found.push(refOf(v.config.keras_history, scope, source, layer));
        }
      };
      walk(call.args);
      return found;
    }
    throw invalid(source, `layer '${layer}': an inbound node has an unknown form`);
  });
}

function refOf(r: unknown, scope: string, source: string, layer: string): Ref {
  if (!Array.isArray(r) || typeof r[0] !== 'string') throw invalid(source, `layer '${layer}': an inbound tensor reference is malformed`);
  return `${scope}${r[0]}:${Number(r[1] ?? 0)}:${Number(r[2] ?? 0)}`;
}

class KerasBuilder {
  readonly tensors = new Map<string, Tensor>();
  readonly nodes: Node[] = [];
  /** Keras tensor reference -> IR tensor name. */
  private readonly refs = new Map<Ref, string>();
  /** IR tensor name -> Keras (channels-last) shape. */
  private readonly kShape = new Map<string, number[]>();
  private readonly used = new Set<string>();
  private readonly nodeNames = new Set<string>();
  private readonly nativeCache = new Map<string, string>();
  private readonly usedWeights = new Set<string>();

  constructor(readonly source: string, readonly weights: Map<string, { shape: number[]; data: Float32Array }>,
    readonly opts: ImportOptions, readonly keras3: boolean) {}

  resolve(ref: Ref): string {
    const t = this.refs.get(ref);
    if (!t) throw invalid(this.source, `tensor '${ref}' is used before a layer produces it`);
    return t;
  }

  unique(base: string): string {
    let name = base, i = 1;
    while (this.used.has(name)) name = `${base}_${i++}`;
    this.used.add(name);
    return name;
  }

  /** A new float32 activation with the Keras shape `ks` (stored NCHW when rank 4). */
  act(base: string, ks: number[]): string {
    const name = this.unique(base);
    this.tensors.set(name, { name, dtype: 'float32', shape: ks.length === 4 ? permute(ks, nhwcToNchw) : [...ks] });
    this.kShape.set(name, ks);
    return name;
  }

  constant(base: string, shape: number[], data: TensorData, dtype: 'float32' | 'int64' = 'float32'): string {
    const name = this.unique(base);
    this.tensors.set(name, { name, dtype, shape, data });
    return name;
  }

  node(name: string, op: string, inputs: string[], outputs: string[], attrs: Attrs = newAttrs()): void {
    // Node names are their own namespace: a layer's node and its output tensor share the layer's name.
    let n = name, i = 1;
    while (this.nodeNames.has(n)) n = `${name}_${i++}`;
    this.nodeNames.add(n);
    this.nodes.push({ name: n, op, domain: '', inputs, outputs, attrs });
  }

  shapeOf(t: string): number[] { return this.kShape.get(t)!; }

  weight(layer: string, w: string, shape?: number[]): Float32Array {
    let key = `${layer}/${w}`;
    let found = this.weights.get(key);
    if (!found) {
      // Converters may prefix names with the enclosing model's (model/conv1/kernel) or suffix a counter (kernel_1).
      for (const [k, v] of this.weights) {
        if (!this.usedWeights.has(k) && (k.endsWith(`/${layer}/${w}`) || k.startsWith(`${layer}/${w}_`))) { key = k; found = v; break; }
      }
    }
    if (!found) throw invalid(this.source, `layer '${layer}': weight '${w}' is not in the weights manifest`);
    if (shape && (found.shape.length !== shape.length || found.shape.some((v, i) => shape[i] >= 0 && v !== shape[i]))) {
      throw invalid(this.source, `layer '${layer}': weight '${w}' has shape [${found.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    this.usedWeights.add(key);
    return found.data;
  }

  /** The tensor in Keras's (NHWC) memory order: a Transpose (or Reshape) in front of a rank-4 tensor. */
  toNative(t: string, at: string): string {
    const ks = this.shapeOf(t);
    if (ks.length !== 4) return t;
    const cached = this.nativeCache.get(t);
    if (cached) return cached;
    const name = this.unique(`${t}/nhwc`);
    this.tensors.set(name, { name, dtype: 'float32', shape: [...ks] });
    this.reorder(t, name, this.tensors.get(t)!.shape, nchwToNhwc, `${at}/to_nhwc`);
    this.nativeCache.set(t, name);
    return name;
  }

  reorder(from: string, to: string, shape: number[], perm: number[], name: string): void {
    const order = perm.filter((p) => shape[p] !== 1);
    if (order.every((p, i) => i === 0 || order[i - 1] < p)) this.reshape(from, to, name);
    else this.node(name, 'Transpose', [from], [to], newAttrs({ perm }));
  }

  reshape(from: string, to: string, name: string): void {
    const shape = this.tensors.get(to)!.shape;
    const s = this.constant(`${name}/shape`, [shape.length], BigInt64Array.from(shape.map(BigInt)), 'int64');
    this.node(name, 'Reshape', [from, s], [to], newAttrs({ shape }));
  }

  /** Writes a Keras-shaped result computed in NHWC order into the canonical tensor `y`. */
  fromNative(native: string, y: string, name: string): void {
    this.reorder(native, y, this.shapeOf(y), nhwcToNchw, `${name}/to_nchw`);
  }

  /** Emits `op` and the layer's `activation` config after it. */
  withActivation(name: string, op: string, inputs: string[], y: string, attrs: Attrs, activation: unknown): void {
    const a = activation === undefined || activation === null ? 'linear' : activationOf(activation);
    if (a === 'linear') { this.node(name, op, inputs, [y], attrs); return; }
    const pre = this.act(`${y}/preact`, this.shapeOf(y));
    this.node(name, op, inputs, [pre], attrs);
    this.activation(`${name}/${a}`, a, pre, y);
  }

  activation(name: string, a: string, x: string, y: string): void {
    switch (a) {
      case 'linear': this.node(name, 'Identity', [x], [y]); return;
      case 'relu': this.node(name, 'Relu', [x], [y]); return;
      case 'relu6': this.node(name, 'Clip', [x], [y], newAttrs({ min: 0, max: 6 })); return;
      case 'sigmoid': this.node(name, 'Sigmoid', [x], [y]); return;
      case 'tanh': this.node(name, 'Tanh', [x], [y]); return;
      case 'swish': case 'silu': this.node(name, 'SiLU', [x], [y]); return;
      case 'hard_swish': case 'hard_silu': case 'hardswish': this.node(name, 'HardSwish', [x], [y]); return;
      // Keras 2: clip(0.2x + 0.5, 0, 1); Keras 3: relu6(x + 3) / 6.
      case 'hard_sigmoid': this.node(name, 'HardSigmoid', [x], [y], newAttrs(this.keras3 ? { alpha: 1 / 6, beta: 0.5 } : { alpha: 0.2, beta: 0.5 })); return;
      case 'softmax': this.node(name, 'Softmax', [x], [y], newAttrs({ axis: this.shapeOf(x).length === 4 ? 1 : this.shapeOf(x).length - 1 })); return;
      default: throw unsupported(this.source, `layer '${name.split('/')[0]}': activation '${a}' is not supported`);
    }
  }

  /** Builds a Sequential or functional model config; `given` are the IR tensors fed to a nested model. */
  model(m: Json, given: string[] | null, scope: string): { inputs: string[]; outputs: Ref[] } {
    const cls = String(m.class_name);
    const cfg = m.config;
    if (cls === 'Sequential') return this.sequential(cfg, given, scope);
    if (cls === 'Model' || cls === 'Functional') return this.functional(cfg, given, scope);
    throw unsupported(this.source, `model class '${cls}' is not supported (Sequential and functional models are)`);
  }

  private sequential(cfg: unknown, given: string[] | null, scope: string): { inputs: string[]; outputs: Ref[] } {
    const layers = (Array.isArray(cfg) ? cfg : isObj(cfg) ? cfg.layers : undefined) as Json[] | undefined;
    if (!Array.isArray(layers) || layers.length === 0) throw invalid(this.source, 'a Sequential model has no layers');
    let x: string | null = given ? given[0] : null;
    const inputs: string[] = [];
    let i = 0;
    const name0 = String((layers[0].config as Json | undefined)?.name ?? 'input');
    if (!x) {
      const lc = (layers[0].config ?? {}) as Json;
      x = this.graphInput(layers[0].class_name === 'InputLayer' ? name0 : `${name0}_input`, lc);
      inputs.push(x);
      if (layers[0].class_name === 'InputLayer') i = 1;
    } else if (layers[0].class_name === 'InputLayer') i = 1;
    for (; i < layers.length; i++) {
      const l = layers[i];
      const out = this.layer(l, [x!], scope);
      x = out;
    }
    const ref = `${scope}__sequential_out:0:0`;
    this.refs.set(ref, x!);
    return { inputs, outputs: [ref] };
  }

  private functional(cfg: unknown, given: string[] | null, scope: string): { inputs: string[]; outputs: Ref[] } {
    if (!isObj(cfg) || !Array.isArray(cfg.layers)) throw invalid(this.source, 'a functional model has no layers');
    const inRefs = ((cfg.input_layers ?? []) as unknown[]);
    const inputList = (inRefs.length > 0 && typeof inRefs[0] === 'string' ? [inRefs] : inRefs) as unknown[][];
    const outRaw = (cfg.output_layers ?? []) as unknown[];
    const outputList = (outRaw.length > 0 && typeof outRaw[0] === 'string' ? [outRaw] : outRaw) as unknown[][];
    const inputNames = inputList.map((r) => String(r[0]));
    const inputs: string[] = [];
    if (given && given.length !== inputNames.length) throw invalid(this.source, `nested model takes ${inputNames.length} inputs, given ${given.length}`);
    for (const l of cfg.layers as Json[]) {
      const name = String(l.name ?? (l.config as Json | undefined)?.name);
      if (l.class_name === 'InputLayer') {
        const k = inputNames.indexOf(name);
        let t: string;
        if (given) t = given[k >= 0 ? k : 0];
        else { t = this.graphInput(name, (l.config ?? {}) as Json); inputs.push(t); }
        this.refs.set(`${scope}${name}:0:0`, t);
        continue;
      }
      const calls = inboundRefs(l.inbound_nodes, scope, this.source, name);
      if (calls.length === 0) throw invalid(this.source, `layer '${name}' has no inbound nodes`);
      calls.forEach((refs, nodeIdx) => {
        const xs = refs.map((r) => this.resolve(r));
        const y = this.layer({ ...l, config: { ...(l.config as Json), name } }, xs, scope);
        this.refs.set(`${scope}${name}:${nodeIdx}:0`, y);
      });
    }
    return { inputs, outputs: outputList.map((r) => refOf(r, scope, this.source, 'output_layers')) };
  }

  private graphInput(name: string, cfg: Json): string {
    const shape = (cfg.batch_input_shape ?? cfg.batch_shape ?? (Array.isArray(cfg.input_shape) ? [null, ...cfg.input_shape] : undefined)) as (number | null)[] | undefined;
    if (!Array.isArray(shape)) throw invalid(this.source, `input '${name}' has no shape (batch_input_shape)`);
    const given = this.opts.inputShapes?.[name];
    let ks: number[];
    if (given) {
      // --input-shape speaks the IR's layout: NCHW for rank 4.
      ks = given.length === 4 ? permute(given, nchwToNhwc) : [...given];
    } else {
      ks = shape.map((d, i) => (d === null || d === undefined || d < 0 ? (i === 0 ? this.opts.batch ?? 1 : NaN) : d));
      if (ks.some((d) => Number.isNaN(d))) throw unsupported(this.source, `input '${name}' has unknown dims [${shape.join(', ')}]; give them with --input-shape`);
    }
    if (cfg.dtype !== undefined && cfg.dtype !== 'float32') throw unsupported(this.source, `input '${name}' has dtype ${String(cfg.dtype)}; only float32 inputs are supported`);
    return this.act(name, ks);
  }

  /** One layer applied to `xs`; returns its output tensor. */
  private layer(l: Json, xs: string[], scope: string): string {
    const cls = String(l.class_name);
    const c = (l.config ?? {}) as Json;
    const name = String(c.name ?? cls);
    const x = xs[0];
    const ks = this.shapeOf(x);
    const where = `layer '${name}' (${cls})`;
    const needRank4 = () => { if (ks.length !== 4) throw unsupported(this.source, `${where}: expects a rank-4 input, got [${ks.join(', ')}]`); };
    if (c.data_format !== undefined && c.data_format !== 'channels_last') throw unsupported(this.source, `${where}: data_format ${String(c.data_format)} is not supported (channels_last is)`);
    const pair = (v: unknown, dflt: number): [number, number] => {
      if (v === undefined || v === null) return [dflt, dflt];
      if (typeof v === 'number') return [v, v];
      if (Array.isArray(v) && v.length === 2) return [Number(v[0]), Number(v[1])];
      if (Array.isArray(v) && v.length === 1) return [Number(v[0]), Number(v[0])];
      throw invalid(this.source, `${where}: expected a pair, got ${JSON.stringify(v)}`);
    };
    switch (cls) {
      case 'Sequential': case 'Model': case 'Functional': {
        const sub = this.model(l, xs, `${scope}${name}/`);
        if (sub.outputs.length !== 1) throw unsupported(this.source, `${where}: nested models with ${sub.outputs.length} outputs are not supported`);
        return this.resolve(sub.outputs[0]);
      }
      case 'InputLayer': return x;
      case 'Dropout': case 'SpatialDropout2D': case 'GaussianNoise': case 'GaussianDropout': case 'AlphaDropout': case 'ActivityRegularization':
        return x; // identity at inference
      case 'Conv2D': case 'DepthwiseConv2D': case 'SeparableConv2D': {
        needRank4();
        const [n, h, w, ch] = ks;
        const k = pair(c.kernel_size, 1), s = pair(c.strides, 1), dl = pair(c.dilation_rate, 1);
        const padding = String(c.padding ?? 'valid');
        if (padding !== 'same' && padding !== 'valid') throw unsupported(this.source, `${where}: padding '${padding}' is not supported`);
        const { pads, out: [oh, ow] } = tfPads(padding, h, w, k, s, dl);
        if (oh < 1 || ow < 1) throw invalid(this.source, `${where}: input ${h}x${w} is smaller than the kernel`);
        const useBias = c.use_bias !== false;
        const convAttrs = (group: number) => newAttrs({ kernel: k, strides: s, pads, dilations: dl, group });
        if (cls === 'Conv2D') {
          const filters = Number(c.filters);
          const groups = Number(c.groups ?? 1);
          if (ch % groups !== 0) throw invalid(this.source, `${where}: ${ch} channels do not split into ${groups} groups`);
          const kr = this.weight(name, 'kernel', [k[0], k[1], ch / groups, filters]);
          const wName = this.constant(`${name}/kernel`, [filters, ch / groups, k[0], k[1]], transposeF32(kr, [k[0], k[1], ch / groups, filters], [3, 2, 0, 1]));
          const inputs = [x, wName];
          if (useBias) inputs.push(this.constant(`${name}/bias`, [filters], this.weight(name, 'bias', [filters])));
          const y = this.act(name, [n, oh, ow, filters]);
          this.withActivation(name, 'Conv', inputs, y, convAttrs(groups), c.activation);
          return y;
        }
        const mult = Number(c.depth_multiplier ?? 1);
        const dk = this.weight(name, 'depthwise_kernel', [k[0], k[1], ch, mult]);
        // [KH, KW, C, M] -> [C, M, KH, KW] = [C*M, 1, KH, KW] (output channel c*M + m).
        const dwW = this.constant(`${name}/depthwise_kernel`, [ch * mult, 1, k[0], k[1]], transposeF32(dk, [k[0], k[1], ch, mult], [2, 3, 0, 1]));
        if (cls === 'DepthwiseConv2D') {
          const inputs = [x, dwW];
          if (useBias) inputs.push(this.constant(`${name}/bias`, [ch * mult], this.weight(name, 'bias', [ch * mult])));
          const y = this.act(name, [n, oh, ow, ch * mult]);
          this.withActivation(name, 'Conv', inputs, y, convAttrs(ch), c.activation);
          return y;
        }
        // SeparableConv2D: depthwise (no bias) then pointwise with the bias and activation.
        const filters = Number(c.filters);
        const mid = this.act(`${name}/depthwise`, [n, oh, ow, ch * mult]);
        this.node(`${name}/depthwise`, 'Conv', [x, dwW], [mid], convAttrs(ch));
        const pk = this.weight(name, 'pointwise_kernel', [1, 1, ch * mult, filters]);
        const pwW = this.constant(`${name}/pointwise_kernel`, [filters, ch * mult, 1, 1], transposeF32(pk, [1, 1, ch * mult, filters], [3, 2, 0, 1]));
        const inputs = [mid, pwW];
        if (useBias) inputs.push(this.constant(`${name}/bias`, [filters], this.weight(name, 'bias', [filters])));
        const y = this.act(name, [n, oh, ow, filters]);
        this.withActivation(`${name}/pointwise`, 'Conv', inputs, y, newAttrs({ kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 }), c.activation);
        return y;
      }
      case 'BatchNormalization': {
        const rank = ks.length;
        const axisRaw = c.axis;
        const axis = Array.isArray(axisRaw) ? Number(axisRaw[0]) : Number(axisRaw ?? -1);
        if ((axis < 0 ? axis + rank : axis) !== rank - 1) throw unsupported(this.source, `${where}: only normalization over the last (channel) axis is supported, got axis ${axis}`);
        const ch = ks[rank - 1];
        const gamma = c.scale === false ? new Float32Array(ch).fill(1) : this.weight(name, 'gamma', [ch]);
        const beta = c.center === false ? new Float32Array(ch) : this.weight(name, 'beta', [ch]);
        const mean = this.weight(name, 'moving_mean', [ch]);
        const variance = this.weight(name, 'moving_variance', [ch]);
        const ins = [x, this.constant(`${name}/gamma`, [ch], gamma), this.constant(`${name}/beta`, [ch], beta),
          this.constant(`${name}/moving_mean`, [ch], mean), this.constant(`${name}/moving_variance`, [ch], variance)];
        const y = this.act(name, ks);
        if (rank !== 4 && rank !== 2) throw unsupported(this.source, `${where}: rank-${rank} input is not supported`);
        this.node(name, 'BatchNormalization', ins, [y], newAttrs({ epsilon: Number(c.epsilon ?? 1e-3) }));
        return y;
      }
      case 'Activation': {
        const y = this.act(name, ks);
        this.activation(name, activationOf(c.activation), x, y);
        return y;
      }
      case 'ReLU': {
        const max = c.max_value === null || c.max_value === undefined ? Infinity : Number(c.max_value);
        const slope = Number(c.negative_slope ?? 0), threshold = Number(c.threshold ?? 0);
        const y = this.act(name, ks);
        if (threshold !== 0) throw unsupported(this.source, `${where}: threshold ${threshold} is not supported`);
        if (slope !== 0) {
          if (max !== Infinity) throw unsupported(this.source, `${where}: negative_slope with max_value is not supported`);
          this.node(name, 'LeakyRelu', [x], [y], newAttrs({ alpha: slope }));
        } else if (max === Infinity) this.node(name, 'Relu', [x], [y]);
        else this.node(name, 'Clip', [x], [y], newAttrs({ min: 0, max }));
        return y;
      }
      case 'LeakyReLU': {
        const y = this.act(name, ks);
        this.node(name, 'LeakyRelu', [x], [y], newAttrs({ alpha: Number(c.alpha ?? c.negative_slope ?? 0.3) }));
        return y;
      }
      case 'Softmax': {
        const axis = Number(c.axis ?? -1);
        if ((axis < 0 ? axis + ks.length : axis) !== ks.length - 1) throw unsupported(this.source, `${where}: softmax over axis ${axis} is not supported (the last axis is)`);
        const y = this.act(name, ks);
        this.activation(name, 'softmax', x, y);
        return y;
      }
      case 'Add': case 'Multiply': case 'Subtract': {
        if (xs.length < 2) throw invalid(this.source, `${where}: needs at least two inputs`);
        for (const t of xs) {
          const s = this.shapeOf(t);
          if (s.length !== ks.length || s.some((v, i) => v !== ks[i])) throw unsupported(this.source, `${where}: inputs of shapes [${ks.join(', ')}] and [${s.join(', ')}] differ (broadcasting is not supported)`);
        }
        if (cls === 'Subtract' && xs.length !== 2) throw invalid(this.source, `${where}: takes exactly two inputs`);
        const op = cls === 'Add' ? 'Add' : cls === 'Multiply' ? 'Mul' : 'Sub';
        let acc = xs[0];
        for (let i = 1; i < xs.length; i++) {
          const y = this.act(i === xs.length - 1 ? name : `${name}/partial`, ks);
          this.node(i === 1 ? name : `${name}_${i}`, op, [acc, xs[i]], [y]);
          acc = y;
        }
        return acc;
      }
      case 'Concatenate': {
        const axisK = Number(c.axis ?? -1);
        const a = axisK < 0 ? axisK + ks.length : axisK;
        const out = [...ks];
        out[a] = xs.reduce((s, t) => s + this.shapeOf(t)[a], 0);
        const y = this.act(name, out);
        this.node(name, 'Concat', xs, [y], newAttrs({ axis: ks.length === 4 ? nchwPos[a] : a }));
        return y;
      }
      case 'ZeroPadding2D': {
        needRank4();
        const p = c.padding;
        let t: number, b: number, le: number, r: number;
        if (typeof p === 'number') [t, b, le, r] = [p, p, p, p];
        else if (Array.isArray(p) && p.length === 2 && typeof p[0] === 'number') [t, b, le, r] = [p[0], p[0], Number(p[1]), Number(p[1])];
        else if (Array.isArray(p) && p.length === 2 && Array.isArray(p[0]) && Array.isArray(p[1])) [t, b, le, r] = [Number(p[0][0]), Number(p[0][1]), Number(p[1][0]), Number(p[1][1])];
        else throw invalid(this.source, `${where}: padding ${JSON.stringify(p)} is malformed`);
        const y = this.act(name, [ks[0], ks[1] + t + b, ks[2] + le + r, ks[3]]);
        this.node(name, 'Pad', [x], [y], newAttrs({ pads: [0, 0, t, le, 0, 0, b, r], mode: 'constant', value: 0 }));
        return y;
      }
      case 'MaxPooling2D': case 'AveragePooling2D': {
        needRank4();
        const k = pair(c.pool_size, 2);
        const s = c.strides === null || c.strides === undefined ? k : pair(c.strides, 1);
        const padding = String(c.padding ?? 'valid');
        if (padding !== 'same' && padding !== 'valid') throw unsupported(this.source, `${where}: padding '${padding}' is not supported`);
        const { pads, out: [oh, ow] } = tfPads(padding, ks[1], ks[2], k, s, [1, 1]);
        const y = this.act(name, [ks[0], oh, ow, ks[3]]);
        const avg = cls === 'AveragePooling2D';
        // TensorFlow's average pool counts only the pixels inside the image.
        this.node(name, avg ? 'AveragePool' : 'MaxPool', [x], [y], newAttrs(avg
          ? { kernel: k, strides: s, pads, countIncludePad: 0, ceilMode: 0 }
          : { kernel: k, strides: s, pads, dilations: [1, 1], ceilMode: 0 }));
        return y;
      }
      case 'Conv2DTranspose': {
        // Keras's output length (conv_utils.deconv_output_length), then TensorFlow's conv2d_transpose to that
        // length: the gradient of a conv2d whose input is the output, so the crop at the start is that conv's
        // 'same' pad before (the odd pixel at the end) and 0 for 'valid'. As ONNX ConvTranspose: pads, and
        // output_padding where the output runs past the last tap (a kernel shorter than the stride).
        needRank4();
        const [n, h, w, ch] = ks;
        const k = pair(c.kernel_size, 1), s = pair(c.strides, 1), dl = pair(c.dilation_rate, 1);
        if (dl[0] !== 1 || dl[1] !== 1) throw unsupported(this.source, `${where}: dilation_rate [${dl.join(', ')}] is not supported (1 is)`);
        const padding = String(c.padding ?? 'valid');
        if (padding !== 'same' && padding !== 'valid') throw unsupported(this.source, `${where}: padding '${padding}' is not supported`);
        const op = c.output_padding === null || c.output_padding === undefined ? null : pair(c.output_padding, 0);
        const outLen = (i: number, a: number) => op === null
          ? (padding === 'valid' ? i * s[a] + Math.max(k[a] - s[a], 0) : i * s[a])
          : (i - 1) * s[a] + k[a] - 2 * (padding === 'same' ? Math.floor(k[a] / 2) : 0) + op[a];
        const out = [outLen(h, 0), outLen(w, 1)];
        const begin: number[] = [], end: number[] = [], extra: number[] = [];
        for (let a = 0; a < 2; a++) {
          // TensorFlow refuses an output length whose forward conv does not give the input length back.
          const back = padding === 'same' ? Math.ceil(out[a] / s[a]) : Math.ceil((out[a] - k[a] + 1) / s[a]);
          if (out[a] < 1 || back !== ks[1 + a]) throw invalid(this.source, `${where}: output_padding ${JSON.stringify(c.output_padding)} gives an output length ${out[a]} that does not map back to ${ks[1 + a]}`);
          const total = (ks[1 + a] - 1) * s[a] + k[a] - out[a];
          const b = padding === 'same' ? Math.max(0, Math.floor(total / 2)) : 0;
          begin.push(b); end.push(Math.max(0, total - b)); extra.push(Math.max(0, b - total));
        }
        const filters = Number(c.filters);
        // [KH, KW, O, I] -> ONNX ConvTranspose's [I, O, KH, KW].
        const kr = this.weight(name, 'kernel', [k[0], k[1], filters, ch]);
        const wName = this.constant(`${name}/kernel`, [ch, filters, k[0], k[1]], transposeF32(kr, [k[0], k[1], filters, ch], [3, 2, 0, 1]));
        const inputs = [x, wName];
        if (c.use_bias !== false) inputs.push(this.constant(`${name}/bias`, [filters], this.weight(name, 'bias', [filters])));
        const y = this.act(name, [n, out[0], out[1], filters]);
        this.withActivation(name, 'ConvTranspose', inputs, y, newAttrs({ kernel_shape: k, strides: s, pads: [...begin, ...end], dilations: [1, 1], group: 1, output_padding: extra }), c.activation);
        return y;
      }
      case 'UpSampling2D': {
        // Keras resizes with tf.image.resize: nearest repeats each pixel (for integer factors every coordinate
        // convention picks the same source pixel: floor(x / size)); bilinear has half-pixel centres, no
        // antialiasing, and clamps at the border, which is ONNX Resize 'linear' with 'half_pixel'. (TF.js Layers'
        // own runtime resizes bilinear with asymmetric coordinates; the Keras model it came from does not.)
        needRank4();
        const [sh, sw] = pair(c.size, 2);
        if (!Number.isInteger(sh) || !Number.isInteger(sw) || sh < 1 || sw < 1) throw invalid(this.source, `${where}: size [${sh}, ${sw}] must be positive integers`);
        const interpolation = String(c.interpolation ?? 'nearest');
        if (interpolation !== 'nearest' && interpolation !== 'bilinear') throw unsupported(this.source, `${where}: interpolation '${interpolation}' is not supported (nearest, bilinear)`);
        const y = this.act(name, [ks[0], ks[1] * sh, ks[2] * sw, ks[3]]);
        const sizes = this.constant(`${name}/sizes`, [4], BigInt64Array.from(this.tensors.get(y)!.shape.map(BigInt)), 'int64');
        const attrs = interpolation === 'nearest'
          ? newAttrs({ mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' })
          : newAttrs({ mode: 'linear', coordinate_transformation_mode: 'half_pixel' });
        this.node(name, 'Resize', [x, '', '', sizes], [y], attrs);
        return y;
      }
      case 'GlobalAveragePooling2D': case 'GlobalMaxPooling2D': {
        needRank4();
        const keep = c.keepdims === true;
        const op = cls === 'GlobalAveragePooling2D' ? 'ReduceMean' : 'ReduceMax';
        // Over H and W (NCHW axes 2, 3); without keepdims [N, C, 1, 1] drops to [N, C], the same memory order.
        const y = this.act(name, keep ? [ks[0], 1, 1, ks[3]] : [ks[0], ks[3]]);
        this.node(name, op, [x], [y], newAttrs({ axes: [2, 3], keepdims: keep ? 1 : 0 }));
        return y;
      }
      case 'Flatten': {
        const native = this.toNative(x, name);
        const y = this.act(name, [ks[0], ks.slice(1).reduce((a, b) => a * b, 1)]);
        this.reshape(native, y, `${name}`);
        return y;
      }
      case 'Reshape': {
        const target = (c.target_shape as number[] | undefined)?.map(Number);
        if (!Array.isArray(target)) throw invalid(this.source, `${where}: target_shape is missing`);
        const total = ks.slice(1).reduce((a, b) => a * b, 1);
        const known = target.filter((v) => v !== -1).reduce((a, b) => a * b, 1);
        const out = [ks[0], ...target.map((v) => (v === -1 ? total / known : v))];
        if (out.reduce((a, b) => a * b, 1) !== ks.reduce((a, b) => a * b, 1) || out.some((v) => !Number.isInteger(v))) {
          throw invalid(this.source, `${where}: cannot reshape [${ks.join(', ')}] to [${out.join(', ')}]`);
        }
        const native = this.toNative(x, name);
        const y = this.act(name, out);
        if (out.length === 4) {
          const nat = this.unique(`${y}/nhwc`);
          this.tensors.set(nat, { name: nat, dtype: 'float32', shape: [...out] });
          this.reshape(native, nat, name);
          this.fromNative(nat, y, name);
        } else this.reshape(native, y, name);
        return y;
      }
      case 'Dense': {
        if (ks.length !== 2) throw unsupported(this.source, `${where}: Dense on a rank-${ks.length} input is not supported (rank 2 is)`);
        const units = Number(c.units), depth = ks[1];
        const kr = this.weight(name, 'kernel', [depth, units]);
        const wName = this.constant(`${name}/kernel`, [units, depth], transposeF32(kr, [depth, units], [1, 0]));
        const inputs = [x, wName];
        if (c.use_bias !== false) inputs.push(this.constant(`${name}/bias`, [units], this.weight(name, 'bias', [units])));
        const y = this.act(name, [ks[0], units]);
        this.withActivation(name, 'Gemm', inputs, y, newAttrs({ alpha: 1, beta: 1, transA: 0, transB: 1 }), c.activation);
        return y;
      }
      case 'Rescaling': {
        const scale = Number(c.scale ?? 1), offset = Number(c.offset ?? 0);
        if (!Number.isFinite(scale) || !Number.isFinite(offset)) throw unsupported(this.source, `${where}: only scalar scale and offset are supported`);
        const scaled = this.act(offset !== 0 ? `${name}/scaled` : name, ks);
        this.node(name, 'Mul', [x, this.constant(`${name}/scale`, [1], Float32Array.of(scale))], [scaled]);
        if (offset === 0) return scaled;
        const y = this.act(name, ks);
        this.node(`${name}/offset`, 'Add', [scaled, this.constant(`${name}/offset`, [1], Float32Array.of(offset))], [y]);
        return y;
      }
      case 'Normalization': {
        // (x - mean) / max(sqrt(variance), 1e-7) over the last (channel) axis, as one Sub and one Mul.
        const axis = Array.isArray(c.axis) ? c.axis.map(Number) : [Number(c.axis ?? -1)];
        if (c.invert === true) throw unsupported(this.source, `${where}: invert is not supported`);
        if (axis.length !== 1 || (axis[0] < 0 ? axis[0] + ks.length : axis[0]) !== ks.length - 1) throw unsupported(this.source, `${where}: only normalization over the last (channel) axis is supported`);
        const ch = ks[ks.length - 1];
        const values = (v: unknown, w: string): Float32Array => {
          if (v === undefined || v === null) return this.weight(name, w);
          const arr = (Array.isArray(v) ? v.flat(8) : [v]).map(Number);
          return Float32Array.from({ length: ch }, (_, i) => arr.length === 1 ? arr[0] : arr[i]);
        };
        const mean = values(c.mean, 'mean'), variance = values(c.variance, 'variance');
        if (mean.length !== ch || variance.length !== ch) throw invalid(this.source, `${where}: mean and variance must have ${ch} values`);
        const shape = ks.length === 4 ? [1, ch, 1, 1] : [ch];
        const centered = this.act(`${name}/centered`, ks);
        this.node(`${name}/sub`, 'Sub', [x, this.constant(`${name}/mean`, shape, mean)], [centered]);
        const y = this.act(name, ks);
        this.node(name, 'Mul', [centered, this.constant(`${name}/inv_std`, shape, variance.map((v) => 1 / Math.max(Math.sqrt(v), 1e-7)))], [y]);
        return y;
      }
      default:
        throw unsupported(this.source, `${where}: layer class '${cls}' is not supported`);
    }
  }
}

/** Keras's activation spelling (a string, or a serialized function in Keras 3) in lower case. */
function activationOf(a: unknown): string {
  if (typeof a === 'string') return a.toLowerCase();
  if (isObj(a) && typeof a.config === 'string') return a.config.toLowerCase();
  if (isObj(a) && typeof a.class_name === 'string') return a.class_name.toLowerCase();
  return String(a);
}
