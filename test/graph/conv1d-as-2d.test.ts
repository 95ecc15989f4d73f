// 1-D convolutions (STFT front ends of audio models) become 2-D ones with a 1-high kernel between an Unsqueeze and a
// Squeeze: the graph before and after, and the values (onnxruntime on the exported graph against a plain 1-D loop).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareGraph } from '../../src/graph/prepare.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { runOrt } from '../../src/check/check.js';
import { mulberry32 } from '../../fixtures/rng.js';
import { graph, f32 } from './helpers.js';

/** x [2, 4, 11] -> Conv 1-D (F 6, group 2, K 3, stride 2, dilation 2, pads [1, 2]) with bias -> Relu -> y. */
function conv1d() {
  const r = mulberry32(41);
  return graph({
    inputs: { x: [2, 4, 11] },
    consts: { w: f32([6, 2, 3], () => r() - 0.5), b: f32([6], () => r() - 0.5) },
    nodes: [
      { op: 'Conv', in: ['x', 'w', 'b'], out: ['c'], attrs: { group: 2, strides: [2], dilations: [2], pads: [1, 2] }, name: 'conv' },
      { op: 'Relu', in: ['c'], out: ['y'], name: 'relu' },
    ],
    outputs: ['y'],
  });
}

test('a 1-D Conv becomes Unsqueeze -> 2-D Conv (kernel [1, K]) -> Squeeze; a 2-D Conv is left alone', () => {
  const g = prepareGraph(conv1d());
  assert.deepEqual(g.nodes.map((n) => n.op), ['Unsqueeze', 'Conv', 'Squeeze', 'Relu']);
  const [un, conv, sq] = g.nodes;
  assert.deepEqual(un.attrs.axes, [2]);
  assert.deepEqual(sq.attrs.axes, [2]);
  assert.deepEqual([conv.attrs.kernel, conv.attrs.strides, conv.attrs.dilations, conv.attrs.pads, conv.attrs.group], [[1, 3], [1, 2], [1, 2], [0, 1, 0, 2], 2]);
  assert.deepEqual(g.tensors.get(conv.inputs[0])!.shape, [2, 4, 1, 11]);
  assert.deepEqual(g.tensors.get(conv.inputs[1])!.shape, [6, 2, 1, 3]);
  assert.deepEqual(g.tensors.get(conv.outputs[0])!.shape, [2, 6, 1, 5]);
  assert.equal(sq.outputs[0], 'c');
  assert.deepEqual(g.tensors.get('y')!.shape, [2, 6, 5]); // floor((11 + 3 - 2 * 2 - 1) / 2) + 1
  // Already 2-D: unchanged.
  const again = prepareGraph(g);
  assert.deepEqual(again.nodes.map((n) => n.op), ['Unsqueeze', 'Conv', 'Squeeze', 'Relu']);
});

test('the 2-D form computes the 1-D convolution', async () => {
  const g0 = conv1d();
  const g = prepareGraph(g0);
  const r = mulberry32(42);
  const x = Float32Array.from({ length: 2 * 4 * 11 }, () => r() * 2 - 1);
  const out = await runOrt(exportOnnx(g), { x: { data: x, shape: [2, 4, 11] } }, ['y'], 'conv1d');
  const y = out.get('y')!;
  const w = g0.tensors.get('w')!.data as Float32Array, b = g0.tensors.get('b')!.data as Float32Array;
  const [N, C, L, F, K, s, d, p0, group] = [2, 4, 11, 6, 3, 2, 2, 1, 2];
  const Lo = 5, cg = C / group, fg = F / group;
  for (let n = 0; n < N; n++) for (let f = 0; f < F; f++) for (let o = 0; o < Lo; o++) {
    let acc = b[f];
    const gi = Math.floor(f / fg);
    for (let c = 0; c < cg; c++) for (let k = 0; k < K; k++) {
      const i = o * s - p0 + k * d;
      if (i >= 0 && i < L) acc += w[(f * cg + c) * K + k] * x[(n * C + gi * cg + c) * L + i];
    }
    // float32 sums of six products of values under 1 in another order: a few ulp of 1.
    assert.ok(Math.abs(y[(n * F + f) * Lo + o] - Math.max(0, acc)) <= 1e-6, `y[${n}, ${f}, ${o}]`);
  }
});
