// checkLegality and findCandidates on hand-made layer DAGs: how layers are recognized (conv, Pad, Add, by op or
// by FusePlanner's lower-case names), which Pad layers fold, the pointwise geometry rule, the cycle rule on
// longer paths, and the violations each rule reports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Dag, DagLayer } from '../../src/planner/dag.js';
import { checkLegality, epilogueOf, findCandidates, isAddLayer, isConvLayer, isPadLayer, type Legality } from '../../src/planner/candidates.js';

type L = Omit<DagLayer, 'id' | 'children'>;
const pw = (parents: number[], c: number, f: number, hw: number, extra: Partial<DagLayer> = {}): L => ({
  name: 'conv', op: 'Conv', parents, activation: '0', type: 'pw', weights_shape: [f, c], ifms_shape: [c, hw, hw], ofms_shape: [f, hw, hw], strides: 1, ...extra,
});
const dw = (parents: number[], c: number, hw: number, extra: Partial<DagLayer> = {}): L => ({
  name: 'dwconv', op: 'Conv', parents, activation: '0', type: 'dw', weights_shape: [c, 3, 3], ifms_shape: [c, hw, hw], ofms_shape: [c, hw, hw], strides: 1, ...extra,
});
const op = (o: string, parents: number[], extra: Partial<DagLayer> = {}): L => ({ name: o.toLowerCase(), op: o, parents, activation: '0', ifms_shape: [], ofms_shape: [], ...extra });
function dag(layers: L[]): Dag {
  const d: Dag = layers.map((l, id) => ({ ...l, id, children: [] as number[] }) as DagLayer);
  for (const l of d) for (const p of l.parents) d[p].children.push(l.id);
  return d;
}
const rules = (r: Legality) => (r.ok ? [] : r.violations.map((v) => v.rule).sort());
const details = (r: Legality) => (r.ok ? [] : r.violations.map((v) => v.detail));
const layer = (l: Partial<DagLayer>): DagLayer => ({ id: 0, name: '', parents: [], children: [], activation: '0', ifms_shape: [], ofms_shape: [], ...l });

test('layer kinds: conv layers by type; Pad and Add by op, or by FusePlanner\'s name when there is no op', () => {
  for (const type of ['s', 'dw', 'pw', 'fc'] as const) assert.equal(isConvLayer(layer({ type })), true, type);
  assert.equal(isConvLayer(layer({ type: 'avgpool' })), false);
  assert.equal(isConvLayer(layer({})), false);

  assert.equal(isPadLayer(layer({ op: 'Pad', name: 'p0' })), true);
  assert.equal(isPadLayer(layer({ name: 'pad' })), true);
  assert.equal(isPadLayer(layer({ name: 'PAD' })), true);
  assert.equal(isPadLayer(layer({ op: 'Relu', name: 'pad' })), false, 'an ONNX node named pad is what its op says');
  assert.equal(isPadLayer(layer({ name: 'padv2' })), false);
  assert.equal(isPadLayer(layer({ name: 'relu' })), false);
  for (const type of ['dw', 'pw', 's', 'fc'] as const) assert.equal(isPadLayer(layer({ name: 'pad', type })), false, `a ${type} layer named pad`);

  assert.equal(isAddLayer(layer({ op: 'Add', name: 'a0' })), true);
  assert.equal(isAddLayer(layer({ name: 'add' })), true);
  assert.equal(isAddLayer(layer({ name: 'ADD' })), true);
  assert.equal(isAddLayer(layer({ op: 'Mul', name: 'add' })), false);
  assert.equal(isAddLayer(layer({ name: 'mul' })), false);
  for (const type of ['dw', 'pw', 's', 'fc'] as const) assert.equal(isAddLayer(layer({ name: 'add', type })), false, `a ${type} layer named add`);
});

test('a conv layer between two others is no Pad, whatever its name; a FusePlanner \'pad\' layer is one', () => {
  const named = dag([op('Input', []), pw([0], 8, 8, 8), { ...dw([1], 8, 8), name: 'pad', op: undefined }, dw([2], 8, 8)]);
  assert.deepEqual(rules(checkLegality(named, 1, 3)), ['not-connected']);
  const tflite = dag([op('Input', []), pw([0], 8, 8, 8), { ...op('x', [1]), name: 'pad', op: undefined, padding_bottom: 1, padding_right: 1 }, dw([2], 8, 9)]);
  assert.deepEqual(findCandidates(tflite).map((c) => [c.kind, c.between, c.extraPads]), [['pwdw', [2], [0, 0, 1, 1]]]);
});

