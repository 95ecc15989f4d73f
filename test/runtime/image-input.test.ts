// Image inputs (kernels/image-input.ts): 8-bit NHWC pixels uploaded as bytes and converted on the GPU into the model's
// float input, NCHW or NHWC, with per-channel mean and std, against the host reference imageToFloat. The models
// multiply their input by ones (exact), so the output is the converted input itself.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { mulberry32 } from '../../fixtures/rng.js';
import { fixtureModels } from '../../fixtures/models.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { imageInputProgram, imageToFloat } from '../../kernels/image-input.js';
import { defaultLimits } from '../../kernels/program.js';
import { roundHalf } from '../../src/runtime/half.js';

after(releaseGpu);

function identity(shape: number[]) {
  const b = new GraphBuilder('identity', 31);
  const x = b.input('image', shape);
  const n = shape.reduce((a, c) => a * c, 1);
  return b.build([b.mul(x, b.constant('ones', shape, new Float32Array(n).fill(1)))]);
}

function pixels(n: number, seed: number): Uint8Array {
  const r = mulberry32(seed);
  // Every byte value appears (0 and 255 included), then random ones.
  return Uint8Array.from({ length: n }, (_, i) => (i < 256 ? i : Math.floor(r() * 256)));
}

// The GPU computes byte * (scale / std) + (-mean / std), the reference (byte * scale - mean) / std: a few float32
// roundings apart on values below 3 in magnitude here (ulp 2.4e-7), so 1e-6 absolute; a channel taking another's
// mean or std is off by more than 0.05.
const tol = 1e-6;
function close(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) if (!(Math.abs(a[i] - b[i]) <= tol)) assert.fail(`${what}: element ${i}: ${a[i]} vs ${b[i]}`);
}

const imagenet = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

test('NCHW and NHWC model inputs from NHWC bytes equal the host reference', async () => {
  for (const [layout, shape] of [['nchw', [2, 3, 9, 7]], ['nhwc', [2, 9, 7, 3]]] as const) {
    const g = await loadModel(exportOnnx(identity([...shape])), { source: `identity-${layout}` });
    const s = await createSession(g, { plan: 'unfused', imageInputs: { image: { layout, ...imagenet } } });
    try {
      const px = pixels(2 * 9 * 7 * 3, 1);
      const want = imageToFloat(px, shape, { layout, ...imagenet });
      const got = (await s.run({ image: px }))[s.outputNames[0]].data;
      close(got, want, layout);
      // Float feeds still work for the same input.
      assert.deepEqual((await s.run({ image: want }))[s.outputNames[0]].data, want);
      // A wrong-length image is refused with the input's name.
      await assert.rejects(s.run({ image: px.subarray(1) }), /image input 'image' has 377 bytes, the model takes \[.*\] = 378/);
      // profile() converts the image as run() does, as a step of its own.
      const p = await s.profile({ image: px });
      assert.equal(p.steps[0].op, 'ImageInput');
    } finally {
      s.dispose();
    }
  }
});

test('an fp16 session converts image bytes into its f16 input on the GPU: the host reference rounded to f16', async () => {
  const shape = [2, 3, 9, 7];
  const g = await loadModel(exportOnnx(identity(shape)), { source: 'identity-f16' });
  // inputs 'f16': the input is an f16 tensor (by default it would stay f32, read by one node).
  const s = await createSession(g, { plan: 'unfused', precision: 'fp16', fp16: { keepF32: 'none', inputs: 'f16' }, imageInputs: { image: imagenet } });
  try {
    assert.deepEqual(s.stats().f32Tensors, [], 'the input is stored as f16');
    const px = pixels(2 * 9 * 7 * 3, 4);
    const want = imageToFloat(px, shape, imagenet);
    const got = (await s.run({ image: px }))[s.outputNames[0]].data;
    // The GPU's normalised value is a few float32 roundings from the reference's (above); rounded to f16 (times 1,
    // exact) it lands on the reference's f16 neighbour or, where the two straddle a rounding boundary, the next one:
    // within one f16 ulp, 2^-10 of the value. Left as float32, or a channel taking another's mean or std, is off by
    // more (or, stored as float32 into an f16 buffer, garbage).
    for (let i = 0; i < want.length; i++) {
      const r = roundHalf(want[i]);
      if (!(Math.abs(got[i] - r) <= 2 ** -10 * Math.abs(r) + 2 ** -24)) assert.fail(`element ${i}: ${got[i]} vs ${r} (${want[i]} rounded)`);
    }
    const exact = want.reduce((n, v, i) => n + (got[i] === roundHalf(v) ? 1 : 0), 0);
    assert.ok(exact >= 0.99 * want.length, `${exact} of ${want.length} elements equal to the reference rounded to f16`);
    // Float feeds of the same input are rounded to the same f16 values.
    assert.deepEqual((await s.run({ image: want }))[s.outputNames[0]].data, Float32Array.from(want, roundHalf));
  } finally {
    s.dispose();
  }
});

