// foldChannelScales (src/rewrite/channel-scale.ts), rule by rule: Mul(x, s) -> Conv folds only into a plain
// pointwise ONNX Conv (1x1 weights, stride 1, no padding, no dilation, one group, no scale yet: the one kernel that
// takes a scale), reading the product as its data input only, when s is [N, C, 1, 1] and x the conv's input shape,
// all float32. Graph before and after, and the function kept (float-interp.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { foldChannelScales } from '../../src/rewrite/channel-scale.js';
import type { Graph, Node } from '../../src/graph/ir.js';
import { runFloat } from './float-interp.js';
import { randomInputs } from './random-graphs.js';

const ops = (g: Graph) => g.nodes.map((n) => n.op);
/** The nodes as they read and write tensors: what a fold changes. */
const wiring = (g: Graph) => g.nodes.map((n) => [n.op, ...n.inputs, '->', ...n.outputs]);
const unchanged = (g: Graph, why: string) => assert.deepEqual(wiring(foldChannelScales(g)), wiring(g), why);

/** input x [1, 4, 5, 5] -> Mul(x, s) with s an input [1, 4, 1, 1] -> Conv 1x1 (8 filters); `edit` may change it. */
function scaled(edit: (b: GraphBuilder, t: { x: string; s: string; m: string; conv: Node; mul: Node }) => void = () => {}) {
  const b = new GraphBuilder('scale', 3);
  const x = b.input('x', [1, 4, 5, 5]);
  const s = b.input('s', [1, 4, 1, 1]);
  const m = b.mul(x, s);
  const y = b.conv(m, { filters: 8, kernel: 1, bias: true });
  const [mul, conv] = b.nodes;
  edit(b, { x, s, m, conv, mul });
  return { g: b.build([y]), x, s, m, y };
}

function sameFunction(before: Graph, after: Graph) {
  const feeds = randomInputs(before, 9);
  const [want, got] = [runFloat(before, feeds), runFloat(after, feeds)];
  want.forEach((w, k) => assert.ok(w.every((v, i) => Math.abs(v - got[k][i]) <= 1e-12 * Math.max(1, Math.abs(v))), `output ${k} differs`));
}

test('the scale folds into a plain pointwise conv: attributes absent or at their defaults, default or ai.onnx domain', () => {
  const variants: [string, (b: GraphBuilder, t: { conv: Node; mul: Node }) => void][] = [
    ['as built', () => {}],
    ['no attributes', (_, t) => { for (const k of ['strides', 'pads', 'dilations', 'group', 'kernel']) delete t.conv.attrs[k]; }],
    ['ai.onnx domains', (_, t) => { t.conv.domain = 'ai.onnx'; t.mul.domain = 'ai.onnx'; }],
  ];
  for (const [why, edit] of variants) {
    const t = scaled(edit);
    const f = foldChannelScales(t.g);
    assert.deepEqual(ops(f), ['Conv'], why);
    assert.deepEqual(f.nodes[0].inputs, [t.x, t.g.nodes[1].inputs[1], t.g.nodes[1].inputs[2], '', t.s], why);
    assert.ok(!f.tensors.has(t.m), why);
    sameFunction(t.g, f);
  }
  // A conv without bias gets empty bias and residual slots before the scale.
  const nb = scaled((_, t) => { t.conv.inputs.length = 2; });
  assert.deepEqual(foldChannelScales(nb.g).nodes[0].inputs, [nb.x, nb.g.nodes[1].inputs[1], '', '', nb.s]);
  // A residual already there stays.
  const res = scaled((_, t) => { t.conv.inputs.push('r'); });
  res.g.inputs.push('r');
  res.g.tensors.set('r', { name: 'r', dtype: 'float32', shape: [1, 8, 5, 5] });
  const fr = foldChannelScales(res.g);
  assert.deepEqual(fr.nodes[0].inputs.slice(3), ['r', res.s]);
  sameFunction(res.g, fr);
});

test('no fold into a conv the scale kernel does not cover, or that is not a plain ONNX Conv', () => {
  const kept: [string, (b: GraphBuilder, t: { x: string; s: string; conv: Node; mul: Node }) => void][] = [
    ['another domain', (_, t) => { t.conv.domain = 'com.other'; }],
    ['not a Conv', (_, t) => { t.conv.op = 'ConvInteger'; }],
    ['a scale already', (_, t) => { t.conv.inputs.push('', t.s); }],
    ['3x1 weights', (b, t) => { b.tensors.get(t.conv.inputs[1])!.shape = [8, 4, 3, 1]; }],
    ['1x3 weights', (b, t) => { b.tensors.get(t.conv.inputs[1])!.shape = [8, 4, 1, 3]; }],
    ['2-D weights', (b, t) => { b.tensors.get(t.conv.inputs[1])!.shape = [8, 4]; }],
    ['3-D conv weights', (b, t) => { b.tensors.get(t.conv.inputs[1])!.shape = [8, 4, 1, 1, 1]; }],
    ['no weight tensor', (b, t) => { b.tensors.delete(t.conv.inputs[1]); }],
    ['stride 2 on W', (_, t) => { t.conv.attrs.strides = [1, 2]; }],
    ['stride 2 on H', (_, t) => { t.conv.attrs.strides = [2, 1]; }],
    ['one stride', (_, t) => { t.conv.attrs.strides = [1]; }],
    ['padding', (_, t) => { t.conv.attrs.pads = [0, 0, 0, 1]; }],
    ['top padding', (_, t) => { t.conv.attrs.pads = [1, 0, 0, 0]; }],
    ['dilation', (_, t) => { t.conv.attrs.dilations = [2, 2]; }],
    ['two groups', (_, t) => { t.conv.attrs.group = 2; }],
  ];
  for (const [why, edit] of kept) {
    unchanged(scaled(edit).g, why);
  }
});

