// The f16 pointwise kernel on subgroup matrices (kernels/pointwise-subgroup-matrix.ts): its program descriptions and
// cache keys, the tile chooser, the selection by device features (src/runtime/device.ts subgroupMatrixSupport,
// kernels/registry.ts kernelFor, compileGraph), and its emulated form run on lavapipe against a float64 reference.
// lavapipe has no subgroup matrices: the emulated form is the same WGSL with each matrix load, multiply-accumulate
// and store written out at the same offsets and strides, so everything but the three builtins is run here (the
// staging, the edges, the epilogue, the tile and block indexing). subgroup-matrix-wgsl.test.ts validates the real
// form's WGSL with Dawn's shader compiler.
//
// Tolerance of the emulated runs: inputs are rounded to f16 first and the reference computed in float64 from those
// values; the kernel sums f32 products (exact for f16 operands) in f32 and rounds the result to f16 once, so
// |got - ref| <= 2^-11 |ref| + 2^-25 (rounding, normal and subnormal) + 1e-4 max(1, max |ref|) (f32 sums of up to
// 100 terms, as the fp32 kernels' bound in layer-harness.ts). With a channel scale the scaled x is rounded to f16
// before the product (one more rounding per term): + 2^-11 sum_c |w x sc|. A wrong offset, a lost edge or an
// unwritten element (outputs start as NaN) is off by O(1).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeDevice } from './fused-harness.js';
import { runEmulated } from './smx-emulated.js';
import { randomF32 } from './reference.js';
import { activation } from './reference.js';
import {
  type SmxDirectTiles, type SmxTiles, type SmxVariant, chooseSmxTiles, isDirect, pointwiseSubgroupMatrix, smxChosenDirectVariants, smxDirectVariants,
  smxFits, smxMinWorkgroups, smxPaddedVariants, smxSplitMinWorkgroups, smxSplitVariants, smxStorage, smxTileCount, smxTileKey, smxTileVariants, smxTrialVariants,
} from '../../kernels/pointwise-subgroup-matrix.js';
import type { DotGeom } from '../../kernels/pointwise.js';
import { kernelFor } from '../../kernels/registry.js';
import { type KernelLimits, type KernelProgram, defaultLimits } from '../../kernels/program.js';
import { nodeEpilogue, withPostActivation } from '../../kernels/shader.js';
import type { Attrs, Node } from '../../src/graph/ir.js';
import { subgroupMatrixSupport } from '../../src/runtime/device.js';
import { compileGraph } from '../../src/runtime/compile.js';
import { prepareForRun } from '../../src/pipeline/pipeline.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { mobileNetV2 } from '../../fixtures/zoo.js';
import { fromHalf, roundHalf, toHalf } from '../../src/runtime/half.js';
import { fullSweeps } from '../sweep.js';

after(closeDevice);

/** An H100's limits as Dawn reports them (48 KiB workgroup storage, 1024 invocations). */
const h100: Required<KernelLimits> = { ...defaultLimits, maxComputeWorkgroupStorageSize: 49152, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024 };
const support = { subgroupSize: 32 };

interface Case extends DotGeom { acts: [string, number[]]; post?: string }

function dotCase(N: number, C: number, F: number, P: number, o: { bias?: boolean; res?: boolean; scale?: boolean; act?: [string, number[]]; post?: string } = {}): Case {
  const acts = o.act ?? ['', []];
  const attrs: Attrs = acts[0] ? { activation: acts[0], activationParams: acts[1] } : {};
  return {
    N, C, F, P, hasBias: !!o.bias, hasRes: !!o.res, hasScale: !!o.scale, acts, post: o.post,
    act: withPostActivation(nodeEpilogue(attrs, 'test'), o.post ? { activationPost: o.post } : {}, 'test'),
  };
}

const namesOf = (g: DotGeom) => ['x', 'w', ...(g.hasBias ? ['b'] : []), ...(g.hasRes ? ['res'] : []), ...(g.hasScale ? ['sc'] : [])];

function program(g: DotGeom, t: SmxVariant, o: { s?: number; limits?: KernelLimits; emulate?: boolean } = {}): KernelProgram {
  const names = namesOf(g);
  return pointwiseSubgroupMatrix(g, t, { subgroupSize: o.s ?? 32, n8: true, f16Acc: true }, names, names.map((_, i) => i), o.limits ?? h100, 'test', 'Conv(pw smx)', o.emulate);
}

// ---- program descriptions ------------------------------------------------------------------------------------------

