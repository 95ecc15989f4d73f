// Constant folding of the constant subgraphs real exporters write (COVERAGE.md): TF-exported ONNX computes Pad's
// pads from Split and Concat of an initializer and ConstantOfShape, MediaPipe-style files Cast float16 weights,
// transformer tails compute with Pow/Sqrt/Range/Where. Every node whose inputs are all constants folds; a node
// reading an activation does not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { foldConstants } from '../../src/graph/passes/fold-constants.js';
import { prepareGraph } from '../../src/graph/prepare.js';
import { unknownTensors } from '../../src/graph/shape.js';
import { halfBits } from '../../fixtures/real-model-classes.js';
import { graph, f32, i64, summary } from './helpers.js';
import { FcmError } from '../../src/errors.js';

const values = (t: { data?: ArrayLike<number | bigint> } | undefined) => Array.from(t!.data!, Number);

test('Pad whose pads come from Concat of Split of an initializer and ConstantOfShape (TF-exported ONNX) gets static pads', () => {
  // pads = Concat(ConstantOfShape([2]) = [0, 0], Split(base)[0], [0, 0], Split(base)[1]): [0, 0, 1, 2, 0, 0, 3, 4].
  const g = graph({
    inputs: { x: [1, 2, 4, 4] },
    consts: { base: i64([1, 2, 3, 4]), two: i64([2]), split: i64([2, 2]), w: f32([3, 2, 1, 1], (i) => i) },
    nodes: [
      { op: 'ConstantOfShape', in: ['two'], out: ['zeros'], attrs: { value: { name: 'v', dtype: 'int64', shape: [1], data: BigInt64Array.of(0n) } } },
      { op: 'Split', in: ['base', 'split'], out: ['a', 'b'], attrs: { axis: 0 } },
      { op: 'Concat', in: ['zeros', 'a', 'zeros', 'b'], out: ['pads'], attrs: { axis: 0 } },
      { op: 'Pad', in: ['x', 'pads'], out: ['p'], attrs: { mode: 'constant' }, name: 'pad' },
      { op: 'Conv', in: ['p', 'w'], out: ['y'], attrs: { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 } },
    ],
    outputs: ['y'],
  });
  const folded = foldConstants(g);
  assert.deepEqual(summary(folded), ['Pad(x,pads)->p', 'Conv(p,w)->y']);
  assert.deepEqual(values(folded.tensors.get('pads')), [0, 0, 1, 2, 0, 0, 3, 4]);
  const prepared = prepareGraph(g);
  assert.deepEqual(unknownTensors(prepared), []);
  assert.deepEqual(prepared.tensors.get('y')!.shape, [1, 3, 1 + 4 + 3, 2 + 4 + 4]);
});

test('Cast of float16 weights to float32 folds into a float32 constant', () => {
  const w16 = [0.5, -1.25, 2, 0.125, -0.75, 1.5];
  const g = graph({
    inputs: { x: [1, 2, 3, 3] },
    consts: { w16: { shape: [3, 2, 1, 1], data: Uint16Array.from(w16, halfBits), dtype: 'float16' } },
    nodes: [
      { op: 'Cast', in: ['w16'], out: ['w'], attrs: { to: 'float32' } },
      { op: 'Conv', in: ['x', 'w'], out: ['y'], attrs: { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 } },
    ],
    outputs: ['y'],
  });
  const folded = foldConstants(g);
  assert.deepEqual(summary(folded), ['Conv(x,w)->y']);
  const w = folded.tensors.get('w')!;
  assert.equal(w.dtype, 'float32');
  assert.deepEqual(values(w), w16);
});

