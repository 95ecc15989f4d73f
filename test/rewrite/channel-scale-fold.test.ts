// foldChannelScales on the graph (no GPU: the executor's runs are in channel-scale.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { foldChannelScales } from '../../src/rewrite/channel-scale.js';
import { fuseEpilogues } from '../../src/rewrite/epilogues.js';
import { applyPlan } from '../../src/rewrite/apply-plan.js';
import { FcmError } from '../../src/errors.js';
import type { Graph } from '../../src/graph/ir.js';
import { seBlock } from './se-block.js';

const ops = (g: Graph) => g.nodes.map((n) => n.op);

test('Mul(x, s) -> pointwise Conv becomes Conv(x, w, b, "", s); either operand order; input graph untouched', () => {
  for (const swap of [false, true]) {
    const { g, m, f, s } = seBlock({ swap });
    const folded = foldChannelScales(fuseEpilogues(g));
    assert.ok(!ops(folded).includes('Mul'), `swap ${swap}: the Mul stayed`);
    const proj = folded.nodes[folded.nodes.length - 1];
    assert.equal(proj.op, 'Conv');
    assert.equal(proj.inputs[0], f);
    assert.equal(proj.inputs[3], '');
    assert.equal(proj.inputs[4], s);
    assert.ok(!folded.tensors.has(m));
    assert.ok(ops(g).includes('Mul'));
  }
});

test('no fold: a second reader of the product, a non-pointwise reader, a graph output, a non-channel operand', () => {
  const keep = (g: Graph, why: string) => assert.ok(ops(foldChannelScales(fuseEpilogues(g))).includes('Mul'), why);
  keep(seBlock({ secondReader: true }).g, 'the product has two readers');
  keep(seBlock({ projKernel: 3 }).g, 'the reader is a 3x3 conv');
  const b = new GraphBuilder('se-out', 7);
  const x = b.input('input', [1, 8, 4, 4]);
  const s = b.hardSigmoid(b.conv(b.globalAveragePool(x), { filters: 8, kernel: 1, bias: true }), 1 / 6, 0.5);
  keep(b.build([b.mul(x, s)]), 'the product is a graph output');
  // x * x (same shape, not [N, C, 1, 1]) is no channel scale.
  const b2 = new GraphBuilder('sq', 7);
  const x2 = b2.input('input', [1, 8, 4, 4]);
  keep(b2.build([b2.conv(b2.mul(x2, x2), { filters: 4, kernel: 1, bias: true })]), 'x * x');
});

test('applyPlan refuses to fuse a conv that reads a channel scale, naming it (plan before folding)', () => {
  const b = new GraphBuilder('se2', 7);
  const x = b.input('input', [1, 8, 4, 4]);
  const s = b.hardSigmoid(b.conv(b.globalAveragePool(x), { filters: 8, kernel: 1, bias: true }), 1 / 6, 0.5);
  const p1 = b.conv(b.mul(x, s), { filters: 8, kernel: 1, bias: true });
  const y = b.conv(p1, { filters: 4, kernel: 1, bias: true });
  const g = b.build([y]);
  const folded = foldChannelScales(fuseEpilogues(g));
  const [c1, c2] = folded.nodes.filter((n) => n.op === 'Conv').slice(-2);
  assert.ok(c1.inputs[4], 'the first conv of the pair reads the scale');
  const plan = {
    model: 'se2', hw: 'h', mode: 'optimal' as const, totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 },
    modules: [{ kind: 'pwpw' as const, layers: [0, 1], nodes: [c1.name, c2.name], tiles: { l1Filters: 8, l2Filters: 4, h: 2, w: 2, d: 4 }, gma: 0, gmaUnfused: 0 }],
  };
  assert.throws(() => applyPlan(folded, plan), (e: unknown) => e instanceof FcmError && e.kind === 'unsupported' && e.message.includes(c1.name) && /channel scale/.test(e.message));
  // The same plan on the graph before the fold applies.
  assert.ok(applyPlan(fuseEpilogues(g), plan).nodes.some((n) => n.op === 'FusedPwPw'));
});

