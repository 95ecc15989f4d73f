// What differs between precisions once a graph is scheduled (src/runtime/compile.ts): how feeds are checked and
// written to their buffers, how constants and read-backs are laid out, what an output holds, and how host steps run.
// The executor (executor.ts) does everything else alike. A precision is a value of this interface, next to a compile
// function and a column of the kernel registry: fp32, int8, and fp16 (the float kernels with f16 tensors in memory:
// constants and feeds converted to f16 on the host as they are uploaded, outputs read back as f16 and returned as
// float32).

import { runFloatHost, runsOnFloatHost } from './host-float.js';
import { type DType, type Graph, type Node, type Tensor, type TensorData, numel } from '../graph/ir.js';
import { invalid, unsupported } from '../errors.js';
import { type Inputs, type Value, runInt8Reference } from '../quant/run-reference.js';
import { type QType, dequantize, quantizeF32 } from '../quant/reference.js';
import { type Int8Program, pack8, unpack8 } from '../../kernels/int8/common.js';
import { int8QuantizeInput } from '../../kernels/int8/quantize-input.js';
import type { KernelLimits } from '../../kernels/program.js';
import { isQ } from './compile.js';
import { fromHalf, toHalf } from './half.js';
import { halfFeedProgram } from '../../kernels/f16.js';

export type PrecisionName = 'fp32' | 'int8' | 'fp16';

/** The precisions a user picks for a float model (`--precision`, `precision`): int8 comes from a quantized model. */
export const floatPrecisions = ['fp32', 'fp16'] as const;
export type FloatPrecision = (typeof floatPrecisions)[number];

/** Per input: real values (Float32Array), or (int8) raw 8-bit values of a quantized input. */
export type Feeds = Record<string, Float32Array | Int8Array | Uint8Array>;

export interface RunOutput {
  shape: number[];
  dtype: DType;
  /** Real values: the float output as computed, or the 8-bit values dequantized. */
  data: Float32Array;
  /** The raw 8-bit values of a quantized output. */
  raw?: Int8Array | Uint8Array;
  quant?: { scale: number; zeroPoint: number };
}

export type RunResult = Record<string, RunOutput>;

/** Feeds as checked: host values by tensor, and float feeds that a feed program converts on the GPU. */
export interface HostFeeds { values: Map<string, Value>; floats: Map<string, Float32Array> }

export interface Precision {
  readonly name: PrecisionName;
  /** Prefix of its pipelines' cache keys (programs of two precisions may share a cacheKey). */
  readonly keyPrefix: string;
  /** What creating a session is called in GPU error messages. */
  readonly creating: string;
  /** The contents of a constant tensor's buffer, and whether it counts as weights. */
  constant(t: Tensor, where: string): { data: ArrayBufferView; weight: boolean };
  /** Checks run()'s feeds; `gpuConverted`: inputs whose float feeds a feed program converts on the GPU. */
  feeds(g: Graph, feeds: Feeds, gpuConverted: ReadonlySet<string>): HostFeeds;
  /** The bytes written to a tensor's buffer for its host value (`name`: the tensor's, where the type depends on it). */
  upload(v: Value, name?: string): ArrayBufferView;
  /** The host value of tensor `t` from its buffer's bytes. */
  readBack(t: Tensor, bytes: ArrayBuffer): Value;
  /** run()'s output for graph output `t` with host value `v` (of `t` or of the tensor it aliases). */
  output(t: Tensor, v: Value): RunOutput;
  /** A program that converts a float feed of input `t` on the GPU (int8: quantization), if any. */
  feedProgram(t: Tensor, name: string, limits: KernelLimits): Int8Program | undefined;
  /** Runs host nodes, reading and adding to `values` (`root`: the tensor an alias reads). */
  runHost(g: Graph, values: Map<string, Value>, nodes: Node[], root: (t: string) => string): void;
  /** profile() without feeds is refused (host steps need values): the message, or undefined. */
  readonly profileNeedsFeeds?: string;
}

