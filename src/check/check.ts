// The check behind `fcm-opt check MODEL [--hw CFG] [--unfused] [--json] [--per-layer]`: runs a fixed-seed input through fcm-opt
// (WebGPU) and onnxruntime-node (CPU) and reports, per output, max absolute and relative error, cosine
// similarity and top-1/top-5 agreement (src/runtime/compare.ts). --per-layer also compares every tensor both
// sides compute (exposed as extra outputs of the ONNX model for onnxruntime, read back from fcm-opt's session)
// and names the first node that goes wrong. Exit 1 over tolerance.
//
// TFLite files: onnxruntime cannot read them, so the reference is onnxruntime on the ONNX export of the graph
// fcm-opt runs (src/check/tflite.ts): the imported float graph, or for an int8 file the dequantized float graph
// For int8 files both paths are checked: the dequantized float path against onnxruntime (and, for information,
// against TFLite's integer arithmetic in LSB), and the integer kernels against TFLite's integer arithmetic
// (src/quant; over 1 LSB fails the check).
// Inputs and outputs of rank 4 are NCHW, the IR's layout, whatever the file's (TFLite's NHWC is converted at
// import).

import { loadOnnxruntime } from '../onnxruntime.js';
import { budgetFor, maxMessageBytes, readInputFile } from '../input-file.js';
import { FcmError, invalid, unsupported } from '../errors.js';
import { defaultMaxMemory } from '../../converters/options.js';
import type { Graph } from '../graph/ir.js';
import { detectFormat, readModelFile } from '../graph/load.js';
import { type Int8Comparison, type ReferenceStage, type RunPath, compareWithInt8Reference, gridInputs, tfliteReference } from './tflite.js';
import { mediapipeReference } from './mediapipe-reference.js';
import { constNumbers } from '../graph/util.js';
import { decodeModel, encodeModel, onnx } from '../../converters/onnx/codec.js';
import { type Comparison, compareOutputs, f16Bounds, seededInput } from '../runtime/compare.js';
import { acquireGpu } from '../runtime/device.js';
import { createInt8Session, createSession } from '../pipeline/session.js';
import { loadChecked, prepareForRun } from '../pipeline/pipeline.js';
import { checkMemory } from '../memory-budget.js';
import type { FloatPrecision } from '../runtime/precision.js';
import type { Plan } from '../planner/plan.js';

export interface CheckOptions {
  hw?: string;
  unfused?: boolean;
  perLayer?: boolean;
  /** Squeeze-excite blocks as one dispatch (SessionOptions.squeezeExcite; never with perLayer). */
  squeezeExcite?: boolean;
  seed?: number;
  batch?: number;
  inputShapes?: Record<string, number[]>;
  /** ImportOptions.maxMemory: budget for importing the model (default 4 GiB). */
  maxMemory?: number;
  /** Relative tolerance: max |ours - reference| <= tolerance * max(1, max |reference|) (default 1e-4, compare.ts);
   *  fp16: tolerance * max |reference| (compare.ts f16Tolerance, default f16Bounds.rel). */
  tolerance?: number;
  /** What fcm-opt runs the model in (default fp32); fp16 is compared with the fp32 reference under the f16 bounds. */
  precision?: FloatPrecision;
  /** fp16: the tensors kept f32 (SessionOptions.fp16.keepF32; default 'auto'). */
  keepF32?: 'auto' | 'none' | string[];
  /** Per-element criterion instead (polygraphy's): |ours - reference| <= atol + rtol * |reference| everywhere. */
  atol?: number;
  rtol?: number;
  /** The inputs to use instead of the seeded ones, by input name (each must match its input's shape). */
  inputs?: Record<string, { data: Float32Array; shape: number[] }>;
  /** Called with the inputs both sides get (for `--save-inputs`), before they run. */
  onInputs?: (feeds: Record<string, { data: Float32Array; shape: number[] }>) => void | Promise<void>;
  /**
   * Classification outputs and their class axes (negative from the end): top-1 and top-5 are compared per position
   * of the other axes (`--classes NAME[:AXIS]`). Outputs a Softmax makes are classifications along its axis without
   * being named.
   */
  classes?: Record<string, number>;
  /**
   * A saved plan to run instead of planning (`--load-plan`: `fcm-opt plan --plan FILE`, e.g. a tuned one with its kernel
   * choices), so that the plan a bench timed is the plan checked. Not with `unfused`.
   */
  plan?: Plan;
  /** Debugging and tests: changes fcm-opt's graph only (after planning), e.g. to see --per-layer find a fault. */
  transformGraph?: (g: Graph) => Graph;
}

