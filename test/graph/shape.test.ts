import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inferShapes, unknownTensors } from '../../src/graph/shape.js';
import type { AttrValue } from '../../src/graph/ir.js';
import { graph, f32, i64, shapeOf, throwsFcm } from './helpers.js';

const zeros = (shape: number[]) => f32(shape, () => 0);

/** One node on input x (and constants), returning the inferred shape of its outputs. */
function one(op: string, x: number[], attrs: Record<string, AttrValue> = {}, consts: Record<string, ReturnType<typeof f32>> = {}, extra: string[] = [], outs = 1) {
  const out = Array.from({ length: outs }, (_, i) => `y${i}`);
  const g = graph({ inputs: { x }, consts, nodes: [{ op, in: ['x', ...extra], out, attrs, name: 'n' }], outputs: out });
  const r = inferShapes(g);
  return { shapes: out.map((y) => shapeOf(r, y)), g: r };
}

test('Conv: standard, strided, dilated, grouped, depthwise', () => {
  // (224 + 2 - 3) / 2 + 1 = 112
  assert.deepEqual(one('Conv', [1, 3, 224, 224], { strides: [2, 2], pads: [1, 1, 1, 1] }, { w: zeros([32, 3, 3, 3]) }, ['w']).shapes[0], [1, 32, 112, 112]);
  // dilation 2: effective 5, (20 - 5) / 1 + 1 = 16
  assert.deepEqual(one('Conv', [2, 4, 20, 20], { dilations: [2, 2] }, { w: zeros([8, 4, 3, 3]) }, ['w']).shapes[0], [2, 8, 16, 16]);
  // group 2: weight [6, 2, 1, 1] over 4 channels
  assert.deepEqual(one('Conv', [1, 4, 5, 7], { group: 2 }, { w: zeros([6, 2, 1, 1]) }, ['w']).shapes[0], [1, 6, 5, 7]);
  // depthwise 3x3 stride 2 pad 1: (15 + 2 - 3) / 2 + 1 = 8
  const dw = one('Conv', [1, 16, 15, 15], { group: 16, strides: [2, 2], pads: [1, 1, 1, 1] }, { w: zeros([16, 1, 3, 3]) }, ['w']);
  assert.deepEqual(dw.shapes[0], [1, 16, 8, 8]);
  assert.deepEqual(dw.g.nodes[0].attrs.kernel, [3, 3], 'kernel filled in from the weight');
  assert.deepEqual(dw.g.nodes[0].attrs.dilations, [1, 1]);
});

test('Conv auto_pad resolves into explicit pads', () => {
  // SAME_UPPER, 7 wide, k3 s2: out ceil(7/2) = 4, total pad (4-1)*2 + 3 - 7 = 2 -> [1, 1]
  let r = one('Conv', [1, 1, 7, 8], { strides: [2, 2], autoPad: 'SAME_UPPER' }, { w: zeros([1, 1, 3, 3]) }, ['w']);
  assert.deepEqual(r.shapes[0], [1, 1, 4, 4]);
  // width 8: out 4, total (4-1)*2 + 3 - 8 = 1 -> upper puts it at the end
  assert.deepEqual(r.g.nodes[0].attrs.pads, [1, 0, 1, 1]);
  assert.equal(r.g.nodes[0].attrs.autoPad, undefined);
  r = one('Conv', [1, 1, 7, 8], { strides: [2, 2], autoPad: 'SAME_LOWER' }, { w: zeros([1, 1, 3, 3]) }, ['w']);
  assert.deepEqual(r.g.nodes[0].attrs.pads, [1, 1, 1, 0]);
  r = one('Conv', [1, 1, 7, 8], { strides: [2, 2], autoPad: 'VALID' }, { w: zeros([1, 1, 3, 3]) }, ['w']);
  assert.deepEqual(r.shapes[0], [1, 1, 3, 3]);
  assert.deepEqual(r.g.nodes[0].attrs.pads, [0, 0, 0, 0]);
});

test('Conv checks name the node: channels, group, stride 0, bias', () => {
  throwsFcm(() => one('Conv', [1, 3, 8, 8], {}, { w: zeros([8, 4, 3, 3]) }, ['w']), 'invalid', "node 'n'", '3', 'input channels');
  throwsFcm(() => one('Conv', [1, 8, 8, 8], { group: 4 }, { w: zeros([8, 1, 3, 3]) }, ['w']), 'invalid', "node 'n'", 'group 4');
  throwsFcm(() => one('Conv', [1, 3, 8, 8], { strides: [0, 1] }, { w: zeros([8, 3, 3, 3]) }, ['w']), 'invalid', "node 'n'", 'stride');
  throwsFcm(() => one('Conv', [1, 3, 8, 8], { dilations: [0, 0] }, { w: zeros([8, 3, 3, 3]) }, ['w']), 'invalid', 'dilation');
  throwsFcm(() => one('Conv', [1, 3, 8, 8], { group: 0 }, { w: zeros([8, 3, 3, 3]) }, ['w']), 'invalid', 'group 0');
  throwsFcm(() => one('Conv', [1, 3, 8, 8], {}, { w: zeros([8, 3, 3, 3]), b: zeros([7]) }, ['w', 'b']), 'invalid', "bias 'b'");
  throwsFcm(() => one('Conv', [1, 3, 2, 2], {}, { w: zeros([8, 3, 3, 3]) }, ['w']), 'invalid', 'larger than the padded input');
});

