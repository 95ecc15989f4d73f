// foldSqueezeExcites on the graph (no GPU: the kernel against onnxruntime and the dispatch counts are in
// squeeze-excite.test.ts): which squeeze-excite blocks fold, with and without their pool, and which do not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { chooseSqueezeExcite, foldSqueezeExcites, squeezeExciteMatches, squeezeExcitePoolMax } from '../../src/rewrite/squeeze-excite.js';
import { fuseEpilogues } from '../../src/rewrite/epilogues.js';
import { applyPlan } from '../../src/rewrite/apply-plan.js';
import type { Graph } from '../../src/graph/ir.js';
import type { Plan } from '../../src/planner/plan.js';
import { seBlock } from './se-block.js';

const ops = (g: Graph) => g.nodes.map((n) => n.op);

test('GAP -> Conv{act} -> Conv{gate} becomes one SqueezeExcite reading the map; every inner activation and gate', () => {
  for (const [inner, gate, act1, act2] of [['relu', 'hsigmoid', 'Relu', 'HardSigmoid'], ['hswish', 'sigmoid', 'HardSwish', 'Sigmoid'], ['relu', 'sigmoid', 'Relu', 'Sigmoid']] as const) {
    const { g, f, s } = seBlock({ inner, gate });
    const e = fuseEpilogues(g);
    const folded = foldSqueezeExcites(e);
    assert.deepEqual(ops(folded), ['Conv', 'SqueezeExcite', 'Mul', 'Conv'], `${inner}/${gate}`);
    const se = folded.nodes[1];
    const [c1, c2] = e.nodes.filter((n) => n.op === 'Conv').slice(1, 3);
    assert.deepEqual(se.inputs, [f, c1.inputs[1], c1.inputs[2], c2.inputs[1], c2.inputs[2]]);
    assert.deepEqual(se.outputs, [s]);
    assert.equal(se.attrs.activation1, act1);
    assert.equal(se.attrs.activation2, act2);
    assert.deepEqual(se.attrs.activationParams2, c2.attrs.activationParams);
    if (gate === 'hsigmoid') assert.equal((se.attrs.activationParams2 as number[]).length, 2);
    // The pooled and hidden tensors are gone; the input graph is untouched.
    assert.equal(folded.tensors.has(e.nodes[1].outputs[0]), false);
    assert.equal(folded.tensors.has(c1.outputs[0]), false);
    assert.deepEqual(ops(e), ['Conv', 'GlobalAveragePool', 'Conv', 'Conv', 'Mul', 'Conv']);
  }
});

test('batch 2 folds; the matched shapes are [N, C, H, W], R, F', () => {
  const { g } = seBlock({ batch: 2, channels: 12, squeeze: 3, hw: 5 });
  const [m] = squeezeExciteMatches(fuseEpilogues(g));
  assert.deepEqual([m.N, m.C, m.H, m.W, m.R, m.F], [2, 12, 5, 5, 3, 12]);
  assert.equal(chooseSqueezeExcite(m), 'pool');
});

test('choice: a map over squeezeExcitePoolMax keeps its pool dispatch, the two convs still fold', () => {
  const hw = Math.ceil(Math.sqrt(squeezeExcitePoolMax / 16)) + 1;
  const { g, f } = seBlock({ hw, channels: 16 });
  const folded = foldSqueezeExcites(fuseEpilogues(g));
  assert.deepEqual(ops(folded), ['Conv', 'GlobalAveragePool', 'SqueezeExcite', 'Mul', 'Conv']);
  assert.equal(folded.nodes[2].inputs[0], folded.nodes[1].outputs[0]);
  assert.equal(folded.nodes[1].inputs[0], f);
  // The choice is a parameter: 'none' leaves the graph as it was.
  const e = fuseEpilogues(g);
  assert.equal(foldSqueezeExcites(e, () => 'none'), e);
});

/** The SE block with its two 1x1 convs fused into a FusedPwPw by a plan, as the planner does. */
function withFusedPwPw(g: Graph) {
  const e = fuseEpilogues(g);
  const [c1, c2] = e.nodes.filter((n) => n.op === 'Conv').slice(1, 3);
  const plan: Plan = {
    model: 'se', hw: 'h', mode: 'optimal', totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 },
    modules: [{ kind: 'pwpw', layers: [1, 2], nodes: [c1.name, c2.name], tiles: { l1Filters: 4, l2Filters: 8, h: 1, w: 1 }, gma: 0, gmaUnfused: 0 }],
  };
  return { fused: applyPlan(e, plan), c1, c2 };
}