export interface OutputCheck extends Comparison { name: string; shape: number[] }

/**
 * The classification outputs of `g` among `compared`, with their class axes: those `given` (name -> axis), and the
 * outputs a Softmax makes (along its axis).
 */
export function classificationOutputs(g: Graph, compared: readonly string[], given: Record<string, number> = {}, source = g.source): Map<string, number> {
  const out = new Map<string, number>();
  for (const n of g.nodes) {
    if (n.op !== 'Softmax' && n.op !== 'LogSoftmax') continue;
    const y = n.outputs[0];
    const rank = g.tensors.get(y)?.shape.length ?? 0;
    const axis = typeof n.attrs.axis === 'number' ? n.attrs.axis : -1;
    if (compared.includes(y) && rank > 0) out.set(y, axis < 0 ? rank + axis : axis);
  }
  for (const [y, axis] of Object.entries(given)) {
    if (!compared.includes(y)) throw invalid(source, `--classes names '${y}', which is not an output compared (${compared.map((c) => `'${c}'`).join(', ')})`);
    const rank = g.tensors.get(y)?.shape.length ?? 0;
    if (!Number.isInteger(axis) || axis < -rank || axis >= rank) throw invalid(source, `--classes: axis ${axis} of output '${y}', which has rank ${rank}`);
    out.set(y, axis < 0 ? rank + axis : axis);
  }
  return out;
}
export interface LayerCheck extends Comparison { node: string; op: string; tensor: string }

export interface CheckReport {
  model: string;
  format: 'onnx' | 'tflite' | 'keras';
  /** 'int8-dequantized': an int8 model run with dequantized weights and activations on float kernels. */
  path: RunPath;
  /** What onnxruntime ran: the model file, or the ONNX export of the imported (float or dequantized) graph. */
  reference: 'model' | 'onnx-export';
  /** int8 files: fcm-opt's outputs against TFLite's integer arithmetic, in LSB (reported, not a pass/fail
   *  criterion: see src/check/tflite.ts); a string when the integer reference cannot run the model. */
  int8Reference?: Int8Comparison[] | string;
  /** int8 models: the integer kernels' outputs vs TFLite's integer arithmetic (over 1 LSB fails the check). */
  int8Kernels?: Int8Comparison[] | string;
  int8HostNodes?: string[];
  /** 'saved': the plan of CheckOptions.plan. */
  plan: 'auto' | 'unfused' | 'saved';
  /** What fcm-opt ran the model in (absent: fp32; the integer kernels' check is separate: int8Kernels). */
  precision?: FloatPrecision;
  /** fp16: the tensors the session kept f32 (src/runtime/f16-islands.ts), aliases included. */
  f32Tensors?: string[];
  /** fp16: the float tensors of the session's graph (f32Tensors out of these). */
  floatTensors?: number;
  device: string;
  outputs: OutputCheck[];
  layers?: LayerCheck[];
  /** The first node (in execution order) whose output is over tolerance. */
  firstBadNode?: string;
  /** Nodes the reference cannot run (no ONNX equivalent): `outputs` are then their inputs, and the graph outputs
   *  that do not depend on them (src/check/tflite.ts referenceCut). */
  notCompared?: { node: string; op: string; why: string }[];
  /** Host nodes without an ONNX equivalent that the reference computes with a float64 transcription of their
   *  definition between its onnxruntime stages (src/check/mediapipe-reference.ts). */
  float64Nodes?: { node: string; op: string }[];
  ok: boolean;
}

const isIntegerInput = (d: string) => d === 'int64' || d === 'int32';

/**
 * onnxruntime on the CPU, one thread without spinning: spinning threads starve a software Vulkan (lavapipe). Feeds are
 * float32; `dtypes` names the integer inputs onnxruntime takes as int32/int64 (their values rounded).
 */
