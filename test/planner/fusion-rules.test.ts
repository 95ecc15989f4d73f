// The FCM legality rules of src/planner/fusion-rules.ts, one by one, with a positive and negative case each:
// which activations fold into a conv and with which parameters (rule 1), which Pad is a zero spatial one
// (rule 2's Pad), what may stand between two convolutions (rule 2), conv kinds and which pairs make an FCM (rule 3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newAttrs, type Graph, type Node, type Tensor } from '../../src/graph/ir.js';
import {
  activationParams, convType, epilogueActivationOps, fcmKind, foldedActivation, mayStandBetween, pointwiseFusable, spatialZeroPads, type ChainLink,
} from '../../src/planner/fusion-rules.js';

/** A graph holding the given tensors (constants when `data` is given) and nodes. */
function graphOf(nodes: Node[], tensors: Tensor[] = [], outputs: string[] = []): Graph {
  return { name: 'g', inputs: [], outputs, tensors: new Map(tensors.map((t) => [t.name, t])), nodes, source: 'g.onnx' };
}
const node = (op: string, inputs: string[], outputs: string[], attrs: Record<string, unknown> = {}, domain = ''): Node =>
  ({ name: `${op.toLowerCase()}_n`, op, domain, inputs, outputs, attrs: newAttrs(attrs as never) });
const constant = (name: string, values: number[], dtype: 'float32' | 'int64' = 'float32'): Tensor =>
  ({ name, dtype, shape: [values.length], data: dtype === 'int64' ? BigInt64Array.from(values, (v) => BigInt(v)) : Float32Array.from(values) });
const activationTensor = (name: string): Tensor => ({ name, dtype: 'float32', shape: [1, 4, 4, 4] });

test('rule 1: the epilogue activations are exactly those the FCM and conv kernels apply', () => {
  assert.deepEqual([...epilogueActivationOps].sort(), ['Clip', 'HardSigmoid', 'HardSwish', 'LeakyRelu', 'Relu', 'SiLU', 'Sigmoid', 'Tanh']);
});

test('rule 1: activation parameters in the IR epilogue convention, from attributes or constant inputs', () => {
  const g = graphOf([], [constant('lo', [0]), constant('hi', [6]), constant('pair', [0, 1]), activationTensor('t')]);
  // Normalized Clip: min/max attributes.
  assert.deepEqual(activationParams(g, node('Clip', ['x'], ['y'], { min: -1, max: 2 })), [-1, 2]);
  // An unnormalized Clip: absent bounds are unbounded, constant inputs give the bounds.
  assert.deepEqual(activationParams(g, node('Clip', ['x'], ['y'])), [-Infinity, Infinity]);
  assert.deepEqual(activationParams(g, node('Clip', ['x', 'lo', 'hi'], ['y'])), [0, 6]);
  assert.deepEqual(activationParams(g, node('Clip', ['x', '', 'hi'], ['y'])), [-Infinity, 6]);
  assert.deepEqual(activationParams(g, node('Clip', ['x', 'lo'], ['y'])), [0, Infinity]);
  // A computed bound or a bound of more than one value cannot fold.
  assert.equal(activationParams(g, node('Clip', ['x', 't'], ['y'])), undefined);
  assert.equal(activationParams(g, node('Clip', ['x', '', 'pair'], ['y'])), undefined);
  // ONNX defaults for LeakyRelu and HardSigmoid, or their attributes.
  assert.deepEqual(activationParams(g, node('LeakyRelu', ['x'], ['y'])), [0.01]);
  assert.deepEqual(activationParams(g, node('LeakyRelu', ['x'], ['y'], { alpha: 0.3 })), [0.3]);
  assert.deepEqual(activationParams(g, node('HardSigmoid', ['x'], ['y'])), [0.2, 0.5]);
  assert.deepEqual(activationParams(g, node('HardSigmoid', ['x'], ['y'], { alpha: 0.25, beta: 0.4 })), [0.25, 0.4]);
  for (const op of ['Relu', 'Sigmoid', 'HardSwish', 'SiLU', 'Tanh']) assert.deepEqual(activationParams(g, node(op, ['x'], ['y'])), [], op);
});

