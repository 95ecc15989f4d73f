// What `fcm-opt check` needs for TFLite files. onnxruntime cannot read TFLite, so the reference runs the ONNX
// export (converters/onnx/export.ts) of the very graph fcm-opt executes before planning: the imported float
// graph, or for an int8 file the dequantized float graph (src/graph/passes/dequantize.ts). That checks the
// executor (kernels, fusion, memory plan) against onnxruntime; the importer's NHWC -> NCHW conversion is
// checked elsewhere (test/converters/tflite*.test.ts, and for int8 files by the integer reference below).
//
// For int8 files the dequantized result is also compared with TFLite's integer arithmetic
// (src/quant/run-reference.ts), in LSB of each output's quantization. That difference is the price of float
// kernels, not an executor error: the integer model rounds every activation to its grid and the float path
// does not, so the outputs differ by a few LSB (errors of about 1/sqrt(12) LSB rms per rounded layer add up),
// and a 1-LSB bound does not hold in general. It is reported, not held to a tolerance.
//
// Ops that run on the host and have no ONNX equivalent (src/runtime/host-float.ts) cannot be in the export. Those
// with a float64 transcription of their definition here (MediaPipe's landmark ops, mediapipe-reference.ts, written
// apart from the executor's port) split the reference into stages: onnxruntime runs the graph up to them, the
// transcription computes them from onnxruntime's values, onnxruntime runs what follows, and so on, so the graph
// outputs are compared. For the others (TFLite_Detection_PostProcess) the reference graph stops in front of them,
// and the check compares their inputs (and the graph outputs that do not depend on them) instead; their own results
// are checked by tests against the op's definition (test/runtime/detection-postprocess.test.ts).

import { FcmError, unsupported } from '../errors.js';
import type { Graph, Node, Quantization, Tensor } from '../graph/ir.js';
import { producers } from '../graph/ir.js';
import { dequantizeGraph, isQuantizedGraph } from '../graph/passes/dequantize.js';
import { prepareGraph } from '../graph/prepare.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { runInt8Reference } from '../quant/run-reference.js';
import { runsOnFloatHost } from '../runtime/host-float.js';
import { dequantize, quantize } from '../quant/reference.js';
import { hasMediapipeReference } from './mediapipe-reference.js';

export type RunPath = 'float' | 'int8-dequantized';

/** One step of the staged reference: onnxruntime on an ONNX export of a part of the graph, or one node computed by a
 *  float64 transcription of its definition (mediapipe-reference.ts). */
export type ReferenceStage =
  | { kind: 'onnx'; onnx: Uint8Array; inputs: string[]; outputs: string[] }
  | { kind: 'host'; node: Node };

export interface TfliteReference {
  /** The float graph fcm-opt runs (before epilogue folding and planning); onnxruntime gets it as ONNX, cut in front
   *  of the ops without an ONNX equivalent (`cut`). */
  floatGraph: Graph;
  /** The ONNX export of the graph cut in front of every host op (what the investigation scripts run whole). */
  onnx: Uint8Array;
  /** The reference `check` runs: in order, the ONNX parts and the host nodes computed in float64 between them (one
   *  ONNX stage when the graph has none). */
  stages: ReferenceStage[];
  path: RunPath;
  /** The tensors both sides compute and the check compares: the graph outputs, or with a cut, the cut nodes' inputs
   *  and the graph outputs that do not depend on them. */
  compared: string[];
  /** Nodes left out of the reference (and everything after them), with why. */
  cut: { node: string; op: string; why: string }[];
  /** Host nodes the reference computes with its float64 transcription of their definition. */
  bridged: { node: string; op: string }[];
}

/**
 * `g` without the nodes that have no ONNX equivalent (and no float64 transcription, unless `all`) and everything
 * computed from them; its outputs are the graph outputs left plus the (non-constant) inputs of the nodes removed.
 */
