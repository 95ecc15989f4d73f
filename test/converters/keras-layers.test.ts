// Keras layers against a float64 reference computed in Keras's own layout (NHWC) here: a Sequential model with
// Rescaling, Normalization (per channel), SeparableConv2D (swish), ZeroPadding2D, MaxPooling2D and AveragePooling2D
// with TensorFlow's 'same' padding (odd pixel at the end; averages over the pixels inside the image), Reshape of a
// 2x2x4 map (NHWC order), Flatten, Dropout and a Dense whose kernel is stored as float16. Catches layout slips that
// the MobileNet fixtures, whose pools are global, cannot.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { importKeras } from '../../converters/keras/import.js';
import { prepareGraph } from '../../src/graph/prepare.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { rng } from '../../fixtures/tflite-builder.js';

after(releaseGpu);

/** float16 bits of a value that float16 holds exactly (the fixture's weights are multiples of 1/64 in [-1, 1]). */
function toHalf(v: number): number {
  if (v === 0) return 0;
  const sign = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  const e = Math.floor(Math.log2(a));
  const m = Math.round((a / 2 ** e - 1) * 1024);
  return sign | ((e + 15) << 10) | m;
}

test('Sequential Keras model matches a float64 NHWC reference', async () => {
  const rand = rng(21);
  const H = 6, W = 6, C = 2, F = 4, U = 3;
  const dw = Array.from({ length: 3 * 3 * C }, () => rand() - 0.5); // [3, 3, C, 1]
  const pw = Array.from({ length: C * F }, () => rand() - 0.5); // [1, 1, C, F]
  const pb = Array.from({ length: F }, () => rand() - 0.5);
  const dk = Array.from({ length: 16 * U }, () => Math.round((rand() - 0.5) * 128) / 64); // [16, U], exact in fp16
  const layers = [
    { class_name: 'Rescaling', config: { name: 'rescale', batch_input_shape: [null, H, W, C], scale: 0.5, offset: 0.1 } },
    { class_name: 'Normalization', config: { name: 'norm', axis: -1, mean: [0.2, -0.1], variance: [0.25, 4] } },
    { class_name: 'SeparableConv2D', config: { name: 'sep', filters: F, kernel_size: [3, 3], strides: [1, 1], padding: 'same', depth_multiplier: 1, activation: 'swish', use_bias: true } },
    { class_name: 'ZeroPadding2D', config: { name: 'zpad', padding: [[0, 1], [1, 0]] } },
    { class_name: 'MaxPooling2D', config: { name: 'maxpool', pool_size: [2, 2], strides: [2, 2], padding: 'same' } },
    { class_name: 'AveragePooling2D', config: { name: 'avgpool', pool_size: [3, 3], strides: [2, 2], padding: 'same' } },
    { class_name: 'Reshape', config: { name: 'reshape', target_shape: [4, 4] } },
    { class_name: 'Flatten', config: { name: 'flatten' } },
    { class_name: 'Dropout', config: { name: 'drop', rate: 0.5 } },
    { class_name: 'Dense', config: { name: 'dense', units: U, activation: 'linear', use_bias: false } },
  ];
  const f32 = (a: number[]) => new Uint8Array(Float32Array.from(a).buffer);
  const half = new Uint8Array(Uint16Array.from(dk.map(toHalf)).buffer);
  const shard = new Uint8Array([...f32(dw), ...f32(pw), ...f32(pb), ...half]);
  const doc = {
    format: 'layers-model',
    modelTopology: { keras_version: '2.13.1', model_config: { class_name: 'Sequential', config: { name: 'seq', layers } } },
    weightsManifest: [{ paths: ['w.bin'], weights: [
      { name: 'sep/depthwise_kernel', shape: [3, 3, C, 1], dtype: 'float32' },
      { name: 'sep/pointwise_kernel', shape: [1, 1, C, F], dtype: 'float32' },
      { name: 'sep/bias', shape: [F], dtype: 'float32' },
      { name: 'dense/kernel', shape: [16, U], dtype: 'float32', quantization: { dtype: 'float16', original_dtype: 'float32' } },
    ] }],
  };
  const g = prepareGraph(await importKeras(new TextEncoder().encode(JSON.stringify(doc)), { loadShard: async (p) => { assert.equal(p, 'w.bin'); return shard; } }));

  // Input in NHWC, fed to fcm-opt as NCHW.
  const x = Array.from({ length: H * W * C }, () => rand() * 2 - 1);
  const at = (t: number[], h: number, w: number, c: number, hh: number, ww: number, cc: number) => (h < 0 || w < 0 || h >= hh || w >= ww ? 0 : t[(h * ww + w) * cc + c]);
  const nm = [0.2, -0.1], nsd = [0.5, 2];
  const r = x.map((v, i) => (v * 0.5 + 0.1 - nm[i % C]) / nsd[i % C]);
  // SeparableConv2D 'same' 3x3 stride 1: pads 1 all round.
  const d = new Array<number>(H * W * C).fill(0);
  for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) for (let c = 0; c < C; c++) {
    let s = 0;
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) s += at(r, h + i - 1, w + j - 1, c, H, W, C) * dw[(i * 3 + j) * C + c];
    d[(h * W + w) * C + c] = s;
  }
  const p = new Array<number>(H * W * F).fill(0);
  for (let q = 0; q < H * W; q++) for (let f = 0; f < F; f++) {
    let s = pb[f];
    for (let c = 0; c < C; c++) s += d[q * C + c] * pw[c * F + f];
    p[q * F + f] = s / (1 + Math.exp(-s));
  }
  // ZeroPadding2D: top 0, bottom 1, left 1, right 0 -> 7x7.
  const zp = new Array<number>(7 * 7 * F).fill(0);
  for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) for (let f = 0; f < F; f++) zp[(h * 7 + w + 1) * F + f] = p[(h * W + w) * F + f];
  // MaxPooling 2x2/2 'same' on 7: out 4, total pad 1 at the end (bottom/right), padded pixels never win.
  const mp = new Array<number>(16 * F).fill(0);
  for (let h = 0; h < 4; h++) for (let w = 0; w < 4; w++) for (let f = 0; f < F; f++) {
    let m = -Infinity;
    for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) if (2 * h + i < 7 && 2 * w + j < 7) m = Math.max(m, zp[((2 * h + i) * 7 + 2 * w + j) * F + f]);
    mp[(h * 4 + w) * F + f] = m;
  }
  // AveragePooling 3x3/2 'same' on 4: out 2, total pad 1 at the end; the average of the pixels inside.
  const ap = new Array<number>(4 * F).fill(0);
  for (let h = 0; h < 2; h++) for (let w = 0; w < 2; w++) for (let f = 0; f < F; f++) {
    let s = 0, n = 0;
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) if (2 * h + i < 4 && 2 * w + j < 4) { s += mp[((2 * h + i) * 4 + 2 * w + j) * F + f]; n++; }
    ap[(h * 2 + w) * F + f] = s / n;
  }
  // Reshape and Flatten keep NHWC order: the Dense sees ap as it is.
  const ref = Array.from({ length: U }, (_, u) => ap.reduce((s, v, i) => s + v * dk[i * U + u], 0));

  const xNchw = new Float32Array(C * H * W);
  for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) for (let c = 0; c < C; c++) xNchw[(c * H + h) * W + w] = x[(h * W + w) * C + c];
  assert.deepEqual(g.tensors.get(g.inputs[0])!.shape, [1, C, H, W]);
  const s = await createSession(g, { plan: 'unfused' });
  try {
    const y = (await s.run({ [g.inputs[0]]: xNchw }))[g.outputs[0]];
    assert.deepEqual(y.shape, [1, U]);
    // float32 arithmetic over ~50 terms of magnitude < 4: 1e-4 is far above its rounding, far below any slip.
    for (let u = 0; u < U; u++) assert.ok(Math.abs(y.data[u] - ref[u]) < 1e-4, `output ${u}: ${y.data[u]} vs ${ref[u]}`);
  } finally {
    s.dispose();
  }
});