test('a FusedPwPw of the two convs folds with its pool, its activations kept; without its pool it stays', () => {
  const { g, s } = seBlock();
  const { fused, c1, c2 } = withFusedPwPw(g);
  assert.deepEqual(ops(fused), ['Conv', 'GlobalAveragePool', 'FusedPwPw', 'Mul', 'Conv']);
  const folded = foldSqueezeExcites(fused);
  assert.deepEqual(ops(folded), ['Conv', 'SqueezeExcite', 'Mul', 'Conv']);
  const se = folded.nodes[1];
  assert.deepEqual(se.outputs, [s]);
  assert.deepEqual([se.attrs.activation1, se.attrs.activation2], ['Relu', 'HardSigmoid']);
  assert.deepEqual(se.inputs.slice(1), [c1.inputs[1], c1.inputs[2], c2.inputs[1], c2.inputs[2]]);
  // Without its pool (a large map) a FusedPwPw is already one dispatch: nothing to gain, nothing changes.
  const hw = Math.ceil(Math.sqrt(squeezeExcitePoolMax / 16)) + 1;
  const big = withFusedPwPw(seBlock({ hw }).g).fused;
  assert.equal(chooseSqueezeExcite(squeezeExciteMatches(big)[0]), 'none');
  assert.equal(foldSqueezeExcites(big), big);
});

test('no fold: a second reader of the hidden tensor, a 3x3 conv, a graph output, a non-float tensor', () => {
  const none = (g: Graph, why: string) => assert.ok(!ops(foldSqueezeExcites(fuseEpilogues(g))).includes('SqueezeExcite'), why);
  none(seBlock({ hiddenReader: true }).g, 'the hidden tensor has a second reader');
  // GAP -> 3x3 conv (padding 1: still a 1x1 map) -> 1x1 conv.
  const b = new GraphBuilder('se3', 7);
  const x = b.input('input', [1, 8, 4, 4]);
  const h = b.relu(b.conv(b.globalAveragePool(x), { filters: 4, kernel: 3, pad: 1, bias: true }));
  const s3 = b.node('Sigmoid', [b.conv(h, { filters: 8, kernel: 1, bias: true })], [1, 8, 1, 1]);
  none(b.build([b.mul(x, s3)]), 'the first conv is 3x3');
  // The hidden tensor is a graph output.
  const b2 = new GraphBuilder('se-out', 7);
  const x2 = b2.input('input', [1, 8, 4, 4]);
  const h2 = b2.relu(b2.conv(b2.globalAveragePool(x2), { filters: 4, kernel: 1, bias: true }));
  const s2 = b2.node('Sigmoid', [b2.conv(h2, { filters: 8, kernel: 1, bias: true })], [1, 8, 1, 1]);
  none(b2.build([b2.mul(x2, s2), h2]), 'the hidden tensor is a graph output');
  // A float16 pooled input.
  const { g: g16 } = seBlock();
  for (const t of g16.tensors.values()) if (t.shape.length === 4 && t.shape[2] === 1 && t.shape[3] === 1 && t.shape[1] === 16) t.dtype = 'float16';
  none(g16, 'the gate is float16');
});

test('the pool stays out when the pooled vector has a second reader or is a graph output; the convs still fold', () => {
  const b = new GraphBuilder('se-pool', 7);
  const x = b.input('input', [1, 8, 4, 4]);
  const p = b.globalAveragePool(x);
  const h = b.relu(b.conv(p, { filters: 4, kernel: 1, bias: true }));
  const s = b.node('Sigmoid', [b.conv(h, { filters: 8, kernel: 1, bias: true })], [1, 8, 1, 1]);
  const folded = foldSqueezeExcites(fuseEpilogues(b.build([b.mul(x, s), b.relu(p)])));
  assert.deepEqual(ops(folded), ['GlobalAveragePool', 'SqueezeExcite', 'Mul', 'Relu']);
  assert.equal(folded.nodes[1].inputs[0], p);
  const b2 = new GraphBuilder('se-pool-out', 7);
  const x2 = b2.input('input', [1, 8, 4, 4]);
  const p2 = b2.globalAveragePool(x2);
  const h2 = b2.relu(b2.conv(p2, { filters: 4, kernel: 1, bias: true }));
  const s2 = b2.node('Sigmoid', [b2.conv(h2, { filters: 8, kernel: 1, bias: true })], [1, 8, 1, 1]);
  const folded2 = foldSqueezeExcites(fuseEpilogues(b2.build([b2.mul(x2, s2), p2])));
  assert.deepEqual(ops(folded2), ['GlobalAveragePool', 'SqueezeExcite', 'Mul']);
});