export function referenceCut(g: Graph, all = true): { graph: Graph; cut: TfliteReference['cut'] } {
  const cut: TfliteReference['cut'] = [];
  const gone = new Set<string>();
  const kept: Graph['nodes'] = [];
  const wanted: string[] = [];
  const cuts = (n: Node) => runsOnFloatHost(n) && (all || !hasMediapipeReference(n));
  for (const n of g.nodes) {
    if (cuts(n)) {
      cut.push({ node: n.name, op: n.op, why: 'no ONNX equivalent; run on the host' });
      for (const x of n.inputs) if (x && !gone.has(x) && g.tensors.get(x)?.data === undefined && !wanted.includes(x)) wanted.push(x);
    }
    if (cuts(n) || n.inputs.some((x) => gone.has(x))) {
      for (const y of n.outputs) if (y) gone.add(y);
      continue;
    }
    kept.push(n);
  }
  if (!cut.length) return { graph: g, cut };
  const outputs = [...g.outputs.filter((y) => !gone.has(y)), ...wanted.filter((x) => !g.outputs.includes(x))];
  return { graph: { ...g, nodes: kept, outputs }, cut };
}

const exportFor = (source: string, g: Graph): Uint8Array => {
  try {
    return exportOnnx(g);
  } catch (e) {
    if (e instanceof FcmError) throw unsupported(source, `check needs the model as ONNX for onnxruntime, and the export failed: ${e.message}`);
    throw e;
  }
};

/**
 * The stages of `g` (nodes in execution order) split at the host nodes with a float64 transcription: a node's
 * stage is the number of such nodes on its longest path from the inputs; such a node runs after the stage of its
 * inputs. Each ONNX stage takes the values it reads from earlier stages as inputs and gives those that later
 * stages or the graph outputs need.
 */
export function referenceStages(g: Graph): ReferenceStage[] {
  const level = new Map<string, number>();
  const levelOf = (x: string) => level.get(x) ?? 0;
  const onnxNodes: Node[][] = [[]];
  const hostAfter: Node[][] = [[]];
  for (const n of g.nodes) {
    const k = Math.max(0, ...n.inputs.filter((x) => x).map(levelOf));
    const host = hasMediapipeReference(n) && runsOnFloatHost(n);
    while (onnxNodes.length <= k + 1) { onnxNodes.push([]); hostAfter.push([]); }
    (host ? hostAfter : onnxNodes)[k].push(n);
    for (const y of n.outputs) if (y) level.set(y, host ? k + 1 : k);
  }
  const readers = new Map<string, Set<number>>();
  onnxNodes.forEach((ns, k) => { for (const n of ns) for (const x of n.inputs) if (x) (readers.get(x) ?? readers.set(x, new Set()).get(x)!).add(k); });
  const hostReads = new Set(hostAfter.flat().flatMap((n) => n.inputs));
  const stages: ReferenceStage[] = [];
  onnxNodes.forEach((ns, k) => {
    if (ns.length) {
      const made = new Set(ns.flatMap((n) => n.outputs));
      const inputs = [...new Set(ns.flatMap((n) => n.inputs).filter((x) => x && !made.has(x) && g.tensors.get(x)?.data === undefined))];
      const outputs = [...made].filter((y) => y && (g.outputs.includes(y) || hostReads.has(y) || [...(readers.get(y) ?? [])].some((j) => j !== k)));
      stages.push({ kind: 'onnx', onnx: exportFor(g.source, { ...g, nodes: ns, inputs, outputs }), inputs, outputs });
    }
    for (const node of hostAfter[k]) stages.push({ kind: 'host', node });
  });
  return stages;
}

/** The float graph of an imported TFLite graph and its ONNX export, for onnxruntime. */
export function tfliteReference(g: Graph): TfliteReference {
  const path: RunPath = isQuantizedGraph(g) ? 'int8-dequantized' : 'float';
  const floatGraph = path === 'float' ? g : prepareGraph(dequantizeGraph(g));
  const { graph: refGraph, cut } = referenceCut(floatGraph, false);
  const bridged = refGraph.nodes.filter((n) => runsOnFloatHost(n)).map((n) => ({ node: n.name, op: n.op }));
  const stages = bridged.length ? referenceStages(refGraph) : [{ kind: 'onnx' as const, onnx: exportFor(g.source, refGraph), inputs: refGraph.inputs, outputs: refGraph.outputs }];
  const onnx = bridged.length ? exportFor(g.source, referenceCut(floatGraph).graph) : (stages[0] as { onnx: Uint8Array }).onnx;
  return { floatGraph, onnx, stages, path, compared: refGraph.outputs, cut, bridged };
}

