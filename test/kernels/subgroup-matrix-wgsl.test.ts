// The subgroup-matrix pointwise kernel's real WGSL (kernels/pointwise-subgroup-matrix.ts) through Dawn's shader
// compiler: lavapipe cannot run it (no subgroup matrices; Dawn refuses the `enable` there before checking anything
// else), but Dawn's null backend offers the feature under allow_unsafe_apis and runs the full front end on a shader
// module: parsing, types, the builtins' signatures, uniformity. Pipelines are created too where the program fits the
// null device's 16 KiB of workgroup storage. A Dawn build without the null backend skips this file (said in the
// skip message); the npm `webgpu` package the project pins has it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, globals } from 'webgpu';
import { pointwiseSubgroupMatrix, smxDirectApplies, smxDirectVariants, smxPaddedVariants, smxTileVariants, smxTrialVariants } from '../../kernels/pointwise-subgroup-matrix.js';
import { type KernelLimits, defaultLimits } from '../../kernels/program.js';
import { nodeEpilogue } from '../../kernels/shader.js';
import type { DotGeom } from '../../kernels/pointwise.js';
import { compileGraph } from '../../src/runtime/compile.js';
import { prepareForRun } from '../../src/pipeline/pipeline.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { mobileNetV2 } from '../../fixtures/zoo.js';
import { fusedDwPwSubgroupMatrix } from '../../kernels/fused-dwpw-subgroup-matrix.js';
import { type Node, fcmDomain, newAttrs } from '../../src/graph/ir.js';

// Kept for the life of the process (Dawn tears its instance down under live objects once it is collected).
let gpu: GPU | undefined;

async function nullDevice(): Promise<GPUDevice | undefined> {
  Object.assign(globalThis, globals);
  gpu ??= create(['backend=null', 'enable-dawn-features=allow_unsafe_apis']);
  const adapter = await gpu.requestAdapter();
  const need: GPUFeatureName[] = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix' as GPUFeatureName];
  if (!adapter || !need.every((f) => adapter.features.has(f))) return undefined;
  return adapter.requestDevice({ requiredFeatures: need });
}

/** Dawn's error messages for `wgsl` (module), and for its pipeline where `pipeline`. */
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

const h100: KernelLimits = { ...defaultLimits, maxComputeWorkgroupStorageSize: 49152, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024 };

function dot(N: number, C: number, F: number, P: number, o: { bias?: boolean; res?: boolean; scale?: boolean; act?: string } = {}): DotGeom {
  return {
    N, C, F, P, hasBias: !!o.bias, hasRes: !!o.res, hasScale: !!o.scale,
    act: nodeEpilogue(o.act === 'Clip' ? { activation: 'Clip', activationParams: [0, 6] } : o.act ? { activation: o.act } : {}, 'test'),
  };
}