export async function runOrt(bytes: Uint8Array, feeds: Record<string, { data: Float32Array; shape: number[] }>, outputs: string[], source: string,
  dtypes: Record<string, string> = {}) {
  const ort = await loadOnnxruntime('check (the onnxruntime reference)');
  let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  try {
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3,
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    });
  } catch (e) {
    throw unsupported(source, `onnxruntime cannot load the model (${(e instanceof Error ? e.message : String(e)).split('\n')[0]})`);
  }
  try {
    const f: Record<string, InstanceType<typeof ort.Tensor>> = {};
    for (const [k, v] of Object.entries(feeds)) {
      const dt = dtypes[k];
      f[k] = dt === 'int64' ? new ort.Tensor('int64', BigInt64Array.from(v.data, (x) => BigInt(Math.round(x))), v.shape)
        : dt === 'int32' ? new ort.Tensor('int32', Int32Array.from(v.data, (x) => Math.round(x)), v.shape)
          : new ort.Tensor('float32', v.data, v.shape);
    }
    const r = await session.run(f, outputs);
    const out = new Map<string, Float32Array>();
    for (const name of outputs) {
      const t = r[name];
      if (t && t.type === 'float32') out.set(name, t.data as Float32Array);
    }
    return out;
  } finally {
    await session.release();
  }
}

/**
 * The reference's values of `wanted` (and of everything its stages give): onnxruntime on each ONNX stage, fed the
 * inputs and the values of earlier stages; host stages computed by the float64 transcription of their definition
 * (mediapipe-reference.ts), rounded to float32 as the next ONNX stage takes them.
 */
async function runReference(stages: ReferenceStage[], bytes: (Uint8Array | undefined)[], g: Graph, feeds: Record<string, { data: Float32Array; shape: number[] }>,
  wanted: string[], source: string, dtypes: Record<string, string>): Promise<Map<string, Float32Array>> {
  const values = new Map<string, Float32Array>(Object.entries(feeds).map(([k, v]) => [k, v.data]));
  const value = (x: string, reader: string) => {
    const v = values.get(x);
    if (v) return v;
    const t = g.tensors.get(x);
    if (t?.data !== undefined) return Float32Array.from(t.data instanceof Float32Array ? t.data : constNumbers(t, reader));
    throw unsupported(source, `the reference has no float32 value of '${x}' for ${reader} (onnxruntime gives float32 tensors only)`);
  };
  const outputs = bytes.map((b) => new Set(b ? decodeModel(b, source).graph!.output.map((o) => o.name) : []));
  for (const [i, st] of stages.entries()) {
    if (st.kind === 'host') {
      const where = `node '${st.node.name}' (${st.node.op})`;
      values.set(st.node.outputs[0], Float32Array.from(mediapipeReference(g, st.node, (x) => value(x, where))));
      continue;
    }
    const stageFeeds = Object.fromEntries(st.inputs.map((x) => [x, { data: value(x, 'onnxruntime'), shape: [...g.tensors.get(x)!.shape] }]));
    // One stage: the model's own outputs and the --per-layer ones; several: also what later stages read.
    const names = stages.length === 1 ? wanted : [...new Set([...st.outputs, ...wanted.filter((y) => outputs[i].has(y))])];
    const got = await runOrt(bytes[i]!, stageFeeds, names, source, dtypes);
    for (const [k, v] of got) values.set(k, v);
  }
  return values;
}

