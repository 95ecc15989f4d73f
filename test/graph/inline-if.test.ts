// ONNX If (src/graph/passes/inline-if.ts): a condition computed from shapes folds and the If becomes the branch it
// takes (nested Ifs too); a condition computed from the data becomes both branches and a Where when they agree on
// shapes (run here on the executor and compared with the If's definition computed on the host); otherwise the If
// stays and the executor refuses it naming the node (exit 3).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeModel, onnx } from '../../converters/onnx/codec.js';
import { loadModel } from '../../src/graph/load.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { FcmError } from '../../src/errors.js';
import { mulberry32 } from '../../fixtures/rng.js';

after(releaseGpu);

const F = onnx.TensorProto.DataType.FLOAT, I64 = onnx.TensorProto.DataType.INT64;
const AT = onnx.AttributeProto.AttributeType;
const vi = (name: string, dims?: (number | string)[]): onnx.ValueInfoProto.$Properties => ({
  name, type: { tensorType: { elemType: F, ...(dims ? { shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } : {}) } },
});
const i64 = (name: string, v: number[], dims = [v.length]) => ({ name, dims, dataType: I64, rawData: new Uint8Array(new BigInt64Array(v.map(BigInt)).buffer) });
const f32 = (name: string, v: number[], dims = [v.length]) => ({ name, dims, dataType: F, rawData: new Uint8Array(new Float32Array(v).buffer) });
type NodeP = onnx.NodeProto.$Properties;
const branch = (name: string, node: NodeP[], out: string[]): onnx.GraphProto.$Properties => ({ name, node, output: out.map((y) => vi(y)) });
const ifNode = (name: string, cond: string, out: string[], then: onnx.GraphProto.$Properties, els: onnx.GraphProto.$Properties): NodeP => ({
  name, opType: 'If', input: [cond], output: out,
  attribute: [{ name: 'then_branch', type: AT.GRAPH, g: then }, { name: 'else_branch', type: AT.GRAPH, g: els }],
});
const model = (node: NodeP[], initializer: onnx.TensorProto.$Properties[], input: onnx.ValueInfoProto.$Properties[], output: string[], outDims?: number[]) => encodeModel({
  irVersion: 8, opsetImport: [{ domain: '', version: 17 }],
  graph: { name: 'g', input, output: output.map((y) => vi(y, outDims)), initializer, node },
});

// x [N, 3]: if N == 2 then (if N > 1 then Relu(x) else Neg(x)) * 2 else Sigmoid(x).
function shapeIf(): Uint8Array {
  return model([
    { name: 'shape', opType: 'Shape', input: ['x'], output: ['s'] },
    { name: 'gather', opType: 'Gather', input: ['s', 'zero'], output: ['n'], attribute: [{ name: 'axis', type: AT.INT, i: 0 }] },
    { name: 'is2', opType: 'Equal', input: ['n', 'two_i'], output: ['c'] },
    ifNode('outer', 'c', ['y'],
      branch('then', [
        { name: 'gt1', opType: 'Greater', input: ['n', 'one_i'], output: ['c2'] },
        ifNode('inner', 'c2', ['r'],
          branch('then2', [{ name: 'relu', opType: 'Relu', input: ['x'], output: ['r1'] }], ['r1']),
          branch('else2', [{ name: 'neg', opType: 'Neg', input: ['x'], output: ['r2'] }], ['r2'])),
        { name: 'double', opType: 'Mul', input: ['r', 'two_f'], output: ['y1'] },
      ], ['y1']),
      branch('else', [{ name: 'sigmoid', opType: 'Sigmoid', input: ['x'], output: ['y2'] }], ['y2'])),
  ], [i64('zero', [0], []), i64('one_i', [1], []), i64('two_i', [2], []), f32('two_f', [2], [])], [vi('x', ['N', 3])], ['y']);
}

test('If on a shape-derived condition: the branch taken replaces it, nested Ifs included', async () => {
  const two = await loadModel(shapeIf(), { source: 'if.onnx', inputShapes: { x: [2, 3] } });
  assert.deepEqual(two.nodes.map((n) => n.op), ['Relu', 'Mul']);
  assert.deepEqual(two.outputs, ['y']);
  assert.deepEqual(two.tensors.get('y')!.shape, [2, 3]);
  const one = await loadModel(shapeIf(), { source: 'if.onnx', inputShapes: { x: [1, 3] } });
  assert.deepEqual(one.nodes.map((n) => n.op), ['Sigmoid']);
  assert.deepEqual(one.tensors.get('y')!.shape, [1, 3]);
});

