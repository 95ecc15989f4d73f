// An integer graph input (Silero VAD's int64 sample rate, which picks an If branch at run time): the float executor
// takes it as float32 values (exact up to 2^24), and check feeds onnxruntime the same values as int64.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeModel, onnx } from '../../converters/onnx/codec.js';
import { loadModel } from '../../src/graph/load.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { runCheck } from '../../src/check/check.js';

after(releaseGpu);

const F = onnx.TensorProto.DataType.FLOAT, I64 = onnx.TensorProto.DataType.INT64;
const AT = onnx.AttributeProto.AttributeType;
const vi = (name: string, elemType: number, dims: number[]): onnx.ValueInfoProto.$Properties => ({ name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });

/** y = rate == 16000 ? Relu(x) * 2 : Sigmoid(x), x [2, 3] float, rate int64 scalar. */
function rateIf(): Uint8Array {
  const branch = (name: string, node: onnx.NodeProto.$Properties[], out: string): onnx.GraphProto.$Properties => ({ name, node, output: [vi(out, F, [2, 3])] });
  return encodeModel({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'g', input: [vi('x', F, [2, 3]), vi('rate', I64, [])], output: [vi('y', F, [2, 3])],
      initializer: [{ name: 'k16', dims: [], dataType: I64, rawData: new Uint8Array(new BigInt64Array([16000n]).buffer) },
        { name: 'two', dims: [], dataType: F, rawData: new Uint8Array(new Float32Array([2]).buffer) }],
      node: [
        { name: 'is16k', opType: 'Equal', input: ['rate', 'k16'], output: ['c'] },
        { name: 'pick', opType: 'If', input: ['c'], output: ['y'], attribute: [
          { name: 'then_branch', type: AT.GRAPH, g: branch('then', [{ name: 'relu', opType: 'Relu', input: ['x'], output: ['r'] }, { name: 'dbl', opType: 'Mul', input: ['r', 'two'], output: ['y1'] }], 'y1') },
          { name: 'else_branch', type: AT.GRAPH, g: branch('else', [{ name: 'sig', opType: 'Sigmoid', input: ['x'], output: ['y2'] }], 'y2') }] },
      ],
    },
  });
}

test('int64 input deciding an If at run time: fed as float32, both rates give their branch', async () => {
  const g = await loadModel(rateIf(), { source: 'rate.onnx' });
  assert.equal(g.tensors.get('rate')!.dtype, 'int64');
  const x = Float32Array.of(-1.5, -0.25, 0, 0.5, 1, 3);
  const s = await createSession(g, { plan: 'unfused' });
  try {
    const hi = (await s.run({ x, rate: Float32Array.of(16000) })).y.data;
    const lo = (await s.run({ x, rate: Float32Array.of(8000) })).y.data;
    x.forEach((v, i) => {
      assert.ok(Math.abs(hi[i] - 2 * Math.max(0, v)) < 1e-6, `16000: ${hi[i]}`);
      assert.ok(Math.abs(lo[i] - 1 / (1 + Math.exp(-v))) < 1e-6, `8000: ${lo[i]}`);
    });
  } finally {
    s.dispose();
  }
});

test('check on a model with an int64 input: onnxruntime gets the same (rounded) values as int64', async () => {
  const r = await runCheck(rateIf(), { unfused: true }, 'rate.onnx');
  assert.ok(r.ok, JSON.stringify(r.outputs));
  assert.ok(r.outputs[0].maxAbsError < 1e-6);
});