function toF32(d: TensorData, where: string): Float32Array {
  if (d instanceof Float32Array) return d;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) {
    const r = new Float32Array(d.length);
    for (let i = 0; i < d.length; i++) r[i] = Number(d[i]);
    return r;
  }
  if (d instanceof Uint16Array) throw unsupported(where, 'float16 data is not supported by the executor');
  return Float32Array.from(d as ArrayLike<number>);
}

/** Feed checks every precision shares: an object, naming only inputs. */
function checkNames(g: Graph, feeds: Feeds, what: string): void {
  if (typeof feeds !== 'object' || feeds === null) throw invalid(g.source, `run() takes an object of named ${what}`);
  for (const k of Object.keys(feeds)) if (!g.inputs.includes(k)) throw invalid(g.source, `'${k}' is not an input of the model (inputs: ${g.inputs.join(', ')})`);
}

/** Float32Array feeds, one per input, of the input's element count. */
function floatFeeds(g: Graph, feeds: Feeds): HostFeeds {
  checkNames(g, feeds, 'Float32Arrays');
  const values = new Map<string, Value>();
  for (const x of g.inputs) {
    const v = feeds[x];
    const shape = [...g.tensors.get(x)!.shape];
    const n = shape.reduce((a, b) => a * b, 1);
    if (!(v instanceof Float32Array)) throw invalid(g.source, `input '${x}' must be a Float32Array of ${n} values [${shape.join(',')}]`);
    if (v.length !== n) throw invalid(g.source, `input '${x}' has ${v.length} values, the model takes [${shape.join(',')}] = ${n}`);
    values.set(x, { data: v, shape });
  }
  return { values, floats: new Map() };
}

export const fp32: Precision = {
  name: 'fp32',
  keyPrefix: '',
  creating: 'creating the session',
  constant: (t, where) => ({ data: toF32(t.data!, where), weight: true }),
  feeds: (g, feeds) => floatFeeds(g, feeds),
  upload: (v) => v.data as Float32Array,
  readBack: (t, bytes) => ({ data: new Float32Array(bytes.slice(0, 4 * numel(t.shape))), shape: [...t.shape] }),
  output: (t, v) => ({ data: v.data as Float32Array, shape: [...t.shape], dtype: 'float32' }),
  feedProgram: () => undefined,
  runHost: runFloatHost,
};

/**
 * The float kernels with f16 tensors (kernels/f16.ts). The host API stays float32: feeds are written as float32 and
 * rounded to f16 on the GPU by a feed program (kernels/f16.ts halfFeedProgram; on the host it took 6-9 ms per 224x224
 * RGB image), outputs are read back as f16 and widened on the host (0.5 ms per 150k values); constants are rounded
 * on the host once, when the session is made. `keepF32`: tensors (with their aliases) that the schedule keeps f32
 * (src/runtime/f16-islands.ts, Compiled.f32Tensors): uploaded, fed and read back as float32.
 */
export function mixedFp16(keepF32: ReadonlySet<string>): Precision {
  const half = (name: string | undefined) => name === undefined || !keepF32.has(name);
  return {
    name: 'fp16',
    keyPrefix: 'f16:',
    creating: 'creating the fp16 session',
    constant: (t, where) => {
      const d = toF32(t.data!, where);
      return { data: half(t.name) ? toHalf(d) : d, weight: true };
    },
    feeds(g, feeds, gpuConverted) {
      const f = floatFeeds(g, feeds);
      for (const x of gpuConverted) {
        const v = f.values.get(x);
        if (v) { f.floats.set(x, v.data as Float32Array); f.values.delete(x); }
      }
      return f;
    },
    upload: (v, name) => (half(name) ? toHalf(v.data as Float32Array) : v.data as Float32Array),
    readBack: (t, bytes) => ({
      data: half(t.name) ? fromHalf(new Uint16Array(bytes.slice(0, 2 * numel(t.shape)))) : new Float32Array(bytes.slice(0, 4 * numel(t.shape))),
      shape: [...t.shape],
    }),
    output: (t, v) => ({ data: v.data as Float32Array, shape: [...t.shape], dtype: 'float32' }),
    feedProgram: (t, name, limits) => (half(t.name) ? halfFeedProgram(numel(t.shape), limits, name) : undefined),
    runHost: runFloatHost,
  };
}

