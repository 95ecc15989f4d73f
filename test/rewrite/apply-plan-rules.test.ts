// applyPlan / matchModule (src/rewrite/apply-plan.ts), rule by rule: how a module's nodes are found (any order,
// only plain ONNX Convs count), what the FCM node carries (DW geometry, activations, tiles, intermediate
// quantization, a unique name) and the refusals, each with the message that names what is wrong. The FCM node's
// function is checked against the graph it replaces (float-interp.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { applyPlan } from '../../src/rewrite/apply-plan.js';
import { FcmError } from '../../src/errors.js';
import { fcmDomain, type Graph, type Node } from '../../src/graph/ir.js';
import type { Plan, PlanModule, Tiles } from '../../src/planner/plan.js';
import { runFloat } from './float-interp.js';
import { randomInputs } from './random-graphs.js';

const tiles: Tiles = { l1Filters: 8, l2Filters: 4, h: 2, w: 2, d: 4 };
const plan = (modules: PlanModule[]): Plan => ({ model: 'm', hw: 'h', mode: 'optimal', modules, totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 } });
const mod = (kind: PlanModule['kind'], nodes: string[], t: Tiles = tiles): PlanModule => ({ kind, layers: [1, 2], nodes, tiles: t, gma: 1, gmaUnfused: 2 });
const name = (y: string) => y.replace(/_out$/, '');
const refuses = (g: Graph, m: PlanModule, ...fragments: string[]) => assert.throws(() => applyPlan(g, plan([m])), (e: unknown) => {
  assert.ok(e instanceof FcmError, String(e));
  assert.equal(e.exitCode, 2, e.message);
  for (const f of fragments) assert.ok(e.message.includes(f), `'${e.message}' should contain '${f}'`);
  return true;
});

function sameFunction(before: Graph, after: Graph) {
  const feeds = randomInputs(before, 21);
  const [want, got] = [runFloat(before, feeds), runFloat(after, feeds)];
  want.forEach((w, k) => assert.ok(w.every((v, i) => v === got[k][i]), `output ${k} differs`));
}

/** x [1, 4, 6, 6] -> PW (8) -> DW 3x3 -> PW (4). */
function chain(opts: { dwPad?: number; dwStride?: number } = {}) {
  const b = new GraphBuilder('chain', 31);
  const x = b.input('x', [1, 4, 6, 6]);
  const p1 = b.conv(x, { filters: 8, kernel: 1, bias: true });
  const d = b.conv(p1, { filters: 8, kernel: 3, group: 8, pad: opts.dwPad ?? 1, stride: opts.dwStride ?? 1 });
  const p2 = b.conv(d, { filters: 4, kernel: 1 });
  return { b, x, p1, d, p2, g: b.build([p2]) };
}
const nodeOf = (g: Graph, y: string): Node => g.nodes.find((n) => n.outputs.includes(y))!;

test('module nodes may be listed in any order; the FCM is named after both convs and never reuses a name', () => {
  const t = chain();
  const out = applyPlan(t.g, plan([mod('dwpw', [name(t.p2), name(t.d)])]));
  assert.deepEqual(out.nodes.map((n) => [n.op, n.name]), [['Conv', name(t.p1)], ['FusedDwPw', `${name(t.d)}+${name(t.p2)}`]]);
  sameFunction(t.g, out);
  // A node of that name exists already.
  const u = chain();
  nodeOf(u.g, u.p1).name = `${name(u.d)}+${name(u.p2)}`;
  const named = applyPlan(u.g, plan([mod('dwpw', [name(u.d), name(u.p2)])]));
  assert.deepEqual(named.nodes.map((n) => n.name), [`${name(u.d)}+${name(u.p2)}`, `${name(u.d)}+${name(u.p2)}_1`]);
});

