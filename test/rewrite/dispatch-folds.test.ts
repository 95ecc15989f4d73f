// foldResidualActivations and foldChannelShuffles on the graph (no GPU; the executor's runs and dispatch counts are in
// dispatch-folds-gpu.test.ts): graphs before and after, and the cases that must not fold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { channelShuffle, concatChannels, splitHalves } from '../../fixtures/zoo.js';
import { fuseEpilogues } from '../../src/rewrite/epilogues.js';
import { applyPlan } from '../../src/rewrite/apply-plan.js';
import { foldResidualActivations } from '../../src/rewrite/residual-activation.js';
import { foldChannelShuffles } from '../../src/rewrite/channel-shuffle.js';
import { rewrite } from '../../src/pipeline/pipeline.js';
import { fcmDomain, newAttrs, type Graph } from '../../src/graph/ir.js';
import { FcmError } from '../../src/errors.js';
import { kernelFor } from '../../kernels/registry.js';
import { defaultLimits } from '../../kernels/program.js';
import type { Plan, PlanModule } from '../../src/planner/plan.js';
import { tinyRegNet, tinyResNet, tinyShuffleNet } from './fold-models.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';

const ops = (g: Graph) => g.nodes.map((n) => n.op);
const count = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op).length;
const node = (y: string) => y.replace(/_out$/, '');
const topological = (g: Graph) => {
  const made = new Set([...g.inputs, ...[...g.tensors.values()].filter((t) => t.data).map((t) => t.name)]);
  return g.nodes.every((n) => { const ok = n.inputs.every((x) => !x || made.has(x)); n.outputs.forEach((y) => made.add(y)); return ok; });
};

// ---- residual activations -----------------------------------------------------------------------------------

test('ResNet / RegNet blocks: the Relu after each residual Add becomes the Conv\'s activationPost', () => {
  for (const [g, blocks] of [[tinyResNet(), 2], [tinyRegNet(), 3]] as const) {
    const before = fuseEpilogues(g);
    const after = foldResidualActivations(before);
    assert.equal(count(after, 'Relu'), count(before, 'Relu') - blocks, g.name);
    assert.equal(after.nodes.length, before.nodes.length - blocks);
    const post = after.nodes.filter((n) => n.attrs.activationPost !== undefined);
    assert.equal(post.length, blocks);
    for (const n of post) {
      assert.equal(n.op, 'Conv');
      assert.equal(n.attrs.activationPost, 'Relu');
      assert.ok(n.inputs[3], 'the node has a residual');
    }
    assert.deepEqual(after.outputs, g.outputs);
    assert.ok(topological(after));
    // The input graph is untouched.
    assert.equal(count(before, 'Relu'), count(fuseEpilogues(g), 'Relu'));
  }
});

test('Add -> activation without a conv to fold into: the Add takes it (Clip keeps its bounds); output names kept', () => {
  const b = new GraphBuilder('add', 1);
  const x = b.input('x', [1, 4, 3, 3]), z = b.input('z', [1, 4, 3, 3]);
  const y = b.relu6(b.add(x, z));
  const g = foldResidualActivations(b.build([y]));
  assert.deepEqual(ops(g), ['Add']);
  assert.equal(g.nodes[0].attrs.activation, 'Clip');
  assert.deepEqual(g.nodes[0].attrs.activationParams, [0, 6]);
  assert.deepEqual(g.nodes[0].outputs, [y]);
});

test('an FCM with a residual takes the activation after it (activationPost)', () => {
  const b = new GraphBuilder('fcm', 2);
  const x = b.input('x', [1, 8, 6, 6]);
  const p1 = b.conv(x, { filters: 16, kernel: 1, bias: true });
  const p2 = b.conv(p1, { filters: 8, kernel: 1, bias: true });
  const y = b.relu(b.add(p2, x));
  const g = b.build([y]);
  const mod: PlanModule = { kind: 'pwpw', layers: [0, 1], nodes: [node(p1), node(p2)], tiles: { l1Filters: 8, l2Filters: 8, h: 2, w: 2 }, gma: 1, gmaUnfused: 2 };
  const plan: Plan = { model: 'fcm', hw: 'h', mode: 'optimal', modules: [mod], totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 } };
  const f = foldResidualActivations(applyPlan(g, plan));
  assert.deepEqual(ops(f), ['FusedPwPw']);
  assert.equal(f.nodes[0].domain, fcmDomain);
  assert.equal(f.nodes[0].inputs[5], x);
  assert.equal(f.nodes[0].attrs.activationPost, 'Relu');
  assert.deepEqual(f.nodes[0].outputs, [y]);
});

