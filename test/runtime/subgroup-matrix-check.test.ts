// The fail-safe of the subgroup-matrix pointwise kernel (src/runtime/subgroup-matrix-check.ts): a device that claims
// subgroup matrices but cannot run the kernel keeps fp16 sessions on the other f16 kernels, with one warning, and
// computes what it computed before. lavapipe stands for such a device: its context is given `subgroupMatrix` by hand,
// and Dawn there refuses the kernel's `enable chromium_experimental_subgroup_matrix`.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mobileNetV2Stack } from '../../fixtures/models.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { createSession } from '../../src/pipeline/session.js';
import { acquireGpu, releaseGpu } from '../../src/runtime/device.js';
import { checkSubgroupMatrix } from '../../src/runtime/subgroup-matrix-check.js';
import { seededInput } from '../../src/runtime/compare.js';

after(releaseGpu);

test("the check passes the kernel's emulated form: its data, reference and bound are right", async () => {
  const real = await acquireGpu();
  const why: string[] = [];
  // 12 KiB of workgroup storage: one staged tile variant (32 x 32, whose emulated form takes exactly that) on every
  // layer of the check, and (the direct rule on) the two direct variants the chooser may pick that fit it, on the
  // aligned layer without a channel tail (48 channels, 64 positions; on the 40-channel one their tail arrays do not
  // fit). Each program is compiled by lavapipe for seconds; the variants left out here (the other staged and direct
  // ones, which 16 KiB admits) are each run on ragged shapes by test/kernels/subgroup-matrix.test.ts: this test is
  // about the check's layers, reference and bound.
  const small = { ...real, subgroupMatrix: { subgroupSize: 32, direct: true }, kernelLimits: { ...real.kernelLimits, maxComputeWorkgroupStorageSize: 12288 } };
  assert.equal(await checkSubgroupMatrix(small, { onFailure: (w) => why.push(w), emulate: true, timeoutMs: 300_000 }), true, why.join());
  assert.equal(why.length, 0);
});

test('a device whose subgroup-matrix kernel fails its check: one warning, fp16 sessions on the other f16 kernels, same outputs', async () => {
  const real = await acquireGpu();
  assert.equal(real.subgroupMatrix, undefined, 'lavapipe offers no subgroup matrices');
  const claimed = { ...real, subgroupMatrix: { subgroupSize: 32 } };
  const why: string[] = [];
  assert.equal(await checkSubgroupMatrix(claimed, { onFailure: (w) => why.push(w) }), false);
  assert.equal(why.length, 1);
  assert.match(why[0], /failed its check on this device \(.*chromium_experimental_subgroup_matrix.*\); fp16 sessions use the other f16 kernels/);
  // Cached per device: no second check, no second warning.
  assert.equal(await checkSubgroupMatrix(claimed, { onFailure: (w) => why.push(w) }), false);
  assert.equal(why.length, 1);

  const bytes = exportOnnx(mobileNetV2Stack());
  const s1 = await createSession(bytes, { plan: 'unfused', precision: 'fp16', device: claimed });
  const s0 = await createSession(bytes, { plan: 'unfused', precision: 'fp16', device: real });
  try {
    const x = s0.inputNames[0], y = s0.outputNames[0];
    const data = seededInput(s0.inputShapes[x].reduce((a, b) => a * b, 1), 3);
    const o1 = (await s1.run({ [x]: data }))[y].data, o0 = (await s0.run({ [x]: data }))[y].data;
    assert.deepEqual(o1, o0, 'the same kernels, the same bits');
    assert.equal(s1.stats().dispatchesPerRun, s0.stats().dispatchesPerRun);
  } finally {
    s1.dispose();
    s0.dispose();
  }
});