test('the FCM node carries the DW layer\'s geometry: DW-PW keeps the DW\'s padding; absent attributes stay absent', () => {
  const t = chain({ dwPad: 1, dwStride: 2 });
  const f = applyPlan(t.g, plan([mod('dwpw', [name(t.d), name(t.p2)])])).nodes[1];
  assert.deepEqual([f.attrs.strides, f.attrs.pads, f.attrs.kernel, f.attrs.dilations], [[2, 2], [1, 1, 1, 1], [3, 3], [1, 1]]);
  const u = chain();
  const dw = nodeOf(u.g, u.d);
  for (const k of ['strides', 'dilations', 'kernel']) delete dw.attrs[k];
  const fu = applyPlan(u.g, plan([mod('pwdw', [name(u.p1), name(u.d)])])).nodes[0];
  assert.deepEqual(Object.keys(fu.attrs).filter((k) => ['strides', 'pads', 'kernel', 'dilations'].includes(k)), ['pads']);
  assert.ok(!('activation1' in fu.attrs) && !('activation2' in fu.attrs) && !('activationParams1' in fu.attrs), 'no activations, no keys');
  sameFunction(u.g, applyPlan(u.g, plan([mod('pwdw', [name(u.p1), name(u.d)])])));
});

test('activations: each layer\'s own, parameters only where it has them', () => {
  const b = new GraphBuilder('acts', 32);
  const x = b.input('x', [1, 4, 6, 6]);
  const p1 = b.conv(x, { filters: 8, kernel: 1 });
  const d = b.conv(b.node('LeakyRelu', [p1], [1, 8, 6, 6], { alpha: 0.2 }), { filters: 8, kernel: 3, group: 8 });
  const y = b.node('Tanh', [d], [1, 8, 6, 6]);
  const g = b.build([y]);
  const f = applyPlan(g, plan([mod('pwdw', [name(p1), name(d)])]));
  const a = f.nodes[0].attrs;
  assert.deepEqual([a.activation1, a.activationParams1, a.activation2, 'activationParams2' in a], ['LeakyRelu', [0.2], 'Tanh', false]);
  sameFunction(g, f);
});

test('tiles: DW-PW takes the depth step as tileFilters1, the others l1Filters; each tile a positive integer, named when not', () => {
  const t = chain();
  const pwdw = applyPlan(t.g, plan([mod('pwdw', [name(t.p1), name(t.d)], { l1Filters: 8, l2Filters: 2, h: 3, w: 1, d: 4 })])).nodes[0].attrs;
  assert.deepEqual([pwdw.tileFilters1, pwdw.tileFilters2, pwdw.tileH, pwdw.tileW], [8, 2, 3, 1]);
  const dwpw = applyPlan(t.g, plan([mod('dwpw', [name(t.d), name(t.p2)], { l1Filters: 8, l2Filters: 2, h: 3, w: 1, d: 4 })])).nodes[1].attrs;
  assert.equal(dwpw.tileFilters1, 4);
  const noDepth = applyPlan(t.g, plan([mod('dwpw', [name(t.d), name(t.p2)], { l1Filters: 8, l2Filters: 2, h: 3, w: 1 })])).nodes[1].attrs;
  assert.equal(noDepth.tileFilters1, 8);
  const m = (over: Tiles) => mod('pwdw', [name(t.p1), name(t.d)], { ...tiles, ...over });
  refuses(t.g, m({ l1Filters: 0 }), "tile 'l1Filters' must be a positive integer, got 0");
  refuses(t.g, m({ l2Filters: -1 }), "tile 'l2Filters'", 'got -1');
  refuses(t.g, m({ h: 1.5 }), "tile 'h'", 'got 1.5');
  refuses(t.g, m({ w: undefined }), "tile 'w'", 'got undefined');
});

test('a quantized intermediate keeps its per-tensor quantization on the FCM node; per-channel or none leaves none', () => {
  const cases: [string, { scale: number[]; zeroPoint: number[] } | undefined, unknown[]][] = [
    ['per tensor', { scale: [0.05], zeroPoint: [-3] }, [0.05, -3]],
    ['no zero point', { scale: [0.05], zeroPoint: [] }, [0.05, 0]],
    ['per channel', { scale: [0.05, 0.1], zeroPoint: [0, 0] }, [undefined, undefined]],
    ['float', undefined, [undefined, undefined]],
  ];
  for (const [why, quant, want] of cases) {
    const t = chain();
    if (quant) t.g.tensors.set(t.p1, { ...t.g.tensors.get(t.p1)!, quant });
    const a = applyPlan(t.g, plan([mod('pwdw', [name(t.p1), name(t.d)])])).nodes[0].attrs;
    assert.deepEqual([a.intermediateScale, a.intermediateZeroPoint], want, why);
  }
});