test('rule 1: foldedActivation folds a sole-reader activation into a plain conv, and nothing else', () => {
  const tensors = ['x', 'w', 'c', 'y', 'r'].map(activationTensor);
  const g = graphOf([], [...tensors, constant('hi', [6])]);
  const conv = (extra: Partial<Node> = {}): Node => ({ ...node('Conv', ['x', 'w'], ['c']), ...extra });
  const none = new Set<string>();
  assert.deepEqual(foldedActivation(g, conv(), node('Relu', ['c'], ['y']), 1, none), []);
  assert.deepEqual(foldedActivation(g, conv(), node('Clip', ['c', '', 'hi'], ['y']), 1, none), [-Infinity, 6]);
  // The conv: one output, no activation yet, no residual yet ('' is an absent residual).
  assert.deepEqual(foldedActivation(g, conv({ inputs: ['x', 'w', '', ''] }), node('Relu', ['c'], ['y']), 1, none), []);
  assert.equal(foldedActivation(g, conv({ outputs: ['c', 'c2'] }), node('Relu', ['c'], ['y']), 1, none), undefined, 'two outputs');
  assert.equal(foldedActivation(g, conv({ attrs: newAttrs({ activation: 'Relu' }) }), node('Sigmoid', ['c'], ['y']), 1, none), undefined, 'a second activation');
  assert.equal(foldedActivation(g, conv({ inputs: ['x', 'w', '', 'r'] }), node('Relu', ['c'], ['y']), 1, none), undefined, 'after a residual');
  // The conv output: no graph output, one reader.
  assert.equal(foldedActivation(g, conv(), node('Relu', ['c'], ['y']), 1, new Set(['c'])), undefined, 'graph output');
  assert.equal(foldedActivation(g, conv(), node('Relu', ['c'], ['y']), 2, none), undefined, 'two readers');
  // The activation: a known epilogue op of the default domain with one output, reading the conv output as data only.
  assert.equal(foldedActivation(g, conv(), node('Abs', ['c'], ['y']), 1, none), undefined, 'Abs is no epilogue');
  assert.equal(foldedActivation(g, conv(), node('Relu', ['c'], ['y'], {}, 'com.other'), 1, none), undefined, 'other domain');
  assert.equal(foldedActivation(g, conv(), node('Relu', ['c'], ['y', 'y2']), 1, none), undefined, 'two outputs');
  assert.equal(foldedActivation(g, conv(), node('Relu', ['r'], ['y']), 1, none), undefined, 'reads another tensor');
  assert.equal(foldedActivation(g, conv(), node('Relu', ['c', 'c'], ['y']), 1, none), undefined, 'the conv output as a second input too');
  assert.equal(foldedActivation(g, conv(), node('Clip', ['x', 'c'], ['y']), 1, none), undefined, 'the conv output as a bound only');
});

test('rule 2: spatialZeroPads accepts zero constant padding of H and W only, from attributes or inputs', () => {
  const pad = (attrs: Record<string, unknown>, inputs = ['x'], domain = '') => node('Pad', inputs, ['y'], attrs, domain);
  const g = graphOf([], [
    activationTensor('x'), activationTensor('t'),
    constant('pads', [0, 0, 1, 2, 0, 0, 3, 0], 'int64'), constant('padsC', [0, 1, 0, 0, 0, 0, 0, 0], 'int64'),
    constant('zero', [0]), constant('half', [0.5]),
  ]);
  assert.deepEqual(spatialZeroPads(g, pad({ pads: [0, 0, 1, 2, 0, 0, 3, 4], mode: 'constant', value: 0 })), [1, 2, 3, 4]);
  // Absent mode and value are ONNX's defaults: constant, zero.
  assert.deepEqual(spatialZeroPads(g, pad({ pads: [0, 0, 0, 1, 0, 0, 1, 0] })), [0, 1, 1, 0]);
  // Pads and value as constant inputs (opset 11+, before attribute normalization).
  assert.deepEqual(spatialZeroPads(g, pad({}, ['x', 'pads'])), [1, 2, 3, 0]);
  assert.deepEqual(spatialZeroPads(g, pad({}, ['x', 'pads', 'zero'])), [1, 2, 3, 0]);
  assert.deepEqual(spatialZeroPads(g, pad({}, ['x', 'pads', ''])), [1, 2, 3, 0]);
  // Attributes win over an input (normalized nodes keep only the attribute).
  assert.deepEqual(spatialZeroPads(g, pad({ pads: [0, 0, 1, 1, 0, 0, 1, 1] }, ['x', 'padsC'])), [1, 1, 1, 1]);
  const refused: [string, Node][] = [
    ['not a Pad', node('Relu', ['x'], ['y'], { pads: [0, 0, 1, 1, 0, 0, 1, 1] })],
    ['another domain', pad({ pads: [0, 0, 1, 1, 0, 0, 1, 1] }, ['x'], 'com.other')],
    ['reflect', pad({ pads: [0, 0, 1, 1, 0, 0, 1, 1], mode: 'reflect' })],
    ['edge', pad({ pads: [0, 0, 1, 1, 0, 0, 1, 1], mode: 'edge' })],
    ['non-zero value', pad({ pads: [0, 0, 1, 1, 0, 0, 1, 1], value: 0.5 })],
    ['non-zero value input', pad({}, ['x', 'pads', 'half'])],
    ['computed pads', pad({}, ['x', 't'])],
    ['computed value', pad({ pads: [0, 0, 1, 1, 0, 0, 1, 1] }, ['x', '', 't'])],
    ['no pads', pad({})],
    ['rank 3', pad({ pads: [0, 1, 1, 0, 1, 1] })],
    ['rank 3, no padding', pad({ pads: [0, 0, 0, 0, 0, 0] })],
    ['rank 5, no padding', pad({ pads: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0] })],
    ['batch begin', pad({ pads: [1, 0, 1, 1, 0, 0, 1, 1] })],
    ['channel begin', pad({ pads: [0, 1, 1, 1, 0, 0, 1, 1] })],
    ['batch end', pad({ pads: [0, 0, 1, 1, 1, 0, 1, 1] })],
    ['channel end', pad({ pads: [0, 0, 1, 1, 0, 1, 1, 1] })],
    ['channels from an input', pad({}, ['x', 'padsC'])],
    ['negative top', pad({ pads: [0, 0, -1, 0, 0, 0, 0, 0] })],
    ['negative left', pad({ pads: [0, 0, 0, -1, 0, 0, 0, 0] })],
    ['negative bottom', pad({ pads: [0, 0, 0, 0, 0, 0, -1, 0] })],
    ['negative right', pad({ pads: [0, 0, 0, 0, 0, 0, 0, -1] })],
  ];
  for (const [why, n] of refused) assert.equal(spatialZeroPads(g, n), undefined, why);
});

