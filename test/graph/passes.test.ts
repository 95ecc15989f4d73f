import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldConstants } from '../../src/graph/passes/fold-constants.js';
import { normalizeAttrs } from '../../src/graph/passes/normalize-attrs.js';
import { removeIdentity } from '../../src/graph/passes/remove-identity.js';
import { foldBatchNorm } from '../../src/graph/passes/fold-batchnorm.js';
import { recognizeActivations } from '../../src/graph/passes/recognize-activations.js';
import { prepareGraph } from '../../src/graph/prepare.js';
import type { Graph, Tensor } from '../../src/graph/ir.js';
import { graph, f32, i64, scalarF, seeded, shapeOf, summary } from './helpers.js';

const zeros = (shape: number[]) => f32(shape, () => 0);

test('PyTorch view(x.size(0), -1) chain folds into a constant Reshape shape', () => {
  // Shape -> Gather(0) -> Unsqueeze -> Concat([n, -1]) -> Reshape, as torch.onnx exports x.view(x.size(0), -1).
  const g = graph({
    inputs: { x: [2, 3, 4, 4] },
    consts: { zero: { shape: [], data: BigInt64Array.of(0n), dtype: 'int64' }, minus1: i64([-1]), ax0: i64([0]) },
    nodes: [
      { op: 'Shape', in: ['x'], out: ['s'] },
      { op: 'Gather', in: ['s', 'zero'], out: ['n'], attrs: { axis: 0 } },
      { op: 'Unsqueeze', in: ['n', 'ax0'], out: ['n1'] },
      { op: 'Concat', in: ['n1', 'minus1'], out: ['shape'], attrs: { axis: 0 } },
      { op: 'Reshape', in: ['x', 'shape'], out: ['y'], name: 'reshape' },
    ],
    outputs: ['y'],
  });
  const folded = foldConstants(g);
  assert.deepEqual(summary(folded), ['Reshape(x,shape)->y']);
  const shape = folded.tensors.get('shape')!;
  assert.ok(shape.data instanceof BigInt64Array);
  assert.deepEqual([...shape.data as BigInt64Array], [2n, -1n]);
  assert.deepEqual(shapeOf(folded, 'y'), [2, 48]);
  const norm = normalizeAttrs(folded);
  assert.deepEqual(summary(norm), ['Reshape(x)->y']);
  assert.deepEqual(norm.nodes[0].attrs.shape, [2, -1]);
});

test('folding evaluates Cast, Slice, Squeeze, arithmetic, and stops at run-time values', () => {
  const g = graph({
    inputs: { x: [1, 6, 10, 12] },
    consts: { st: i64([2]), en: i64([4]), two: i64([2], [1]), axes0: i64([0]) },
    nodes: [
      { op: 'Shape', in: ['x'], out: ['s'] },
      { op: 'Slice', in: ['s', 'st', 'en'], out: ['hw'] }, // [10, 12]
      { op: 'Div', in: ['hw', 'two'], out: ['half'] }, // [5, 6]
      { op: 'Cast', in: ['half'], out: ['halff'], attrs: { to: 'float32' } },
      { op: 'Slice', in: ['half', 'axes0', 'two'], out: ['h0'] }, // [5, 6][0:2] = [5, 6]
      { op: 'Relu', in: ['x'], out: ['r'] },
      { op: 'Add', in: ['r', 'halff'], out: ['y'] }, // broadcast [1,6,10,12] + [2] fails? no: used only for dtype
    ],
    outputs: ['h0', 'halff'],
  });
  // Drop the last node: its broadcast would not be valid; we only check folding here.
  g.nodes.pop();
  const f = foldConstants(g);
  assert.deepEqual(summary(f), ['Relu(x)->r']);
  assert.deepEqual([...f.tensors.get('half')!.data as BigInt64Array], [5n, 6n]);
  assert.deepEqual([...f.tensors.get('halff')!.data as Float32Array], [5, 6]);
  assert.equal(f.tensors.get('halff')!.dtype, 'float32');
  assert.deepEqual([...f.tensors.get('h0')!.data as BigInt64Array], [5n, 6n]);

  // A Shape of an opaque op's output cannot fold: the chain stays.
  const h = graph({
    inputs: { x: [1, 3, 8, 8] },
    nodes: [{ op: 'Resize', in: ['x'], out: ['r'] }, { op: 'Shape', in: ['r'], out: ['s'] }, { op: 'Reshape', in: ['x', 's'], out: ['y'] }],
    outputs: ['y'],
  });
  assert.equal(foldConstants(h).nodes.length, 3);
  assert.equal(normalizeAttrs(foldConstants(h)).nodes[2].inputs.length, 2, 'dynamic operand stays an input');
});