test("Dawn's compiler accepts every tile variant's WGSL on ragged and aligned shapes with every epilogue, and the programs MobileNetV2 gets", async (t) => {
  const d = await nullDevice();
  if (!d) { t.skip("this Dawn build has no null backend offering chromium-experimental-subgroup-matrix"); return; }
  // The checker is real: left and right matrices swapped, and an f32 result stored to an f16 array, are refused.
  const good = pointwiseSubgroupMatrix(dot(1, 32, 32, 64), smxTileVariants[2], { subgroupSize: 32 }, ['x', 'w'], [0, 1], h100, 't').wgsl;
  assert.deepEqual(await compileErrors(d, good, true), []);
  assert.notDeepEqual(await compileErrors(d, good.replace('subgroupMatrixMultiplyAccumulate(a0, b0, ', 'subgroupMatrixMultiplyAccumulate(b0, a0, '), false), [], 'operands swapped');
  assert.notDeepEqual(await compileErrors(d, good.replace('subgroupMatrixStore<row_major>(&rs, ', 'subgroupMatrixStore<row_major>(&xs, '), false), [], 'an f32 result stored to f16');

  const programs = new Map<string, { wgsl: string; bytes: number }>();
  const shapes = [
    dot(1, 32, 16, 12544, { bias: true }), dot(2, 13, 21, 49, { bias: true, res: true, scale: true, act: 'Clip' }),
    dot(1, 40, 36, 36, { res: true, act: 'Relu' }), dot(3, 24, 70, 100, { bias: true, scale: true, act: 'HardSwish' }),
  ];
  for (const g of shapes) {
    // Workgroups of 4 subgroups: a pipeline with a subgroup matrix needs a workgroup size that is a multiple of the
    // device's maxSubgroupSize (Dawn's rule; the null device's is 128, an H100's 32).
    for (const tiles of [...smxTileVariants, ...smxPaddedVariants, ...smxTrialVariants, { sgf: 4, sgp: 1, tm: 1, tn: 2, bk: 16 }, { sgf: 2, sgp: 2, tm: 2, tn: 1, bk: 16 }]) {
      const names = ['x', 'w', ...(g.hasBias ? ['b'] : []), ...(g.hasRes ? ['res'] : []), ...(g.hasScale ? ['sc'] : [])];
      const p = pointwiseSubgroupMatrix(g, tiles, { subgroupSize: 32 }, names, names.map((_, i) => i), h100, 't');
      programs.set(p.cacheKey, { wgsl: p.wgsl, bytes: p.workgroupStorageBytes });
    }
  }
  const limits = { ...h100, maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 30 };
  for (const batch of [1, 32]) {
    const g = await prepareForRun(exportOnnx(mobileNetV2(batch)), { precision: 'fp16', plan: 'unfused', batch });
    for (const s of compileGraph(g, limits, 'f16', { subgroupMatrix: { subgroupSize: 32 } }).steps) {
      if (s.program.cacheKey.startsWith('pointwise-smx')) programs.set(s.program.cacheKey, { wgsl: s.program.wgsl, bytes: s.program.workgroupStorageBytes });
    }
  }
  // The DW-PW FCM on the staged variants (kernels/fused-dwpw-subgroup-matrix.ts): stride 1 and 2, vec4 and scalar
  // positions, with and without biases, residual and the activation after it.
  const dwpw = (n: number, c: number, h: number, f: number, stride: number, o: { bias?: boolean; res?: boolean }) => {
    const ho = Math.floor((h + 2 - 3) / stride) + 1;
    const attrs = newAttrs({ kernel: [3, 3], strides: [stride, stride], pads: [1, 1, 1, 1], activation1: 'Clip', activationParams1: [0, 6], ...(o.res ? { activationPost: 'Relu' } : {}) });
    const node: Node = { name: 'dwpw', op: 'FusedDwPw', domain: fcmDomain, attrs, outputs: ['y'], inputs: ['x', 'w1', o.bias ? 'b1' : '', 'w2', o.bias ? 'b2' : '', o.res ? 'r' : ''] };
    return { node, inputShapes: [[n, c, h, h], [c, 1, 3, 3], o.bias ? [c] : undefined, [f, c, 1, 1], o.bias ? [f] : undefined, o.res ? [n, f, ho, ho] : undefined], outputShapes: [[n, f, ho, ho]], limits: h100 };
  };
  for (const args of [dwpw(2, 40, 8, 36, 1, { bias: true, res: true }), dwpw(3, 13, 9, 21, 2, {}), dwpw(32, 576, 14, 96, 1, { bias: true, res: true })]) {
    for (const tiles of [smxPaddedVariants[1], smxTrialVariants[0]]) {
      const p = fusedDwPwSubgroupMatrix(args, tiles, { subgroupSize: 32 });
      programs.set(p.cacheKey, { wgsl: p.wgsl, bytes: p.workgroupStorageBytes });
    }
  }
  assert.ok(programs.size > 40, `${programs.size} programs`);
  const nullLimit = d.limits.maxComputeWorkgroupStorageSize;
  let pipelines = 0;
  for (const [key, p] of programs) {
    const withPipeline = p.bytes <= nullLimit;
    if (withPipeline) pipelines++;
    assert.deepEqual(await compileErrors(d, p.wgsl, withPipeline), [], key);
  }
  assert.ok(pipelines > 10, `${pipelines} pipelines created`);
  d.destroy();
});