export async function runCheck(model: string | Uint8Array, options: CheckOptions = {}, source = typeof model === 'string' ? model : '<bytes>'): Promise<CheckReport> {
  let bytes: Uint8Array;
  if (typeof model === 'string') {
    // A bundle's member (FILE.task#MEMBER) is its bytes and its name from here on.
    const m = await readModelFile(model, { maxMemory: options.maxMemory, source: source === model ? undefined : source });
    ({ bytes, source } = m);
    if (m.bundled) model = bytes;
  } else bytes = model;
  const format = detectFormat(typeof model === 'string' ? model : bytes, bytes);
  // A Keras model.json is loaded from its path: its weight shards lie next to it.
  const { graph: imported } = await loadChecked(format === 'keras' && typeof model === 'string' ? model : bytes, { batch: options.batch, inputShapes: options.inputShapes, maxMemory: options.maxMemory, source });
  // TFLite and Keras: onnxruntime runs the ONNX export of the imported graph.
  const tfl = format === 'tflite' || format === 'keras' ? tfliteReference(imported) : undefined;
  const g0 = tfl ? tfl.floatGraph : imported;
  // What onnxruntime runs: the model, or the stages of the TFLite/Keras reference (ONNX parts, and between them host
  // nodes computed in float64: src/check/tflite.ts).
  const stages: ReferenceStage[] = tfl ? tfl.stages : [{ kind: 'onnx', onnx: bytes, inputs: imported.inputs, outputs: imported.outputs }];
  if (options.plan && options.unfused) throw invalid(source, 'a saved plan and unfused both given: run one of them');
  const plan: 'auto' | 'unfused' | Plan = options.plan ?? (options.unfused ? 'unfused' : 'auto');
  const planName = typeof plan === 'string' ? plan : 'saved';
  const precision = options.precision ?? 'fp32';
  // --per-layer compares the layers of squeeze-excite blocks one by one: they stay apart there.
  const squeezeExcite = options.perLayer ? false : options.squeezeExcite;
  const prepared = await prepareForRun(g0, { plan, hw: options.hw, precision, squeezeExcite });
  const g = options.transformGraph ? options.transformGraph(prepared) : prepared;

  // Tensors both sides compute: node outputs of the executed graph that are value names of the ONNX model.
  const protos = stages.map((st) => (st.kind === 'onnx' ? decodeModel(st.onnx, source) : undefined));
  const onnxNames = new Set<string>();
  for (const proto of protos) for (const n of proto?.graph!.node ?? []) for (const y of n.output) if (y) onnxNames.add(y);
  // The host nodes the reference computes in float64 give their outputs to --per-layer too.
  for (const st of stages) if (st.kind === 'host') for (const y of st.node.outputs) if (y) onnxNames.add(y);
  const layerTensors: { node: string; op: string; tensor: string }[] = [];
  if (options.perLayer) {
    for (const n of g.nodes) {
      for (const y of n.outputs) {
        if (y && onnxNames.has(y) && !g.outputs.includes(y) && g.tensors.get(y)?.dtype === 'float32') layerTensors.push({ node: n.name, op: n.op, tensor: y });
      }
    }
    const wanted = new Set(layerTensors.map((l) => l.tensor));
    for (const proto of protos) {
      if (!proto) continue;
      const existing = new Set(proto.graph!.output.map((o) => o.name));
      for (const n of proto.graph!.node) for (const y of n.output) if (wanted.has(y) && !existing.has(y)) proto.graph!.output.push(new onnx.ValueInfoProto({ name: y }));
    }
  }

  // The check feeds seeded float32 values, rounded for an int32/int64 input (Silero VAD's sample rate): onnxruntime gets
  // them as integers, fcm-opt as float32 (exact up to 2^24). Other types cannot take them.
  for (const x of g.inputs) {
    const dtype = g.tensors.get(x)!.dtype;
    if (dtype !== 'float32' && !isIntegerInput(dtype)) throw unsupported(`${source}: input '${x}'`, `is ${dtype}; check feeds seeded float32 or integer inputs only`);
  }
  const seeded: Record<string, Float32Array> = {};
  if (options.inputs) {
    for (const name of Object.keys(options.inputs)) {
      if (!g.inputs.includes(name)) throw invalid(`${source}: given input '${name}'`, `the model's inputs are ${g.inputs.map((x) => `'${x}'`).join(', ')}`);
    }
  }
  g.inputs.forEach((x, i) => {
    const want = g.tensors.get(x)!.shape;
    const given = options.inputs?.[x];
    if (options.inputs && !given) throw invalid(source, `input '${x}' is not among the given inputs`);
    if (given && (given.shape.length !== want.length || given.shape.some((d, k) => d !== want[k]))) {
      throw invalid(`${source}: given input '${x}'`, `has shape (${given.shape.join(', ')}), the model's is [${want.join(',')}]`);
    }
    seeded[x] = given ? given.data : seededInput(want.reduce((a, b) => a * b, 1), (options.seed ?? 0) + i);
    // An integer input takes integer values, the same on both sides (fcm-opt feeds them as float32).
    if (isIntegerInput(g.tensors.get(x)!.dtype)) seeded[x] = seeded[x].map(Math.round);
  });
  // A quantized input (uint8/int8 TFLite input) takes values on its grid, so every path sees the same input.
  const grid = tfl?.path === 'int8-dequantized' ? gridInputs(imported, seeded) : undefined;
  const feeds: Record<string, { data: Float32Array; shape: number[] }> = {};
  for (const x of g.inputs) feeds[x] = { data: grid ? grid.real[x] : seeded[x], shape: [...g.tensors.get(x)!.shape] };
  await options.onInputs?.(feeds);
  // onnxruntime first: its result does not depend on ours, and its threads are idle by the time the GPU runs.
  const refBytes = stages.map((st, i) => (st.kind === 'onnx' ? (options.perLayer ? encodeModel(protos[i]!) : st.onnx) : undefined));
  // onnxruntime keeps the model bytes and its own copy of the weights, and (without reuse, at most) every activation.
  let activations = 0;
  for (const t of g.tensors.values()) if (t.data === undefined && !t.shapeUnknown) activations += 4 * t.shape.reduce((a, b) => a * b, 1);
  const largest = Math.max(...refBytes.map((b) => b?.byteLength ?? 0));
  checkMemory(options.maxMemory, 2 * largest + activations, "onnxruntime's session of the reference model", source);
  const intDtypes = Object.fromEntries(g.inputs.map((x) => [x, g.tensors.get(x)!.dtype]).filter(([, d]) => d === 'int64' || d === 'int32'));
  const ref = await runReference(stages, refBytes, tfl?.floatGraph ?? imported, feeds,
    [...new Set([...(tfl?.cut.length ? tfl.compared : g.outputs), ...layerTensors.map((l) => l.tensor)])], source, intDtypes);

  // The tensors compared: the graph outputs, or the inputs of the nodes the reference cannot run.
  const compared = tfl?.cut.length ? tfl.compared : g.outputs;
  const classes = classificationOutputs(g0, compared, options.classes, source);
  const extra = [...new Set([...layerTensors.map((l) => l.tensor), ...compared.filter((y) => !g.outputs.includes(y))])];
  const session = await createSession(g, {
    plan: 'unfused', precision, extraOutputs: extra, maxMemory: options.maxMemory, squeezeExcite,
    ...(options.keepF32 !== undefined ? { fp16: { keepF32: options.keepF32 } } : {}),
  });
  try {
    const ours = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.data])));
    const elementwise = options.atol !== undefined || options.rtol !== undefined ? { atol: options.atol ?? 0, rtol: options.rtol ?? 0 } : undefined;
    const outputs: OutputCheck[] = compared.map((y) => {
      const r = ref.get(y);
      if (!r) throw unsupported(source, `onnxruntime did not return output '${y}' as float32`);
      return { name: y, shape: ours[y].shape, ...compareOutputs(ours[y].data, r, ours[y].shape, options.tolerance, elementwise, precision, classes.get(y)) };
    });
    const report: CheckReport = {
      model: source, format, path: tfl?.path ?? 'float', reference: tfl ? 'onnx-export' : 'model', plan: planName, precision,
      device: describeDevice(await acquireGpu()), outputs, ok: outputs.every((o) => o.ok),
    };
    if (precision === 'fp16') {
      report.f32Tensors = session.stats().f32Tensors;
      report.floatTensors = [...session.graph.tensors.values()].filter((t) => t.dtype === 'float32').length;
    }
    if (tfl?.cut.length) report.notCompared = tfl.cut;
    if (tfl?.bridged.length) report.float64Nodes = tfl.bridged;
    if (grid) {
      try {
        report.int8Reference = compareWithInt8Reference(imported, grid.int8, ours, compared);
      } catch (e) {
        if (!(e instanceof FcmError) || e.kind !== 'unsupported') throw e;
        report.int8Reference = e.message;
      }
    }
    if (grid) {
      // The integer kernels on the same grid input: within 1 LSB of TFLite's integer arithmetic.
      try {
        // With a cut (host ops), the tensors compared are read back as extra outputs of the integer session too.
        const i8Graph = { ...imported, outputs: [...new Set([...imported.outputs, ...compared])] };
        const i8 = await createInt8Session(i8Graph, { plan, hw: options.hw });
        try {
          report.int8Kernels = compareWithInt8Reference(imported, grid.int8, await i8.run(grid.real), compared);
          report.int8HostNodes = i8.stats().hostNodes;
        } finally {
          i8.dispose();
        }
        if (report.int8Kernels.some((c) => c.maxLsb > 1)) report.ok = false;
      } catch (e) {
        if (!(e instanceof FcmError) || e.kind !== 'unsupported') throw e;
        report.int8Kernels = e.message;
      }
    }
    if (options.perLayer) {
      report.layers = [];
      for (const l of layerTensors) {
        const r = ref.get(l.tensor);
        if (!r) continue;
        // Intermediates are feature maps, not classifications: only the error decides.
        const c = compareOutputs(ours[l.tensor].data, r, [1, r.length], options.tolerance, elementwise, precision);
        if (!elementwise) c.ok = c.maxAbsError <= c.tolerance && (precision !== 'fp16' || c.cosine >= f16Bounds.cosine);
        report.layers.push({ ...l, ...c });
      }
      report.firstBadNode = report.layers.find((l) => !l.ok)?.node;
      if (report.firstBadNode === undefined && !report.ok) report.firstBadNode = g.nodes.find((n) => n.outputs.some((y) => outputs.find((o) => o.name === y && !o.ok)))?.name;
    }
    return report;
  } finally {
    session.dispose();
  }
}