test('normalization moves constant operands into attributes', () => {
  const g = graph({
    inputs: { x: [1, 4, 8, 8] },
    consts: {
      lo: scalarF(0), hi: scalarF(6), pads: i64([0, 0, 1, 1, 0, 0, 1, 1]), pv: scalarF(0.5), st: i64([1]), en: i64([4]), ax: i64([1]),
      rm: i64([2, 3]), sp: i64([1, 2]), ua: i64([0]),
    },
    nodes: [
      { op: 'Clip', in: ['x', 'lo', 'hi'], out: ['c'] },
      { op: 'Clip', in: ['c', '', 'hi'], out: ['c2'] },
      { op: 'Pad', in: ['c2', 'pads', 'pv'], out: ['p'] },
      { op: 'Slice', in: ['p', 'st', 'en', 'ax'], out: ['s'] },
      { op: 'ReduceMean', in: ['s', 'rm'], out: ['m'], attrs: { keepdims: 0 } },
      { op: 'Split', in: ['m', 'sp'], out: ['a', 'b'], attrs: { axis: 1 } },
      { op: 'Unsqueeze', in: ['a', 'ua'], out: ['u'] },
    ],
    outputs: ['u', 'b'],
  });
  const n = normalizeAttrs(g);
  assert.ok(n.nodes.every((node) => node.inputs.length === 1));
  const attrs = n.nodes.map((node) => ({ ...node.attrs }));
  assert.deepEqual(attrs[0], { min: 0, max: 6 });
  assert.deepEqual(attrs[1], { min: -Infinity, max: 6 });
  assert.deepEqual(attrs[2], { pads: [0, 0, 1, 1, 0, 0, 1, 1], value: 0.5, mode: 'constant' });
  assert.deepEqual(attrs[3], { starts: [1], ends: [4], axes: [1], steps: [1] });
  assert.deepEqual(attrs[4], { axes: [2, 3], keepdims: 0 });
  assert.deepEqual(attrs[5], { axis: 1, split: [1, 2] });
  assert.deepEqual(attrs[6], { axes: [0] });
  const p = prepareGraph(g);
  assert.deepEqual(shapeOf(p, 'u'), [1, 1, 1]);
  assert.deepEqual(shapeOf(p, 'b'), [1, 2]);
  assert.ok(!p.tensors.has('pads'), 'operand constants nothing reads are dropped');
});

test('Identity/Dropout removal keeps graph output names', () => {
  const g = graph({
    inputs: { x: [1, 2] },
    nodes: [
      { op: 'Relu', in: ['x'], out: ['a'] },
      { op: 'Identity', in: ['a'], out: ['b'] },
      { op: 'Dropout', in: ['b'], out: ['c'] },
      { op: 'Abs', in: ['c'], out: ['d'] },
      { op: 'Identity', in: ['d'], out: ['out'] },
      { op: 'Sigmoid', in: ['d'], out: ['e'] },
      { op: 'Identity', in: ['x'], out: ['passthrough'] },
    ],
    outputs: ['out', 'e', 'passthrough'],
  });
  assert.deepEqual(summary(removeIdentity(g)), ['Relu(x)->a', 'Abs(a)->out', 'Sigmoid(out)->e', 'Identity(x)->passthrough']);
  // A Dropout whose mask is read stays.
  const h = graph({ inputs: { x: [1] }, nodes: [{ op: 'Dropout', in: ['x'], out: ['y', 'mask'] }, { op: 'Cast', in: ['mask'], out: ['m'], attrs: { to: 'float32' } }], outputs: ['y', 'm'] });
  assert.equal(removeIdentity(h).nodes.length, 2);
});

