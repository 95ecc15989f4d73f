// src/graph/passes/dequantize.ts: an int8 graph before, the float graph after; negative cases.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { newAttrs, type Graph, type Node, type Tensor } from '../../src/graph/ir.js';
import { dequantizeGraph, isQuantizedGraph } from '../../src/graph/passes/dequantize.js';

const node = (name: string, op: string, inputs: string[], outputs: string[], attrs: Record<string, number | number[]> = {}): Node =>
  ({ name, op, domain: '', inputs, outputs, attrs: newAttrs(attrs) });

function graph(tensors: Tensor[], nodes: Node[], inputs: string[], outputs: string[]): Graph {
  return { name: 'g', source: 'test.tflite', inputs, outputs, nodes, tensors: new Map(tensors.map((t) => [t.name, t])) };
}

const act = (name: string, scale: number, zp: number, shape = [1, 2, 2, 2]): Tensor => ({ name, dtype: 'int8', shape, quant: { scale: [scale], zeroPoint: [zp] } });

/** input -> QuantizeLinear -> Conv (per-channel int8 weights, int32 bias) -> Relu -> DequantizeLinear -> out. */
function int8Conv(extraReader = false): Graph {
  const tensors: Tensor[] = [
    { name: 'input', dtype: 'float32', shape: [1, 2, 2, 2] },
    act('x', 0.5, 1),
    { name: 'w', dtype: 'int8', shape: [2, 2, 1, 1], data: Int8Array.of(1, -2, 3, -4), quant: { scale: [0.1, 0.2], zeroPoint: [0, 0], axis: 0 } },
    { name: 'b', dtype: 'int32', shape: [2], data: Int32Array.of(10, -20), quant: { scale: [0.05, 0.1], zeroPoint: [0, 0], axis: 0 } },
    act('pre', 0.25, 0), act('y', 0.25, 0),
    { name: 'q/scale', dtype: 'float32', shape: [], data: Float32Array.of(0.5) },
    { name: 'q/zp', dtype: 'int8', shape: [], data: Int8Array.of(1) },
    { name: 'out', dtype: 'float32', shape: [1, 2, 2, 2] },
  ];
  const nodes = [
    node('quantize', 'QuantizeLinear', ['input', 'q/scale', 'q/zp'], ['x']),
    node('conv', 'Conv', ['x', 'w', 'b'], ['pre'], { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 }),
    node('relu', 'Relu', ['pre'], ['y']),
    node('dequantize', 'DequantizeLinear', ['y', 'q/scale', 'q/zp'], ['out']),
  ];
  const outputs = ['out'];
  if (extraReader) {
    tensors.push(act('z', 0.25, 0));
    nodes.splice(2, 0, node('abs', 'Abs', ['pre'], ['z']));
    outputs.push('z');
  }
  return graph(tensors, nodes, ['input'], outputs);
}

describe('dequantizeGraph', () => {
  it('dequantizes weights per channel and biases by input x weight scale, saturates, removes Q/DQ', () => {
    const g0 = int8Conv();
    assert.equal(isQuantizedGraph(g0), true);
    const g = dequantizeGraph(g0);
    assert.equal(isQuantizedGraph(g), false);
    assert.deepEqual(g.nodes.map((n) => `${n.op}(${n.inputs.join(',')})->${n.outputs.join(',')}`), [
      'Clip(input)->x', 'Conv(x,w,b)->pre', 'Clip(pre)->out',
    ]);
    // QUANTIZE saturates to the int8 range of x: 0.5 * (-128 - 1) .. 0.5 * (127 - 1).
    assert.deepEqual([g.nodes[0].attrs.min, g.nodes[0].attrs.max], [-64.5, 63]);
    // Relu tightened to y's range (0.25 * 127); the conv output needs no clip of its own (its only reader clamps).
    assert.deepEqual([g.nodes[2].attrs.min, g.nodes[2].attrs.max], [0, 31.75]);
    const w = g.tensors.get('w')!, b = g.tensors.get('b')!;
    assert.equal(w.dtype, 'float32');
    assert.deepEqual(Array.from(w.data as Float32Array), [0.1, -0.2, 0.6, -0.8].map(Math.fround));
    assert.equal(w.quant, undefined);
    // bias scale = input scale 0.5 x weight scale [0.1, 0.2] (TFLite's kernels), not the bias tensor's own.
    assert.deepEqual(Array.from(b.data as Float32Array), [10 * 0.5 * 0.1, -20 * 0.5 * 0.2].map(Math.fround));
    for (const name of ['x', 'pre', 'out']) assert.equal(g.tensors.get(name)!.dtype, 'float32', name);
    assert.ok(![...g.tensors.values()].some((t) => t.quant), 'no quantization parameters are left');
    assert.ok(!g.tensors.has('q/scale') && !g.tensors.has('y'), 'unused tensors pruned');
    assert.deepEqual(g.outputs, ['out']);
    // The input graph is unchanged.
    assert.equal(g0.nodes.length, 4);
    assert.equal(g0.tensors.get('w')!.dtype, 'int8');
  });

  it('saturates a quantized output whose readers do not clamp it', () => {
    const g = dequantizeGraph(int8Conv(true));
    const conv = g.nodes.find((n) => n.op === 'Conv')!;
    assert.deepEqual(conv.outputs, ['pre/unclamped']);
    const sat = g.nodes.find((n) => n.inputs[0] === 'pre/unclamped')!;
    assert.equal(sat.op, 'Clip');
    assert.deepEqual([sat.attrs.min, sat.attrs.max, sat.outputs[0]], [-32, 31.75, 'pre']);
    const abs = g.nodes.find((n) => n.op === 'Abs')!;
    assert.equal(g.nodes[g.nodes.indexOf(abs) + 1]?.op, 'Clip', 'Abs output z saturates too');
  });

  it('leaves float graphs and ONNX-style QDQ (no Tensor.quant) alone', () => {
    const f = graph([{ name: 'a', dtype: 'float32', shape: [1] }, { name: 'b', dtype: 'float32', shape: [1] }], [node('r', 'Relu', ['a'], ['b'])], ['a'], ['b']);
    assert.equal(isQuantizedGraph(f), false);
    assert.equal(dequantizeGraph(f), f);
    const qdq = graph([
      { name: 'w', dtype: 'int8', shape: [2], data: Int8Array.of(1, 2) },
      { name: 's', dtype: 'float32', shape: [], data: Float32Array.of(0.5) },
      { name: 'z', dtype: 'int8', shape: [], data: Int8Array.of(0) },
      { name: 'wf', dtype: 'float32', shape: [2] },
    ], [node('dq', 'DequantizeLinear', ['w', 's', 'z'], ['wf'])], [], ['wf']);
    assert.equal(isQuantizedGraph(qdq), false);
    const after = dequantizeGraph(qdq);
    assert.equal(after.nodes[0].op, 'DequantizeLinear');
    assert.equal(after.tensors.get('w')!.dtype, 'int8');
  });
});