test('no fold: the sum read twice or a graph output, a Clip bound computed at run time, an activation already there', () => {
  const keep = (g: Graph, why: string) => assert.equal(foldResidualActivations(g), g, why);
  {
    const b = new GraphBuilder('g', 3);
    const x = b.input('x', [1, 4, 3, 3]);
    const s = b.add(b.conv(x, { filters: 4 }), x);
    keep(fuseEpilogues(b.build([b.relu(s), b.mul(s, x)])), 'the sum has a second reader');
  }
  {
    const b = new GraphBuilder('g', 4);
    const x = b.input('x', [1, 4, 3, 3]);
    const s = b.add(b.conv(x, { filters: 4 }), x);
    keep(fuseEpilogues(b.build([b.relu(s), s])), 'the sum is a graph output');
  }
  {
    const b = new GraphBuilder('g', 5);
    const x = b.input('x', [1, 4, 3, 3]), lo = b.input('lo', []);
    keep(b.build([b.node('Clip', [b.add(x, x), lo], [1, 4, 3, 3])]), 'a Clip bound that is no constant');
  }
  {
    const b = new GraphBuilder('g', 6);
    const x = b.input('x', [1, 4, 3, 3]);
    const s = b.node('Add', [x, x], [1, 4, 3, 3], { activation: 'Relu' });
    keep(b.build([b.node('Sigmoid', [s], [1, 4, 3, 3])]), 'the Add has an activation');
  }
  {
    // A conv without residual: its activation is fuseEpilogues' to fold, not this pass's (here it has two readers).
    const b = new GraphBuilder('g', 7);
    const x = b.input('x', [1, 4, 3, 3]);
    const c = b.conv(x, { filters: 4 });
    keep(b.build([b.relu(c), b.mul(c, x)]), 'no residual');
  }
});

// ---- channel shuffles -----------------------------------------------------------------------------------------

test('ShuffleNet blocks: Concat -> shuffle -> Split (or Slices) become one ChannelShuffle each', () => {
  for (const slices of [false, true]) {
    const g = fuseEpilogues(tinyShuffleNet(1, { slices }));
    assert.deepEqual([count(g, 'Concat'), count(g, 'Transpose'), count(g, 'Reshape'), count(g, slices ? 'Slice' : 'Split')], [3, 3, 6, slices ? 4 : 2]);
    const f = foldChannelShuffles(g);
    // The pipeline's rewrite of a float graph folds them too (and then each into its conv: shuffle-conv.test.ts).
    assert.deepEqual(ops(rewrite(tinyShuffleNet(1, { slices }), 'fp32', 'unfused', { shuffleConv: false })), ops(foldResidualActivations(f)));
    for (const op of ['Concat', 'Transpose', 'Reshape', 'Split', 'Slice']) assert.equal(count(f, op), 0, `${op} left (slices ${slices})`);
    const cs = f.nodes.filter((n) => n.op === 'ChannelShuffle');
    assert.equal(cs.length, 3);
    for (const n of cs) assert.equal(n.attrs.groups, 2);
    // The first two feed the next block's halves; the last, the head.
    assert.deepEqual(cs.map((n) => [n.inputs.length, n.outputs.length]), [[2, 2], [2, 2], [2, 1]]);
    // The second block reads the first's first half straight into its own shuffle, the second half into its branch.
    assert.equal(cs[1].inputs[0], cs[0].outputs[0]);
    assert.deepEqual(f.outputs, g.outputs);
    assert.ok(topological(f));
    for (const n of cs) for (const t of [...n.inputs, ...n.outputs]) assert.ok(f.tensors.has(t));
  }
});

/** x [1, 8, 4, 4] -> Concat(x, x') -> shuffle -> (rest), for the negative cases. */
function shuffleOf(build: (b: GraphBuilder, cat: string) => string[]): Graph {
  const b = new GraphBuilder('s', 8);
  const x = b.input('x', [1, 8, 4, 4]);
  const cat = concatChannels(b, [x, b.relu(x)]);
  return b.build(build(b, cat));
}