const describeDevice = (ctx: Awaited<ReturnType<typeof acquireGpu>>) =>
  [ctx.adapterInfo.description, ctx.adapterInfo.device, ctx.adapterInfo.vendor].filter((s) => s).join(' ') || 'WebGPU adapter';

const fmt = (v: number) => (Number.isFinite(v) ? v.toExponential(3) : String(v));

/** A classification output's top-1 and top-5 against the reference's, per row (each position of the other axes). */
export function classesLine(o: Comparison): string {
  const t1 = Math.round(o.top1 * o.rows);
  const top5 = o.top5 === 1 ? 'every row\'s top-5 set equal' : `top-5 sets ${(100 * o.top5).toFixed(1)}% shared`;
  return `top-1 ${t1 === o.rows ? 'equal' : 'DIFFERS'} (${t1} of ${o.rows} row${o.rows === 1 ? '' : 's'}${o.top1Ties ? `; ${o.top1Ties} a near tie within tolerance` : ''}), ${top5}`;
}

/** The rule a comparison was judged by, as the report prints it. */
const criterion = (c: Comparison) => (c.overCount !== undefined
  ? `atol ${fmt(c.atol ?? 0)}, rtol ${fmt(c.rtol ?? 0)}: ${c.overCount} element${c.overCount === 1 ? '' : 's'} over`
  : `tolerance ${fmt(c.tolerance)}`);

