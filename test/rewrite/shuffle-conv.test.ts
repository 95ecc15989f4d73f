// foldShufflesIntoConvs (src/rewrite/shuffle-conv.ts) on the graph, no GPU: the zoo ShuffleNetV2's nodes and dispatches
// before and after (the default plan on h100.cfg, as bench/list-dispatches.ts builds it), a small graph before and
// after, and each rule's refusal. The executor's runs are in shuffle-conv-gpu.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { zooFoldModels } from '../../fixtures/zoo.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import { type Graph, fcmDomain, newAttrs } from '../../src/graph/ir.js';
import { loadHw } from '../../src/planner/hw.js';
import { planFor, planningInput, rewrite } from '../../src/pipeline/pipeline.js';
import { foldChannelScales } from '../../src/rewrite/channel-scale.js';
import { foldShufflesIntoConvs, shuffleConvMatch } from '../../src/rewrite/shuffle-conv.js';
import { consumers, producers } from '../../src/graph/ir.js';
import { compileGraph } from '../../src/runtime/compile.js';
import { defaultLimits } from '../../kernels/program.js';
import { int8KernelFor } from '../../kernels/registry.js';
import { FcmError } from '../../src/errors.js';
import { tinyShuffleNet } from './fold-models.js';

const ops = (g: Graph) => g.nodes.map((n) => n.op);
const count = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op).length;
const shuffledConvs = (g: Graph) => g.nodes.filter((n) => n.op === 'Conv' && n.attrs.shuffleGroups === 2);
const topological = (g: Graph) => {
  const made = new Set([...g.inputs, ...[...g.tensors.values()].filter((t) => t.data).map((t) => t.name)]);
  return g.nodes.every((n) => { const ok = n.inputs.every((x) => !x || made.has(x)); n.outputs.forEach((y) => made.add(y)); return ok; });
};
// bench/list-dispatches.ts's limits: an H100's workgroup storage, large bindings.
const limits = { ...defaultLimits, maxComputeWorkgroupStorageSize: 32768, maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 30 };
const dispatches = (g: Graph) => compileGraph(foldChannelScales(g), limits).steps.length;

// The model's 16 blocks each end in a shuffle whose second input is the branch's last 1x1 + ReLU; the default plan
// fuses none of those convs into an FCM at batch 1 or 8, so all 16 fold. (The plan's 14 FCMs at batch 1 and 11 at
// batch 8 set the counts before the fold.)
for (const [batch, before, after] of [[1, 61, 45], [8, 64, 48]] as const) {
  test(`zoo ShuffleNetV2 at batch ${batch}, default plan on h100.cfg: 16 shuffles fold into their convs, ${before} -> ${after} dispatches`, async () => {
    const g = await loadModel(exportOnnx(zooFoldModels.shufflenet_v2_x1_0(batch)), { source: 'shufflenet_v2_x1_0.onnx' });
    const pin = planningInput(g, loadHw('hw_configs/h100.cfg'), false, 'fp32');
    const plan = planFor(pin, { model: 'shufflenet_v2_x1_0' });
    // The head's Conv and pool stay two nodes (src/rewrite/pointwise-mean.ts): the counts are the shuffle fold's alone.
    const off = rewrite(pin.graph, 'fp32', plan, { shuffleConv: false, foldPool: false }), on = rewrite(pin.graph, 'fp32', plan, { foldPool: false });
    assert.equal(count(off, 'ChannelShuffle'), 16);
    assert.equal(count(on, 'ChannelShuffle'), 0);
    assert.equal(shuffledConvs(on).length, 16);
    assert.equal(on.nodes.length, off.nodes.length - 16);
    assert.equal(dispatches(off), before);
    assert.equal(dispatches(on), after);
    assert.ok(topological(on));
    // The default is on; the option (and FCM_OPT_SHUFFLE_CONV=0, read by the default) turns it off.
    assert.deepEqual(ops(rewrite(pin.graph, 'fp32', plan, { shuffleConv: true, foldPool: false })), ops(on));
  });
}

test('tiny ShuffleNet: each block\'s Conv -> ChannelShuffle becomes one Conv with a shuffled store', () => {
  const g0 = tinyShuffleNet(2);
  const off = rewrite(g0, 'fp32', 'unfused', { shuffleConv: false });
  const on = rewrite(g0, 'fp32', 'unfused');
  assert.deepEqual(on, foldShufflesIntoConvs(off));
  const shuffles = off.nodes.filter((n) => n.op === 'ChannelShuffle');
  assert.equal(shuffles.length, 3);
  const made = producers(off);
  const convs = shuffledConvs(on);
  assert.equal(convs.length, 3);
  shuffles.forEach((s, k) => {
    const old = off.nodes[made.get(s.inputs[1])!];
    const c = convs[k];
    // The old conv's inputs, three empty slots filled to input 5, then the shuffle's first input; the shuffle's outputs.
    assert.deepEqual(c.inputs, [...old.inputs, ...Array(5 - old.inputs.length).fill(''), s.inputs[0]]);
    assert.deepEqual(c.outputs, s.outputs);
    assert.equal(c.name, old.name);
    assert.deepEqual({ ...c.attrs }, { ...old.attrs, shuffleGroups: 2 });
    // The conv's own output is gone.
    assert.ok(!on.tensors.has(s.inputs[1]));
    assert.ok(on.nodes.every((n) => !n.inputs.includes(s.inputs[1])));
  });
  // Split halves (two outputs) in the first two blocks, the whole tensor for the head in the last.
  assert.deepEqual(convs.map((c) => c.outputs.length), [2, 2, 1]);
  assert.equal(on.nodes.length, off.nodes.length - 3);
  assert.deepEqual(on.outputs, off.outputs);
  assert.ok(topological(on));
});

