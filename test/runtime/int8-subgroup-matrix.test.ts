// The integer pointwise kernel on subgroup matrices in the int8 schedule (kernels/registry.ts int8PointwiseSmx,
// src/runtime/compile.ts compileInt8, src/pipeline/session.ts) and its device check
// (src/runtime/int8-subgroup-matrix-check.ts). lavapipe has no subgroup matrices: the schedule is compiled for an H100's
// limits to count which pointwise Convs take the kernel, and run on lavapipe with the kernel's emulated form (the same
// WGSL with each matrix operation written out at the same offsets), bit for bit against the same schedule on the
// word kernel (int8 MobileNetV2 at 64x64 in, unfused: residual Adds folded into pointwise Convs, maps from 32x32 to
// 2x2, so the chooser leaves some layers to the word kernel).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/graph/load.js';
import { graphForRun } from '../../src/pipeline/pipeline.js';
import { buildMobileNetV2Int8 } from '../../fixtures/tflite-builder.js';
import { compileInt8 } from '../../src/runtime/compile.js';
import { Executor } from '../../src/runtime/executor.js';
import { int8 } from '../../src/runtime/precision.js';
import { acquireGpu, releaseGpu } from '../../src/runtime/device.js';
import { checkInt8SubgroupMatrix, int8SubgroupMatrixOf } from '../../src/runtime/int8-subgroup-matrix-check.js';
import { defaultLimits } from '../../kernels/program.js';
import { mulberry32 } from '../../fixtures/rng.js';

after(releaseGpu);

const h100 = {
  ...defaultLimits, maxComputeWorkgroupStorageSize: 49152, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024,
  maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 30,
};
const noPlan = () => { throw new Error('no plan needed'); };
const smxKey = (k: string) => k.startsWith('int8-pointwise-smx');

test('the int8 schedule takes the subgroup-matrix kernel for the pointwise Convs the chooser gives tiles, only with support', async () => {
  const g = graphForRun(await loadModel(buildMobileNetV2Int8(undefined, 224), { source: 'mobilenet_v2_int8.tflite' }), 'int8', 'unfused', noPlan);
  const without = compileInt8(g, h100, true);
  const withSmx = compileInt8(g, h100, true, { subgroupSize: 32, n: { int8: 16 } });
  const count = (c: typeof without, f: (k: string) => boolean) => c.steps.filter((s) => f(s.program.cacheKey)).length;
  assert.equal(count(without, smxKey), 0);
  const pw = count(without, (k) => k.startsWith('int8-pointwise-'));
  const onSmx = count(withSmx, smxKey);
  // MobileNetV2 at batch 1: 21 of its 34 pointwise dispatches (2026-12-06): not all (C < 32, 7x7 layers with long K,
  // the 1x1 classifier stay on the word and split-K kernels) and not none.
  assert.ok(onSmx > 5 && onSmx < pw, `${onSmx} of ${pw} pointwise dispatches on subgroup matrices`);
  assert.equal(withSmx.steps.length, without.steps.length, 'one dispatch per node either way');
  // Residual Adds stay folded: the kernel takes them.
  assert.ok(withSmx.steps.some((s) => smxKey(s.program.cacheKey) && s.program.name.includes('+ add')), 'a pointwise Conv with its residual Add on subgroup matrices');
  // Only the types the device offers: a device with u8 configurations alone leaves this int8 model as it was.
  assert.equal(count(compileInt8(g, h100, true, { subgroupSize: 32, n: { uint8: 16 } }), smxKey), 0);
});

test('an int8 MobileNetV2 schedule with the emulated subgroup-matrix kernel equals the word kernels bit for bit (lavapipe)', async () => {
  const ctx = await acquireGpu();
  const g = graphForRun(await loadModel(buildMobileNetV2Int8(undefined, 64), { source: 'mobilenet_v2_int8.tflite' }), 'int8', 'unfused', noPlan);
  const limits = { ...ctx.kernelLimits, maxStorageBufferBindingSize: ctx.limits.maxStorageBufferBindingSize, maxBufferSize: ctx.limits.maxBufferSize };
  const plain = compileInt8(g, limits, false);
  const emulated = compileInt8(g, limits, false, { subgroupSize: 32, n: { int8: 16 }, emulate: true });
  const onSmx = emulated.steps.filter((s) => s.program.cacheKey.startsWith('int8-pointwise-smx-emulated')).length;
  assert.ok(onSmx >= 5, `${onSmx} dispatches on the emulated kernel`);
  const a = await Executor.create(ctx, plain, int8, { dot4: false });
  const b = await Executor.create(ctx, emulated, int8, { dot4: false });
  try {
    const name = a.inputNames[0];
    const u = mulberry32(11);
    const x = Float32Array.from({ length: a.inputShapes[name].reduce((p, c) => p * c, 1) }, () => 2 * u() - 1);
    const ya = (await a.run({ [name]: x }))[a.outputNames[0]].data;
    const yb = (await b.run({ [name]: x }))[b.outputNames[0]].data;
    assert.equal(ya.length, yb.length);
    const diff = Array.from(ya).findIndex((v, i) => v !== yb[i]);
    assert.equal(diff, -1, `output ${diff}: ${ya[diff]} vs ${yb[diff]}`);
  } finally {
    a.dispose(); b.dispose();
  }
});

test('the device check: passes with the emulated kernel, and a device without integer subgroup matrices fails it with the reason', async () => {
  const ctx = await acquireGpu();
  assert.equal(int8SubgroupMatrixOf(ctx), undefined, 'lavapipe offers no integer subgroup matrices');
  let why = '';
  // The variants sessions can pick, as sessions check them (every variant's arithmetic: test/kernels/int8/pointwise-subgroup-matrix.test.ts).
  assert.equal(await checkInt8SubgroupMatrix(ctx, { emulate: { subgroupSize: 32, n: { int8: 16, uint8: 16 } }, onFailure: (w) => { why = w; }, timeoutMs: 120_000 }), true, why);
  assert.equal(await checkInt8SubgroupMatrix(ctx, { onFailure: (w) => { why = w; } }), false);
  assert.match(why, /no integer subgroup matrices.*word kernel/);
});
