import { test } from 'node:test';
import assert from 'node:assert/strict';
import { asyncCompile } from '../../src/runtime/gpu.js';

const info = (description: string, vendor = '', architecture = '', device = '') => ({ adapterInfo: { vendor, architecture, device, description } });

test('pipelines compile all at once on hardware adapters, one by one on software Vulkan', () => {
  assert.equal(asyncCompile(info('NVIDIA H100 80GB HBM3', 'nvidia', 'hopper'), {}), true);
  assert.equal(asyncCompile(info('', 'apple', 'metal-3'), {}), true);
  // lavapipe reports itself as llvmpipe; Chromium's software adapter as SwiftShader.
  assert.equal(asyncCompile(info('llvmpipe (LLVM 19.1.7, 256 bits)', 'mesa'), {}), false);
  assert.equal(asyncCompile(info('Vulkan: SwiftShader Device (Subzero)', 'google', 'swiftshader'), {}), false);
  assert.equal(asyncCompile(info('', 'google', '', 'SwiftShader'), {}), false);
});

test('FCM_OPT_ASYNC_COMPILE forces either way; other values leave the choice to the adapter', () => {
  assert.equal(asyncCompile(info('llvmpipe'), { FCM_OPT_ASYNC_COMPILE: '1' }), true);
  assert.equal(asyncCompile(info('NVIDIA H100'), { FCM_OPT_ASYNC_COMPILE: '0' }), false);
  assert.equal(asyncCompile(info('NVIDIA H100'), { FCM_OPT_ASYNC_COMPILE: 'yes' }), true);
  assert.equal(asyncCompile(info('llvmpipe'), { FCM_OPT_ASYNC_COMPILE: '' }), false);
});
