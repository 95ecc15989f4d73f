// Builds small IR graphs directly as plain data for the graph-pass tests.
import { mulberry32 } from '../../fixtures/rng.js';
import assert from 'node:assert/strict';
import { FcmError } from '../../src/errors.js';
import type { AttrValue, DType, Graph, Node, Tensor, TensorData } from '../../src/graph/ir.js';
import { newAttrs } from '../../src/graph/ir.js';

export interface NodeSpec {
  op: string;
  in: string[];
  out: string[];
  attrs?: Record<string, AttrValue>;
  name?: string;
  domain?: string;
}

export interface GraphSpec {
  inputs: Record<string, number[]>;
  consts?: Record<string, Tensor | { shape: number[]; data: TensorData; dtype?: DType }>;
  nodes: NodeSpec[];
  outputs: string[];
  source?: string;
}

/** Intermediate tensors start with unknown shapes, as the importer leaves them without value_info. */
export function graph(spec: GraphSpec): Graph {
  const tensors = new Map<string, Tensor>();
  for (const [name, shape] of Object.entries(spec.inputs)) tensors.set(name, { name, dtype: 'float32', shape });
  for (const [name, c] of Object.entries(spec.consts ?? {})) {
    tensors.set(name, { name, dtype: c.dtype ?? dtypeOf(c.data), shape: c.shape, data: c.data });
  }
  const nodes: Node[] = spec.nodes.map((n, i) => ({
    name: n.name ?? `${n.op.toLowerCase()}${i}`,
    op: n.op,
    domain: n.domain ?? '',
    inputs: n.in,
    outputs: n.out,
    attrs: newAttrs(n.attrs ?? {}),
  }));
  for (const n of nodes) {
    for (const y of n.outputs) if (y && !tensors.has(y)) tensors.set(y, { name: y, dtype: 'float32', shape: [], shapeUnknown: true });
  }
  return { name: 'test', inputs: Object.keys(spec.inputs), outputs: spec.outputs, tensors, nodes, source: spec.source ?? 'test.onnx' };
}

function dtypeOf(d: TensorData): DType {
  if (d instanceof BigInt64Array) return 'int64';
  if (d instanceof Int32Array) return 'int32';
  if (d instanceof Float64Array) return 'float64';
  if (d instanceof Uint8Array) return 'uint8';
  return 'float32';
}

export const f32 = (shape: number[], values: number[] | ((i: number) => number)) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = typeof values === 'function' ? Float32Array.from({ length: n }, (_, i) => values(i)) : Float32Array.from(values);
  assert.equal(data.length, n);
  return { shape, data, dtype: 'float32' as DType };
};
export const i64 = (values: number[], shape = [values.length]) => ({ shape, data: BigInt64Array.from(values.map(BigInt)), dtype: 'int64' as DType });
export const scalarF = (v: number) => ({ shape: [] as number[], data: Float32Array.of(v), dtype: 'float32' as DType });

/** Ops and their input/output tensor names, for structural before/after comparisons. */
export const summary = (g: Graph) => g.nodes.map((n) => `${n.op}(${n.inputs.join(',')})->${n.outputs.join(',')}`);

export function shapeOf(g: Graph, name: string): number[] {
  const t = g.tensors.get(name);
  assert.ok(t, `tensor ${name} exists`);
  assert.ok(!t.shapeUnknown, `tensor ${name} has a known shape`);
  return t.shape;
}

/** Asserts an FcmError of `kind` whose message contains every fragment. */
export function throwsFcm(fn: () => unknown, kind: FcmError['kind'], ...fragments: string[]) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FcmError, `expected FcmError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `message '${e.message}' should contain '${f}'`);
    return true;
  });
}

/** Seeded uniform values in [-1, 1) (mulberry32). */
export function seeded(seed: number): () => number {
  const u = mulberry32(seed);
  return () => u() * 2 - 1;
}