// ---- BatchNormalization folding ----

/** Direct NCHW convolution (reference for the folding test). */
function conv2d(x: Float32Array, xs: number[], w: Float32Array, ws: number[], b: Float32Array | null, stride: number, pad: number, group: number) {
  const [N, C, H, W] = xs, [F, Cg, K] = ws;
  const OH = Math.floor((H + 2 * pad - K) / stride) + 1, OW = Math.floor((W + 2 * pad - K) / stride) + 1;
  const out = new Float64Array(N * F * OH * OW);
  const Fg = F / group;
  for (let n = 0; n < N; n++) for (let f = 0; f < F; f++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
    let s = b ? b[f] : 0;
    const g = Math.floor(f / Fg);
    for (let c = 0; c < Cg; c++) for (let kh = 0; kh < K; kh++) for (let kw = 0; kw < K; kw++) {
      const ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
      if (ih < 0 || iw < 0 || ih >= H || iw >= W) continue;
      s += x[((n * C + g * Cg + c) * H + ih) * W + iw] * w[((f * Cg + c) * K + kh) * K + kw];
    }
    out[((n * F + f) * OH + oh) * OW + ow] = s;
  }
  return { out, shape: [N, F, OH, OW] };
}

function bnGraph(withBias: boolean, group: number): Graph {
  const r = seeded(7);
  const C = 4, F = group === 1 ? 6 : C;
  const consts: Record<string, ReturnType<typeof f32>> = {
    w: f32([F, C / group, 3, 3], () => r()),
    scale: f32([F], () => 1 + 0.5 * r()), beta: f32([F], () => r()), mean: f32([F], () => 0.3 * r()), var: f32([F], () => 1.2 + r()),
  };
  if (withBias) consts.b = f32([F], () => r());
  return graph({
    inputs: { x: [1, C, 7, 7] },
    consts,
    nodes: [
      { op: 'Conv', in: withBias ? ['x', 'w', 'b'] : ['x', 'w'], out: ['c'], attrs: { strides: [2, 2], pads: [1, 1, 1, 1], group }, name: 'conv' },
      { op: 'BatchNormalization', in: ['c', 'scale', 'beta', 'mean', 'var'], out: ['y'], attrs: { epsilon: 1e-3 }, name: 'bn' },
    ],
    outputs: ['y'],
  });
}

const data = (g: Graph, name: string) => (g.tensors.get(name) as Tensor).data as Float32Array;

for (const [withBias, group] of [[false, 1], [true, 1], [true, 4]] as const) {
  test(`BN folds into the Conv and computes the same (bias ${withBias}, group ${group})`, () => {
    const g = bnGraph(withBias, group);
    const f = foldBatchNorm(g);
    assert.equal(f.nodes.length, 1);
    const conv = f.nodes[0];
    assert.deepEqual(conv.outputs, ['y']);
    assert.equal(conv.inputs.length, 3, 'a bias exists after folding');
    const r = seeded(11);
    const x = Float32Array.from({ length: 4 * 49 }, () => r());
    const xs = [1, 4, 7, 7];
    const ws = g.tensors.get('w')!.shape;
    // Reference: the unfolded graph, conv then BN in double.
    const ref = conv2d(x, xs, data(g, 'w'), ws, withBias ? data(g, 'b') : null, 2, 1, group);
    const [sc, be, me, va] = ['scale', 'beta', 'mean', 'var'].map((n) => data(g, n));
    const plane = ref.shape[2] * ref.shape[3];
    const expected = ref.out.map((v, i) => {
      const c = Math.floor(i / plane) % ref.shape[1];
      return sc[c] * (v - me[c]) / Math.sqrt(va[c] + 1e-3) + be[c];
    });
    const got = conv2d(x, xs, data(f, conv.inputs[1]), ws, data(f, conv.inputs[2]), 2, 1, group).out;
    // Folded weights are rounded to float32 once: relative error ~1e-7 per term, 36 terms of size ~1.
    for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - expected[i]) <= 1e-5 * (1 + Math.abs(expected[i])), `element ${i}: ${got[i]} vs ${expected[i]}`);
    assert.equal(g.nodes.length, 2, 'input graph untouched');
    assert.equal(g.nodes[0].inputs[1], 'w');
  });
}

