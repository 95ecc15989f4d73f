// Shapes past opaque ops come from onnxruntime (src/graph/ort-shapes.ts). Two ways that answer got lost, both met in
// real models: a scalar output (openWakeWord's melspectrogram: ReduceMax over all axes, keepdims 0), and an
// opaque op in front of an Identity to a graph output (Silero VAD: If -> Identity -> output).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeModel, onnx } from '../../converters/onnx/codec.js';
import { loadModel } from '../../src/graph/load.js';
import { inferShapes } from '../../src/graph/shape.js';
import { graph, f32 } from './helpers.js';
import { FcmError } from '../../src/errors.js';

const F = onnx.TensorProto.DataType.FLOAT;
const AT = onnx.AttributeProto.AttributeType;
const vi = (name: string, dims?: number[]): onnx.ValueInfoProto.$Properties => ({
  name, type: { tensorType: { elemType: F, ...(dims ? { shape: { dim: dims.map((d) => ({ dimValue: d })) } } : {}) } },
});

test('an opaque op\'s scalar output, once looked up, stays known through the next inference', () => {
  // ReduceMax is opaque to the IR; onnxruntime said its output is a scalar (shapeUnknown: false, shape []).
  const g = graph({
    inputs: { x: [1, 4] },
    consts: { c: f32([], [1]) },
    nodes: [
      { op: 'ReduceMax', in: ['x'], out: ['m'], attrs: { keepdims: 0 } },
      { op: 'Sub', in: ['m', 'c'], out: ['y'] },
    ],
    outputs: ['y'],
  });
  g.tensors.set('m', { name: 'm', dtype: 'float32', shape: [], shapeUnknown: false });
  const once = inferShapes(g);
  const twice = inferShapes(once);
  for (const h of [once, twice]) {
    assert.notEqual(h.tensors.get('m')!.shapeUnknown, true);
    assert.deepEqual(h.tensors.get('y')!.shape, []);
    assert.notEqual(h.tensors.get('y')!.shapeUnknown, true);
  }
});

test('loadModel: an opaque scalar and an opaque op in front of an Identity to the graph output get their shapes', async () => {
  // x [2, 3] -> ReduceMax (all axes, keepdims 0: a scalar) -> Sub 1 -> Identity -> y;
  //             ReduceMax (axis 1, keepdims 1) -> Identity -> z.
  const bytes = encodeModel({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'g',
      input: [vi('x', [2, 3])],
      output: [vi('y'), vi('z')],
      initializer: [{ name: 'one', dims: [], dataType: F, rawData: new Uint8Array(new Float32Array([1]).buffer) }],
      node: [
        { name: 'max_all', opType: 'ReduceMax', input: ['x'], output: ['m'], attribute: [{ name: 'keepdims', type: AT.INT, i: 0 }] },
        { name: 'sub', opType: 'Sub', input: ['m', 'one'], output: ['s'] },
        { name: 'id_y', opType: 'Identity', input: ['s'], output: ['y'] },
        { name: 'max_rows', opType: 'ReduceMax', input: ['x'], output: ['r'], attribute: [{ name: 'keepdims', type: AT.INT, i: 1 }, { name: 'axes', type: AT.INTS, ints: [1] }] },
        { name: 'id_z', opType: 'Identity', input: ['r'], output: ['z'] },
      ],
    },
  });
  const g = await loadModel(bytes, { source: 'opaque.onnx' });
  assert.deepEqual(g.tensors.get('y')!.shape, []);
  assert.deepEqual(g.tensors.get('z')!.shape, [2, 1]);
  for (const y of ['y', 'z']) assert.notEqual(g.tensors.get(y)!.shapeUnknown, true, y);
});

test('an opaque elementwise op: its recorded shape must be its operands\' broadcast; operands that do not broadcast are exit 2', () => {
  // GreaterOrEqual is opaque to the IR; an importer (TFLite) records its output shape from the file.
  const make = (b: number[], recorded: number[]) => {
    const g = graph({ inputs: { a: [1, 8, 4, 4], b }, nodes: [{ op: 'GreaterOrEqual', in: ['a', 'b'], out: ['y'] }], outputs: ['y'] });
    g.tensors.set('y', { name: 'y', dtype: 'bool', shape: recorded, shapeUnknown: false });
    return g;
  };
  assert.deepEqual(inferShapes(make([1, 8, 1, 1], [1, 8, 4, 4])).tensors.get('y')!.shape, [1, 8, 4, 4]);
  const fails = (g: ReturnType<typeof make>, re: RegExp) => assert.throws(() => inferShapes(g), (e: unknown) => e instanceof FcmError && e.exitCode === 2 && re.test(e.message));
  fails(make([1, 8, 3, 3], [1, 8, 4, 4]), /GreaterOrEqual.*shapes \[1,8,4,4\] and \[1,8,3,3\] do not broadcast/);
  fails(make([1, 8, 1, 1], [1, 8, 2, 2]), /output 'y' is recorded as \[1,8,2,2\], but its operands broadcast to \[1,8,4,4\]/);
});
