// foldPads (src/rewrite/fold-pads.ts): graphs before and after, with the negative cases that keep the Pad.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { foldPads } from '../../src/rewrite/fold-pads.js';
import { applyPlan } from '../../src/rewrite/apply-plan.js';
import type { Graph } from '../../src/graph/ir.js';
import type { Plan } from '../../src/planner/plan.js';

const ops = (g: Graph) => g.nodes.map((n) => n.op);
const zeroPad = (t: number, l: number, b: number, r: number) => ({ pads: [0, 0, t, l, 0, 0, b, r], mode: 'constant', value: 0 });

function padThenDw(attrs: Record<string, unknown> = zeroPad(0, 0, 1, 1), k = 3, convPad = 0) {
  const b = new GraphBuilder('p', 5);
  const x = b.input('x', [1, 8, 8, 8]);
  const [t, l, bo, r] = [2, 3, 6, 7].map((i) => (attrs.pads as number[] | undefined)?.[i] ?? 0);
  const p = b.node('Pad', [x], [1, 8, 8 + t + bo, 8 + l + r], attrs as never);
  const d = b.conv(p, { filters: 8, kernel: k, stride: 2, group: 8, pad: convPad });
  return { b, x, p, d };
}

test('a zero spatial Pad before a depthwise Conv becomes its padding: one node, same output name', () => {
  const { b, x, d } = padThenDw();
  const g = b.build([d]);
  const f = foldPads(g);
  assert.deepEqual(ops(f), ['Conv']);
  assert.deepEqual(f.nodes[0].attrs.pads, [0, 0, 1, 1]);
  assert.equal(f.nodes[0].inputs[0], x);
  assert.deepEqual(f.nodes[0].outputs, [d]);
  assert.deepEqual(ops(g), ['Pad', 'Conv'], 'the input graph is untouched');
});

test('the Pad adds to the Conv\'s own padding', () => {
  const { b, d } = padThenDw(zeroPad(1, 0, 0, 1), 3, 1);
  assert.deepEqual(foldPads(b.build([d])).nodes[0].attrs.pads, [2, 1, 1, 2]);
});

test('negative: non-zero value, channel padding, reflect mode, a pad reaching the kernel extent, a 1x1 conv', () => {
  for (const attrs of [{ ...zeroPad(0, 0, 1, 1), value: 0.5 }, { pads: [0, 1, 0, 0, 0, 0, 1, 1], mode: 'constant' }, { ...zeroPad(0, 0, 1, 1), mode: 'reflect' }, zeroPad(0, 0, 3, 3)]) {
    const { b, d } = padThenDw(attrs);
    assert.deepEqual(ops(foldPads(b.build([d]))), ['Pad', 'Conv'], JSON.stringify(attrs));
  }
  const { b, d } = padThenDw(zeroPad(0, 0, 1, 1), 1);
  assert.deepEqual(ops(foldPads(b.build([d]))), ['Pad', 'Conv'], '1x1 kernel: no padding allowed');
});

test('negative: the padded tensor has a second consumer or is a graph output', () => {
  const { b, p, d } = padThenDw();
  const s = b.node('Relu', [p], b.shape(p));
  assert.deepEqual(ops(foldPads(b.build([d, s]))), ['Pad', 'Conv', 'Relu']);
  const t = padThenDw();
  assert.deepEqual(ops(foldPads(t.b.build([t.d, t.p]))), ['Pad', 'Conv']);
});

test('negative: a quantized Pad whose output quantization differs from its input\'s', () => {
  const { b, x, p, d } = padThenDw();
  const g = b.build([d]);
  g.tensors.set(x, { ...g.tensors.get(x)!, dtype: 'int8', quant: { scale: [0.1], zeroPoint: [3] } });
  g.tensors.set(p, { ...g.tensors.get(p)!, dtype: 'int8', quant: { scale: [0.1], zeroPoint: [4] } });
  assert.deepEqual(ops(foldPads(g)), ['Pad', 'Conv']);
  g.tensors.set(p, { ...g.tensors.get(p)!, dtype: 'int8', quant: { scale: [0.1], zeroPoint: [3] } });
  assert.deepEqual(ops(foldPads(g)), ['Conv']);
});

test('after applyPlan: a Pad before a DW-PW module folds into the FCM\'s depthwise padding', () => {
  const { b, x, d } = padThenDw();
  const pw = b.conv(d, { filters: 16, kernel: 1 });
  const g = b.build([pw]);
  const names = g.nodes.map((n) => n.name);
  const plan: Plan = {
    model: 'p', hw: 'h100', mode: 'optimal', totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 },
    modules: [{ kind: 'dwpw', layers: [1, 2], nodes: [names[1], names[2]], tiles: { l1Filters: 8, l2Filters: 16, h: 2, w: 2 }, gma: 1, gmaUnfused: 2 }],
  };
  const fused = applyPlan(g, plan);
  assert.deepEqual(ops(fused), ['Pad', 'FusedDwPw']);
  const f = foldPads(fused);
  assert.deepEqual(ops(f), ['FusedDwPw']);
  assert.deepEqual(f.nodes[0].attrs.pads, [0, 0, 1, 1]);
  assert.equal(f.nodes[0].inputs[0], x);
});