const isQ8 = (t: Tensor | undefined): t is Tensor & { quant: Quantization; dtype: 'int8' | 'uint8' } =>
  !!t && (t.dtype === 'int8' || t.dtype === 'uint8') && !!t.quant && t.quant.scale.length === 1;

/**
 * Inputs for both paths from real values: a quantized graph input gets the integers (TFLite's rounding) for
 * the integer reference and their real values for the float paths, so that all three see the same input.
 */
export function gridInputs(g: Graph, real: Record<string, Float32Array>): { real: Record<string, Float32Array>; int8: Record<string, ArrayLike<number>> } {
  const outReal: Record<string, Float32Array> = {}, outInt: Record<string, ArrayLike<number>> = {};
  for (const [name, x] of Object.entries(real)) {
    const t = g.tensors.get(name);
    if (!isQ8(t)) { outReal[name] = x; outInt[name] = x; continue; }
    const qp = { scale: t.quant.scale[0], zeroPoint: t.quant.zeroPoint[0] ?? 0 };
    const q = quantize(x, qp, t.dtype);
    const r = dequantize(q, qp);
    outReal[name] = r;
    outInt[name] = q;
  }
  return { real: outReal, int8: outInt };
}

export interface Int8Comparison {
  name: string;
  /** The quantization step of the output (a final DEQUANTIZE's input when the output is float). */
  scale: number;
  maxLsb: number;
  meanLsb: number;
  /** Whether the argmax of each row (first dimension) agrees. */
  top1: number;
}

/** The quantization of output `y`: its own, or that of the quantized tensor a final DequantizeLinear reads. */
function outputQuant(g: Graph, y: string): Quantization | undefined {
  const t = g.tensors.get(y);
  if (isQ8(t)) return t.quant;
  const p = producers(g).get(y);
  const n = p === undefined ? undefined : g.nodes[p];
  if (n && n.op === 'DequantizeLinear') {
    const x = g.tensors.get(n.inputs[0]);
    if (isQ8(x)) return x.quant;
  }
  return undefined;
}

function argmaxRows(a: ArrayLike<number>, rows: number): number[] {
  const n = a.length / rows;
  const r: number[] = [];
  for (let k = 0; k < rows; k++) {
    let best = 0;
    for (let i = 1; i < n; i++) if (a[k * n + i] > a[k * n + best]) best = i;
    r.push(best);
  }
  return r;
}

/**
 * Runs the int8 graph `g` (as imported, before dequantization) with TFLite's integer arithmetic and compares
 * `ours` (real-valued tensors by name) in LSB of each tensor's quantization: the graph outputs, or `names` (the
 * 8-bit inputs of a host op such as TFLite_Detection_PostProcess, whose float results have no LSB).
 */
export function compareWithInt8Reference(g: Graph, int8Inputs: Record<string, ArrayLike<number>>, ours: Record<string, { data: Float32Array; shape: number[] }>,
  names: string[] = g.outputs): Int8Comparison[] {
  const res = runInt8Reference({ ...g, outputs: names }, int8Inputs);
  return names.map((y, k) => {
    const q = outputQuant(g, y);
    if (!q) throw unsupported(g.source, `output '${y}' has no 8-bit quantization to measure LSB in`);
    const ref = res.dequantized[k], o = ours[y];
    if (!o || o.data.length !== ref.length) throw unsupported(g.source, `output '${y}': fcm-opt returned ${o?.data.length ?? 0} values, the integer reference ${ref.length}`);
    let max = 0, sum = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(o.data[i] - ref[i]) / q.scale[0];
      max = Math.max(max, d);
      sum += d;
    }
    const rows = o.shape.length > 1 ? o.shape[0] : 1;
    const a = argmaxRows(o.data, rows), b = argmaxRows(ref, rows);
    return { name: y, scale: q.scale[0], maxLsb: max, meanLsb: ref.length ? sum / ref.length : 0, top1: a.filter((v, i) => v === b[i]).length / rows };
  });
}