// x [1, 4]: if ReduceMax(x) >= 0.5 then Relu(x * w) + b else x (both [1, 4]); also an output only one branch shapes
// as [1, 4] when `mismatch` (else gives [1, 1]).
function dataIf(mismatch: boolean): Uint8Array {
  return model([
    { name: 'max', opType: 'ReduceMax', input: ['x'], output: ['m'], attribute: [{ name: 'keepdims', type: AT.INT, i: 0 }] },
    { name: 'ge', opType: 'GreaterOrEqual', input: ['m', 'half'], output: ['c'] },
    ifNode('gate', 'c', ['y'],
      branch('then', [
        { name: 'mul', opType: 'Mul', input: ['x', 'w'], output: ['t1'] },
        { name: 'relu', opType: 'Relu', input: ['t1'], output: ['t2'] },
        { name: 'add', opType: 'Add', input: ['t2', 'b'], output: ['t3'] },
      ], ['t3']),
      mismatch
        ? branch('else', [{ name: 'mean', opType: 'ReduceMean', input: ['x'], output: ['e1'], attribute: [{ name: 'axes', type: AT.INTS, ints: [1] }] }], ['e1'])
        : branch('else', [{ name: 'id', opType: 'Identity', input: ['x'], output: ['e1'] }], ['e1'])),
  ], [f32('half', [0.5], []), f32('w', [1.5, -2, 0.25, 3], [1, 4]), f32('b', [0.1, 0.2, 0.3, 0.4], [1, 4])], [vi('x', [1, 4])], ['y']);
}

test('If on a data-dependent condition: both branches and a Where, the same values as the If on both sides of the threshold', async () => {
  const g = await loadModel(dataIf(false), { source: 'gate.onnx' });
  assert.equal(g.nodes.filter((n) => n.op === 'If').length, 0);
  assert.equal(g.nodes.filter((n) => n.op === 'Where').length, 1);
  assert.deepEqual(g.tensors.get('y')!.shape, [1, 4]);
  const w = [1.5, -2, 0.25, 3], b = [0.1, 0.2, 0.3, 0.4];
  const s = await createSession(g, { plan: 'unfused' });
  try {
    const r = mulberry32(7);
    let taken = 0;
    for (let k = 0; k < 6; k++) {
      // Half the draws stay under the 0.5 threshold (the else branch), half reach over it.
      const x = Float32Array.from({ length: 4 }, () => (k % 2 === 0 ? r() * 0.45 : r() * 2 - 0.5));
      const then = Math.max(...x) >= 0.5;
      if (then) taken++;
      const want = then ? x.map((v, i) => Math.max(0, v * w[i]) + b[i]) : x;
      const got = (await s.run({ x })).y.data;
      // float32 arithmetic on both sides; one multiply and one add: a few ulp.
      for (let i = 0; i < 4; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-6 * (1 + Math.abs(want[i])), `draw ${k} [${i}]: ${got[i]} vs ${want[i]}`);
    }
    assert.ok(taken > 0 && taken < 6, `both branches were exercised (${taken} of 6 took then)`);
  } finally {
    s.dispose();
  }
});

test('If on a data-dependent condition whose branches disagree on a shape stays, and the executor names it (exit 3)', async () => {
  const g = await loadModel(dataIf(true), { source: 'gate.onnx' });
  assert.deepEqual(g.nodes.filter((n) => n.op === 'If').map((n) => n.name), ['gate']);
  await assert.rejects(createSession(g, { plan: 'unfused' }), (e: unknown) => e instanceof FcmError && e.exitCode === 3 && /'gate'/.test(e.message)
    && /condition 'c' is computed at run time/.test(e.message) && /output 'y' is float32 \[1, 4\] in then_branch and float32 \[1, 1\] in else_branch/.test(e.message));
});

test('If with a branch fcm-opt cannot import (a float8 initializer) stays opaque; the executor says why (exit 3)', async () => {
  // x [1, 2] -> If(true): then: Add(x, w8) with w8 float8e4m3 (unsupported), else: Relu(x).
  const w8 = { name: 'w8', dims: [2], dataType: onnx.TensorProto.DataType.FLOAT8E4M3FN, rawData: new Uint8Array([0x38, 0x40]) };
  const bytes = model([
    ifNode('pick', 'yes', ['y'],
      { name: 'then', node: [{ name: 'add', opType: 'Add', input: ['x', 'w8'], output: ['t'] }], initializer: [w8], output: [vi('t')] },
      branch('else', [{ name: 'relu', opType: 'Relu', input: ['x'], output: ['e'] }], ['e'])),
  ], [{ name: 'yes', dims: [], dataType: onnx.TensorProto.DataType.BOOL, rawData: new Uint8Array([1]) }], [vi('x', [1, 2])], ['y'], [1, 2]);
  // The output's shape is stated in the file: onnxruntime cannot load the file to find it.
  const g = await loadModel(bytes, { source: 'f8.onnx' });
  assert.deepEqual(g.nodes.map((n) => n.op), ['If']);
  await assert.rejects(createSession(g, { plan: 'unfused' }), (e: unknown) => e instanceof FcmError && e.exitCode === 3 && /'pick'/.test(e.message) && /FLOAT8E4M3FN/.test(e.message));
});