test('Pad layers: zero constant spatial padding folds; a mode, a value, channel padding or a bad count do not', () => {
  const chain = (pad: Partial<DagLayer>) => dag([op('Input', []), pw([0], 8, 8, 8), op('Pad', [1], pad), dw([2], 8, 10)]);
  const folds = (pad: Partial<DagLayer>) => {
    const r = checkLegality(chain(pad), 1, 3);
    return r.ok ? r.extraPads : undefined;
  };
  assert.deepEqual(folds({ padding_top: 1, padding_left: 2, padding_bottom: 3, padding_right: 4 }), [1, 2, 3, 4]);
  // Absent sides are zero; an explicit constant mode, a zero value, zero channel padding are what they say.
  assert.deepEqual(folds({ padding_bottom: 1 }), [0, 0, 1, 0]);
  assert.deepEqual(folds({ padding_top: 1, mode: 'constant', value: 0, padding_channels: 0, spatial_zero_pad: true }), [1, 0, 0, 0]);
  for (const [why, pad] of [
    ['reflect', { padding_top: 1, mode: 'reflect' }],
    ['edge', { padding_top: 1, mode: 'edge' }],
    ['value 1', { padding_top: 1, value: 1 }],
    ['channels', { padding_top: 1, padding_channels: 2 }],
    ['marked by the DAG writer', { padding_top: 1, spatial_zero_pad: false }],
    ['negative top', { padding_top: -1 }],
    ['negative left', { padding_left: -1 }],
    ['negative bottom', { padding_bottom: -1 }],
    ['negative right', { padding_right: -1 }],
    ['fractional', { padding_left: 0.5 }],
  ] as [string, Partial<DagLayer>][]) {
    assert.equal(folds(pad), undefined, why);
    assert.deepEqual(findCandidates(chain(pad)), [], why);
  }
});

test('pointwise geometry: stride, padding or a resized output make a PW unfusable; a missing stride is 1', () => {
  const pair = (a: Partial<DagLayer>, b: Partial<DagLayer> = {}) => dag([op('Input', []), pw([0], 8, 16, 8, a), pw([1], 16, 8, 8, b)]);
  assert.deepEqual(rules(checkLegality(pair({}), 1, 2)), []);
  assert.deepEqual(rules(checkLegality(pair({ strides: undefined }, { strides: undefined }), 1, 2)), []);
  assert.deepEqual(rules(checkLegality(pair({ pads: [0, 0, 0, 0] }), 1, 2)), []);
  const r = checkLegality(pair({}, { strides: 2, ofms_shape: [8, 4, 4] }), 1, 2);
  assert.deepEqual(rules(r), ['pw-stride']);
  assert.match(details(r)[0], /pointwise layer 2 has stride 2$/);
  const padded = checkLegality(pair({ pads: [0, 1, 0, 1] }), 1, 2);
  assert.deepEqual(rules(padded), ['pw-stride']);
  assert.match(details(padded)[0], /pointwise layer 1 has stride 1 and padding/);
  // The FusePlanner reference's DAGs record stride 1 for some strided 1x1 convolutions: the shapes tell.
  assert.deepEqual(rules(checkLegality(pair({ ofms_shape: [16, 4, 4] }), 1, 2)), ['pw-stride']);
  assert.deepEqual(rules(checkLegality(pair({ ofms_shape: [16, 8, 4] }), 1, 2)), ['pw-stride'], 'width only');
  assert.deepEqual(rules(checkLegality(pair({ ofms_shape: [16, 4, 8] }), 1, 2)), ['pw-stride'], 'height only');
  // Channels may change; without shapes a DAG is judged by stride and padding alone.
  assert.deepEqual(rules(checkLegality(pair({ ofms_shape: [32, 8, 8] }), 1, 2)), []);
  const bare = pair({});
  for (const l of [bare[1], bare[2]]) delete (l as Partial<DagLayer>).ofms_shape;
  assert.deepEqual(rules(checkLegality(bare, 1, 2)), []);
  const noInput = pair({});
  delete (noInput[1] as Partial<DagLayer>).ifms_shape;
  assert.deepEqual(rules(checkLegality(noInput, 1, 2)), []);
  // Both layers of a PW-PW pair are checked, and both are reported.
  assert.deepEqual(details(checkLegality(pair({ strides: 2 }, { strides: 2 }), 1, 2)).length, 2);
  // A DW's own stride and padding are its geometry, carried by the FCM.
  assert.deepEqual(rules(checkLegality(dag([op('Input', []), pw([0], 8, 16, 8), dw([1], 16, 8, { strides: 2, pads: [1, 1, 1, 1], ofms_shape: [16, 4, 4] })]), 1, 2)), []);
});