test('rule 2: only one zero spatial Pad may stand between two convolutions, and only before a DW', () => {
  const zero: ChainLink = { kind: 'pad', pads: [0, 0, 1, 1] };
  assert.equal(mayStandBetween([], zero, 'dw'), true);
  assert.equal(mayStandBetween([], zero, 'pw'), false);
  assert.equal(mayStandBetween([], zero, 's'), false);
  assert.equal(mayStandBetween([zero], zero, 'dw'), false);
  assert.equal(mayStandBetween([], { kind: 'pad', pads: undefined }, 'dw'), false);
  assert.equal(mayStandBetween([], { kind: 'other' }, 'dw'), false);
});

test('rule 3: conv kinds and the pairs that make an FCM', () => {
  // Depthwise: one filter per channel, whatever the kernel (a 1x1 conv of one channel is a DW first).
  assert.equal(convType(8, 8, 8, 3, 3), 'dw');
  assert.equal(convType(8, 8, 8, 1, 1), 'dw');
  assert.equal(convType(1, 1, 1, 1, 1), 'dw');
  // A channel multiplier (group = channels, more filters) is no DW.
  assert.equal(convType(8, 8, 16, 3, 3), 's');
  assert.equal(convType(8, 8, 16, 1, 1), 's');
  // Pointwise: 1x1 and one group.
  assert.equal(convType(1, 8, 16, 1, 1), 'pw');
  assert.equal(convType(2, 8, 16, 1, 1), 's');
  assert.equal(convType(1, 8, 16, 1, 3), 's');
  assert.equal(convType(1, 8, 16, 3, 1), 's');
  assert.equal(convType(1, 8, 16, 3, 3), 's');

  assert.equal(pointwiseFusable([1, 1], [0, 0, 0, 0]), true);
  assert.equal(pointwiseFusable([1, 2], [0, 0, 0, 0]), false);
  assert.equal(pointwiseFusable([2, 1], [0, 0, 0, 0]), false);
  assert.equal(pointwiseFusable([1, 1], [0, 0, 0, 1]), false);
  assert.equal(pointwiseFusable([1, 1], [1, 0, 0, 0]), false);

  assert.equal(fcmKind('pw', 'dw'), 'pwdw');
  assert.equal(fcmKind('dw', 'pw'), 'dwpw');
  assert.equal(fcmKind('pw', 'pw'), 'pwpw');
  for (const [a, b] of [['dw', 'dw'], ['s', 'dw'], ['pw', 's'], ['s', 'pw'], ['fc', 'pw'], ['pw', 'fc'], [undefined, 'pw'], ['pw', undefined]]) {
    assert.equal(fcmKind(a, b), undefined, `${a} -> ${b}`);
  }
});