/** Every tensor f16. */
export const fp16: Precision = mixedFp16(new Set());

export const int8: Precision = {
  name: 'int8',
  keyPrefix: 'int8:',
  creating: 'creating the integer session',
  profileNeedsFeeds: 'profiling the integer executor needs inputs',
  constant: (t) => ({ data: pack8(t.data as ArrayLike<number>), weight: false }),
  feeds(g, feeds, gpuConverted) {
    checkNames(g, feeds, 'typed arrays');
    const values = new Map<string, Value>();
    const floats = new Map<string, Float32Array>();
    for (const x of g.inputs) {
      const t = g.tensors.get(x)!;
      const v = feeds[x];
      const shape = [...t.shape], n = numel(shape);
      const want = `a Float32Array${isQ(t) ? ` or ${t.dtype === 'int8' ? 'Int8Array' : 'Uint8Array'}` : ''} of ${n} values [${shape.join(',')}]`;
      if (!(v instanceof Float32Array || v instanceof Int8Array || v instanceof Uint8Array)) throw invalid(g.source, `input '${x}' must be ${want}`);
      if (v.length !== n) throw invalid(g.source, `input '${x}' has ${v.length} values, the model takes [${shape.join(',')}] = ${n}`);
      const raw = !(v instanceof Float32Array);
      if (isQ(t)) {
        if (raw && (v instanceof Int8Array) !== (t.dtype === 'int8')) throw invalid(g.source, `input '${x}' is ${t.dtype}: give ${want}`);
        const q = { scale: t.quant!.scale[0], zeroPoint: t.quant!.zeroPoint[0] ?? 0 };
        if (!raw && gpuConverted.has(x)) floats.set(x, v as Float32Array);
        else values.set(x, { data: raw ? v : quantizeF32(v, q, t.dtype), shape });
      } else if (raw) {
        // Raw values of a float input: those of the QuantizeLinear that is its only reader.
        const readers = g.nodes.filter((nd) => nd.inputs.includes(x));
        const q = readers.length === 1 && readers[0].op === 'QuantizeLinear' ? g.tensors.get(readers[0].outputs[0]) : undefined;
        if (!q || !isQ(q) || (v instanceof Int8Array) !== (q.dtype === 'int8')) {
          throw invalid(g.source, `input '${x}' is float32: give a Float32Array${q && isQ(q) ? `, or the ${q.dtype} values of '${q.name}'` : ''}`);
        }
        values.set(q.name, { data: v, shape: [...q.shape] });
      } else {
        values.set(x, { data: v, shape });
      }
    }
    return { values, floats };
  },
  // 8-bit values of whole words are their upload already (a batch of camera bytes is not copied once more on the host);
  // others are packed, zeros past the data.
  upload: (v) => ((v.data instanceof Uint8Array || v.data instanceof Int8Array) && v.data.length % 4 === 0 && v.data.length > 0 ? v.data : pack8(v.data as ArrayLike<number>)),
  readBack: (t, bytes) => ({ data: unpack8(new Uint32Array(bytes.slice(0)), numel(t.shape), t.dtype as QType), shape: [...t.shape] }),
  output(t, v) {
    if (isQ(t)) {
      const quant = { scale: t.quant!.scale[0], zeroPoint: t.quant!.zeroPoint[0] ?? 0 };
      // An aliased output (a Reshape) has the values of its root, typed as the output.
      const raw = v.data as Int8Array | Uint8Array;
      return { shape: [...t.shape], dtype: t.dtype, data: dequantize(raw, quant), raw, quant };
    }
    return { shape: [...t.shape], dtype: t.dtype, data: Float32Array.from(v.data as ArrayLike<number>) };
  },
  feedProgram(t, name, limits) {
    if (!isQ(t)) return undefined;
    return int8QuantizeInput(numel(t.shape), { scale: t.quant!.scale[0], zeroPoint: t.quant!.zeroPoint[0] ?? 0 }, t.dtype as QType, limits, name);
  },
  runHost(g, values, stepNodes, root) {
    // A raw feed stands for the QuantizeLinear that reads a float input: skip the nodes whose outputs are known.
    const nodes = stepNodes.filter((n) => !n.outputs.every((y) => !y || values.has(y)));
    // Runs of integer nodes go to the integer reference; a float host node (TFLite_Detection_PostProcess) between them
    // reads real values.
    let run: Node[] = [];
    for (const n of nodes) {
      if (!runsOnFloatHost(n)) { run.push(n); continue; }
      runIntegerHost(g, values, run, root);
      run = [];
      runDequantizedHost(g, values, n, root);
    }
    runIntegerHost(g, values, run, root);
  },
};