test('huge shapes are refused with exit 4, negative ones with exit 2', () => {
  const big = 1 << 20;
  throwsFcm(() => one('Reshape', [1, 4], {}, { s: i64([big, big, big]) as never }, ['s']), 'invalid', 'cannot reshape');
  // A graph input that is large but legal, padded past the memory budget.
  throwsFcm(() => one('Pad', [1, 1024, 1024], { pads: [0, 0, 0, 0, 1 << 20, 0] }), 'limit', "node 'n'");
  throwsFcm(() => one('Pad', [1, 4, 4], { pads: [0, 0, 0, 0, -8, 0] }), 'invalid', "node 'n'");
  const g = graph({ inputs: { x: [1, -3] }, nodes: [], outputs: ['x'] });
  throwsFcm(() => inferShapes(g), 'invalid', "tensor 'x'");
});

test('Gemm, MatMul and broadcasting', () => {
  assert.deepEqual(one('Gemm', [2, 10], { transB: 1 }, { w: zeros([5, 10]), c: zeros([5]) }, ['w', 'c']).shapes[0], [2, 5]);
  assert.deepEqual(one('Gemm', [10, 2], { transA: 1 }, { w: zeros([10, 5]) }, ['w']).shapes[0], [2, 5]);
  throwsFcm(() => one('Gemm', [2, 10], {}, { w: zeros([5, 10]) }, ['w']), 'invalid', 'inner dimensions');
  assert.deepEqual(one('MatMul', [3, 1, 4, 6], {}, { w: zeros([5, 6, 2]) }, ['w']).shapes[0], [3, 5, 4, 2]);
  assert.deepEqual(one('MatMul', [6], {}, { w: zeros([6, 2]) }, ['w']).shapes[0], [2]);
  assert.deepEqual(one('Add', [1, 3, 1, 5], {}, { b: zeros([4, 1]) }, ['b']).shapes[0], [1, 3, 4, 5]);
  throwsFcm(() => one('Mul', [1, 3], {}, { b: zeros([4]) }, ['b']), 'invalid', 'broadcast');
});

test('activations, Softmax, BatchNormalization keep the shape', () => {
  for (const op of ['Relu', 'LeakyRelu', 'Clip', 'HardSigmoid', 'HardSwish', 'Sigmoid', 'Tanh', 'SiLU', 'Abs', 'Softmax', 'Identity']) {
    assert.deepEqual(one(op, [2, 3, 4]).shapes[0], [2, 3, 4], op);
  }
  const p = zeros([3]);
  assert.deepEqual(one('BatchNormalization', [1, 3, 4, 4], {}, { s: p, b: p, m: p, v: p }, ['s', 'b', 'm', 'v']).shapes[0], [1, 3, 4, 4]);
  throwsFcm(() => one('BatchNormalization', [1, 4, 4, 4], {}, { s: p, b: p, m: p, v: p }, ['s', 'b', 'm', 'v']), 'invalid', "'s'");
});

