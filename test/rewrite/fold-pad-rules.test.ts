// foldPads (src/rewrite/fold-pads.ts), rule by rule: which readers take a Pad as padding (a plain ONNX Conv, the
// depthwise first layer of a FusedDwPw; explicit padding only), the kernel's extent as the limit on each side
// (kernel from the attribute or the weights, dilations), the reader taking the padded tensor as its data input
// only, and matching quantization. Graph before and after, and the function kept (float-interp.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { foldPads } from '../../src/rewrite/fold-pads.js';
import { fcmDomain, type Graph, type Node, type Quantization } from '../../src/graph/ir.js';
import { runFloat } from './float-interp.js';
import { randomInputs } from './random-graphs.js';

interface Spec { pads?: [number, number, number, number]; kernel?: [number, number]; dilations?: [number, number]; convPads?: number[] }

/** x [1, 4, 8, 8] -> Pad (zero, spatial [t, l, b, r]) -> depthwise Conv (kernel, dilations, own padding). */
function padConv(spec: Spec = {}) {
  const [t, l, bo, r] = spec.pads ?? [1, 1, 1, 1];
  const [kh, kw] = spec.kernel ?? [3, 3];
  const [dh, dw] = spec.dilations ?? [1, 1];
  const own = spec.convPads ?? [0, 0, 0, 0];
  const b = new GraphBuilder('fold', 4);
  const x = b.input('x', [1, 4, 8, 8]);
  const p = b.node('Pad', [x], [1, 4, 8 + t + bo, 8 + l + r], { pads: [0, 0, t, l, 0, 0, bo, r], mode: 'constant', value: 0 });
  const w = b.random('w', [4, 1, kh, kw], 0.5);
  const oh = 8 + t + bo + own[0] + own[2] - (kh - 1) * dh, ow = 8 + l + r + own[1] + own[3] - (kw - 1) * dw;
  const y = b.node('Conv', [p, w], [1, 4, oh, ow], { kernel: [kh, kw], strides: [1, 1], pads: own, dilations: [dh, dw], group: 4 });
  const g = b.build([y]);
  return { g, x, p, y, pad: g.nodes[0], conv: g.nodes[1] };
}

const ops = (g: Graph) => g.nodes.map((n) => n.op);

function sameFunction(before: Graph, after: Graph) {
  const feeds = randomInputs(before, 13);
  const [want, got] = [runFloat(before, feeds), runFloat(after, feeds)];
  want.forEach((w, k) => assert.ok(w.length === got[k].length && w.every((v, i) => v === got[k][i]), `output ${k} differs`));
}

/** Folds: one Conv reading x with the summed padding, same function. */
function folds(t: ReturnType<typeof padConv>, pads: number[], why: string) {
  const f = foldPads(t.g);
  assert.deepEqual(ops(f), ['Conv'], why);
  assert.deepEqual([f.nodes[0].inputs[0], f.nodes[0].attrs.pads], [t.x, pads], why);
  assert.ok(!f.tensors.has(t.p), why);
  sameFunction(t.g, f);
}
const kept = (g: Graph, why: string) => assert.deepEqual(foldPads(g).nodes.map((n) => [n.op, ...n.inputs]), g.nodes.map((n) => [n.op, ...n.inputs]), why);

