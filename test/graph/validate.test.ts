import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateGraph } from '../../src/graph/validate.js';
import { graph, f32, throwsFcm } from './helpers.js';

test('an ordered graph is returned unchanged', () => {
  const g = graph({ inputs: { x: [1, 2] }, nodes: [{ op: 'Relu', in: ['x'], out: ['a'] }, { op: 'Relu', in: ['a'], out: ['b'] }], outputs: ['b'] });
  assert.equal(validateGraph(g), g);
});

test('nodes out of order are sorted topologically, stable otherwise', () => {
  const g = graph({
    inputs: { x: [1, 2] },
    nodes: [
      { op: 'Relu', in: ['b'], out: ['c'], name: 'third' },
      { op: 'Relu', in: ['x'], out: ['a'], name: 'first' },
      { op: 'Relu', in: ['a'], out: ['b'], name: 'second' },
      { op: 'Abs', in: ['x'], out: ['d'], name: 'other' },
    ],
    outputs: ['c', 'd'],
  });
  assert.deepEqual(validateGraph(g).nodes.map((n) => n.name), ['first', 'second', 'third', 'other']);
  assert.deepEqual(g.nodes.map((n) => n.name), ['third', 'first', 'second', 'other'], 'input graph untouched');
});

test('a node reading an undefined tensor names the node and tensor', () => {
  const g = graph({ inputs: { x: [1] }, nodes: [{ op: 'Add', in: ['x', 'ghost'], out: ['y'], name: 'adder' }], outputs: ['y'] });
  throwsFcm(() => validateGraph(g), 'invalid', 'test.onnx', "node 'adder'", "'ghost'");
});

test('two producers of one tensor', () => {
  const g = graph({
    inputs: { x: [1] },
    nodes: [{ op: 'Relu', in: ['x'], out: ['y'], name: 'p1' }, { op: 'Abs', in: ['x'], out: ['y'], name: 'p2' }],
    outputs: ['y'],
  });
  throwsFcm(() => validateGraph(g), 'invalid', 'test.onnx', "tensor 'y'", "'p1'", "'p2'");
});

test('a node writing a constant or a graph input', () => {
  const g = graph({ inputs: { x: [1] }, consts: { w: f32([1], [1]) }, nodes: [{ op: 'Relu', in: ['x'], out: ['w'], name: 'bad' }], outputs: ['w'] });
  throwsFcm(() => validateGraph(g), 'invalid', "node 'bad'", "'w'", 'constant');
  const h = graph({ inputs: { x: [1] }, nodes: [{ op: 'Relu', in: ['x'], out: ['x'], name: 'self' }], outputs: ['x'] });
  throwsFcm(() => validateGraph(h), 'invalid', "node 'self'", 'graph input');
});

test('a cycle names a node on the cycle', () => {
  const g = graph({
    inputs: { x: [1] },
    nodes: [
      { op: 'Relu', in: ['x'], out: ['a'], name: 'entry' },
      { op: 'Add', in: ['a', 'c'], out: ['b'], name: 'loop1' },
      { op: 'Relu', in: ['b'], out: ['c'], name: 'loop2' },
      { op: 'Relu', in: ['c'], out: ['d'], name: 'after' },
    ],
    outputs: ['d'],
  });
  assert.throws(() => validateGraph(g), (e: Error) => /node 'loop[12]'.*cycle/.test(e.message) && e.message.startsWith('test.onnx'));
});

test('a graph output nobody writes', () => {
  const g = graph({ inputs: { x: [1] }, nodes: [], outputs: ['nothing'] });
  throwsFcm(() => validateGraph(g), 'invalid', "tensor 'nothing'");
});

test('a constant whose values do not fill its shape', () => {
  const g = graph({ inputs: { x: [1] }, consts: { w: f32([2, 3], [1, 2, 3, 4, 5, 6]) }, nodes: [{ op: 'Add', in: ['x', 'w'], out: ['y'] }], outputs: ['y'] });
  assert.equal(validateGraph(g), g);
  g.tensors.get('w')!.shape = [1, 10];
  throwsFcm(() => validateGraph(g), 'invalid', "tensor 'w'", 'holds 6 values', '[1, 10] needs 10');
});