test('BN is not folded when the conv output has a second consumer or is a graph output', () => {
  const g = bnGraph(true, 1);
  g.nodes.push({ name: 'other', op: 'Relu', domain: '', inputs: ['c'], outputs: ['z'], attrs: Object.create(null) });
  g.outputs.push('z');
  assert.deepEqual(summary(foldBatchNorm(g)), summary(g));
  const h = bnGraph(true, 1);
  h.outputs.push('c');
  assert.equal(foldBatchNorm(h).nodes.length, 2);
});

// ---- activation recognition ----

const actGraph = (nodes: Parameters<typeof graph>[0]['nodes'], outputs = ['y']) => graph({
  inputs: { x: [1, 4, 5, 5] },
  consts: { three: scalarF(3), six: scalarF(6), sixth: scalarF(1 / 6), lo: scalarF(0), hi: scalarF(6) },
  nodes,
  outputs,
});

test('HardSwish spellings are recognized', () => {
  const spellings: Array<Parameters<typeof graph>[0]['nodes']> = [
    // PyTorch/PaddleOCR: Add -> Clip -> Mul -> Div, Clip bounds as inputs (normalized first)
    [{ op: 'Add', in: ['x', 'three'], out: ['a'] }, { op: 'Clip', in: ['a', 'lo', 'hi'], out: ['c'] },
      { op: 'Mul', in: ['x', 'c'], out: ['m'] }, { op: 'Div', in: ['m', 'six'], out: ['y'], name: 'last' }],
    // Add -> Clip -> Div -> Mul
    [{ op: 'Add', in: ['three', 'x'], out: ['a'] }, { op: 'Clip', in: ['a'], out: ['c'], attrs: { min: 0, max: 6 } },
      { op: 'Div', in: ['c', 'six'], out: ['d'] }, { op: 'Mul', in: ['d', 'x'], out: ['y'], name: 'last' }],
    // Mul by 1/6 instead of Div by 6
    [{ op: 'Add', in: ['x', 'three'], out: ['a'] }, { op: 'Clip', in: ['a'], out: ['c'], attrs: { min: 0, max: 6 } },
      { op: 'Mul', in: ['c', 'x'], out: ['m'] }, { op: 'Mul', in: ['sixth', 'm'], out: ['y'], name: 'last' }],
    // x * HardSigmoid(x, 1/6, 0.5)
    [{ op: 'HardSigmoid', in: ['x'], out: ['h'], attrs: { alpha: 1 / 6, beta: 0.5 } }, { op: 'Mul', in: ['x', 'h'], out: ['y'], name: 'last' }],
  ];
  for (const nodes of spellings) {
    const g = recognizeActivations(normalizeAttrs(actGraph(nodes)));
    assert.deepEqual(summary(g), ['HardSwish(x)->y'], JSON.stringify(nodes.map((n) => n.op)));
    assert.equal(g.nodes[0].name, 'last');
  }
});

test('HardSigmoid and SiLU spellings are recognized; Paddle HardSigmoid(0.2) stays', () => {
  let g = recognizeActivations(actGraph([{ op: 'Add', in: ['x', 'three'], out: ['a'] }, { op: 'Clip', in: ['a'], out: ['c'], attrs: { min: 0, max: 6 } },
    { op: 'Div', in: ['c', 'six'], out: ['y'] }]));
  assert.deepEqual(summary(g), ['HardSigmoid(x)->y']);
  assert.ok(Math.abs((g.nodes[0].attrs.alpha as number) - 1 / 6) < 1e-12);
  assert.equal(g.nodes[0].attrs.beta, 0.5);
  g = recognizeActivations(actGraph([{ op: 'Sigmoid', in: ['x'], out: ['s'] }, { op: 'Mul', in: ['s', 'x'], out: ['y'] }]));
  assert.deepEqual(summary(g), ['SiLU(x)->y']);
  const paddle = actGraph([{ op: 'HardSigmoid', in: ['x'], out: ['h'], attrs: { alpha: 0.2, beta: 0.5 } }, { op: 'Mul', in: ['x', 'h'], out: ['y'] }]);
  assert.deepEqual(summary(recognizeActivations(paddle)), summary(paddle));
});