export function formatCheck(r: CheckReport): string {
  const lines = [`${r.model}: fcm-opt (${r.plan}${r.precision === 'fp16' ? ', fp16' : ''}, ${r.device}) vs onnxruntime CPU${r.reference === 'onnx-export' ? ' on the ONNX export of the imported graph' : ''}`];
  if (r.precision === 'fp16') {
    lines.push(`  fp16 against the fp32 reference: max abs <= ${f16Bounds.rel} x max |reference| (or --tolerance), cosine >= ${f16Bounds.cosine}, top-1 equal (or a near tie within the tolerance)`);
    const kept = r.f32Tensors ?? [];
    const of = r.floatTensors !== undefined ? ` of ${r.floatTensors}` : '';
    lines.push(kept.length ? `  kept f32 (f16 rounding amplified there): ${kept.length}${of} float tensors: ${kept.join(', ')}` : '  every tensor f16');
  }
  if (r.format === 'tflite') {
    lines.push(r.path === 'int8-dequantized'
      ? '  int8 model: checked twice: dequantized float kernels against onnxruntime, integer kernels against TFLite integer arithmetic'
      : '  float TFLite model: run with float kernels');
    lines.push('  rank-4 inputs and outputs are NCHW (the IR\'s layout; the file\'s NHWC is converted at import)');
  }
  if (r.format === 'keras') lines.push('  Keras (TF.js Layers) model: rank-4 inputs and outputs are NCHW (the IR\'s layout; Keras\'s channels-last is converted at import)');
  if (r.notCompared?.length) {
    lines.push(`  compared up to the inputs of ${r.notCompared.map((c) => `'${c.node}' (${c.op}: ${c.why})`).join(', ')}; their results are not compared`);
  }
  if (r.float64Nodes?.length) {
    const ops = [...new Set(r.float64Nodes.map((n) => n.op))].map((op) => `${op} x${r.float64Nodes!.filter((n) => n.op === op).length}`);
    lines.push(`  reference: onnxruntime, with the host ops ${ops.join(', ')} computed in float64 from their definitions between its stages`);
  }
  for (const o of r.outputs) {
    lines.push(`  ${o.name} [${o.shape.join('x')}]: max abs ${fmt(o.maxAbsError)} (${criterion(o)}), max rel ${fmt(o.maxRelError)}, rel to range ${fmt(o.rangeRelError)}, ` +
      `cosine ${o.cosine.toFixed(6)}, top-1 ${(100 * o.top1).toFixed(1)}%${o.top1Ties ? ` (${o.top1Ties} row${o.top1Ties > 1 ? 's' : ''} a near tie within tolerance)` : ''}, top-5 ${(100 * o.top5).toFixed(1)}%${o.classAxis !== undefined ? `; classes along axis ${o.classAxis}: ${classesLine(o)}` : ''}  ${o.ok ? 'PASSED' : 'FAILED'}`);
  }
  if (r.layers) {
    const bad = r.layers.filter((l) => !l.ok);
    lines.push(`  per layer: ${r.layers.length} tensors compared, ${bad.length} over tolerance`);
    for (const l of bad.slice(0, 10)) lines.push(`    ${l.node} (${l.op}) -> ${l.tensor}: max abs ${fmt(l.maxAbsError)} (${criterion(l)})`);
    if (r.firstBadNode) lines.push(`  first node over tolerance: ${r.firstBadNode}`);
  }
  if (typeof r.int8Reference === 'string') lines.push(`  vs TFLite integer reference: not run (${r.int8Reference})`);
  else if (r.int8Reference) {
    for (const c of r.int8Reference) {
      lines.push(`  vs TFLite integer reference: ${c.name}: max ${c.maxLsb.toFixed(2)} LSB, mean ${c.meanLsb.toFixed(3)} LSB (LSB ${fmt(c.scale)}), ` +
        `top-1 ${(100 * c.top1).toFixed(1)}% (information: the float path does not round activations to their grids)`);
    }
  }
  if (typeof r.int8Kernels === 'string') lines.push(`  integer kernels: not run (${r.int8Kernels})`);
  else if (r.int8Kernels) {
    const host = r.int8HostNodes?.length ? `; on the host: ${r.int8HostNodes.join(', ')}` : '';
    for (const c of r.int8Kernels) {
      lines.push(`  integer kernels vs TFLite integer reference: ${c.name}: max ${c.maxLsb.toFixed(2)} LSB, mean ${c.meanLsb.toFixed(3)} LSB, ` +
        `top-1 ${(100 * c.top1).toFixed(1)}%  ${c.maxLsb <= 1 ? 'ok' : 'OVER 1 LSB'}${host}`);
    }
  }
  lines.push(r.ok ? 'check PASSED' : 'check FAILED');
  return lines.join('\n') + '\n';
}

/** One line saying why a check failed, naming the model and the first failing output (the exit 1 message). */
export function checkFailure(r: CheckReport): string {
  const o = r.outputs.find((c) => !c.ok);
  if (o) {
    const top1 = o.top1 < 1 ? `, top-1 ${(100 * o.top1).toFixed(1)}%` : '';
    const node = r.firstBadNode ? `; first node over tolerance: '${r.firstBadNode}'` : '';
    return `${r.model}: output '${o.name}' differs from onnxruntime: max abs ${fmt(o.maxAbsError)} (${criterion(o)})${top1}${node}`;
  }
  const k = Array.isArray(r.int8Kernels) ? r.int8Kernels.find((c) => c.maxLsb > 1) : undefined;
  if (k) return `${r.model}: integer kernels: output '${k.name}' is ${k.maxLsb.toFixed(2)} LSB from TFLite's integer arithmetic (over 1)`;
  return `${r.model}: check failed`;
}
