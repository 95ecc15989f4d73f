import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { applyPlan } from '../../src/rewrite/apply-plan.js';
import { fuseEpilogues } from '../../src/rewrite/epilogues.js';
import { FcmError } from '../../src/errors.js';
import { fcmDomain, type Graph } from '../../src/graph/ir.js';
import type { Plan, PlanModule } from '../../src/planner/plan.js';

const node = (y: string) => y.replace(/_out$/, '');
const ops = (g: Graph) => g.nodes.map((n) => n.op);
const tiles = { l1Filters: 8, l2Filters: 8, h: 4, w: 4, d: 8 };
const plan = (modules: PlanModule[]): Plan => ({
  model: 'm', hw: 'h', mode: 'optimal', modules,
  totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 },
});
const mod = (kind: PlanModule['kind'], nodes: string[], layers = [1, 2]): PlanModule => ({ kind, layers, nodes, tiles, gma: 1, gmaUnfused: 2 });
const fcmErr = (re: RegExp) => (e: unknown) => e instanceof FcmError && e.exitCode === 2 && re.test(e.message);

/** x -> PW(8->16) -> Relu -> DW 3x3 stride 2 -> Clip -> PW(16->8) -> PW(8->8) -> Add(residual). */
function mobileBlock() {
  const b = new GraphBuilder('block', 1);
  const x = b.input('x', [1, 8, 8, 8]);
  const p1 = b.conv(x, { filters: 16, kernel: 1, bias: true });
  const r1 = b.relu(p1);
  const d = b.conv(r1, { filters: 16, kernel: 3, stride: 2, group: 16, bias: true });
  const r2 = b.relu6(d);
  const p2 = b.conv(r2, { filters: 8, kernel: 1 });
  const p3 = b.conv(p2, { filters: 8, kernel: 1, bias: true });
  const side = b.conv(x, { filters: 8, kernel: 1, stride: 2 });
  const y = b.add(p3, side);
  return { g: b.build([y]), x, p1, r1, d, r2, p2, p3, side, y };
}

test('PW-DW and PW-PW modules become FusedPwDw and FusedPwPw nodes, as src/graph/ir.ts states', () => {
  const t = mobileBlock();
  const out = applyPlan(t.g, plan([
    mod('pwdw', [node(t.p1), node(t.r1), node(t.d), node(t.r2)]),
    mod('pwpw', [node(t.p2), node(t.p3)], [3, 4]),
    mod('pw', [node(t.side)], [5]),
  ]));
  assert.deepEqual(ops(out), ['FusedPwDw', 'Conv', 'FusedPwPw']);
  const [a, side, c] = out.nodes;
  assert.equal(side.name, node(t.side));
  assert.equal(a.domain, fcmDomain);
  const conv = (y: string) => t.g.nodes.find((n) => n.outputs[0] === y)!;
  const [p1, d, p2, p3] = [conv(t.p1), conv(t.d), conv(t.p2), conv(t.p3)];
  assert.deepEqual(a.inputs, [t.x, p1.inputs[1], p1.inputs[2], d.inputs[1], d.inputs[2], '']);
  assert.deepEqual(a.outputs, [t.r2]);
  assert.deepEqual([a.attrs.strides, a.attrs.pads, a.attrs.kernel, a.attrs.dilations], [[2, 2], [1, 1, 1, 1], [3, 3], [1, 1]]);
  assert.deepEqual([a.attrs.activation1, a.attrs.activationParams1, a.attrs.activation2, a.attrs.activationParams2], ['Relu', undefined, 'Clip', [0, 6]]);
  assert.deepEqual([a.attrs.tileFilters1, a.attrs.tileFilters2, a.attrs.tileH, a.attrs.tileW], [8, 8, 4, 4]);
  assert.deepEqual([a.attrs.layer1, a.attrs.layer2], [p1.name, d.name]);
  // PW-PW: residual folded into the second conv by fuseEpilogues, carried as the 6th input; no DW geometry.
  assert.deepEqual(c.inputs, [t.r2, p2.inputs[1], '', p3.inputs[1], p3.inputs[2], t.side]);
  assert.deepEqual(c.outputs, [t.y]);
  assert.equal(c.attrs.strides, undefined);
  assert.deepEqual(out.outputs, t.g.outputs);
  // The intermediates never exist.
  for (const y of [t.p1, t.r1, t.p2]) assert.ok(!out.tensors.has(y), y);
  // One node (one dispatch) less per fused pair than the epilogue-fused graph.
  assert.equal(out.nodes.length, fuseEpilogues(t.g).nodes.length - 2);
});

