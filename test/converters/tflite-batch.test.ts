// TFLite files fix the batch (1 in practice): `batch` imports them at another one (converters/tflite/import.ts). A batch of
// images must give each image's outputs as the batch-1 model does: bit for bit on the integer kernels, within fp32
// rounding of differently tiled sums on the float ones. Files whose first dimension is not the batch are refused.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/graph/load.js';
import { ActivationFunctionType, NetWriter, Padding, buildMobileNetStyle, buildSeedMobileNetV1, opt } from '../../fixtures/tflite-builder.js';
import { BuiltinOperator } from '../../converters/tflite/schema_generated.js';
import { FcmError } from '../../src/errors.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { mulberry32 } from '../../fixtures/rng.js';
import { fp16Depthwise } from '../../fixtures/real-model-classes.js';
import { ssdPostProcess } from '../../fixtures/tflite-ssd.js';

after(releaseGpu);

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Runs `bytes` at batch `b` on b seeded images and each image alone at batch 1; returns both outputs per image. */
async function batchAgainstSingles(bytes: Uint8Array, b: number, source: string) {
  const gb = await loadModel(bytes, { source, batch: b });
  const g1 = await loadModel(bytes, { source });
  const x = gb.inputs[0], y = gb.outputs[0];
  assert.deepEqual(gb.tensors.get(x)!.shape, [b, ...g1.tensors.get(x)!.shape.slice(1)]);
  assert.deepEqual(gb.tensors.get(y)!.shape, [b, ...g1.tensors.get(y)!.shape.slice(1)]);
  const n = size(g1.tensors.get(x)!.shape), u = mulberry32(11);
  const feed = Float32Array.from({ length: n * b }, () => u() * 2 - 1);
  const sb = await createSession(gb, { plan: 'auto' }), s1 = await createSession(g1, { plan: 'auto' });
  const whole = (await sb.run({ [x]: feed }))[y];
  const m = size(g1.tensors.get(y)!.shape);
  const pairs: { batch: ArrayLike<number>; single: ArrayLike<number> }[] = [];
  for (let i = 0; i < b; i++) {
    const one = (await s1.run({ [x]: feed.subarray(i * n, (i + 1) * n) }))[y];
    const raw = whole.raw ?? whole.data;
    pairs.push({ batch: raw.subarray(i * m, (i + 1) * m), single: one.raw ?? one.data });
  }
  const path = sb.stats().path;
  sb.dispose(); s1.dispose();
  return { pairs, path };
}

test('an int8 MobileNetV1 at batch 3: each image bit for bit as at batch 1, on the integer kernels', async () => {
  const { pairs, path } = await batchAgainstSingles(buildSeedMobileNetV1(7, 32), 3, 'mob_v1-32.tflite');
  assert.equal(path, 'int8');
  for (const [i, p] of pairs.entries()) assert.deepEqual(Array.from(p.batch), Array.from(p.single), `image ${i}`);
});

test('a float MobileNet-style model at batch 2: each image as at batch 1 within fp32 rounding', async () => {
  const { pairs } = await batchAgainstSingles(buildMobileNetStyle({ int8: false }), 2, 'mnet.tflite');
  // The batch-2 plan may tile a layer differently (another sum order): a few ulp of values of order 1.
  for (const [i, p] of pairs.entries()) {
    for (let k = 0; k < p.single.length; k++) assert.ok(Math.abs(p.batch[k] - p.single[k]) <= 1e-5 * Math.max(1, Math.abs(p.single[k])), `image ${i} output ${k}: ${p.batch[k]} against ${p.single[k]}`);
  }
});

test('an input of a fixed batch other than 1 is refused at another batch, by name (exit 2)', async () => {
  const net = new NetWriter(1, false);
  const x = net.activation('images', [2, 8, 8, 3]);
  const y = net.conv('conv', x, 4, 3, 1, Padding.SAME, ActivationFunctionType.NONE);
  const bytes = net.finish([x], [y]);
  assert.deepEqual((await loadModel(bytes, { source: 'b2.tflite' })).tensors.get('images')!.shape, [2, 3, 8, 8]);
  await assert.rejects(loadModel(bytes, { source: 'b2.tflite', batch: 4 }), (e: unknown) => e instanceof FcmError && e.exitCode === 2 && /^b2\.tflite: input 'images' has a fixed first dimension of 2/.test(e.message));
});

test('a model whose first dimension is not the batch past a RESHAPE fails at that node, not silently', async () => {
  // [1, 4, 4, 8] -> RESHAPE [16, 8]: the 16 rows are positions, not images; at batch 2 the element counts differ.
  const net = new NetWriter(1, false);
  const x = net.activation('x', [1, 4, 4, 8]);
  net.activation('rows', [16, 8]);
  const rows = net.op(BuiltinOperator.RESHAPE, [x, net.b.constI32('rows/shape', [2], [16, 8])], 'rows', opt.reshape([16, 8]));
  const bytes = net.finish([x], [rows]);
  await assert.rejects(loadModel(bytes, { source: 'rows.tflite', batch: 2 }), (e: unknown) => e instanceof FcmError && /^rows\.tflite: .*reshape/i.test(e.message));
});

test('tensors computed from constants alone keep their shapes: f16 depthwise weights [1, 3, 3, C] behind DEQUANTIZE at batch 2', async () => {
  // The kernel's first dimension of 1 is no batch: only tensors computed from the inputs take the batch.
  const { pairs } = await batchAgainstSingles(fp16Depthwise(), 2, 'fp16-dw.tflite');
  for (const [i, p] of pairs.entries()) {
    for (let k = 0; k < p.single.length; k++) assert.ok(Math.abs(p.batch[k] - p.single[k]) <= 1e-5 * Math.max(1, Math.abs(p.single[k])), `image ${i} output ${k}: ${p.batch[k]} against ${p.single[k]}`);
  }
});

test('a custom op run on the file\'s shapes (detection post-processing) is refused at another batch, by name (exit 3)', async () => {
  const bytes = ssdPostProcess();
  await loadModel(bytes, { source: 'ssd.tflite' });
  await assert.rejects(loadModel(bytes, { source: 'ssd.tflite', batch: 2 }), (e: unknown) => e instanceof FcmError && e.exitCode === 3 && /^ssd\.tflite: node '.*' \(tflite_detection_postprocess\) is a TFLite op run as saved/.test(e.message));
});
