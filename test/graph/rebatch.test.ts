// The graph at a smaller batch (src/graph/passes/rebatch.ts): shapes before and after, the Reshape that keeps the
// batch first rewritten, weights untouched, and the graphs whose batch cannot be split refused (exit 3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { FcmError } from '../../src/errors.js';
import type { Graph } from '../../src/graph/ir.js';
import { prepareGraph } from '../../src/graph/prepare.js';
import { commonBatch, rebatchGraph } from '../../src/graph/passes/rebatch.js';

const refused = (re: RegExp) => (e: unknown) => e instanceof FcmError && e.exitCode === 3 && re.test(e.message) && !e.message.includes('\n');

/** conv -> pool -> (flatten or PyTorch's view(x.size(0), -1), folded at batch `batch`) -> gemm. */
function net(batch: number, view = false): Graph {
  const b = new GraphBuilder('net', 1);
  const x = b.input('input', [batch, 3, 8, 8]);
  const p = b.globalAveragePool(b.relu(b.conv(x, { filters: 4, kernel: 3, stride: 2 })));
  return prepareGraph(b.build([b.gemm(view ? b.viewBatchFlat(p) : b.flatten(p), 5)]));
}

test('rebatch: inputs, activations and outputs take the new batch; constants stay; the source graph is unchanged', () => {
  const g = net(8);
  const s = rebatchGraph(g, 2);
  assert.deepEqual(s.tensors.get('input')!.shape, [2, 3, 8, 8]);
  assert.deepEqual(s.tensors.get(s.outputs[0])!.shape, [2, 5]);
  assert.deepEqual(g.tensors.get(g.outputs[0])!.shape, [8, 5]);
  for (const [name, t] of g.tensors) if (t.data) assert.equal(s.tensors.get(name), t, `constant '${name}'`);
  assert.equal(s.nodes.length, g.nodes.length);
  assert.equal(commonBatch(s), 2);
});

test("rebatch: a Reshape to [B, -1] folded at batch B (PyTorch's view(x.size(0), -1)) reshapes to [b, -1]", () => {
  const g = net(8, true);
  const reshape = g.nodes.find((n) => n.op === 'Reshape')!;
  assert.deepEqual(reshape.attrs.shape, [8, -1], 'the fixture folds the view into a constant target');
  const s = rebatchGraph(g, 4);
  assert.deepEqual(s.nodes.find((n) => n.op === 'Reshape')!.attrs.shape, [4, -1]);
  assert.deepEqual(reshape.attrs.shape, [8, -1], 'the source graph kept its target');
  assert.deepEqual(s.tensors.get(s.outputs[0])!.shape, [4, 5]);
});

test('rebatch: refused where images may mix or the batch is not the first dimension', () => {
  assert.throws(() => rebatchGraph(net(6), 4), refused(/batch 6 does not split into sub-batches of 4/));
  const cases: [string, (b: GraphBuilder, x: string) => string, RegExp][] = [
    ['Softmax over the batch', (b, x) => b.node('Softmax', [x], [4, 6], { axis: 0 }), /Softmax.*axis 0, the batch axis/],
    ['Softmax over axis -2 (the batch of a rank-2 tensor)', (b, x) => b.node('Softmax', [x], [4, 6], { axis: -2 }), /axis -2, the batch axis/],
    ['Transpose moving the batch', (b, x) => b.node('Transpose', [x], [6, 4], { perm: [1, 0] }), /moves the batch axis/],
    ['ReduceMean over the batch', (b, x) => b.node('ReduceMean', [x], [1, 6], { axes: [0], keepdims: 1 }), /axes \[0\]/],
    ['MatMul by an activation', (b, x) => b.node('MatMul', [x, b.node('Transpose', [x], [6, 4], { perm: [1, 0] })], [4, 4]), /moves the batch axis|matrix computed from the input/],
    ['an opaque op', (b, x) => b.node('MyCustomOp', [x], [4, 6]), /MyCustomOp.*not known/],
    ['a Reshape folding the batch into channels', (b, x) => b.node('Reshape', [x, b.int64s('s', [2, 12])], [2, 12]), /cannot be split/],
  ];
  for (const [what, make, re] of cases) {
    const b = new GraphBuilder('mix', 2);
    const x = b.input('input', [4, 6]);
    const g = b.build([make(b, x)]);
    assert.throws(() => rebatchGraph(prepareGraph(g), 2), refused(re), what);
  }
  // Split without an axis: halves of the batch, whose shapes follow the batch (4 -> 2 + 2, 2 -> 1 + 1) but whose
  // images are not each sub-batch's own (ONNX's default axis is 0).
  const sb = new GraphBuilder('split', 2);
  const sx = sb.input('input', [4, 6]);
  const first = sb.node('Split', [sx], [2, 6], { split: [2, 2] });
  const split = sb.build([first, 'second']);
  split.nodes[0].outputs.push('second');
  split.tensors.set('second', { name: 'second', dtype: 'float32', shape: [2, 6] });
  assert.throws(() => rebatchGraph(split, 2), refused(/Split.*axis 0, the batch axis/));
  // Inputs of different first dimensions: no common batch.
  const b = new GraphBuilder('two', 2);
  const x = b.input('a', [4, 6]), y = b.input('b', [2, 6]);
  const g = b.build([b.node('Relu', [x], [4, 6]), b.node('Relu', [y], [2, 6])]);
  assert.equal(commonBatch(g), undefined);
  assert.throws(() => rebatchGraph(g, 2), refused(/do not share a first \(batch\) dimension/));
});

test('rebatch: a table looked up along its axis 0 with indices computed from the input is per image', () => {
  const b = new GraphBuilder('lookup', 2);
  const ids = b.input('ids', [4, 3], 'int64');
  const table = b.random('table', [10, 5], 1);
  const g = b.build([b.node('Gather', [table, ids], [4, 3, 5], { axis: 0 })]);
  assert.deepEqual(rebatchGraph(g, 2).tensors.get(g.outputs[0])!.shape, [2, 3, 5]);
});

test('rebatch: what is computed from weights alone may work along axis 0 (a transposed weight matrix)', () => {
  const b = new GraphBuilder('w', 2);
  const x = b.input('input', [4, 6]);
  const w = b.random('w', [5, 6], 1);
  // Not prepared (constant folding would fold the Transpose): the node reads a weight only.
  const wt = b.node('Transpose', [w], [6, 5], { perm: [1, 0] });
  const g = b.build([b.node('MatMul', [x, wt], [4, 5])]);
  const s = rebatchGraph(g, 2);
  assert.deepEqual(s.tensors.get(s.outputs[0])!.shape, [2, 5]);
  assert.deepEqual(s.tensors.get(wt)!.shape, [6, 5]);
});