test('pooling: global, reduce, max/avg with ceil mode', () => {
  assert.deepEqual(one('GlobalAveragePool', [2, 8, 7, 5]).shapes[0], [2, 8, 1, 1]);
  assert.deepEqual(one('ReduceMean', [2, 8, 7, 5], { axes: [2, 3], keepdims: 1 }).shapes[0], [2, 8, 1, 1]);
  assert.deepEqual(one('ReduceMean', [2, 8, 7, 5], { axes: [-1], keepdims: 0 }).shapes[0], [2, 8, 7]);
  assert.deepEqual(one('ReduceMean', [2, 8, 7, 5], { axes: [], keepdims: 0 }).shapes[0], []);
  assert.deepEqual(one('ReduceMean', [2, 8, 7, 5], { keepdims: 0 }, { a: i64([1]) as never }, ['a']).shapes[0], [2, 7, 5]);
  // (112 + 2 - 3) / 2 + 1 = 56.5 -> 56 floor
  assert.deepEqual(one('MaxPool', [1, 4, 112, 112], { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }).shapes[0], [1, 4, 56, 56]);
  // 110 k3 s2 no pad: floor(107/2)+1 = 54, ceil(107/2)+1 = 55
  assert.deepEqual(one('MaxPool', [1, 4, 110, 110], { kernel: [3, 3], strides: [2, 2] }).shapes[0], [1, 4, 54, 54]);
  assert.deepEqual(one('MaxPool', [1, 4, 110, 110], { kernel: [3, 3], strides: [2, 2], ceilMode: 1 }).shapes[0], [1, 4, 55, 55]);
  // ceil would start a last window inside the end padding: 6, k2 s2 pad 1: ceil(6/2)+1 = 4, but (4-1)*2 = 6 >= 6+1? no -> 4
  assert.deepEqual(one('AveragePool', [1, 1, 6, 6], { kernel: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: 1 }).shapes[0], [1, 1, 4, 4]);
  // 5, k2 s2 pad 1 (left only effective): span 5+1+1-2 = 5, ceil(5/2)+1 = 4, (4-1)*2 = 6 >= 5+1 -> 3
  assert.deepEqual(one('AveragePool', [1, 1, 5, 5], { kernel: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: 1 }).shapes[0], [1, 1, 3, 3]);
  assert.deepEqual(one('MaxPool', [1, 1, 9, 9], { kernel: [3, 3], strides: [2, 2], autoPad: 'SAME_UPPER' }).shapes[0], [1, 1, 5, 5]);
});

test('Flatten, Reshape with 0 and -1, Transpose', () => {
  assert.deepEqual(one('Flatten', [2, 3, 4, 5]).shapes[0], [2, 60]);
  assert.deepEqual(one('Flatten', [2, 3, 4, 5], { axis: 0 }).shapes[0], [1, 120]);
  assert.deepEqual(one('Flatten', [2, 3, 4, 5], { axis: -2 }).shapes[0], [6, 20]);
  assert.deepEqual(one('Reshape', [2, 3, 4, 5], { shape: [0, -1] }).shapes[0], [2, 60]);
  assert.deepEqual(one('Reshape', [2, 3, 4, 5], {}, { s: i64([0, 0, -1, 2]) as never }, ['s']).shapes[0], [2, 3, 10, 2]);
  throwsFcm(() => one('Reshape', [2, 3], { shape: [-1, -1] }), 'invalid', 'more than one -1');
  throwsFcm(() => one('Reshape', [2, 3], { shape: [4, -1] }), 'invalid', 'cannot reshape');
  assert.deepEqual(one('Transpose', [2, 3, 4], { perm: [2, 0, 1] }).shapes[0], [4, 2, 3]);
  assert.deepEqual(one('Transpose', [2, 3, 4]).shapes[0], [4, 3, 2]);
});

test('Concat, Split, Slice, Pad', () => {
  assert.deepEqual(one('Concat', [1, 3, 4], { axis: 1 }, { b: zeros([1, 5, 4]) }, ['b']).shapes[0], [1, 8, 4]);
  throwsFcm(() => one('Concat', [1, 3, 4], { axis: 1 }, { b: zeros([1, 5, 5]) }, ['b']), 'invalid', "'b'");
  assert.deepEqual(one('Split', [1, 10, 4], { axis: 1, split: [3, 7] }, {}, [], 2).shapes, [[1, 3, 4], [1, 7, 4]]);
  assert.deepEqual(one('Split', [1, 10, 4], { axis: 1 }, {}, [], 3).shapes, [[1, 4, 4], [1, 4, 4], [1, 2, 4]]);
  assert.deepEqual(one('Split', [6, 2], {}, { s: i64([1, 5]) as never }, ['s'], 2).shapes, [[1, 2], [5, 2]]);
  assert.deepEqual(one('Slice', [10, 20], { starts: [1, -5], ends: [9, 1e18], axes: [0, 1], steps: [2, 1] }).shapes[0], [4, 5]);
  assert.deepEqual(one('Slice', [10], { starts: [-1], ends: [-11], axes: [0], steps: [-1] }).shapes[0], [10]);
  const big = { shape: [1], data: BigInt64Array.of(9223372036854775807n), dtype: 'int64' as const };
  assert.deepEqual(one('Slice', [3, 8], {}, { s: i64([2]) as never, e: big as never, a: i64([1]) as never }, ['s', 'e', 'a']).shapes[0], [3, 6]);
  assert.deepEqual(one('Pad', [1, 3, 4, 4], { pads: [0, 0, 1, 2, 0, 0, 3, 4] }).shapes[0], [1, 3, 8, 10]);
  assert.deepEqual(one('Pad', [1, 3, 4, 4], {}, { p: i64([1, 1, 2, 2]) as never, a: i64([2, 3]) as never }, ['p', '', 'a']).shapes[0], [1, 3, 7, 7]);
});