test('program description: workgroup of SGF x SGP subgroups, one workgroup per BF x BP tile, storage as declared', () => {
  for (const t of [...smxTileVariants, ...smxPaddedVariants, ...smxTrialVariants]) {
    for (const g of [dotCase(1, 32, 16, 12544, { bias: true }), dotCase(2, 13, 21, 49, { res: true }), dotCase(32, 960, 320, 49, { bias: true })]) {
      const p = program(g, t);
      const BF = 16 * t.tm * t.sgf, BP = 16 * t.tn * t.sgp;
      // Rows of x and w 8 f16 longer and of the results 4 f32 longer where padded.
      const XS = BP + (t.pad ? 8 : 0), WS = t.bk + (t.pad ? 8 : 0), RS = BP + (t.pad ? 4 : 0);
      // K-groups: ks groups of SGF x SGP subgroups, each its own result tile.
      const KS = t.ks ?? 1;
      assert.deepEqual(p.workgroupSize, [32 * t.sgf * t.sgp * KS, 1, 1]);
      const tiles = Math.ceil(g.F / BF) * Math.ceil(g.N * g.P / BP);
      assert.equal(tiles, smxTileCount(g, t));
      assert.ok(p.dispatch[0] * p.dispatch[1] >= tiles && p.dispatch[0] * (p.dispatch[1] - 1) < tiles, `${p.cacheKey}: dispatch ${p.dispatch} for ${tiles} tiles`);
      assert.match(p.wgsl, new RegExp(`const TOTAL: u32 = ${tiles}u;`));
      assert.equal(p.workgroupStorageBytes, smxStorage(t));
      // Two sets of x and w tiles where double-buffered.
      const sets = t.db ? 2 : 1;
      assert.equal(smxStorage(t), sets * (2 * t.bk * XS + 2 * BF * WS) + 4 * KS * BF * RS);
      assert.match(p.wgsl, new RegExp(`var<workgroup> xs: array<f16, ${sets * t.bk * XS}>;`));
      assert.match(p.wgsl, new RegExp(`var<workgroup> ws: array<f16, ${sets * BF * WS}>;`));
      // One barrier a step with two sets (and one before the loop), two with one.
      const loop = p.wgsl.slice(p.wgsl.indexOf('for (var c0 = 0u;'), p.wgsl.indexOf('subgroupMatrixStore<row_major>(&rs'));
      assert.equal(loop.match(/workgroupBarrier\(\)/g)?.length, t.db ? 1 : 2, `${smxTileKey(t)}: barriers in the channel loop`);
      assert.match(p.wgsl, new RegExp(`var<workgroup> rs: array<f32, ${KS * BF * RS}>;`));
      // Each subgroup multiplies BK / KS channels of a step: TM x TN products per 16 of them; the epilogue adds the
      // K-groups' tiles.
      assert.equal(p.wgsl.match(/subgroupMatrixMultiplyAccumulate\(/g)?.length, t.tm * t.tn * t.bk / 16 / KS, `${smxTileKey(t)}: products per step`);
      assert.equal((p.wgsl.match(/let y = [^;]*;/)?.[0].match(/rs\[/g)?.length ?? 0) / (g.P % 4 === 0 ? 4 : 1), KS, `${smxTileKey(t)}: K-group sums in the epilogue`);
      // The matrix loads and stores take those row lengths as strides.
      assert.match(p.wgsl, new RegExp(`subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>\\(&ws, [^;]*, WS\\);`));
      assert.match(p.wgsl, new RegExp(`subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>\\(&xs, [^;]*, XS\\);`));
      assert.match(p.wgsl, new RegExp(`subgroupMatrixStore<row_major>\\(&rs, [^;]*, RS\\);`));
      assert.match(p.wgsl, new RegExp(`const XS: u32 = ${XS}u;[\\s\\S]*const WS: u32 = ${WS}u;[\\s\\S]*const RS: u32 = ${RS}u;`));
      assert.deepEqual(p.inputs, namesOf(g).map((_, i) => i));
      assert.equal(p.outputs, 1);
    }
  }
});

test('WGSL: the enables, the bindings in order with vec4<f16> where P % 4 == 0 (x, res, out) and C % 4 == 0 (w), the matrix builtins', () => {
  const t = smxTileVariants[0];
  const vec = program(dotCase(1, 32, 48, 196, { bias: true, res: true, act: ['Clip', [0, 6]] }), t).wgsl;
  assert.ok(vec.startsWith('enable f16;\nenable subgroups;\nenable chromium_experimental_subgroup_matrix;\n'));
  const decls = [...vec.matchAll(/@group\(0\) @binding\((\d+)\) var<storage, (\w+)> (\w+): array<([^>]+>?)>;/g)].map((m) => `${m[1]} ${m[2]} ${m[3]} ${m[4]}`);
  assert.deepEqual(decls, ['0 read x vec4<f16>', '1 read w vec4<f16>', '2 read b f16', '3 read res vec4<f16>', '4 read_write out vec4<f16>']);
  const scalar = program(dotCase(2, 13, 21, 49, { scale: true }), t).wgsl;
  const sdecls = [...scalar.matchAll(/@binding\((\d+)\) var<storage, (\w+)> (\w+): array<([^>]+>?)>;/g)].map((m) => `${m[3]} ${m[4]}`);
  assert.deepEqual(sdecls, ['x f16', 'w f16', 'sc f16', 'out f16']);
  // 2 x 2 blocks per subgroup, 2 K-steps of 16 per staging step: 8 multiply-accumulates, 4 stores.
  assert.equal(vec.match(/subgroupMatrixMultiplyAccumulate\(/g)?.length, 8);
  assert.equal(vec.match(/subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>\(&ws,/g)?.length, 4);
  assert.equal(vec.match(/subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>\(&xs,/g)?.length, 4);
  assert.equal(vec.match(/subgroupMatrixStore<row_major>\(&rs,/g)?.length, 4);
  assert.equal(vec.match(/var acc\d_\d = subgroup_matrix_result<f32, 16, 16>\(\);/g)?.length, 4);
  assert.match(vec, /@builtin\(subgroup_id\) sg: u32/);
  // The emulated form: no subgroup builtins or enables, the same offsets.
  const emu = program(dotCase(1, 32, 48, 196, { bias: true, res: true, act: ['Clip', [0, 6]] }), t, { emulate: true }).wgsl;
  assert.ok(emu.startsWith('enable f16;\n') && !/subgroup/.test(emu.replace(/\/\/[^\n]*/g, '')), 'the emulated form uses no subgroup feature');
  assert.equal(emu.match(/emuMma\(/g)!.length - 1, 8, 'one emulated multiply-accumulate per block and K-step (and the definition)');
  assert.equal(emu.match(/emuStore\(/g)!.length - 1, 4);
});

test('cache keys: equal inputs give equal programs; every shape, epilogue, tile, subgroup size and the emulated form its own key', () => {
  const cases = [
    dotCase(1, 32, 16, 12544), dotCase(1, 32, 16, 12544, { bias: true }), dotCase(1, 32, 16, 12544, { bias: true, res: true }),
    dotCase(1, 32, 16, 12544, { scale: true }), dotCase(1, 32, 16, 12544, { act: ['Relu', []] }), dotCase(1, 32, 16, 12544, { act: ['Clip', [0, 6]] }),
    dotCase(2, 32, 16, 12544), dotCase(1, 33, 16, 12544), dotCase(1, 32, 17, 12544), dotCase(1, 32, 16, 12545),
  ];
  const seen = new Map<string, string>();
  const add = (p: KernelProgram) => {
    const prev = seen.get(p.cacheKey);
    assert.ok(prev === undefined || prev === p.wgsl, `cache key ${p.cacheKey} names two different programs`);
    seen.set(p.cacheKey, p.wgsl);
  };
  let n = 0;
  for (const g of cases) for (const t of [...smxTileVariants, ...smxPaddedVariants, ...smxTrialVariants]) { add(program(g, t)); n++; }
  add(program(cases[0], smxTileVariants[0], { s: 64 })); n++;
  add(program(cases[0], smxTileVariants[0], { emulate: true })); n++;
  assert.equal(seen.size, n, 'no two of them share a key');
  // Deterministic: the same arguments, the same program.
  assert.deepEqual(program(cases[2], smxTileVariants[1]), program(cases[2], smxTileVariants[1]));
  for (const k of seen.keys()) assert.ok(!k.startsWith('f16|'), 'apart from the f16 rewrite of the fp32 kernels');
});

test('bad tiles and tiles over the device limits are refused with a clear error', () => {
  const g = dotCase(1, 32, 32, 64);
  assert.throws(() => program(g, { sgf: 2, sgp: 2, tm: 1, tn: 1, bk: 24 }), /multiple of 16 channels per step, got 24/);
  assert.throws(() => program(g, { sgf: 0, sgp: 2, tm: 1, tn: 1, bk: 16 }), /tile sgf must be a positive integer/);
  assert.throws(() => program(g, smxTileVariants[0], { limits: defaultLimits }), /24576 bytes of workgroup storage, the device allows 16384/);
  assert.throws(() => program(g, { sgf: 4, sgp: 4, tm: 1, tn: 1, bk: 16 }, { limits: defaultLimits }), /512 threads per workgroup, the device allows 256/);
});

// ---- the tile chooser ----------------------------------------------------------------------------------------------

test('chooser: padded 32 x 32 tiles, 64 channels a step from 192 on; the present kernel for large memory-bound layers and long loops over one 7x7 map', () => {
  const key = (t: SmxVariant | undefined) => (t ? `${isDirect(t) ? 'direct ' : ''}${16 * t.tm * t.sgf}x${(isDirect(t) ? t.nb : 16) * t.tn * t.sgp}${!isDirect(t) ? `/${t.bk}${t.pad ? 'p' : ''}` : ''}` : 'present');
  // Most layers: 32 x 32 padded, 32 channels a step below 192 channels (batch 32 56x56 144 -> 24, batch 1 28x28
  // 32 -> 192, batch 32 7x7 160 -> 960), 64 from 192 on (batch 1 14x14 192 -> 64, batch 32 7x7 960 -> 320).
  assert.equal(key(chooseSmxTiles({ N: 1, P: 784, F: 192, C: 32 }, support, h100)), '32x32/32p');
  assert.equal(key(chooseSmxTiles({ N: 1, P: 196, F: 64, C: 192 }, support, h100)), '32x32/64p');
  // 32 x 64 tiles where they make smxWideMinWorkgroups workgroups or more (batch 32 56x56 144 -> 24: 1568; 7x7
  // 160 -> 960: 750; 7x7 960 -> 320: 250; 14x14 192 -> 64: 196), 32 x 32 below (7x7 960 -> 160: 125, 64 a step;
  // batch 1 28x28 32 -> 192: 78).
  assert.equal(key(chooseSmxTiles({ N: 32, P: 3136, F: 24, C: 144 }, support, h100)), '32x64/32p');
  assert.equal(key(chooseSmxTiles({ N: 32, P: 49, F: 960, C: 160 }, support, h100)), '32x64/32p');
  assert.equal(key(chooseSmxTiles({ N: 32, P: 49, F: 320, C: 960 }, support, h100)), '32x64/32p');
  assert.equal(key(chooseSmxTiles({ N: 32, P: 196, F: 64, C: 192 }, support, h100)), '32x64/32p');
  assert.equal(smxTileCount({ N: 32, P: 49, F: 160 }, smxPaddedVariants[3]), 125);
  assert.equal(key(chooseSmxTiles({ N: 32, P: 49, F: 160, C: 960 }, support, h100)), '32x32/64p');
  assert.equal(smxTileCount({ N: 1, P: 784, F: 192 }, smxPaddedVariants[3]), 78);
  // Memory-bound layers (fewer than 32 channels, or at most 16 filters) over 16384+ positions: the present kernel
  // (batch 32 56x56 24 -> 144, 112x112 16 -> 96 and 32 -> 16); over fewer, the padded tiles (the same at batch 1).
  assert.equal(key(chooseSmxTiles({ N: 32, P: 3136, F: 144, C: 24 }, support, h100)), 'present');
  assert.equal(key(chooseSmxTiles({ N: 32, P: 12544, F: 96, C: 16 }, support, h100)), 'present');
  assert.equal(key(chooseSmxTiles({ N: 32, P: 12544, F: 16, C: 32 }, support, h100)), 'present');
  assert.equal(key(chooseSmxTiles({ N: 1, P: 3136, F: 144, C: 24 }, support, h100)), '32x32/32p');
  assert.equal(key(chooseSmxTiles({ N: 1, P: 12544, F: 96, C: 16 }, support, h100)), '32x32/32p');
  assert.equal(key(chooseSmxTiles({ N: 1, P: 12544, F: 16, C: 32 }, support, h100)), '32x32/32p');
  // One 7x7 map with a long channel loop on few tiles (batch 1 960 -> 160: 5 x 2 tiles of 960 channels): the present
  // (split-K) kernel; at 14x14 (batch 1 576 -> 96, 21 tiles) and with a short loop (160 -> 960) the padded tiles.
  assert.ok(smxTileCount({ N: 1, P: 49, F: 160 }, smxPaddedVariants[2]) < smxMinWorkgroups);
  assert.equal(key(chooseSmxTiles({ N: 1, P: 49, F: 160, C: 960 }, support, h100)), 'present');
  assert.equal(key(chooseSmxTiles({ N: 1, P: 49, F: 160, C: 576 }, support, h100)), 'present');
  assert.equal(key(chooseSmxTiles({ N: 1, P: 196, F: 96, C: 576 }, support, h100)), '32x32/64p');
  assert.equal(key(chooseSmxTiles({ N: 1, P: 49, F: 960, C: 160 }, support, h100)), '32x32/32p');
  // Few positions in all (a squeeze-excite 1x1 map at batch 1): no 16-row block to fill.
  assert.equal(key(chooseSmxTiles({ N: 1, P: 1, F: 576, C: 144 }, support, h100)), 'present');
  // WebGPU's default 16 KiB of workgroup storage holds both (14 KiB with 64 channels a step); 12 KiB only 32 a step (9.5).
  assert.equal(key(chooseSmxTiles({ N: 32, P: 49, F: 160, C: 960 }, support, defaultLimits)), '32x32/64p');
  assert.equal(key(chooseSmxTiles({ N: 32, P: 49, F: 160, C: 960 }, support, { ...defaultLimits, maxComputeWorkgroupStorageSize: 12288 })), '32x32/32p');
  // 32 x 64 tiles take 15.5 KiB: within the default 16, not within 12 (then 32 x 32 as above).
  assert.equal(key(chooseSmxTiles({ N: 32, P: 49, F: 320, C: 960 }, support, defaultLimits)), '32x64/32p');
  assert.equal(key(chooseSmxTiles({ N: 32, P: 49, F: 320, C: 960 }, support, { ...defaultLimits, maxComputeWorkgroupStorageSize: 12288 })), '32x32/32p');
  // A 64-wide subgroup: 256-thread workgroups, within the default limits; 128-wide: none fits 256 invocations.
  assert.equal(key(chooseSmxTiles({ N: 32, P: 3136, F: 24, C: 144 }, { subgroupSize: 64 }, defaultLimits)), '32x64/32p');
  assert.equal(key(chooseSmxTiles({ N: 1, P: 3136, F: 24, C: 144 }, { subgroupSize: 64 }, defaultLimits)), '32x32/32p');
  assert.equal(chooseSmxTiles({ N: 32, P: 3136, F: 24, C: 144 }, { subgroupSize: 128 }, defaultLimits), undefined);
  // A device's staged tiles in place of the rule's (SubgroupMatrixSupport.staged): below 192 channels the first, from
  // 192 on the second; the layers the rule leaves to the present kernel stay there.
  const staged = { ...support, staged: [smxTrialVariants[0], smxTrialVariants[2]] as const };
  assert.equal(chooseSmxTiles({ N: 32, P: 49, F: 960, C: 160 }, staged, h100), smxTrialVariants[0]);
  assert.equal(chooseSmxTiles({ N: 32, P: 49, F: 320, C: 960 }, staged, h100), smxTrialVariants[2]);
  assert.equal(key(chooseSmxTiles({ N: 32, P: 3136, F: 144, C: 24 }, staged, h100)), 'present');
  // The split step (SubgroupMatrixSupport.split): K-group tiles for fewer than smxSplitMinWorkgroups tiles with at
  // least smxSplitMinChannels channels; not for shorter loops, more tiles, nor where the rule leaves a layer to the
  // present kernel; off without a split variant.
  const split = { ...support, split: smxSplitVariants[0] };
  assert.equal(chooseSmxTiles({ N: 32, P: 49, F: 160, C: 960 }, split, h100), smxSplitVariants[0]);
  assert.equal(chooseSmxTiles({ N: 1, P: 196, F: 96, C: 576 }, split, h100), smxSplitVariants[0]);
  assert.equal(key(chooseSmxTiles({ N: 32, P: 49, F: 160, C: 960 }, support, h100)), '32x32/64p');
  assert.equal(key(chooseSmxTiles({ N: 32, P: 49, F: 960, C: 160 }, split, h100)), '32x64/32p');
  // The rule's 32 x 64 tiles too where they are few (7x7 960 -> 320: 250), not where they are more (14x14 576 -> 96: 294).
  assert.equal(chooseSmxTiles({ N: 32, P: 49, F: 320, C: 960 }, split, h100), smxSplitVariants[0]);
  assert.ok(smxTileCount({ N: 32, P: 196, F: 96 }, smxPaddedVariants[3]) >= smxSplitMinWorkgroups);
  assert.equal(key(chooseSmxTiles({ N: 32, P: 196, F: 96, C: 576 }, split, h100)), '32x64/32p');
  assert.equal(key(chooseSmxTiles({ N: 1, P: 49, F: 320, C: 960 }, split, h100)), 'present');
  // A split variant over the device's limits: the rule's own tiles.
  assert.equal(key(chooseSmxTiles({ N: 32, P: 49, F: 160, C: 960 }, split, { ...h100, maxComputeInvocationsPerWorkgroup: 128 })), '32x32/64p');
});

// ---- selection by device features ----------------------------------------------------------------------------------

const nvidiaInfo = {
  subgroupMinSize: 32, subgroupMaxSize: 32,
  subgroupMatrixConfigs: [
    { componentType: 'f16', resultComponentType: 'f16', M: 16, N: 16, K: 16 },
    { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 },
    { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 8, K: 16 },
    { componentType: 'i8', resultComponentType: 'i32', M: 16, N: 16, K: 32 },
  ],
};
const allFeatures = new Set(['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix', 'timestamp-query']);
const without = (f: string) => new Set([...allFeatures].filter((x) => x !== f));

test('subgroupMatrixSupport: only with the three features, an f16 -> f32 16x16x16 config and one subgroup size', () => {
  assert.deepEqual(subgroupMatrixSupport(allFeatures, nvidiaInfo), { subgroupSize: 32, n8: true, f16Acc: true });
  // Without f16 -> f32 M16 N8 K16 or f16 -> f16 M16 N16 K16: no 16 x 8 blocks, no f16 accumulators.
  assert.deepEqual(subgroupMatrixSupport(allFeatures, { ...nvidiaInfo, subgroupMatrixConfigs: nvidiaInfo.subgroupMatrixConfigs.filter((c) => c.resultComponentType === 'f32' && c.N === 16) }), { subgroupSize: 32 });
  for (const f of ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix']) assert.equal(subgroupMatrixSupport(without(f), nvidiaInfo), undefined, `without ${f}`);
  assert.equal(subgroupMatrixSupport(allFeatures, { ...nvidiaInfo, subgroupMatrixConfigs: nvidiaInfo.subgroupMatrixConfigs.filter((c) => !(c.resultComponentType === 'f32' && c.N === 16)) }), undefined, 'only f16 -> f16 and M16 N8');
  assert.equal(subgroupMatrixSupport(allFeatures, { ...nvidiaInfo, subgroupMatrixConfigs: undefined }), undefined, 'no configs reported');
  assert.equal(subgroupMatrixSupport(allFeatures, { ...nvidiaInfo, subgroupMinSize: 16, subgroupMaxSize: 32 }), undefined, 'a varying subgroup size');
  assert.equal(subgroupMatrixSupport(allFeatures, { ...nvidiaInfo, subgroupMinSize: undefined }), undefined, 'an unknown subgroup size');
  // lavapipe: shader-f16 and subgroups, no subgroup matrices, no configs.
  assert.equal(subgroupMatrixSupport(without('chromium-experimental-subgroup-matrix'), { subgroupMinSize: 8, subgroupMaxSize: 8, subgroupMatrixConfigs: [] }), undefined);
});

function convNode(name: string, withBias: boolean, act?: [string, number[]]): Node {
  return { name, op: 'Conv', domain: '', inputs: ['x', 'w', ...(withBias ? ['b'] : [])], outputs: ['y'], attrs: act ? { activation: act[0], activationParams: act[1] } : {} };
}

test('kernelFor: a pointwise Conv takes the subgroup-matrix kernel only in f16 with the feature; anything else the present kernels', () => {
  const pw = convNode('pw', true, ['Clip', [0, 6]]);
  const ins = [[8, 64, 28, 28], [128, 64, 1, 1], [128]], outs = [[8, 128, 28, 28]];
  const keyOf = (k: ReturnType<typeof kernelFor>) => (k.kind === 'programs' ? k.programs.map((p) => p.cacheKey).join(',') : 'alias');
  const f16 = keyOf(kernelFor(pw, ins, outs, h100, 'f16'));
  assert.match(f16, /^f16\|pointwise-/, 'no features: the present f16 kernel');
  assert.equal(keyOf(kernelFor(pw, ins, outs, h100, 'f16', {})), f16);
  assert.match(keyOf(kernelFor(pw, ins, outs, h100, 'f16', { subgroupMatrix: support })), /^pointwise-smx\|8\|64\|128\|784\|1\|0\|0\|Clip\(0,6\)\|/);
  assert.equal(keyOf(kernelFor(pw, ins, outs, h100, 'f32', { subgroupMatrix: support })), keyOf(kernelFor(pw, ins, outs, h100, 'f32')), 'fp32 is unchanged');
  // A depthwise and a 3x3 Conv, a 7x7 960 -> 160 layer at batch 1 (too little work): the present kernels.
  const dw: Node = { ...convNode('dw', true), attrs: { group: 64, pads: [1, 1, 1, 1] } };
  const dwIn = [[8, 64, 28, 28], [64, 1, 3, 3], [64]];
  assert.equal(keyOf(kernelFor(dw, dwIn, [[8, 64, 28, 28]], h100, 'f16', { subgroupMatrix: support })), keyOf(kernelFor(dw, dwIn, [[8, 64, 28, 28]], h100, 'f16')));
  const late = [[1, 960, 7, 7], [160, 960, 1, 1], [160]];
  assert.equal(keyOf(kernelFor(pw, late, [[1, 160, 7, 7]], h100, 'f16', { subgroupMatrix: support })), keyOf(kernelFor(pw, late, [[1, 160, 7, 7]], h100, 'f16')));
  // Limits no tile fits (16 KiB, 64 invocations): the present kernel.
  const tiny = { ...defaultLimits, maxComputeInvocationsPerWorkgroup: 64, maxComputeWorkgroupSizeX: 64 };
  assert.match(keyOf(kernelFor(pw, ins, outs, tiny, 'f16', { subgroupMatrix: support })), /^f16\|pointwise-/);
});

test('compileGraph: MobileNetV2 fp16 puts its pointwise layers on subgroup matrices only with the feature, every other step unchanged', async () => {
  const limits = { ...h100, maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 30 };
  for (const batch of [1, 32]) {
    const g = await prepareForRun(exportOnnx(mobileNetV2(batch)), { precision: 'fp16', plan: 'unfused', batch });
    const plain = compileGraph(g, limits, 'f16');
    const smx = compileGraph(g, limits, 'f16', { subgroupMatrix: support });
    const fp32 = compileGraph(g, limits, 'f32', { subgroupMatrix: support });
    assert.equal(smx.steps.length, plain.steps.length);
    const pwNodes = g.nodes.filter((n) => n.op === 'Conv' && g.tensors.get(n.inputs[1])!.shape.slice(1).join() === `${g.tensors.get(n.inputs[0])!.shape[1]},1,1`);
    let onSmx = 0;
    smx.steps.forEach((s, i) => {
      const isSmx = s.program.cacheKey.startsWith('pointwise-smx');
      if (isSmx) { onSmx++; assert.ok(pwNodes.includes(s.node), `${s.node.name} is pointwise`); } else assert.equal(s.program.cacheKey, plain.steps[i].program.cacheKey, `${s.node.name}: unchanged`);
      assert.deepEqual(s.bindings, plain.steps[i].bindings, `${s.node.name}: same tensors bound in the same order`);
    });
    assert.equal(plain.steps.filter((s) => s.program.cacheKey.includes('smx')).length, 0);
    assert.equal(fp32.steps.filter((s) => s.program.cacheKey.includes('smx')).length, 0);
    // Batch 32: every pointwise layer but the memory-bound ones (fewer than 32 channels or at most 16 filters, all over
    // 16384+ positions there); batch 1: every one but the 7x7 layers with long channel loops (576 and 960 channels).
    const shapeOf = (n: Node, i: number) => g.tensors.get(n.inputs[i])!.shape;
    const left = batch === 32
      ? pwNodes.filter((n) => shapeOf(n, 0)[1] < 32 || shapeOf(n, 1)[0] <= 16)
      : pwNodes.filter((n) => shapeOf(n, 0)[2] === 7 && shapeOf(n, 0)[1] > 256);
    assert.ok(left.length >= 3, `${left.length} layers left to the present kernels`);
    smx.steps.forEach((s) => { if (left.includes(s.node)) assert.ok(!s.program.cacheKey.startsWith('pointwise-smx'), s.node.name); });
    assert.equal(onSmx, pwNodes.length - left.length, `batch ${batch}: ${onSmx} of ${pwNodes.length} pointwise layers on subgroup matrices`);
  }
});

// ---- the emulated form on lavapipe ----------------------------------------------------------------------------------

function reference(g: Case, x: Float32Array, w: Float32Array, b: Float32Array, res: Float32Array, sc: Float32Array): { y: Float64Array; sumAbs: Float64Array } {
  const y = new Float64Array(g.N * g.F * g.P), sumAbs = new Float64Array(y.length);
  const act = activation(g.acts[0], g.acts[1]);
  const post = activation(g.post ?? '', []);
  for (let n = 0; n < g.N; n++) {
    for (let f = 0; f < g.F; f++) {
      for (let p = 0; p < g.P; p++) {
        let s = 0, a = 0;
        for (let c = 0; c < g.C; c++) {
          const t = w[f * g.C + c] * x[(n * g.C + c) * g.P + p] * (g.hasScale ? sc[n * g.C + c] : 1);
          s += t;
          a += Math.abs(t);
        }
        const o = (n * g.F + f) * g.P + p;
        y[o] = g.hasRes ? post(act(s + (g.hasBias ? b[f] : 0)) + res[o]) : act(s + (g.hasBias ? b[f] : 0));
        sumAbs[o] = a;
      }
    }
  }
  return { y, sumAbs };
}

// Ragged and aligned shapes (P % 4, C % 4, F and M past the tiles, tiles across images, K past BK), every epilogue
// part, and every block arrangement: 1 x 1, 1 x 2 and 2 x 2 blocks per subgroup, 16 and 32 channels per step.
const emulatedCases: [Case, SmxTiles][] = [
  [dotCase(2, 13, 21, 49, { bias: true, res: true, scale: true, act: ['Clip', [0, 6]] }), { sgf: 2, sgp: 2, tm: 1, tn: 1, bk: 32 }],
  [dotCase(2, 13, 21, 49, { bias: true, res: true, act: ['Relu', []] }), { sgf: 1, sgp: 4, tm: 1, tn: 1, bk: 32 }],
  [dotCase(1, 40, 36, 36, { bias: true, act: ['Clip', [0, 6]] }), { sgf: 2, sgp: 2, tm: 1, tn: 2, bk: 32 }],
  [dotCase(3, 32, 16, 20, { res: true }), { sgf: 1, sgp: 4, tm: 1, tn: 1, bk: 32 }],
  [dotCase(2, 48, 40, 52, { bias: true, res: true, scale: true, post: 'Relu' }), { sgf: 1, sgp: 2, tm: 2, tn: 2, bk: 16 }],
  [dotCase(1, 24, 70, 100, { bias: true, act: ['HardSwish', []] }), { sgf: 2, sgp: 1, tm: 2, tn: 1, bk: 16 }],
  // Padded rows (SmxTiles.pad): 64 channels a step over 80 (the second step ragged), the scalar path with every
  // epilogue part; and 2 x 2 blocks on the vec4 path.
  [dotCase(2, 80, 21, 49, { bias: true, res: true, scale: true, act: ['Clip', [0, 6]] }), { sgf: 2, sgp: 2, tm: 1, tn: 1, bk: 64, pad: true }],
  [dotCase(1, 40, 70, 36, { bias: true, act: ['HardSwish', []] }), { sgf: 2, sgp: 2, tm: 2, tn: 2, bk: 32, pad: true }],
  // Two sets of tiles (SmxTiles.db): 4 steps over 100 channels (the sets alternate, the last step ragged) on the scalar
  // path with every epilogue part; eight subgroups on the vec4 path, 3 steps.
  [dotCase(2, 100, 21, 49, { bias: true, res: true, scale: true, act: ['Clip', [0, 6]] }), { sgf: 2, sgp: 2, tm: 1, tn: 1, bk: 32, pad: true, db: true }],
  [dotCase(1, 72, 40, 100, { bias: true, res: true, act: ['Relu', []] }), { sgf: 2, sgp: 4, tm: 1, tn: 1, bk: 32, pad: true, db: true }],
  // K-groups (SmxTiles.ks): two groups of 4 subgroups over 150 channels (the second group's half of the last step
  // past C) on the scalar path with every epilogue part; four groups of one subgroup with 1 x 2 blocks on the vec4 path
  // (the 2 x 2 blocks of smxSplitVariants need more workgroup memory emulated than lavapipe has).
  [dotCase(2, 150, 21, 49, { bias: true, res: true, scale: true, act: ['Clip', [0, 6]] }), { sgf: 2, sgp: 2, tm: 1, tn: 1, bk: 64, pad: true, ks: 2 }],
  [dotCase(1, 72, 40, 36, { bias: true, res: true, act: ['Relu', []] }), { sgf: 1, sgp: 1, tm: 1, tn: 2, bk: 64, pad: true, ks: 4 }],
];

// lavapipe compiles each emulated program for seconds to minutes under load: eight cases by default (the scalar path
// with every epilogue part, the vec4 path, the 16 x 64 tiles the chooser takes for <= 16 filters, 2 x 2 blocks with
// 16-channel steps, padded rows with 64-channel steps, two sets of tiles, both K-group arrangements), all twelve with
// FCM_OPT_FULL_SWEEPS=1.
const runCases = fullSweeps ? emulatedCases : [emulatedCases[0], emulatedCases[2], emulatedCases[3], emulatedCases[4], emulatedCases[6], emulatedCases[8], emulatedCases[10], emulatedCases[11]];

for (const [g, t] of runCases) {
  const label = `N${g.N} C${g.C} F${g.F} P${g.P}${g.hasBias ? ' +b' : ''}${g.hasRes ? ' +res' : ''}${g.hasScale ? ' *sc' : ''} ${g.acts[0] || 'none'}${g.post ? ` then ${g.post}` : ''}, ${16 * t.tm * t.sgf}x${16 * t.tn * t.sgp} BK${t.bk}${t.pad ? ' padded' : ''}${t.db ? ', two sets' : ''}${t.sgf * t.sgp > 4 ? `, ${t.sgf * t.sgp} subgroups` : ''}${t.ks ? `, ${t.ks} K-groups` : ''}`;
  test(`emulated kernel matches the float64 reference: ${label}`, async () => {
    let seed = 9000 + g.N * 1000 + g.C;
    const r = (n: number, lo = -1, hi = 1) => Float32Array.from(randomF32(n, seed++, lo, hi), roundHalf);
    const x = r(g.N * g.C * g.P), w = r(g.F * g.C, -0.5, 0.5), b = r(g.F), res = r(g.N * g.F * g.P), sc = r(g.N * g.C, 0.5, 1.5);
    const inputs = [x, w, ...(g.hasBias ? [b] : []), ...(g.hasRes ? [res] : []), ...(g.hasScale ? [sc] : [])];
    const p = program(g, t, { s: 32, emulate: true, limits: { ...defaultLimits, maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 } });
    const got = await runEmulated(p, inputs, g.N * g.F * g.P);
    const { y, sumAbs } = reference(g, x, w, b, res, sc);
    let maxRef = 0;
    for (const v of y) maxRef = Math.max(maxRef, Math.abs(v));
    let worst = -1, worstRatio = 0;
    for (let i = 0; i < y.length; i++) {
      const bound = 2 ** -11 * Math.abs(y[i]) + 2 ** -25 + 1e-4 * Math.max(1, maxRef) + (g.hasScale ? 2 ** -11 * sumAbs[i] : 0);
      const ratio = Math.abs(got[i] - y[i]) / bound;
      if (!(ratio <= worstRatio)) { worst = i; worstRatio = Number.isNaN(ratio) ? Infinity : ratio; }
    }
    assert.ok(worstRatio <= 1, `element ${worst}: got ${got[worst]}, expected ${y[worst]} (${worstRatio.toFixed(2)}x the bound)`);
  });
}

// ---- direct-load variants --------------------------------------------------------------------------------------------

const fullSupport = { subgroupSize: 32, n8: true, f16Acc: true };

test('direct variants: one workgroup per BF x BP tile of one image, storage as declared (tail arrays only where C % 16 != 0), every variant its own key', () => {
  const keys = new Set<string>();
  for (const t of smxDirectVariants) {
    for (const g of [dotCase(2, 40, 36, 40, { bias: true, res: true }), dotCase(32, 960, 320, 49, { bias: true }), dotCase(1, 32, 16, 12544)]) {
      const p = program(g, t);
      const BF = 16 * t.tm * t.sgf, BP = t.nb * t.tn * t.sgp, NSG = t.sgf * t.sgp;
      const tiles = Math.ceil(g.F / BF) * g.N * Math.ceil(g.P / BP);
      assert.equal(tiles, smxTileCount(g, t));
      assert.match(p.wgsl, new RegExp(`const TOTAL: u32 = ${tiles}u;`));
      assert.deepEqual(p.workgroupSize, [32 * NSG, 1, 1]);
      const acc = NSG * t.tm * t.tn * 16 * t.nb * (t.acc === 'f32' ? 4 : 2), tail = g.C % 16 ? 2 * NSG * (t.tm * 256 + t.tn * 16 * t.nb) : 0;
      const xs = t.xs ? 2 * 16 * t.ku * BP : 0;
      assert.equal(p.workgroupStorageBytes, acc + tail + xs);
      assert.equal(smxStorage(t, g.C), acc + tail + xs);
      assert.ok(acc + 2 * NSG * (t.tm * 256 + t.tn * 16 * t.nb) + xs <= 32768, `${smxTileKey(t)} fits lavapipe's 32 KiB with its tail arrays`);
      assert.equal(/var<workgroup> xs:/.test(p.wgsl), !!t.xs);
      assert.equal(/var<workgroup> ta:/.test(p.wgsl), g.C % 16 !== 0);
      assert.match(p.cacheKey, /^pointwise-smx-direct\|/);
      keys.add(p.cacheKey);
      // TM x TN products per step of 16 channels, all operands from the storage buffers (and the tail's from ta / tb).
      const loads = p.wgsl.match(/subgroupMatrixLoad<[^>]+>, row_major>\(&(w|x|xs),/g) ?? [];
      assert.ok(loads.length >= t.ku * (t.tm + t.tn), `${smxTileKey(t)}: ${loads.length} loads from w and x`);
      assert.equal(p.wgsl.match(/subgroupMatrixStore<row_major>\(&rs,/g)?.length, t.tm * t.tn);
      assert.match(p.wgsl, new RegExp(`var acc0_0 = subgroup_matrix_result<${t.acc}, ${t.nb}, 16>\\(\\);`));
    }
  }
  assert.equal(keys.size, 3 * smxDirectVariants.length);
});

test('direct variants: stores of 4, 2 or 1 f16 by P, the residual and output bound to match; refused where they cannot run', () => {
  const t = smxDirectVariants[0];
  const decls = (g: DotGeom) => [...program(g, t).wgsl.matchAll(/@binding\((\d+)\) var<storage, (\w+)> (\w+): array<([^>]+>?)>;/g)].map((m) => `${m[3]} ${m[4]}`);
  assert.deepEqual(decls(dotCase(2, 40, 36, 40, { bias: true, res: true })), ['x f16', 'w f16', 'b f16', 'res vec4<f16>', 'out vec4<f16>']);
  assert.deepEqual(decls(dotCase(2, 40, 36, 98, { res: true })), ['x f16', 'w f16', 'res vec2<f16>', 'out vec2<f16>']);
  assert.deepEqual(decls(dotCase(2, 40, 36, 49, { res: true })), ['x f16', 'w f16', 'res f16', 'out f16']);
  assert.throws(() => program(dotCase(2, 40, 36, 12), t), /needs >= 16 positions and >= 16 filters, got 12 and 36/);
  assert.throws(() => program(dotCase(2, 40, 8, 64), t), /needs >= 16 positions and >= 16 filters, got 64 and 8/);
  assert.throws(() => program(dotCase(2, 40, 36, 64, { scale: true }), t), /no per-channel input scale/);
  assert.throws(() => program(dotCase(2, 40, 36, 64), { ...t, nb: 4 as 8 }), /16 x 16 or 16 x 8, got 16 x 4/);
  assert.throws(() => program(dotCase(2, 40, 36, 64), t, { limits: { ...defaultLimits, maxComputeWorkgroupStorageSize: 8192 } }), /24576 bytes of workgroup storage, the device allows 8192/);
});

test('chooser with direct variants: aligned rows only (P % 8, C % 8), 16 x 256 for <= 16 filters, 32 x 64 on few tiles, 64 x 64; off by default; the configurations the device lacks are not offered', () => {
  const key = (t: SmxVariant | undefined) => (t ? smxTileKey(t) : 'present');
  const d = { direct: true };
  const [big, narrow, small] = smxChosenDirectVariants().map(smxTileKey);
  assert.equal(key(chooseSmxTiles({ N: 32, P: 3136, F: 144, C: 24 }, support, h100, d)), big);
  assert.equal(key(chooseSmxTiles({ N: 1, P: 12544, F: 16, C: 32 }, support, h100, d)), narrow);
  assert.equal(key(chooseSmxTiles({ N: 1, P: 784, F: 32, C: 144 }, support, h100, d)), small, '1 x 13 x 1 tiles of 64 x 64: too few');
  // Unaligned rows of x (14x14, 7x7): x through workgroup memory, 64 x 64 with enough tiles, else 32 x 64 unless
  // that leaves few tiles on a long channel loop (then the staged rule: the present split-K kernel).
  const [, , , bigX, smallX] = smxChosenDirectVariants().map(smxTileKey);
  assert.ok(bigX.endsWith('X') && smallX.endsWith('X'));
  assert.equal(key(chooseSmxTiles({ N: 32, P: 196, F: 96, C: 576 }, support, h100, d)), bigX);
  assert.equal(key(chooseSmxTiles({ N: 32, P: 49, F: 320, C: 960 }, support, h100, d)), bigX);
  assert.equal(key(chooseSmxTiles({ N: 1, P: 196, F: 64, C: 192 }, support, h100, d)), smallX);
  assert.equal(key(chooseSmxTiles({ N: 1, P: 49, F: 160, C: 960 }, support, h100, d)), 'present');
  // An input scale, channels not a multiple of 8: the staged rule's pick.
  for (const g of [{ N: 32, P: 3136, F: 144, C: 24, hasScale: true }, { N: 32, P: 3136, F: 144, C: 20 }, { N: 32, P: 196, F: 144, C: 20 }]) {
    assert.equal(key(chooseSmxTiles(g, support, h100, d)), key(chooseSmxTiles(g, support, h100)), JSON.stringify(g));
  }
  // Off by default: the staged rule alone, never a direct variant.
  for (const g of [{ N: 32, P: 3136, F: 144, C: 32 }, { N: 1, P: 12544, F: 16, C: 32 }]) assert.ok(!isDirect(chooseSmxTiles(g, support, h100)!));
  // A device's support with `direct` (FCM_OPT_SUBGROUP_MATRIX=direct) sets the rule; kernelFor follows it.
  assert.equal(key(chooseSmxTiles({ N: 32, P: 3136, F: 144, C: 24 }, { ...support, direct: true }, h100)), big);
  const pw = convNode('pw', true, ['Clip', [0, 6]]);
  const k = kernelFor(pw, [[8, 24, 56, 56], [144, 24, 1, 1], [144]], [[8, 144, 56, 56]], h100, 'f16', { subgroupMatrix: { ...support, direct: true } });
  assert.match(k.kind === 'programs' ? k.programs[0].cacheKey : '', /^pointwise-smx-direct\|8\|24\|144\|3136\|1\|0\|Clip\(0,6\)\|D2x2T2x2N16K1\|/);
  // The chosen direct variants use 16 x 16 blocks and f32 accumulators: what every device with the kernel has.
  for (const t of smxChosenDirectVariants()) assert.ok(t.nb === 16 && t.acc === 'f32');
  const f16acc = smxDirectVariants.find((t) => t.acc === 'f16')!, n8 = smxDirectVariants.find((t) => t.nb === 8)!;
  assert.equal(smxFits(f16acc, support, h100), false);
  assert.equal(smxFits(n8, support, h100), false);
  assert.equal(smxFits(f16acc, fullSupport, h100) && smxFits(n8, fullSupport, h100), true);
});

// Every direct variant on ragged shapes (batch > 1, P, C and F not multiples of 16, P past the tile and clamped
// blocks, vec4 / vec2 / scalar stores, a channel tail, one 32-channel iteration plus a single step), every epilogue.
// lavapipe compiles each emulated program for seconds, more than linearly in its size: a channel loop of 2 iterations
// costs as much as two copies of its body (64 x 64 with a tail, CPU s, cold: C 40 11.1, C 56 7.7, C 72 7.0, C 24
// 6.4), and so does the epilogue loop of 8 iterations that vec4 stores give 64 x 64 tiles (16 x 8 blocks with a
// tail: P 28 31.0, P 30 20.8). So the channel counts below give 1 iteration or 3 and more (64, 65: 4 iterations, 96
// in 32-channel steps: 3, which also run the loop's own counter and bound), and vec4 stores are run on the two cases
// with the fewest products (the tail-free 64 x 64 and the 32 x 64 cases).
const directCases: [Case, SmxDirectTiles][] = [
  // 64 x 64, no channel tail: 4 iterations ending exactly at C.
  [dotCase(2, 64, 36, 40, { bias: true, res: true, act: ['Clip', [0, 6]] }), smxDirectVariants[0]],
  [dotCase(3, 24, 21, 49, { bias: true, res: true, act: ['Relu', []], post: 'Relu' }), smxDirectVariants[1]],
  [dotCase(2, 13, 20, 98, { bias: true }), smxDirectVariants[2]],
  // 16 x 256 with its channel loop (3 iterations, no tail; the case above has C < 16: no loop at all).
  [dotCase(2, 48, 20, 98, { bias: true, res: true, act: ['Relu', []] }), smxDirectVariants[2]],
  // C % 16 == 1 and C % 8 != 0: 4 iterations and a one-channel tail.
  [dotCase(2, 65, 40, 36, { res: true, act: ['HardSwish', []] }), smxDirectVariants[3]],
  // 32 channels per iteration: 3 iterations (no single step, no tail); then no iteration, a single 16-channel step and
  // the tail (the tail from channel KF after a step that starts at loopEnd). Two programs compile in less CPU than one
  // with both (5.6 + 5.4 s against 13.8 for C 56: one iteration, the step and the tail).
  [dotCase(2, 96, 40, 50, { bias: true, act: ['Clip', [0, 6]] }), smxDirectVariants[4]],
  [dotCase(2, 24, 40, 50, { bias: true, act: ['Clip', [0, 6]] }), smxDirectVariants[4]],
  // 16 x 8 blocks: the channel loop (4 iterations, no tail) and the tail alone (C < 16), in two programs, which
  // lavapipe compiles in 16.7 s of CPU where one program with both (C 24) took 29.2. The tail after a loop (KF > 0)
  // is run with 16 x 16 blocks (the tail's channel offset does not depend on the block width).
  [dotCase(2, 64, 30, 30, { bias: true, res: true }), smxDirectVariants[5]],
  [dotCase(2, 8, 30, 30, { bias: true, res: true }), smxDirectVariants[5]],
  // f16 accumulators: one step in the loop, one in the tail (rounded after each).
  [dotCase(2, 24, 36, 42, { bias: true, act: ['Clip', [0, 6]] }), smxDirectVariants[6]],
  // x through workgroup memory: odd P (scalar stores), 3 iterations of 32 channels, and a channel tail alone (6.6 +
  // 1.8 s against 10.2 for one program with 1 iteration and the tail, C 40); P = 98 (vec2) with a single leftover step.
  [dotCase(2, 96, 36, 49, { bias: true, res: true, act: ['Clip', [0, 6]] }), smxDirectVariants[7]],
  [dotCase(2, 8, 36, 49, { bias: true, res: true, act: ['Clip', [0, 6]] }), smxDirectVariants[7]],
  [dotCase(3, 48, 20, 98, { res: true, act: ['Relu', []] }), smxDirectVariants[8]],
  // Prefetched operands: three 16-channel iterations and a tail.
  [dotCase(2, 56, 36, 46, { bias: true, res: true, act: ['Clip', [0, 6]] }), smxDirectVariants[9]],
  // FCM_OPT_FULL_SWEEPS=1 also runs the earlier shapes: 2-iteration channel loops with tails (64 x 64, 32 x 64 with
  // C % 16 == 1, f16 accumulators), one 32-channel iteration, a single step and the tail in one program with vec4
  // stores, the same without a tail, 16 x 8 blocks with loop and tail in one program, x through workgroup memory with
  // one iteration and the tail, and prefetching with vec4 stores. (The default run has a single step after a
  // 32-channel iteration in the x-through-workgroup case on P = 98.)
  ...(fullSweeps ? ([
    [dotCase(2, 40, 36, 40, { bias: true, res: true, act: ['Clip', [0, 6]] }), smxDirectVariants[0]],
    [dotCase(2, 33, 40, 36, { res: true, act: ['HardSwish', []] }), smxDirectVariants[3]],
    [dotCase(2, 40, 36, 42, { bias: true, act: ['Clip', [0, 6]] }), smxDirectVariants[6]],
    [dotCase(2, 48, 20, 60, { bias: true, res: true }), smxDirectVariants[4]],
    [dotCase(2, 56, 40, 52, { bias: true, act: ['Clip', [0, 6]] }), smxDirectVariants[4]],
    [dotCase(2, 40, 36, 49, { bias: true, res: true, act: ['Clip', [0, 6]] }), smxDirectVariants[7]],
    [dotCase(2, 24, 30, 28, { bias: true, res: true }), smxDirectVariants[5]],
    [dotCase(2, 56, 36, 44, { bias: true, res: true, act: ['Clip', [0, 6]] }), smxDirectVariants[9]],
  ] as [Case, SmxDirectTiles][]) : []),
];
assert.deepEqual(new Set(directCases.map(([, t]) => t)), new Set(smxDirectVariants), 'every direct variant has its case');

for (const [g, t] of directCases) {
  const label = `N${g.N} C${g.C} F${g.F} P${g.P}${g.hasBias ? ' +b' : ''}${g.hasRes ? ' +res' : ''} ${g.acts[0] || 'none'}${g.post ? ` then ${g.post}` : ''}, ${smxTileKey(t)}`;
  test(`emulated direct variant matches the float64 reference: ${label}`, async () => {
    let seed = 7000 + g.N * 1000 + g.C;
    const r = (n: number, lo = -1, hi = 1) => Float32Array.from(randomF32(n, seed++, lo, hi), roundHalf);
    const x = r(g.N * g.C * g.P), w = r(g.F * g.C, -0.5, 0.5), b = r(g.F), res = r(g.N * g.F * g.P);
    const inputs = [x, w, ...(g.hasBias ? [b] : []), ...(g.hasRes ? [res] : [])];
    const p = program(g, t, { s: 32, emulate: true, limits: { ...defaultLimits, maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 } });
    assert.ok(!/subgroup/.test(p.wgsl.replace(/\/\/[^\n]*/g, '')), 'the emulated form uses no subgroup feature');
    const got = await runEmulated(p, inputs, g.N * g.F * g.P);
    const { y, sumAbs } = reference(g, x, w, b, res, new Float32Array(0));
    let maxRef = 0;
    for (const v of y) maxRef = Math.max(maxRef, Math.abs(v));
    // f16 accumulators: the running sum rounded to f16 after each step of 16 channels and once more as the result
    // leaves them (each half an ulp of a partial sum, at most 2^-11 sum_c |w x|).
    const steps = t.acc === 'f16' ? Math.ceil(g.C / 16) + 1 : 0;
    let worst = -1, worstRatio = 0;
    for (let i = 0; i < y.length; i++) {
      const bound = 2 ** -11 * Math.abs(y[i]) + 2 ** -25 + 1e-4 * Math.max(1, maxRef) + steps * 2 ** -11 * sumAbs[i];
      const ratio = Math.abs(got[i] - y[i]) / bound;
      if (!(ratio <= worstRatio)) { worst = i; worstRatio = Number.isNaN(ratio) ? Infinity : ratio; }
    }
    assert.ok(worstRatio <= 1, `element ${worst}: got ${got[worst]}, expected ${y[worst]} (${worstRatio.toFixed(2)}x the bound)`);
  });
}