test('integer graphs: the rewrite makes no shuffled conv, and the integer registry refuses one', () => {
  // src/pipeline/pipeline.ts folds shuffles (and these) on float graphs only.
  assert.equal(shuffledConvs(rewrite(tinyShuffleNet(1), 'int8', 'unfused')).length, 0);
  const node = foldShufflesIntoConvs(shuffleCase()).nodes[1];
  assert.equal(node.attrs.shuffleGroups, 2);
  assert.throws(() => int8KernelFor({ node, inputs: [], outputs: [], limits: defaultLimits, dot4: false }), (e: unknown) => e instanceof FcmError && e.kind === 'unsupported' && /shuffled store/.test(e.message));
});

/** a = Relu(x), c = Conv 1x1 (or `conv`) of x, ChannelShuffle(a, c) and what `more` adds. */
function shuffleCase(o: { groups?: number; aChannels?: number; conv?: { kernel: number }; swap?: boolean; splits?: number[]; more?: (b: GraphBuilder, c: string) => string[] } = {}): Graph {
  const b = new GraphBuilder('sc', 9);
  const x = b.input('x', [1, 8, 4, 4]);
  const a = o.aChannels ? b.conv(x, { filters: o.aChannels, kernel: 3, bias: true }) : b.relu(x);
  const c = b.conv(x, { filters: 8, kernel: o.conv?.kernel ?? 1, bias: true });
  const C = b.shape(a)[1] + 8;
  const inputs = o.swap ? [c, a] : [a, c];
  if (!o.splits) return b.build([b.node('ChannelShuffle', inputs, [1, C, 4, 4], { groups: o.groups ?? 2 }), ...(o.more?.(b, c) ?? [])]);
  // Outputs of the given channel counts, as foldChannelShuffles writes a folded Split.
  const ys = o.splits.map((_, k) => `shuffle_out${k}`);
  b.nodes.push({ name: 'shuffle', op: 'ChannelShuffle', domain: '', inputs, outputs: ys, attrs: newAttrs({ groups: 2 }) });
  o.splits.forEach((d, k) => b.tensors.set(ys[k], { name: ys[k], dtype: 'float32', shape: [1, d, 4, 4] }));
  return b.build(ys);
}

/** `g` with its pointwise Conv as an FCM node (the planner fused it before this pass runs). */
function asFcm(g: Graph): Graph {
  const n = g.nodes.find((m) => m.op === 'Conv' && g.tensors.get(m.inputs[1])?.shape[2] === 1)!;
  n.op = 'FusedDwPw';
  n.domain = fcmDomain;
  return g;
}

const why = (g: Graph) => {
  const i = g.nodes.findIndex((n) => n.op === 'ChannelShuffle');
  const readers = new Map([...consumers(g)].map(([k, v]) => [k, [...new Set(v)]]));
  return shuffleConvMatch(g, i, producers(g), readers);
};

test('the rule folds a plain pointwise Conv as the second input', () => {
  const g = shuffleCase();
  const f = foldShufflesIntoConvs(g);
  assert.deepEqual(ops(f), ['Relu', 'Conv']);
  const [relu, conv] = f.nodes;
  assert.deepEqual(conv.inputs, [g.nodes[1].inputs[0], g.nodes[1].inputs[1], g.nodes[1].inputs[2], '', '', relu.outputs[0]]);
  assert.deepEqual(conv.outputs, g.outputs);
  assert.equal(conv.attrs.shuffleGroups, 2);
  assert.ok(!f.tensors.has(g.nodes[1].outputs[0]));
});

test('what stays: a second reader of the conv output, a conv output that is a graph output, groups 4, halves of two shapes, a 3x3 conv, the conv as the first input, an FCM, over 8 bindings', () => {
  const cases: [string, Graph, RegExp][] = [
    ['second reader', shuffleCase({ more: (b, c) => [b.relu(c)] }), /another reader/],
    ['graph output', shuffleCase({ more: (_, c) => [c] }), /graph output/],
    ['groups 4', shuffleCase({ groups: 4 }), /groups 4/],
    ['a has 4 channels, the conv 8', shuffleCase({ aChannels: 4 }), /differ in shape/],
    ['3x3 conv', shuffleCase({ conv: { kernel: 3 } }), /no pointwise Conv/],
    ['conv first', shuffleCase({ swap: true }), /no pointwise Conv/],
    ['an FCM computes the second input', asFcm(shuffleCase()), /no pointwise Conv/],
    // x, w, bias, the channel-scale slot, a and 4 outputs: 9 bindings.
    ['9 bindings', shuffleCase({ splits: [4, 4, 4, 4] }), /9 storage bindings/],
  ];
  // 3 outputs: 8 bindings, within the limit.
  assert.deepEqual(ops(foldShufflesIntoConvs(shuffleCase({ splits: [4, 4, 8] }))), ['Relu', 'Conv']);
  for (const [what, g, reason] of cases) {
    assert.equal(foldShufflesIntoConvs(g), g, what);
    const r = why(g);
    assert.equal(typeof r, 'string', what);
    assert.match(r as string, reason, what);
  }
});