test('ids that are not two conv layers, and kinds that are no FCM, are reported without walking the DAG', () => {
  const d = dag([op('Input', []), pw([0], 8, 16, 8), { name: 'fc', op: 'Gemm', parents: [1], activation: '0', type: 'fc', weights_shape: [10, 16], ifms_shape: [16, 64, 1], ofms_shape: [10, 64, 1] }]);
  const missing = checkLegality(d, 1, 9);
  assert.deepEqual(rules(missing), ['not-conv-pair']);
  assert.match(details(missing)[0], /layers 1 and 9/);
  assert.deepEqual(rules(checkLegality(d, 9, 1)), ['not-conv-pair']);
  assert.deepEqual(rules(checkLegality(d, 0, 1)), ['not-conv-pair']);
  // A fully connected layer is a conv layer, but no part of an FCM.
  const fc = checkLegality(d, 1, 2);
  assert.deepEqual(rules(fc), ['unsupported-kind']);
  assert.match(details(fc)[0], /pw -> fc/);
});

test('walking the chain: a model output, a second consumer and a dead end are each reported', () => {
  const d = dag([op('Input', []), pw([0], 8, 16, 8), dw([1], 16, 8)]);
  d[1].model_output = true;
  const out = checkLegality(d, 1, 2);
  assert.deepEqual(rules(out), ['graph-output']);
  assert.match(details(out)[0], /layer 1 is a model output/);
  // Through a Pad: the Pad's output is the model output.
  const p = dag([op('Input', []), pw([0], 8, 16, 8), op('Pad', [1], { padding_top: 1 }), dw([2], 16, 9)]);
  assert.deepEqual(rules(checkLegality(p, 1, 3, new Set([2]))), ['graph-output']);
  p[2].model_output = true;
  assert.deepEqual(rules(checkLegality(p, 1, 3)), ['graph-output']);
  // A second consumer: both ids named.
  const two = dag([op('Input', []), pw([0], 8, 16, 8), dw([1], 16, 8), op('Relu', [1])]);
  const r = checkLegality(two, 1, 2);
  assert.deepEqual(rules(r), ['second-consumer']);
  assert.match(details(r)[0], /layer 1 has 2 consumers \(2, 3\)/);
  // The chain stops at a layer that may not stand between: it is named.
  const relu = dag([op('Input', []), pw([0], 8, 16, 8), op('Relu', [1]), dw([2], 16, 8)]);
  assert.match(details(checkLegality(relu, 1, 3))[0], /^layer 3 is not the sole consumer of layer 1 .*: layer 2 \(Relu\) may not stand between them$/);
  // A chain that branches before reaching the second conv: nothing to name.
  const branch = dag([op('Input', []), pw([0], 8, 16, 8), op('Relu', [1]), op('Sigmoid', [1]), dw([0], 8, 8)]);
  assert.deepEqual(details(checkLegality(branch, 1, 4)), ['layer 4 is not the sole consumer of layer 1 (through at most a zero Pad before a DW)']);
  // A Pad read by a second layer too (two parents of the next layer is fine for the DW, not for the Pad).
  const padTwice = dag([op('Input', []), pw([0], 8, 16, 8), op('Pad', [1, 0], { padding_top: 1 }), dw([2], 16, 9)]);
  assert.deepEqual(rules(checkLegality(padTwice, 1, 3)), ['not-connected']);
});

