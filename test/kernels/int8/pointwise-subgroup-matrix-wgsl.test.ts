// The integer pointwise kernel on subgroup matrices (kernels/int8/pointwise-subgroup-matrix.ts), its real WGSL through
// Dawn's shader compiler: lavapipe cannot run it (no subgroup matrices), but Dawn's null backend offers the feature
// under allow_unsafe_apis and runs the full front end on a shader module (parsing, types, the builtins' signatures
// with i8 / u8 components, uniformity); pipelines are created too where the program fits the null device's 16 KiB of
// workgroup storage (the null adapter lists no configurations, so the configuration check of pipeline creation is not
// exercised here: bench/int8-subgroup-matrix.ts runs the programs on a GPU that has them). A Dawn build without the
// null backend skips this file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, globals } from 'webgpu';
import { int8PointwiseSubgroupMatrix, int8SmxTileVariants } from '../../../kernels/int8/pointwise-subgroup-matrix.js';
import type { Tensor } from '../../../src/graph/ir.js';
import type { QType } from '../../../src/quant/reference.js';
import type { Int8KernelArgs } from '../../../kernels/int8/common.js';
import { defaultLimits } from '../../../kernels/program.js';
import { act, biasT, makeRng, node, weights } from './cases.js';

let gpu: GPU | undefined;

async function nullDevice(): Promise<GPUDevice | undefined> {
  Object.assign(globalThis, globals);
  gpu ??= create(['backend=null', 'enable-dawn-features=allow_unsafe_apis']);
  const adapter = await gpu.requestAdapter();
  const need: GPUFeatureName[] = ['subgroups', 'chromium-experimental-subgroup-matrix' as GPUFeatureName];
  if (!adapter || !need.every((f) => adapter.features.has(f))) return undefined;
  return adapter.requestDevice({ requiredFeatures: need });
}

async function compileErrors(d: GPUDevice, wgsl: string, pipeline: boolean): Promise<string[]> {
  d.pushErrorScope('validation');
  const module = d.createShaderModule({ code: wgsl });
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`);
  if (pipeline && !errors.length) {
    try {
      await d.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    } catch (e) {
      errors.push(`pipeline: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  const scope = await d.popErrorScope();
  if (scope && !errors.length) errors.push(scope.message.split('\n')[0]);
  return errors;
}

const h100 = { ...defaultLimits, maxComputeWorkgroupStorageSize: 49152, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024 };

function argsOf(t: QType, N: number, C: number, F: number, H: number, W: number, res: boolean): Int8KernelArgs {
  const r = makeRng(C + F);
  const x = act(r, 'x', t, [N, C, H, W], 0.03, t === 'int8' ? -5 : 128);
  const wt = weights(r, t, [F, C, 1, 1]);
  const b = biasT(r, F);
  const y: Tensor = act(r, 'y', t, [N, F, H, W], 0.2, 0, false);
  const rr = act(r, 'r', t, [N, F, H, W], 0.2, 0);
  const n = node('Conv', ['x', 'w', 'b', ...(res ? ['r'] : [])], { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, activation: 'Clip', activationParams: [0, 6] });
  return { node: n, inputs: [x, wt, b, ...(res ? [rr] : [])], outputs: [y], limits: h100, dot4: true, ...(res ? { residual: { index: 3, sum: y, attrs: {} } } : {}) };
}

test("Dawn's compiler accepts the integer subgroup-matrix WGSL: int8 and uint8, rows on words and not, every tile variant, 16 x 16 and 16 x 8 blocks, a residual Add", async (t) => {
  const d = await nullDevice();
  if (!d) { t.skip('this Dawn build has no null backend offering chromium-experimental-subgroup-matrix'); return; }
  // The checker is real: operands swapped, an i32 result stored to the u8 staging array, and the signed component on
  // the unsigned arrays are refused.
  const good = int8PointwiseSubgroupMatrix(argsOf('int8', 1, 64, 32, 8, 8, false), int8SmxTileVariants(16)[3], 32).wgsl;
  assert.deepEqual(await compileErrors(d, good, true), []);
  assert.notDeepEqual(await compileErrors(d, good.replace('subgroupMatrixMultiplyAccumulate(a0, b0, ', 'subgroupMatrixMultiplyAccumulate(b0, a0, '), false), [], 'operands swapped');
  assert.notDeepEqual(await compileErrors(d, good.replace('subgroupMatrixStore<row_major>(&rs, ', 'subgroupMatrixStore<row_major>(&xs, ').replace('var<workgroup> xs: array<i32', 'var<workgroup> xs: array<u32'), false), [], 'i32 result into a u32 array');
  const u8 = int8PointwiseSubgroupMatrix(argsOf('uint8', 1, 64, 32, 8, 8, false), int8SmxTileVariants(16)[3], 32).wgsl;
  assert.deepEqual(await compileErrors(d, u8, true), []);
  assert.notDeepEqual(await compileErrors(d, u8.replaceAll('<u8, ', '<i8, '), false), [], 'i8 matrices on u32 arrays');

  const nullLimit = d.limits.maxComputeWorkgroupStorageSize;
  let n = 0, pipelines = 0;
  for (const [type, N, C, F, H, W, res] of [['int8', 2, 70, 40, 8, 8, false], ['int8', 2, 33, 20, 7, 7, true], ['uint8', 3, 64, 16, 4, 4, false],
    ['uint8', 1, 40, 24, 5, 5, true], ['int8', 1, 960, 160, 7, 7, false]] as const) {
    const a = argsOf(type, N, C, F, H, W, res);
    for (const nb of [16, 8] as const) {
      for (const tiles of int8SmxTileVariants(nb)) {
        const p = int8PointwiseSubgroupMatrix(a, tiles, 32);
        const withPipeline = p.workgroupStorageBytes <= nullLimit;
        // A pipeline with a subgroup matrix needs a workgroup size that is a multiple of maxSubgroupSize (the null
        // device's is 128): the 4-subgroup tiles at 32 lanes are 128 threads.
        if (withPipeline) pipelines++;
        assert.deepEqual(await compileErrors(d, p.wgsl, withPipeline), [], p.cacheKey);
        n++;
      }
    }
  }
  assert.ok(n >= 50 && pipelines >= 30, `${n} programs, ${pipelines} pipelines`);
  d.destroy();
});
