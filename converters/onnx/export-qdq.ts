// A quantized graph (TFLite's convention: int8/uint8 tensors carrying scale and zero point, int32 biases) as a float
// graph in ONNX's QDQ form, which onnxruntime runs (fusing DequantizeLinear -> op -> QuantizeLinear into its integer
// kernels where it has them) and the ONNX exporter writes as it is:
// - every quantized activation keeps its name and 8-bit type, written by a QuantizeLinear from the float output of
//   its producer (`<name>/float`), and read by the float ops through one DequantizeLinear (`<name>/dq`);
// - quantized constants stay 8-bit initializers behind a DequantizeLinear, per axis where their quantization is
//   (weights per output channel);
// - int32 biases of Conv, Gemm and the fused modules are dequantized with the scale the integer kernels use,
//   input scale x weight scale per channel (src/graph/passes/dequantize.ts) and zero point 0;
// - QuantizeLinear/DequantizeLinear nodes already in the graph (a float input quantized, an output dequantized)
//   stay as they are; graph inputs and outputs keep their types;
// - a fused module (ai.fcm.opt) reads and writes float tensors like the other ops, and takes its intermediate's
//   quantization as two more inputs (scale, zero point: inputs 6 and 7), which its function body
//   (src/export/optimized.ts) applies between its two convolutions as the integer FCM does.
import { unsupported } from '../../src/errors.js';
import { fcmDomain, isKnownOp, newAttrs, type Graph, type Node, type Quantization, type Tensor } from '../../src/graph/ir.js';

const quantizedTypes: ReadonlySet<string> = new Set(['int8', 'uint8', 'int16', 'uint16']);
const isQuantized = (t: Tensor | undefined): t is Tensor & { quant: Quantization } =>
  !!t?.quant && (quantizedTypes.has(t.dtype) || (t.dtype === 'int32' && !!t.data));

const zeroPointArray = (dtype: Tensor['dtype'], values: number[]) => {
  switch (dtype) {
    case 'int8': return Int8Array.from(values);
    case 'uint8': return Uint8Array.from(values);
    case 'int16': return Int16Array.from(values);
    case 'uint16': return Uint16Array.from(values);
    case 'int32': return Int32Array.from(values);
    default: throw new Error(`internal: zero point of type ${dtype}`);
  }
};

/** True when the graph holds quantized tensors that qdqGraph writes as QuantizeLinear/DequantizeLinear. */
export function hasQuantizedTensors(g: Graph): boolean {
  for (const t of g.tensors.values()) if (isQuantized(t)) return true;
  return false;
}