test('cycles: a path of any length that leaves the chain and comes back into the second conv', () => {
  // 1 -> 2 -> 3 -> 4 -> 5, and 1 -> 5: the DW at 5 reads 1 directly and through three layers.
  const long = dag([op('Input', []), pw([0], 8, 16, 8), op('Sigmoid', [1]), op('Relu', [2]), op('Tanh', [3]), { ...dw([1], 16, 8), parents: [1, 4] }]);
  const r = checkLegality(long, 1, 5);
  assert.ok(rules(r).includes('cycle'), `got ${rules(r)}`);
  assert.ok(details(r).some((x) => /a path leaves the chain 1 -> 5 and comes back into layer 5/.test(x)));
  // Diamond-shaped side branches that end in another layer: no cycle reported.
  const side = dag([op('Input', []), pw([0], 8, 16, 8), dw([1], 16, 8), op('Relu', [1]), op('Sigmoid', [3]), op('Tanh', [3]), op('Add', [4, 5])]);
  assert.deepEqual(rules(checkLegality(side, 1, 2)), ['second-consumer']);
  // Through a folded Pad: the Pad's output also feeds a branch that comes back.
  const viaPad = dag([op('Input', []), pw([0], 8, 16, 8), op('Pad', [1], { padding_top: 1 }), op('Relu', [2]), op('Tanh', [3]), { ...dw([2], 16, 9), parents: [2, 4] }]);
  assert.ok(rules(checkLegality(viaPad, 1, 5)).includes('cycle'));
  // The second conv's other parent on a path that does not start at the first conv: no cycle, legal.
  const elsewhere = dag([op('Input', []), pw([0], 8, 16, 8), op('Relu', [0]), op('Tanh', [2]), { ...dw([1], 16, 8), parents: [1, 3] }]);
  assert.deepEqual(rules(checkLegality(elsewhere, 1, 4)), []);
});

test('epilogueOf: a residual Add of two parents right after the conv; nothing after a model output or a branch', () => {
  const d = dag([op('Input', []), pw([0], 8, 8, 8), op('Add', [1, 0])]);
  assert.deepEqual(epilogueOf(d, 1), [2]);
  assert.deepEqual(epilogueOf(dag([op('Input', []), pw([0], 8, 8, 8), { ...op('x', [1, 0]), name: 'add', op: undefined }]), 1), [2], 'FusePlanner name');
  assert.deepEqual(epilogueOf(dag([op('Input', []), pw([0], 8, 8, 8), op('Mul', [1, 0])]), 1), []);
  assert.deepEqual(epilogueOf(dag([op('Input', []), pw([0], 8, 8, 8), op('Add', [1, 0]), op('Relu', [1])]), 1), []);
  const out = dag([op('Input', []), pw([0], 8, 8, 8), op('Add', [1, 0])]);
  out[1].model_output = true;
  assert.deepEqual(epilogueOf(out, 1), []);
});

test('findCandidates follows at most one Pad layer to the next conv; any other layer ends the search', () => {
  const viaPad = dag([op('Input', []), pw([0], 8, 16, 8), op('Pad', [1], { padding_bottom: 1, padding_right: 1 }), dw([2], 16, 9)]);
  assert.deepEqual(findCandidates(viaPad).map((c) => [c.first, c.second, c.between, c.extraPads, c.epilogue]), [[1, 3, [2], [0, 0, 1, 1], []]]);
  const twoPads = dag([op('Input', []), pw([0], 8, 16, 8), op('Pad', [1], { padding_top: 1 }), op('Pad', [2], { padding_top: 1 }), dw([3], 16, 10)]);
  assert.deepEqual(findCandidates(twoPads), []);
  const branchAfterPad = dag([op('Input', []), pw([0], 8, 16, 8), op('Pad', [1], { padding_top: 1 }), dw([2], 16, 9), op('Relu', [2])]);
  assert.deepEqual(findCandidates(branchAfterPad), []);
  // No Pad between, no extraPads key at all.
  const plain = findCandidates(dag([op('Input', []), pw([0], 8, 16, 8), dw([1], 16, 8)]));
  assert.deepEqual(plain.map((c) => Object.keys(c).sort()), [['between', 'epilogue', 'first', 'kind', 'second']]);
  // s and fc layers start no candidate; a conv whose output branches neither.
  assert.deepEqual(findCandidates(dag([op('Input', []), { ...dw([0], 8, 8), type: 's', weights_shape: [8, 8, 3, 3] }, pw([1], 8, 8, 8)])), []);
  assert.deepEqual(findCandidates(dag([op('Input', []), pw([0], 8, 8, 8), pw([1], 8, 8, 8), pw([1], 8, 8, 8)])), []);
});
