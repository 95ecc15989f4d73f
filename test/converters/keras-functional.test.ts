// Keras functional configs against float64 references computed in NHWC here: imported, exported to ONNX and run by
// onnxruntime CPU (no GPU needed). Keras 3 (inbound nodes as `__keras_tensor__` args) with a nested Sequential
// model used as a layer, Concatenate over channels, Multiply, Add and ReLU(max_value 6); Keras 2 with UpSampling2D
// and with Conv2DTranspose (also written as .keras and .h5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importKeras } from '../../converters/keras/import.js';
import { prepareGraph } from '../../src/graph/prepare.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { runOrt } from '../../src/cli/check.js';
import { rng } from '../../fixtures/tflite-builder.js';
import type { FcmError } from '../../src/errors.js';
import { loadModel } from '../../src/graph/load.js';
import { writeKeras3, writeKerasH5 } from '../../fixtures/keras-builder.js';

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

// A residual dense block with an upsampling head, as in ESRGAN-style super-resolution models (Keras 2 inbound
// nodes): Conv2D 3x3 'same' + Activation relu, Concatenate with the block's input, Conv2D 1x1, Add, then
// UpSampling2D nearest (size 2x3) and bilinear (size 2x2: half-pixel centres, clamped at the border, as Keras's
// tf.image.resize) as two outputs. Imported, exported to ONNX and run by onnxruntime CPU against float64 here.
test('Keras 2 functional model with UpSampling2D (nearest, bilinear) matches a float64 NHWC reference', async () => {
  const rand = rng(47);
  const H = 3, W = 4, C = 2, F = 2;
  const w3 = Array.from({ length: 9 * C * F }, () => rand() - 0.5), b3 = Array.from({ length: F }, () => rand() - 0.5); // [3, 3, C, F]
  const w1 = Array.from({ length: (C + F) * C }, () => rand() - 0.5), b1 = Array.from({ length: C }, () => rand() - 0.5); // [1, 1, C+F, C]
  const inb = (...names: string[]) => [names.map((n) => [n, 0, 0, {}])];
  const conv = (name: string, filters: number, k: number, padding: string, from: string) => ({
    class_name: 'Conv2D', name, config: { name, filters, kernel_size: [k, k], strides: [1, 1], padding, activation: 'linear', use_bias: true, data_format: 'channels_last', dilation_rate: [1, 1] }, inbound_nodes: inb(from),
  });
  const layers = [
    { class_name: 'InputLayer', name: 'LR', config: { name: 'LR', batch_input_shape: [null, null, null, C], dtype: 'float32' }, inbound_nodes: [] },
    conv('F_1', F, 3, 'same', 'LR'),
    { class_name: 'Activation', name: 'F_1_relu', config: { name: 'F_1_relu', activation: 'relu' }, inbound_nodes: inb('F_1') },
    { class_name: 'Concatenate', name: 'cat', config: { name: 'cat', axis: -1 }, inbound_nodes: inb('LR', 'F_1_relu') },
    conv('LFF', C, 1, 'valid', 'cat'),
    { class_name: 'Add', name: 'LRL', config: { name: 'LRL' }, inbound_nodes: inb('LFF', 'LR') },
    { class_name: 'UpSampling2D', name: 'up_n', config: { name: 'up_n', size: [2, 3], data_format: 'channels_last', interpolation: 'nearest' }, inbound_nodes: inb('LRL') },
    { class_name: 'UpSampling2D', name: 'up_b', config: { name: 'up_b', size: [2, 2], data_format: 'channels_last', interpolation: 'bilinear' }, inbound_nodes: inb('LRL') },
  ];
  const doc = {
    format: 'layers-model',
    modelTopology: { keras_version: '2.10.0', model_config: { class_name: 'Functional', config: { name: 'rdb', layers, input_layers: [['LR', 0, 0]], output_layers: [['up_n', 0, 0], ['up_b', 0, 0]] } } },
    weightsManifest: [{ paths: ['w.bin'], weights: [
      { name: 'F_1/kernel', shape: [3, 3, C, F], dtype: 'float32' }, { name: 'F_1/bias', shape: [F], dtype: 'float32' },
      { name: 'LFF/kernel', shape: [1, 1, C + F, C], dtype: 'float32' }, { name: 'LFF/bias', shape: [C], dtype: 'float32' },
    ] }],
  };
  const shard = new Uint8Array(Float32Array.from([...w3, ...b3, ...w1, ...b1]).buffer);
  const bytes = new TextEncoder().encode(JSON.stringify(doc));
  // The input's spatial dims are unknown in the file: given in NCHW, as --input-shape takes them.
  const g = prepareGraph(await importKeras(bytes, { loadShard: async () => shard, inputShapes: { LR: [1, C, H, W] } }));

  const x = Array.from({ length: H * W * C }, () => rand() * 2 - 1);
  const at = (h: number, w: number, c: number) => (h < 0 || w < 0 || h >= H || w >= W ? 0 : x[(h * W + w) * C + c]);
  const lrl = new Array<number>(H * W * C).fill(0);
  for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) {
    const cat = [at(h, w, 0), at(h, w, 1)];
    for (let f = 0; f < F; f++) {
      let s = b3[f];
      for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let c = 0; c < C; c++) s += at(h + i - 1, w + j - 1, c) * w3[((i * 3 + j) * C + c) * F + f];
      cat.push(Math.max(0, s));
    }
    for (let o = 0; o < C; o++) lrl[(h * W + w) * C + o] = b1[o] + cat.reduce((s, v, k) => s + v * w1[k * C + o], 0) + at(h, w, o);
  }
  const v = (h: number, w: number, c: number) => lrl[(h * W + w) * C + c];
  // Nearest: output pixel (i, j) repeats (floor(i / 2), floor(j / 3)).
  const refN = new Float64Array(C * 2 * H * 3 * W);
  for (let c = 0; c < C; c++) for (let i = 0; i < 2 * H; i++) for (let j = 0; j < 3 * W; j++) refN[(c * 2 * H + i) * 3 * W + j] = v(Math.floor(i / 2), Math.floor(j / 3), c);
  // Bilinear with half-pixel centres: source coordinate (i + 0.5) / 2 - 0.5, clamped to [0, len - 1].
  const src = (i: number, len: number) => Math.min(Math.max((i + 0.5) / 2 - 0.5, 0), len - 1);
  const refB = new Float64Array(C * 2 * H * 2 * W);
  for (let c = 0; c < C; c++) for (let i = 0; i < 2 * H; i++) for (let j = 0; j < 2 * W; j++) {
    const sy = src(i, H), sx = src(j, W);
    const y0 = Math.floor(sy), x0 = Math.floor(sx), y1 = Math.min(y0 + 1, H - 1), x1 = Math.min(x0 + 1, W - 1), fy = sy - y0, fx = sx - x0;
    refB[(c * 2 * H + i) * 2 * W + j] = (1 - fy) * ((1 - fx) * v(y0, x0, c) + fx * v(y0, x1, c)) + fy * ((1 - fx) * v(y1, x0, c) + fx * v(y1, x1, c));
  }
  assert.deepEqual(g.outputs.map((o) => g.tensors.get(o)!.shape), [[1, C, 2 * H, 3 * W], [1, C, 2 * H, 2 * W]]);
  const xNchw = new Float32Array(C * H * W);
  for (let q = 0; q < H * W; q++) for (let c = 0; c < C; c++) xNchw[c * H * W + q] = x[q * C + c];
  const out = await runOrt(exportOnnx(g), { [g.inputs[0]]: { data: xNchw, shape: [1, C, H, W] } }, g.outputs, 'upsampling');
  for (const [k, ref] of [refN, refB].entries()) {
    const y = out.get(g.outputs[k])!;
    assert.equal(y.length, ref.length);
    // float32 against float64 over ~40 terms of magnitude < 4: 1e-5 is well above rounding, far below a wrong pixel.
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(y[i] - ref[i]) < 1e-5, `output ${k} [${i}]: ${y[i]} vs ${ref[i]}`);
  }

  // An interpolation Keras has but fcm-opt does not: exit 3 naming the layer.
  const bicubic = JSON.parse(new TextDecoder().decode(bytes)) as typeof doc;
  (bicubic.modelTopology.model_config.config.layers[7].config as { interpolation: string }).interpolation = 'bicubic';
  await assert.rejects(importKeras(new TextEncoder().encode(JSON.stringify(bicubic)), { loadShard: async () => shard, inputShapes: { LR: [1, C, H, W] } }),
    (e: FcmError) => e.exitCode === 3 && /layer 'up_b' \(UpSampling2D\): interpolation 'bicubic'/.test(e.message));
});