export function qdqGraph(g: Graph): Graph {
  const where = g.source;
  const tensors = new Map(g.tensors);
  const nodes: Node[] = [];
  const used = new Set<string>([...g.tensors.keys(), ...g.nodes.flatMap((n) => n.outputs)]);
  const fresh = (base: string) => {
    let name = base;
    for (let k = 1; used.has(name); k++) name = `${base}_${k}`;
    used.add(name);
    return name;
  };
  const constant = (base: string, t: Omit<Tensor, 'name'>) => {
    const name = fresh(base);
    tensors.set(name, { name, ...t });
    return name;
  };
  /** Scale and zero-point initializers of a quantization; per axis when it has more than one scale. */
  const qParams = (base: string, dtype: Tensor['dtype'], q: Quantization): { scale: string; zp: string; axis?: number } => {
    const perAxis = q.scale.length > 1;
    const shape = perAxis ? [q.scale.length] : [];
    const scale = constant(`${base}/scale`, { dtype: 'float32', shape, data: Float32Array.from(perAxis ? q.scale : [q.scale[0]]) });
    const zps = q.scale.map((_, i) => q.zeroPoint[i] ?? q.zeroPoint[0] ?? 0);
    const zp = constant(`${base}/zero_point`, { dtype, shape, data: zeroPointArray(dtype, perAxis ? zps : [zps[0]]) });
    return { scale, zp, ...(perAxis ? { axis: q.axis ?? 0 } : {}) };
  };
  const qdqNode = (op: 'QuantizeLinear' | 'DequantizeLinear', name: string, x: string, p: ReturnType<typeof qParams>, y: string): Node =>
    ({ name: fresh(name), op, domain: '', inputs: [x, p.scale, p.zp], outputs: [y], attrs: newAttrs(p.axis !== undefined ? { axis: p.axis } : {}) });

  // The float form of each quantized tensor, made once, where its first reader needs it.
  const dequantized = new Map<string, string>();
  const floatOf = (name: string, quant?: Quantization): string => {
    const key = quant ? `${name}\u0000${quant.scale.join(',')}` : name;
    const have = dequantized.get(key);
    if (have) return have;
    const t = tensors.get(name)!;
    const q = quant ?? t.quant!;
    const y = fresh(`${name}/dq`);
    tensors.set(y, { name: y, dtype: 'float32', shape: [...t.shape], ...(t.shapeUnknown ? { shapeUnknown: true } : {}) });
    nodes.push(qdqNode('DequantizeLinear', `${name}/dequantize`, name, qParams(name, t.dtype, q), y));
    dequantized.set(key, y);
    return y;
  };
  /** An int32 bias as its reader's integer kernel scales it: input scale x weight scale per channel. */
  const biasQuant = (n: Node, xName: string, wName: string, bName: string): Quantization => {
    const x = tensors.get(xName), w = tensors.get(wName), b = tensors.get(bName)!;
    const xs = x?.quant?.scale.length === 1 ? x.quant.scale[0] : undefined;
    const scale = xs !== undefined && w?.quant ? w.quant.scale.map((s) => Math.fround(xs * s)) : b.quant?.scale;
    if (!scale) throw unsupported(where, `node '${n.name}' (${n.op}): int32 bias '${bName}' without a quantized input and weights or a scale of its own`);
    return { scale, zeroPoint: scale.map(() => 0), axis: scale.length > 1 ? 0 : undefined };
  };

  for (const n of g.nodes) {
    // Quantize/dequantize nodes of the model itself stay: their quantized side is the 8-bit tensor.
    if (isKnownOp(n) && (n.op === 'QuantizeLinear' || n.op === 'DequantizeLinear')) {
      const inputs = [...n.inputs];
      if (n.op === 'QuantizeLinear' && isQuantized(tensors.get(inputs[0]))) inputs[0] = floatOf(inputs[0]);
      nodes.push({ ...n, inputs });
      continue;
    }
    const fused = n.domain === fcmDomain;
    if (!isKnownOp(n) && !fused) {
      if (n.inputs.some((x) => isQuantized(tensors.get(x))) || n.outputs.some((y) => isQuantized(tensors.get(y)))) {
        throw unsupported(where, `node '${n.name}' (${n.domain ? `${n.domain}:` : ''}${n.op}) reads or writes quantized tensors and has no float form to write between QuantizeLinear/DequantizeLinear`);
      }
      nodes.push(n);
      continue;
    }
    // The quantized input of each bias's layer (fused modules: the intermediate feeds the second layer).
    const biasOf: Record<number, [number, number] | 'intermediate'> = fused ? { 2: [0, 1], 4: 'intermediate' } : (n.op === 'Conv' || n.op === 'Gemm') ? { 2: [0, 1] } : {};
    const midQuant: Quantization | undefined = fused && typeof n.attrs.intermediateScale === 'number'
      ? { scale: [n.attrs.intermediateScale], zeroPoint: [(n.attrs.intermediateZeroPoint as number | undefined) ?? 0] } : undefined;
    const inputs = n.inputs.map((x, i) => {
      const t = x ? tensors.get(x) : undefined;
      if (!isQuantized(t)) return x;
      if (t.dtype === 'int32' && t.data && biasOf[i]) {
        const b = biasOf[i];
        if (b === 'intermediate') {
          const w = tensors.get(n.inputs[3]);
          if (!midQuant || !w?.quant) throw unsupported(where, `fused node '${n.name}': its second bias needs the intermediate's and the weights' quantization`);
          const scale = w.quant.scale.map((s) => Math.fround(midQuant.scale[0] * s));
          return floatOf(x, { scale, zeroPoint: scale.map(() => 0), axis: scale.length > 1 ? 0 : undefined });
        }
        return floatOf(x, biasQuant(n, n.inputs[b[0]], n.inputs[b[1]], x));
      }
      return floatOf(x);
    });
    if (fused) {
      if (!midQuant) throw unsupported(where, `fused node '${n.name}' of a quantized graph has no intermediate quantization`);
      while (inputs.length < 6) inputs.push('');
      const p = qParams(`${n.name}/intermediate`, tensors.get(n.inputs[0])?.dtype ?? 'int8', midQuant);
      inputs.push(p.scale, p.zp);
    }
    const outputs = n.outputs.map((y) => {
      const t = tensors.get(y);
      if (!isQuantized(t)) return y;
      const f = fresh(`${y}/float`);
      tensors.set(f, { name: f, dtype: 'float32', shape: [...t.shape], ...(t.shapeUnknown ? { shapeUnknown: true } : {}) });
      return f;
    });
    nodes.push({ ...n, inputs, outputs });
    n.outputs.forEach((y, i) => {
      if (outputs[i] === y) return;
      const t = tensors.get(y)!;
      nodes.push(qdqNode('QuantizeLinear', `${y}/quantize`, outputs[i], qParams(y, t.dtype, t.quant!), y));
    });
  }
  return { ...g, tensors, nodes };
}
