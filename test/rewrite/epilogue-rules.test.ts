// fuseEpilogues (src/rewrite/epilogues.ts), rule by rule: every epilogue activation folds; the residual Add folds
// whichever operand the conv output is; what is no plain ONNX Conv or Add, a residual of another shape, dtype or of
// unknown shape, an Add of the conv output with itself, a conv that already has a residual: graph before and
// after, and the function kept (float-interp.ts) where the graph can be run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { fuseEpilogues } from '../../src/rewrite/epilogues.js';
import type { Graph } from '../../src/graph/ir.js';
import { runFloat } from './float-interp.js';
import { randomInputs } from './random-graphs.js';

const ops = (g: Graph) => g.nodes.map((n) => n.op);

/** Same outputs before and after: exactly (the interpreter does the same arithmetic on both; -0 equals 0). */
function sameFunction(before: Graph, after: Graph) {
  const feeds = randomInputs(before, 5);
  const [want, got] = [runFloat(before, feeds), runFloat(after, feeds)];
  assert.equal(got.length, want.length);
  want.forEach((w, k) => assert.ok(w.length === got[k].length && w.every((v, i) => v === got[k][i]), `output ${k} differs`));
}

test('every epilogue activation folds into the conv before it, with its parameters', () => {
  const cases: [string, Record<string, number>, unknown][] = [
    ['Relu', {}, undefined], ['Clip', { min: -1, max: 1 }, [-1, 1]], ['HardSwish', {}, undefined], ['HardSigmoid', { alpha: 0.3, beta: 0.4 }, [0.3, 0.4]],
    ['Sigmoid', {}, undefined], ['SiLU', {}, undefined], ['LeakyRelu', { alpha: 0.2 }, [0.2]], ['Tanh', {}, undefined],
  ];
  for (const [op, attrs, params] of cases) {
    const b = new GraphBuilder(op, 1);
    const x = b.input('x', [1, 4, 4, 4]);
    const y = b.node(op, [b.conv(x, { filters: 4, kernel: 1, bias: true })], [1, 4, 4, 4], attrs);
    const g = b.build([y]);
    const f = fuseEpilogues(g);
    assert.deepEqual(ops(f), ['Conv'], op);
    assert.deepEqual([f.nodes[0].attrs.activation, f.nodes[0].attrs.activationParams, f.nodes[0].outputs], [op, params, [y]], op);
    sameFunction(g, f);
  }
});

test('a residual Add folds whichever operand the conv output is; the fused conv takes the Add\'s output and place', () => {
  for (const convFirst of [true, false]) {
    const b = new GraphBuilder('res', 2);
    const x = b.input('x', [1, 4, 5, 5]);
    const c = b.conv(x, { filters: 4, kernel: 3 });
    const r = b.relu(x);
    const y = convFirst ? b.add(c, r) : b.add(r, c);
    const g = b.build([y]);
    const f = fuseEpilogues(g);
    assert.deepEqual(ops(f), ['Relu', 'Conv'], `conv first: ${convFirst}`);
    assert.deepEqual([f.nodes[1].inputs, f.nodes[1].outputs], [[x, g.nodes[0].inputs[1], '', r], [y]]);
    assert.ok(!f.tensors.has(c));
    sameFunction(g, f);
  }
});

test('a bias input stays in place when the residual is added', () => {
  const b = new GraphBuilder('bias', 3);
  const x = b.input('x', [1, 4, 4, 4]);
  const c = b.conv(x, { filters: 4, kernel: 1, bias: true });
  const g = b.build([b.add(c, x)]);
  const f = fuseEpilogues(g);
  assert.deepEqual(f.nodes[0].inputs, [...g.nodes[0].inputs, x]);
  sameFunction(g, f);
});