test('what stays: a second reader of the 5-D tensor, another perm, the Concat read twice, Slices that leave channels out, a shuffled graph output', () => {
  // The 5-D tensor has a second reader: nothing folds.
  const g1 = shuffleOf((b, cat) => {
    const v = b.node('Reshape', [cat], [1, 2, 8, 4, 4], { shape: [1, 2, 8, 4, 4] });
    const t = b.node('Transpose', [v], [1, 8, 2, 4, 4], { perm: [0, 2, 1, 3, 4] });
    return [b.node('Reshape', [t], [1, 16, 4, 4], { shape: [1, 16, 4, 4] }), b.relu(v)];
  });
  assert.equal(foldChannelShuffles(g1), g1);
  // Another permutation is no channel shuffle.
  const g2 = shuffleOf((b, cat) => {
    const v = b.node('Reshape', [cat], [1, 2, 8, 4, 4], { shape: [1, 2, 8, 4, 4] });
    const t = b.node('Transpose', [v], [1, 2, 8, 4, 4], { perm: [0, 1, 2, 4, 3] });
    return [b.node('Reshape', [t], [1, 16, 4, 4], { shape: [1, 16, 4, 4] })];
  });
  assert.equal(foldChannelShuffles(g2), g2);
  // The Concat's output is read twice: the shuffle folds, reading the concatenated tensor; the Concat stays.
  const g3 = foldChannelShuffles(shuffleOf((b, cat) => [channelShuffle(b, cat, 2), b.relu(cat)]));
  assert.deepEqual(ops(g3), ['Relu', 'Concat', 'ChannelShuffle', 'Relu']);
  assert.equal(g3.nodes[2].inputs.length, 1);
  // Slices that leave channels out stay; the shuffle writes the whole tensor for them.
  const g4 = foldChannelShuffles(shuffleOf((b, cat) => {
    const y = channelShuffle(b, cat, 4);
    return [b.node('Slice', [y], [1, 4, 4, 4], { starts: [0], ends: [4], axes: [1], steps: [1] }), b.node('Slice', [y], [1, 8, 4, 4], { starts: [8], ends: [16], axes: [1], steps: [1] })];
  }));
  assert.deepEqual(ops(g4), ['Relu', 'ChannelShuffle', 'Slice', 'Slice']);
  assert.equal(g4.nodes[1].attrs.groups, 4);
  // The shuffled tensor is a graph output: it is written whole, and its Split stays.
  const g5 = foldChannelShuffles(shuffleOf((b, cat) => {
    const y = channelShuffle(b, cat, 2);
    return [y, ...splitHalves(b, y)];
  }));
  assert.deepEqual(ops(g5), ['Relu', 'ChannelShuffle', 'Split']);
  assert.deepEqual(g5.nodes[1].outputs, [g5.outputs[0]]);
});

test('a Conv with activationPost exports as Conv, Add, activation: re-imported and folded again it is the same graph', async () => {
  const folded = foldResidualActivations(fuseEpilogues(tinyResNet()));
  const back = await loadModel(exportOnnx(folded), { source: 'tiny_resnet.onnx' });
  assert.deepEqual(ops(back).filter((o) => o === 'Relu' || o === 'Add').length, 3 + 2 + 2, 'the stem\'s and first convs\' Relus, the residual Adds and the Relus after them');
  const again = foldResidualActivations(fuseEpilogues(back));
  assert.deepEqual(again.nodes.map((n) => [n.op, n.attrs.activation, n.attrs.activationPost]), folded.nodes.map((n) => [n.op, n.attrs.activation, n.attrs.activationPost]));
});

test('activationPost without a residual is refused by the conv and FCM kernels, naming the node', () => {
  const conv = { name: 'c', op: 'Conv', domain: '', inputs: ['x', 'w'], outputs: ['y'], attrs: newAttrs({ kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, activationPost: 'Relu' }) };
  assert.throws(() => kernelFor(conv, [[1, 4, 3, 3], [4, 4, 1, 1]], [[1, 4, 3, 3]], defaultLimits), (e: unknown) => e instanceof FcmError && e.kind === 'invalid' && /'c'/.test(e.message) && /no residual/.test(e.message));
  const fcm = { name: 'f', op: 'FusedPwPw', domain: fcmDomain, inputs: ['x', 'w1', '', 'w2', '', ''], outputs: ['y'], attrs: newAttrs({ tileFilters1: 4, tileFilters2: 4, tileH: 2, tileW: 2, activationPost: 'Relu' }) };
  assert.throws(() => kernelFor(fcm, [[1, 4, 3, 3], [4, 4, 1, 1], undefined, [4, 4, 1, 1], undefined, undefined], [[1, 4, 3, 3]], defaultLimits), (e: unknown) => e instanceof FcmError && /'f'/.test(e.message) && /no residual/.test(e.message));
});