// Conv2DTranspose as Keras 2 writes it: 'same' (3x3, stride 2, relu), 'valid' with a kernel shorter than the stride
// (2x2, stride 3: the output runs past the last tap), and 'same' with output_padding (4x4, stride 2). The reference
// is the adjoint of TensorFlow's conv2d on the output, in float64 NHWC: input pixel i, tap k lands on i * s + k -
// pad, where pad is that conv2d's 'same' pad before (0 for 'valid').
test('Keras Conv2DTranspose (same, valid, output_padding) matches a float64 NHWC reference', async () => {
  const rand = rng(59);
  const H = 3, W = 4, C = 2;
  const cases = [
    { name: 't_same', filters: 3, k: 3, s: 2, padding: 'same', outputPadding: null, activation: 'relu', out: [6, 8] },
    { name: 't_valid', filters: 2, k: 2, s: 3, padding: 'valid', outputPadding: null, activation: 'linear', out: [9, 12] },
    { name: 't_op', filters: 2, k: 4, s: 2, padding: 'same', outputPadding: [1, 1], activation: 'linear', out: [5, 7] },
  ];
  const kernels = cases.map((t) => Array.from({ length: t.k * t.k * t.filters * C }, () => rand() - 0.5)); // [K, K, F, C]
  const biases = cases.map((t) => Array.from({ length: t.filters }, () => rand() - 0.5));
  const layers = [
    { class_name: 'InputLayer', name: 'x', config: { name: 'x', batch_input_shape: [null, H, W, C], dtype: 'float32' }, inbound_nodes: [] },
    ...cases.map((t) => ({
      class_name: 'Conv2DTranspose', name: t.name, inbound_nodes: [[['x', 0, 0, {}]]],
      config: { name: t.name, filters: t.filters, kernel_size: [t.k, t.k], strides: [t.s, t.s], padding: t.padding, output_padding: t.outputPadding, data_format: 'channels_last', dilation_rate: [1, 1], activation: t.activation, use_bias: true },
    })),
  ];
  const doc = {
    format: 'layers-model',
    modelTopology: { keras_version: '2.10.0', model_config: { class_name: 'Functional', config: { name: 'up', layers, input_layers: [['x', 0, 0]], output_layers: cases.map((t) => [t.name, 0, 0]) } } },
    weightsManifest: [{ paths: ['w.bin'], weights: cases.flatMap((t) => [
      { name: `${t.name}/kernel`, shape: [t.k, t.k, t.filters, C], dtype: 'float32' }, { name: `${t.name}/bias`, shape: [t.filters], dtype: 'float32' },
    ]) }],
  };
  const shard = new Uint8Array(Float32Array.from(cases.flatMap((_, i) => [...kernels[i], ...biases[i]])).buffer);
  const bytes = new TextEncoder().encode(JSON.stringify(doc));
  const g = prepareGraph(await importKeras(bytes, { loadShard: async () => shard }));
  assert.deepEqual(g.outputs.map((o) => g.tensors.get(o)!.shape), cases.map((t) => [1, t.filters, ...t.out]));

  const x = Array.from({ length: H * W * C }, () => rand() * 2 - 1);
  const xNchw = new Float32Array(C * H * W);
  for (let q = 0; q < H * W; q++) for (let c = 0; c < C; c++) xNchw[c * H * W + q] = x[q * C + c];
  const out = await runOrt(exportOnnx(g), { [g.inputs[0]]: { data: xNchw, shape: [1, C, H, W] } }, g.outputs, 'conv-transpose');
  for (const [n, t] of cases.entries()) {
    const [OH, OW] = t.out, F = t.filters, kr = kernels[n];
    const padBefore = (inLen: number, outLen: number) => (t.padding === 'same' ? Math.floor(Math.max((inLen - 1) * t.s + t.k - outLen, 0) / 2) : 0);
    const ph = padBefore(H, OH), pw = padBefore(W, OW);
    const ref = new Float64Array(F * OH * OW);
    for (let f = 0; f < F; f++) ref.fill(biases[n][f], f * OH * OW, (f + 1) * OH * OW);
    for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) for (let a = 0; a < t.k; a++) for (let b = 0; b < t.k; b++) {
      const oy = i * t.s + a - ph, ox = j * t.s + b - pw;
      if (oy < 0 || ox < 0 || oy >= OH || ox >= OW) continue;
      for (let f = 0; f < F; f++) for (let c = 0; c < C; c++) ref[(f * OH + oy) * OW + ox] += x[(i * W + j) * C + c] * kr[((a * t.k + b) * F + f) * C + c];
    }
    if (t.activation === 'relu') ref.forEach((v, i) => { ref[i] = Math.max(0, v); });
    const y = out.get(g.outputs[n])!;
    assert.equal(y.length, ref.length);
    // float32 against float64 on at most 8 terms of magnitude < 1: 1e-5 is well above rounding, far below a misplaced tap.
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(y[i] - ref[i]) < 1e-5, `${t.name} [${i}]: ${y[i]} vs ${ref[i]}`);
  }

  // The same model as a Keras 3 .keras and a Keras 2 .h5 file: the same weights reach the same layers.
  const dir = mkdtempSync(join(tmpdir(), 'fcm-keras-convt-'));
  try {
    const built = { modelJson: new TextDecoder().decode(bytes), shard };
    const k3 = join(dir, 'model.keras'), h5 = join(dir, 'model.h5');
    await writeKeras3(k3, built);
    await writeKerasH5(h5, built);
    for (const path of [k3, h5]) {
      const gf = await loadModel(path);
      const o = await runOrt(exportOnnx(gf), { [gf.inputs[0]]: { data: xNchw, shape: [1, C, H, W] } }, gf.outputs, path);
      gf.outputs.forEach((name, n) => assert.deepEqual(Array.from(o.get(name)!), Array.from(out.get(g.outputs[n])!), `${path}: ${cases[n].name}`));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // Dilation: exit 3 naming the layer.
  const dilated = JSON.parse(new TextDecoder().decode(bytes)) as typeof doc;
  (dilated.modelTopology.model_config.config.layers[1].config as { dilation_rate: number[] }).dilation_rate = [2, 2];
  await assert.rejects(importKeras(new TextEncoder().encode(JSON.stringify(dilated)), { loadShard: async () => shard }),
    (e: FcmError) => e.exitCode === 3 && /layer 't_same' \(Conv2DTranspose\): dilation_rate/.test(e.message));
});