test("Dawn's compiler accepts every direct-load variant's WGSL: 16 x 16 and 16 x 8 blocks, f32 and f16 accumulators, channel tails, vec4 / vec2 / scalar stores, every epilogue", async (t) => {
  const d = await nullDevice();
  if (!d) { t.skip("this Dawn build has no null backend offering chromium-experimental-subgroup-matrix"); return; }
  const full = { subgroupSize: 32, n8: true, f16Acc: true };
  const names = (g: DotGeom) => ['x', 'w', ...(g.hasBias ? ['b'] : []), ...(g.hasRes ? ['res'] : [])];
  const make = (g: DotGeom, v: (typeof smxDirectVariants)[number]) => pointwiseSubgroupMatrix(g, v, full, names(g), names(g).map((_, i) => i), h100, 't');
  // The checker is real: operands swapped, a 16 x 8 block in a 16 x 16 product, a store into a read-only binding.
  const good = make(dot(1, 32, 32, 64), smxDirectVariants[3]).wgsl;
  assert.deepEqual(await compileErrors(d, good, true), []);
  assert.notDeepEqual(await compileErrors(d, good.replace('subgroupMatrixMultiplyAccumulate(a0_0, b0_0, ', 'subgroupMatrixMultiplyAccumulate(b0_0, a0_0, '), false), [], 'operands swapped');
  assert.notDeepEqual(await compileErrors(d, good.replace('let b0_0 = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>', 'let b0_0 = subgroupMatrixLoad<subgroup_matrix_right<f16, 8, 16>'), false), [], 'a 16 x 8 block into a 16 x 16 product');
  assert.notDeepEqual(await compileErrors(d, good.replace('subgroupMatrixStore<row_major>(&rs, ', 'subgroupMatrixStore<row_major>(&x, '), false), [], 'a store into the read-only x');
  // Aligned and unaligned rows (the generator makes both; the chooser picks the aligned), channel tails (C % 16),
  // vec4 (P % 4 == 0), vec2 (P = 98) and scalar (P = 49) stores, F not a multiple of 16, batch > 1.
  const shapes = [
    dot(1, 32, 16, 12544, { bias: true }), dot(2, 24, 144, 3136, { bias: true, act: 'Clip' }), dot(3, 40, 36, 40, { bias: true, res: true, act: 'Clip' }),
    dot(2, 144, 24, 784, { bias: true, res: true }), dot(2, 13, 21, 49, { bias: true, res: true, act: 'Relu' }), dot(2, 96, 40, 98, { act: 'HardSwish' }),
    dot(32, 960, 320, 49, { bias: true }),
  ];
  let n = 0, pipelines = 0;
  const nullLimit = d.limits.maxComputeWorkgroupStorageSize;
  for (const g of shapes) {
    for (const v of smxDirectVariants) {
      if (!smxDirectApplies(g, v)) continue;
      const p = make(g, v);
      const withPipeline = p.workgroupStorageBytes <= nullLimit;
      if (withPipeline) pipelines++;
      assert.deepEqual(await compileErrors(d, p.wgsl, withPipeline), [], p.cacheKey);
      n++;
    }
  }
  // The programs MobileNetV2 gets with the direct rule on (FCM_OPT_SUBGROUP_MATRIX=direct).
  const limits = { ...h100, maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 30 };
  let fromModel = 0;
  for (const batch of [1, 32]) {
    const g = await prepareForRun(exportOnnx(mobileNetV2(batch)), { precision: 'fp16', plan: 'unfused', batch });
    for (const s of compileGraph(g, limits, 'f16', { subgroupMatrix: { subgroupSize: 32, direct: true } }).steps) {
      if (!s.program.cacheKey.startsWith('pointwise-smx-direct')) continue;
      const withPipeline = s.program.workgroupStorageBytes <= nullLimit;
      if (withPipeline) pipelines++;
      assert.deepEqual(await compileErrors(d, s.program.wgsl, withPipeline), [], s.program.cacheKey);
      fromModel++;
    }
  }
  assert.ok(n >= 60 && fromModel >= 30 && pipelines >= 10, `${n} programs, ${fromModel} from MobileNetV2, ${pipelines} pipelines`);
  d.destroy();
});