test('a zero Pad before the DW adds to the DW\'s own padding, absent or not', () => {
  for (const own of [undefined, [1, 0, 0, 1]]) {
    const b = new GraphBuilder('pad', 33);
    const x = b.input('x', [1, 4, 6, 6]);
    const p1 = b.conv(x, { filters: 8, kernel: 1 });
    const padded = b.node('Pad', [p1], [1, 8, 7, 7], { pads: [0, 0, 0, 1, 0, 0, 1, 0], mode: 'constant', value: 0 });
    const d = b.conv(padded, { filters: 8, kernel: 3, group: 8, pad: 0 });
    const dw = b.nodes[b.nodes.length - 1];
    if (own) {
      dw.attrs.pads = own;
      b.tensors.get(d)!.shape = [1, 8, 6, 6];
    } else delete dw.attrs.pads;
    const g = b.build([d]);
    const f = applyPlan(g, plan([mod('pwdw', [name(p1), name(padded), name(d)])]));
    assert.deepEqual(f.nodes.map((n) => [n.op, n.attrs.pads]), [['FusedPwDw', own ? [1, 1, 1, 1] : [0, 1, 1, 0]]]);
    assert.ok(!f.tensors.has(padded) && !f.tensors.has(p1));
    sameFunction(g, f);
  }
});

test('refusals name the module and what is wrong', () => {
  const t = chain();
  refuses(t.g, { ...mod('pwdw', []), nodes: [] }, 'plan module 0 (pwdw, layers 1, 2)', 'names no IR nodes');
  // Missing names are listed, present ones not; with none missing, no such clause.
  refuses(t.g, mod('pwdw', [name(t.p1), 'gone']), 'expected 2 Conv nodes among', 'found 1; not in the graph: gone (a plan for another graph, or stale)');
  assert.throws(() => applyPlan(t.g, plan([mod('pwdw', [name(t.p1)])])), (e: unknown) => e instanceof FcmError && /found 1$/.test(e.message));
  // A Conv of another domain is not one of the module's convs.
  const other = chain();
  nodeOf(other.g, other.p2).domain = 'com.other';
  assert.ok(applyPlan(other.g, plan([mod('pwdw', [name(other.p1), name(other.d), name(other.p2)])])).nodes.some((n) => n.op === 'FusedPwDw'));
  // The kinds, in words.
  refuses(t.g, mod('pwpw', [name(t.p1), name(t.d)]), `nodes '${name(t.p1)}' and '${name(t.d)}' form pwdw`, 'not pwpw');
  refuses(t.g, mod('pwdw', [name(t.p1), name(t.p2)]), 'form pwpw', 'not pwdw');
  // A graph output between the convs.
  const out = chain();
  out.g.outputs.push(out.p1);
  refuses(out.g, mod('pwdw', [name(out.p1), name(out.d)]), `tensor '${out.p1}' between '${name(out.p1)}' and '${name(out.d)}' is a graph output`);
  // A second consumer: all are named.
  const two = chain();
  two.b.relu(two.p1);
  refuses(two.g, mod('pwdw', [name(two.p1), name(two.d)]), `tensor '${two.p1}' has consumers ['${name(two.d)}', 'relu_`, `needs '${name(two.d)}' as its only consumer`);
});

test('the intermediate must be the second conv\'s data input only; the first conv adds no residual', () => {
  // The second conv reads the intermediate as its residual too.
  const both = chain();
  const d = nodeOf(both.g, both.d);
  d.inputs.push('', both.p1);
  refuses(both.g, mod('pwdw', [name(both.p1), name(both.d)]), `tensor '${both.p1}' must be only the data input of '${name(both.d)}'`);
  // ... or only as its residual.
  const only = chain();
  const b2 = nodeOf(only.g, only.p2);
  const side = only.b.conv(only.x, { filters: 4, kernel: 1 });
  only.g.nodes.splice(only.g.nodes.indexOf(b2), 0, only.g.nodes.pop()!);
  b2.inputs = [side, b2.inputs[1], '', only.d];
  refuses(only.g, mod('dwpw', [name(only.d), name(only.p2)]), `tensor '${only.d}' must be only the data input of '${name(only.p2)}'`);
  // A residual on the first conv.
  const res = chain();
  const p1 = nodeOf(res.g, res.p1);
  const r = res.b.input('r', [1, 8, 6, 6]);
  res.g.inputs.push(r);
  p1.inputs.push(r);
  refuses(res.g, mod('pwdw', [name(res.p1), name(res.d)]), `node '${name(res.p1)}' adds a residual: only the second layer of an FCM may`);
});

