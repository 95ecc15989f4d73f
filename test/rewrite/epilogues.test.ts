import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { fuseEpilogues } from '../../src/rewrite/epilogues.js';
import type { Graph } from '../../src/graph/ir.js';

const ops = (g: Graph) => g.nodes.map((n) => n.op);
const node = (y: string) => y.replace(/_out$/, '');

test('Conv -> Clip -> Add folds into one Conv with activation and residual; output names preserved', () => {
  const b = new GraphBuilder('g', 1);
  const x = b.input('x', [1, 8, 6, 6]);
  const c = b.conv(x, { filters: 8, kernel: 1, bias: true });
  const a = b.relu6(c);
  const y = b.add(a, x);
  const g = b.build([y]);
  const f = fuseEpilogues(g);
  assert.deepEqual(ops(f), ['Conv']);
  const conv = f.nodes[0];
  assert.equal(conv.name, node(c));
  assert.equal(conv.attrs.activation, 'Clip');
  assert.deepEqual(conv.attrs.activationParams, [0, 6]);
  assert.equal(conv.inputs[3], x);
  assert.deepEqual(conv.outputs, [y]);
  assert.deepEqual(f.outputs, g.outputs);
  assert.ok(!f.tensors.has(c) && !f.tensors.has(a));
  // The input graph is untouched.
  assert.deepEqual(ops(g), ['Conv', 'Clip', 'Add']);
});

test('the residual operand may come later in the node list: the fused node takes the Add position', () => {
  const b = new GraphBuilder('g', 2);
  const x = b.input('x', [1, 4, 5, 5]);
  const c = b.conv(x, { filters: 4, kernel: 3 });
  const side = b.conv(x, { filters: 4, kernel: 1 });
  const y = b.add(c, side);
  const f = fuseEpilogues(b.build([y]));
  assert.deepEqual(f.nodes.map((n) => n.name), [node(side), node(c)]);
  assert.equal(f.nodes[1].inputs[3], side);
  assert.equal(f.nodes[1].inputs[2], '');
});

test('parameters: LeakyRelu alpha, HardSigmoid alpha/beta; no parameters for Relu', () => {
  const b = new GraphBuilder('g', 3);
  const x = b.input('x', [1, 4, 4, 4]);
  const c1 = b.conv(x, { filters: 4 });
  const l = b.node('LeakyRelu', [c1], b.shape(c1), { alpha: 0.1 });
  const c2 = b.conv(l, { filters: 4 });
  const h = b.hardSigmoid(c2, 0.25, 0.4);
  const c3 = b.conv(h, { filters: 4 });
  const r = b.relu(c3);
  const f = fuseEpilogues(b.build([r]));
  assert.deepEqual(ops(f), ['Conv', 'Conv', 'Conv']);
  assert.deepEqual(f.nodes.map((n) => [n.attrs.activation, n.attrs.activationParams]), [['LeakyRelu', [0.1]], ['HardSigmoid', [0.25, 0.4]], ['Relu', undefined]]);
});

test('negative cases: second consumer, graph output, Add then activation, broadcast Add, dependent residual', () => {
  // Second consumer: the conv output feeds the Relu and the Add.
  {
    const b = new GraphBuilder('g', 4);
    const x = b.input('x', [1, 4, 4, 4]);
    const c = b.conv(x, { filters: 4 });
    const r = b.relu(c);
    const y = b.add(r, c);
    assert.deepEqual(ops(fuseEpilogues(b.build([y]))), ['Conv', 'Relu', 'Add']);
  }
  // The intermediate is a graph output.
  {
    const b = new GraphBuilder('g', 5);
    const x = b.input('x', [1, 4, 4, 4]);
    const c = b.conv(x, { filters: 4 });
    const r = b.relu(c);
    assert.deepEqual(ops(fuseEpilogues(b.build([r, c]))), ['Conv', 'Relu']);
  }
  // Add then Relu: the residual folds, the Relu after it does not (order bias, activation, residual).
  {
    const b = new GraphBuilder('g', 6);
    const x = b.input('x', [1, 4, 4, 4]);
    const c = b.conv(x, { filters: 4 });
    const y = b.relu(b.add(c, x));
    const f = fuseEpilogues(b.build([y]));
    assert.deepEqual(ops(f), ['Conv', 'Relu']);
    assert.equal(f.nodes[0].attrs.activation, undefined);
    assert.equal(f.nodes[0].inputs[3], x);
  }
  // Broadcast Add (a per-channel bias-like tensor) is not a residual.
  {
    const b = new GraphBuilder('g', 7);
    const x = b.input('x', [1, 4, 4, 4]);
    const c = b.conv(x, { filters: 4 });
    const k = b.random('k', [1, 4, 1, 1], 1);
    const y = b.add(c, k);
    assert.deepEqual(ops(fuseEpilogues(b.build([y]))), ['Conv', 'Add']);
  }
  // Residual computed from the conv itself (through its activation's second use): not folded.
  {
    const b = new GraphBuilder('g', 8);
    const x = b.input('x', [1, 4, 4, 4]);
    const c = b.conv(x, { filters: 4 });
    const s = b.node('Sigmoid', [c], b.shape(c));
    const y = b.add(c, s);
    assert.deepEqual(ops(fuseEpilogues(b.build([y]))), ['Conv', 'Sigmoid', 'Add']);
  }
});

test('every graph output is still produced: a conv output that the model returns keeps its Add (and its activation) unfolded', () => {
  // Conv -> Add(conv, x) with the conv's output a graph output too: folding the Add would rename the conv's
  // output to the Add's, and the returned tensor would have no producer.
  const b = new GraphBuilder('g', 9);
  const x = b.input('x', [1, 4, 4, 4]);
  const c = b.conv(x, { filters: 4 });
  const y = b.add(c, x);
  const f = fuseEpilogues(b.build([y, c]));
  assert.deepEqual(ops(f), ['Conv', 'Add']);
  assert.equal(f.nodes[0].inputs[3] ?? '', '');
  const produced = new Set(f.nodes.flatMap((n) => n.outputs));
  for (const t of f.outputs) assert.ok(produced.has(t), `graph output ${t} has a producer`);
  // The same after an activation: the activation folds, its output (returned) keeps the Add unfolded.
  const b2 = new GraphBuilder('g', 10);
  const x2 = b2.input('x', [1, 4, 4, 4]);
  const r = b2.relu(b2.conv(x2, { filters: 4 }));
  const y2 = b2.add(r, x2);
  const f2 = fuseEpilogues(b2.build([y2, r]));
  assert.deepEqual(ops(f2), ['Conv', 'Add']);
  assert.deepEqual([f2.nodes[0].attrs.activation, f2.nodes[0].outputs], ['Relu', [r]]);
});