test('each side of the summed padding stays below the kernel\'s extent on its axis', () => {
  // 3x1 kernel: extent 3 on H, 1 on W (no padding at all on W).
  folds(padConv({ pads: [2, 0, 0, 0], kernel: [3, 1] }), [2, 0, 0, 0], 'top 2 < 3');
  folds(padConv({ pads: [0, 0, 2, 0], kernel: [3, 1] }), [0, 0, 2, 0], 'bottom 2 < 3');
  kept(padConv({ pads: [3, 0, 0, 0], kernel: [3, 1] }).g, 'top 3');
  kept(padConv({ pads: [0, 0, 3, 0], kernel: [3, 1] }).g, 'bottom 3');
  kept(padConv({ pads: [0, 1, 0, 0], kernel: [3, 1] }).g, 'left 1 on a 1-wide kernel');
  kept(padConv({ pads: [0, 0, 0, 1], kernel: [3, 1] }).g, 'right 1 on a 1-wide kernel');
  // 1x3 kernel: the same across.
  folds(padConv({ pads: [0, 2, 0, 2], kernel: [1, 3] }), [0, 2, 0, 2], 'left and right 2 < 3');
  kept(padConv({ pads: [0, 3, 0, 0], kernel: [1, 3] }).g, 'left 3');
  kept(padConv({ pads: [0, 0, 0, 3], kernel: [1, 3] }).g, 'right 3');
  kept(padConv({ pads: [1, 0, 0, 0], kernel: [1, 3] }).g, 'top 1 on a 1-high kernel');
  kept(padConv({ pads: [0, 0, 1, 0], kernel: [1, 3] }).g, 'bottom 1 on a 1-high kernel');
  // The conv's own padding counts.
  folds(padConv({ pads: [1, 0, 0, 0], convPads: [1, 0, 0, 0] }), [2, 0, 0, 0], 'top 1 + 1');
  kept(padConv({ pads: [2, 0, 0, 0], convPads: [1, 0, 0, 0] }).g, 'top 2 + 1');
});

test('dilation widens the extent: (k - 1) * d + 1 on each axis', () => {
  // 3x3 dilated by [2, 3]: extents 5 and 7.
  folds(padConv({ pads: [4, 6, 4, 6], dilations: [2, 3] }), [4, 6, 4, 6], 'just below the extents');
  kept(padConv({ pads: [5, 0, 0, 0], dilations: [2, 3] }).g, 'top 5');
  kept(padConv({ pads: [0, 7, 0, 0], dilations: [2, 3] }).g, 'left 7');
  kept(padConv({ pads: [0, 0, 5, 0], dilations: [2, 3] }).g, 'bottom 5');
  kept(padConv({ pads: [0, 0, 0, 7], dilations: [2, 3] }).g, 'right 7');
});

test('the kernel from the weights when there is no kernel attribute; default dilations and padding when absent', () => {
  const t = padConv({ pads: [2, 2, 2, 2] });
  for (const k of ['kernel', 'dilations', 'pads']) delete t.conv.attrs[k];
  folds(t, [2, 2, 2, 2], 'from the weights');
  const u = padConv({ pads: [3, 0, 0, 0] });
  delete u.conv.attrs.kernel;
  kept(u.g, 'top 3 on 3x3 weights');
  // No kernel attribute and no 4-D weights: no extent known.
  const v = padConv();
  delete v.conv.attrs.kernel;
  v.g.tensors.set(v.conv.inputs[1], { ...v.g.tensors.get(v.conv.inputs[1])!, shape: [4, 9] });
  kept(v.g, '2-D weights');
  const w = padConv();
  delete w.conv.attrs.kernel;
  w.g.tensors.delete(w.conv.inputs[1]);
  kept(w.g, 'no weight tensor');
  // A kernel or dilations attribute that is no pair.
  const k1 = padConv();
  k1.conv.attrs.kernel = [3];
  kept(k1.g, 'kernel [3]');
  const d1 = padConv();
  d1.conv.attrs.dilations = [1];
  kept(d1.g, 'dilations [1]');
});

test('readers: a plain ONNX Conv with explicit padding, or a FusedDwPw; nothing else', () => {
  const other = padConv();
  other.conv.domain = 'com.other';
  kept(other.g, 'a Conv of another domain');
  const fcmConv = padConv();
  fcmConv.conv.domain = fcmDomain;
  kept(fcmConv.g, 'a Conv in the FCM domain');
  for (const auto of ['SAME_UPPER', 'SAME_LOWER', 'VALID']) {
    const t = padConv();
    t.conv.attrs.auto_pad = auto;
    kept(t.g, auto);
  }
  const notset = padConv();
  notset.conv.attrs.auto_pad = 'NOTSET';
  assert.deepEqual(ops(foldPads(notset.g)), ['Conv'], 'NOTSET is explicit padding');
  // FCM readers: only the DW-PW one has a depthwise first layer to pad.
  for (const [op, domain, folded] of [['FusedDwPw', fcmDomain, true], ['FusedPwDw', fcmDomain, false], ['FusedPwPw', fcmDomain, false], ['FusedDwPw', '', false]] as const) {
    const t = padConv();
    const c: Node = t.conv;
    c.op = op;
    c.domain = domain;
    const f = foldPads(t.g);
    assert.equal(f.nodes.length, folded ? 1 : 2, `${domain}.${op}`);
  }
  // A reader that is no convolution at all.
  const b = new GraphBuilder('relu', 5);
  const x = b.input('x', [1, 4, 4, 4]);
  const p = b.node('Pad', [x], [1, 4, 6, 6], { pads: [0, 0, 1, 1, 0, 0, 1, 1], mode: 'constant', value: 0 });
  const g = b.build([b.relu(p)]);
  kept(g, 'a Relu reads the Pad');
});