test('convolutions the FCM kernels do not model are no PW or DW: 1-D, missing tensors, stride or padding on a PW', () => {
  const t = chain();
  const w = nodeOf(t.g, t.p1).inputs[1];
  t.g.tensors.set(w, { ...t.g.tensors.get(w)!, shape: [8, 4, 1] });
  refuses(t.g, mod('pwdw', [name(t.p1), name(t.d)]), 'form no FCM');
  for (const tensor of ['w', 'x', 'y'] as const) {
    const u = chain();
    const n = nodeOf(u.g, u.p1);
    u.g.tensors.set(tensor === 'w' ? n.inputs[1] : tensor === 'x' ? n.inputs[0] : n.outputs[0], { name: 'v', dtype: 'float32', shape: [8, 4] });
    refuses(u.g, mod('pwdw', [name(u.p1), name(u.d)]), 'form no FCM');
  }
  // No kernel, stride or padding attribute: read from the weights, stride 1, no padding.
  const bare = chain();
  for (const k of ['kernel', 'strides', 'pads']) delete nodeOf(bare.g, bare.p1).attrs[k];
  assert.equal(applyPlan(bare.g, plan([mod('pwdw', [name(bare.p1), name(bare.d)])])).nodes[0].op, 'FusedPwDw');
  const strided = chain();
  nodeOf(strided.g, strided.p1).attrs.strides = [1, 2];
  refuses(strided.g, mod('pwdw', [name(strided.p1), name(strided.d)]), 'form no FCM');
  const padded = chain();
  nodeOf(padded.g, padded.p2).attrs.pads = [0, 0, 1, 0];
  refuses(padded.g, mod('dwpw', [name(padded.d), name(padded.p2)]), 'form no FCM');
});

test('a path from the first conv that leaves the module and comes back into the second is a cycle', () => {
  // The first conv has a second output (not the one the module fuses) from which the DW's weights are computed.
  const t = chain();
  const p1 = nodeOf(t.g, t.p1);
  const dw = nodeOf(t.g, t.d);
  p1.outputs.push('p1_side');
  t.g.tensors.set('p1_side', { name: 'p1_side', dtype: 'float32', shape: [8, 1, 3, 3] });
  const relu: Node = { name: 'side_relu', op: 'Relu', domain: '', inputs: ['p1_side'], outputs: ['w_from_p1'], attrs: Object.create(null) };
  t.g.tensors.set('w_from_p1', { name: 'w_from_p1', dtype: 'float32', shape: [8, 1, 3, 3] });
  t.g.nodes.splice(t.g.nodes.indexOf(dw), 0, relu);
  dw.inputs[1] = 'w_from_p1';
  refuses(t.g, mod('pwdw', [name(t.p1), name(t.d)]), `input 'w_from_p1' of '${name(t.d)}' is computed from '${name(t.p1)}': fusing them would create a cycle`);
  // Weights computed from elsewhere are fine.
  const u = chain();
  const dw2 = nodeOf(u.g, u.d);
  const relu2: Node = { name: 'w_relu', op: 'Relu', domain: '', inputs: [dw2.inputs[1]], outputs: ['w_relu_out'], attrs: Object.create(null) };
  u.g.tensors.set('w_relu_out', { name: 'w_relu_out', dtype: 'float32', shape: [8, 1, 3, 3] });
  u.g.nodes.splice(u.g.nodes.indexOf(dw2), 0, relu2);
  dw2.inputs[1] = 'w_relu_out';
  assert.deepEqual(applyPlan(u.g, plan([mod('pwdw', [name(u.p1), name(u.d)])])).nodes.map((n) => n.op), ['Relu', 'FusedPwDw', 'Conv']);
});

test('modules share no node; lone modules and unknown kinds are left alone', () => {
  const t = chain();
  assert.throws(() => applyPlan(t.g, plan([mod('pwdw', [name(t.p1), name(t.d)]), mod('dwpw', [name(t.d), name(t.p2)])])),
    (e: unknown) => e instanceof FcmError && /plan module 1 \(dwpw, layers 1, 2\): node '.*' is already in another fused module/.test(e.message));
  const out = applyPlan(t.g, plan([{ ...mod('dw', [name(t.d)]), layers: [2] }]));
  assert.deepEqual(out.nodes.map((n) => n.op), ['Conv', 'Conv', 'Conv']);
  assert.ok(out.nodes.every((n) => n.domain !== fcmDomain));
});