test('comparisons, Where, Pow, Sqrt, Range, Expand, Transpose and constant-mode Pad of constants fold with ONNX semantics', () => {
  const g = graph({
    inputs: { x: [2, 3] },
    consts: {
      a: f32([2, 3], [1, 4, 9, 16, 25, 36]), two: f32([1], [2]), ten: f32([1], [10]),
      start: i64([1], []), limit: i64([7], []), delta: i64([2], []), shape23: i64([2, 3]), pads: i64([0, 1, 1, 0]),
    },
    nodes: [
      { op: 'Sqrt', in: ['a'], out: ['r'] },                        // [1, 2, 3, 4, 5, 6]
      { op: 'Pow', in: ['r', 'two'], out: ['sq'] },                 // a again
      { op: 'Less', in: ['sq', 'ten'], out: ['small'] },            // [1, 1, 1, 0, 0, 0]
      { op: 'Where', in: ['small', 'r', 'ten'], out: ['w'] },       // [1, 2, 3, 10, 10, 10]
      { op: 'Range', in: ['start', 'limit', 'delta'], out: ['rng'] }, // [1, 3, 5]
      { op: 'Cast', in: ['rng'], out: ['rngf'], attrs: { to: 'float32' } },
      { op: 'Expand', in: ['rngf', 'shape23'], out: ['e'] },        // [[1, 3, 5], [1, 3, 5]]
      { op: 'Add', in: ['w', 'e'], out: ['s'] },                    // [2, 5, 8, 11, 13, 15]
      { op: 'Transpose', in: ['s'], out: ['t'], attrs: { perm: [1, 0] } }, // [[2, 11], [5, 13], [8, 15]]
      { op: 'Pad', in: ['t', 'pads'], out: ['pd'], attrs: { mode: 'constant' } }, // one column left, one row below
      { op: 'GreaterOrEqual', in: ['x', 'a'], out: ['ge'] },        // reads an activation: stays
    ],
    outputs: ['pd', 'ge'],
  });
  const folded = foldConstants(g);
  assert.deepEqual(summary(folded), ['GreaterOrEqual(x,a)->ge']);
  assert.deepEqual(values(folded.tensors.get('small')), [1, 1, 1, 0, 0, 0]);
  assert.equal(folded.tensors.get('small')!.dtype, 'bool');
  assert.deepEqual(values(folded.tensors.get('rng')), [1, 3, 5]);
  assert.deepEqual(folded.tensors.get('pd')!.shape, [4, 3]);
  assert.deepEqual(values(folded.tensors.get('pd')), [0, 2, 11, 0, 5, 13, 0, 8, 15, 0, 0, 0]);
});

test('a node reading an activation is not folded, nor is a Pow of an activation', () => {
  const g = graph({
    inputs: { x: [1, 4] },
    consts: { two: f32([1], [2]) },
    nodes: [
      { op: 'Pow', in: ['x', 'two'], out: ['p'] },
      { op: 'Sqrt', in: ['p'], out: ['y'] },
    ],
    outputs: ['y'],
  });
  assert.deepEqual(summary(foldConstants(g)), ['Pow(x,two)->p', 'Sqrt(p)->y']);
});

test('a folded op with another input count than its ONNX schema is refused, naming the node (not read past its operands)', () => {
  const fold = (op: string, ins: string[]) => () => foldConstants(graph({
    inputs: {},
    consts: { a: f32([2], [1, 2]), b: f32([2], [3, 4]), c: f32([2], [5, 6]), s: i64([2], []) },
    nodes: [{ op, in: ins, out: ['y'] }],
    outputs: ['y'],
  }));
  const refused = (op: string, ins: string[], message: RegExp) => assert.throws(fold(op, ins), (e: unknown) => e instanceof FcmError && e.exitCode === 2 && message.test(e.message), `${op}(${ins.join(', ')})`);
  refused('Expand', ['a'], /\(Expand\): has 1 input; Expand takes 2$/);
  refused('Equal', ['a'], /\(Equal\): has 1 input; Equal takes 2$/);
  refused('Where', ['a', 'b'], /\(Where\): has 2 inputs; Where takes 3$/);
  refused('Sqrt', ['a', 'b'], /\(Sqrt\): has 2 inputs; Sqrt takes 1$/);
  refused('Range', ['s', 's'], /\(Range\): has 2 inputs; Range takes 3$/);
  refused('Pow', ['a', ''], /\(Pow\): input 1 is empty; every input of Pow is required$/);
  // The schema's counts still fold.
  assert.deepEqual(values(fold('Max', ['a', 'b', 'c'])().tensors.get('y')), [5, 6]);
  assert.deepEqual(values(fold('Equal', ['a', 'a'])().tensors.get('y')), [1, 1]);
});