test('Shape, Gather, Unsqueeze, Squeeze, Cast, Q/DQ', () => {
  let r = one('Shape', [2, 3, 4]);
  assert.deepEqual(r.shapes[0], [3]);
  assert.equal(r.g.tensors.get('y0')!.dtype, 'int64');
  assert.deepEqual(one('Gather', [5, 6, 7], { axis: 1 }, { i: i64([0, 1, 2, 3], [2, 2]) as never }, ['i']).shapes[0], [5, 2, 2, 7]);
  assert.deepEqual(one('Gather', [5, 6], {}, { i: { shape: [], data: BigInt64Array.of(2n), dtype: 'int64' } as never }, ['i']).shapes[0], [6]);
  assert.deepEqual(one('Unsqueeze', [3, 4], { axes: [0, -1] }).shapes[0], [1, 3, 4, 1]);
  assert.deepEqual(one('Squeeze', [1, 3, 1, 4], { axes: [2] }).shapes[0], [1, 3, 4]);
  assert.deepEqual(one('Squeeze', [1, 3, 1, 4]).shapes[0], [3, 4]);
  throwsFcm(() => one('Squeeze', [1, 3], { axes: [1] }), 'invalid', 'squeeze axis 1');
  r = one('Cast', [2, 2], { to: 'int32' });
  assert.equal(r.g.tensors.get('y0')!.dtype, 'int32');
  r = one('QuantizeLinear', [2, 2], {}, { s: f32([], [0.1]), z: { shape: [], data: Int8Array.of(0), dtype: 'int8' } as never }, ['s', 'z']);
  assert.equal(r.g.tensors.get('y0')!.dtype, 'int8');
});

test('fused FCM ops', () => {
  const mk = (op: string, w1: number[], w2: number[], attrs: Record<string, AttrValue>) => {
    const g = graph({ inputs: { x: [1, 8, 10, 10] }, consts: { w1: zeros(w1), w2: zeros(w2) },
      nodes: [{ op, domain: 'ai.fcm.opt', in: ['x', 'w1', '', 'w2', '', ''], out: ['y'], attrs, name: 'f' }], outputs: ['y'] });
    return shapeOf(inferShapes(g), 'y');
  };
  assert.deepEqual(mk('FusedPwDw', [16, 8, 1, 1], [16, 1, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }), [1, 16, 5, 5]);
  assert.deepEqual(mk('FusedDwPw', [8, 1, 3, 3], [24, 8, 1, 1], { strides: [1, 1], pads: [1, 1, 1, 1] }), [1, 24, 10, 10]);
  assert.deepEqual(mk('FusedPwPw', [16, 8, 1, 1], [4, 16, 1, 1], {}), [1, 4, 10, 10]);
  throwsFcm(() => mk('FusedPwDw', [16, 8, 1, 1], [8, 1, 3, 3], {}), 'invalid', "node 'f'", 'depthwise');
});

test('opaque ops leave their outputs and everything after them unknown', () => {
  const g = graph({
    inputs: { x: [1, 3, 8, 8] },
    consts: { w: zeros([4, 3, 1, 1]) },
    nodes: [
      { op: 'Resize', in: ['x'], out: ['r'], name: 'resize' },
      { op: 'Conv', in: ['r', 'w'], out: ['c'] },
      { op: 'Relu', in: ['x'], out: ['k'] },
    ],
    outputs: ['c', 'k'],
  });
  const r = inferShapes(g);
  assert.deepEqual(unknownTensors(r), ['r', 'c']);
  assert.deepEqual(shapeOf(r, 'k'), [1, 3, 8, 8]);
  // Once the opaque output's shape is known (from onnxruntime), inference goes on past it.
  r.tensors.set('r', { name: 'r', dtype: 'float32', shape: [1, 3, 16, 16], shapeUnknown: false });
  const again = inferShapes(r);
  assert.deepEqual(unknownTensors(again), []);
  assert.deepEqual(shapeOf(again, 'c'), [1, 4, 16, 16]);
});

test('Softmax: rank 1 or more and an axis within it, else exit 2 naming the node', () => {
  const sm = (shape: number[], axis?: number) => graph({ inputs: { x: shape }, nodes: [{ op: 'Softmax', in: ['x'], out: ['y'], attrs: axis === undefined ? {} : { axis }, name: 'sm' }], outputs: ['y'] });
  assert.deepEqual(shapeOf(inferShapes(sm([1, 10])), 'y'), [1, 10]);
  assert.deepEqual(shapeOf(inferShapes(sm([2, 3, 4], -3)), 'y'), [2, 3, 4]);
  throwsFcm(() => inferShapes(sm([])), 'invalid', "node 'sm' (Softmax)", 'input is a scalar (rank 0); Softmax needs rank 1 or more');
  throwsFcm(() => inferShapes(sm([1, 10], 2)), 'invalid', "node 'sm' (Softmax)", 'axis 2 is outside rank 2');
});