test('DW-PW: the DW layer gives the geometry; tileFilters1 is the planner\'s depth step', () => {
  const t = mobileBlock();
  const out = applyPlan(t.g, plan([{ ...mod('dwpw', [node(t.d), node(t.r2), node(t.p2)]), tiles: { l1Filters: 16, l2Filters: 4, h: 2, w: 2, d: 8 } }]));
  assert.deepEqual(ops(out), ['Conv', 'FusedDwPw', 'Conv', 'Conv']);
  const f = out.nodes[1];
  assert.deepEqual([f.attrs.strides, f.attrs.kernel, f.attrs.activation1, f.attrs.activation2], [[2, 2], [3, 3], 'Clip', undefined]);
  assert.deepEqual([f.attrs.tileFilters1, f.attrs.tileFilters2, f.attrs.tileH, f.attrs.tileW], [8, 4, 2, 2]);
  assert.deepEqual(f.outputs, [t.p2]);
});

test('a zero Pad between PW and DW (TFLite style) is folded into the DW padding', () => {
  const b = new GraphBuilder('pad', 2);
  const x = b.input('x', [1, 4, 8, 8]);
  const p = b.conv(x, { filters: 8, kernel: 1 });
  const padded = b.node('Pad', [p], [1, 8, 9, 9], { pads: [0, 0, 0, 0, 0, 0, 1, 1], mode: 'constant', value: 0 });
  const d = b.conv(padded, { filters: 8, kernel: 3, stride: 2, group: 8, pad: 0 });
  const out = applyPlan(b.build([d]), plan([mod('pwdw', [node(p), node(padded), node(d)])]));
  assert.deepEqual(ops(out), ['FusedPwDw']);
  assert.deepEqual(out.nodes[0].attrs.pads, [0, 0, 1, 1]);
  assert.equal(out.nodes[0].inputs[0], x);
});

test('negative: a second consumer of the intermediate, a cycle through another branch', () => {
  const b = new GraphBuilder('neg', 3);
  const x = b.input('x', [1, 8, 8, 8]);
  const p = b.conv(x, { filters: 8, kernel: 1 });
  const d = b.conv(p, { filters: 8, kernel: 3, group: 8 });
  const s = b.node('Sigmoid', [p], b.shape(p));
  const y = b.add(d, s);
  // d's residual (after fuseEpilogues) is computed from p: fusing p and d would need p's output twice.
  assert.throws(() => applyPlan(b.build([y]), plan([mod('pwdw', [node(p), node(d)])])), fcmErr(/plan module 0 \(pwdw, layers 1, 2\).*consumers/));

  const b2 = new GraphBuilder('neg2', 4);
  const x2 = b2.input('x', [1, 8, 8, 8]);
  const p2 = b2.conv(x2, { filters: 8, kernel: 1 });
  const d2 = b2.conv(p2, { filters: 8, kernel: 3, group: 8 });
  const y2 = b2.add(b2.relu(p2), d2);
  assert.throws(() => applyPlan(b2.build([y2]), plan([mod('pwdw', [node(p2), node(d2)])])), fcmErr(/has consumers/));
});

test('a plan for another graph, or stale: clear errors naming the module', () => {
  const t = mobileBlock();
  assert.throws(() => applyPlan(t.g, plan([mod('pwdw', ['nope_1', 'nope_2'])])), fcmErr(/plan module 0.*not in the graph: nope_1, nope_2/));
  assert.throws(() => applyPlan(t.g, plan([mod('dwpw', [node(t.p1), node(t.d)])])), fcmErr(/form pwdw.*not dwpw/));
  assert.throws(() => applyPlan(t.g, plan([{ ...mod('pwdw', []), nodes: undefined }])), fcmErr(/names no IR nodes/));
  assert.throws(() => applyPlan(t.g, plan([mod('pwdw', [node(t.p1), node(t.d)]), mod('dwpw', [node(t.d), node(t.p2)], [2, 3])])), fcmErr(/plan module 1.*already in another fused module/));
  assert.throws(() => applyPlan(t.g, plan([{ ...mod('pwdw', [node(t.p1), node(t.d)]), tiles: { h: 4, w: 4 } }])), fcmErr(/tile 'l1Filters'/));
  // Stride-2 1x1 is no PW for an FCM.
  assert.throws(() => applyPlan(t.g, plan([mod('pwpw', [node(t.side), node(t.p3)])])), fcmErr(/not pwpw/));
});

test('lone modules and an empty plan leave the graph as fuseEpilogues makes it', () => {
  const t = mobileBlock();
  const out = applyPlan(t.g, plan([mod('pw', [node(t.p1)], [1])]));
  assert.deepEqual(ops(out), ops(fuseEpilogues(t.g)));
  assert.deepEqual(ops(out), ['Conv', 'Conv', 'Conv', 'Conv', 'Conv']);
});
