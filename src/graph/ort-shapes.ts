// Shapes the IR cannot infer (past opaque ops such as Resize or ConvTranspose) come from onnxruntime-node:
// every wanted tensor becomes an extra graph output of the ONNX model, which runs once on zero inputs of
// the resolved input shapes; the output dims are the static shapes.
import { loadOnnxruntime } from '../onnxruntime.js';
import { unsupported } from '../errors.js';
import { decodeModel, encodeModel, onnx } from '../../converters/onnx/codec.js';
import type { DType, Graph } from './ir.js';
import { numel } from './ir.js';

export interface OrtShape { shape: number[]; dtype: DType }

const ortTypes: Partial<Record<DType, string>> = {
  float32: 'float32', float64: 'float64', float16: 'float16', int8: 'int8', uint8: 'uint8', int16: 'int16',
  uint16: 'uint16', int32: 'int32', uint32: 'uint32', int64: 'int64', uint64: 'uint64', bool: 'bool',
};

function zeros(dtype: DType, n: number): ArrayLike<unknown> {
  switch (dtype) {
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'float16': return new Uint16Array(n);
    case 'int8': return new Int8Array(n);
    case 'uint8': case 'bool': return new Uint8Array(n);
    case 'int16': return new Int16Array(n);
    case 'uint16': return new Uint16Array(n);
    case 'int32': return new Int32Array(n);
    case 'uint32': return new Uint32Array(n);
    case 'int64': return new BigInt64Array(n);
    case 'uint64': return new BigUint64Array(n);
    default: throw unsupported('onnxruntime shapes', `cannot feed an input of type ${dtype}`);
  }
}

/**
 * Runs the model `bytes` once with zero inputs shaped as `g`'s graph inputs and returns the shapes of
 * `names` (tensors of the model's graph) as onnxruntime computes them.
 */
export async function ortShapes(bytes: Uint8Array, g: Graph, names: readonly string[]): Promise<Map<string, OrtShape>> {
  const model = decodeModel(bytes, g.source);
  const graph = model.graph!;
  const existing = new Set(graph.output.map((o) => o.name));
  for (const name of names) if (!existing.has(name)) graph.output.push(new onnx.ValueInfoProto({ name }));
  const ort = await loadOnnxruntime('shape inference past ops fcm-opt cannot infer');
  let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  try {
    session = await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'disabled', logSeverityLevel: 3 });
  } catch (e) {
    throw unsupported(g.source, `onnxruntime cannot load the model to find the shapes of ${names.length} tensors past opaque ops (${firstLine(e)})`);
  }
  try {
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
    for (const x of g.inputs) {
      const t = g.tensors.get(x)!;
      const type = ortTypes[t.dtype];
      if (!type) throw unsupported(`${g.source}: tensor '${x}'`, `onnxruntime cannot be fed ${t.dtype}`);
      feeds[x] = new ort.Tensor(type as 'float32', zeros(t.dtype, numel(t.shape)) as Float32Array, t.shape);
    }
    let results: Record<string, InstanceType<typeof ort.Tensor>>;
    try {
      results = await session.run(feeds, [...names]);
    } catch (e) {
      throw unsupported(g.source, `onnxruntime failed on a zero input while finding shapes past opaque ops (${firstLine(e)})`);
    }
    const out = new Map<string, OrtShape>();
    for (const name of names) {
      const r = results[name];
      if (!r) continue;
      out.set(name, { shape: r.dims.map(Number), dtype: fromOrtType(r.type) ?? g.tensors.get(name)?.dtype ?? 'float32' });
    }
    return out;
  } finally {
    await session.release();
  }
}

function fromOrtType(t: string): DType | null {
  for (const [k, v] of Object.entries(ortTypes)) if (v === t) return k as DType;
  return null;
}

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