test('negative: no plain ONNX Conv, no plain ONNX Add, an Add of the conv output with itself', () => {
  {
    // A Conv of another domain is not ours to change.
    const b = new GraphBuilder('dom', 4);
    const x = b.input('x', [1, 4, 4, 4]);
    const c = b.conv(x, { filters: 4, kernel: 1 });
    b.nodes[0].domain = 'com.other';
    const g = b.build([b.add(b.relu(c), x)]);
    assert.deepEqual(ops(fuseEpilogues(g)), ['Conv', 'Relu', 'Add']);
  }
  {
    // A Conv with a second output.
    const b = new GraphBuilder('two', 4);
    const x = b.input('x', [1, 4, 4, 4]);
    const c = b.conv(x, { filters: 4, kernel: 1 });
    b.nodes[0].outputs.push('extra');
    b.tensors.set('extra', { name: 'extra', dtype: 'float32', shape: [1, 4, 4, 4] });
    assert.deepEqual(ops(fuseEpilogues(b.build([b.add(c, x), 'extra']))), ['Conv', 'Add']);
  }
  {
    // An Add of another domain, and an Add with a third input or a second output.
    for (const change of ['domain', 'inputs', 'outputs'] as const) {
      const b = new GraphBuilder('add', 5);
      const x = b.input('x', [1, 4, 4, 4]);
      const y = b.add(b.conv(x, { filters: 4, kernel: 1 }), x);
      const add = b.nodes[1];
      if (change === 'domain') add.domain = 'com.other';
      if (change === 'inputs') add.inputs.push(x);
      if (change === 'outputs') { add.outputs.push('extra'); b.tensors.set('extra', { name: 'extra', dtype: 'float32', shape: [1, 4, 4, 4] }); }
      assert.deepEqual(ops(fuseEpilogues(b.build([y]))), ['Conv', 'Add'], change);
    }
  }
  {
    // conv + conv: the residual would be the conv's own output, which no longer exists once folded.
    const b = new GraphBuilder('self', 6);
    const x = b.input('x', [1, 4, 4, 4]);
    const c = b.conv(x, { filters: 4, kernel: 1 });
    const g = b.build([b.add(c, c)]);
    const f = fuseEpilogues(g);
    assert.deepEqual(ops(f), ['Conv', 'Add']);
    sameFunction(g, f);
  }
});

test('negative: a residual of another shape, another dtype, or of unknown shape', () => {
  const build = (seed: number) => {
    const b = new GraphBuilder('shape', seed);
    const x = b.input('x', [1, 4, 4, 4]);
    const r = b.input('r', [1, 4, 4, 4]);
    const c = b.conv(x, { filters: 4, kernel: 1 });
    const y = b.add(c, r);
    return { b, g: b.build([y]), c, r, y };
  };
  {
    // A broadcast residual of the same rank: [1, 1, 4, 4] against [1, 4, 4, 4].
    const t = build(7);
    t.g.tensors.set(t.r, { ...t.g.tensors.get(t.r)!, shape: [1, 1, 4, 4] });
    const f = fuseEpilogues(t.g);
    assert.deepEqual(ops(f), ['Conv', 'Add']);
    sameFunction(t.g, f);
  }
  {
    // A broadcast conv output: the Add's output is larger than the conv's.
    const b = new GraphBuilder('grow', 8);
    const x = b.input('x', [1, 4, 1, 4]);
    const r = b.input('r', [1, 4, 4, 4]);
    const c = b.conv(x, { filters: 4, kernel: 1 });
    const y = b.node('Add', [c, r], [1, 4, 4, 4]);
    const g = b.build([y]);
    const f = fuseEpilogues(g);
    assert.deepEqual(ops(f), ['Conv', 'Add']);
    sameFunction(g, f);
  }
  {
    // A residual of higher rank whose leading dims match: Add broadcasts to [1, 4, 4, 4, 4].
    const b = new GraphBuilder('rank', 12);
    const x = b.input('x', [1, 4, 4, 4]);
    const r = b.input('r', [1, 4, 4, 4, 1]);
    const c = b.conv(x, { filters: 4, kernel: 1 });
    const g = b.build([b.node('Add', [c, r], [1, 4, 4, 4, 4])]);
    assert.deepEqual(ops(fuseEpilogues(g)), ['Conv', 'Add']);
  }
  {
    const t = build(9);
    t.g.tensors.set(t.r, { ...t.g.tensors.get(t.r)!, dtype: 'float16' });
    assert.deepEqual(ops(fuseEpilogues(t.g)), ['Conv', 'Add'], 'dtype');
  }
  for (const which of ['c', 'r', 'y'] as const) {
    const t = build(10);
    const name = t[which];
    t.g.tensors.set(name, { ...t.g.tensors.get(name)!, shapeUnknown: true });
    assert.deepEqual(ops(fuseEpilogues(t.g)), ['Conv', 'Add'], `unknown shape of ${which}`);
    const missing = build(11);
    missing.g.tensors.delete(missing[which]);
    assert.deepEqual(ops(fuseEpilogues(missing.g)), ['Conv', 'Add'], `no tensor ${which}`);
  }
});

test('a conv that already adds a residual keeps it: a second Add is not folded over it', () => {
  const b = new GraphBuilder('twice', 12);
  const x = b.input('x', [1, 4, 4, 4]);
  const r2 = b.input('r2', [1, 4, 4, 4]);
  const y = b.add(b.add(b.conv(x, { filters: 4, kernel: 1 }), x), r2);
  const g = b.build([y]);
  const f = fuseEpilogues(g);
  assert.deepEqual(ops(f), ['Conv', 'Add']);
  assert.equal(f.nodes[0].inputs[3], x);
  sameFunction(g, f);
  // Run again on its own output: nothing more folds.
  assert.deepEqual(ops(fuseEpilogues(f)), ['Conv', 'Add']);
  sameFunction(g, fuseEpilogues(f));
});