test('activation recognition needs single-consumer intermediates and the same x', () => {
  // The Clip output is also a graph output.
  const shared = actGraph([{ op: 'Add', in: ['x', 'three'], out: ['a'] }, { op: 'Clip', in: ['a'], out: ['c'], attrs: { min: 0, max: 6 } },
    { op: 'Mul', in: ['x', 'c'], out: ['m'] }, { op: 'Div', in: ['m', 'six'], out: ['y'] }], ['y', 'c']);
  assert.deepEqual(summary(recognizeActivations(shared)), summary(shared));
  // The Sigmoid output has a second reader.
  const silu = actGraph([{ op: 'Sigmoid', in: ['x'], out: ['s'] }, { op: 'Mul', in: ['s', 'x'], out: ['y'] }, { op: 'Relu', in: ['s'], out: ['z'] }], ['y', 'z']);
  assert.deepEqual(summary(recognizeActivations(silu)), summary(silu));
  // Multiplying by a different tensor than the Add read is not HardSwish.
  const g2 = graph({
    inputs: { x: [1, 4], w: [1, 4] },
    consts: { three: scalarF(3), six: scalarF(6) },
    nodes: [{ op: 'Add', in: ['x', 'three'], out: ['a'] }, { op: 'Clip', in: ['a'], out: ['c'], attrs: { min: 0, max: 6 } },
      { op: 'Mul', in: ['w', 'c'], out: ['m'] }, { op: 'Div', in: ['m', 'six'], out: ['y'] }],
    outputs: ['y'],
  });
  assert.deepEqual(summary(recognizeActivations(g2)), summary(g2));
  // Clip(x + 3, 0, 5) is something else.
  const off = actGraph([{ op: 'Add', in: ['x', 'three'], out: ['a'] }, { op: 'Clip', in: ['a'], out: ['c'], attrs: { min: 0, max: 5 } },
    { op: 'Div', in: ['c', 'six'], out: ['y'] }]);
  assert.deepEqual(summary(recognizeActivations(off)), summary(off));
});

test('prepareGraph runs every pass and infers all shapes', () => {
  const r = seeded(3);
  const g = graph({
    inputs: { x: [1, 3, 8, 8] },
    consts: {
      w: f32([8, 3, 3, 3], () => r()), s: f32([8], () => 1), b: f32([8], () => 0), m: f32([8], () => 0), v: f32([8], () => 1),
      three: scalarF(3), six: scalarF(6), lo: scalarF(0), hi: scalarF(6), zero: { shape: [], data: BigInt64Array.of(0n), dtype: 'int64' },
      neg: i64([-1]), ax: i64([0]),
    },
    nodes: [
      { op: 'Conv', in: ['x', 'w'], out: ['c'], attrs: { pads: [1, 1, 1, 1], strides: [2, 2] } },
      { op: 'BatchNormalization', in: ['c', 's', 'b', 'm', 'v'], out: ['bn'] },
      { op: 'Add', in: ['bn', 'three'], out: ['a'] }, { op: 'Clip', in: ['a', 'lo', 'hi'], out: ['cl'] },
      { op: 'Mul', in: ['bn', 'cl'], out: ['mu'] }, { op: 'Div', in: ['mu', 'six'], out: ['hs'] },
      { op: 'Identity', in: ['hs'], out: ['id'] },
      { op: 'Shape', in: ['id'], out: ['sh'] }, { op: 'Gather', in: ['sh', 'zero'], out: ['n'] },
      { op: 'Unsqueeze', in: ['n', 'ax'], out: ['n1'] }, { op: 'Concat', in: ['n1', 'neg'], out: ['tgt'], attrs: { axis: 0 } },
      { op: 'Reshape', in: ['id', 'tgt'], out: ['y'] },
    ],
    outputs: ['y'],
  });
  const p = prepareGraph(g);
  assert.deepEqual(p.nodes.map((n) => n.op), ['Conv', 'HardSwish', 'Reshape']);
  assert.deepEqual(shapeOf(p, 'y'), [1, 128]);
  assert.deepEqual(p.nodes[2].attrs.shape, [1, -1]);
});
