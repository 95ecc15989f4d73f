// An int8/uint8 graph (a quantized TFLite file as converters/tflite/import.ts makes it) into a float graph the
// float kernels run, until integer kernels exist:
// - quantized constants (weights, PReLU slopes, Mul/Add operands) become float32 real values,
//   scale[c] * (q - zeroPoint[c]) per channel along `quant.axis`;
// - int32 biases of Conv/Gemm become bias * inputScale * weightScale[c]: TFLite's integer kernels use that
//   product as the bias scale whatever the bias tensor records (it is the same number in converter output);
// - quantized activations, graph inputs and outputs included, become float32 tensors holding the real value
//   (no quantization parameters): a uint8 graph input takes real values, not raw integers;
// - saturation, the half of fake-quant that the float kernels can express: an 8-bit tensor holds only
//   [scale * (qmin - zp), scale * (qmax - zp)], and activations outside it clamp in the integer model (with
//   narrow activation scales, often: tens of LSB otherwise). Every quantized activation that its producer
//   could push outside that range gets it as a Clip: a Relu/Clip producer has its bounds tightened; a node
//   whose only reader is the importer's fused-activation Relu/Clip (same quantization) leaves it to that
//   node; data movement at unchanged quantization (Reshape, Transpose, Pad, MaxPool, ...) needs none;
//   anything else writes `<name>/unclamped` and a Clip writes the tensor. QuantizeLinear becomes that Clip
//   (it saturates too), DequantizeLinear the identity; both are then removed where nothing is left to do.
// The other half, rounding every activation to its grid, has no kernel; the remaining difference to TFLite's
// integer arithmetic (src/quant/run-reference.ts) is rounding only, a few LSB, reported by `fcm-opt check`.
import { unsupported } from '../../errors.js';
import type { DType, Graph, Node, Quantization, Tensor } from '../ir.js';
import { consumers, isKnownOp, newAttrs, numel } from '../ir.js';
import { cloneGraph, pruneTensors } from '../util.js';
import { removeIdentity } from './remove-identity.js';

const quantizedTypes: ReadonlySet<string> = new Set(['int8', 'uint8', 'int16', 'uint16']);
const qRange: Partial<Record<DType, [number, number]>> = { int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535] };

/** Ops whose output values are input values (or a zero pad, inside every range): at unchanged quantization
 *  they cannot leave the range. */
const movesData: ReadonlySet<string> = new Set([
  'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose', 'Identity', 'Pad', 'MaxPool', 'AveragePool',
  'ReduceMean', 'GlobalAveragePool', 'Concat', 'Split', 'Slice', 'Gather',
]);

/** The real values a per-tensor quantized activation can hold, or undefined (constant, float, per-channel). */
function rangeOf(t: Tensor | undefined): [number, number] | undefined {
  const r = t && !t.data && t.quant && t.quant.scale.length === 1 ? qRange[t.dtype] : undefined;
  if (!r) return undefined;
  const s = t!.quant!.scale[0], zp = t!.quant!.zeroPoint[0] ?? 0;
  return [Math.fround(s * (r[0] - zp)), Math.fround(s * (r[1] - zp))];
}

const sameQuant = (a: Tensor | undefined, b: Tensor | undefined) =>
  !!a?.quant && !!b?.quant && a.dtype === b.dtype && a.quant.scale.length === 1 && b.quant.scale.length === 1 &&
  a.quant.scale[0] === b.quant.scale[0] && (a.quant.zeroPoint[0] ?? 0) === (b.quant.zeroPoint[0] ?? 0);

const isClamp = (n: Node) => isKnownOp(n) && (n.op === 'Relu' || n.op === 'Clip');

/** True when g has quantized tensors or quantize/dequantize nodes, i.e. dequantizeGraph changes it. */
export function isQuantizedGraph(g: Graph): boolean {
  for (const t of g.tensors.values()) if (t.quant && (quantizedTypes.has(t.dtype) || (t.dtype === 'int32' && t.data))) return true;
  return g.nodes.some((n) => isQdqOfQuantized(g, n));
}

/** A QuantizeLinear/DequantizeLinear whose quantized side carries Tensor.quant (TFLite's convention). ONNX
 *  QDQ graphs keep scale and zero point as node inputs only; those nodes are left alone (no kernel). */
function isQdqOfQuantized(g: Graph, n: Node): boolean {
  if (!isKnownOp(n) || (n.op !== 'QuantizeLinear' && n.op !== 'DequantizeLinear')) return false;
  const q = g.tensors.get(n.op === 'QuantizeLinear' ? n.outputs[0] : n.inputs[0]);
  return !!q?.quant && quantizedTypes.has(q.dtype);
}

/** Per-element channel index of a quantized tensor (0 for per-tensor quantization). */
function channelOf(t: Tensor, q: Quantization, where: string): (i: number) => number {
  if (q.scale.length <= 1) return () => 0;
  const axis = q.axis ?? 0;
  if (axis < 0 || axis >= t.shape.length || t.shape[axis] !== q.scale.length) {
    throw unsupported(where, `tensor '${t.name}' has ${q.scale.length} scales on axis ${axis} of shape [${t.shape.join(',')}]`);
  }
  const inner = numel(t.shape.slice(axis + 1));
  return (i) => Math.floor(i / inner) % q.scale.length;
}

