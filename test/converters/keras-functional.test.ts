// Keras 3 functional configs (inbound nodes as `__keras_tensor__` args) with a nested Sequential model used as a
// layer, Concatenate over channels, Multiply, Add and ReLU(max_value 6): imported, exported to ONNX and run by
// onnxruntime CPU, against a float64 reference computed in NHWC here. No GPU needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { importKeras } from '../../converters/keras/import.js';
import { prepareGraph } from '../../src/graph/prepare.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { runOrt } from '../../src/cli/check.js';
import { rng } from '../../fixtures/tflite-builder.js';

const kt = (layer: string) => ({ class_name: '__keras_tensor__', config: { shape: null, dtype: 'float32', keras_history: [layer, 0, 0] } });
const call = (...layers: string[]) => [{ args: layers.length === 1 ? [kt(layers[0])] : [layers.map(kt)], kwargs: {} }];

test('Keras 3 functional model with a nested Sequential matches a float64 NHWC reference', async () => {
  const rand = rng(33);
  const H = 3, W = 3, C = 2, A = 3, B = 2;
  const wa = Array.from({ length: C * A }, () => rand() - 0.5), ba = Array.from({ length: A }, () => rand() - 0.5);
  const wb = Array.from({ length: C * B }, () => rand() - 0.5);
  const conv1x1 = (name: string, filters: number, bias: boolean, activation = 'linear') => ({
    class_name: 'Conv2D', name, config: { name, filters, kernel_size: [1, 1], strides: [1, 1], padding: 'valid', activation, use_bias: bias, data_format: 'channels_last' },
  });
  const nested = {
    class_name: 'Sequential', name: 'branch',
    config: { name: 'branch', layers: [
      { class_name: 'InputLayer', config: { name: 'branch_in', batch_shape: [null, H, W, C] } },
      conv1x1('conv_b', B, false, 'relu'),
    ] },
    inbound_nodes: call('x'),
  };
  const layers = [
    { class_name: 'InputLayer', name: 'x', config: { name: 'x', batch_shape: [null, H, W, C], dtype: 'float32' }, inbound_nodes: [] },
    { ...conv1x1('conv_a', A, true), inbound_nodes: call('x') },
    nested,
    { class_name: 'Concatenate', name: 'cat', config: { name: 'cat', axis: -1 }, inbound_nodes: call('conv_a', 'branch') },
    { class_name: 'Multiply', name: 'sq', config: { name: 'sq' }, inbound_nodes: call('cat', 'cat') },
    { class_name: 'Add', name: 'sum', config: { name: 'sum' }, inbound_nodes: call('sq', 'cat') },
    { class_name: 'ReLU', name: 'relu6', config: { name: 'relu6', max_value: 6, negative_slope: 0, threshold: 0 }, inbound_nodes: call('sum') },
    { class_name: 'GlobalAveragePooling2D', name: 'gap', config: { name: 'gap', keepdims: false, data_format: 'channels_last' }, inbound_nodes: call('relu6') },
  ];
  const doc = {
    format: 'layers-model',
    modelTopology: { keras_version: '3.3.3', model_config: { class_name: 'Functional', config: { name: 'f', layers, input_layers: [['x', 0, 0]], output_layers: [['gap', 0, 0]] } } },
    weightsManifest: [{ paths: ['a.bin', 'b.bin'], weights: [
      { name: 'conv_a/kernel', shape: [1, 1, C, A], dtype: 'float32' },
      { name: 'conv_a/bias', shape: [A], dtype: 'float32' },
      { name: 'branch/conv_b/kernel', shape: [1, 1, C, B], dtype: 'float32' },
    ] }],
  };
  const all = new Uint8Array(Float32Array.from([...wa, ...ba, ...wb]).buffer);
  // Two shards, split inside a weight: the manifest's weights run across shard boundaries.
  const shards: Record<string, Uint8Array> = { 'a.bin': all.slice(0, 10), 'b.bin': all.slice(10) };
  const g = prepareGraph(await importKeras(new TextEncoder().encode(JSON.stringify(doc)), { loadShard: async (p) => shards[p] }));

  const x = Array.from({ length: H * W * C }, () => rand() * 4 - 2);
  const gap = new Array<number>(A + B).fill(0);
  for (let q = 0; q < H * W; q++) {
    const cat: number[] = [];
    for (let a = 0; a < A; a++) cat.push(ba[a] + x[q * C] * wa[a] + x[q * C + 1] * wa[A + a]);
    for (let b = 0; b < B; b++) cat.push(Math.max(0, x[q * C] * wb[b] + x[q * C + 1] * wb[B + b]));
    cat.forEach((v, k) => { gap[k] += Math.min(6, Math.max(0, v * v + v)) / (H * W); });
  }
  const xNchw = new Float32Array(C * H * W);
  for (let q = 0; q < H * W; q++) for (let c = 0; c < C; c++) xNchw[c * H * W + q] = x[q * C + c];
  const out = await runOrt(exportOnnx(g), { [g.inputs[0]]: { data: xNchw, shape: [1, C, H, W] } }, g.outputs, 'functional');
  const y = out.get(g.outputs[0])!;
  assert.equal(y.length, A + B);
  // float32 against float64 on a few terms of magnitude < 10: 1e-5 is well above rounding.
  for (let k = 0; k < A + B; k++) assert.ok(Math.abs(y[k] - gap[k]) < 1e-5, `channel ${k}: ${y[k]} vs ${gap[k]}`);
});