test('the reader must take the padded tensor as its data input only, and the Pad have one output', () => {
  const asResidual = padConv();
  asResidual.conv.inputs.push('', asResidual.p);
  kept(asResidual.g, 'padded tensor as residual too');
  const asWeight = padConv();
  asWeight.conv.inputs[1] = asWeight.p;
  kept(asWeight.g, 'padded tensor as weight too');
  const notData = padConv();
  notData.conv.inputs = [notData.x, notData.conv.inputs[1], '', notData.p];
  kept(notData.g, 'padded tensor only as residual');
  const twoOutputs = padConv();
  twoOutputs.pad.outputs.push('extra');
  twoOutputs.g.tensors.set('extra', { name: 'extra', dtype: 'float32', shape: [1, 4, 10, 10] });
  kept(twoOutputs.g, 'a Pad with two outputs');
  const noInput = padConv();
  noInput.pad.inputs[0] = '';
  kept(noInput.g, 'a Pad without data input');
});

test('quantization: the Pad\'s input and output must share it, per tensor or per channel', () => {
  const q = (scale: number[], zeroPoint: number[]): Quantization => ({ scale, zeroPoint });
  const cases: [string, Quantization | undefined, Quantization | undefined, boolean][] = [
    ['both float', undefined, undefined, true],
    ['same per tensor', q([0.1], [3]), q([0.1], [3]), true],
    ['same per channel', q([0.1, 0.2], [3, 4]), q([0.1, 0.2], [3, 4]), true],
    ['input only', q([0.1], [3]), undefined, false],
    ['output only', undefined, q([0.1], [3]), false],
    ['other scale', q([0.1], [3]), q([0.2], [3]), false],
    ['other zero point', q([0.1], [3]), q([0.1], [4]), false],
    ['second scale differs', q([0.1, 0.2], [3, 4]), q([0.1, 0.3], [3, 4]), false],
    ['first scale differs', q([0.1, 0.2], [3, 4]), q([0.5, 0.2], [3, 4]), false],
    ['second zero point differs', q([0.1, 0.2], [3, 4]), q([0.1, 0.2], [3, 5]), false],
    ['first zero point differs', q([0.1, 0.2], [3, 4]), q([0.1, 0.2], [2, 4]), false],
    ['more scales', q([0.1], [3]), q([0.1, 0.1], [3]), false],
    ['more zero points', q([0.1], [3]), q([0.1], [3, 3]), false],
  ];
  for (const [why, qx, qp, folded] of cases) {
    const t = padConv();
    if (qx) t.g.tensors.set(t.x, { ...t.g.tensors.get(t.x)!, dtype: 'int8', quant: qx });
    if (qp) t.g.tensors.set(t.p, { ...t.g.tensors.get(t.p)!, dtype: 'int8', quant: qp });
    assert.equal(foldPads(t.g).nodes.length, folded ? 1 : 2, why);
  }
  // A Pad input with no tensor entry has no quantization to compare with a quantized output.
  const t = padConv();
  t.g.tensors.delete(t.x);
  t.g.tensors.set(t.p, { ...t.g.tensors.get(t.p)!, dtype: 'int8', quant: q([0.1], [0]) });
  assert.equal(foldPads(t.g).nodes.length, 2);
});

test('nothing to fold leaves the graph as it was; a fold leaves the input graph untouched', () => {
  const t = padConv({ pads: [3, 3, 3, 3] });
  kept(t.g, 'over the extent');
  const u = padConv();
  const before = JSON.stringify(u.g.nodes);
  assert.equal(foldPads(u.g).nodes.length, 1);
  assert.equal(JSON.stringify(u.g.nodes), before);
  assert.ok(u.g.tensors.has(u.p));
});