test('no fold unless the Mul is a plain two-input ONNX Mul whose product only that conv reads, as its data input', () => {
  const kept: [string, (b: GraphBuilder, t: { x: string; s: string; m: string; conv: Node; mul: Node }) => void, string[]?][] = [
    ['another domain', (_, t) => { t.mul.domain = 'com.other'; }],
    ['not a Mul', (_, t) => { t.mul.op = 'Div'; }],
    ['three inputs', (_, t) => { t.mul.inputs.push(t.s); }],
    ['the product as the conv\'s bias too', (_, t) => { t.conv.inputs[2] = t.m; }],
    ['the product as the conv\'s weight', (_, t) => { t.conv.inputs = [t.x, t.m]; }],
  ];
  for (const [why, edit] of kept) {
    unchanged(scaled(edit).g, why);
  }
  // A second reader, or the product returned.
  const two = scaled();
  two.g.nodes.push({ name: 'side', op: 'Relu', domain: '', inputs: [two.m], outputs: ['side_out'], attrs: Object.create(null) });
  two.g.tensors.set('side_out', { name: 'side_out', dtype: 'float32', shape: [1, 4, 5, 5] });
  unchanged(two.g, 'a second reader');
  const out = scaled();
  out.g.outputs.push(out.m);
  unchanged(out.g, 'a graph output');
  // A product nothing reads (and no graph output either).
  const dead = scaled();
  dead.g.nodes.push({ ...dead.g.nodes[0], name: 'unread', outputs: ['unread_out'] });
  dead.g.tensors.set('unread_out', { ...dead.g.tensors.get(dead.m)!, name: 'unread_out' });
  assert.deepEqual(wiring(foldChannelScales(dead.g)), [['Conv', dead.x, ...dead.g.nodes[1].inputs.slice(1), '', dead.s, '->', dead.y], wiring(dead.g)[2]]);
});

test('no fold unless s is [N, C, 1, 1] and x the conv\'s input shape, all float32; either operand may be the scale', () => {
  const swapped = scaled((_, t) => { t.mul.inputs.reverse(); });
  const f = foldChannelScales(swapped.g);
  assert.deepEqual(ops(f), ['Conv']);
  assert.deepEqual([f.nodes[0].inputs[0], f.nodes[0].inputs[4]], [swapped.x, swapped.s]);
  sameFunction(swapped.g, f);
  const kept: [string, (g: Graph, t: { x: string; s: string; m: string }) => void][] = [
    ['s per row', (g, t) => g.tensors.set(t.s, { ...g.tensors.get(t.s)!, shape: [1, 4, 5, 1] })],
    ['s per column', (g, t) => g.tensors.set(t.s, { ...g.tensors.get(t.s)!, shape: [1, 4, 1, 5] })],
    ['s one value', (g, t) => g.tensors.set(t.s, { ...g.tensors.get(t.s)!, shape: [1, 1, 1, 1] })],
    ['s of rank 3', (g, t) => g.tensors.set(t.s, { ...g.tensors.get(t.s)!, shape: [4, 1, 1] })],
    ['s of rank 3, a prefix of [N, C, 1, 1]', (g, t) => g.tensors.set(t.s, { ...g.tensors.get(t.s)!, shape: [1, 4, 1] })],
    ['s of rank 5', (g, t) => g.tensors.set(t.s, { ...g.tensors.get(t.s)!, shape: [1, 4, 1, 1, 1] })],
    ['s without a tensor', (g, t) => g.tensors.delete(t.s)],
    ['x without a tensor', (g, t) => g.tensors.delete(t.x)],
    ['x broadcast', (g, t) => g.tensors.set(t.x, { ...g.tensors.get(t.x)!, shape: [1, 4, 1, 5] })],
    ['product of rank 3', (g, t) => g.tensors.set(t.m, { ...g.tensors.get(t.m)!, shape: [4, 5, 5] })],
    ['product without a tensor', (g, t) => g.tensors.delete(t.m)],
    ['float16 s', (g, t) => g.tensors.set(t.s, { ...g.tensors.get(t.s)!, dtype: 'float16' })],
    ['float16 x', (g, t) => g.tensors.set(t.x, { ...g.tensors.get(t.x)!, dtype: 'float16' })],
    ['float16 product', (g, t) => g.tensors.set(t.m, { ...g.tensors.get(t.m)!, dtype: 'float16' })],
  ];
  for (const [why, edit] of kept) {
    const t = scaled();
    edit(t.g, t);
    unchanged(t.g, why);
  }
});

test('a fold leaves the input graph untouched', () => {
  const u = scaled();
  const before = JSON.stringify(u.g.nodes);
  foldChannelScales(u.g);
  assert.equal(JSON.stringify(u.g.nodes), before);
  assert.ok(u.g.tensors.has(u.m));
});
