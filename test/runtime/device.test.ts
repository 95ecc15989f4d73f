// The device's set-up choices that depend on the adapter and the environment (no GPU needed).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { acquireGpu, dawnFlags, describeDevice, releaseGpu, splitByEnv, stagedByEnv, validationMode } from '../../src/runtime/device.js';
import { smxPaddedVariants, smxSplitVariants, smxTileKey, smxTrialVariants } from '../../kernels/pointwise-subgroup-matrix.js';

after(releaseGpu);

test('Dawn validates on software adapters and skips validation on hardware ones; FCM_OPT_VALIDATION overrides', () => {
  const h100 = { vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H100 80GB HBM3' };
  const lavapipe = { vendor: 'mesa', architecture: '', device: '', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' };
  assert.equal(validationMode(h100, {}), 'skip');
  assert.equal(validationMode(lavapipe, {}), 'full');
  assert.equal(validationMode({ description: 'Vulkan: SwiftShader Device (Subzero)' }, {}), 'full');
  assert.equal(validationMode(h100, { FCM_OPT_VALIDATION: 'full' }), 'full');
  assert.equal(validationMode(lavapipe, { FCM_OPT_VALIDATION: 'skip' }), 'skip');
  assert.equal(validationMode(h100, { FCM_OPT_VALIDATION: 'off' }), 'skip', 'an unknown value leaves the choice to the adapter');
});

test("Dawn's flags: skip_validation only when asked; extra toggles from the environment, names only", () => {
  const [en, dis] = dawnFlags({});
  assert.equal(en, 'enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia');
  assert.equal(dis, 'disable-dawn-features=timestamp_quantization');
  assert.match(dawnFlags({}, true)[0], /,skip_validation$/);
  const [en2, dis2] = dawnFlags({ FCM_OPT_DAWN_ENABLE: 'disable_robustness, skip_validation', FCM_OPT_DAWN_DISABLE: 'lazy_clear_resource_on_first_use,bad=1' }, true);
  assert.equal(en2, 'enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia,skip_validation,disable_robustness');
  assert.equal(dis2, 'disable-dawn-features=timestamp_quantization,lazy_clear_resource_on_first_use');
});

test('the process device on lavapipe keeps validation, and says so', async () => {
  const ctx = await acquireGpu();
  assert.equal(ctx.validation, validationMode(ctx.adapterInfo));
  assert.match(describeDevice(ctx), new RegExp(`validation ${ctx.validation}`));
  // A validation error must still reach the error scopes where validation is on (the tests' adapter).
  if (ctx.validation === 'full') {
    ctx.device.pushErrorScope('validation');
    ctx.device.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
    const e = await ctx.device.popErrorScope();
    assert.ok(e, 'no validation error for a MAP_READ | STORAGE buffer');
  }
});

test('FCM_OPT_SMX_SPLIT: one K-group tile key; an unknown one, or tiles without K-groups, is exit 2 listing the known keys', () => {
  for (const t of smxSplitVariants) assert.equal(splitByEnv(smxTileKey(t)), t);
  assert.equal(splitByEnv(' SG2x2T1x1BK64PK2 '), smxSplitVariants[0]);
  assert.throws(() => splitByEnv('SG2x2T1x1BK32P'), (e: Error) => /^FCM_OPT_SMX_SPLIT: unknown tiles 'SG2x2T1x1BK32P' \(known: SG2x2T1x1BK64PK2, .*\)$/.test(e.message) && (e as { kind?: string }).kind === 'invalid');
});

test('FCM_OPT_SMX_STAGED: one or two staged tile keys; an unknown one or a direct one is exit 2 listing the known keys', () => {
  assert.deepEqual(stagedByEnv('SG2x2T1x1BK32PD'), [smxTrialVariants[0], smxTrialVariants[0]]);
  assert.deepEqual(stagedByEnv(`${smxTileKey(smxPaddedVariants[1])}, SG2x2T2x2BK32PD`), [smxPaddedVariants[1], smxTrialVariants[2]]);
  assert.throws(() => stagedByEnv('SG9x9'), (e: Error) => /^FCM_OPT_SMX_STAGED: unknown tiles 'SG9x9' \(known: .*SG2x2T1x1BK32PD.*\)$/.test(e.message) && (e as { kind?: string }).kind === 'invalid');
  assert.throws(() => stagedByEnv('D2x2T2x2N16K1'), /unknown tiles 'D2x2T2x2N16K1'/);
  assert.throws(() => stagedByEnv('SG2x2T1x1BK32PD,SG2x2T1x1BK32PD,SG2x2T1x1BK32PD'), /takes one or two tile keys, got 3/);
});