test('the reference itself: NCHW places channel c of pixel (y, x) at ((n*C + c)*H + y)*W + x', () => {
  // 1 image, 2x2 pixels, 3 channels: bytes 0..11 in NHWC order; scale 1, no mean or std.
  const px = Uint8Array.from({ length: 12 }, (_, i) => i);
  assert.deepEqual([...imageToFloat(px, [1, 3, 2, 2], { scale: 1 })], [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]);
  assert.deepEqual([...imageToFloat(px, [1, 2, 2, 3], { layout: 'nhwc', scale: 1, mean: [1], std: [2] })], [...px].map((v) => (v - 1) / 2));
});

test('a model with a ragged byte count (not a multiple of 4) and the default scale', async () => {
  const shape = [1, 3, 5, 3]; // 45 bytes
  const g = await loadModel(exportOnnx(identity(shape)), { source: 'identity-45' });
  const s = await createSession(g, { plan: 'unfused', imageInputs: { image: {} }, upload: 'write-buffer' });
  const r = await createSession(g, { plan: 'unfused', imageInputs: { image: {} }, upload: 'staging-ring' });
  try {
    const px = pixels(45, 2);
    const want = imageToFloat(px, shape, {});
    close((await s.run({ image: px }))[s.outputNames[0]].data, want, 'write-buffer');
    close((await r.run({ image: px }))[r.outputNames[0]].data, want, 'staging-ring');
  } finally {
    s.dispose();
    r.dispose();
  }
});

test('a CNN fed image bytes equals the same CNN fed the reference floats', async () => {
  const g = await loadModel(exportOnnx(fixtureModels.mobilenetv2_stack()), { source: 'mobilenetv2_stack' });
  const s = await createSession(g, { plan: 'unfused', imageInputs: { input: imagenet } });
  try {
    const px = pixels(3 * 32 * 32, 3);
    const a = (await s.run({ input: px }))[s.outputNames[0]].data;
    const b = (await s.run({ input: imageToFloat(px, [1, 3, 32, 32], imagenet) }))[s.outputNames[0]].data;
    // Inputs within 1e-6 of each other; through a few layers of O(1) weights the outputs stay within 1e-4.
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    assert.ok(worst <= 1e-4, `max difference ${worst}`);
  } finally {
    s.dispose();
  }
});

test('image options are checked', async () => {
  const g = await loadModel(exportOnnx(identity([1, 3, 4, 4])), { source: 'identity' });
  await assert.rejects(createSession(g, { plan: 'unfused', imageInputs: { nope: {} } }), /image options name 'nope', which is not an input/);
  await assert.rejects(createSession(g, { plan: 'unfused', imageInputs: { image: { mean: [1, 2] } } }), /image mean has 2 values; the input has 3 channels/);
  await assert.rejects(createSession(g, { plan: 'unfused', imageInputs: { image: { std: [1, 0, 1] } } }), /std must not be 0/);
  await assert.rejects(createSession(g, { plan: 'unfused', imageInputs: { image: { layout: 'chw' as 'nchw' } } }), /layout must be/);
  assert.throws(() => imageInputProgram([3, 4, 4], {}, defaultLimits, 'x'), /rank 4/);
  // Everything baked into the WGSL is in the cache key.
  const k = (o: object) => imageInputProgram([1, 3, 4, 4], o, defaultLimits, 'x').cacheKey;
  assert.notEqual(k({}), k({ mean: [0.5] }));
  assert.notEqual(k({}), k({ layout: 'nhwc' }));
  assert.notEqual(k({ std: [1, 2, 3] }), k({ std: [1, 2, 4] }));
});