function hostValue(values: Map<string, Value>, x: string, root: (t: string) => string): Value {
  const v = values.get(x) ?? values.get(root(x));
  if (!v) throw new Error(`internal: host step needs '${x}', which has no value`);
  return v;
}

/** Integer host nodes, in order, with the integer reference (TFLite's arithmetic). */
function runIntegerHost(g: Graph, values: Map<string, Value>, nodes: Node[], root: (t: string) => string): void {
  if (!nodes.length) return;
  const made = new Set(nodes.flatMap((n) => n.outputs));
  const reads = [...new Set(nodes.flatMap((n) => n.inputs.filter((x) => x && !made.has(x) && !g.tensors.get(x)!.data)))];
  const inputs: Inputs = {};
  for (const x of reads) inputs[x] = hostValue(values, x, root).data;
  const res = runInt8Reference({ ...g, inputs: reads, outputs: [...made].filter((y) => y), nodes }, inputs);
  for (const y of made) if (y) values.set(y, res.values.get(y)!);
}

/**
 * A float host node of an integer graph: its 8-bit inputs, computed or constant (SSD anchors), dequantized first,
 * as TFLite's detection_postprocess.cc does for uint8/int8 box encodings, class predictions and anchors.
 */
function runDequantizedHost(g: Graph, values: Map<string, Value>, n: Node, root: (t: string) => string): void {
  const tensors = new Map(g.tensors);
  const real = new Map<string, Value>();
  for (const x of n.inputs) {
    if (!x) continue;
    const t = g.tensors.get(x)!;
    if (!isQ(t)) {
      if (t.data === undefined) real.set(x, hostValue(values, x, root));
      continue;
    }
    if (t.quant!.scale.length !== 1) throw unsupported(`${g.source}: node '${n.name}' (${n.op})`, `input '${x}' is quantized per channel; TFLite dequantizes it per tensor`);
    const q = { scale: t.quant!.scale[0], zeroPoint: t.quant!.zeroPoint[0] ?? 0 };
    if (t.data !== undefined) tensors.set(x, { ...t, dtype: 'float32', quant: undefined, data: dequantize(t.data as ArrayLike<number>, q) });
    else {
      const v = hostValue(values, x, root);
      real.set(x, { data: dequantize(v.data as ArrayLike<number>, q), shape: v.shape });
    }
  }
  runFloatHost({ ...g, tensors }, real, [n], (t) => t);
  for (const y of n.outputs) if (y) values.set(y, real.get(y)!);
}

export const precisions: Record<PrecisionName, Precision> = { fp32, int8, fp16 };