function realData(t: Tensor, scales: number[], zeroPoints: number[], axisQ: Quantization, where: string): Float32Array {
  const src = t.data as ArrayLike<number>;
  const out = new Float32Array(src.length);
  const ch = channelOf(t, axisQ, where);
  for (let i = 0; i < out.length; i++) {
    const c = ch(i);
    out[i] = scales[c] * (src[i] - (zeroPoints[c] ?? 0));
  }
  return out;
}

/** The effective bias scale of a Conv/Gemm with quantized input and weights, per output channel. */
function biasScale(g: Graph, n: Node): number[] | undefined {
  const x = g.tensors.get(n.inputs[0]), w = g.tensors.get(n.inputs[1]);
  if (!x?.quant || !w?.quant || x.quant.scale.length !== 1) return undefined;
  return w.quant.scale.map((s) => x.quant!.scale[0] * s);
}

export function dequantizeGraph(g0: Graph): Graph {
  if (!isQuantizedGraph(g0)) return g0;
  const g = cloneGraph(g0);
  const where = g.source;

  // Biases first: their scale comes from the node's (still quantized) input and weights.
  const biasScales = new Map<string, number[]>();
  for (const n of g.nodes) {
    if (!isKnownOp(n) || (n.op !== 'Conv' && n.op !== 'Gemm') || !n.inputs[2]) continue;
    const b = g.tensors.get(n.inputs[2]);
    if (!b?.data || b.dtype !== 'int32') continue;
    const s = biasScale(g, n) ?? b.quant?.scale;
    if (!s) throw unsupported(where, `node '${n.name}' (${n.op}): int32 bias '${b.name}' without a quantized input and weights or a scale of its own`);
    const prev = biasScales.get(b.name);
    if (prev && (prev.length !== s.length || prev.some((v, i) => v !== s[i]))) {
      throw unsupported(where, `int32 bias '${b.name}' is shared by nodes with different input or weight scales`);
    }
    biasScales.set(b.name, s);
  }

  for (const [name, t] of g.tensors) {
    const bs = biasScales.get(name);
    if (bs) {
      // A 1-D bias: per-channel along its only axis.
      const q: Quantization = { scale: bs, zeroPoint: bs.map(() => 0), axis: bs.length > 1 ? 0 : undefined };
      g.tensors.set(name, { name, dtype: 'float32', shape: [...t.shape], data: realData(t, q.scale, q.zeroPoint, q, where) });
      continue;
    }
    if (!t.quant || !(quantizedTypes.has(t.dtype) || (t.dtype === 'int32' && t.data))) continue;
    const data = t.data ? realData(t, t.quant.scale, t.quant.zeroPoint, t.quant, where) : undefined;
    g.tensors.set(name, { name, dtype: 'float32', shape: [...t.shape], ...(t.shapeUnknown ? { shapeUnknown: true } : {}), ...(data ? { data } : {}) });
  }

  // Saturation (see the top of the file), decided on the quantized tensors of g0; then Q/DQ in real values.
  const qdq = new Set(g.nodes.filter((n) => isQdqOfQuantized(g0, n)));
  const readers = consumers(g0);
  const t0 = (name: string) => g0.tensors.get(name);
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    if (qdq.has(n) && n.op === 'DequantizeLinear') {
      nodes.push({ ...n, op: 'Identity', inputs: [n.inputs[0]], outputs: [n.outputs[0]], attrs: newAttrs() });
      continue;
    }
    const y = n.outputs[0];
    const range = y && n.outputs.length === 1 ? rangeOf(t0(y)) : undefined;
    if (qdq.has(n)) {
      nodes.push(range
        ? { ...n, op: 'Clip', inputs: [n.inputs[0]], outputs: [y], attrs: newAttrs({ min: range[0], max: range[1] }) }
        : { ...n, op: 'Identity', inputs: [n.inputs[0]], outputs: [y], attrs: newAttrs() });
      continue;
    }
    if (!range || !isKnownOp(n)) { nodes.push(n); continue; }
    if (isClamp(n)) {
      const lo = n.op === 'Relu' ? 0 : (n.attrs.min as number | undefined) ?? -Infinity;
      const hi = n.op === 'Relu' ? Infinity : (n.attrs.max as number | undefined) ?? Infinity;
      nodes.push({ ...n, op: 'Clip', attrs: newAttrs({ min: Math.max(lo, range[0]), max: Math.min(hi, range[1]) }) });
      continue;
    }
    if (movesData.has(n.op) && n.inputs.filter((x) => x && !t0(x)?.data).every((x) => sameQuant(t0(x), t0(y)))) { nodes.push(n); continue; }
    const rs = readers.get(y) ?? [];
    if (!g0.outputs.includes(y) && rs.length === 1 && isClamp(g0.nodes[rs[0]]) && sameQuant(t0(g0.nodes[rs[0]].outputs[0]), t0(y))) {
      nodes.push(n);
      continue;
    }
    let raw = `${y}/unclamped`;
    for (let k = 1; g.tensors.has(raw); k++) raw = `${y}/unclamped_${k}`;
    g.tensors.set(raw, { name: raw, dtype: 'float32', shape: [...g.tensors.get(y)!.shape] });
    nodes.push({ ...n, outputs: [raw] });
    nodes.push({ name: `${n.name}/saturate`, op: 'Clip', domain: '', inputs: [raw], outputs: [y], attrs: newAttrs({ min: range[0], max: range[1] }) });
  }
  g.nodes = nodes;
  const left = [...g.tensors.values()].find((t) => t.quant && quantizedTypes.has(t.dtype));
  if (left) throw unsupported(where, `tensor '${left.name}' is still quantized after dequantization`);
  return pruneTensors(removeIdentity(g));
}
